#!/usr/bin/env python3
"""Writes the committed seed corpus of the loader fuzz targets (tests/fuzz/corpus/).
Run once by a developer with Debian's python3-torch: /usr/bin/python3 tests/fuzz/make_corpus.py
The files are small valid inputs plus the malformed cases the loaders must reject."""
import io
import json
import os
import struct
import zipfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ST = os.path.join(HERE, "corpus", "safetensors")
PT = os.path.join(HERE, "corpus", "pytorch")


def st_bytes(header, data, pad=True):
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def write(folder, name, data):
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def safetensors_corpus():
    f32 = struct.pack("<4f", 1.0, -2.0, 3.5, 0.25)
    write(ST, "valid_f32", st_bytes({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}, f32))
    write(ST, "valid_mixed_unpadded", st_bytes({
        "__metadata__": {"format": "pt"},
        "a": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]},
        "b": {"dtype": "I64", "shape": [], "data_offsets": [8, 16]},
        "c": {"dtype": "BOOL", "shape": [3], "data_offsets": [16, 19]},
        "e": {"dtype": "F32", "shape": [0, 4], "data_offsets": [19, 19]}},
        struct.pack("<dq", 2.5, 7) + b"\x01\x00\x01", pad=False))
    write(ST, "too_short", b"abc")
    write(ST, "huge_header_length", b"\xff" * 8 + b"{}")
    write(ST, "bad_json", st_bytes({}, b"")[:8] + b"{nope   ")
    write(ST, "offsets_outside", st_bytes({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 16]}}, b"\0" * 8))
    write(ST, "size_mismatch", st_bytes({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8))
    write(ST, "overlap", st_bytes({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                   "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12))
    write(ST, "unknown_dtype", st_bytes({"a": {"dtype": "X9", "shape": [], "data_offsets": [0, 0]}}, b""))
    write(ST, "huge_shape", st_bytes({"a": {"dtype": "F32", "shape": [1 << 40, 1 << 40], "data_offsets": [0, 0]}}, b""))
    write(ST, "negative_shape", st_bytes({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}}, b""))


def pytorch_corpus():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    good = buf.getvalue()
    write(PT, "valid_linear_bn", good)
    buf = io.BytesIO()
    torch.save({"t": torch.arange(6, dtype=torch.float64).reshape(2, 3).t(), "flag": torch.tensor([True, False])}, buf)
    write(PT, "valid_strided_bool", buf.getvalue())
    write(PT, "truncated_half", good[: len(good) // 2])
    write(PT, "not_zip", b"PK nope, just text")
    write(PT, "evil_global", good.replace(b"collections\nOrderedDict", b"subprocess\nPopenxxxxxxx"))
    # The same entries re-packed: compressed (rejected) and zip64 (accepted).
    src = zipfile.ZipFile(io.BytesIO(good))
    for name, kwargs in (("deflated", {"compression": zipfile.ZIP_DEFLATED}), ("zip64", {})):
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", **kwargs) as z:
            for info in src.infolist():
                with z.open(info.filename, "w", force_zip64=(name == "zip64")) as w:
                    w.write(src.read(info.filename))
        write(PT, name, out.getvalue())
    buf = io.BytesIO()
    torch.save([torch.zeros(2)], buf)  # a list, not a state dict
    write(PT, "not_a_dict", buf.getvalue())
    buf = io.BytesIO()
    torch.save({"h": torch.zeros(2, dtype=torch.float16)}, buf)  # unsupported dtype
    write(PT, "half_tensor", buf.getvalue())
    write(PT, "self_reference", self_reference(src))
    # An expanded view (strides 0) is legal; the same with 65535 x 65535 elements over one
    # stored float must be refused, not allocated.
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(1).expand(1000, 1000)}, buf)
    write(PT, "expanded_view", buf.getvalue())
    write(PT, "expanded_huge", buf.getvalue().replace(b"M\xe8\x03", b"M\xff\xff"))


def self_reference(src):
    """The archive of a valid file with data.pkl replaced by a dict that contains itself:
    the loader must reject it without leaking the cycle."""
    import collections
    import pickle
    d = collections.OrderedDict()
    d["self"] = d
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for info in src.infolist():
            data = pickle.dumps(d, protocol=2) if info.filename.endswith("data.pkl") else src.read(info.filename)
            z.writestr(info.filename, data)
    return out.getvalue()


if __name__ == "__main__":
    os.makedirs(ST, exist_ok=True)
    os.makedirs(PT, exist_ok=True)
    safetensors_corpus()
    pytorch_corpus()
    print("corpus written:", len(os.listdir(ST)), "safetensors,", len(os.listdir(PT)), "pytorch")
