#!/usr/bin/python3
"""Parity of scripts/train/itera_model.py with the original PyTorch implementation.

Loads ../shared/reference/checkpoints/itera_lite_micro_distilled.pt and checks every logits case of
../shared/reference/golden/micro/reference.json (max abs diff <= 1e-5), the greedy generations
(exact ids), and the parallel scan against the sequential one (max abs diff <= 1e-5).

Exit 0 on success. Without ../shared: prints SKIP and exits 0, or 1 when the CI variable is set.
Run from anywhere: /usr/bin/python3 scripts/train/test_parity.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
SHARED = os.environ.get("ITERA_SHARED_DIR") or os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared"))
CKPT = os.path.join(SHARED, "reference", "checkpoints", "itera_lite_micro_distilled.pt")
GOLDEN = os.path.join(SHARED, "reference", "golden", "micro")
TOL = 1e-5


def skip_or_fail(reason: str) -> None:
    if os.environ.get("CI"):
        print(f"FAIL: {reason} (CI is set, so this is an error)", flush=True)
        sys.exit(1)
    print(f"SKIP: {reason}", flush=True)
    sys.exit(0)


try:
    import numpy as np
    import torch
except ImportError as exc:  # pragma: no cover - depends on the interpreter
    skip_or_fail(f"{sys.executable} cannot import torch/numpy ({exc}); use Debian's /usr/bin/python3")

from itera_model import (IteraConfig, IteraLite, config_from_state_dict, load_checkpoint, scan_parallel,  # noqa: E402
                         scan_sequential)

torch.set_num_threads(int(os.environ.get("ITERA_TORCH_THREADS", "1")))


class ScanTest(unittest.TestCase):
    """The parallel (segment-sum) scan equals the sequential recurrence; no shared data needed."""

    def check(self, B, S, N, delta_scale, seed):
        g = torch.Generator().manual_seed(seed)
        delta = torch.nn.functional.softplus(torch.randn(B, S, generator=g) * 2) * delta_scale
        A = -torch.exp(torch.randn(N, generator=g))
        Bs = torch.randn(B, S, N, generator=g)
        ref = scan_sequential(delta, A, Bs)
        par = scan_parallel(delta, A, Bs)
        diff = (ref - par).abs().max().item()
        self.assertTrue(torch.isfinite(par).all())
        self.assertLessEqual(diff, TOL, f"B={B} S={S} N={N} scale={delta_scale}: {diff}")
        return diff

    def test_scan_matches_sequential(self):
        for B, S, N, scale, seed in [(2, 1, 8, 1.0, 0), (3, 37, 8, 1.0, 1), (2, 128, 16, 1.0, 2),
                                     (2, 128, 8, 30.0, 3), (1, 128, 4, 1e-3, 4)]:
            self.check(B, S, N, scale, seed)

    def test_scan_gradients_match(self):
        g = torch.Generator().manual_seed(5)
        d0 = torch.nn.functional.softplus(torch.randn(2, 50, generator=g))
        A0, B0 = -torch.exp(torch.randn(8, generator=g)), torch.randn(2, 50, 8, generator=g)
        w = torch.randn(2, 50, 8, generator=g)
        grads = []
        for fn in (scan_sequential, scan_parallel):
            d, A, Bs = (t.clone().requires_grad_(True) for t in (d0, A0, B0))
            (fn(d, A, Bs) * w).sum().backward()
            grads.append((d.grad, A.grad, Bs.grad))
        for a, b in zip(*grads):
            self.assertLessEqual((a - b).abs().max().item(), 1e-4)

    def test_model_forward_paths_agree(self):
        torch.manual_seed(0)
        m = IteraLite(IteraConfig(vocab_size=50, hidden_size=16, num_layers=2, ssm_state_size=4, expert_size=8,
                                  max_seq_length=32)).eval()
        ids = torch.randint(0, 50, (2, 32))
        with torch.no_grad():
            m.set_scan(False), m.set_dense_conv(False)
            ref = m(ids)
            m.set_scan(True), m.set_dense_conv(True)
            fast = m(ids)
            cf = m(ids, vocab_last=False).transpose(1, 2)
        self.assertLessEqual((ref - fast).abs().max().item(), TOL)
        self.assertTrue(torch.equal(fast, cf))


@unittest.skipUnless(os.path.exists(CKPT), f"no reference checkpoint at {CKPT}")
class ReferenceParityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.model, _ = load_checkpoint(CKPT)
        with open(os.path.join(GOLDEN, "reference.json")) as fh:
            cls.ref = json.load(fh)

    def test_config_from_shapes(self):
        sd = torch.load(CKPT, map_location="cpu")["model_state_dict"]
        cfg = config_from_state_dict(sd)
        want = self.ref["config"]
        for k, v in want.items():
            self.assertEqual(getattr(cfg, k), v, k)
        self.assertEqual(self.model.num_parameters(), self.ref["parameters"])
        self.assertIn("layers.1.moe.layer.router.expert_counts", dict(self.model.named_buffers()))
        self.assertIs(self.model.lm_head.weight, self.model.embedding.weight)

    def logits(self, ids):
        with torch.no_grad():
            return self.model(torch.tensor([ids]))[0].numpy()

    def test_logits_cases(self):
        report = []
        for parallel, conv in [(True, True), (False, False), (True, False), (False, True)]:
            self.model.set_scan(parallel)
            self.model.set_dense_conv(conv)
            for case in self.ref["logits_cases"]:
                want = np.fromfile(os.path.join(GOLDEN, case["logits_file"]), dtype="<f4").reshape(case["shape"])
                got = self.logits(case["input_ids"])
                self.assertEqual(got.shape, want.shape)
                diff = float(np.abs(got - want).max())
                label = f"{case['name']} (scan {'parallel' if parallel else 'sequential'}, " \
                        f"matmul {'conv' if conv else 'linear'})"
                report.append(f"  {label}: max abs diff {diff:.3g}")
                self.assertLessEqual(diff, TOL, label)
        self.model.set_scan(True)
        self.model.set_dense_conv(True)
        print("\nlogits parity vs golden (tolerance 1e-5):\n" + "\n".join(report), flush=True)

    def test_greedy_generation(self):
        for case in self.ref["greedy_generation"]["cases"]:
            got = self.model.generate_greedy(case["prompt_ids"], len(case["greedy_ids"]))
            self.assertEqual(got, case["greedy_ids"], case["prompt"])
        print(f"\ngreedy generation: {len(self.ref['greedy_generation']['cases'])} cases identical", flush=True)

    def test_window_past_T(self):
        """Past T tokens, each step recomputes the last T tokens from position 0."""
        T = self.model.config.max_seq_length
        prompt = list(self.ref["logits_cases"][-1]["input_ids"])[:T]
        out = self.model.generate_greedy(prompt, 2)
        with torch.no_grad():
            first = int(self.model(torch.tensor([prompt[-T:]]))[0, -1].argmax())
            second = int(self.model(torch.tensor([(prompt + [first])[-T:]]))[0, -1].argmax())
        self.assertEqual(out, [first, second])

    def test_safetensors_roundtrip(self):
        from train import save_model
        from safetensors_io import read_safetensors

        with tempfile.TemporaryDirectory() as tmp:
            path = save_model(self.model, tmp, "micro", {}, None, torch_save=True)
            tensors, meta = read_safetensors(path)
            sd = self.model.state_dict()
            self.assertEqual(set(tensors), set(sd))
            for k, v in sd.items():
                self.assertTrue(np.array_equal(tensors[k], v.numpy()), k)
            self.assertEqual(IteraConfig.from_dict(json.loads(meta["config"])), self.model.config)
            for p in (path, os.path.join(tmp, "micro.pt")):
                m2, _ = load_checkpoint(p)
                ids = self.ref["logits_cases"][2]["input_ids"]
                with torch.no_grad():
                    self.assertTrue(torch.equal(m2(torch.tensor([ids])), self.model(torch.tensor([ids]))), p)


def main() -> int:
    if not os.path.isdir(SHARED) or not os.path.exists(CKPT):
        skip_or_fail(f"reference data not found at {SHARED} (expected ../shared beside the repository)")
    prog = unittest.main(argv=[sys.argv[0]] + sys.argv[1:], exit=False, verbosity=2)
    result = prog.result
    if result.skipped and os.environ.get("CI"):
        print("FAIL: tests were skipped while CI is set", flush=True)
        return 1
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
