#!/usr/bin/env python3
"""Golden numerics for nnkit's layers and losses, made by PyTorch (needs python3 with torch).

  make_golden.py [--out PATH]     writes the golden file (default: layers.safetensors next to
                                  this script, the committed file)
  make_golden.py --check PATH     regenerates in memory and compares with PATH: exit 0 when the
                                  bytes are identical, or (another torch build or CPU) when the
                                  same tensors agree to 1e-12 relative; exit 1 otherwise

For each case below, in float64 and with a seed derived from the case's name (adding or
reordering cases changes no other case): the module's state dict before the first step
("<case>.state.<name>"), and per step the inputs ("<prefix>.input", "input2", ...; "target",
"attn_mask", "key_padding_mask" take no gradient), the output ("<prefix>.output", plus
"output_weights" for MultiheadAttention), a random upstream gradient ("<prefix>.grad_output"),
the gradients of the inputs ("<prefix>.grad_input", "grad_input2", ...) and of every parameter
("<prefix>.grad.<name>"), and BatchNorm's running statistics after the step
("<prefix>.buffer.<name>"). <prefix> is "<case>" for one-step cases and "<case>.step<i>" for the
multi-step ones (gradients are zeroed between steps). Everything is in ONE safetensors file, in
the layout of Python's `safetensors` package (written by hand: Debian has no such package).

The module options are hard-coded twice: in CASES here and in kCases in golden_test.cpp, which
builds the same nnkit module per case name. Keep the two in sync (the C++ test fails on a case
that is in one list and not the other). Regenerate after changing this script:
    /usr/bin/python3 tests/golden/make_golden.py
and commit the script and tests/golden/layers.safetensors together.
"""
import argparse
import json
import os
import struct
import sys
import warnings
import zlib

import torch
import torch.nn as nn

F64 = torch.float64
TRAIN, EVAL = "train", "eval"


def gen_for(name):
    return torch.Generator().manual_seed(zlib.crc32(name.encode()))


def R(g, *shape, scale=1.0):
    return torch.randn(shape, dtype=F64, generator=g) * scale


def U(g, *shape, lo=0.0, hi=1.0):
    return torch.rand(shape, dtype=F64, generator=g) * (hi - lo) + lo


def I(g, hi, *shape):
    return torch.randint(0, hi, shape, generator=g)


def randomize_norm(m, g):
    """Non-trivial affine parameters and running statistics, so that loading them matters."""
    with torch.no_grad():
        if getattr(m, "weight", None) is not None:
            m.weight.copy_(U(g, *m.weight.shape, lo=0.5, hi=1.5))
            m.bias.copy_(R(g, *m.bias.shape, scale=0.1))
        if getattr(m, "running_mean", None) is not None:
            m.running_mean.copy_(R(g, *m.running_mean.shape, scale=0.1))
            m.running_var.copy_(U(g, *m.running_var.shape, lo=0.5, hi=1.5))
            m.num_batches_tracked.fill_(5)


class Case:
    def __init__(self, name, make, inputs, forward=None, steps=(TRAIN,), randomize=None):
        self.name, self.make, self.inputs, self.steps = name, make, inputs, steps
        self.forward = forward or (lambda m, x: m(x["input"]))
        self.randomize = randomize


def x_(*shape, scale=1.0):
    return lambda g: {"input": R(g, *shape, scale=scale)}


def loss_inputs(make_input, make_target, target_grad=False):
    # MSELoss/L1Loss targets take a gradient too (input2); the others' targets do not.
    def f(g):
        x, t = make_input(g), make_target(g)
        return {"input": x, "input2": t} if target_grad else {"input": x, "target": t}
    return f


def loss_forward(m, x):
    return m(x["input"], x["input2"] if "input2" in x else x["target"])


def mha_self(m, x):
    return m(x["input"], x["input"], x["input"], attn_mask=x["attn_mask"])


def mha_cross(m, x):
    return m(x["input"], x["input2"], x["input3"], key_padding_mask=x["key_padding_mask"], attn_mask=x["attn_mask"])


def causal_mask(L):
    return torch.ones(L, L, dtype=torch.bool).triu(1)  # True = masked out


def mha_cross_inputs(g):
    N, L, S, E = 2, 3, 4, 6
    return {"input": R(g, N, L, E), "input2": R(g, N, S, E), "input3": R(g, N, S, E),
            "key_padding_mask": torch.tensor([[False, False, True, False], [False, True, False, True]]),
            "attn_mask": R(g, L, S, scale=0.5)}  # an additive float mask


W = lambda c: torch.rand(c, dtype=F64, generator=torch.Generator().manual_seed(c)) + 0.5  # loss weights

# Options here must match kCases in golden_test.cpp (see the docstring).
CASES = [
    Case("linear", lambda: nn.Linear(5, 4), x_(2, 3, 5)),
    Case("linear_nobias", lambda: nn.Linear(6, 3, bias=False), x_(4, 6)),
    Case("bilinear", lambda: nn.Bilinear(3, 4, 5), lambda g: {"input": R(g, 6, 3), "input2": R(g, 6, 4)},
         forward=lambda m, x: m(x["input"], x["input2"])),
    Case("conv1d", lambda: nn.Conv1d(4, 6, 3, stride=2, padding=1, dilation=2, groups=2), x_(2, 4, 11)),
    Case("conv1d_same_replicate", lambda: nn.Conv1d(2, 3, 4, padding="same", padding_mode="replicate"), x_(2, 2, 9)),
    Case("conv2d", lambda: nn.Conv2d(3, 4, 3), x_(2, 3, 6, 5)),
    Case("conv2d_stride_pad_dil_groups",
         lambda: nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2), x_(2, 4, 7, 6)),
    Case("conv2d_nobias_stride", lambda: nn.Conv2d(2, 3, 2, stride=2, bias=False), x_(1, 2, 7, 6)),
    Case("conv2d_same", lambda: nn.Conv2d(3, 4, (3, 4), padding="same", dilation=(2, 1)), x_(2, 3, 6, 7)),
    Case("conv2d_reflect", lambda: nn.Conv2d(2, 3, 3, stride=2, padding=1, padding_mode="reflect"), x_(1, 2, 7, 8)),
    Case("conv2d_same_reflect", lambda: nn.Conv2d(2, 3, (3, 2), padding="same", padding_mode="reflect"), x_(2, 2, 5, 6)),
    Case("conv_transpose2d", lambda: nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1), x_(2, 3, 4, 3)),
    Case("conv_transpose2d_groups_dil",
         lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=2, output_padding=1, groups=2, dilation=2), x_(1, 4, 4, 5)),
    Case("batchnorm1d", lambda: nn.BatchNorm1d(5), x_(8, 5, scale=2.0), randomize=randomize_norm),
    # momentum=None: the cumulative average, 1 / num_batches_tracked (starts at 5).
    Case("batchnorm1d_3d_cumulative", lambda: nn.BatchNorm1d(4, momentum=None), x_(3, 4, 5),
         steps=(TRAIN, TRAIN, EVAL), randomize=randomize_norm),
    Case("batchnorm2d", lambda: nn.BatchNorm2d(4), x_(3, 4, 3, 3, scale=1.5),
         steps=(TRAIN, TRAIN, TRAIN, EVAL), randomize=randomize_norm),
    Case("groupnorm", lambda: nn.GroupNorm(3, 6), x_(2, 6, 4, 3), randomize=randomize_norm),
    Case("groupnorm_noaffine_3d", lambda: nn.GroupNorm(2, 4, eps=1e-3, affine=False), x_(3, 4, 5)),
    Case("layernorm", lambda: nn.LayerNorm([5, 6]), x_(3, 5, 6), randomize=randomize_norm),
    Case("layernorm_noaffine", lambda: nn.LayerNorm(7, eps=1e-3, elementwise_affine=False), x_(4, 7)),
    Case("instancenorm2d", lambda: nn.InstanceNorm2d(3), x_(2, 3, 4, 5)),
    Case("instancenorm2d_affine", lambda: nn.InstanceNorm2d(3, affine=True), x_(2, 3, 4, 4), randomize=randomize_norm),
    Case("relu", lambda: nn.ReLU(), x_(4, 7)),
    Case("leaky_relu", lambda: nn.LeakyReLU(0.2), x_(4, 7)),
    Case("gelu", lambda: nn.GELU(), x_(4, 7, scale=2.0)),
    Case("gelu_tanh", lambda: nn.GELU(approximate="tanh"), x_(4, 7, scale=2.0)),
    Case("silu", lambda: nn.SiLU(), x_(4, 7, scale=2.0)),
    Case("sigmoid", lambda: nn.Sigmoid(), x_(4, 7, scale=2.0)),
    Case("tanh", lambda: nn.Tanh(), x_(4, 7)),
    Case("softmax", lambda: nn.Softmax(dim=1), x_(3, 5, 4, scale=2.0)),
    Case("log_softmax", lambda: nn.LogSoftmax(dim=-1), x_(4, 7, scale=2.0)),
    Case("maxpool2d", lambda: nn.MaxPool2d(3, stride=2, padding=1), x_(2, 3, 9, 8)),
    Case("maxpool2d_ceil", lambda: nn.MaxPool2d(2, ceil_mode=True), x_(1, 2, 7, 7)),
    Case("avgpool2d_pad", lambda: nn.AvgPool2d(3, stride=2, padding=1), x_(2, 3, 9, 8)),
    Case("avgpool2d_pad_ceil", lambda: nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True), x_(1, 2, 8, 8)),
    Case("avgpool2d_ceil", lambda: nn.AvgPool2d(2, ceil_mode=True), x_(1, 2, 7, 5)),
    Case("adaptive_avgpool2d", lambda: nn.AdaptiveAvgPool2d((3, 4)), x_(2, 3, 7, 9)),
    Case("adaptive_avgpool2d_up", lambda: nn.AdaptiveAvgPool2d((5, 3)), x_(1, 2, 3, 2)),
    Case("flatten", lambda: nn.Flatten(1, 2), x_(2, 3, 4, 2)),
    Case("unflatten", lambda: nn.Unflatten(1, (2, 3)), x_(4, 6, 2)),
    Case("embedding_padding_idx", lambda: nn.Embedding(10, 4, padding_idx=0),
         lambda g: {"input": torch.tensor([[0, 3, 3, 9, 0], [1, 7, 0, 3, 2]])}),
    Case("mha_self_causal", lambda: nn.MultiheadAttention(8, 2, batch_first=True),
         lambda g: {"input": R(g, 2, 5, 8), "attn_mask": causal_mask(5)}, forward=mha_self),
    Case("mha_cross_kpm", lambda: nn.MultiheadAttention(6, 3, batch_first=True), mha_cross_inputs, forward=mha_cross),
    Case("mse", lambda: nn.MSELoss(), loss_inputs(lambda g: R(g, 4, 3), lambda g: R(g, 4, 3), True), loss_forward),
    Case("mse_sum", lambda: nn.MSELoss(reduction="sum"), loss_inputs(lambda g: R(g, 2, 3, 2), lambda g: R(g, 2, 3, 2), True),
         loss_forward),
    Case("l1", lambda: nn.L1Loss(), loss_inputs(lambda g: R(g, 4, 3), lambda g: R(g, 4, 3), True), loss_forward),
    Case("l1_none", lambda: nn.L1Loss(reduction="none"), loss_inputs(lambda g: R(g, 5), lambda g: R(g, 5), True),
         loss_forward),
    Case("cross_entropy", lambda: nn.CrossEntropyLoss(), loss_inputs(lambda g: R(g, 6, 5), lambda g: I(g, 5, 6)),
         loss_forward),
    # Class 2 is ignored (its targets contribute nothing); per-class weights.
    Case("cross_entropy_weight_ignore", lambda: nn.CrossEntropyLoss(weight=W(5), ignore_index=2),
         loss_inputs(lambda g: R(g, 8, 5), lambda g: torch.tensor([0, 2, 4, 1, 2, 3, 0, 4])), loss_forward),
    Case("cross_entropy_smoothing", lambda: nn.CrossEntropyLoss(label_smoothing=0.15),
         loss_inputs(lambda g: R(g, 6, 5), lambda g: I(g, 5, 6)), loss_forward),
    Case("cross_entropy_weight_smoothing_ignore",
         lambda: nn.CrossEntropyLoss(weight=W(5), label_smoothing=0.2, ignore_index=-100),
         loss_inputs(lambda g: R(g, 7, 5), lambda g: torch.tensor([1, -100, 4, 0, 3, -100, 2])), loss_forward),
    Case("cross_entropy_probs", lambda: nn.CrossEntropyLoss(),
         loss_inputs(lambda g: R(g, 6, 5), lambda g: U(g, 6, 5).softmax(1)), loss_forward),
    Case("cross_entropy_probs_weight_smoothing", lambda: nn.CrossEntropyLoss(weight=W(4), label_smoothing=0.1),
         loss_inputs(lambda g: R(g, 5, 4), lambda g: U(g, 5, 4).softmax(1)), loss_forward),
    # [N, C, d] logits, [N, d] targets, no reduction.
    Case("cross_entropy_kdim_none", lambda: nn.CrossEntropyLoss(reduction="none"),
         loss_inputs(lambda g: R(g, 3, 4, 5), lambda g: I(g, 4, 3, 5)), loss_forward),
    Case("cross_entropy_sum", lambda: nn.CrossEntropyLoss(reduction="sum"),
         loss_inputs(lambda g: R(g, 6, 5), lambda g: I(g, 5, 6)), loss_forward),
    Case("nll_weight", lambda: nn.NLLLoss(weight=W(5)),
         loss_inputs(lambda g: R(g, 6, 5), lambda g: torch.tensor([0, -100, 4, 1, 1, 3])), loss_forward),
    Case("bce_weight", lambda: nn.BCELoss(weight=W(4)),
         loss_inputs(lambda g: U(g, 3, 4, lo=0.05, hi=0.95), lambda g: U(g, 3, 4)), loss_forward),
    Case("bce_sum", lambda: nn.BCELoss(reduction="sum"),
         loss_inputs(lambda g: U(g, 5, lo=0.05, hi=0.95), lambda g: (U(g, 5) > 0.5).to(F64)), loss_forward),
    Case("bce_logits_pos_weight", lambda: nn.BCEWithLogitsLoss(weight=W(4), pos_weight=W(4) * 2.0),
         loss_inputs(lambda g: R(g, 3, 4, scale=4.0), lambda g: U(g, 3, 4)), loss_forward),
    Case("bce_logits_pos_weight_sum", lambda: nn.BCEWithLogitsLoss(pos_weight=W(3), reduction="sum"),
         loss_inputs(lambda g: R(g, 2, 3, scale=4.0), lambda g: (U(g, 2, 3) > 0.5).to(F64)), loss_forward),
]


def run_case(case, out):
    g = gen_for(case.name)
    torch.manual_seed(zlib.crc32(case.name.encode()))
    m = case.make().to(F64)
    if case.randomize:
        case.randomize(m, g)
    for k, v in m.state_dict().items():
        out[f"{case.name}.state.{k}"] = v.clone()
    for i, mode in enumerate(case.steps):
        p = case.name if len(case.steps) == 1 else f"{case.name}.step{i}"
        m.train(mode == TRAIN)
        m.zero_grad(set_to_none=True)
        x = case.inputs(g)
        for k, v in x.items():
            if k.startswith("input") and v.is_floating_point():
                v.requires_grad_(True)
            out[f"{p}.{k}"] = v.detach().clone()
        y = case.forward(m, x)
        if isinstance(y, tuple):  # MultiheadAttention: (output, averaged weights)
            y, w = y
            out[f"{p}.output_weights"] = w.detach().clone()
        out[f"{p}.output"] = y.detach().clone()
        gy = R(g, *y.shape)
        out[f"{p}.grad_output"] = gy
        y.backward(gy)
        for k, v in x.items():
            if v.requires_grad:
                out[f"{p}.grad_{k}"] = v.grad.clone()
        for k, v in m.named_parameters():
            assert v.grad is not None, (case.name, k)
            out[f"{p}.grad.{k}"] = v.grad.clone()
        for k, v in m.named_buffers():
            if k.startswith("running_") or k == "num_batches_tracked":
                out[f"{p}.buffer.{k}"] = v.clone()


DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.int64: "I64", torch.bool: "BOOL"}


def safetensors_bytes(tensors, metadata):
    # Python safetensors' layout: data ordered by dtype size (descending) then name; JSON
    # header with sorted keys, padded with spaces to a multiple of 8 bytes.
    names = sorted(tensors, key=lambda k: (-tensors[k].element_size(), k))
    header, offset, blobs = {"__metadata__": metadata}, 0, []
    for k in names:
        t = tensors[k].detach().contiguous()
        data = (t.to(torch.uint8) if t.dtype == torch.bool else t).numpy().tobytes()
        header[k] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    h = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def parse_safetensors(raw):
    import numpy as np
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data, out = raw[8 + n:], {}
    np_dt = {"F64": np.float64, "F32": np.float32, "I64": np.int64, "BOOL": np.bool_}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        out[k] = torch.from_numpy(np.frombuffer(data[b:e], dtype=np_dt[v["dtype"]]).copy()).reshape(v["shape"])
    return out


def make_bytes():
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="Using padding='same' with even kernel lengths")
    out = {}
    for case in CASES:
        assert "." not in case.name
        run_case(case, out)
    meta = {"generator": "tests/golden/make_golden.py", "torch": torch.__version__, "cases": str(len(CASES))}
    return safetensors_bytes(out, meta)


def check(path):
    new = make_bytes()
    with open(path, "rb") as f:
        old = f.read()
    if new == old:
        print(f"make_golden: {path} is up to date ({len(old)} bytes, identical)")
        return True
    a, b = parse_safetensors(old), parse_safetensors(new)
    if a.keys() != b.keys():
        print(f"make_golden: {path} is stale: tensors only in the file: {sorted(a.keys() - b.keys())[:10]}, "
              f"only in the script's output: {sorted(b.keys() - a.keys())[:10]}")
        return False
    worst, bad = 0.0, []
    for k in sorted(a):
        x, y = a[k], b[k]
        if x.dtype != y.dtype or x.shape != y.shape:
            bad.append(f"{k}: {x.dtype}{list(x.shape)} vs {y.dtype}{list(y.shape)}")
        elif not x.is_floating_point():
            if not torch.equal(x, y):
                bad.append(f"{k}: values differ")
        elif x.numel():
            e = ((x - y).abs().max() / y.abs().max().clamp_min(1e-300)).item()
            worst = max(worst, e)
            if not e <= 1e-12:
                bad.append(f"{k}: relative difference {e:.3e}")
    if bad:
        print(f"make_golden: {path} is stale (regenerate with make_golden.py):\n  " + "\n  ".join(bad[:20]))
        return False
    print(f"make_golden: {path}: bytes differ (torch {torch.__version__} or this CPU rounds differently) but "
          f"every tensor agrees, max relative difference {worst:.2e}")
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "layers.safetensors"))
    ap.add_argument("--check", metavar="PATH")
    args = ap.parse_args()
    if args.check:
        sys.exit(0 if check(args.check) else 1)
    data = make_bytes()
    with open(args.out, "wb") as f:
        f.write(data)
    print(f"make_golden: wrote {len(CASES)} cases to {args.out} ({len(data)} bytes, torch {torch.__version__})")


if __name__ == "__main__":
    main()
