"""The dataset file: drawings from disk to train/val/test splits, and back.

``build_dataset`` reads every file a data directory holds for the chosen
classes (``simplified/``, ``raw/``, ``sketchrnn/``, in that order, a drawing
seen twice by ``key_id`` counted once), truncates, splits per class with a
seeded generator and fits the normalisation on the training split only.
docs/data-format.md describes the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qdsketch import strokes
from qdsketch.classes import categories
from qdsketch.errors import DataError
from qdsketch.files import atomic_path
from qdsketch.readers import FORMATS, Drawings, Skipped, concat, read_ndjson, read_npz, select

SPLITS = ("train", "val", "test")
FORMAT_VERSION = 1


@dataclass
class Split:
    drawings: Drawings  # stroke-3, truncated to max_seq_len rows
    labels: np.ndarray  # (N,) int64, indices into class_names

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class Dataset:
    class_names: list[str]
    splits: dict[str, Split]
    mean: np.ndarray  # (2,) dx, dy mean over the training rows
    std: np.ndarray  # (2,) dx, dy standard deviation over the training rows
    max_seq_len: int
    seed: int
    meta: dict = field(default_factory=dict)  # fractions, sources, skipped, truncated


def find_sources(data_dir: Path, name: str) -> list[tuple[str, Path]]:
    """The files ``data_dir`` holds for class ``name``, as ``(format, path)``."""
    found = []
    for fmt, ext in FORMATS.items():
        path = Path(data_dir) / fmt / f"{name}.{ext}"
        if path.is_file():
            found.append((fmt, path))
    return found


def classes_in(data_dir: Path) -> list[str]:
    """Every known class with at least one file in ``data_dir``, in Google's order."""
    return [name for name in categories() if find_sources(data_dir, name)]


def read_class(data_dir: Path, name: str, limit: int | None, recognized_only: bool, skipped: Skipped) -> Drawings:
    """Up to ``limit`` drawings of one class from all its files, each drawing once."""
    seen: set = set()
    parts: list[Drawings] = []
    for fmt, path in find_sources(data_dir, name):
        want = None if limit is None else limit - sum(map(len, parts))
        if want == 0:
            break
        if fmt == "sketchrnn":
            parts.append(read_npz(path, want, seen, skipped))
        else:
            parts.append(read_ndjson(path, fmt, name, want, recognized_only, seen, skipped))
    return concat(parts)


def parse_split(text: str) -> tuple[float, float, float]:
    """``"70,15,15"`` -> ``(0.7, 0.15, 0.15)``."""
    try:
        parts = [float(p) for p in text.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 3 or min(parts) < 0 or parts[0] <= 0 or sum(parts) <= 0:
        raise DataError(f"bad split {text!r}", "give three non-negative weights, e.g. --split 70,15,15")
    total = sum(parts)
    return tuple(p / total for p in parts)  # type: ignore[return-value]


def split_indices(n: int, fractions: tuple[float, float, float], rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle ``range(n)`` with ``rng`` and cut it into train, val and test."""
    order = rng.permutation(n)
    n_train = int(round(n * fractions[0]))
    n_val = int(round(n * fractions[1]))
    return [order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]]


def build_dataset(
    data_dir: Path,
    classes: list[str] | None = None,
    max_per_class: int | None = None,
    max_seq_len: int = 150,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    recognized_only: bool = True,
) -> Dataset:
    data_dir = Path(data_dir)
    if classes is None:
        classes = classes_in(data_dir)
        if not classes:
            raise DataError(
                f"no drawings in {data_dir}/",
                "run `qdsketch download --classes cat,clock` or pass --data-dir",
            )
    rng = np.random.default_rng(seed)
    skipped = Skipped()
    pieces: dict[str, list[tuple[Drawings, int]]] = {s: [] for s in SPLITS}
    truncated = 0
    sources = {}
    for label, name in enumerate(classes):
        files = find_sources(data_dir, name)
        if not files:
            raise DataError(f"no data for {name!r} in {data_dir}/", f"run `qdsketch download --classes {name}`")
        sources[name] = [str(p) for _, p in files]
        drawings = read_class(data_dir, name, max_per_class, recognized_only, skipped)
        if not len(drawings):
            raise DataError(
                f"no usable drawing for {name!r} in {', '.join(sources[name])}",
                "download it again with `qdsketch download --force`",
            )
        truncated += int((np.diff(drawings.offsets) > max_seq_len).sum())
        for split, index in zip(SPLITS, split_indices(len(drawings), fractions, rng)):
            pieces[split].append((select(drawings, index, max_seq_len), label))
    splits = {
        s: Split(
            concat([d for d, _ in parts]),
            np.concatenate([np.full(len(d), label, np.int64) for d, label in parts]),
        )
        for s, parts in pieces.items()
    }
    if not len(splits["train"]):
        raise DataError("the training split is empty", "use more drawings or a larger first --split weight")
    mean, std = strokes.fit_normalizer(splits["train"].drawings.rows)
    meta = {
        "format_version": FORMAT_VERSION,
        "fractions": list(fractions),
        "recognized_only": recognized_only,
        "max_per_class": max_per_class,
        "sources": sources,
        "skipped": skipped.as_dict(),
        "truncated": truncated,
    }
    return Dataset(list(classes), splits, mean, std, max_seq_len, seed, meta)


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


def load_dataset(path: Path) -> Dataset:
    path = Path(path)
    fix = "make one with `qdsketch preprocess`"
    if not path.is_file():
        raise DataError(f"no dataset file at {path}", f"{fix} or pass --data")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:  # zipfile, pickle and format errors all mean the same here
        raise DataError(f"{path} is not a readable dataset file ({type(exc).__name__})", fix) from None
    needed = {"class_names", "mean", "std", "max_seq_len", "seed", "meta"} | {
        f"{s}_{k}" for s in SPLITS for k in ("rows", "offsets", "labels", "keys")
    }
    if not needed <= set(arrays):
        raise DataError(f"{path} is not a qdsketch dataset file", fix)
    splits = {
        s: Split(
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
        json.loads(str(arrays["meta"])),
    )


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
