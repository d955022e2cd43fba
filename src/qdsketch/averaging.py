"""An exponential moving average of a model's weights (``TrainConfig.ema``).

Single optimizer steps leave the weights where the last few batches pushed them:
on all 345 classes, snapshots a few hundred steps apart measured validation losses
from 0.65 to 0.85, and the plain mean of five of them 0.644, better than any one
(docs/results.md). The average keeps that mean as training goes, at the cost of
one more copy of the weights.
"""

from __future__ import annotations

import copy

import torch

from qdsketch.model import StrokeModel


class WeightAverage:
    """The average of ``model``'s weights over its optimizer steps, itself a model
    (``self.model``, in eval mode) to validate, save and sample from."""

    def __init__(self, model: StrokeModel, decay: float, updates: int = 0):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay
        self.updates = updates  # steps averaged so far: the warm-up's clock, saved in last.pt

    def rate(self) -> float:
        """This step's decay: ``decay``, but lower over the first steps, so that the
        weights a run starts from (random ones, or a resumed run's) fade out fast."""
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: StrokeModel) -> None:
        """Move the average towards ``model``'s weights, after an optimizer step."""
        self.updates += 1
        rate = self.rate()
        for mine, theirs in zip(self.model.parameters(), model.parameters(), strict=True):
            mine.lerp_(theirs, 1 - rate)
        for buffer, trained in zip(self.model.buffers(), model.buffers(), strict=True):
            buffer.copy_(trained)
