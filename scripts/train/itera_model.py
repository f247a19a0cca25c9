"""Itera-Lite in PyTorch, written from ../shared/spec/architecture.md.

Module and parameter names are the spec's PyTorch state_dict names, so a checkpoint of the
original loads with `model.load_state_dict(ckpt['model_state_dict'])`. Each step of the forward
carries the spec line it implements in a comment above it.

The selective scan has two implementations that compute the same thing:
  - `scan_sequential`: the recurrence z_t = exp(delta_t*A) * z_{t-1} + delta_t*(B s_t), one
    position at a time (the plain reference);
  - `scan_parallel`: the whole sequence at once. Because delta_t is one scalar per position,
    z_t = sum_{r<=t} exp(A * sum_{q=r+1..t} delta_q) * delta_r * (B s_r). The segment sums are
    built by a masked cumulative sum (no subtraction of two large prefix sums), so every exponent
    is A * (a sum of positive deltas) <= 0: exp never sees a large positive number.
The parallel one is the default (it is what makes training fast on a small CPU); a test holds it
to the sequential one.

Top-k ties: experts are ordered by a stable descending sort of the router logits, so among equal
logits the lower expert index wins.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


# ---------------------------------------------------------------------------------------------
# Configuration


@dataclass
class IteraConfig:
    vocab_size: int = 2000  # V
    hidden_size: int = 64  # d
    num_layers: int = 3  # L
    ssm_state_size: int = 8  # N
    ssm_conv_kernel: int = 4  # K
    ssm_expand_factor: int = 2  # e, di = e*d
    num_experts: int = 4  # E
    expert_size: int = 32  # f
    top_k_experts: int = 2  # k
    moe_layers: List[int] = field(default_factory=lambda: [1])
    max_seq_length: int = 128  # T (with position_embedding off: the training window only)
    layer_norm_eps: float = 1e-5
    # learned absolute positions (the original's); off, the conv and the scan alone carry order
    # and the model runs at any length
    position_embedding: bool = True

    @property
    def inner_size(self) -> int:
        return self.ssm_expand_factor * self.hidden_size

    def to_json(self) -> str:
        d = asdict(self)
        if d["position_embedding"]:
            # the original's configuration: written exactly as before this key existed
            del d["position_embedding"]
        return json.dumps(d, sort_keys=True)

    @staticmethod
    def from_dict(d: Dict) -> "IteraConfig":
        known = {k: v for k, v in d.items() if k in IteraConfig.__dataclass_fields__}
        cfg = IteraConfig(**known)
        cfg.moe_layers = sorted(int(i) for i in cfg.moe_layers)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.top_k_experts < 1 or (self.moe_layers and self.top_k_experts > self.num_experts):
            raise ValueError(f"top_k_experts={self.top_k_experts} must be in 1..num_experts={self.num_experts}")
        for i in self.moe_layers:
            if not 0 <= i < self.num_layers:
                raise ValueError(f"moe layer {i} outside 0..{self.num_layers - 1}")
        for name in ("vocab_size", "hidden_size", "num_layers", "ssm_state_size", "ssm_conv_kernel",
                     "ssm_expand_factor", "expert_size", "max_seq_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")


def default_moe_layers(num_layers: int) -> List[int]:
    """The original's default: odd layer indices 1, 3, 5, ..."""
    return list(range(1, num_layers, 2))


def config_from_state_dict(sd: Dict[str, torch.Tensor], top_k_experts: int = 2) -> IteraConfig:
    """Read the configuration off tensor shapes and key names (the checkpoint stores no config).

    top_k_experts cannot be seen in any shape; it defaults to the original's 2.
    """
    V, d = sd["embedding.weight"].shape
    has_pos = "position_embedding.weight" in sd
    # without positions T is not in any shape; 128 (the original's) is only a nominal window
    T = sd["position_embedding.weight"].shape[0] if has_pos else 128
    layer_ids = sorted({int(m.group(1)) for k in sd for m in [re.match(r"layers\.(\d+)\.", k)] if m})
    L = len(layer_ids)
    if layer_ids != list(range(L)):
        raise ValueError(f"layer indices are not contiguous: {layer_ids}")
    di, _, K = sd["layers.0.ssm.conv1d.weight"].shape
    N = sd["layers.0.ssm.ssm.A_log"].shape[0]
    if di % d:
        raise ValueError(f"inner width {di} is not a multiple of hidden width {d}")
    moe_layers = [i for i in layer_ids if f"layers.{i}.moe.layer.router.gate.weight" in sd]
    E = 0
    f = None
    for i in moe_layers:
        n_exp = len({int(m.group(1)) for k in sd
                     for m in [re.match(rf"layers\.{i}\.moe\.layer\.experts\.(\d+)\.", k)] if m})
        if E and n_exp != E:
            raise ValueError("MoE layers with different expert counts are not supported")
        E = n_exp
        f = sd[f"layers.{i}.moe.layer.experts.0.w1.weight"].shape[0]
    for i in layer_ids:
        if i not in moe_layers:
            f_i = sd[f"layers.{i}.moe.ffn.w1.weight"].shape[0]
            if f is not None and f_i != f:
                raise ValueError("FFN and expert widths differ; not supported")
            f = f_i
    if not moe_layers:
        E = 4  # unused without MoE layers; kept at the original's default
    cfg = IteraConfig(
        vocab_size=int(V), hidden_size=int(d), num_layers=L, ssm_state_size=int(N),
        ssm_conv_kernel=int(K), ssm_expand_factor=int(di // d), num_experts=int(E),
        expert_size=int(f), top_k_experts=min(top_k_experts, E) if moe_layers else top_k_experts,
        moe_layers=moe_layers, max_seq_length=int(T), position_embedding=has_pos,
    )
    cfg.validate()
    return cfg


# ---------------------------------------------------------------------------------------------
# Matrix products
#
# Debian's torch 1.13 is built against the generic reference BLAS: torch.mm / F.linear reach only
# about 3 GFLOP/s on one core here, while oneDNN's convolution (built in) reaches 30-80. A linear
# map over the last dimension of [B, S, in] is a width-1 convolution over [B, in, S], so for
# 3-D inputs `dense` uses that. It is the same mathematical product (sums may round differently in
# the last bits); `set_dense_conv(False)` goes back to F.linear.


def dense(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None, conv: bool = True) -> torch.Tensor:
    """y = x W^T (+ b) over the last dimension; W is [out, in]."""
    if conv and x.dim() == 3:
        return F.conv1d(x.transpose(1, 2), weight.unsqueeze(-1), bias).transpose(1, 2)
    return F.linear(x, weight, bias)


class Dense(nn.Linear):
    """nn.Linear (same parameter names) computed through `dense`."""

    conv = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dense(x, self.weight, self.bias, self.conv)


# ---------------------------------------------------------------------------------------------
# Selective scan


def scan_sequential(delta: torch.Tensor, A: torch.Tensor, Bs: torch.Tensor) -> torch.Tensor:
    """Reference: z_t = exp(delta_t * A) * z_{t-1} + delta_t * Bs_t, z_{-1} = 0.

    delta [B, S] (scalar per position), A [N] (negative), Bs [B, S, N] (= B . s_t). Returns z [B, S, N].
    """
    Bsz, S, N = Bs.shape
    z = Bs.new_zeros(Bsz, N)
    out = []
    for t in range(S):
        dt = delta[:, t : t + 1]  # [B, 1]
        z = torch.exp(dt * A) * z + dt * Bs[:, t]
        out.append(z)
    return torch.stack(out, dim=1)


def segment_sums(delta: torch.Tensor) -> torch.Tensor:
    """seg[b, t, r] = sum_{q=r+1..t} delta[b, q] for r <= t (0 on the diagonal); 0 above it.

    Built as a cumulative sum over t of a strictly-lower-triangular copy of delta, so no two large
    prefix sums are ever subtracted.
    """
    S = delta.shape[-1]
    strict = torch.ones(S, S, dtype=torch.bool, device=delta.device).tril(-1)  # t > r
    x = delta.unsqueeze(-1).expand(*delta.shape, S)  # x[b, t, r] = delta[b, t]
    x = x.masked_fill(~strict, 0.0)
    return torch.cumsum(x, dim=-2)


def scan_parallel(delta: torch.Tensor, A: torch.Tensor, Bs: torch.Tensor) -> torch.Tensor:
    """Same result as scan_sequential, for the whole sequence at once.

    z[b, t, n] = sum_{r<=t} exp(A_n * seg[b, t, r]) * delta[b, r] * Bs[b, r, n]
    """
    S = delta.shape[-1]
    seg = segment_sums(delta)  # [B, S(t), S(r)], >= 0
    causal = torch.ones(S, S, dtype=torch.bool, device=delta.device).tril()  # r <= t
    # exponent [B, N, t, r] = A_n * seg (<= 0 where causal); -inf elsewhere so exp gives 0
    expo = seg.unsqueeze(1) * A.view(1, -1, 1, 1)
    decay = torch.exp(expo.masked_fill(~causal, float("-inf")))
    u = (delta.unsqueeze(-1) * Bs).transpose(1, 2).unsqueeze(-2)  # [B, N, 1, S(r)]
    # a broadcast multiply and a sum over r: faster here than a batched matrix-vector product
    z = (decay * u).sum(-1)  # [B, N, S(t)]
    return z.transpose(1, 2)


def scan_chunked(delta: torch.Tensor, A: torch.Tensor, Bs: torch.Tensor, chunk: int = 128) -> torch.Tensor:
    """Same result as scan_sequential, in chunks of `chunk` positions: scan_parallel inside a
    chunk, the state carried from one chunk to the next. Memory and work grow as S * chunk
    instead of S^2, which is what lets position-free models train on windows of 256-512 tokens.

    z_t = exp(A * sum_{q=c..t} delta_q) * z_{c-1} + (the chunk's own scan from a zero state)_t
    for the chunk starting at c. S <= chunk is exactly scan_parallel.
    """
    S = delta.shape[-1]
    if S <= chunk:
        return scan_parallel(delta, A, Bs)
    z0 = None
    out = []
    for c in range(0, S, chunk):
        d = delta[:, c : c + chunk]
        z = scan_parallel(d, A, Bs[:, c : c + chunk])  # [B, s, N]
        if z0 is not None:
            # every exponent A * (a sum of positive deltas) <= 0
            z = z + torch.exp(torch.cumsum(d, dim=1).unsqueeze(-1) * A) * z0.unsqueeze(1)
        out.append(z)
        z0 = z[:, -1]
    return torch.cat(out, dim=1)


# ---------------------------------------------------------------------------------------------
# Modules (names follow the spec's state_dict)


class SelectiveSSM(nn.Module):
    """layers.{i}.ssm.ssm: A_log [N], B [N, di], C [di, N], D [di], delta_proj (di -> di)."""

    def __init__(self, cfg: IteraConfig):
        super().__init__()
        di, N = cfg.inner_size, cfg.ssm_state_size
        self.A_log = nn.Parameter(torch.log(torch.arange(1, N + 1, dtype=torch.float32)))
        self.B = nn.Parameter(torch.randn(N, di) / math.sqrt(di))
        self.C = nn.Parameter(torch.randn(di, N) / math.sqrt(N))
        self.D = nn.Parameter(torch.ones(di))
        self.delta_proj = Dense(di, di)
        self.use_parallel = True
        self.chunk = 128  # scan_chunked's chunk: sequences up to this length use scan_parallel as is
        self.conv = True

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        # delta_t = mean over the di channels of softplus(delta_proj . s_t + delta_proj.bias)
        delta = F.softplus(self.delta_proj(s)).mean(dim=-1)  # [B, S]
        # A = -exp(A_log)
        A = -torch.exp(self.A_log)  # [N]
        # B . s_t
        Bs = dense(s, self.B, conv=self.conv)  # [B, S, N]
        # z_t = exp(delta_t * A) * z_{t-1} + delta_t * (B . s_t)
        if self.use_parallel:
            z = scan_chunked(delta, A, Bs, self.chunk)  # [B, S, N]
        else:
            z = scan_sequential(delta, A, Bs)
        # y_t = C . z_t + D * s_t
        return dense(z, self.C, conv=self.conv) + self.D * s


def drop(x: torch.Tensor, mod: nn.Module) -> torch.Tensor:
    """Dropout for training only (IteraLite.set_dropout; never in eval mode or in any file). At p = 0
    it draws no random numbers, so runs without it stay byte for byte what they were."""
    p = getattr(mod, "dropout_p", 0.0)
    return F.dropout(x, p, True) if p > 0 and mod.training else x


class SSMBlock(nn.Module):
    """layers.{i}.ssm: norm, in_proj (d -> 2di, no bias), conv1d (depthwise, K), ssm, out_proj."""

    def __init__(self, cfg: IteraConfig):
        super().__init__()
        d, di, K = cfg.hidden_size, cfg.inner_size, cfg.ssm_conv_kernel
        self.di = di
        self.norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.in_proj = Dense(d, 2 * di, bias=False)
        self.conv1d = nn.Conv1d(di, di, K, groups=di, padding=K - 1)
        self.ssm = SelectiveSSM(cfg)
        self.out_proj = Dense(di, d, bias=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        S = h.shape[1]
        # u = LayerNorm(h_t; ssm.norm)
        u = self.norm(h)
        # [a; g] = in_proj . u
        a, g = self.in_proj(u).split(self.di, dim=-1)
        # c_t = conv1d.bias + sum_j conv1d.weight[:, 0, j] * a_{t-K+1+j}  (left zero padding, keep first S)
        c = self.conv1d(a.transpose(1, 2))[..., :S].transpose(1, 2)
        # s_t = SiLU(c_t)
        s = F.silu(c)
        y = self.ssm(s)
        # h_t + out_proj . (y_t * SiLU(g))
        return h + drop(self.out_proj(y * F.silu(g)), self)


class FeedForward(nn.Module):
    """w2 . GELU(w1 . u), both without bias (an expert, or the plain FFN)."""

    def __init__(self, d: int, f: int):
        super().__init__()
        self.w1 = Dense(d, f, bias=False)
        self.w2 = Dense(f, d, bias=False)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.w2(F.gelu(self.w1(u)))  # exact (erf) GELU


class Router(nn.Module):
    """layers.{i}.moe.layer.router: gate (d -> E, no bias) and the expert_counts buffer.

    expert_counts is a training statistic only (never read by the forward): here it accumulates
    the number of (token, expert) assignments seen in training mode.
    """

    def __init__(self, d: int, E: int):
        super().__init__()
        self.gate = Dense(d, E, bias=False)
        self.register_buffer("expert_counts", torch.zeros(E))


class MoELayer(nn.Module):
    """layers.{i}.moe.layer: norm, router, experts.{j}."""

    def __init__(self, cfg: IteraConfig):
        super().__init__()
        d, f, E = cfg.hidden_size, cfg.expert_size, cfg.num_experts
        self.k = cfg.top_k_experts
        self.norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.router = Router(d, E)
        self.experts = nn.ModuleList([FeedForward(d, f) for _ in range(E)])

    def forward(self, h: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        E = len(self.experts)
        # u = LayerNorm(h_t; moe norm)
        u = self.norm(h)
        # r = router.gate . u  (E logits)
        r = self.router.gate(u)
        # pick the k largest logits (stable: lower index wins a tie)
        _, order = torch.sort(r, dim=-1, descending=True, stable=True)
        picked = order[..., : self.k]
        # gates = softmax over those k logits only
        gates = torch.softmax(r.gather(-1, picked), dim=-1)
        weights = torch.zeros_like(r).scatter(-1, picked, gates)  # [B, S, E], 0 for unpicked
        # m = sum over picked j of gate_j * experts[j].w2 . GELU(experts[j].w1 . u)
        # (computed densely for every expert: with E=4, k=2 that is cheaper on a CPU than
        # gathering tokens; unpicked experts get weight 0, hence no gradient)
        m = 0
        for j, expert in enumerate(self.experts):
            m = m + weights[..., j : j + 1] * expert(u)
        # Switch-Transformer load balance: E * sum_i f_i * P_i, where f_i is the fraction of the
        # k*tokens assignments that went to expert i and P_i the mean full-softmax router probability.
        assign = torch.zeros_like(r).scatter(-1, picked, 1.0).reshape(-1, E)
        frac = assign.mean(0) / self.k
        prob = torch.softmax(r, dim=-1).reshape(-1, E).mean(0)
        aux = E * torch.sum(frac * prob)
        if self.training:
            with torch.no_grad():
                self.router.expert_counts += assign.sum(0)
        return h + drop(m, self), aux


class MoEWrapper(nn.Module):
    """layers.{i}.moe for a MoE layer: holds `layer`."""

    def __init__(self, cfg: IteraConfig):
        super().__init__()
        self.layer = MoELayer(cfg)

    def forward(self, h):
        return self.layer(h)


class FFNLayer(nn.Module):
    """layers.{i}.moe for a non-MoE layer: norm and ffn."""

    def __init__(self, cfg: IteraConfig):
        super().__init__()
        self.norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.ffn = FeedForward(cfg.hidden_size, cfg.expert_size)

    def forward(self, h):
        return h + drop(self.ffn(self.norm(h)), self), None


class Block(nn.Module):
    def __init__(self, cfg: IteraConfig, is_moe: bool):
        super().__init__()
        self.ssm = SSMBlock(cfg)
        self.moe = MoEWrapper(cfg) if is_moe else FFNLayer(cfg)

    def forward(self, h):
        return self.moe(self.ssm(h))


class IteraLite(nn.Module):
    def __init__(self, cfg: IteraConfig):
        super().__init__()
        cfg.validate()
        self.config = cfg
        d = cfg.hidden_size
        self.embedding = nn.Embedding(cfg.vocab_size, d)
        # without it the state_dict (and every export) simply has no position_embedding.weight
        self.position_embedding = nn.Embedding(cfg.max_seq_length, d) if cfg.position_embedding else None
        self.layers = nn.ModuleList([Block(cfg, i in cfg.moe_layers) for i in range(cfg.num_layers)])
        self.norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.lm_head = Dense(d, cfg.vocab_size, bias=False)
        self.reset_parameters()
        self.lm_head.weight = self.embedding.weight  # tied

    def reset_parameters(self) -> None:
        """Our own initialisation for training from scratch (loading a checkpoint overwrites it)."""
        std = 0.02
        resid_std = std / math.sqrt(2 * self.config.num_layers)
        nn.init.normal_(self.embedding.weight, std=std)
        if self.position_embedding is not None:
            nn.init.normal_(self.position_embedding.weight, std=std / 2)
        for name, mod in self.named_modules():
            if isinstance(mod, Dense) and mod is not self.lm_head:
                last = name.endswith("out_proj") or name.endswith("w2")
                nn.init.normal_(mod.weight, std=resid_std if last else std)
                if mod.bias is not None:
                    nn.init.zeros_(mod.bias)
        for blk in self.layers:
            ssm = blk.ssm.ssm
            # delta starts near 0.5 (inverse softplus of the bias), the delta_proj weight small
            nn.init.constant_(ssm.delta_proj.bias, math.log(math.expm1(0.5)))

    @torch.no_grad()
    def init_ssm_timescales(self, delta: float, a_min: float, a_max: float) -> None:
        """Training init (no random numbers drawn): every layer's step size starts near `delta`
        (the delta_proj bias) and A = -exp(A_log) spread geometrically over [a_min, a_max], so the
        state decays per token by exp(-delta * A): from slow (long memory) to fast. The default
        init (delta 0.5, A = 1..N) forgets within about ten tokens."""
        N = self.config.ssm_state_size
        if N > 1:
            A = torch.exp(torch.linspace(math.log(a_min), math.log(a_max), N))
        else:
            A = torch.tensor([a_min])
        for blk in self.layers:
            ssm = blk.ssm.ssm
            ssm.A_log.copy_(torch.log(A))
            ssm.delta_proj.bias.fill_(math.log(math.expm1(delta)))

    def set_dropout(self, p: float) -> None:
        """Residual dropout while training: on the embedding and on each block's SSM and MoE/FFN
        branch before it joins the residual stream. Not part of the config: inference ignores it."""
        if not 0 <= p < 1:
            raise ValueError(f"dropout {p} outside [0, 1)")
        for mod in self.modules():
            if isinstance(mod, (IteraLite, SSMBlock, MoELayer, FFNLayer)):
                mod.dropout_p = p

    def num_parameters(self) -> int:
        """Counted like the original: the tied lm_head once, buffers not at all."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, ids: torch.Tensor, with_aux: bool = False, vocab_last: bool = True):
        """ids [B, S] (S <= T with position embeddings; any S without) -> logits [B, S, V] ([B, V, S] with vocab_last=False, the layout the
        convolution produces and the faster one for a loss over dim 1); with_aux also returns the
        mean MoE balance loss."""
        S = ids.shape[1]
        h = drop(self.embedding(ids), self)
        if self.position_embedding is not None:
            if S > self.config.max_seq_length:
                raise ValueError(f"sequence length {S} > max_seq_length {self.config.max_seq_length}")
            # h_t = embedding[x_t] + position_embedding[t]
            h = h + self.position_embedding(torch.arange(S, device=ids.device))
        auxes = []
        for blk in self.layers:
            h, aux = blk(h)
            if aux is not None:
                auxes.append(aux)
        # logits_t = lm_head . LayerNorm(h_t; norm)
        hn = self.norm(h)
        if vocab_last:
            logits = self.lm_head(hn)
        elif self.lm_head.conv:
            logits = F.conv1d(hn.transpose(1, 2), self.lm_head.weight.unsqueeze(-1))
        else:
            logits = self.lm_head(hn).transpose(1, 2)
        if with_aux:
            aux = torch.stack(auxes).mean() if auxes else logits.new_zeros(())
            return logits, aux
        return logits

    def set_dense_conv(self, conv: bool) -> None:
        """Matrix products through oneDNN convolutions (default) or F.linear."""
        for mod in self.modules():
            if isinstance(mod, (Dense, SelectiveSSM)):
                mod.conv = conv

    def set_scan(self, parallel: bool) -> None:
        for blk in self.layers:
            blk.ssm.ssm.use_parallel = parallel

    @torch.no_grad()
    def generate_greedy(self, prompt_ids: List[int], new_tokens: int) -> List[int]:
        """The original generator: the last T tokens recomputed for every new token, argmax.
        Without position embeddings the whole sequence is kept (what the recurrence computes)."""
        ids = list(prompt_ids)
        T = self.config.max_seq_length if self.position_embedding is not None else None
        out = []
        for _ in range(new_tokens):
            window = torch.tensor([ids[-T:] if T else ids], dtype=torch.long)
            nxt = int(self(window)[0, -1].argmax())
            ids.append(nxt)
            out.append(nxt)
        return out


# ---------------------------------------------------------------------------------------------
# Loading


def load_checkpoint(path: str, top_k_experts: Optional[int] = None) -> Tuple[IteraLite, Dict]:
    """A model in eval mode from a torch.save checkpoint ({'model_state_dict': ...} or a bare
    state_dict) or from one of our safetensors files. Returns (model, metadata)."""
    meta: Dict = {}
    if path.endswith(".safetensors"):
        from safetensors_io import read_safetensors

        sd, meta = read_safetensors(path)
        sd = {k: torch.from_numpy(v) for k, v in sd.items()}
    else:
        ck = torch.load(path, map_location="cpu")
        sd = ck["model_state_dict"] if isinstance(ck, dict) and "model_state_dict" in ck else ck
        if isinstance(ck, dict) and "config" in ck:
            meta["config"] = ck["config"] if isinstance(ck["config"], str) else json.dumps(ck["config"])
    if "config" in meta:
        cfg = IteraConfig.from_dict(json.loads(meta["config"]))
    else:
        cfg = config_from_state_dict(sd, top_k_experts if top_k_experts is not None else 2)
    if top_k_experts is not None:
        cfg.top_k_experts = top_k_experts
    model = IteraLite(cfg)
    sd = dict(sd)
    if "lm_head.weight" in sd and not torch.equal(sd["lm_head.weight"], sd["embedding.weight"]):
        raise ValueError(f"{path}: lm_head.weight differs from embedding.weight; this model ties them")
    sd.setdefault("lm_head.weight", sd["embedding.weight"])
    # expert_counts is a training statistic the forward never reads; a model file does not keep it
    # (`itera export safetensors` gives none): start it from zero, as a new model does
    for name, buf in model.named_buffers():
        if name.endswith("router.expert_counts"):
            sd.setdefault(name, torch.zeros_like(buf))
    model.load_state_dict(sd)
    model.eval()
    return model, meta
