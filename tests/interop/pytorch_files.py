#!/usr/bin/env python3
"""Interop files between PyTorch and nnkit (run by ctest; needs python3 with torch).

  pytorch_files.py make OUT_DIR
      Writes, for a ResNet basic block (64 -> 128 channels, stride 2, BatchNorm, projection
      skip) and a small CNN, with fixed seeds:
        <model>.pt                 torch.save(model.state_dict())
        <model>.safetensors        the same state dict in Python safetensors' layout (the
                                   `safetensors` package is not in Debian 12, so this writes its
                                   layout by hand: tensors sorted by dtype size then name, JSON
                                   header with sorted keys, padded with spaces to 8 bytes)
        <model>_io.safetensors     a fixed input and PyTorch's outputs for it, in eval mode
                                   ("output_eval") and train mode ("output_train"), plus the
                                   BatchNorm running stats after that train step
  pytorch_files.py verify OUT_DIR
      Reads <model>_from_nnkit.safetensors (written by nnkit's test: the state dict and
      nnkit's eval output), loads it into the PyTorch model and checks PyTorch reproduces the
      output. Exit status 0 on success.
"""
import json
import struct
import sys
from collections import OrderedDict

import torch
import torch.nn as nn


def resnet_block(inplanes, planes, stride):
    """torchvision's BasicBlock, the twin of nnkit::models::BasicBlock (same module names)."""
    downsample = None
    if stride != 1 or inplanes != planes:
        downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
    try:
        from torchvision.models.resnet import BasicBlock
    except ImportError:  # the same block, written out (torchvision/models/resnet.py)
        class BasicBlock(nn.Module):
            def __init__(self, inplanes, planes, stride, downsample):
                super().__init__()
                self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
                self.bn1 = nn.BatchNorm2d(planes)
                self.relu = nn.ReLU(inplace=True)
                self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
                self.bn2 = nn.BatchNorm2d(planes)
                self.downsample = downsample

            def forward(self, x):
                out = self.relu(self.bn1(self.conv1(x)))
                out = self.bn2(self.conv2(out))
                return self.relu(out + (x if self.downsample is None else self.downsample(x)))
    return BasicBlock(inplanes, planes, stride, downsample)


def small_cnn():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(16, 10))


MODELS = {
    "resnet_block": (lambda: resnet_block(64, 128, 2), (2, 64, 16, 16)),
    "small_cnn": (small_cnn, (4, 3, 12, 12)),
}
try:  # torchvision's own models (python3-torchvision), random weights: nothing is downloaded
    import torchvision.models as tvm
    MODELS["resnet18"] = (lambda: tvm.resnet18(num_classes=10), (2, 3, 64, 64))
    MODELS["resnet50"] = (lambda: tvm.resnet50(num_classes=10), (2, 3, 64, 64))
    MODELS["resnext50_32x4d"] = (lambda: tvm.resnext50_32x4d(num_classes=10), (2, 3, 64, 64))
except ImportError:
    print("torchvision not installed: its models are not written (the C++ side skips them)")

DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64", torch.bool: "BOOL"}
FROM_ST = {v: k for k, v in DTYPES.items()}


def randomize(model, seed):
    # Non-trivial BatchNorm parameters and running stats, so loading them matters.
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.num_batches_tracked.fill_(7)


def save_safetensors(tensors, path):
    # Python safetensors' order: by dtype size (descending), then name.
    names = sorted(tensors, key=lambda k: (-tensors[k].element_size(), k))
    header, offset, blobs = {}, 0, []
    for k in names:
        t = tensors[k].detach().contiguous()
        data = t.numpy().tobytes() if t.dtype != torch.bool else t.to(torch.uint8).numpy().tobytes()
        header[k] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    h = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_safetensors(path):
    import numpy as np
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = OrderedDict()
    for k, v in header.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        dt = FROM_ST[v["dtype"]]
        np_dt = {torch.float32: np.float32, torch.float64: np.float64, torch.int64: np.int64, torch.bool: np.bool_}[dt]
        out[k] = torch.from_numpy(np.frombuffer(data[b:e], dtype=np_dt).copy()).reshape(v["shape"])
    return out


def make(out_dir):
    for i, (name, (build, shape)) in enumerate(MODELS.items()):
        torch.manual_seed(100 + i)
        model = build()
        randomize(model, 200 + i)
        sd = model.state_dict()
        torch.save(sd, f"{out_dir}/{name}.pt")
        save_safetensors(sd, f"{out_dir}/{name}.safetensors")
        x = torch.randn(shape, generator=torch.Generator().manual_seed(300 + i))
        model.eval()
        with torch.no_grad():
            y_eval = model(x)
        model.train()
        with torch.no_grad():
            y_train = model(x)
        io = {"input": x, "output_eval": y_eval, "output_train": y_train}
        for k, v in model.state_dict().items():
            if "running" in k or "num_batches" in k:
                io["after_train." + k] = v
        save_safetensors(io, f"{out_dir}/{name}_io.safetensors")
    schedules(out_dir)
    print(f"pytorch_files: wrote {len(MODELS)} models to {out_dir} (torch {torch.__version__})")


def schedules(out_dir):
    """Learning rates of PyTorch's schedulers over 30 steps (two parameter groups), and
    clip_grad_norm_ results, as JSON for nnkit's scheduler test."""
    from torch.optim import lr_scheduler as S

    def run(make, steps=30):
        p1, p2 = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([{"params": [p1], "lr": 0.1}, {"params": [p2], "lr": 0.02}], lr=0.1)
        sched = make(opt)
        lrs = [[g["lr"] for g in opt.param_groups]]
        for _ in range(steps):
            opt.step()
            sched.step()
            lrs.append([g["lr"] for g in opt.param_groups])
        return lrs

    out = {
        "StepLR": run(lambda o: S.StepLR(o, step_size=7, gamma=0.5)),
        "MultiStepLR": run(lambda o: S.MultiStepLR(o, milestones=[3, 10, 20], gamma=0.3)),
        "CosineAnnealingLR": run(lambda o: S.CosineAnnealingLR(o, T_max=30, eta_min=0.001)),
        "LinearLR": run(lambda o: S.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=8)),
        "OneCycleLR": run(lambda o: S.OneCycleLR(o, max_lr=[0.5, 0.1], total_steps=31, cycle_momentum=False), 30),
        "OneCycleLR_three_phase_linear": run(lambda o: S.OneCycleLR(
            o, max_lr=[0.5, 0.1], total_steps=31, cycle_momentum=False, three_phase=True, anneal_strategy="linear"), 30),
        "Warmup_then_cosine": run(lambda o: S.SequentialLR(
            o, [S.LinearLR(o, start_factor=0.1, total_iters=5), S.CosineAnnealingLR(o, T_max=25)], milestones=[5])),
    }
    # OneCycleLR's default momentum cycling, for SGD (momentum) and Adam (beta1).
    for name, make_opt, key in (("sgd", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), "momentum"),
                                ("adam", lambda p: torch.optim.Adam(p, lr=0.1), "betas")):
        p = torch.nn.Parameter(torch.zeros(1))
        opt = make_opt([p])
        sched = S.OneCycleLR(opt, max_lr=0.3, total_steps=21)
        vals = []
        for step in range(21):
            g = opt.param_groups[0]
            vals.append([g["lr"], g[key] if key == "momentum" else g[key][0]])
            if step < 20:
                opt.step()
                sched.step()
        out["OneCycleLR_momentum_" + name] = vals
    torch.manual_seed(5)
    grads = [torch.randn(3, 4) * 3, torch.randn(5)]
    clip = {}
    for norm_type in (2.0, 1.0, float("inf")):
        ps = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
        for p, g in zip(ps, grads):
            p.grad = g.clone()
        total = torch.nn.utils.clip_grad_norm_(ps, max_norm=1.5, norm_type=norm_type)
        clip[str(norm_type)] = {"total": total.item(), "grads": [p.grad.flatten().tolist() for p in ps]}
    out["clip_grad_norm"] = {"grads": [g.flatten().tolist() for g in grads], "results": clip}
    with open(f"{out_dir}/schedules.json", "w") as f:
        json.dump(out, f)


def verify(out_dir):
    ok = True
    for name, (build, _) in MODELS.items():
        got = load_safetensors(f"{out_dir}/{name}_from_nnkit.safetensors")
        x, y_nnkit = got.pop("input"), got.pop("output_eval")
        model = build()
        model.load_state_dict(got, strict=True)
        model.eval()
        with torch.no_grad():
            y = model(x)
        err = ((y - y_nnkit).abs().max() / y.abs().max().clamp_min(1e-30)).item()
        print(f"pytorch_files verify: {name}: PyTorch on nnkit's file, max rel. error {err:.2e}")
        ok = ok and err <= 1e-5
    return ok


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("make", "verify"):
        print(__doc__)
        sys.exit(2)
    torch.set_num_threads(1)
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        sys.exit(0 if verify(sys.argv[2]) else 1)
