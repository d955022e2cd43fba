"""Drawings as stroke-3 in two arrays, and what a read leaves out.

A class's drawings are one ``(R, 3)`` array of rows and one ``(N + 1,)`` array of
offsets, drawing ``i`` being ``rows[offsets[i]:offsets[i + 1]]``: a million drawings
are two numpy arrays, not a million small ones. The helpers below select, cut and
join them without a Python loop over drawings.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Skipped:
    """Drawings left out of a read: counts per reason, and the first examples."""

    reasons: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    unrecognized: int = 0
    duplicates: int = 0

    def add(self, where: str, reason: str) -> None:
        self.reasons[reason] += 1
        if len(self.examples) < 20:
            self.examples.append(f"{where}: {reason}")

    @property
    def bad(self) -> int:
        return sum(self.reasons.values())

    def merge(self, other: Skipped) -> None:
        self.reasons.update(other.reasons)
        self.examples.extend(other.examples[: max(0, 20 - len(self.examples))])
        self.unrecognized += other.unrecognized
        self.duplicates += other.duplicates

    def as_dict(self) -> dict:
        return {
            "bad": dict(self.reasons),
            "examples": self.examples,
            "unrecognized": self.unrecognized,
            "duplicates": self.duplicates,
        }


@dataclass
class Drawings:
    """Drawings of one class as stroke-3: ``rows[offsets[i]:offsets[i+1]]``."""

    rows: np.ndarray  # (R, 3) int16
    offsets: np.ndarray  # (N + 1,) int64
    keys: Sequence[str]  # key_id, or the source position where a drawing has none

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @classmethod
    def empty(cls) -> Drawings:
        return cls(np.zeros((0, 3), np.int16), np.zeros(1, np.int64), [])



def select(d: Drawings, index: np.ndarray, max_len: int | None = None) -> Drawings:
    """The drawings at ``index``, in that order, each cut to ``max_len`` rows
    the way ``strokes.truncate`` cuts one."""
    index = np.asarray(index, dtype=np.int64)
    rows, offsets = select_rows(d.rows, d.offsets, index, max_len)
    return Drawings(rows, offsets, [d.keys[i] for i in index])


def select_rows(rows: np.ndarray, offsets: np.ndarray, index: np.ndarray, max_len: int | None = None):
    """``select`` without the keys: ``(rows, offsets)``."""
    index = np.asarray(index, dtype=np.int64)
    out, out_offsets = take_ragged(rows, offsets, index, max_len)
    if max_len is not None:
        cut = offsets[index + 1] - offsets[index] > max_len
        out[out_offsets[1:][cut] - 1, 2] = 1  # a cut drawing ends its last stroke
    return out, out_offsets


def take_ragged(data: np.ndarray, offsets: np.ndarray, index: np.ndarray, max_len: int | None = None):
    """``(data, offsets)`` of the pieces ``data[offsets[i]:offsets[i + 1]]`` for ``i`` in
    ``index``, in that order, each cut to its first ``max_len`` items."""
    from qdsketch.data import scan  # a compiled copy: numpy's fancy indexing took 2 us a drawing

    index = np.asarray(index, dtype=np.int64)
    if len(index) and (index.min() < 0 or index.max() >= len(offsets) - 1):
        raise IndexError(f"index out of range for {len(offsets) - 1} pieces")
    offsets = np.asarray(offsets, dtype=np.int64)
    return scan.take_ragged(data, offsets, index, -1 if max_len is None else max_len)


def concat(parts: list[Drawings], consume: bool = False) -> Drawings:
    """``parts`` joined in order. ``consume``: empty the list as each part is copied, so
    a caller that holds no other reference to them never holds the drawings twice."""
    kept = [p for p in parts if len(p)]
    if consume:
        parts.clear()
    if not kept:
        return Drawings.empty()
    if len(kept) == 1:  # nothing to join: no copy
        return kept[0]
    kept.reverse()  # popped from the end, first part first
    n_rows = sum(len(p.rows) for p in kept)
    rows = np.empty((n_rows, 3), dtype=np.result_type(*[p.rows for p in kept]))
    offsets, at = [np.zeros(1, np.int64)], 0
    keys: list[str] = []
    while kept:
        p = kept.pop()  # our list's last reference to it, with consume
        rows[at : at + len(p.rows)] = p.rows
        offsets.append(p.offsets[1:] + at)
        keys += p.keys
        at += len(p.rows)
        del p
    return Drawings(rows, np.concatenate(offsets).astype(np.int64), keys)

