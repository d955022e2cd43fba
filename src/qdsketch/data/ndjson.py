"""Reading a Quick, Draw! ndjson file, plain or gzipped, into stroke-3.

Two formats, as Google publishes them:

- ``simplified``: integer coordinates in 0..255, read by the compiled fast path
  (``fast``) wherever a chunk of lines is in Google's compact form, and otherwise
  by ``read_chunk`` here, line by line;
- ``raw``: screen coordinates and times, simplified here the way Google does it
  (``strokes.simplify_drawing``).

A bad drawing never stops a run: it is skipped, and counted with its file and
line. Reading stops as soon as enough drawings are kept, so memory follows the
drawings kept, not the size of the file.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import orjson

from qdsketch import strokes
from qdsketch.data import fast
from qdsketch.data.drawings import Drawings, Skipped, concat
from qdsketch.data.lines import Bad, Lines, Reading, check_drawing, from_points, parse_line
from qdsketch.errors import DataError

#: An ndjson file may also come gzipped, as mirrors often serve it: ``<class>.ndjson.gz``.
GZ = ".gz"
#: Drawings are read and checked this many at a time.
CHUNK = 1024
#: Simplified files take the fast path; tests turn it off to compare it with the simple one.
FAST = True


class _Gunzipped(io.RawIOBase):
    """A gzipped file's bytes, whose damage (cut short, corrupted, not gzip) is one
    ``DataError`` saying which file, wherever in the file it is found. Buffered by
    ``open_ndjson``, so lines are split in C, as for a plain file."""

    def __init__(self, path: Path):
        self.name = str(path)
        self._gzip = gzip.GzipFile(self.name, "rb")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        with _gzip_errors(self.name):
            data = self._gzip.read1(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._gzip.close()
        super().close()


@contextmanager
def _gzip_errors(name):
    try:
        yield
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        why = "cut short" if isinstance(exc, EOFError) else f"corrupted: {exc}"
        raise DataError(
            f"{name} is not a whole gzip file ({why})", f"download or copy it again; `gzip -t {name}` checks it"
        ) from None


def open_ndjson(path: Path) -> BinaryIO:
    """``path`` opened for reading bytes, decompressed as it is read if it ends in ``.gz``."""
    path = Path(path)
    if path.name.endswith(GZ):
        return io.BufferedReader(_Gunzipped(path), 1 << 16)
    return open(path, "rb")


def kernels_compiled() -> bool:
    """Whether numba has compiled the fast path's kernels on this machine already: its cache
    index beside ``scan.py`` names every ``@njit`` function there, by its line, for this
    Python (a changed ``scan.py`` moves the lines, and is compiled again). Read from the
    files, without importing numba (which takes a second). A cache that numba keeps
    elsewhere (a read-only install) counts as not compiled."""
    import ast
    import sys

    source = Path(__file__).with_name("scan.py")
    tag = f"py{sys.version_info.major}{sys.version_info.minor}"
    kernels = [
        node
        for node in ast.walk(ast.parse(source.read_text("utf-8")))
        if isinstance(node, ast.FunctionDef) and any("njit" in ast.unparse(d) for d in node.decorator_list)
    ]
    cache = source.with_name("__pycache__")
    # numba names a function's index by the first line of its code object: its first decorator's
    lines = {k.name: min(d.lineno for d in k.decorator_list) for k in kernels}
    return bool(kernels) and all((cache / f"scan.{name}-{line}.{tag}.nbi").is_file() for name, line in lines.items())


def load_kernels() -> None:
    """Load the fast path's compiled kernels now (they load on first use otherwise)."""
    if FAST:
        from qdsketch.data import scan

        scan.load()


def read_ndjson(
    path: Path,
    fmt: str,
    word: str | None = None,
    limit: int | None = None,
    recognized_only: bool = True,
    seen: set | None = None,
    skipped: Skipped | None = None,
) -> Drawings:
    """Read up to ``limit`` good drawings of one ndjson file as stroke-3.

    ``seen`` holds keys (``key_id``) already taken from other files: a drawing
    whose key is in it is a duplicate and is skipped; new keys are added.
    """
    return concat(list(iter_ndjson(path, fmt, word, limit, recognized_only, seen, skipped)), consume=True)


def iter_ndjson(
    path: Path,
    fmt: str,
    word: str | None = None,
    limit: int | None = None,
    recognized_only: bool = True,
    seen: set | None = None,
    skipped: Skipped | None = None,
) -> Iterator[Drawings]:
    """``read_ndjson``, ``CHUNK`` drawings at a time, so that a caller that writes
    them out as they come never holds the file's drawings at once."""
    reading = Reading(
        Path(path).name,
        word,
        recognized_only,
        seen if seen is not None else set(),
        skipped if skipped is not None else Skipped(),
    )
    total = 0
    with open_ndjson(path) as handle:  # bytes: orjson parses them without a decode
        lines = Lines(handle)  # shared by the chunks, so each resumes where the last stopped
        use_fast, hits, misses = fmt == "simplified" and FAST, 0, 0
        while limit is None or total < limit:
            want = CHUNK if limit is None else min(CHUNK, limit - total)
            chunk: Any = fast.FALLBACK
            if use_fast:
                chunk = fast.read_chunk(lines, want, reading)
                hits, misses = (hits, misses + 1) if chunk is fast.FALLBACK else (hits + 1, misses)
                use_fast = misses < 2 or hits >= misses  # a file that is not Google's compact JSON: stop trying
            if chunk is fast.FALLBACK:
                chunk = read_chunk(lines, fmt, want, reading)
            if chunk is None:
                break
            total += len(chunk)
            yield chunk


def read_chunk(lines: Lines, fmt: str, want: int, reading: Reading) -> Drawings | None:
    """Read lines until ``want`` drawings pass the structural checks, then check
    their values all at once; ``None`` at the end of the file.

    This loop is the hot path of ``preprocess`` (benchmarks/preprocess_speed.py):
    per line it does little more than ``json.loads`` and two list extends per
    stroke. Empty strokes, too few points, non-numeric and out-of-range values
    are found by numpy afterwards, for the whole chunk at once.
    """
    xs: list = []
    ys: list = []
    stroke_lengths: list[int] = []
    stroke_counts: list[int] = []
    keys: list[str] = []
    where: list[int] = []  # line numbers, for messages
    raw: list[list] = []
    eof = True
    parse, xs_extend, ys_extend, flat = orjson.loads, xs.extend, ys.extend, chain.from_iterable
    word, seen = reading.word, reading.seen
    for lineno, line in lines:
        if len(line) < 3 and not line.strip():  # blank; longer whitespace fails as malformed JSON
            continue
        try:
            try:  # parse_line inlined for the common case; anything unusual takes parse_line's own path
                obj = parse(line)
                if (
                    type(obj) is not dict
                    or "drawing" not in obj
                    or (word is not None and obj.get("word", word) != word)
                ):
                    raise ValueError
            except ValueError:  # orjson.JSONDecodeError is one
                obj = parse_line(line, word)
            key = reading.admit(obj, lineno)
            if key is None:
                continue
            drawing = obj["drawing"]
            if fmt == "raw":
                check_drawing(drawing, fmt)
                raw.append(drawing)
            else:
                x_columns, y_columns, lengths = _columns(drawing)
                xs_extend(flat(x_columns))  # a non-list column (str, dict) shows up as non-numeric later
                ys_extend(flat(y_columns))
                stroke_lengths += lengths
                stroke_counts.append(len(drawing))
        except Bad as bad:
            reading.bad(lineno, bad)
            continue
        seen.add(key)
        keys.append(key)
        where.append(lineno)
        if len(keys) >= want:
            eof = False
            break
    if not keys:
        return None if eof else Drawings.empty()
    if fmt == "raw":
        return _from_raw(raw, keys)
    return from_points(xs, ys, stroke_lengths, stroke_counts, keys, where, reading)


def _columns(drawing) -> tuple[tuple, tuple, list[int]]:
    """A simplified drawing's x columns, y columns and stroke lengths, taken
    apart in a few C-level calls (the per-stroke loop was the hot spot), or
    ``Bad`` saying why not."""
    if type(drawing) is not list or not drawing:
        raise Bad("empty drawing")
    try:
        if set(map(len, drawing)) != {2}:
            raise ValueError
        x_columns, y_columns = zip(*drawing)
        lengths = list(map(len, x_columns))
        if lengths != list(map(len, y_columns)):
            raise Bad("x/y length mismatch")
    except (TypeError, ValueError):
        raise Bad("a stroke is not [xs, ys]") from None
    return x_columns, y_columns, lengths


def _from_raw(raw, keys) -> Drawings:
    """Simplify raw drawings the way Google does, then convert them."""
    points, stroke_ends, drawing_ends = [], [], []
    total = 0
    for drawing in raw:
        for stroke in strokes.simplify_drawing(drawing):
            points.append(stroke)
            total += len(stroke)
            stroke_ends.append(total)
        drawing_ends.append(total)
    rows, offsets = strokes.points_to_stroke3(np.concatenate(points), np.asarray(stroke_ends), np.asarray(drawing_ends))
    return Drawings(rows.astype(np.int16), offsets, keys)


def read_drawing(path: Path, index: int = 0) -> tuple[str | None, np.ndarray]:
    """The ``index``-th usable drawing of an ndjson file (simplified or raw,
    told apart by its strokes), as ``(word, stroke-3 rows)``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no file at {path}", "pass an ndjson file of Quick, Draw! drawings")
    found = 0
    reasons = Skipped()
    with open_ndjson(path) as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                obj = parse_line(line)
                drawing = obj["drawing"]
                fmt = (
                    "raw"
                    if isinstance(drawing, list) and drawing and isinstance(drawing[0], list) and len(drawing[0]) == 3
                    else "simplified"
                )
                check_drawing(drawing, fmt)
            except Bad as bad:
                reasons.add(f"{path.name}:{lineno}", str(bad))
                continue
            if found == index:
                if fmt == "raw":
                    drawing = [[s[:, 0], s[:, 1]] for s in strokes.simplify_drawing(drawing)]
                return obj.get("word"), strokes.drawing_to_stroke3(drawing).astype(np.float32)
            found += 1
    why = f" ({reasons.examples[0]})" if reasons.examples else ""
    raise DataError(
        f"no usable drawing in {path}{why}", 'pass Quick, Draw! ndjson: one {"drawing": [[xs, ys], ...]} a line'
    )
