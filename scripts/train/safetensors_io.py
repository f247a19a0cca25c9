"""A small safetensors writer and reader (F32 only, which is all our checkpoints hold).

Layout: 8-byte little-endian header length n, then n bytes of JSON header, then the raw tensor
bytes. The header maps each name to {"dtype": "F32", "shape": [...], "data_offsets": [b, e]}
(offsets relative to the first byte after the header) and may hold "__metadata__", a map of
string to string. We pad the header with spaces so the data starts at a multiple of 8 bytes.
Tensors are written in sorted name order, back to back.
"""

from __future__ import annotations

import json
import struct
from typing import Dict, Mapping, Optional, Tuple

import numpy as np

_DTYPES = {"F32": np.dtype("<f4")}


def write_safetensors(path: str, tensors: Mapping[str, "np.ndarray"], metadata: Optional[Mapping[str, str]] = None) -> None:
    """tensors: name -> array-like convertible to float32 (numpy arrays or CPU torch tensors)."""
    header: Dict[str, object] = {}
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError(f"__metadata__ must map str to str; got {k!r}: {type(v).__name__}")
        header["__metadata__"] = dict(metadata)
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name]
        if hasattr(t, "detach"):
            t = t.detach().cpu().numpy()
        arr = np.ascontiguousarray(np.asarray(t), dtype=_DTYPES["F32"])
        raw = arr.tobytes(order="C")
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * ((8 - len(hbytes) % 8) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(hbytes)))
        fh.write(hbytes)
        for raw in blobs:
            fh.write(raw)


def read_safetensors(path: str) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    """Returns (name -> float32 array, metadata). Checks offsets cover the data exactly."""
    with open(path, "rb") as fh:
        data = fh.read()
    if len(data) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ValueError(f"{path}: header length {n} runs past the end of the file")
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    body = memoryview(data)[8 + n :]
    meta = header.pop("__metadata__", {}) or {}
    out: Dict[str, np.ndarray] = {}
    spans = []
    for name, info in header.items():
        dt = _DTYPES.get(info["dtype"])
        if dt is None:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        b, e = info["data_offsets"]
        shape = tuple(int(s) for s in info["shape"])
        count = int(np.prod(shape)) if shape else 1
        if e - b != count * dt.itemsize or e > len(body) or b < 0:
            raise ValueError(f"{path}: tensor {name} has bad data_offsets {b}..{e} for shape {shape}")
        out[name] = np.frombuffer(body[b:e], dtype=dt).reshape(shape).copy()
        spans.append((b, e))
    spans.sort()
    pos = 0
    for b, e in spans:
        if b != pos:
            raise ValueError(f"{path}: tensor data has a gap or overlap at byte {b}")
        pos = e
    if pos != len(body):
        raise ValueError(f"{path}: {len(body) - pos} trailing bytes after the tensor data")
    return out, dict(meta)
