"""The reference report's forms, one drawing at a time, as it writes them: nothing in the
package calls these; the tests hold the batched code to them (``batching.DeviceSplit``
builds every training pair at once, ``sample.generate`` denormalises on the device)."""

import numpy as np

from qdsketch.strokes import EOS, SOS, stroke3_to_stroke5


def stroke5_to_stroke3(rows: np.ndarray) -> np.ndarray:
    """Stroke-5 back to stroke-3, stopping before the first ``eos`` row."""
    rows = np.asarray(rows, dtype=np.float32)
    eos = np.flatnonzero(rows[:, 4] > 0.5)
    if len(eos):
        rows = rows[: eos[0]]
    out = np.zeros((len(rows), 3), dtype=np.float32)
    out[:, :2] = rows[:, :2]
    out[:, 2] = rows[:, 3]
    return out


def model_pair(rows: np.ndarray, mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The reference's training pair for one drawing of ``n`` stroke-3 rows.

    ``input`` is ``SOS`` then the drawing, ``target`` the drawing then ``EOS``;
    both ``(n + 1, 5)``, with dx and dy standard-scaled (SOS and EOS stay 0).
    """
    s5 = stroke3_to_stroke5(rows)
    s5[:, :2] = normalize(s5[:, :2], mean, std)
    return np.vstack([SOS, s5]), np.vstack([s5, EOS])


def normalize(xy: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Standard-scaled dx, dy."""
    return (np.asarray(xy, dtype=np.float32) - mean) / std


def denormalize(xy: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """The inverse of ``normalize``."""
    return np.asarray(xy, dtype=np.float32) * std + mean
