#!/usr/bin/python3
"""Convert a checkpoint (torch.save form, or one of our safetensors) to our safetensors export,
optionally also the torch.save form, with the tokenizer copied beside it.

  /usr/bin/python3 scripts/train/export.py ../shared/reference/checkpoints/itera_lite_micro_distilled.pt \
      --out /tmp/micro --tokenizer ../shared/reference/tokenizers/tokenizer_2000.json
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from itera_model import load_checkpoint  # noqa: E402
from train import save_model  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description="Write an Itera-Lite checkpoint as safetensors (spec names, F32).")
    p.add_argument("checkpoint", help=".pt (torch.save) or .safetensors")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--name", default="model", help="file stem: <out>/<name>.safetensors")
    p.add_argument("--tokenizer", help="tokenizer JSON to copy beside it as tokenizer.json")
    p.add_argument("--top-k", type=int, help="top_k_experts (not visible in shapes; default 2 or the file's config)")
    p.add_argument("--torch-save", action="store_true", help="also write <name>.pt ({'model_state_dict': ...})")
    a = p.parse_args()
    model, meta = load_checkpoint(a.checkpoint, top_k_experts=a.top_k)
    extra = {k: v for k, v in meta.items() if k not in ("config", "format", "tied_embeddings", "parameters", "tokenizer")}
    extra["source"] = os.path.basename(a.checkpoint)
    path = save_model(model, a.out, a.name, extra, a.tokenizer, a.torch_save)
    print(f"{path}: {model.num_parameters():,} parameters, config {model.config.to_json()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
