#!/usr/bin/python3
"""Measure training throughput (tokens/s) on this machine: the teacher preset (~1.1M params), the
micro preset (~0.29M) alone, and micro distilled from the teacher, at T=128.

Random token ids (speed does not depend on the text). Each setting runs a few warm-up steps and
then `--steps` timed steps; the median step time is reported, since the cores are shared.

  /usr/bin/python3 scripts/train/bench_train.py --batch-sizes 16 32 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from itera_model import IteraConfig, IteraLite  # noqa: E402
from train import PRESETS, kd_loss, make_optimizer  # noqa: E402


def bench(student: IteraLite, teacher, B: int, S: int, steps: int, warmup: int) -> dict:
    V = student.config.vocab_size
    opt = make_optimizer(student, 1e-3, 0.1)
    g = torch.Generator().manual_seed(0)
    student.train()
    times = []
    for i in range(warmup + steps):
        x = torch.randint(0, V, (B, S), generator=g)
        y = torch.randint(0, V, (B, S), generator=g)
        t0 = time.perf_counter()
        logits, aux = student(x, with_aux=True, vocab_last=False)
        loss = F.cross_entropy(logits, y) + 0.01 * aux
        if teacher is not None:
            with torch.no_grad():
                t_logits = teacher(x, vocab_last=False)
            loss = 0.5 * kd_loss(logits, t_logits, 2.0) + 0.5 * loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return {"batch": B, "seq": S, "median_step_s": round(med, 4), "tokens_per_s": round(B * S / med),
            "best_tokens_per_s": round(B * S / min(times))}


def main() -> int:
    p = argparse.ArgumentParser(description="Training throughput of the teacher, the micro student, and KD.")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32])
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--vocab", type=int, default=2000)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    teacher_cfg = IteraConfig(vocab_size=a.vocab, **PRESETS["teacher"])
    micro_cfg = IteraConfig(vocab_size=a.vocab, **PRESETS["micro"])
    rows = []
    for B in a.batch_sizes:
        for name in ("teacher", "micro", "micro+kd"):
            student = IteraLite(teacher_cfg if name == "teacher" else micro_cfg)
            teacher = IteraLite(teacher_cfg).eval() if name == "micro+kd" else None
            r = {"setting": name, "params": student.num_parameters(), "threads": a.threads}
            r.update(bench(student, teacher, B, a.seq, a.steps, a.warmup))
            print(json.dumps(r), flush=True)
            rows.append(r)
    try:
        load = os.getloadavg()
        print(f"load average during the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
