"""Pictures of sketches: loss curves and grids (matplotlib), SVG (text),
stroke-by-stroke GIF frames (Pillow, written by imageio).

The CLI imports it, and so does the judge, for ``fit`` and ``raster`` (Pillow);
matplotlib, Pillow and imageio are imported inside the functions that use
them, so importing this module costs only numpy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qdsketch.files import atomic_path, write_atomically
from qdsketch.strokes import stroke3_to_strokes

#: what the ``xy`` loss is, by head (its name is ``xy`` everywhere: table, history, JSON, plots)
XY_LOSS = {"mse": "squared error of dx, dy", "gmm": "mixture negative log-likelihood of dx, dy"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_history(history: list[dict], run_dir: Path, head: str = "mse") -> list[Path]:
    """The reference's three plots, train and validation per epoch, named as the losses
    are everywhere: ``loss_total.png``; ``loss_xy.png``, the dx, dy loss (squared error, or
    the mixture's negative log-likelihood for the gmm head); ``loss_pen.png``, the pen
    state's cross-entropy."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    written = []
    epochs = [row["epoch"] for row in history]
    plots = {
        "total": ("loss_total.png", "total: xy + pen"),
        "xy": ("loss_xy.png", f"xy: {XY_LOSS[head]}"),
        "pen": ("loss_pen.png", "pen: cross-entropy of the pen state"),
    }
    for key, (name, title) in plots.items():
        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        ax.plot(epochs, [row[f"train_{key}"] for row in history], marker="o", label="train")
        ax.plot(epochs, [row[f"val_{key}"] for row in history], marker="o", label="validation")
        best = [row["epoch"] for row in history if row["best"]]
        if best:
            ax.axvline(best[-1], color="grey", linestyle=":", label=f"best (epoch {best[-1]})")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 1.5
        ax.set_ylabel("loss")
        ax.set_title(title)
        ax.legend()
        fig.tight_layout()
        path = Path(run_dir) / name
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
        plt.close(fig)
        written.append(path)
    return written


# --- placing a sketch in a box -------------------------------------------------------------


def fit(rows: np.ndarray, size: float, margin: float = 0.08) -> list[np.ndarray]:
    """A sketch's strokes scaled uniformly and centred in a ``size`` square."""
    strokes = stroke3_to_strokes(rows)
    if not strokes:
        return []
    every = np.concatenate(strokes)
    extent = max(float(np.ptp(every, axis=0).max()), 1e-9)
    scale = size * (1 - 2 * margin) / extent
    offset = (size - np.ptp(every, axis=0) * scale) / 2 - every.min(axis=0) * scale
    return [s * scale + offset for s in strokes]


# --- grid (PNG) and SVG -----------------------------------------------------------------------


#: the strokes a sketch was given (``sample --prefix``) are drawn in this grey, the model's in black
GIVEN = "#a0a0a0"


def save_grid(
    sketches: list[np.ndarray], titles: list[str], path: Path, columns: int | None = None, given: int = 0
) -> None:
    """A grid of sketches as a matplotlib PNG, a title over each; the first ``given`` strokes
    of each (a prefix it continued) in grey."""
    plt = _pyplot()
    n = len(sketches)
    cols = columns or min(n, 8)
    nrows = -(-n // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(1.6 * cols, 1.75 * nrows), dpi=100, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, rows, title in zip(axes.flat, sketches, titles):
        for i, stroke in enumerate(fit(rows, 1.0)):
            color = GIVEN if i < given else "black"
            ax.plot(stroke[:, 0], stroke[:, 1], color=color, linewidth=1.2, solid_capstyle="round")
        ax.set_xlim(0, 1)
        ax.set_ylim(1, 0)  # screen coordinates: y grows downwards
        ax.set_aspect("equal")
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def svg_text(
    sketches: list[np.ndarray], titles: list[str], columns: int | None = None, cell: int = 128, given: int = 0
) -> str:
    """The grid as SVG text; the first ``given`` strokes of each sketch in grey."""
    n = len(sketches)
    cols = columns or min(n, 8)
    nrows = -(-n // cols)
    label = 16
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{cols * cell}" height="{nrows * (cell + label)}" '
        f'viewBox="0 0 {cols * cell} {nrows * (cell + label)}">',
        '<rect width="100%" height="100%" fill="white"/>',
    ]
    for i, (rows, title) in enumerate(zip(sketches, titles)):
        x0, y0 = (i % cols) * cell, (i // cols) * (cell + label)
        parts.append(f'<g transform="translate({x0},{y0})">')
        parts.append(
            f'<text x="{cell / 2}" y="12" font-family="sans-serif" font-size="11" text-anchor="middle">'
            f"{_escape(title)}</text>"
        )
        parts.append(
            f'<g transform="translate(0,{label})" fill="none" stroke="black" stroke-width="1.5" '
            'stroke-linecap="round" stroke-linejoin="round">'
        )
        for j, stroke in enumerate(fit(rows, cell)):
            points = " ".join(f"{x:.1f},{y:.1f}" for x, y in stroke)
            grey = f' stroke="{GIVEN}"' if j < given else ""
            parts.append(f'<polyline points="{points}"{grey}/>')
        parts.append("</g></g>")
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- raster frames and the GIF ------------------------------------------------------------------


#: the GIF's frames are drawn this many times larger and averaged down: smooth edges at any
#: --size (drawn at their size, a 512-pixel GIF's lines were jagged)
SUPERSAMPLE = 2


def raster(strokes: list[np.ndarray], size: int, width: int | None = None):
    """Strokes (already fitted to ``size``) drawn black on white, as an ``L`` image."""
    from PIL import Image, ImageDraw

    width = width or max(1, round(size / 96))
    image = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(image)
    for s in strokes:
        _stroke(draw, s, width)
    return image


def smooth_raster(strokes: list[np.ndarray], size: int):
    """``raster`` as the GIF draws it: at ``SUPERSAMPLE`` times the size, averaged down.
    ``strokes`` are fitted to ``size``."""
    big = raster([s * SUPERSAMPLE for s in strokes], size * SUPERSAMPLE, SUPERSAMPLE * max(1, round(size / 96)))
    return big.reduce(SUPERSAMPLE)


def _stroke(draw, s: np.ndarray, width: int) -> None:
    """One stroke in black: a polyline, or a dot where it does not move."""
    points = [tuple(p) for p in np.round(s, 2).tolist()]
    if len(points) == 1 or all(p == points[0] for p in points):
        x, y = points[0]
        r = width / 2
        draw.ellipse([x - r, y - r, x + r, y + r], fill=0)
    else:
        draw.line(points, fill=0, width=width, joint="curve")


def render_static(rows: np.ndarray, size: int = 256) -> np.ndarray:
    """The whole sketch, as the last frame of its animation shows it: ``(size, size)`` uint8."""
    return np.asarray(smooth_raster(fit(rows, size), size))


#: the most frames one GIF gets: a longer drawing adds more points a frame
MAX_FRAMES = 1000
#: a stroke longer than this is drawn a piece a frame while it is under way (its joints between
#: pieces may differ by a pixel from one polyline); shorter ones are redrawn whole each frame
LONG_STROKE = 256


def frames(rows: np.ndarray, size: int = 256, points_per_frame: int = 2) -> list[np.ndarray]:
    """The sketch drawn point by point: a blank first frame, then ``points_per_frame``
    more points of ink a frame (more for a drawing that would take over ``MAX_FRAMES``),
    in the order the strokes were drawn. Pen-up moves draw nothing. A frame that adds
    nothing visible (a repeated point) is skipped.

    Finished strokes are drawn once, onto a base image; a frame is that base and the
    stroke under way, so the cost is linear in the points, and every frame is the
    pixels ``smooth_raster`` gives for the same strokes (drawn ``SUPERSAMPLE`` times
    larger, then averaged down)."""
    from PIL import ImageDraw

    strokes = [s * SUPERSAMPLE for s in fit(rows, size)]
    counts = np.cumsum([len(s) for s in strokes])
    total = int(counts[-1]) if len(counts) else 0
    step = max(points_per_frame, -(-total // MAX_FRAMES))
    width = SUPERSAMPLE * max(1, round(size / 96))
    base = raster([], size * SUPERSAMPLE, width)
    out = [np.asarray(base.reduce(SUPERSAMPLE))]
    drawn = 0  # strokes on the base image
    under_way = None  # (stroke, points drawn, image): a long stroke drawn a piece a frame
    for shown in list(range(step, total, step)) + [total]:
        whole = int(np.searchsorted(counts, shown, side="right"))  # strokes shown to their end
        while drawn < whole:
            _stroke(ImageDraw.Draw(base), strokes[drawn], width)
            drawn += 1
        image = base
        part = shown - (counts[whole] - len(strokes[whole])) if whole < len(strokes) else 0
        if part > 0 and len(strokes[whole]) <= LONG_STROKE:  # redrawn whole: the pixels raster gives
            image = base.copy()
            _stroke(ImageDraw.Draw(image), strokes[whole][:part], width)
        elif part > 0:  # only the new piece, from the last point drawn: linear in the stroke's length
            if under_way is None or under_way[0] != whole:
                under_way = (whole, 1, base.copy())
            _, done, image = under_way
            _stroke(ImageDraw.Draw(image), strokes[whole][done - 1 : part], width)
            under_way = (whole, part, image)
        frame = np.asarray(image.reduce(SUPERSAMPLE))
        if not np.array_equal(frame, out[-1]):
            out.append(frame)
    return out


def save_gif(frame_list: list[np.ndarray], path: Path, fps: float = 20, hold: float = 1.5) -> None:
    """A looping GIF: ``1 / fps`` seconds a frame, the last held ``hold`` seconds."""
    # encoded in memory, then written by us: a failed write (a full disk) is one OSError here,
    # not a retry from imageio's writer when it is collected, printing a traceback after the error
    write_atomically(path, gif_bytes(frame_list, fps, hold))


def gif_bytes(frame_list: list[np.ndarray], fps: float = 20, hold: float = 1.5) -> bytes:
    """``save_gif``'s file, in memory."""
    import imageio.v3 as iio

    durations = [1000 / fps] * len(frame_list)
    durations[-1] = max(hold * 1000, durations[-1])
    return iio.imwrite("<bytes>", np.stack(frame_list), extension=".gif", duration=durations, loop=0)
