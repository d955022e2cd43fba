"""A data directory's files of a class, found and read as one stream of drawings.

A data directory holds one folder per format, as ``download`` writes them:
``simplified/<class>.ndjson`` (or ``.ndjson.gz``), ``raw/<class>.ndjson`` and
``sketchrnn/<class>.npz``. A class is read from all of its files, in that order,
a drawing seen twice (by ``key_id``) counted once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from qdsketch.classes import categories
from qdsketch.data.drawings import Drawings, Skipped, concat
from qdsketch.data.ndjson import GZ, iter_ndjson
from qdsketch.data.sketchrnn import read_npz

FORMATS = {"simplified": "ndjson", "raw": "ndjson", "sketchrnn": "npz"}


def class_file(folder: Path, name: str, fmt: str) -> Path | None:
    """The file of class ``name`` in format ``fmt`` inside ``folder``: ``<name>.ndjson``,
    else ``<name>.ndjson.gz`` (ndjson formats), ``<name>.npz`` (sketchrnn); ``None`` if
    there is none. Regular files only: a FIFO or a link to /dev/zero would never end."""
    plain = Path(folder) / f"{name}.{FORMATS[fmt]}"
    for path in (plain, plain.with_name(plain.name + GZ)) if FORMATS[fmt] == "ndjson" else (plain,):
        if path.is_file():
            return path
    return None


def class_name_of(path: Path, fmt: str) -> str | None:
    """``cat`` for ``cat.ndjson`` or ``cat.ndjson.gz`` (ndjson formats), or ``cat.npz``; else ``None``."""
    name, ext = Path(path).name, f".{FORMATS[fmt]}"
    if ext == ".ndjson" and name.endswith(ext + GZ):
        return name[: -len(ext + GZ)]
    return name[: -len(ext)] if name.endswith(ext) else None


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
