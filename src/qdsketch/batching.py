"""Batches for training: a split on the device, grouped by length.

Each split becomes one flat tensor on the device holding, drawing after
drawing, ``SOS``, the normalised stroke-5 rows, and ``EOS``. A batch is one
gather from it, so the accelerator never waits on Python. Batches are drawn
from pools of similar length so that little is spent on padding.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from qdsketch.config import Augment
from qdsketch.data.dataset import Split
from qdsketch.strokes import EOS, SOS, stroke3_to_stroke5


class Batch(NamedTuple):
    inputs: torch.Tensor  # (B, T, 5), zero past each drawing's steps
    targets: torch.Tensor  # (B, T, 5), the inputs one step on
    mask: torch.Tensor  # (B, T), true on real steps
    labels: torch.Tensor  # (B,)
    steps: int  # real steps in the batch (fewer once augmentation drops points)
    computed: int  # steps the model computes: B x T


class DeviceSplit:
    def __init__(self, split: Split, mean, std, device: torch.device | str = "cpu"):
        d = split.drawings
        lengths = np.diff(d.offsets)  # stroke-3 rows per drawing
        n = len(lengths)
        blocks = lengths + 2  # SOS + rows + EOS
        starts = (np.cumsum(blocks) - blocks).astype(np.int64)
        flat = np.zeros((int(blocks.sum()), 5), dtype=np.float32)
        flat[starts] = SOS
        flat[starts + blocks - 1] = EOS
        body = np.ones(len(flat), dtype=bool)
        body[starts] = body[starts + blocks - 1] = False
        flat[body] = stroke3_to_stroke5(d.rows, mean, std)
        self.device = torch.device(device)
        self.mean = torch.as_tensor(np.asarray(mean, np.float32), device=self.device)
        self.std = torch.as_tensor(np.asarray(std, np.float32), device=self.device)
        self.flat = torch.from_numpy(flat).to(self.device)
        self.starts = torch.from_numpy(starts).to(self.device)
        self.steps_np = (lengths + 1).astype(np.int64)  # input/target steps per drawing
        self.steps = torch.from_numpy(self.steps_np).to(self.device)
        self.labels_np = np.array(split.labels, dtype=np.int64)  # a copy: a memory-mapped shard is read-only
        self.labels = torch.from_numpy(self.labels_np).to(self.device)
        self.n = n

    def __len__(self) -> int:
        return self.n

    def batch(
        self, index: np.ndarray, augment: Augment | None = None, generator: torch.Generator | None = None
    ) -> Batch:
        """The drawings at ``index`` as one padded ``Batch``. With ``augment``,
        their dx and dy are changed at random, drawn from ``generator``; only
        then does counting the real steps read from the device."""
        t = int(self.steps_np[index].max())  # from the host copy: no device sync
        at = torch.from_numpy(np.asarray(index, dtype=np.int64)).to(self.device, non_blocking=True)
        steps = self.steps[at]
        pos = torch.arange(t + 1, device=self.device)
        gather = (self.starts[at, None] + pos[None, :]).clamp(max=len(self.flat) - 1)
        seq = self.flat[gather]
        real = int(self.steps_np[index].sum())
        return finish_batch(seq, steps, pos, self.labels[at], real, augment, generator, self.mean, self.std)


def finish_batch(seq, steps, pos, labels, real: int, augment: Augment | None, generator, mean, std) -> Batch:
    """A ``Batch`` from padded sequences (SOS, rows, EOS), augmented first if asked,
    the same for both kinds of split."""
    if augment:
        seq, steps = augment_batch(seq, pos, steps, augment, generator, mean, std)
    # input t and target t are real together: t < steps (the block is SOS, rows, EOS)
    mask = pos[None, 1:] <= steps[:, None]
    if augment and augment.drop:  # dropped points shorten drawings
        real = int(mask.sum())
    keep = mask[..., None]
    return Batch(seq[:, :-1] * keep, seq[:, 1:] * keep, mask, labels, real, len(seq) * (len(pos) - 1))


def augment_batch(seq, pos, steps, augment: Augment, generator, mean: torch.Tensor, std: torch.Tensor):
    """Change the drawing rows (not SOS, EOS or padding) in pixels, then
    normalise again: scale, rotate, drop points inside strokes, jitter.
    Returns the new sequences and their (possibly fewer) steps."""
    b, width = seq.shape[:2]
    dev = seq.device
    body = (pos[None, :] >= 1) & (pos[None, :] < steps[:, None])
    xy = seq[..., :2] * std + mean
    if augment.scale > 0:
        xy = xy * (1 + augment.scale * (2 * torch.rand(b, 1, 2, device=dev, generator=generator) - 1))
    if augment.rotate > 0:
        angle = torch.deg2rad(augment.rotate * (2 * torch.rand(b, 1, device=dev, generator=generator) - 1))
        cos, sin = torch.cos(angle), torch.sin(angle)
        xy = torch.stack([cos * xy[..., 0] - sin * xy[..., 1], sin * xy[..., 0] + cos * xy[..., 1]], -1)
    if augment.drop > 0:
        # a row inside a stroke: the pen stays down after it and after the row before it,
        # and it is not the last row; dropping it merges its offset into the next row
        down = seq[..., 2] > 0.5
        inside = body & down & torch.roll(down, 1, dims=1) & (pos[None, :] >= 2) & (pos[None, :] < steps[:, None] - 1)
        dropped = inside & (torch.rand(b, width, device=dev, generator=generator) < augment.drop)
        absolute = torch.cumsum(xy * body[..., None], dim=1)
        kept = ~dropped
        new_pos = torch.cumsum(kept, dim=1) - 1  # where each kept row goes
        target = torch.where(kept, new_pos, torch.full_like(new_pos, width - 1))
        absolute = torch.zeros_like(absolute).scatter_(
            1, target[..., None].expand(-1, -1, 2), absolute * kept[..., None]
        )
        compact = torch.zeros_like(seq).scatter_(1, target[..., None].expand(-1, -1, 5), seq * kept[..., None])
        steps = steps - dropped.sum(1)
        body = (pos[None, :] >= 1) & (pos[None, :] < steps[:, None])
        xy = torch.diff(absolute, dim=1, prepend=torch.zeros_like(absolute[:, :1]))
        seq = compact * (pos[None, :] <= steps[:, None])[..., None]
    if augment.jitter > 0:
        xy = xy + augment.jitter * torch.randn(xy.shape, device=dev, generator=generator)
    seq = seq.clone()
    seq[..., :2] = torch.where(body[..., None], (xy - mean) / std, seq[..., :2])
    return seq, steps


class StreamSplit:
    """A split read batch by batch from its shards (memory-mapped), for data that
    does not fit in memory: the same batches as ``DeviceSplit``, bit for bit,
    with only the batch's rows read and sent to the device."""

    def __init__(self, split: Split, mean, std, device: torch.device | str = "cpu"):
        self.shards = [s.drawings for s in split.shards]
        counts = [len(s.labels) for s in split.shards]
        self.shard_of = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
        self.start = np.concatenate([np.asarray(d.offsets[:-1]) for d in self.shards] or [np.zeros(0, np.int64)])
        lengths = np.concatenate([np.diff(d.offsets) for d in self.shards] or [np.zeros(0, np.int64)])
        self.steps_np = (lengths + 1).astype(np.int64)
        self.labels_np = np.concatenate([np.asarray(s.labels) for s in split.shards] or [np.zeros(0, np.int64)])
        self.device = torch.device(device)
        self.mean_np, self.std_np = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        self.mean = torch.as_tensor(self.mean_np, device=self.device)
        self.std = torch.as_tensor(self.std_np, device=self.device)

    def __len__(self) -> int:
        return len(self.steps_np)

    def _rows(self, index: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """The stroke-3 rows of the drawings at ``index``, back to back, read shard by shard."""
        out = np.empty((int(lengths.sum()), 3), np.int16)
        at = np.concatenate([[0], np.cumsum(lengths)])
        shard = self.shard_of[index]
        for k in np.unique(shard):
            chosen = np.flatnonzero(shard == k)
            n = lengths[chosen]
            take = np.repeat(self.start[index[chosen]], n) + _ramp(n)
            out[np.repeat(at[chosen], n) + _ramp(n)] = self.shards[k].rows[take]
        return out

    def batch(
        self, index: np.ndarray, augment: Augment | None = None, generator: torch.Generator | None = None
    ) -> Batch:
        """As ``DeviceSplit.batch``."""
        index = np.asarray(index, dtype=np.int64)
        steps_np = self.steps_np[index]
        t, b = int(steps_np.max()), len(index)
        lengths = steps_np - 1
        rows = self._rows(index, lengths)
        seq = np.zeros((b, t + 1, 5), np.float32)
        who, where = np.repeat(np.arange(b), lengths), 1 + _ramp(lengths)
        seq[who, where] = stroke3_to_stroke5(rows, self.mean_np, self.std_np)
        seq[:, 0] = SOS
        seq[np.arange(b), lengths + 1] = EOS
        seq_t = torch.from_numpy(seq).to(self.device, non_blocking=True)
        steps = torch.from_numpy(steps_np).to(self.device)
        pos = torch.arange(t + 1, device=self.device)
        labels = torch.from_numpy(self.labels_np[index]).to(self.device)
        return finish_batch(seq_t, steps, pos, labels, int(steps_np.sum()), augment, generator, self.mean, self.std)


def _ramp(lengths: np.ndarray) -> np.ndarray:
    """``[0, 1, ..., n0 - 1, 0, 1, ..., n1 - 1, ...]`` for ``lengths = [n0, n1, ...]``."""
    lengths = np.asarray(lengths, np.int64)
    total = int(lengths.sum())
    return np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)


def balanced_weights(labels: np.ndarray) -> np.ndarray:
    """Per-drawing probabilities under which every class is drawn equally often:
    ``1 / (classes present x drawings of the class)``."""
    labels = np.asarray(labels)
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return 1.0 / (len(classes) * counts[inverse])


def sorted_batches(steps: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Indices of each batch, sorted by length: for evaluation, where order does not matter."""
    order = np.argsort(steps, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(steps), batch_size)]


def batch_order(
    steps: np.ndarray,
    batch_size: int,
    rng: np.random.Generator,
    pool: int = 50,
    weights: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Indices of each batch: shuffled, then sorted by length within pools of
    ``pool`` batches, so a batch holds drawings of similar length; the batches
    are then shuffled.

    With ``weights`` (per-drawing probabilities, e.g. ``balanced_weights``) an
    epoch is as many draws with replacement instead of a permutation."""
    n = len(steps)
    order = rng.permutation(n) if weights is None else rng.choice(n, size=n, replace=True, p=weights)
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
