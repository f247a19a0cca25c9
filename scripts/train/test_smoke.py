#!/usr/bin/python3
"""Training smoke test: a tiny model on a tiny synthetic corpus, through the real CLI code.

Checks that the loss falls, that the safetensors export (and the --torch-save form) reload to
identical logits, that a run is deterministic for a seed, and that distillation runs. Needs no
shared data. Exit 0 on success; prints SKIP and exits 0 if torch is missing (1 when CI is set).
"""

from __future__ import annotations

import json
import os
import random
import signal
import struct
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

try:
    import numpy as np
    import torch
except ImportError as exc:  # pragma: no cover
    msg = f"{sys.executable} cannot import torch/numpy ({exc}); use Debian's /usr/bin/python3"
    print(("FAIL: " if os.environ.get("CI") else "SKIP: ") + msg, flush=True)
    sys.exit(1 if os.environ.get("CI") else 0)

import train as train_cli  # noqa: E402
from itera_model import IteraConfig, IteraLite, load_checkpoint, scan_chunked, scan_sequential  # noqa: E402
from safetensors_io import read_safetensors  # noqa: E402

torch.set_num_threads(1)
VOCAB = 40
TINY = ["--d", "16", "--layers", "2", "--state", "4", "--expand", "2", "--experts", "4", "--expert-size", "16",
        "--top-k", "2", "--max-seq", "32", "--batch-size", "8", "--warmup", "5", "--lr", "1e-2",
        "--eval-every", "20", "--eval-tokens", "2000", "--quiet"]


def make_corpus(path: str, seed: int = 0) -> None:
    """Documents from a few fixed templates over a 40-word vocabulary: easy to learn."""
    rng = random.Random(seed)
    templates = [[rng.randrange(4, VOCAB) for _ in range(rng.randrange(5, 12))] for _ in range(6)]

    def stream(n_docs):
        ids = []
        for _ in range(n_docs):
            ids += rng.choice(templates) + [3]
        return ids

    os.makedirs(path, exist_ok=True)
    np.asarray(stream(600), dtype="<u2").tofile(os.path.join(path, "train.bin"))
    np.asarray(stream(60), dtype="<u2").tofile(os.path.join(path, "val.bin"))
    tok = {"vocab_size": VOCAB, "token_to_id": {f"w{i}": i for i in range(VOCAB)},
           "id_to_token": {str(i): f"w{i}" for i in range(VOCAB)}}
    with open(os.path.join(path, "tokenizer.json"), "w") as fh:
        json.dump(tok, fh)


def read_log(out):
    with open(os.path.join(out, "train_log.jsonl")) as fh:
        return [json.loads(line) for line in fh]


class SmokeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.data = os.path.join(cls.tmp.name, "corpus")
        make_corpus(cls.data)
        cls.out = os.path.join(cls.tmp.name, "run")
        args = train_cli.parse_args(["--data", cls.data, "--out", cls.out, "--steps", "60", "--log-every", "1",
                                     "--torch-save", "--seed", "7"] + TINY)
        cls.model, cls.summary = train_cli.train(args)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_loss_falls(self):
        ce = [r["ce"] for r in read_log(self.out) if "ce" in r]
        first, last = sum(ce[:5]) / 5, sum(ce[-5:]) / 5
        print(f"\nsmoke: train CE {first:.3f} -> {last:.3f}; best val {self.summary['best_val_loss']:.3f} "
              f"at step {self.summary['best_step']}", flush=True)
        self.assertGreater(first, 3.0)  # about ln(40) = 3.69 at the start
        self.assertLess(last, first - 1.0)
        self.assertLess(self.summary["best_val_loss"], 2.5)

    def test_export_reloads_identically(self):
        path = os.path.join(self.out, "last.safetensors")
        with open(path, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
        self.assertEqual((8 + n) % 8, 0)
        tensors, meta = read_safetensors(path)
        self.assertIn("embedding.weight", tensors)
        self.assertTrue(np.array_equal(tensors["embedding.weight"], tensors["lm_head.weight"]))
        self.assertIn("layers.1.moe.layer.router.expert_counts", tensors)
        self.assertGreater(tensors["layers.1.moe.layer.router.expert_counts"].sum(), 0)
        self.assertEqual(json.loads(meta["config"])["top_k_experts"], 2)
        self.assertTrue(os.path.exists(os.path.join(self.out, "tokenizer.json")))
        ids = torch.randint(0, VOCAB, (2, 32), generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            want = self.model(ids)
            reloaded, _ = load_checkpoint(path)
            self.assertTrue(torch.equal(reloaded(ids), want))
        # the best checkpoint in both forms loads to the same weights
        a, _ = load_checkpoint(os.path.join(self.out, "model.safetensors"))
        b, _ = load_checkpoint(os.path.join(self.out, "model.pt"))
        ck = torch.load(os.path.join(self.out, "model.pt"))
        self.assertIn("model_state_dict", ck)
        with torch.no_grad():
            self.assertTrue(torch.equal(a(ids), b(ids)))

    def test_deterministic_and_distillation(self):
        # the same seed gives the same weights, byte for byte
        outs = []
        for i in range(2):
            out = os.path.join(self.tmp.name, f"det{i}")
            train_cli.train(train_cli.parse_args(["--data", self.data, "--out", out, "--steps", "8",
                                                  "--seed", "3", "--eval-every", "0"] + TINY))
            with open(os.path.join(out, "last.safetensors"), "rb") as fh:
                outs.append(fh.read())
        self.assertEqual(outs[0], outs[1])
        # a smaller student distilled from the trained model
        out = os.path.join(self.tmp.name, "kd")
        student_flags = [f for f in TINY]
        student_flags[student_flags.index("--d") + 1] = "8"
        _, summary = train_cli.train(train_cli.parse_args(
            ["--data", self.data, "--out", out, "--steps", "30", "--log-every", "1",
             "--teacher", os.path.join(self.out, "model.safetensors"), "--kd-temperature", "2.0",
             "--kd-alpha", "0.5"] + student_flags))
        kd = [r["kd"] for r in read_log(out) if r.get("kd") is not None]
        self.assertEqual(len(kd), 30)
        self.assertLess(sum(kd[-5:]) / 5, sum(kd[:5]) / 5)
        self.assertTrue(np.isfinite(summary["best_val_loss"]))


def file_bytes(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


class ResumeTest(unittest.TestCase):
    """Interrupted with SIGINT halfway and resumed, a run ends with the same files, byte for byte,
    as the same run straight through; also with early stopping and without position embeddings."""

    FLAGS = TINY[:-1] + ["--steps", "80", "--eval-every", "10", "--log-every", "1", "--seed", "5",
                         "--ckpt-minutes", "0"]

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.data = os.path.join(cls.tmp.name, "corpus")
        make_corpus(cls.data, seed=2)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def cli(self, out, extra):
        return [sys.executable, os.path.join(HERE, "train.py"), "--data", self.data, "--out", out] + self.FLAGS + extra

    def straight_and_interrupted(self, name, extra):
        straight = os.path.join(self.tmp.name, name + "-straight")
        r = subprocess.run(self.cli(straight, extra), capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        part = os.path.join(self.tmp.name, name + "-resumed")
        cmd = self.cli(part, extra + ["--resume"])
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
            for line in proc.stdout:  # interrupt once half the steps are done
                if line.startswith("step 40/"):
                    proc.send_signal(signal.SIGINT)
                    break
            proc.stdout.read()
            err = proc.stderr.read()
            self.assertEqual(proc.wait(), 128 + signal.SIGINT, err)
        self.assertIn("--resume", err)
        ck = torch.load(os.path.join(part, "checkpoint.pt"))
        self.assertGreaterEqual(ck["step"], 40)
        self.assertLess(ck["step"], 80)
        self.assertFalse(ck["finished"])
        r = subprocess.run(cmd, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"resumed from", r.stdout)
        for f in ("last.safetensors", "model.safetensors"):
            self.assertEqual(file_bytes(os.path.join(straight, f)), file_bytes(os.path.join(part, f)), f)
        # the finished run resumed again does nothing
        r = subprocess.run(cmd, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("already finished", r.stdout)
        return straight, json.loads(r.stdout.strip().splitlines()[-1])

    def test_sigint_resume_is_byte_identical(self):
        self.straight_and_interrupted("plain", [])

    def test_no_pos_longer_window_with_early_stopping(self):
        # with dropout too, so that the random numbers it draws are part of what resumes exactly
        out, summary = self.straight_and_interrupted(
            "nopos", ["--no-pos-embedding", "--seq-len", "48", "--patience", "1", "--lr", "5e-2",
                      "--dropout", "0.2"])
        tensors, meta = read_safetensors(os.path.join(out, "last.safetensors"))
        self.assertNotIn("position_embedding.weight", tensors)
        cfg = json.loads(meta["config"])
        self.assertIs(cfg["position_embedding"], False)
        self.assertEqual(cfg["max_seq_length"], 48)
        model, _ = load_checkpoint(os.path.join(out, "last.safetensors"))
        self.assertIsNone(model.position_embedding)
        ids = torch.randint(0, VOCAB, (1, 100), generator=torch.Generator().manual_seed(3))
        with torch.no_grad():  # past the training window, and causal: a prefix gives the same logits
            self.assertTrue(torch.allclose(model(ids)[:, :60], model(ids[:, :60]), atol=1e-5))
        print(f"\nno-pos early stop: {summary['stop_reason']} at step {summary['steps']}", flush=True)

    def test_epochs_define_the_schedule(self):
        out = os.path.join(self.tmp.name, "epochs")
        _, summary = train_cli.train(train_cli.parse_args(
            ["--data", self.data, "--out", out, "--epochs", "0.5", "--eval-every", "0"] + TINY))
        train_tokens = os.path.getsize(os.path.join(self.data, "train.bin")) // 2
        self.assertEqual(summary["steps"], -(-train_tokens // 2 // (8 * 32)))


class UnitTest(unittest.TestCase):
    def test_dropout_only_while_training(self):
        torch.manual_seed(0)
        model = IteraLite(IteraConfig(vocab_size=VOCAB, position_embedding=False))
        ids = torch.randint(0, VOCAB, (2, 20), generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            model.train()
            plain = model(ids)
            model.set_dropout(0.3)
            a, b = model(ids), model(ids)
            self.assertFalse(torch.equal(a, b))  # fresh masks each call
            self.assertFalse(torch.equal(a, plain))
            model.eval()
            self.assertTrue(torch.equal(model(ids), plain))  # eval mode: no dropout at all
        with self.assertRaises(ValueError):
            model.set_dropout(1.0)

    def test_chunked_scan_equals_sequential(self):
        g = torch.Generator().manual_seed(0)
        delta = torch.nn.functional.softplus(torch.randn(2, 300, generator=g))
        A = -torch.exp(torch.randn(8, generator=g))
        Bs = torch.randn(2, 300, 8, generator=g)
        ref = scan_sequential(delta, A, Bs)
        for chunk in (64, 100, 128, 300):
            self.assertLessEqual((scan_chunked(delta, A, Bs, chunk) - ref).abs().max().item(), 1e-5, chunk)

    def test_position_free_config(self):
        cfg = IteraConfig(vocab_size=VOCAB, hidden_size=16, num_layers=2, expert_size=8, position_embedding=False)
        model = IteraLite(cfg)
        self.assertNotIn("position_embedding.weight", model.state_dict())
        self.assertIn('"position_embedding": false', cfg.to_json())
        # the original's configuration is written exactly as before the key existed
        self.assertNotIn("position_embedding", IteraConfig().to_json())
        model.init_ssm_timescales(0.1, 1 / 64, 8.0)
        A = torch.exp(model.layers[0].ssm.ssm.A_log)
        self.assertAlmostEqual(A.min().item(), 1 / 64, places=5)
        self.assertAlmostEqual(A.max().item(), 8.0, places=4)
        bias = model.layers[1].ssm.ssm.delta_proj.bias
        self.assertTrue(torch.allclose(torch.nn.functional.softplus(bias), torch.full_like(bias, 0.1)))
        self.assertEqual(train_cli.parse_duration("1h30m"), 5400)
        self.assertEqual(train_cli.parse_duration("90m"), 5400)
        self.assertEqual(train_cli.parse_duration("45"), 45)

    def test_doc_sampling_starts_at_documents(self):
        with tempfile.TemporaryDirectory() as tmp:
            make_corpus(tmp, seed=1)
            corpus = train_cli.Corpus(tmp)
            sampler = train_cli.BatchSampler(corpus, 16, 20, seed=0, mode="doc")
            data = corpus.train
            for _ in range(5):
                x, y = sampler.next()
                self.assertTrue(torch.equal(x[:, 1:], y[:, :-1]))
                for row in x:
                    # the window starts the stream or follows an <EOS>
                    idx = (data.unfold(0, 20, 1) == row).all(1).nonzero().flatten()
                    self.assertTrue(any(i == 0 or data[i - 1] == 3 for i in idx.tolist()))


    def test_kd_loss_zero_for_equal_logits(self):
        x = torch.randn(2, 10, 5)
        self.assertLess(train_cli.kd_loss(x, x, 2.0).abs().item(), 1e-6)
        y = torch.randn(2, 10, 5)
        # [B, V, S] layout over dim 1 equals [B, S, V] over dim -1
        a = train_cli.kd_loss(x, y, 2.0, dim=1)
        b = train_cli.kd_loss(x.transpose(1, 2), y.transpose(1, 2), 2.0, dim=-1)
        self.assertAlmostEqual(a.item(), b.item(), places=5)

    def test_lr_schedule(self):
        lrs = [train_cli.lr_at(s, 100, 1.0, 10, 0.1) for s in range(100)]
        self.assertAlmostEqual(lrs[9], 1.0)
        self.assertLess(lrs[0], lrs[5])
        self.assertTrue(all(a >= b for a, b in zip(lrs[10:], lrs[11:])))
        self.assertGreaterEqual(min(lrs[10:]), 0.1)


if __name__ == "__main__":
    prog = unittest.main(exit=False, verbosity=2)
    sys.exit(0 if prog.result.wasSuccessful() and not prog.result.skipped else 1)
