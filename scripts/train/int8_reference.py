#!/usr/bin/python3
"""PyTorch dynamic INT8 reference for the runtime's INT8 import (issue: quantization).

Builds a dynamically quantized (torch.quantization.quantize_dynamic, qint8 weights) copy of an
Itera-Lite checkpoint, saves its state_dict with torch.save (the file a user would bring), and
computes on the given token sequences:
  - logits of PyTorch's own dynamic INT8 kernels,
  - logits of the same model in FP32 with the dequantized weights (the oracle both are held to).

  /usr/bin/python3 scripts/train/int8_reference.py --checkpoint ckpt.pt --cases cases.json --out DIR
cases.json: [[ids...], ...]. Writes DIR/model_int8.pt, DIR/int8_torch.f32, DIR/dequantized.f32
(little-endian float32, the cases' positions one after another, [position][vocab]).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itera_model import load_checkpoint  # noqa: E402


def plain_linears(model: nn.Module) -> None:
    """Our model computes its Linears through a subclass; quantize_dynamic matches nn.Linear by
    exact type, so swap in plain nn.Linear modules holding the same (untied) weights."""
    for name, mod in list(model.named_modules()):
        for cname, child in list(mod.named_children()):
            if isinstance(child, nn.Linear) and type(child) is not nn.Linear:
                lin = nn.Linear(child.in_features, child.out_features, bias=child.bias is not None)
                with torch.no_grad():
                    lin.weight.copy_(child.weight)
                    if child.bias is not None:
                        lin.bias.copy_(child.bias)
                setattr(mod, cname, lin)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--cases", required=True, help="JSON list of token id lists")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    os.makedirs(a.out, exist_ok=True)
    cases = json.load(open(a.cases))
    model, _ = load_checkpoint(a.checkpoint)
    model.eval()
    plain_linears(model)
    qmodel = torch.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    torch.save(qmodel.state_dict(), os.path.join(a.out, "model_int8.pt"))

    # the FP32 oracle: the same model with every quantized Linear's weight dequantized
    fmodel, _ = load_checkpoint(a.checkpoint)
    fmodel.eval()
    plain_linears(fmodel)
    qmods = dict(qmodel.named_modules())
    with torch.no_grad():
        for name, mod in fmodel.named_modules():
            if type(mod) is nn.Linear:
                q = qmods[name]
                w = q.weight().dequantize()
                mod.weight = nn.Parameter(w.clone())
                b = q.bias()
                if b is not None:
                    mod.bias = nn.Parameter(b.clone())
    outs = {"int8_torch.f32": [], "dequantized.f32": []}
    with torch.no_grad():
        for ids in cases:
            x = torch.tensor([ids], dtype=torch.long)
            outs["int8_torch.f32"].append(qmodel(x)[0].float())
            outs["dequantized.f32"].append(fmodel(x)[0].float())
    for fname, parts in outs.items():
        torch.cat(parts, 0).numpy().astype("<f4").tofile(os.path.join(a.out, fname))
    print(json.dumps({"positions": sum(len(c) for c in cases), "out": a.out}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
