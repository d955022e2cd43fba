"""What to read and how to split it: a ``Plan``, and the classes read and split by it.

The split is seeded and runs here, class by class in order, whatever number of
processes read the classes, so a dataset is the same for any ``--workers``. The
normalisation is summed in exact integers (``Moments``) for the same reason.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qdsketch.data import pool
from qdsketch.data.drawings import Drawings, Skipped
from qdsketch.data.ndjson import load_kernels
from qdsketch.data.sources import classes_in, find_sources, read_class
from qdsketch.errors import DataError

FORMAT_VERSION = 1


def parse_split(text: str) -> tuple[float, float, float]:
    """``"70,15,15"`` -> ``(0.7, 0.15, 0.15)``."""
    try:
        parts = [float(p) for p in text.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 3 or not all(math.isfinite(p) for p in parts) or min(parts) < 0 or parts[0] <= 0:
        raise DataError(f"bad split {text!r}", "give three non-negative weights, e.g. --split 70,15,15")
    total = sum(parts)
    return tuple(p / total for p in parts)  # type: ignore[return-value]


def split_indices(n: int, fractions: tuple[float, float, float], rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle ``range(n)`` with ``rng`` and cut it into train, val and test."""
    order = rng.permutation(n)
    n_train = int(round(n * fractions[0]))
    n_val = int(round(n * fractions[1]))
    return [order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]]


MOMENT_BLOCK = 1 << 16  # rows summed at a time


@dataclass
class Moments:
    """Count, sum and sum of squares of dx and dy, as exact integers: added to
    chunk by chunk and merged across workers with no rounding at all, so the
    normalisation is the same however the rows are cut up. (Stroke-3 rows are
    integers; int64 sums hold 10^9 rows of offsets up to 2^15.)"""

    n: int = 0
    s1: tuple[int, int] = (0, 0)
    s2: tuple[int, int] = (0, 0)

    def add(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows)
        if rows.dtype.kind not in "iu":
            raise TypeError(f"stroke-3 rows are integers, not {rows.dtype}")
        s1, s2 = [0, 0], [0, 0]
        for start in range(0, len(rows), MOMENT_BLOCK):  # block by block, one column at a time: little memory
            for i in (0, 1):
                column = rows[start : start + MOMENT_BLOCK, i].astype(np.int64)
                s1[i] += int(column.sum())
                s2[i] += int(np.dot(column, column))
        self.merge(Moments(len(rows), (s1[0], s1[1]), (s2[0], s2[1])))

    def merge(self, other: Moments) -> None:
        self.n += other.n
        self.s1 = (self.s1[0] + other.s1[0], self.s1[1] + other.s1[1])
        self.s2 = (self.s2[0] + other.s2[0], self.s2[1] + other.s2[1])

    @property
    def mean(self) -> np.ndarray:
        return np.array([s / max(self.n, 1) for s in self.s1])

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation: sqrt(n s2 - s1^2) / n, the difference taken exactly."""
        n = max(self.n, 1)
        return np.array([math.sqrt(n * s2 - s1 * s1) / n for s1, s2 in zip(self.s1, self.s2)])

    def normalizer(self) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, std)`` as float32, a zero std replaced by 1 (as ``strokes.fit_normalizer``)."""
        std = self.std
        return self.mean.astype(np.float32), np.where(std > 0, std, 1.0).astype(np.float32)



@dataclass
class Plan:
    """What to read and how to split it: ``preprocess``'s options."""

    data_dir: Path
    classes: list[str]
    max_per_class: int | None = None
    max_seq_len: int = 150
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    seed: int = 0
    recognized_only: bool = True

    @classmethod
    def of(cls, data_dir: Path, classes: list[str] | None = None, **kw) -> Plan:
        """A plan for ``classes`` (by default every class ``data_dir`` holds); a class without files is an error."""
        data_dir = Path(data_dir)
        if classes is None:
            classes = classes_in(data_dir)
            if not classes:
                raise DataError(
                    f"no drawings in {data_dir}/", "run `qdsketch download --classes cat,clock` or pass --data-dir"
                )
        missing = [name for name in classes if not find_sources(data_dir, name)]
        if missing:
            if len(missing) == 1:
                raise DataError(
                    f"no data for {missing[0]!r} in {data_dir}/", f"run `qdsketch download --classes {missing[0]}`"
                )
            raise DataError(
                f"no data for {len(missing)} of the classes in {data_dir}/: {', '.join(map(repr, missing[:3]))}, ...",
                "download them (`qdsketch download --classes all` fetches every class), or name fewer with --classes",
            )
        return cls(data_dir, list(classes), **kw)

    def sources(self) -> dict[str, list[str]]:
        return {name: [str(p) for _, p in find_sources(self.data_dir, name)] for name in self.classes}

    def meta(self, skipped: Skipped, truncated: int) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "fractions": list(self.fractions),
            "recognized_only": self.recognized_only,
            "max_per_class": self.max_per_class,
            "sources": self.sources(),
            "skipped": skipped.as_dict(),
            "truncated": truncated,
        }


    def preload(self, workers: int) -> None:
        """Load the fast path's kernels here, once, where forked workers will inherit
        them (each would compile or load its own otherwise)."""
        if workers > 1 and pool.start_method() == "fork":
            if any(fmt == "simplified" for name in self.classes for fmt, _ in find_sources(self.data_dir, name)):
                load_kernels()


def _read_one(job: tuple) -> tuple[Drawings, Skipped]:
    """One class, read in a worker process: ``job`` is ``read_class``'s arguments but the last."""
    data_dir, name, limit, recognized_only = job
    skipped = Skipped()
    return read_class(data_dir, name, limit, recognized_only, skipped), skipped


def split_classes(
    plan: Plan, workers: int = 1, progress=None
) -> Iterator[tuple[int, Drawings, list[np.ndarray], Skipped, int]]:
    """Class by class, in order: ``(label, drawings, index, skipped, truncated)``, where
    ``index[k]`` picks, in order, the drawings of split ``k`` (``SPLITS``).

    Reading runs in ``workers`` processes; the split runs here, in class order,
    with one generator seeded by ``plan.seed``, so the output is the same for
    any number of workers."""
    rng = np.random.default_rng(plan.seed)
    jobs = [(plan.data_dir, name, plan.max_per_class, plan.recognized_only) for name in plan.classes]
    plan.preload(workers)
    for label, ((drawings, skipped), _) in enumerate(pool.ordered(jobs, workers, _read_one)):
        check_class(plan, label, len(drawings), skipped)
        truncated = int((np.diff(drawings.offsets) > plan.max_seq_len).sum())
        yield label, drawings, split_indices(len(drawings), plan.fractions, rng), skipped, truncated
        if progress is not None:
            progress(label + 1, len(plan.classes))


def check_class(plan: Plan, label: int, n: int, skipped: Skipped) -> None:
    """A class read with no drawing left is an error that says why."""
    if n:
        return
    name = plan.classes[label]
    where = ", ".join(plan.sources()[name])
    if skipped.unrecognized and plan.recognized_only:  # e.g. sample's own output, marked unrecognized
        raise DataError(
            f"every drawing of {name!r} in {where} is marked unrecognized ({skipped.unrecognized:,})",
            "pass --all-drawings to keep them",
        )
    raise DataError(f"no usable drawing for {name!r} in {where}", "download it again with `qdsketch download --force`")

