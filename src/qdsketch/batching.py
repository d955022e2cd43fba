"""Batches for training: a split on the device, grouped by length.

Each split becomes one flat tensor on the device holding, drawing after
drawing, ``SOS``, the normalised stroke-5 rows, and ``EOS``. A batch is one
gather from it, so the accelerator never waits on Python. Batches are drawn
from pools of similar length so that little is spent on padding.
"""

from __future__ import annotations

import numpy as np
import torch

from qdsketch.data import Split


class DeviceSplit:
    def __init__(self, split: Split, mean, std, device: torch.device | str = "cpu"):
        d = split.drawings
        lengths = np.diff(d.offsets)  # stroke-3 rows per drawing
        n = len(lengths)
        blocks = lengths + 2  # SOS + rows + EOS
        starts = np.concatenate([[0], np.cumsum(blocks)[:-1]]).astype(np.int64)
        flat = np.zeros((int(blocks.sum()), 5), dtype=np.float32)
        flat[starts, 2] = 1  # SOS = [0, 0, 1, 0, 0]
        flat[starts + blocks - 1, 4] = 1  # EOS = [0, 0, 0, 0, 1]
        body = np.ones(len(flat), dtype=bool)
        body[starts] = body[starts + blocks - 1] = False
        rows = d.rows.astype(np.float32)
        flat[body, :2] = (rows[:, :2] - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
        flat[body, 3] = rows[:, 2]
        flat[body, 2] = 1 - rows[:, 2]
        self.device = torch.device(device)
        self.flat = torch.from_numpy(flat).to(self.device)
        self.starts = torch.from_numpy(starts).to(self.device)
        self.steps_np = (lengths + 1).astype(np.int64)  # input/target steps per drawing
        self.steps = torch.from_numpy(self.steps_np).to(self.device)
        self.labels_np = np.asarray(split.labels, dtype=np.int64)
        self.labels = torch.from_numpy(self.labels_np).to(self.device)
        self.n = n

    def __len__(self) -> int:
        return self.n

    def batch(self, index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(inputs, targets, mask, labels)`` for the drawings at ``index``:
        inputs and targets ``(B, T, 5)``, padded with zeros past each drawing's
        steps, and ``mask`` ``(B, T)`` true on real steps."""
        t = int(self.steps_np[index].max())  # from the host copy: no device sync
        index = torch.from_numpy(np.asarray(index, dtype=np.int64)).to(self.device, non_blocking=True)
        steps = self.steps[index]
        pos = torch.arange(t + 1, device=self.device)
        gather = (self.starts[index, None] + pos[None, :]).clamp(max=len(self.flat) - 1)
        seq = self.flat[gather]
        # input t and target t are real together: t < steps (the block is SOS, rows, EOS)
        mask = pos[None, 1:] <= steps[:, None]
        keep = mask[..., None]
        return seq[:, :-1] * keep, seq[:, 1:] * keep, mask, self.labels[index]


def batch_order(
    steps: np.ndarray, batch_size: int, rng: np.random.Generator, pool: int = 50, shuffle: bool = True
) -> list[np.ndarray]:
    """Indices of each batch: shuffled, then sorted by length within pools of
    ``pool`` batches, so a batch holds drawings of similar length; the batches
    are then shuffled. Without ``shuffle``: sorted by length, for evaluation."""
    n = len(steps)
    if not shuffle:
        order = np.argsort(steps, kind="stable")
        return [order[i : i + batch_size] for i in range(0, n, batch_size)]
    order = rng.permutation(n)
    size = batch_size * pool
    batches = []
    for i in range(0, n, size):
        chunk = order[i : i + size]
        chunk = chunk[np.argsort(steps[chunk], kind="stable")]
        batches += [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def padding_efficiency(steps: np.ndarray, batches: list[np.ndarray]) -> float:
    """Real steps over computed steps (batch size x longest drawing)."""
    real = sum(int(steps[b].sum()) for b in batches)
    computed = sum(len(b) * int(steps[b].max()) for b in batches)
    return real / max(computed, 1)
