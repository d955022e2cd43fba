"""The class-conditional stroke model and its heads (its config: ``qdsketch.config``).

The ``seed`` preset is exactly the reference's SketchGenerator
(../shared/reference): a class embedding concatenated to the stroke-5 input at
every step, a stacked LSTM whose initial h and c are linear projections of the
embedding, and an output head. The head is a separate module, so a mixture
density head can stand in for the reference's MSE one. The backbone is one too:
``arch="transformer"`` puts causal self-attention where the LSTM was (the
reference report's "attention"), with the same heads, losses and sampling.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from qdsketch.config import ModelConfig

__all__ = [
    "ARCHS",
    "HEADS",
    "GMMHead",
    "MSEHead",
    "SketchModel",
    "SketchTransformer",
    "StrokeModel",
    "build_model",
    "count_parameters",
]


HEADS: dict[str, type] = {}


class MSEHead(nn.Module):
    """The reference's head: dx, dy by regression, pen state by 3 logits.

    Loss: mean squared error on the normalised dx, dy, and cross-entropy on
    the pen state, both averaged over real (unpadded) steps.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.fc_xy = nn.Linear(cfg.hidden, 2)
        self.fc_pen = nn.Linear(cfg.hidden, 3)

    def forward(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"xy": self.fc_xy(h), "pen": self.fc_pen(h)}

    def losses(self, out: dict, target: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """``xy`` and ``pen`` losses, each a mean over the steps where ``mask``."""
        real = mask.sum().clamp(min=1)
        squared = (out["xy"].float() - target[..., :2]).pow(2).sum(-1)
        xy = (squared * mask).sum() / (2 * real)
        ce = F.cross_entropy(out["pen"].float().flatten(0, 1), target[..., 2:].argmax(-1).flatten(), reduction="none")
        pen = (ce * mask.flatten()).sum() / real
        return {"xy": xy, "pen": pen}

    def sample_xy(self, out: dict, temperature: float, noise: torch.Tensor) -> torch.Tensor:
        """Normalised dx, dy ``(B, 2)`` for the last step. ``noise`` ``(B, 3)``
        holds one uniform and two standard normals per sketch, for heads that
        sample; this one predicts dx, dy outright and uses none."""
        return out["xy"][:, -1]


HEADS["mse"] = MSEHead

LOG_2PI = 1.8378770664093453


class GMMHead(nn.Module):
    """Sketch-RNN's head: ``M`` bivariate Gaussians for (dx, dy), and pen logits.

    Per step it gives mixture logits ``pi``, means ``mu`` ``(.., M, 2)``, log
    standard deviations ``log_sigma`` ``(.., M, 2)`` and correlations ``rho``.
    The ``xy`` loss is the negative log-likelihood of the normalised (dx, dy)
    under the mixture, averaged over real steps.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.m = cfg.mixtures
        self.fc_gmm = nn.Linear(cfg.hidden, 6 * cfg.mixtures)
        self.fc_pen = nn.Linear(cfg.hidden, 3)

    def forward(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        pi, mu_x, mu_y, ls_x, ls_y, rho = self.fc_gmm(h).float().split(self.m, dim=-1)
        return {
            "pi": pi,
            "mu": torch.stack([mu_x, mu_y], -1),
            "log_sigma": torch.stack([ls_x, ls_y], -1).clamp(-7.0, 5.0),
            "rho": torch.tanh(rho) * 0.999,
            "pen": self.fc_pen(h),
        }

    @staticmethod
    def log_prob(out: dict, xy: torch.Tensor) -> torch.Tensor:
        """log p(xy) under the mixture, per step: ``xy`` ``(..., 2)`` -> ``(...)``."""
        d = (xy.unsqueeze(-2) - out["mu"]) / out["log_sigma"].exp()  # (..., M, 2)
        rho = out["rho"]
        one_minus = 1 - rho**2
        z = d[..., 0] ** 2 + d[..., 1] ** 2 - 2 * rho * d[..., 0] * d[..., 1]
        log_n = -z / (2 * one_minus) - LOG_2PI - out["log_sigma"].sum(-1) - 0.5 * torch.log(one_minus)
        return torch.logsumexp(torch.log_softmax(out["pi"], -1) + log_n, dim=-1)

    def losses(self, out: dict, target: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        real = mask.sum().clamp(min=1)
        xy = -(self.log_prob(out, target[..., :2].float()) * mask).sum() / real
        ce = F.cross_entropy(out["pen"].float().flatten(0, 1), target[..., 2:].argmax(-1).flatten(), reduction="none")
        return {"xy": xy, "pen": (ce * mask.flatten()).sum() / real}

    def sample_xy(self, out: dict, temperature: float, noise: torch.Tensor) -> torch.Tensor:
        """A draw from the mixture at the last step, with the Sketch-RNN paper's
        temperature: mixture logits divided by ``T``, variances multiplied by
        ``T``. ``noise`` holds, per row, a uniform (the component) and two
        standard normals. ``T = 0`` gives the mean of the likeliest component."""
        pi = out["pi"][:, -1]
        mu, log_sigma, rho = out["mu"][:, -1], out["log_sigma"][:, -1], out["rho"][:, -1]
        if temperature <= 0:
            k = pi.argmax(-1)
        else:
            cdf = torch.softmax(pi / temperature, -1).cumsum(-1)
            k = (noise[:, :1] > cdf[:, :-1]).sum(-1)
        rows = torch.arange(len(k), device=k.device)
        mu, sigma, rho = mu[rows, k], log_sigma[rows, k].exp() * temperature**0.5, rho[rows, k]
        z1, z2 = noise[:, 1], noise[:, 2]
        x = mu[:, 0] + sigma[:, 0] * z1
        y = mu[:, 1] + sigma[:, 1] * (rho * z1 + torch.sqrt(1 - rho**2) * z2)
        return torch.stack([x, y], -1)


HEADS["gmm"] = GMMHead


class StrokeModel(nn.Module):
    """What every backbone shares: the class embedding, the head and the losses.

    A backbone implements ``initial_state(emb)`` and ``step(strokes, emb, state)``
    -> ``(hidden, state)``; ``run`` puts the head on top. Training runs a whole
    batch from ``initial_state``; sampling runs the start, then one step at a
    time from the state the last call returned (for the Transformer, its cache).
    """

    # made by each backbone after its own layers: the order of parameters is the order of
    # the optimizer's state in last.pt, so it stays as runs already saved it
    head: MSEHead | GMMHead

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.head not in HEADS:
            raise ValueError(f"unknown head {cfg.head!r}")
        self.cfg = cfg
        self.class_embedding = nn.Embedding(cfg.n_classes, cfg.embed_dim)

    def initial_state(self, emb: torch.Tensor):
        """The state before the first step, which sampling continues from call by call."""
        raise NotImplementedError

    def whole_sequence_state(self, emb: torch.Tensor):
        """The state to run a whole sequence from, when no later call continues it."""
        return self.initial_state(emb)

    def step(self, strokes: torch.Tensor, emb: torch.Tensor, state) -> tuple[torch.Tensor, object]:
        raise NotImplementedError

    def keep_rows(self, state, rows: torch.Tensor):
        """The state of the batch rows ``rows`` only: sampling drops the sketches that have
        ended, so they no longer cost a step each."""
        raise NotImplementedError

    def run(self, strokes: torch.Tensor, emb: torch.Tensor, state) -> dict:
        """The backbone and the head over ``strokes``, conditioned on ``emb``, from ``state``."""
        h, state = self.step(strokes, emb, state)
        out = self.head(h)
        out["state"] = state
        return out

    def forward(
        self,
        strokes: torch.Tensor,
        labels: torch.Tensor,
        targets: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        state=None,
    ) -> tuple[dict, dict | None]:
        """Run ``strokes`` ``(B, T, 5)`` for classes ``labels`` ``(B,)``.

        Returns the head's outputs (plus ``state``, the backbone's state after the
        last step) and, given ``targets`` and ``mask`` ``(B, T)``, the losses:
        ``xy``, ``pen`` and the weighted ``total``.
        """
        emb = self.class_embedding(labels)
        out = self.run(strokes, emb, self.whole_sequence_state(emb) if state is None else state)
        if targets is None:
            return out, None
        if mask is None:
            mask = torch.ones(targets.shape[:2], device=targets.device)
        losses = self.head.losses(out, targets, mask.float())
        losses["total"] = self.cfg.xy_weight * losses["xy"] + self.cfg.pen_weight * losses["pen"]
        return out, losses


class SketchModel(StrokeModel):
    """The reference's LSTM: the class embedding concatenated to every input step,
    and the initial h and c projected from it."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.init_h_proj = nn.Linear(cfg.embed_dim, cfg.layers * cfg.hidden)
        self.init_c_proj = nn.Linear(cfg.embed_dim, cfg.layers * cfg.hidden)
        self.lstm = nn.LSTM(
            5 + cfg.embed_dim, cfg.hidden, cfg.layers, batch_first=True, dropout=cfg.dropout if cfg.layers > 1 else 0.0
        )
        self.head = HEADS[cfg.head](cfg)

    def initial_state(self, emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h0 and c0, ``(layers, B, hidden)``, from the class embedding."""
        shape = (emb.shape[0], self.cfg.layers, self.cfg.hidden)
        h = self.init_h_proj(emb).view(shape).transpose(0, 1).contiguous()
        c = self.init_c_proj(emb).view(shape).transpose(0, 1).contiguous()
        return h, c

    def step(self, strokes: torch.Tensor, emb: torch.Tensor, state) -> tuple[torch.Tensor, object]:
        cond = emb.unsqueeze(1).expand(-1, strokes.shape[1], -1)
        return self.lstm(torch.cat([strokes, cond], dim=-1), state)

    def keep_rows(self, state, rows: torch.Tensor):
        h, c = state
        return h[:, rows], c[:, rows]


class Block(nn.Module):
    """A pre-norm Transformer block: causal self-attention, then a 4x MLP."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.heads, self.dropout = cfg.heads, cfg.dropout
        self.norm1 = nn.LayerNorm(cfg.hidden)
        self.qkv = nn.Linear(cfg.hidden, 3 * cfg.hidden)
        self.proj = nn.Linear(cfg.hidden, cfg.hidden)
        self.norm2 = nn.LayerNorm(cfg.hidden)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.hidden, 4 * cfg.hidden), nn.GELU(), nn.Linear(4 * cfg.hidden, cfg.hidden)
        )
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, cache: LayerCache | None):
        """``x`` ``(B, T, hidden)``, the new steps. ``cache``, if given, holds the keys and
        values of the steps before them; this block's new ones are added to it."""
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if cache is not None:
            k, v = cache.add(k, v)
        p = k.shape[2] - t
        if p == 0:
            mask, causal = None, True
        elif t == 1:  # one new step sees every step before it
            mask, causal = None, False
        else:  # new step i sees the past and the new steps up to i
            mask = torch.ones(t, p + t, dtype=torch.bool, device=x.device).tril(p)
            causal = False
        drop = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop, is_causal=causal)
        x = x + self.drop(self.proj(y.transpose(1, 2).reshape(b, t, d)))
        return x + self.drop(self.mlp(self.norm2(x)))


class LayerCache:
    """One block's keys and values of the steps seen so far, ``(B, heads, steps, hidden /
    heads)``, in buffers that double when full: adding a step writes it in place, instead
    of copying every earlier step again (which made sampling quadratic in its length)."""

    def __init__(self):
        self.kv: torch.Tensor | None = None  # (2, B, heads, capacity, hidden / heads): keys, then values
        self.length = 0

    def add(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append the new steps' keys and values; the keys and values of every step so far."""
        end = self.length + k.shape[2]
        if self.kv is None or end > self.kv.shape[3]:
            grown = k.new_empty(2, *k.shape[:2], max(end, 2 * self.length, 64), k.shape[3])
            if self.kv is not None:
                grown[:, :, :, : self.length] = self.kv[:, :, :, : self.length]
            self.kv = grown
        self.kv[0, :, :, self.length : end] = k
        self.kv[1, :, :, self.length : end] = v
        self.length = end
        return self.kv[0, :, :, :end], self.kv[1, :, :, :end]

    def keep_rows(self, rows: torch.Tensor) -> None:
        """Keep the batch rows ``rows`` only (a copy of the steps so far, not of the spare room)."""
        if self.kv is not None:
            self.kv = self.kv[:, rows, :, : self.length]


def sinusoids(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Fixed sine and cosine position codes, ``(T,)`` -> ``(T, dim)``: any length works."""
    half = dim // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, device=positions.device) / max(half, 1))
    angle = positions.float()[:, None] * freq[None]
    codes = torch.cat([angle.sin(), angle.cos()], dim=-1)
    return F.pad(codes, (0, dim - 2 * half))


class SketchTransformer(StrokeModel):
    """A decoder-only Transformer over stroke-5 steps (``arch="transformer"``).

    Each step's input is its stroke-5 row projected to ``hidden``, plus the class
    embedding projected to ``hidden`` (the class is in every step, as in the LSTM),
    plus a sinusoidal position code. Causal self-attention means step ``t`` sees
    steps ``0..t`` only. The state is the cache of every layer's keys and values,
    so sampling computes each new step once.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        if cfg.hidden % cfg.heads:
            raise ValueError(f"hidden {cfg.hidden} is not a multiple of heads {cfg.heads}")
        self.input_proj = nn.Linear(5, cfg.hidden)
        self.class_proj = nn.Linear(cfg.embed_dim, cfg.hidden)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(cfg.hidden)
        self.head = HEADS[cfg.head](cfg)

    def initial_state(self, emb: torch.Tensor) -> list[LayerCache]:
        """An empty cache per block, which each call adds its steps to (in place: a state
        is used once, as sampling uses it)."""
        return [LayerCache() for _ in self.blocks]

    def whole_sequence_state(self, emb: torch.Tensor) -> None:
        """None: a sequence run whole (training, losses) needs no cache."""
        return None

    def step(self, strokes: torch.Tensor, emb: torch.Tensor, state) -> tuple[torch.Tensor, object]:
        seen = state[0].length if state else 0
        positions = torch.arange(seen, seen + strokes.shape[1], device=strokes.device)
        x = self.input_proj(strokes) + self.class_proj(emb).unsqueeze(1) + sinusoids(positions, self.cfg.hidden)
        for i, block in enumerate(self.blocks):
            x = block(x, state[i] if state else None)
        return self.norm(x), state

    def keep_rows(self, state, rows: torch.Tensor):
        for cache in state:
            cache.keep_rows(rows)
        return state


ARCHS: dict[str, type[StrokeModel]] = {"lstm": SketchModel, "transformer": SketchTransformer}


def build_model(cfg: ModelConfig) -> StrokeModel:
    """The model that ``cfg.arch`` names."""
    if cfg.arch not in ARCHS:
        raise ValueError(f"unknown arch {cfg.arch!r}")
    return ARCHS[cfg.arch](cfg)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
