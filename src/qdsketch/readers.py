"""Reading Quick, Draw! files into stroke-3, skipping and counting bad drawings.

Three inputs, as Google publishes them:

- ``simplified`` ndjson: integer coordinates in 0..255;
- ``raw`` ndjson: screen coordinates and times, simplified here the way Google
  does it (``strokes.simplify_drawing``);
- ``sketchrnn`` npz: stroke-3 arrays under ``train``, ``valid`` and ``test``.

A bad drawing never stops a run: it is skipped, and counted with its file and
line. Reading stops as soon as enough drawings are kept, so memory follows the
drawings kept, not the size of the file.
"""

from __future__ import annotations

import gzip
import io
import json
import pickle
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain, islice, repeat
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import orjson

from qdsketch import strokes
from qdsketch.errors import DataError

FORMATS = {"simplified": "ndjson", "raw": "ndjson", "sketchrnn": "npz"}
#: An ndjson file may also come gzipped, as mirrors often serve it: ``<class>.ndjson.gz``.
GZ = ".gz"

#: Raw coordinates are screen pixels; anything past this is not a drawing.
RAW_LIMIT = 1e6
#: Drawings are read and checked this many at a time.
CHUNK = 1024
#: Simplified files take ``_fast_chunk``; tests turn it off to compare it with the slow path.
FAST = True


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
    keys: list[str]  # key_id, or the source position where a drawing has none

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @classmethod
    def empty(cls) -> Drawings:
        return cls(np.zeros((0, 3), np.int16), np.zeros(1, np.int64), [])


class _Bad(Exception):
    """One drawing is unusable; the message says why."""


# --- line level: shared with download ----------------------------------------------


def loads(line: bytes | str):
    """``json.loads``, about 4x faster: orjson parses what it can (nearly every
    line); the rest (NaN, integers past 64 bits, bytes that are not UTF-8, bad
    JSON) goes to the standard library, so the result is always what ``json``
    would give, invalid UTF-8 read as U+FFFD."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        if isinstance(line, bytes):
            line = line.decode("utf-8", "replace")
        return json.loads(line.removeprefix("\ufeff"))  # a byte-order mark, as editors on Windows write


def parse_line(line: bytes | str, word: str | None = None) -> dict:
    """Parse one ndjson line into its object, or raise ``_Bad`` saying why."""
    try:
        obj = loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested thousands deep
        raise _Bad("malformed JSON") from None
    if not isinstance(obj, dict) or "drawing" not in obj:
        raise _Bad("not a Quick, Draw! drawing (no 'drawing' key)")
    _check_word(obj, word)
    return obj


def _check_word(obj: dict, word: str | None) -> None:
    """``_Bad`` if ``obj`` is a drawing of another class than ``word``."""
    if word is not None and obj.get("word", word) != word:
        raise _Bad(f"word {obj.get('word')!r} where {word!r} was expected")


def _unrecognized(obj: dict) -> bool:
    """Google's model did not recognise the drawing (a drawing that does not say is recognised)."""
    return obj.get("recognized", True) is False


def _key(obj: dict, name: str, lineno: int) -> str:
    """A drawing's ``key_id``, or its file and line where it has none; ``_Bad`` if not a string."""
    key = obj.get("key_id") or f"{name}:{lineno}"
    if type(key) is not str:
        raise _Bad("key_id is not a string")
    return key


def check_drawing(drawing, fmt: str) -> None:
    """Full check of one drawing's strokes, value by value; raises ``_Bad``."""
    if not isinstance(drawing, list) or not drawing:
        raise _Bad("empty drawing")
    arity = 3 if fmt == "raw" else 2
    low, high = (-RAW_LIMIT, RAW_LIMIT) if fmt == "raw" else (0, strokes.SIMPLIFIED_MAX)
    points = 0
    for stroke in drawing:
        if not isinstance(stroke, list) or len(stroke) < 2:
            raise _Bad("a stroke is not [xs, ys]")
        columns = stroke[:arity]
        if not all(isinstance(c, list) for c in columns):
            raise _Bad("a stroke is not [xs, ys]")
        if len({len(c) for c in columns}) != 1:
            raise _Bad("x/y length mismatch")
        if not columns[0]:
            raise _Bad("empty stroke")
        for column in columns[:2]:
            for v in column:
                if type(v) not in (int, float):
                    raise _Bad("non-numeric value")
                if not low <= v <= high:
                    raise _Bad("out-of-range value")
        points += len(columns[0])
    if points < 2:
        raise _Bad("fewer than two points")


def keep_line(line: bytes, fmt: str, word: str | None, recognized_only: bool) -> bool | None:
    """Should a downloaded line be kept? ``None`` means it is bad.

    Used by ``download`` on every line, so what it keeps ``preprocess`` reads.
    """
    try:
        obj = parse_line(line, word)
        check_drawing(obj["drawing"], fmt)
    except _Bad:
        return None
    return not (recognized_only and _unrecognized(obj))


# --- ndjson files ---------------------------------------------------------------------


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
    skipped = skipped if skipped is not None else Skipped()
    seen = seen if seen is not None else set()
    name = Path(path).name
    total = 0
    with open_ndjson(path) as handle:  # bytes: orjson parses them without a decode
        lines = _Lines(handle)  # shared by the chunks, so each resumes where the last stopped
        fast, hits, misses = fmt == "simplified" and FAST, 0, 0
        while limit is None or total < limit:
            want = CHUNK if limit is None else min(CHUNK, limit - total)
            chunk: Any = _FALLBACK
            if fast:
                chunk = _fast_chunk(lines, word, want, recognized_only, seen, skipped, name)
                hits, misses = (hits, misses + 1) if chunk is _FALLBACK else (hits + 1, misses)
                fast = misses < 2 or hits >= misses  # a file that is not Google's compact JSON: stop trying
            if chunk is _FALLBACK:
                chunk = _read_chunk(lines, fmt, word, want, recognized_only, seen, skipped, name)
            if chunk is None:
                break
            total += len(chunk)
            yield chunk


def _read_chunk(lines, fmt, word, want, recognized_only, seen, skipped, name) -> Drawings | None:
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
    fast, xs_extend, ys_extend, flat = orjson.loads, xs.extend, ys.extend, chain.from_iterable
    for lineno, line in lines:
        if len(line) < 3 and not line.strip():  # blank; longer whitespace fails as malformed JSON
            continue
        try:
            try:  # parse_line inlined for the common case; anything unusual takes parse_line's own path
                obj = fast(line)
                if (
                    type(obj) is not dict
                    or "drawing" not in obj
                    or (word is not None and obj.get("word", word) != word)
                ):
                    raise ValueError
            except ValueError:  # orjson.JSONDecodeError is one
                obj = parse_line(line, word)
            if recognized_only and _unrecognized(obj):
                skipped.unrecognized += 1
                continue
            key = _key(obj, name, lineno)
            if key in seen:
                skipped.duplicates += 1
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
        except _Bad as bad:
            skipped.add(f"{name}:{lineno}", str(bad))
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
        return _from_raw(raw, keys, skipped, seen)
    return _from_points(xs, ys, stroke_lengths, stroke_counts, keys, lambda i: f"{name}:{where[i]}", skipped, seen)


def _columns(drawing) -> tuple[tuple, tuple, list[int]]:
    """A simplified drawing's x columns, y columns and stroke lengths, taken
    apart in a few C-level calls (the per-stroke loop was the hot spot), or
    ``_Bad`` saying why not."""
    if type(drawing) is not list or not drawing:
        raise _Bad("empty drawing")
    try:
        if set(map(len, drawing)) != {2}:
            raise ValueError
        x_columns, y_columns = zip(*drawing)
        lengths = list(map(len, x_columns))
        if lengths != list(map(len, y_columns)):
            raise _Bad("x/y length mismatch")
    except (TypeError, ValueError):
        raise _Bad("a stroke is not [xs, ys]") from None
    return x_columns, y_columns, lengths


def _from_points(xs, ys, stroke_lengths, stroke_counts, keys, where, skipped, seen) -> Drawings:
    """Check values in bulk, drop the drawings that fail, convert to stroke-3.

    ``where(i)`` names drawing ``i``'s file and line for messages.
    """
    n = len(keys)
    bad = np.zeros(n, dtype=bool)
    stroke_lengths = np.asarray(stroke_lengths, dtype=np.int64)
    stroke_counts = np.asarray(stroke_counts, dtype=np.int64)
    first_stroke = np.cumsum(stroke_counts) - stroke_counts
    lengths = np.add.reduceat(stroke_lengths, first_stroke)  # points per drawing
    _mark(bad, np.logical_or.reduceat(stroke_lengths == 0, first_stroke), "empty stroke", where, skipped)
    _mark(bad, (lengths < 2) & ~bad, "fewer than two points", where, skipped)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    try:  # numpy infers the type: any str or None makes it non-numeric
        x, y = np.array(xs), np.array(ys)
    except (ValueError, OverflowError, TypeError):  # nested lists; integers past 64 bits
        x = y = np.zeros(0, dtype=object)
    if x.dtype.kind not in "iuf" or y.dtype.kind not in "iuf":
        numeric = (int, float)
        reason = np.array([not all(type(v) in numeric for v in xs[a:b] + ys[a:b]) for a, b in zip(starts, ends)])
        _mark(bad, reason & ~bad, "non-numeric value", where, skipped)
        keep = np.repeat(~reason, lengths)
        x = np.zeros(len(xs))
        y = np.zeros(len(ys))
        x[keep] = np.array([_finite_or_inf(v) for v, k in zip(xs, keep) if k], dtype=np.float64)
        y[keep] = np.array([_finite_or_inf(v) for v, k in zip(ys, keep) if k], dtype=np.float64)
    points = np.column_stack([x, y])  # int64 for Google's integer files, float64 otherwise
    outside = ~((points >= 0) & (points <= strokes.SIMPLIFIED_MAX)).all(axis=1)  # NaN fails both
    hits = np.concatenate([[0], np.cumsum(outside)])  # not reduceat: a drawing of empty strokes has no points
    _mark(bad, (hits[ends] > hits[starts]) & ~bad, "out-of-range value", where, skipped)
    if bad.any():  # drop bad drawings' points before differencing, so nothing empty reaches it
        for i in np.flatnonzero(bad):
            seen.discard(keys[i])
        good = np.flatnonzero(~bad)
        points = points[np.repeat(~bad, lengths)]
        stroke_lengths = stroke_lengths[np.repeat(~bad, stroke_counts)]
        lengths, keys = lengths[good], [keys[i] for i in good]
    if points.dtype.kind in "iu":  # 0..255 fits int16, and so does every difference: a quarter of the memory
        points = points.astype(np.int16)
    rows, offsets = strokes.points_to_stroke3(points, np.cumsum(stroke_lengths), np.cumsum(lengths))
    return Drawings(rows.astype(np.int16), offsets, keys)


def _finite_or_inf(v) -> float:
    """A number as a float; an integer too large for one is infinite (and so out of range)."""
    try:
        return float(v)
    except OverflowError:
        return float("inf")


def _mark(bad: np.ndarray, which: np.ndarray, reason: str, where, skipped: Skipped) -> None:
    for i in np.flatnonzero(which):
        skipped.add(where(i), reason)
    bad |= which


def _from_raw(raw, keys, skipped, seen) -> Drawings:
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


# --- the fast path for simplified files --------------------------------------------------
#
# Google's simplified lines all look alike: a few short fields, then ``"drawing":`` and the
# strokes, nothing but digits, commas and brackets. ``_fast_chunk`` parses every drawing of a
# chunk at once with the compiled kernels of scan.py, so that no per-point Python object is
# ever made, and the fields of all its lines, with a stand-in for the drawing, with one orjson
# call on an array the kernel writes. Anything they do not recognise as plainly valid
# (whitespace or a sign in the strokes, a number with a leading zero, a stroke that is not two
# lists of equal length, a field that orjson refuses...) sends the whole chunk back to
# ``_read_chunk``, whose results it must equal: tests/test_fuzz.py checks that.

_FALLBACK = object()  # "read this chunk the slow way"


def load_kernels() -> None:
    """Load the fast path's compiled kernels now (they load on first use otherwise)."""
    if FAST:
        from qdsketch import scan

        scan.load()


class _Lines:
    """An ndjson file's ``(line number, line)`` pairs; lines read ahead can be put back."""

    def __init__(self, handle: BinaryIO):
        self.lines = enumerate(handle, 1)
        self.back: list[tuple[int, bytes]] = []  # put back, last first

    def __iter__(self):
        return self

    def __next__(self) -> tuple[int, bytes]:
        return self.back.pop() if self.back else next(self.lines)

    def take(self, n: int) -> list[tuple[int, bytes]]:
        out = self.back[: -n - 1 : -1]
        del self.back[len(self.back) - len(out) :]
        return out + list(islice(self.lines, n - len(out)))

    def put_back(self, items: list[tuple[int, bytes]]) -> None:
        self.back += items[::-1]


def _fast_chunk(lines: _Lines, word, want, recognized_only, seen, skipped, name):
    """``_read_chunk`` for simplified files, or ``_FALLBACK`` having put back every line it read."""
    taken: list[tuple[int, bytes]] = []
    keys: list[str] = []
    where: list[int] = []
    bad: list[tuple[int, str]] = []  # (line number, reason), kept to the end: nothing is recorded on a fallback
    new: set[str] = set()
    unrecognized = duplicates = 0
    parts = []
    eof = False
    while len(keys) < want:
        batch = lines.take(want - len(keys))
        if not batch:
            eof = True
            break
        taken += batch
        parsed = _parse_batch(batch)
        if parsed is None:
            lines.put_back(taken)
            return _FALLBACK
        linenos, fields, numbers = parsed
        n = len(fields)
        found: list = list(map(dict.get, fields, repeat("key_id")))
        if (  # the common case, every line kept, checked without a Python loop
            (word is None or list(map(dict.get, fields, repeat("word"), repeat(word))).count(word) == n)
            and (not recognized_only or False not in map(dict.get, fields, repeat("recognized"), repeat(True)))
            and set(map(type, found)) <= {str}
            and "" not in found
            and len(set(found)) == n
            and seen.isdisjoint(found)
            and new.isdisjoint(found)
        ):
            keys += found
            where += linenos
            new.update(found)
            parts.append(numbers)
            continue
        kept = np.zeros(n, bool)
        for j, (lineno, head) in enumerate(zip(linenos, fields)):  # the same checks as _read_chunk's
            try:
                _check_word(head, word)
                if recognized_only and _unrecognized(head):
                    unrecognized += 1
                    continue
                key = _key(head, name, lineno)
            except _Bad as why:
                bad.append((lineno, str(why)))
                continue
            if key in seen or key in new:
                duplicates += 1
                continue
            new.add(key)
            keys.append(key)
            where.append(lineno)
            kept[j] = True
        parts.append(_take_lines(numbers, kept))
    for lineno, reason in bad:
        skipped.add(f"{name}:{lineno}", reason)
    skipped.unrecognized += unrecognized
    skipped.duplicates += duplicates
    seen.update(new)
    if not keys:
        return None if eof else Drawings.empty()
    from qdsketch import scan

    xs, ys, stroke_lengths, stroke_counts = (np.concatenate(column) for column in zip(*parts))
    ok, rows, offsets = scan.to_stroke3(xs, ys, stroke_lengths, stroke_counts, strokes.SIMPLIFIED_MAX)
    if ok:  # the common case: every value in range, every drawing two points or more
        return Drawings(rows, offsets, keys)
    return _from_points(xs, ys, stroke_lengths, stroke_counts, keys, lambda i: f"{name}:{where[i]}", skipped, seen)


def _parse_batch(batch: list[tuple[int, bytes]]):
    """``(line numbers, fields, strokes)`` of the non-blank lines of ``batch``, or
    ``None`` unless every one is plainly valid: ``{...,"drawing":[...]}`` and a
    newline, the fields valid JSON without the drawing, the drawing as
    ``scan.parse_strokes`` wants it."""
    from qdsketch import scan  # numba: imported by the reading that needs it, not by the CLI

    linenos, raw = zip(*batch)
    if min(map(len, raw)) < 3:  # blank lines are skipped, as _read_chunk skips them
        batch = [(lineno, line) for lineno, line in batch if len(line) >= 3 or line.strip()]
        if not batch:
            return (), [], _NO_STROKES
        linenos, raw = zip(*batch)
    blob = b"".join(raw)
    starts = np.zeros(len(raw) + 1, np.int64)
    np.cumsum(np.fromiter(map(len, raw), np.int64, len(raw)), out=starts[1:])
    if not blob.endswith(b"\n"):  # a file's last line
        blob += b"\n"
        starts[-1] += 1
    ok, fields, *numbers = scan.parse_strokes(np.frombuffer(blob, np.uint8), starts, scan.MARK, scan.STANDIN)
    if not ok:  # first: it fails fastest, on a file written with spaces
        return None
    try:  # every line's fields, with a stand-in for the drawing, as one JSON array: one call
        fields = orjson.loads(memoryview(fields))
    except orjson.JSONDecodeError:
        return None
    if len(fields) != len(raw) or set(map(type, fields)) != {dict}:  # "drawing" is the stand-in in each
        return None
    return list(linenos), fields, tuple(numbers)


_NO_STROKES = (np.zeros(0, np.int16), np.zeros(0, np.int16), np.zeros(0, np.int64), np.zeros(0, np.int64))


def _take_lines(numbers, kept: np.ndarray):
    """The strokes of the lines marked in ``kept``."""
    xs, ys, stroke_lengths, stroke_counts = numbers
    if kept.all():
        return numbers
    keep_stroke = np.repeat(kept, stroke_counts)
    first = np.cumsum(stroke_counts) - stroke_counts
    points = np.add.reduceat(stroke_lengths, first) if len(first) else first
    keep_point = np.repeat(kept, points)
    return xs[keep_point], ys[keep_point], stroke_lengths[keep_stroke], stroke_counts[kept]


# --- sketchrnn npz -------------------------------------------------------------------------


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
                    out[member.removesuffix(".npy")] = list(_load_npy(io.BytesIO(handle.read())))
    except (zipfile.BadZipFile, ValueError, EOFError, pickle.UnpicklingError, OSError) as exc:
        raise DataError(
            f"{path} is not a sketchrnn .npz file ({exc})",
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


# --- ragged helpers -----------------------------------------------------------------------------


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
    from qdsketch import scan  # a compiled copy: numpy's fancy indexing took 2 us a drawing

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
    offsets, keys, at = [np.zeros(1, np.int64)], [], 0
    while kept:
        p = kept.pop()  # our list's last reference to it, with consume
        rows[at : at + len(p.rows)] = p.rows
        offsets.append(p.offsets[1:] + at)
        keys += p.keys
        at += len(p.rows)
        del p
    return Drawings(rows, np.concatenate(offsets).astype(np.int64), keys)


# --- one drawing, for --prefix and animate --from ------------------------------------------------


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
            except _Bad as bad:
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
