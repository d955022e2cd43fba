"""The fast path for Google's simplified files: a chunk of lines parsed at once.

Google's simplified lines all look alike: a few short fields, then ``"drawing":`` and
the strokes, nothing but digits, commas and brackets. ``read_chunk`` parses every
drawing of a chunk with the compiled kernels of ``scan``, so that no per-point Python
object is ever made, and the fields of all its lines, with a stand-in for the drawing,
with one orjson call on an array the kernel writes. Anything they do not recognise as
plainly valid (whitespace or a sign in the strokes, a number with a leading zero, a
stroke that is not two lists of equal length, a field that orjson refuses...) sends
the whole chunk back to the simple reader (``ndjson``), whose results it must equal:
tests/test_fuzz.py checks that.
"""

from __future__ import annotations

from itertools import repeat

import numpy as np
import orjson

from qdsketch import strokes
from qdsketch.data.drawings import Drawings, Skipped
from qdsketch.data.lines import Bad, Lines, Reading, from_points

FALLBACK = object()  # "read this chunk the simple way"


def read_chunk(lines: Lines, want: int, reading: Reading):
    """Up to ``want`` drawings, as the simple reader's ``read_chunk`` would give them
    (``None`` at the end of the file), or ``FALLBACK`` having put back every line it
    read and recorded nothing."""
    taken: list[tuple[int, bytes]] = []
    keys: list[str] = []
    where: list[int] = []
    new: set[str] = set()
    # what is left out is counted here, and added to reading's counts only if the chunk is kept
    scratch = Reading(reading.name, reading.word, reading.recognized_only, reading.seen, Skipped())
    word, seen = reading.word, reading.seen
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
            return FALLBACK
        linenos, fields, numbers = parsed
        n = len(fields)
        found: list = list(map(dict.get, fields, repeat("key_id")))
        if (  # the common case, every line kept, checked without a Python loop
            (word is None or list(map(dict.get, fields, repeat("word"), repeat(word))).count(word) == n)
            and (not reading.recognized_only or False not in map(dict.get, fields, repeat("recognized"), repeat(True)))
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
        for j, (lineno, head) in enumerate(zip(linenos, fields)):  # line by line, by the shared rule
            try:
                key = scratch.admit(head, lineno, taken=new)
            except Bad as why:
                scratch.bad(lineno, why)
                continue
            if key is None:
                continue
            new.add(key)
            keys.append(key)
            where.append(lineno)
            kept[j] = True
        parts.append(_take_lines(numbers, kept))
    reading.skipped.merge(scratch.skipped)
    seen.update(new)
    if not keys:
        return None if eof else Drawings.empty()
    from qdsketch.data import scan

    xs, ys, stroke_lengths, stroke_counts = (np.concatenate(column) for column in zip(*parts))
    ok, rows, offsets = scan.to_stroke3(xs, ys, stroke_lengths, stroke_counts, strokes.SIMPLIFIED_MAX)
    if ok:  # the common case: every value in range, every drawing two points or more
        return Drawings(rows, offsets, keys)
    return from_points(xs, ys, stroke_lengths, stroke_counts, keys, where, reading)


def _parse_batch(batch: list[tuple[int, bytes]]):
    """``(line numbers, fields, strokes)`` of the non-blank lines of ``batch``, or
    ``None`` unless every one is plainly valid: ``{...,"drawing":[...]}`` and a
    newline, the fields valid JSON without the drawing, the drawing as
    ``scan.parse_strokes`` wants it."""
    from qdsketch.data import scan  # numba: imported by the reading that needs it, not by the CLI

    linenos, raw = zip(*batch)
    if min(map(len, raw)) < 3:  # blank lines are skipped, as the simple reader skips them
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
