"""The class-conditional stroke model and its heads (its config: ``qdsketch.config``).

The ``seed`` preset is exactly the reference's SketchGenerator
(../shared/reference): a class embedding concatenated to the stroke-5 input at
every step, a stacked LSTM whose initial h and c are linear projections of the
embedding, and an output head. The head is a separate module, so a mixture
density head can stand in for the reference's MSE one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from qdsketch.config import PRESETS, ModelConfig, preset

__all__ = ["HEADS", "PRESETS", "GMMHead", "MSEHead", "ModelConfig", "SketchModel", "count_parameters", "preset"]


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


class SketchModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.head not in HEADS:
            raise ValueError(f"unknown head {cfg.head!r}")
        self.cfg = cfg
        self.class_embedding = nn.Embedding(cfg.n_classes, cfg.embed_dim)
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

    def run(self, strokes: torch.Tensor, emb: torch.Tensor, state) -> dict:
        """The LSTM and the head over ``strokes``, conditioned on ``emb``, from ``state``."""
        cond = emb.unsqueeze(1).expand(-1, strokes.shape[1], -1)
        h, state = self.lstm(torch.cat([strokes, cond], dim=-1), state)
        out = self.head(h)
        out["state"] = state
        return out

    def forward(
        self,
        strokes: torch.Tensor,
        labels: torch.Tensor,
        targets: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        state: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[dict, dict | None]:
        """Run ``strokes`` ``(B, T, 5)`` for classes ``labels`` ``(B,)``.

        Returns the head's outputs (plus ``state``, the LSTM state after the
        last step) and, given ``targets`` and ``mask`` ``(B, T)``, the losses:
        ``xy``, ``pen`` and the weighted ``total``.
        """
        emb = self.class_embedding(labels)
        out = self.run(strokes, emb, self.initial_state(emb) if state is None else state)
        if targets is None:
            return out, None
        if mask is None:
            mask = torch.ones(targets.shape[:2], device=targets.device)
        losses = self.head.losses(out, targets, mask.float())
        losses["total"] = self.cfg.xy_weight * losses["xy"] + self.cfg.pen_weight * losses["pen"]
        return out, losses


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
