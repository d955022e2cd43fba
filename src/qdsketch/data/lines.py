"""One ndjson line of Quick, Draw!: parse it, check it, keep it or say why not.

The rules every reader shares: what a drawing's fields must say (``Reading.admit``:
its class, whether Google recognised it, its key, seen before or not) and what its
strokes must hold. Strokes are checked in one of three ways, which tests/test_fuzz.py
holds to the same answers: value by value for one line (``check_drawing``: download,
raw files, ``read_drawing``), in bulk with numpy for a chunk (``from_points``), and in
the compiled fast path (``scan.to_stroke3``, which falls back to ``from_points``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import islice
from typing import BinaryIO

import numpy as np
import orjson

from qdsketch import strokes
from qdsketch.data.drawings import Drawings, Skipped

#: Raw coordinates are screen pixels; anything past this is not a drawing.
RAW_LIMIT = 1e6


class Bad(Exception):
    """One drawing is unusable; the message says why."""


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
    """Parse one ndjson line into its object, or raise ``Bad`` saying why."""
    try:
        obj = loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested thousands deep
        raise Bad("malformed JSON") from None
    if not isinstance(obj, dict) or "drawing" not in obj:
        raise Bad("not a Quick, Draw! drawing (no 'drawing' key)")
    check_word(obj, word)
    return obj


def check_word(obj: dict, word: str | None) -> None:
    """``Bad`` if ``obj`` is a drawing of another class than ``word``."""
    if word is not None and obj.get("word", word) != word:
        raise Bad(f"word {obj.get('word')!r} where {word!r} was expected")


def unrecognized(obj: dict) -> bool:
    """Google's model did not recognise the drawing (a drawing that does not say is recognised)."""
    return obj.get("recognized", True) is False


def key_of(obj: dict, name: str, lineno: int) -> str:
    """A drawing's ``key_id``, or its file and line where it has none; ``Bad`` if not a string."""
    key = obj.get("key_id") or f"{name}:{lineno}"
    if type(key) is not str:
        raise Bad("key_id is not a string")
    return key


@dataclass
class Reading:
    """What one file's reading needs to decide about a line: the class it must be
    (``word``, or any), whether unrecognised drawings are left out, the keys taken
    so far (from this file and the class's other files), and the count of what was
    left out. The file's name goes into every message."""

    name: str
    word: str | None = None
    recognized_only: bool = True
    seen: set = field(default_factory=set)
    skipped: Skipped = field(default_factory=Skipped)

    def admit(self, head: dict, lineno: int, taken: set | None = None) -> str | None:
        """The key of the drawing whose fields are ``head``, if it is to be kept;
        ``None`` if it is left out and counted (unrecognised, or a key already in
        ``seen`` or ``taken``); ``Bad`` if its fields are wrong. Nothing is added to
        ``seen``: a caller that may still drop the drawing adds its key when sure."""
        check_word(head, self.word)
        if self.recognized_only and unrecognized(head):
            self.skipped.unrecognized += 1
            return None
        key = key_of(head, self.name, lineno)
        if key in self.seen or (taken is not None and key in taken):
            self.skipped.duplicates += 1
            return None
        return key

    def bad(self, lineno: int, why: object) -> None:
        self.skipped.add(f"{self.name}:{lineno}", str(why))


def check_drawing(drawing, fmt: str) -> None:
    """Full check of one drawing's strokes, value by value; raises ``Bad``."""
    if not isinstance(drawing, list) or not drawing:
        raise Bad("empty drawing")
    arity = 3 if fmt == "raw" else 2
    low, high = (-RAW_LIMIT, RAW_LIMIT) if fmt == "raw" else (0, strokes.SIMPLIFIED_MAX)
    points = 0
    for stroke in drawing:
        if not isinstance(stroke, list) or len(stroke) < 2:
            raise Bad("a stroke is not [xs, ys]")
        columns = stroke[:arity]
        if not all(isinstance(c, list) for c in columns):
            raise Bad("a stroke is not [xs, ys]")
        if len({len(c) for c in columns}) != 1:
            raise Bad("x/y length mismatch")
        if not columns[0]:
            raise Bad("empty stroke")
        for column in columns[:2]:
            for v in column:
                if type(v) not in (int, float):
                    raise Bad("non-numeric value")
                if not low <= v <= high:
                    raise Bad("out-of-range value")
        points += len(columns[0])
    if points < 2:
        raise Bad("fewer than two points")


def keep_line(line: bytes, fmt: str, word: str | None, recognized_only: bool) -> bool | None:
    """Should a downloaded line be kept? ``None`` means it is bad.

    Used by ``download`` on every line, so what it keeps ``preprocess`` reads.
    """
    try:
        obj = parse_line(line, word)
        check_drawing(obj["drawing"], fmt)
    except Bad:
        return None
    return not (recognized_only and unrecognized(obj))


class Lines:
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


def from_points(xs, ys, stroke_lengths, stroke_counts, keys: list[str], where, reading: Reading) -> Drawings:
    """Check values in bulk, drop the drawings that fail, convert to stroke-3.

    ``where[i]`` is drawing ``i``'s line, for messages; a dropped drawing's key
    leaves ``reading.seen``.
    """
    n = len(keys)
    bad = np.zeros(n, dtype=bool)
    stroke_lengths = np.asarray(stroke_lengths, dtype=np.int64)
    stroke_counts = np.asarray(stroke_counts, dtype=np.int64)
    first_stroke = np.cumsum(stroke_counts) - stroke_counts
    lengths = np.add.reduceat(stroke_lengths, first_stroke)  # points per drawing
    _mark(bad, np.logical_or.reduceat(stroke_lengths == 0, first_stroke), "empty stroke", where, reading)
    _mark(bad, (lengths < 2) & ~bad, "fewer than two points", where, reading)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    try:  # numpy infers the type: any str or None makes it non-numeric
        x, y = np.array(xs), np.array(ys)
    except (ValueError, OverflowError, TypeError):  # nested lists; integers past 64 bits
        x = y = np.zeros(0, dtype=object)
    if x.dtype.kind not in "iuf" or y.dtype.kind not in "iuf":
        numeric = (int, float)
        reason = np.array([not all(type(v) in numeric for v in xs[a:b] + ys[a:b]) for a, b in zip(starts, ends)])
        _mark(bad, reason & ~bad, "non-numeric value", where, reading)
        keep = np.repeat(~reason, lengths)
        x = np.zeros(len(xs))
        y = np.zeros(len(ys))
        x[keep] = np.array([_finite_or_inf(v) for v, k in zip(xs, keep) if k], dtype=np.float64)
        y[keep] = np.array([_finite_or_inf(v) for v, k in zip(ys, keep) if k], dtype=np.float64)
    points = np.column_stack([x, y])  # int64 for Google's integer files, float64 otherwise
    outside = ~((points >= 0) & (points <= strokes.SIMPLIFIED_MAX)).all(axis=1)  # NaN fails both
    hits = np.concatenate([[0], np.cumsum(outside)])  # not reduceat: a drawing of empty strokes has no points
    _mark(bad, (hits[ends] > hits[starts]) & ~bad, "out-of-range value", where, reading)
    if bad.any():  # drop bad drawings' points before differencing, so nothing empty reaches it
        for i in np.flatnonzero(bad):
            reading.seen.discard(keys[i])
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


def _mark(bad: np.ndarray, which: np.ndarray, reason: str, where, reading: Reading) -> None:
    for i in np.flatnonzero(which):
        reading.bad(where[i], reason)
    bad |= which

