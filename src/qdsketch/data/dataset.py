"""A dataset in memory: class names, three splits of drawings, the normalisation.

Two formats hold one (``npz``: one file; ``shards``: a directory, memory-mapped);
both loaders end in ``check``, so a dataset that reaches training or evaluation
is whole and consistent, whichever file it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from qdsketch.data.drawings import Drawings, concat

SPLITS = ("train", "val", "test")
#: what ``preprocess --max-seq-len`` and a checkpoint allow
MAX_SEQ_LEN = 10_000
CHECK_BLOCK = 1 << 22  # rows whose pen values are checked at a time: bounded memory for mapped shards


@dataclass
class Shard:
    """Some drawings of one split, in memory or memory-mapped from a shard's files."""

    drawings: Drawings  # stroke-3, truncated to max_seq_len rows
    labels: np.ndarray  # (N,) int64, indices into class_names


@dataclass
class Split:
    """One split: its shards, one for a dataset file, several for a sharded dataset."""

    shards: list[Shard]

    @classmethod
    def of(cls, drawings: Drawings, labels: np.ndarray) -> Split:
        return cls([Shard(drawings, np.asarray(labels, np.int64))])

    def __len__(self) -> int:
        return sum(len(s.labels) for s in self.shards)

    @cached_property
    def drawings(self) -> Drawings:
        """Every drawing of the split, in memory (a sharded split is read whole)."""
        if len(self.shards) == 1:
            return self.shards[0].drawings
        return concat([s.drawings for s in self.shards])

    @cached_property
    def labels(self) -> np.ndarray:
        return self.shards[0].labels if len(self.shards) == 1 else join_labels(self.shards)


@dataclass
class Dataset:
    class_names: list[str]
    splits: dict[str, Split]
    mean: np.ndarray  # (2,) dx, dy mean over the training rows
    std: np.ndarray  # (2,) dx, dy standard deviation over the training rows
    max_seq_len: int
    seed: int
    meta: dict = field(default_factory=dict)  # fractions, sources, skipped, truncated
    sharded: bool = False  # memory-mapped from a sharded directory (qdsketch.data.shards)



def join_labels(shards: list[Shard]) -> np.ndarray:
    return np.concatenate([s.labels for s in shards]) if shards else np.zeros(0, np.int64)


def check(ds: Dataset) -> None:
    """Raise ``ValueError`` saying what is wrong unless ``ds`` is whole and consistent:
    names, normalisation and length limit usable, every shard's offsets cutting its
    rows, pen values 0 or 1, labels naming classes, and every class with a drawing.
    Each loader turns the error into a ``DataError`` naming its file."""
    names = ds.class_names
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError("class_names is not a list of names")
    for key in ("mean", "std"):
        value = np.asarray(getattr(ds, key))
        if value.shape != (2,) or value.dtype.kind not in "iuf" or not np.isfinite(value).all():
            raise ValueError(f"{key} is not two finite numbers")
    if (np.asarray(ds.std) <= 0).any():
        raise ValueError("std is not positive")
    if not 1 <= ds.max_seq_len <= MAX_SEQ_LEN:
        raise ValueError(f"max_seq_len {ds.max_seq_len} is not between 1 and {MAX_SEQ_LEN:,}")
    if ds.seed < 0:
        raise ValueError("seed is negative")
    per_class = np.zeros(len(names), np.int64)
    for split in SPLITS:
        for k, shard in enumerate(ds.splits[split].shards):
            what = split if len(ds.splits[split].shards) == 1 else f"{split} shard {k}"
            _check_shard(shard, len(names), what)
            if len(shard.labels):
                per_class += np.bincount(shard.labels, minlength=len(names))
    if not len(ds.splits["train"]):
        raise ValueError("the training split is empty")
    if (per_class == 0).any():
        raise ValueError(f"class {names[int(np.argmin(per_class))]!r} has no drawings in train, val or test")


def _check_shard(shard: Shard, n_classes: int, what: str) -> None:
    rows, offsets, labels = shard.drawings.rows, shard.drawings.offsets, shard.labels
    if rows.ndim != 2 or rows.shape[1] != 3 or rows.dtype.kind not in "iu":
        raise ValueError(f"the {what} rows are not integer rows of 3")
    for start in range(0, len(rows), CHECK_BLOCK):
        pen = rows[start : start + CHECK_BLOCK, 2]
        if ((pen != 0) & (pen != 1)).any():
            raise ValueError(f"the {what} rows have pen values other than 0 and 1")
    if offsets.ndim != 1 or offsets.dtype.kind not in "iu" or not len(offsets) or offsets[0] != 0:
        raise ValueError(f"the {what} offsets do not start at 0")
    if (np.diff(offsets) < 0).any() or offsets[-1] != len(rows):
        raise ValueError(f"the {what} offsets do not cut its rows")
    n = len(offsets) - 1
    if labels.shape != (n,) or len(shard.drawings.keys) != n or labels.dtype.kind not in "iu":
        raise ValueError(f"the {what} labels or keys do not match its {n} drawings")
    if n and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"the {what} labels are not class indices")


def summarize(ds: Dataset) -> dict:
    """Counts per class and split, lengths, truncation and normalisation."""
    per_class = {}
    for label, name in enumerate(ds.class_names):
        per_class[name] = {s: int((ds.splits[s].labels == label).sum()) for s in SPLITS}
    lengths = np.concatenate([np.diff(ds.splits[s].drawings.offsets) for s in SPLITS])
    return {
        "classes": per_class,
        "total": {s: len(ds.splits[s]) for s in SPLITS},
        "mean_length": float(lengths.mean()) if len(lengths) else 0.0,
        "max_length": int(lengths.max()) if len(lengths) else 0,
        "max_seq_len": ds.max_seq_len,
        "truncated": ds.meta.get("truncated", 0),
        "skipped": ds.meta.get("skipped", {}),
        "dx": {"mean": float(ds.mean[0]), "std": float(ds.std[0])},
        "dy": {"mean": float(ds.mean[1]), "std": float(ds.std[1])},
    }
