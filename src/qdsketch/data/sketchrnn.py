"""Reading sketch-rnn's ``.npz`` files: stroke-3 arrays under ``train``, ``valid`` and ``test``.

They are pickled object arrays; ``_ArrayUnpickler`` lets numpy arrays through and
nothing else, so a hostile file cannot run code, and ``check_zip`` refuses a zip bomb.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from qdsketch.data.drawings import Drawings, Skipped
from qdsketch.errors import DataError


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy object arrays of arrays and nothing else: sketchrnn's
    npz files need pickle, and a plain ``allow_pickle=True`` runs any code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a sketchrnn file")


def _load_npy(handle: BinaryIO) -> np.ndarray:
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
    if dtype.hasobject:
        return _ArrayUnpickler(handle).load()
    count = int(np.prod(shape))
    data = np.frombuffer(handle.read(count * dtype.itemsize), dtype=dtype, count=count)
    return data.reshape(shape, order="F" if fortran else "C")


#: a zip member that expands more than this many times is refused before it is read (a zip bomb)
MAX_EXPANSION = 50


def check_zip(path: Path) -> None:
    """Refuse a zip (npz) whose members would expand past ``MAX_EXPANSION`` times their compressed size."""
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.file_size > MAX_EXPANSION * info.compress_size + (1 << 20):
                raise ValueError(f"{info.filename} would expand {info.file_size / max(info.compress_size, 1):,.0f}x")


def load_sketchrnn(path: Path) -> dict[str, list[np.ndarray]]:
    """The ``train``/``valid``/``test`` stroke-3 arrays of a sketchrnn ``.npz``."""
    try:
        check_zip(path)
        with zipfile.ZipFile(path) as archive:
            out = {}
            for member in archive.namelist():
                with archive.open(member) as handle:
                    drawings = _load_npy(io.BytesIO(handle.read()))
                if not isinstance(drawings, np.ndarray) or drawings.ndim == 0:  # a 0-d array, a pickled int
                    raise ValueError(f"{member} is not a list of drawings")
                out[member.removesuffix(".npy")] = list(drawings)
    # TypeError, KeyError...: what a crafted header or pickle raises inside numpy
    except (zipfile.BadZipFile, ValueError, TypeError, KeyError, AttributeError, EOFError, pickle.UnpicklingError, OSError) as exc:
        raise DataError(
            f"{path} is not a sketchrnn .npz file ({str(exc)[:120] or type(exc).__name__})",
            "download it again with `qdsketch download --format sketchrnn --force`",
        ) from None
    if not out:
        raise DataError(f"{path} holds no arrays", "download it again with --force")
    return out


def read_npz(path: Path, limit: int | None = None, seen: set | None = None, skipped: Skipped | None = None) -> Drawings:
    """Up to ``limit`` good drawings from a sketchrnn file (train, valid, test)."""
    skipped = skipped if skipped is not None else Skipped()
    seen = seen if seen is not None else set()
    name = Path(path).name
    parts: list[np.ndarray] = []
    keys: list[str] = []
    for split, arrays in load_sketchrnn(path).items():
        for i, a in enumerate(arrays):
            if limit is not None and len(keys) >= limit:
                break
            where = f"{name}:{split}[{i}]"
            a = np.asarray(a)
            if a.ndim != 2 or a.shape[1] != 3 or len(a) == 0:
                skipped.add(where, "not an (n, 3) stroke-3 array")
            elif not np.issubdtype(a.dtype, np.number) or not np.isfinite(a).all():
                skipped.add(where, "non-numeric value")
            elif not np.isin(a[:, 2], (0, 1)).all() or (a[:, :2] < -32767).any() or (a[:, :2] > 32767).any():
                # compared, not abs(): abs of int64's minimum is itself, negative
                skipped.add(where, "out-of-range value")
            elif where in seen:
                skipped.duplicates += 1
            else:
                seen.add(where)
                keys.append(where)
                parts.append(a.astype(np.int16))
    if not parts:
        return Drawings.empty()
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in parts])])
    return Drawings(np.concatenate(parts), offsets.astype(np.int64), keys)
