#!/usr/bin/python3
"""Bits per token and per character of a trained model on a corpus split, in PyTorch.

For choices made while training (on the validation split), before the runtime reads a model: the
TypeScript side does not read position-free models yet. Every token of the split is predicted
once, with context: windows of --window tokens advance by --window/2, and each window scores only
its second half (the first window scores all of it), so every prediction after the first half-window
sees at least window/2 tokens of context. Characters are counted as `itera score` counts them: the
split's .txt (UTF-16 code units, documents joined by a blank line); the tokens include one <EOS>
per document.

  /usr/bin/python3 scripts/train/score.py --model run/model.safetensors --data corpus/ [--split val]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from itera_model import load_checkpoint  # noqa: E402


@torch.no_grad()
def score_stream(model, ids: torch.Tensor, window: int, batch: int = 8) -> float:
    """Sum of -ln p over ids[1:], each predicted once (see the module docstring)."""
    n = len(ids)
    window = min(window, n)
    starts = list(range(0, n - window + 1, max(window // 2, 1)))
    if starts[-1] + window < n:
        starts.append(n - window)  # the tail: a full window ending at the last token
    total = 0.0
    scored_to = 1  # the next target position not yet scored
    for i in range(0, len(starts), batch):
        group = starts[i : i + batch]
        w = torch.stack([ids[s : s + window] for s in group])
        nll = F.cross_entropy(model(w[:, :-1], vocab_last=False), w[:, 1:], reduction="none")  # [B, window-1]
        for j, s in enumerate(group):
            # row j predicts target positions s+1 .. s+window-1; keep the ones not scored yet
            first = max(scored_to, s + 1)
            total += nll[j, first - s - 1 :].sum().item()
            scored_to = s + window
    return total


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help=".safetensors or .pt")
    p.add_argument("--data", required=True, help="corpus directory (<split>.bin, <split>.txt, meta.json)")
    p.add_argument("--split", default="val", help="val (default; make choices on it) or test")
    p.add_argument("--window", type=int, help="window (default: T with positions, 512 without)")
    p.add_argument("--max-tokens", type=int, help="score only the first N tokens (characters then estimated "
                   "from the split's characters per token)")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    model, _ = load_checkpoint(a.model)
    cfg = model.config
    window = a.window or (cfg.max_seq_length if cfg.position_embedding else 512)
    if cfg.position_embedding and window > cfg.max_seq_length:
        raise SystemExit(f"--window {window} > T = {cfg.max_seq_length} for a model with positions")
    meta_path = os.path.join(a.data, "meta.json")
    meta = json.load(open(meta_path)) if os.path.exists(meta_path) else {}
    dtype = {"uint16": "<u2", "int32": "<i4"}[meta.get("dtype", "uint16")]
    ids = torch.from_numpy(np.fromfile(os.path.join(a.data, f"{a.split}.bin"), dtype=dtype).astype(np.int64))
    with open(os.path.join(a.data, f"{a.split}.txt"), encoding="utf-8") as fh:
        chars_all = len(fh.read().encode("utf-16-le")) // 2
    chars_per_token = chars_all / len(ids)
    if a.max_tokens:
        ids = ids[: a.max_tokens]
    t0 = time.time()
    nats = score_stream(model, ids, window)
    predicted = len(ids) - 1
    chars = chars_all if not a.max_tokens else predicted * chars_per_token
    out = {"model": a.model, "split": a.split, "window": window, "tokens": len(ids), "predicted": predicted,
           "characters": round(chars), "characters_per_token": chars_per_token,
           "nats_per_token": nats / predicted, "bits_per_token": nats / predicted / math.log(2),
           "bits_per_character": nats / math.log(2) / chars, "perplexity": math.exp(nats / predicted),
           "parameters": model.num_parameters(), "position_embedding": cfg.position_embedding,
           "seconds": round(time.time() - t0, 1)}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
