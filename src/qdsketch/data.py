"""The dataset file: drawings from disk to train/val/test splits, and back.

``build_dataset`` reads every file a data directory holds for the chosen
classes (``simplified/``, ``raw/``, ``sketchrnn/``, in that order, a drawing
seen twice by ``key_id`` counted once), truncates, splits per class with a
seeded generator and fits the normalisation on the training split only.
docs/data-format.md describes the file.
"""

from __future__ import annotations

import json
import math
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from itertools import islice
from pathlib import Path

import numpy as np

from qdsketch.classes import categories
from qdsketch.errors import DataError
from qdsketch.files import atomic_path
from qdsketch.readers import (
    FORMATS,
    Drawings,
    Skipped,
    check_zip,
    class_file,
    concat,
    iter_ndjson,
    load_kernels,
    read_npz,
    select,
)

SPLITS = ("train", "val", "test")
FORMAT_VERSION = 1


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
        return self.shards[0].labels if len(self.shards) == 1 else _labels(self.shards)


@dataclass
class Dataset:
    class_names: list[str]
    splits: dict[str, Split]
    mean: np.ndarray  # (2,) dx, dy mean over the training rows
    std: np.ndarray  # (2,) dx, dy standard deviation over the training rows
    max_seq_len: int
    seed: int
    meta: dict = field(default_factory=dict)  # fractions, sources, skipped, truncated
    sharded: bool = False  # memory-mapped from a sharded directory (qdsketch.shards)


def find_sources(data_dir: Path, name: str) -> list[tuple[str, Path]]:
    """The files ``data_dir`` holds for class ``name``, as ``(format, path)``; an ndjson
    file may be gzipped (``<name>.ndjson.gz``, read when there is no ``<name>.ndjson``)."""
    found = []
    for fmt in FORMATS:
        path = class_file(Path(data_dir) / fmt, name, fmt)
        if path is not None:
            found.append((fmt, path))
    return found


def classes_in(data_dir: Path) -> list[str]:
    """Every known class with at least one file in ``data_dir``, in Google's order."""
    return [name for name in categories() if find_sources(data_dir, name)]


def read_class(data_dir: Path, name: str, limit: int | None, recognized_only: bool, skipped: Skipped) -> Drawings:
    """Up to ``limit`` drawings of one class from all its files, each drawing once."""
    return concat(list(iter_class(data_dir, name, limit, recognized_only, skipped)), consume=True)


def iter_class(
    data_dir: Path, name: str, limit: int | None, recognized_only: bool, skipped: Skipped
) -> Iterator[Drawings]:
    """``read_class``, a chunk of drawings at a time (a sketchrnn file is one chunk)."""
    seen: set = set()
    total = 0
    for fmt, path in find_sources(data_dir, name):
        want = None if limit is None else limit - total
        if want == 0:
            break
        if fmt == "sketchrnn":
            chunks: Iterable[Drawings] = [read_npz(path, want, seen, skipped)]
        else:
            chunks = iter_ndjson(path, fmt, name, want, recognized_only, seen, skipped)
        for chunk in chunks:
            total += len(chunk)
            yield chunk


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


def _read_one(job: tuple) -> tuple[Drawings, Skipped]:
    """One class, read in a worker process: ``job`` is ``read_class``'s arguments but the last."""
    data_dir, name, limit, recognized_only = job
    skipped = Skipped()
    return read_class(data_dir, name, limit, recognized_only, skipped), skipped


def read_classes(jobs: list[tuple], workers: int = 1, read: Callable = _read_one) -> Iterator:
    """``read`` (by default ``_read_one``) of each job, in order, reading up to
    ``workers`` classes at once; at most ``2 x workers`` finished classes wait to
    be taken, so memory stays bounded however many classes there are."""
    for first, _ in read_classes_twice(jobs, workers, read):
        yield first


def read_classes_twice(
    jobs: list[tuple], workers: int = 1, first: Callable = _read_one, between=None, second=None
) -> Iterator[tuple]:
    """``(first(job), second(between(first(job))))`` for each job, in order, with ``first``
    and ``second`` run in up to ``workers`` processes at once and ``between`` here, in
    job order (``second``, ``between``: none by default). At most ``2 x workers`` jobs
    wait at each step, so memory stays bounded however many there are."""
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            got = first(job)
            yield got, None if second is None else second(between(got))
        return
    import multiprocessing as mp

    # fork starts a worker in milliseconds, but is unsafe once torch (and its threads) is loaded
    method = "fork" if "fork" in mp.get_all_start_methods() and "torch" not in sys.modules else "spawn"
    if method == "fork" and any(fmt == "simplified" for job in jobs for fmt, _ in find_sources(job[0], job[1])):
        load_kernels()  # once here, not once in each worker
    with mp.get_context(method).Pool(workers) as pool:
        firsts: deque = deque()  # results of first, in job order
        seconds: deque = deque()  # (first's result, second's), in job order
        queue = iter(jobs)
        for job in islice(queue, 2 * workers):
            firsts.append(pool.apply_async(first, (job,)))
        while firsts or seconds:
            if firsts and (second is None or len(seconds) < 2 * workers):
                got = firsts.popleft().get()
                for job in islice(queue, 1):  # one more in, for the one out
                    firsts.append(pool.apply_async(first, (job,)))
                if second is None:
                    yield got, None
                    continue
                seconds.append((got, pool.apply_async(second, (between(got),))))
            else:
                got, then = seconds.popleft()
                yield got, then.get()


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
    for label, (drawings, skipped) in enumerate(read_classes(jobs, workers)):
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


def build_dataset(
    data_dir: Path,
    classes: list[str] | None = None,
    max_per_class: int | None = None,
    max_seq_len: int = 150,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    recognized_only: bool = True,
    workers: int = 1,
    progress=None,
) -> Dataset:
    """The whole dataset in memory (``write_shards`` streams it to disk instead)."""
    plan = Plan.of(
        data_dir,
        classes,
        max_per_class=max_per_class,
        max_seq_len=max_seq_len,
        fractions=fractions,
        seed=seed,
        recognized_only=recognized_only,
    )
    return build(plan, workers, progress)


def build(plan: Plan, workers: int = 1, progress=None) -> Dataset:
    """``plan`` read and split, in memory."""
    skipped, truncated, moments = Skipped(), 0, Moments()
    pieces: dict[str, list[Shard]] = {s: [] for s in SPLITS}
    for label, drawings, index, class_skipped, class_truncated in split_classes(plan, workers, progress):
        skipped.merge(class_skipped)
        truncated += class_truncated
        parts = {split: select(drawings, i, plan.max_seq_len) for split, i in zip(SPLITS, index)}
        moments.add(parts["train"].rows)
        for split, d in parts.items():
            pieces[split].append(Shard(d, np.full(len(d), label, np.int64)))
    splits = {s: Split.of(concat([p.drawings for p in parts]), _labels(parts)) for s, parts in pieces.items()}
    if not len(splits["train"]):
        raise DataError("the training split is empty", "use more drawings or a larger first --split weight")
    mean, std = moments.normalizer()
    meta = plan.meta(skipped, truncated)
    return Dataset(list(plan.classes), splits, mean, std, plan.max_seq_len, plan.seed, meta)


def _labels(shards: list[Shard]) -> np.ndarray:
    return np.concatenate([s.labels for s in shards]) if shards else np.zeros(0, np.int64)


# --- the file ---------------------------------------------------------------------------


def save_dataset(ds: Dataset, path: Path) -> None:
    arrays = {
        "class_names": np.array(ds.class_names, dtype=np.str_),
        "mean": ds.mean.astype(np.float32),
        "std": ds.std.astype(np.float32),
        "max_seq_len": np.int64(ds.max_seq_len),
        "seed": np.int64(ds.seed),
        "meta": np.array(json.dumps(ds.meta)),
    }
    for name, split in ds.splits.items():
        arrays[f"{name}_rows"] = split.drawings.rows.astype(np.int16)
        arrays[f"{name}_offsets"] = split.drawings.offsets
        arrays[f"{name}_labels"] = split.labels
        arrays[f"{name}_keys"] = np.array(split.drawings.keys, dtype=np.str_)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)  # zlib would triple the time of preprocess


def preprocess(plan: Plan, output: Path, workers: int = 1, progress=None) -> dict:
    """``qdsketch preprocess``: ``plan`` read, split and written to ``output``, a
    dataset file (``.npz``, built in memory) or else a sharded directory (streamed,
    ``qdsketch.shards``); returns the summary."""
    output = Path(output)
    if output.suffix.lower() == ".npz":
        ds = build(plan, workers, progress)
        save_dataset(ds, output)
        return summarize(ds)
    from qdsketch.shards import summary, write_shards

    return summary(write_shards(plan, output, workers, progress=progress))


def load_dataset(path: Path) -> Dataset:
    """A dataset file, or a sharded dataset directory (memory-mapped)."""
    path = Path(path)
    if path.is_dir():
        from qdsketch.shards import load_shards

        return load_shards(path)
    fix = "make one with `qdsketch preprocess`"
    if not path.is_file():
        raise DataError(f"no dataset file at {path}", f"{fix} or pass --data")
    try:
        check_zip(path)
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:  # zipfile, pickle and format errors all mean the same here
        raise DataError(f"{path} is not a readable dataset file ({type(exc).__name__}: {exc})"[:300], fix) from None
    needed = {"class_names", "mean", "std", "max_seq_len", "seed", "meta"} | {
        f"{s}_{k}" for s in SPLITS for k in ("rows", "offsets", "labels", "keys")
    }
    if not needed <= set(arrays):
        raise DataError(f"{path} is not a qdsketch dataset file", fix)
    try:
        meta = _checked(arrays)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{path} is not a usable dataset file ({exc})", fix) from None
    splits = {
        s: Split.of(
            Drawings(arrays[f"{s}_rows"], arrays[f"{s}_offsets"], arrays[f"{s}_keys"].tolist()),
            arrays[f"{s}_labels"],
        )
        for s in SPLITS
    }
    return Dataset(
        arrays["class_names"].tolist(),
        splits,
        arrays["mean"],
        arrays["std"],
        int(arrays["max_seq_len"]),
        int(arrays["seed"]),
        meta,
    )


def _checked(a: dict) -> dict:
    """Every array of a dataset file, checked for dtype, shape and range; returns its meta.
    ``ValueError`` says what is wrong."""
    names = a["class_names"]
    if names.ndim != 1 or names.dtype.kind != "U" or not len(names):
        raise ValueError("class_names is not a list of names")
    for key in ("mean", "std"):
        if a[key].shape != (2,) or not np.isfinite(a[key]).all():
            raise ValueError(f"{key} is not two finite numbers")
    if (a["std"] <= 0).any():
        raise ValueError("std is not positive")
    for key in ("max_seq_len", "seed"):
        if a[key].shape != () or a[key].dtype.kind not in "iu" or int(a[key]) < (1 if key == "max_seq_len" else 0):
            raise ValueError(f"{key} is not a positive integer")
    for s in SPLITS:
        rows, offsets, labels, keys = (a[f"{s}_{k}"] for k in ("rows", "offsets", "labels", "keys"))
        if rows.ndim != 2 or rows.shape[1] != 3 or rows.dtype.kind not in "iu":
            raise ValueError(f"{s}_rows is not integer rows of 3")
        if ((rows[:, 2] != 0) & (rows[:, 2] != 1)).any():
            raise ValueError(f"{s}_rows has pen values other than 0 and 1")
        if offsets.ndim != 1 or offsets.dtype.kind not in "iu" or not len(offsets) or offsets[0] != 0:
            raise ValueError(f"{s}_offsets does not start at 0")
        if (np.diff(offsets) < 0).any() or offsets[-1] != len(rows):
            raise ValueError(f"{s}_offsets do not cut {s}_rows")
        n = len(offsets) - 1
        if labels.shape != (n,) or keys.shape != (n,) or labels.dtype.kind not in "iu":
            raise ValueError(f"{s}_labels or {s}_keys do not match its {n} drawings")
        if n and (labels.min() < 0 or labels.max() >= len(names)):
            raise ValueError(f"{s}_labels are not class indices")
    meta = json.loads(str(a["meta"]))
    if not isinstance(meta, dict):
        raise ValueError("meta is not a JSON object")
    return meta


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
