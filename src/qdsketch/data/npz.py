"""The dataset file: a whole dataset in one ``.npz``, read into memory.

docs/data-format.md describes its arrays. ``np.savez`` without compression: zlib
would triple the time of preprocess.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from qdsketch.data.dataset import SPLITS, Dataset, Split, check
from qdsketch.data.drawings import Drawings
from qdsketch.data.sketchrnn import check_zip
from qdsketch.errors import DataError
from qdsketch.files import atomic_path

FIX = "make one with `qdsketch preprocess`"


def save_npz(ds: Dataset, path: Path) -> None:
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
            np.savez(handle, **arrays)


def load_npz(path: Path) -> Dataset:
    """A dataset file, read whole and checked (``dataset.check``)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no dataset file at {path}", f"{FIX} or pass --data")
    try:
        check_zip(path)
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:  # zipfile, pickle and format errors all mean the same here
        raise DataError(f"{path} is not a readable dataset file ({type(exc).__name__}: {exc})"[:300], FIX) from None
    needed = {"class_names", "mean", "std", "max_seq_len", "seed", "meta"} | {
        f"{s}_{k}" for s in SPLITS for k in ("rows", "offsets", "labels", "keys")
    }
    if not needed <= set(arrays):
        raise DataError(f"{path} is not a qdsketch dataset file", FIX)
    try:
        ds = _dataset(arrays)
        check(ds)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{path} is not a usable dataset file ({exc})", FIX) from None
    return ds


def _dataset(a: dict) -> Dataset:
    """The arrays of a dataset file as a ``Dataset``; ``ValueError`` where one is not of its kind."""
    names = a["class_names"]
    if names.ndim != 1 or names.dtype.kind != "U":
        raise ValueError("class_names is not a list of names")
    for key in ("max_seq_len", "seed"):
        if a[key].shape != () or a[key].dtype.kind not in "iu":
            raise ValueError(f"{key} is not an integer")
    for s in SPLITS:
        if a[f"{s}_keys"].ndim != 1:
            raise ValueError(f"{s}_keys is not a list of keys")
        if a[f"{s}_labels"].dtype.kind not in "iu":
            raise ValueError(f"{s}_labels are not class indices")
    meta = json.loads(str(a["meta"]))
    if not isinstance(meta, dict):
        raise ValueError("meta is not a JSON object")
    splits = {
        s: Split.of(
            Drawings(a[f"{s}_rows"], a[f"{s}_offsets"], a[f"{s}_keys"].tolist()),
            a[f"{s}_labels"],
        )
        for s in SPLITS
    }
    return Dataset(names.tolist(), splits, a["mean"], a["std"], int(a["max_seq_len"]), int(a["seed"]), meta)
