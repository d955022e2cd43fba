"""Compiled kernels for the fast path of simplified ndjson (``readers._fast_chunk``).

numba compiles them on first use and caches the machine code beside this file
(or in numba's user cache where that is read-only), so only the first run on a
machine pays for the compilation. They only ever say "this is plainly valid,
here are its numbers" or "read it the slow way": every rule about which
drawings are kept and why lives in readers.py, and tests/test_fuzz.py holds
both ways of reading to the same results.
"""

from __future__ import annotations

import numpy as np
from numba import njit

MARK = np.frombuffer(b'"drawing":', np.uint8)
STANDIN = np.frombuffer(b'"drawing":0}', np.uint8)  # the drawing's place in the fields
_ZERO, _NINE, _COMMA, _OPEN, _CLOSE, _NEWLINE = 48, 57, 44, 91, 93, 10
_OPEN_BRACE, _BRACE, _QUOTE, _BACKSLASH = 123, 125, 34, 92


@njit(cache=True, nogil=True)
def _number_list(blob, size, j, out, at):
    """Parse ``[n,n,...]`` at ``blob[j]`` into ``out[at:]``: ``(next j, count)``, or
    ``(-1, 0)`` unless it is a non-empty list of integers of at most three digits
    written without spaces, signs or leading zeros, ending before ``blob[size]``."""
    if j >= size or blob[j] != _OPEN:
        return -1, 0
    j += 1
    count = 0
    while True:
        if j >= size or not (_ZERO <= blob[j] <= _NINE):
            return -1, 0
        value = blob[j] - _ZERO
        j += 1
        digits = 1
        while j < size and _ZERO <= blob[j] <= _NINE:
            if value == 0 or digits == 3:  # a leading zero, or a fourth digit
                return -1, 0
            value = value * 10 + blob[j] - _ZERO
            j += 1
            digits += 1
        out[at + count] = value
        count += 1
        if j >= size:
            return -1, 0
        if blob[j] == _CLOSE:
            return j + 1, count
        if blob[j] != _COMMA:
            return -1, 0
        j += 1


@njit(cache=True, nogil=True)
def _find_mark(blob, a, b, mark):
    """Where ``mark`` (``"drawing":``) starts as a key of the object that ``blob[a:b]``
    opens: the first place outside strings at the object's own depth, or -1 if there is
    none, or if the line does not start with ``{``, or the object closes before it."""
    if a >= b or blob[a] != _OPEN_BRACE:
        return -1
    depth = 0
    in_string = escaped = False
    width = len(mark)
    for j in range(a, b - width + 1):
        c = blob[j]
        if in_string:
            if escaped:
                escaped = False
            elif c == _BACKSLASH:
                escaped = True
            elif c == _QUOTE:
                in_string = False
        elif c == _QUOTE:
            if depth == 1:
                same = True
                for k in range(1, width):
                    if blob[j + k] != mark[k]:
                        same = False
                        break
                if same:
                    return j
            in_string = True
        elif c == _OPEN_BRACE or c == _OPEN:
            depth += 1
        elif c == _BRACE or c == _CLOSE:
            depth -= 1
            if depth <= 0:
                return -1
    return -1


@njit(cache=True, nogil=True)
def parse_strokes(blob, starts, mark, standin):
    """The lines ``blob[starts[i]:starts[i + 1]]``, each ``{...,"drawing":[...]}``
    and a newline, taken apart: ``(ok, fields, xs, ys, stroke_lengths,
    stroke_counts)``.

    Each line's ``"drawing":`` is found as a key of its object (``_find_mark``);
    the drawing after it must be a JSON array of strokes of two equally long,
    non-empty lists of integers below 1,000, with nothing after it but ``}`` and
    the newline. ``fields`` is one JSON array of every line's object with
    ``standin`` (``"drawing":0}``) in place of the drawing: each element is the
    text of its line up to the mark, which opens one object and leaves it open, so
    one parse of the array gives exactly the objects that a parse of each line
    would. ``ok`` is False, and the rest meaningless, if any line is not so."""
    n = len(starts) - 1
    cap = len(blob) // 2 + 1  # every number takes a digit and a comma or bracket
    xs = np.empty(cap, np.int16)
    ys = np.empty(cap, np.int16)
    stroke_lengths = np.empty(cap, np.int64)
    stroke_counts = np.empty(n, np.int64)
    fields = np.empty(len(blob) + n * (len(standin) + 1) + 2, np.uint8)
    fields[0] = _OPEN
    f = 1  # bytes of fields so far
    at = 0  # points so far
    s = 0  # strokes so far
    for i in range(n):
        a, b = starts[i], starts[i + 1]
        found = _find_mark(blob, a, b, mark)
        if found < 0:
            return False, fields, xs, ys, stroke_lengths, stroke_counts
        fields[f : f + found - a] = blob[a:found]
        f += found - a
        fields[f : f + len(standin)] = standin
        f += len(standin)
        fields[f] = _COMMA
        f += 1
        j = found + len(mark)
        if j >= b or blob[j] != _OPEN:
            return False, fields, xs, ys, stroke_lengths, stroke_counts
        j += 1
        count = 0
        while True:  # one stroke: [[xs],[ys]]
            if j >= b or blob[j] != _OPEN:
                return False, fields, xs, ys, stroke_lengths, stroke_counts
            j, nx = _number_list(blob, b, j + 1, xs, at)
            if j < 0 or j >= b or blob[j] != _COMMA:
                return False, fields, xs, ys, stroke_lengths, stroke_counts
            j, ny = _number_list(blob, b, j + 1, ys, at)
            if j < 0 or ny != nx or j >= b or blob[j] != _CLOSE:
                return False, fields, xs, ys, stroke_lengths, stroke_counts
            at += nx
            stroke_lengths[s] = nx
            s += 1
            count += 1
            j += 1
            if j < b and blob[j] == _COMMA:
                j += 1
                continue
            break
        stroke_counts[i] = count
        if j + 3 != b or blob[j] != _CLOSE or blob[j + 1] != _BRACE or blob[j + 2] != _NEWLINE:
            return False, fields, xs, ys, stroke_lengths, stroke_counts
    if n:
        f -= 1  # the last comma
    fields[f] = _CLOSE
    return True, fields[: f + 1], xs[:at], ys[:at], stroke_lengths[:s], stroke_counts


@njit(cache=True, nogil=True)
def to_stroke3(xs, ys, stroke_lengths, stroke_counts, top):
    """``strokes.points_to_stroke3`` for drawings whose every value is in
    ``0..top`` and which have two points or more: ``(ok, rows, offsets)``, ``ok``
    False if any drawing is not so."""
    n = len(stroke_counts)
    rows = np.empty((max(len(xs) - n, 0), 3), np.int16)
    offsets = np.zeros(n + 1, np.int64)
    p = 0  # point
    s = 0  # stroke
    r = 0  # row
    for i in range(n):
        first = True
        points = 0
        for _ in range(stroke_counts[i]):
            length = stroke_lengths[s]
            s += 1
            points += length
            for k in range(length):
                x, y = xs[p], ys[p]
                if x > top or y > top:
                    return False, rows, offsets
                if not first:
                    rows[r, 0] = x - xs[p - 1]
                    rows[r, 1] = y - ys[p - 1]
                    rows[r, 2] = 1 if k == length - 1 else 0
                    r += 1
                first = False
                p += 1
        if points < 2:
            return False, rows, offsets
        offsets[i + 1] = r
    return True, rows, offsets


@njit(cache=True, nogil=True)
def take_ragged(data, offsets, index, max_len):
    """``readers.take_ragged``: the pieces ``data[offsets[i]:offsets[i + 1]]`` for ``i``
    in ``index`` (each valid), each cut to ``max_len`` items unless that is negative."""
    n = len(index)
    out_offsets = np.zeros(n + 1, np.int64)
    for k in range(n):
        length = offsets[index[k] + 1] - offsets[index[k]]
        if 0 <= max_len < length:
            length = max_len
        out_offsets[k + 1] = out_offsets[k] + length
    out = np.empty((out_offsets[n],) + data.shape[1:], data.dtype)
    for k in range(n):
        start = offsets[index[k]]
        out[out_offsets[k] : out_offsets[k + 1]] = data[start : start + out_offsets[k + 1] - out_offsets[k]]
    return out, out_offsets


def load() -> None:
    """Load (or compile) the kernels now: a process that forks workers calls this first,
    so that they start with them instead of each loading them again (about 1 s)."""
    blob = np.frombuffer(b'{"drawing":[[[0,1],[0,1]]]}\n', np.uint8)
    ok, _, xs, ys, stroke_lengths, stroke_counts = parse_strokes(blob, np.array([0, len(blob)]), MARK, STANDIN)
    to_stroke3(xs, ys, stroke_lengths, stroke_counts, 255)
    for data in (np.zeros((1, 3), np.int16), np.zeros(1, np.uint8)):  # spill files' rows and keys, mapped read-only
        data.flags.writeable = False
        take_ragged(data, np.array([0, 1]), np.array([0]), -1)
