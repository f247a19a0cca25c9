#!/usr/bin/python3
"""Train an Itera-Lite model on a tokenized corpus, optionally distilling from a teacher.

See scripts/train/README.md for the corpus format, the loss and measured speeds.
Run with Debian's /usr/bin/python3 (it has torch); e.g.

  /usr/bin/python3 scripts/train/train.py --data corpus/ --out runs/micro --preset micro --steps 2000
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import signal
import sys
import time
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from itera_model import IteraConfig, IteraLite, default_moe_layers, load_checkpoint  # noqa: E402
from safetensors_io import write_safetensors  # noqa: E402

EOS_ID = 3

# Two configurations of the original (vocab 2000, T 128). The teacher's shape is the one whose
# parameter count matches the report's 1,118,496.
PRESETS: Dict[str, Dict] = {
    "micro": dict(hidden_size=64, num_layers=3, ssm_state_size=8, ssm_conv_kernel=4, ssm_expand_factor=2,
                  num_experts=4, expert_size=32, top_k_experts=2, moe_layers=[1], max_seq_length=128),
    "teacher": dict(hidden_size=128, num_layers=4, ssm_state_size=8, ssm_conv_kernel=4, ssm_expand_factor=2,
                    num_experts=4, expert_size=64, top_k_experts=2, moe_layers=[1, 3], max_seq_length=128),
}


# ---------------------------------------------------------------------------------------------
# Corpus


def read_json(path: str):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


class Corpus:
    """A directory with train.bin, val.bin (flat little-endian token ids, documents separated by
    <EOS>=3), tokenizer.json and optionally meta.json ({"dtype": "uint16" | "int32", ...})."""

    def __init__(self, path: str, val_fraction_if_missing: float = 0.05):
        self.path = path
        meta_path = os.path.join(path, "meta.json")
        self.meta = read_json(meta_path) if os.path.exists(meta_path) else {}
        dtype = {"uint16": "<u2", "int32": "<i4"}.get(self.meta.get("dtype", "uint16"))
        if dtype is None:
            raise SystemExit(f"{meta_path}: dtype must be 'uint16' or 'int32', got {self.meta.get('dtype')!r}")
        self.eos_id = int(self.meta.get("eos_id", EOS_ID))
        train = np.fromfile(os.path.join(path, "train.bin"), dtype=dtype).astype(np.int64)
        val_path = os.path.join(path, "val.bin")
        if os.path.exists(val_path):
            val = np.fromfile(val_path, dtype=dtype).astype(np.int64)
        else:
            cut = int(len(train) * (1 - val_fraction_if_missing))
            print(f"note: no val.bin; holding out the last {len(train) - cut} training tokens", flush=True)
            train, val = train[:cut], train[cut:]
        if train.size and train.min() < 0:
            raise SystemExit("negative token id in train.bin")
        self.train = torch.from_numpy(train)
        self.val = torch.from_numpy(val)
        self.tokenizer_path = os.path.join(path, "tokenizer.json")
        self.tokenizer_vocab: Optional[int] = None
        if os.path.exists(self.tokenizer_path):
            tok = read_json(self.tokenizer_path)
            self.tokenizer_vocab = int(tok["vocab_size"]) if "vocab_size" in tok else None
        max_id = int(max(self.train.max() if len(self.train) else 0, self.val.max() if len(self.val) else 0))
        self.vocab_size = int(self.meta.get("vocab_size") or self.tokenizer_vocab or max_id + 1)
        if max_id >= self.vocab_size:
            raise SystemExit(f"token id {max_id} >= vocab size {self.vocab_size}")
        # starts of documents: position 0 and every position after an <EOS>
        eos = (self.train == self.eos_id).nonzero().flatten() + 1
        self.doc_starts = torch.cat([torch.zeros(1, dtype=torch.long), eos])


class BatchSampler:
    """Deterministic windows of S+1 tokens from the training stream, drawn with a seeded generator.

    mode 'random': any start position; mode 'doc': starts at document starts only (position 0 of
    the model then sees the start of a document, as in generation from a prompt).
    """

    def __init__(self, corpus: Corpus, batch_size: int, seq_len: int, seed: int, mode: str = "random"):
        self.data = corpus.train
        self.B, self.S = batch_size, seq_len
        n = len(self.data)
        if n < seq_len + 1:
            raise SystemExit(f"training stream has {n} tokens; need at least seq_len+1 = {seq_len + 1}")
        self.gen = torch.Generator().manual_seed(seed)
        self.mode = mode
        if mode == "doc":
            starts = corpus.doc_starts
            self.starts = starts[starts + seq_len + 1 <= n]
            if len(self.starts) == 0:
                raise SystemExit("no document start has seq_len+1 tokens after it")
        self.max_start = n - (seq_len + 1)
        self.offsets = torch.arange(seq_len + 1)

    def next(self) -> Tuple[torch.Tensor, torch.Tensor]:
        if self.mode == "doc":
            pick = torch.randint(len(self.starts), (self.B,), generator=self.gen)
            starts = self.starts[pick]
        else:
            starts = torch.randint(self.max_start + 1, (self.B,), generator=self.gen)
        win = self.data[starts.unsqueeze(1) + self.offsets]  # [B, S+1]
        return win[:, :-1], win[:, 1:]


def val_windows(val: torch.Tensor, seq_len: int, max_tokens: int) -> torch.Tensor:
    """Non-overlapping windows of S+1 tokens (stride S) over the start of the validation stream."""
    n = min(len(val), max_tokens + 1)
    count = (n - 1) // seq_len
    if count == 0:
        return torch.empty(0, seq_len + 1, dtype=torch.long)
    idx = torch.arange(count).unsqueeze(1) * seq_len + torch.arange(seq_len + 1)
    return val[idx]


@torch.no_grad()
def evaluate(model: IteraLite, windows: torch.Tensor, batch_size: int) -> float:
    """Mean cross-entropy (nats per token) over every predicted token of the windows."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(windows), batch_size):
        w = windows[i : i + batch_size]
        logits = model(w[:, :-1], vocab_last=False)  # [B, V, S]
        total += F.cross_entropy(logits, w[:, 1:], reduction="sum").item()
        count += w[:, 1:].numel()
    model.train(was_training)
    return total / max(count, 1)


# ---------------------------------------------------------------------------------------------
# Loss and optimisation


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float, dim: int = 1) -> torch.Tensor:
    """T^2 * KL(softmax(teacher/T) || softmax(student/T)) over the vocabulary dimension `dim`
    (1 for the [B, V, S] layout used in training), averaged over tokens."""
    s = F.log_softmax(student_logits / temperature, dim=dim)
    t = F.log_softmax(teacher_logits / temperature, dim=dim)
    tokens = student_logits.numel() // student_logits.shape[dim]
    return F.kl_div(s, t, log_target=True, reduction="sum") / tokens * temperature**2


def lr_at(step: int, total: int, peak: float, warmup: int, min_ratio: float) -> float:
    """Linear warmup from 0 to peak over `warmup` steps, then cosine down to peak*min_ratio."""
    if warmup > 0 and step < warmup:
        return peak * (step + 1) / warmup
    span = max(total - warmup, 1)
    progress = min(max(step - warmup, 0) / span, 1.0)
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(model: IteraLite, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW; weight decay on matrices named *.weight (linears, embeddings) only — not on norms,
    biases, the conv kernel or the SSM's A_log, B, C, D."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if name.endswith(".weight") and p.dim() == 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), eps=1e-8)


# ---------------------------------------------------------------------------------------------
# Export


def export_state(model: IteraLite) -> Dict[str, torch.Tensor]:
    """The spec's state_dict names; tied lm_head.weight appears as well (same tensor)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def save_model(model: IteraLite, out_dir: str, stem: str, extra_meta: Dict[str, str],
               tokenizer_path: Optional[str], torch_save: bool) -> str:
    """Writes <stem>.safetensors (and <stem>.pt with --torch-save), tokenizer.json beside it."""
    os.makedirs(out_dir, exist_ok=True)
    sd = export_state(model)
    meta = {"format": "itera-lite", "config": model.config.to_json(), "tied_embeddings": "true",
            "parameters": str(model.num_parameters())}
    meta.update(extra_meta)
    if tokenizer_path and os.path.exists(tokenizer_path):
        dst = os.path.join(out_dir, "tokenizer.json")
        if os.path.abspath(dst) != os.path.abspath(tokenizer_path):
            shutil.copyfile(tokenizer_path, dst)
        meta["tokenizer"] = "tokenizer.json"
    path = os.path.join(out_dir, stem + ".safetensors")
    tmp = path + ".tmp"
    write_safetensors(tmp, sd, meta)
    os.replace(tmp, path)
    if torch_save:
        # state_dict() keeps embedding.weight and lm_head.weight as one tensor: one shared storage
        torch.save({"model_state_dict": model.state_dict(), "config": model.config.to_json()},
                   os.path.join(out_dir, stem + ".pt"))
    return path


# ---------------------------------------------------------------------------------------------
# CLI


def build_config(args, vocab_size: int) -> IteraConfig:
    cfg: Dict = {}
    if args.preset:
        cfg.update(PRESETS[args.preset])
    if args.config:
        cfg.update(read_json(args.config))
    flag_map = {"d": "hidden_size", "layers": "num_layers", "state": "ssm_state_size", "kernel": "ssm_conv_kernel",
                "expand": "ssm_expand_factor", "experts": "num_experts", "expert_size": "expert_size",
                "top_k": "top_k_experts", "max_seq": "max_seq_length"}
    for flag, key in flag_map.items():
        v = getattr(args, flag)
        if v is not None:
            cfg[key] = v
    if args.no_pos_embedding:
        cfg["position_embedding"] = False
    if cfg.get("position_embedding", True) is False and args.seq_len:
        # without positions T only records the training window
        cfg["max_seq_length"] = args.seq_len
    if args.moe_layers is not None:
        cfg["moe_layers"] = [int(x) for x in args.moe_layers.split(",") if x.strip() != ""]
    elif "moe_layers" not in cfg or args.layers is not None:
        cfg["moe_layers"] = default_moe_layers(cfg.get("num_layers", IteraConfig.num_layers))
    cfg["vocab_size"] = args.vocab_size or cfg.get("vocab_size") or vocab_size
    if cfg["vocab_size"] < vocab_size:
        raise SystemExit(f"vocab_size {cfg['vocab_size']} is smaller than the corpus vocabulary {vocab_size}")
    return IteraConfig.from_dict(cfg)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Train an Itera-Lite model (SSM + MoE) on a tokenized corpus, optionally by distillation.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("data and output")
    g.add_argument("--data", required=True, help="corpus directory: train.bin, val.bin, tokenizer.json, [meta.json]")
    g.add_argument("--out", required=True, help="output directory for checkpoints and the log")
    g.add_argument("--torch-save", action="store_true", help="also write model.pt ({'model_state_dict': ...})")
    g.add_argument("--sampling", choices=["random", "doc"], default="random",
                   help="training windows start anywhere, or at document starts only")
    g = p.add_argument_group("model (a preset, then --config JSON, then these flags)")
    g.add_argument("--preset", choices=sorted(PRESETS), help="micro (~0.29M at V=2000) or teacher (~1.1M)")
    g.add_argument("--config", help="JSON with IteraConfig keys (as in reference.json 'config')")
    g.add_argument("--init", help="start from these weights (.pt or .safetensors); its config wins")
    g.add_argument("--vocab-size", type=int, help="V (default: the corpus's)")
    g.add_argument("--d", type=int, help="hidden size")
    g.add_argument("--layers", type=int, help="number of layers L")
    g.add_argument("--state", type=int, help="SSM state size N")
    g.add_argument("--kernel", type=int, help="conv kernel K")
    g.add_argument("--expand", type=int, help="expand factor e (di = e*d)")
    g.add_argument("--experts", type=int, help="experts per MoE layer E")
    g.add_argument("--expert-size", type=int, help="expert / FFN hidden width f")
    g.add_argument("--top-k", type=int, help="experts per token k")
    g.add_argument("--moe-layers", help="comma-separated MoE layer indices ('' for none; default odd)")
    g.add_argument("--max-seq", type=int, help="T, rows of the position embedding")
    g.add_argument("--ssm-init", choices=["default", "wide"], default="default",
                   help="training init of the scan: default (delta 0.5, A = 1..N: forgets in ~10 tokens) or wide "
                        "(delta 0.1, A geometric over [1/64, 8]: time scales from ~1 to ~600 tokens)")
    g.add_argument("--no-pos-embedding", action="store_true",
                   help="no learned absolute positions: the conv and the scan carry order, the model runs "
                        "at any length, and --seq-len may exceed T")
    g = p.add_argument_group("optimisation")
    g.add_argument("--steps", type=int, help="optimizer steps (the default is 1000 unless --epochs or "
                   "--time-budget decides)")
    g.add_argument("--epochs", type=float, help="instead of --steps: this many passes' worth of training "
                   "tokens (steps = ceil(epochs * train tokens / (batch * seq-len)); windows are drawn at random, "
                   "so an epoch is a token count, not a permutation)")
    g.add_argument("--time-budget", help="total training time over all resumes, e.g. 90m, 2h, 1h30m, 600s. Alone, "
                   "the schedule's length is estimated from the speed of the first steps (so the run is not "
                   "reproducible across machines); with --steps/--epochs, training ends when the budget is spent")
    g.add_argument("--batch-size", type=int, default=16)
    g.add_argument("--seq-len", type=int, help="training window (default T; above T only without positions)")
    g.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    g.add_argument("--min-lr-ratio", type=float, default=0.1, help="final lr = lr * this")
    g.add_argument("--warmup", type=int, default=100, help="linear warmup steps")
    g.add_argument("--weight-decay", type=float, default=0.1)
    g.add_argument("--grad-clip", type=float, default=1.0, help="max global gradient norm (0: off)")
    g.add_argument("--dropout", type=float, default=0.0,
                   help="residual dropout while training (embedding and each block's branches; 0: off)")
    g.add_argument("--aux-weight", type=float, default=0.01, help="weight of the MoE load-balancing loss")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--threads", type=int, default=1, help="torch threads")
    g = p.add_argument_group("distillation")
    g.add_argument("--teacher", help="teacher checkpoint (.pt or .safetensors); enables distillation")
    g.add_argument("--kd-temperature", type=float, default=2.0)
    g.add_argument("--kd-alpha", type=float, default=0.5, help="weight of the distillation term")
    g = p.add_argument_group("progress and evaluation")
    g.add_argument("--log-every", type=int, default=20)
    g.add_argument("--eval-every", type=int, default=200)
    g.add_argument("--eval-tokens", type=int, default=65536, help="validation tokens per evaluation")
    g.add_argument("--eval-batch-size", type=int, default=32)
    g.add_argument("--eval-seq-len", type=int, help="validation window (default --seq-len)")
    g.add_argument("--patience", type=int, default=0,
                   help="stop after this many evaluations without a better validation loss (0: never)")
    g.add_argument("--quiet", action="store_true", help="only the final summary")
    g = p.add_argument_group("checkpoints and resuming")
    g.add_argument("--resume", action="store_true",
                   help="continue from <out>/checkpoint.pt if it exists (else start); the result is byte for byte "
                        "that of an uninterrupted run")
    g.add_argument("--ckpt-every", type=int, default=0, help="write the checkpoint every N steps (0: off)")
    g.add_argument("--ckpt-minutes", type=float, default=10.0,
                   help="write the checkpoint when this many minutes passed since the last one (0: off)")
    g.add_argument("--run-for", help="this invocation only: after this long (e.g. 50m) write the checkpoint and "
                   "exit with status 3; --resume continues")
    return p.parse_args(argv)


def fmt_time(sec: float) -> str:
    sec = int(max(sec, 0))
    return f"{sec // 3600}:{sec // 60 % 60:02d}:{sec % 60:02d}"


def parse_duration(text: str) -> float:
    """'90m', '2h', '1h30m', '45s', '1.5h' or plain seconds -> seconds."""
    t = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", t):
        return float(t)
    parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", t)
    if not parts or "".join(n + u for n, u in parts) != t:
        raise SystemExit(f"cannot read duration {text!r}: use e.g. 90m, 2h, 1h30m, 600s")
    return sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)


CKPT_NAME = "checkpoint.pt"
CKPT_VERSION = 1
# settings that change the weights: a resume must use the same ones
SCHEDULE_KEYS = ("batch_size", "seq_len", "lr", "min_lr_ratio", "warmup", "weight_decay", "grad_clip", "aux_weight",
                 "seed", "teacher", "kd_temperature", "kd_alpha", "sampling", "steps", "epochs", "time_budget",
                 "ssm_init", "dropout")
# keys added after checkpoints were already written: their value when a checkpoint lacks them
SCHEDULE_DEFAULTS = {"ssm_init": "default", "dropout": 0.0}
EXIT_PAUSED = 3  # --run-for ended this invocation; --resume continues


def rng_states(sampler: "BatchSampler") -> Dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "sampler": sampler.gen.get_state()}


def set_rng_states(states: Dict, sampler: "BatchSampler") -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    sampler.gen.set_state(states["sampler"])


def write_checkpoint(path: str, state: Dict) -> None:
    """Atomically: a temporary file, flushed to disk, then renamed over the old checkpoint."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        torch.save(state, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def train(args: argparse.Namespace) -> Tuple[IteraLite, Dict]:
    """Runs the training (or resumes it); returns the final model (eval mode) and a summary.

    Raises SystemExit with 128+signal after SIGINT/SIGTERM and EXIT_PAUSED after --run-for, in
    both cases once the checkpoint is written."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    random.seed(args.seed)
    if args.steps is not None and args.epochs is not None:
        raise SystemExit("--steps and --epochs are alternatives; give one")
    budget = parse_duration(args.time_budget) if args.time_budget else None
    run_for = parse_duration(args.run_for) if args.run_for else None
    corpus = Corpus(args.data)
    ckpt_path = os.path.join(args.out, CKPT_NAME)
    ck = None
    if args.resume and os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, map_location="cpu")
        if ck.get("version") != CKPT_VERSION:
            raise SystemExit(f"{ckpt_path}: checkpoint version {ck.get('version')}, expected {CKPT_VERSION}")
        saved = ck["args"]
        diff = [f"--{k.replace('_', '-')} {saved.get(k)!r} (now {getattr(args, k)!r})" for k in SCHEDULE_KEYS
                if saved.get(k, SCHEDULE_DEFAULTS.get(k)) != getattr(args, k)]
        if diff:
            raise SystemExit(f"{ckpt_path} was made with other settings: " + "; ".join(diff)
                             + ". Use the same ones, or another --out.")
        if ck["train_tokens"] != len(corpus.train):
            raise SystemExit(f"{ckpt_path}: trained on {ck['train_tokens']} tokens, the corpus now has {len(corpus.train)}")
        model = IteraLite(IteraConfig.from_dict(json.loads(ck["config"])))
    elif args.init:
        model, _ = load_checkpoint(args.init)
        if model.config.vocab_size < corpus.vocab_size:
            raise SystemExit("--init model's vocabulary is smaller than the corpus's")
        if not model.config.position_embedding and args.seq_len and args.seq_len != model.config.max_seq_length:
            # without positions T is the training window: a run in longer (or shorter) windows
            # records its own, which the model file then carries
            model.config.max_seq_length = args.seq_len
    else:
        model = IteraLite(build_config(args, corpus.vocab_size))
        if args.ssm_init == "wide":
            model.init_ssm_timescales(0.1, 1 / 64, 8.0)
    model.set_dropout(args.dropout)
    cfg = model.config
    S = args.seq_len or cfg.max_seq_length
    if S > cfg.max_seq_length and cfg.position_embedding:
        raise SystemExit(f"--seq-len {S} > max_seq_length {cfg.max_seq_length} (allowed only with --no-pos-embedding)")
    S_eval = args.eval_seq_len or S
    if S_eval > cfg.max_seq_length and cfg.position_embedding:
        raise SystemExit(f"--eval-seq-len {S_eval} > max_seq_length {cfg.max_seq_length}")
    teacher = None
    if args.teacher:
        teacher, _ = load_checkpoint(args.teacher)
        for p_ in teacher.parameters():
            p_.requires_grad_(False)
        if teacher.config.vocab_size != cfg.vocab_size:
            raise SystemExit(f"teacher vocab {teacher.config.vocab_size} != student vocab {cfg.vocab_size}")
        if teacher.config.position_embedding and teacher.config.max_seq_length < max(S, S_eval):
            raise SystemExit(f"teacher max_seq_length {teacher.config.max_seq_length} < --seq-len {max(S, S_eval)}")
    sampler = BatchSampler(corpus, args.batch_size, S, args.seed, args.sampling)
    vwin = val_windows(corpus.val, S_eval, args.eval_tokens)
    opt = make_optimizer(model, args.lr, args.weight_decay)
    tokens_per_step = args.batch_size * S
    if args.steps is not None:
        total = args.steps
    elif args.epochs is not None:
        total = max(1, math.ceil(args.epochs * len(corpus.train) / tokens_per_step))
    elif budget is not None:
        total = None  # estimated after the first steps (below)
    else:
        total = 1000
    os.makedirs(args.out, exist_ok=True)

    best = {"val_loss": float("inf"), "step": -1}
    state = {"step": 0, "bad_evals": 0, "train_seconds": 0.0, "last_eval": -1, "stop_reason": None}
    history: List[Dict] = []
    if ck is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        set_rng_states(ck["rng"], sampler)
        best = ck["best"]
        history = ck["history"]
        total = ck["total_steps"]
        state.update(step=ck["step"], bad_evals=ck["bad_evals"], train_seconds=ck["train_seconds"],
                     last_eval=ck["last_eval"], stop_reason=ck.get("stop_reason"))
    log = open(os.path.join(args.out, "train_log.jsonl"), "a" if ck is not None else "w")

    def say(msg: str) -> None:
        if not args.quiet:
            print(msg, flush=True)

    def checkpoint(finished: bool = False) -> None:
        write_checkpoint(ckpt_path, {
            "version": CKPT_VERSION, "config": cfg.to_json(), "args": {k: getattr(args, k) for k in SCHEDULE_KEYS},
            "data": os.path.abspath(args.data), "train_tokens": len(corpus.train), "model": model.state_dict(), "optimizer": opt.state_dict(),
            "rng": rng_states(sampler), "step": state["step"], "total_steps": total, "best": best,
            "bad_evals": state["bad_evals"], "last_eval": state["last_eval"], "history": history,
            "train_seconds": state["train_seconds"], "stop_reason": state["stop_reason"], "finished": finished})

    def summarize(elapsed_note: str) -> Dict:
        steps = state["step"]
        return {"steps": steps, "total_steps": total, "stop_reason": state["stop_reason"],
                "final_loss": last.get("loss"), "final_ce": last.get("ce"),
                "best_val_loss": best["val_loss"], "best_step": best["step"], "seconds": state["train_seconds"],
                "tokens_seen": steps * tokens_per_step, "epochs_seen": steps * tokens_per_step / len(corpus.train),
                "tokens_per_s_overall": steps * tokens_per_step / max(state["train_seconds"], 1e-9),
                "parameters": model.num_parameters(), "out": os.path.join(args.out, "model.safetensors"),
                "note": elapsed_note}

    last: Dict = {}
    if ck is not None and ck.get("finished"):
        say(f"{ckpt_path}: this run already finished at step {state['step']} ({state['stop_reason']}); nothing to do")
        summary = summarize("already finished")
        print(json.dumps(summary), flush=True)
        model.eval()
        return model, summary

    say(f"model: {model.num_parameters():,} parameters  config {cfg.to_json()}")
    say(f"data: {len(corpus.train):,} train / {len(corpus.val):,} val tokens, vocab {corpus.vocab_size}, "
        f"{len(vwin)} val windows of {S_eval}; {tokens_per_step:,} tokens per step")
    if ck is not None:
        say(f"resumed from {ckpt_path} at step {state['step']}/{total}, best val {best['val_loss']:.4f} "
            f"at step {best['step']}, {fmt_time(state['train_seconds'])} trained so far")
        log.write(json.dumps({"resumed_at": state["step"]}) + "\n")
    if teacher is not None:
        tv = evaluate(teacher, vwin, args.eval_batch_size) if len(vwin) else float("nan")
        say(f"teacher: {teacher.num_parameters():,} parameters, val loss {tv:.4f} "
            f"({tv / math.log(2):.3f} bits/token); T={args.kd_temperature} alpha={args.kd_alpha}")

    meta_common = {"seed": str(args.seed), "teacher": os.path.basename(args.teacher) if args.teacher else ""}

    def do_eval(step: int) -> None:
        state["last_eval"] = step
        if not len(vwin):
            return
        vl = evaluate(model, vwin, args.eval_batch_size)
        rec = {"step": step, "val_loss": vl, "val_bits_per_token": vl / math.log(2),
               "tokens_seen": step * tokens_per_step}
        improved = vl < best["val_loss"]
        if improved:
            best.update(val_loss=vl, step=step)
            state["bad_evals"] = 0
            meta = dict(meta_common, step=str(step), val_loss=f"{vl:.6f}")
            save_model(model, args.out, "model", meta, corpus.tokenizer_path, args.torch_save)
        else:
            state["bad_evals"] += 1
        note = "  (best, saved)" if improved else f"  (no better for {state['bad_evals']})"
        say(f"eval step {step}: val loss {vl:.4f}, {vl / math.log(2):.3f} bits/token, "
            f"ppl {math.exp(min(vl, 50)):.2f}{note}")
        log.write(json.dumps(rec) + "\n")
        log.flush()
        history.append(rec)

    stop = {"signal": None}

    def on_signal(signum, _frame):
        if stop["signal"] is not None:  # a second signal: give up at once
            raise KeyboardInterrupt
        stop["signal"] = signum
        print(f"\n{signal.Signals(signum).name}: finishing this step, writing the checkpoint, then exiting",
              file=sys.stderr, flush=True)

    old_handlers = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    model.train()
    t_inv = time.time()  # this invocation
    step_inv0 = state["step"]
    t_seg = t_inv  # start of the not yet counted training time
    t_win, tok_win = t_inv, 0
    t_ckpt = t_inv
    calib_steps = max(args.warmup, 20)
    try:
        while True:
            step = state["step"]
            if total is not None and step >= total:
                state["stop_reason"] = state["stop_reason"] or "done"
                break
            sched_total = total if total is not None else 10**9  # warmup does not depend on it
            lr = lr_at(step, sched_total, args.lr, args.warmup, args.min_lr_ratio)
            for group in opt.param_groups:
                group["lr"] = lr
            x, y = sampler.next()
            logits, aux = model(x, with_aux=True, vocab_last=False)  # [B, V, S]
            ce = F.cross_entropy(logits, y)
            if teacher is not None:
                with torch.no_grad():
                    t_logits = teacher(x, vocab_last=False)
                kd = kd_loss(logits, t_logits, args.kd_temperature)
                loss = args.kd_alpha * kd + (1 - args.kd_alpha) * ce
            else:
                kd = None
                loss = ce
            loss = loss + args.aux_weight * aux
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(),
                                                   args.grad_clip if args.grad_clip > 0 else float("inf"))
            opt.step()
            state["step"] = step = step + 1
            now = time.time()
            state["train_seconds"] += now - t_seg
            t_seg = now
            tok_win += tokens_per_step
            if total is None and step >= calib_steps:
                # --time-budget alone: the schedule's length from the speed so far, 10% kept for evaluations
                per_step = state["train_seconds"] / step
                total = max(step + 1, int(budget * 0.9 / per_step))
                say(f"time budget {fmt_time(budget)}: {per_step:.3f} s/step over {step} steps -> {total} steps")
            last = {"step": step, "loss": loss.item(), "ce": ce.item(), "aux": aux.item(),
                    "kd": kd.item() if kd is not None else None, "lr": lr, "grad_norm": float(gnorm)}
            if step % args.log_every == 0 or step == 1 or step == total:
                tps = tok_win / max(now - t_win, 1e-9)
                done_inv = step - step_inv0
                per_step = (now - t_inv) / max(done_inv, 1)  # evaluations included
                eta = ((total or step) - step) * per_step
                if budget is not None:
                    eta = min(eta, budget - state["train_seconds"])
                last["tokens_per_s"] = tps
                say(f"step {step}/{total or '?'}  loss {last['loss']:.4f}  ce {last['ce']:.4f}"
                    + (f"  kd {last['kd']:.4f}" if kd is not None else "")
                    + f"  aux {last['aux']:.3f}  lr {lr:.2e}  |g| {last['grad_norm']:.2f}"
                    + f"  {tps:,.0f} tok/s  ep {step * tokens_per_step / len(corpus.train):.2f}"
                    + f"  trained {fmt_time(state['train_seconds'])}  eta {fmt_time(eta)}")
                log.write(json.dumps(last) + "\n")
                log.flush()
                t_win, tok_win = now, 0
            if args.eval_every > 0 and step % args.eval_every == 0 and step != total:
                do_eval(step)
                t_win, tok_win = time.time(), 0  # tokens/s counts training steps only
                if args.patience > 0 and state["bad_evals"] >= args.patience:
                    state["stop_reason"] = f"early stop: {state['bad_evals']} evaluations without improvement"
                    break
            if budget is not None and state["train_seconds"] >= budget:
                state["stop_reason"] = "time budget spent"
                break
            now = time.time()
            state["train_seconds"] += now - t_seg  # evaluation time counts toward the budget
            t_seg = now
            if stop["signal"] is not None or (run_for is not None and now - t_inv >= run_for):
                checkpoint()
                if stop["signal"] is not None:
                    msg = (f"interrupted by {signal.Signals(stop['signal']).name} at step {step}/{total}; "
                           f"checkpoint {ckpt_path} written; run again with --resume to continue")
                    print(msg, file=sys.stderr, flush=True)
                    log.write(json.dumps({"interrupted_at": step}) + "\n")
                    log.close()
                    raise SystemExit(128 + stop["signal"])
                print(f"paused after --run-for {args.run_for} at step {step}/{total}; checkpoint {ckpt_path} "
                      f"written; run again with --resume to continue", flush=True)
                log.write(json.dumps({"paused_at": step}) + "\n")
                log.close()
                raise SystemExit(EXIT_PAUSED)
            if ((args.ckpt_every > 0 and step % args.ckpt_every == 0)
                    or (args.ckpt_minutes > 0 and now - t_ckpt >= args.ckpt_minutes * 60)):
                checkpoint()
                t_ckpt = time.time()
        if state["last_eval"] != state["step"]:
            do_eval(state["step"])
        state["train_seconds"] += time.time() - t_seg
        if best["step"] < 0:  # no validation data: keep the final weights
            save_model(model, args.out, "model", dict(meta_common, step=str(state["step"])), corpus.tokenizer_path,
                       args.torch_save)
        save_model(model, args.out, "last", dict(meta_common, step=str(state["step"])), corpus.tokenizer_path, False)
        checkpoint(finished=True)
    finally:
        for sig, h in old_handlers.items():
            signal.signal(sig, h)
    summary = summarize(state["stop_reason"] or "")
    log.write(json.dumps({"summary": summary}) + "\n")
    log.close()
    say(f"stopped: {state['stop_reason']}; best val loss {best['val_loss']:.4f} at step {best['step']}")
    print(json.dumps(summary), flush=True)
    model.eval()
    return model, summary


def main(argv: Optional[List[str]] = None) -> int:
    train(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
