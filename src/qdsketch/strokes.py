"""Stroke formats as small pure numpy functions.

Formats (docs/data-format.md has a worked example):

drawing
    Quick, Draw!'s own: a list of strokes, each ``[xs, ys]`` (raw files add
    ``ts``), in absolute coordinates.
stroke-3
    An ``(n, 3)`` array of rows ``[dx, dy, pen]``: the offset from the previous
    point, and ``pen = 1`` on the last point of a stroke. As in the reference,
    the first point of a drawing is the origin and has no row, so a drawing of
    ``P`` points has ``P - 1`` rows.
stroke-5
    An ``(n, 5)`` array of rows ``[dx, dy, p_down, p_up, eos]`` with exactly one
    of the last three set. Model inputs start with ``SOS`` and targets end with
    ``EOS``.
"""

from __future__ import annotations

import numpy as np

SOS = np.array([0, 0, 1, 0, 0], dtype=np.float32)
EOS = np.array([0, 0, 0, 0, 1], dtype=np.float32)

#: Google's simplified drawings live in 0..255 after alignment and scaling.
SIMPLIFIED_MAX = 255
#: Ramer-Douglas-Peucker tolerance Google used for the simplified files.
RDP_EPSILON = 2.0


# --- drawings <-> stroke-3 -------------------------------------------------


def points_to_stroke3(
    points: np.ndarray, stroke_ends: np.ndarray, drawing_ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Turn many drawings, flattened, into stroke-3 rows in one pass.

    ``points`` is ``(P, 2)``: every point of every drawing in order.
    ``stroke_ends`` holds the index one past the last point of each stroke and
    ``drawing_ends`` the same for each drawing (so ``drawing_ends[-1] == P``).
    Returns ``(rows, offsets)``: rows ``(P - D, 3)`` and ``offsets`` ``(D + 1,)``
    with drawing ``i`` at ``rows[offsets[i]:offsets[i + 1]]``.
    """
    points = np.asarray(points)
    n = len(points)
    if n == 0:
        return np.zeros((0, 3), dtype=points.dtype), np.zeros(1, np.int64)
    drawing_ends = np.asarray(drawing_ends, dtype=np.int64)
    starts = np.concatenate([[0], drawing_ends[:-1]]).astype(np.int64)
    pen = np.zeros(n, dtype=points.dtype)
    pen[np.asarray(stroke_ends, dtype=np.int64) - 1] = 1
    deltas = np.empty((n, 3), dtype=points.dtype)
    deltas[1:, :2] = points[1:] - points[:-1]
    deltas[0, :2] = 0
    deltas[:, 2] = pen
    keep = np.ones(n, dtype=bool)
    keep[starts] = False
    offsets = np.concatenate([[0], drawing_ends - np.arange(1, len(drawing_ends) + 1)])
    return deltas[keep], offsets.astype(np.int64)


def drawing_to_stroke3(drawing: list) -> np.ndarray:
    """One Quick, Draw! drawing (``[[xs, ys(, ts)], ...]``) as stroke-3 rows."""
    strokes = [np.asarray(s[:2], dtype=np.float64).T for s in drawing]
    ends = np.cumsum([len(s) for s in strokes])
    rows, _ = points_to_stroke3(np.concatenate(strokes), ends, ends[-1:])
    return rows


def stroke3_to_strokes(rows: np.ndarray) -> list[np.ndarray]:
    """Stroke-3 rows as a list of ``(k, 2)`` absolute point arrays.

    The origin is the first point; pen-up moves are not part of any stroke.
    The result is aligned so that its smallest x and y are 0.
    """
    rows = np.asarray(rows, dtype=np.float64)
    xy = np.vstack([[0.0, 0.0], np.cumsum(rows[:, :2], axis=0)])
    xy -= xy.min(axis=0)
    # row i moves to point i + 1; a pen-up row ends its stroke after that point
    cuts = np.flatnonzero(rows[:, 2] > 0.5) + 2
    return [part for part in np.split(xy, cuts) if len(part)]


def stroke3_to_drawing(rows: np.ndarray, size: float | None = SIMPLIFIED_MAX) -> list:
    """Stroke-3 rows as a Quick, Draw! drawing ``[[xs, ys], ...]`` of ints.

    With ``size`` the drawing is scaled uniformly so that its larger side spans
    ``0..size`` (Google's simplified format); with ``None`` it keeps its scale.
    """
    strokes = stroke3_to_strokes(rows)
    extent = float(max(s.max() for s in strokes))
    if size is not None and extent > 0:
        strokes = [s * (size / extent) for s in strokes]
    return [[np.rint(s[:, 0]).astype(int).tolist(), np.rint(s[:, 1]).astype(int).tolist()] for s in strokes]


# --- stroke-3 <-> stroke-5 ---------------------------------------------------


def truncate(rows: np.ndarray, max_len: int) -> np.ndarray:
    """At most ``max_len`` rows; a cut drawing ends its last stroke there."""
    if len(rows) <= max_len:
        return rows
    out = rows[:max_len].copy()
    out[-1, 2] = 1
    return out


def stroke3_to_stroke5(rows: np.ndarray, mean=None, std=None) -> np.ndarray:
    """``[dx, dy, pen]`` -> ``[dx, dy, p_down, p_up, eos]`` (no EOS row added), dx and dy
    standard-scaled by ``mean`` and ``std`` where given: the one place the model's input
    is encoded (training batches, a sampling prefix)."""
    rows = np.asarray(rows)
    out = np.zeros((len(rows), 5), dtype=np.float32)
    out[:, :2] = rows[:, :2]
    if mean is not None:
        out[:, :2] -= np.asarray(mean, np.float32)
        out[:, :2] /= np.asarray(std, np.float32)
    out[:, 3] = rows[:, 2]
    out[:, 2] = 1 - out[:, 3]
    return out


# --- normalisation -------------------------------------------------------------


def fit_normalizer(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of dx and dy over stroke-3 ``rows``."""
    rows = np.asarray(rows)
    mean, std = np.zeros(2, np.float32), np.ones(2, np.float32)
    for i in (0, 1):  # one contiguous column at a time, and dot products: 4x faster than .std(axis=0)
        column = rows[:, i].astype(np.float64)
        mean[i] = m = column.sum() / max(len(column), 1)
        column -= m
        s = np.sqrt(np.dot(column, column) / max(len(column), 1))
        std[i] = s if s > 0 else 1.0
    return mean, std


# --- Google's raw -> simplified ----------------------------------------------


def resample(points: np.ndarray, spacing: float = 1.0) -> np.ndarray:
    """Points along a polyline every ``spacing`` units, ending on its last point.

    A stroke of zero length keeps two (equal) points, as Google's files do.
    """
    if len(points) < 2:
        return points[[0, 0]] if len(points) else points
    steps = np.hypot(*np.diff(points, axis=0).T)
    along = np.concatenate([[0.0], np.cumsum(steps)])
    if along[-1] == 0:
        return points[[0, -1]]
    t = np.arange(0.0, along[-1], spacing)
    if t[-1] < along[-1]:
        t = np.append(t, along[-1])
    return np.column_stack([np.interp(t, along, points[:, 0]), np.interp(t, along, points[:, 1])])


def rdp(points: np.ndarray, epsilon: float = RDP_EPSILON) -> np.ndarray:
    """Ramer-Douglas-Peucker: drop points closer than ``epsilon`` to the chord."""
    if len(points) < 3:
        return points
    keep = np.zeros(len(points), dtype=bool)
    keep[[0, -1]] = True
    stack = [(0, len(points) - 1)]
    while stack:
        a, b = stack.pop()
        if b <= a + 1:
            continue
        start, chord = points[a], points[b] - points[a]
        inner = points[a + 1 : b] - start
        length = np.hypot(*chord)
        if length == 0:
            dist = np.hypot(inner[:, 0], inner[:, 1])
        else:
            dist = np.abs(chord[0] * inner[:, 1] - chord[1] * inner[:, 0]) / length
        i = int(np.argmax(dist))
        if dist[i] > epsilon:
            keep[a + 1 + i] = True
            stack += [(a, a + 1 + i), (a + 1 + i, b)]
    return points[keep]


def simplify_drawing(drawing: list) -> list[np.ndarray]:
    """Google's simplification of a raw drawing, stroke by stroke.

    Align to the top-left, scale uniformly into 0..255, resample at 1-pixel
    spacing, Ramer-Douglas-Peucker with epsilon 2.0, round to integers.
    Returns ``(k, 2)`` int arrays.
    """
    strokes = [np.asarray(s[:2], dtype=np.float64).T for s in drawing]
    every = np.concatenate(strokes)
    low = every.min(axis=0)
    extent = float((every - low).max())
    scale = SIMPLIFIED_MAX / extent if extent > 0 else 1.0
    return [np.rint(rdp(resample((s - low) * scale))).astype(np.int64) for s in strokes]
