"""Sketches drawn live, step by step, for ``qdsketch serve``: the library half of the page.

``Studio`` holds the models a page draws with (the shipped ones, routed by class as
``sample`` routes them, or one checkpoint), loaded once and shared by every request.
``Studio.draw`` draws ``n`` endings of one class, from a blank page or from a person's
strokes, and tells ``emit`` each step as it is made. Its sketches are exactly
``qdsketch sample``'s for the same class, count, seed, temperature and prefix: the same
seeds, the same generator, the same rows (tested), so the page's command line repeats it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qdsketch import strokes
from qdsketch.errors import QdsketchError

if TYPE_CHECKING:  # torch loads with it: only when a sketch is drawn
    from qdsketch.checkpoint import Checkpoint

#: the bounds of one request: sketches at once, a person's strokes and their points
MAX_SKETCHES = 8
MAX_STROKES = 100
MAX_POINTS = 5000


@dataclass
class Loaded:
    """One model, ready: its checkpoint, its name in reports, and its judge (or none)."""

    ckpt: Checkpoint
    name: str
    judge: tuple | None  # (net, class names) of a judge that knows the model's classes


class Studio:
    """The models a page draws with, loaded on first use and kept."""

    def __init__(self, checkpoint: Path | None = None, device: str = "cpu"):
        from qdsketch.sample import model_classes

        self.checkpoint = checkpoint
        self.device = device
        self.classes = model_classes(checkpoint)  # class -> the model that draws it; checks the checkpoint
        self._loaded: dict[str, Loaded] = {}
        self._lock = threading.Lock()

    def describe(self) -> dict:
        """What the page shows before anything is drawn: classes, models, the default temperature."""
        from qdsketch.sample import default_temperature

        heads = {self.load(name).ckpt.config.head for name in dict.fromkeys(self.classes.values())}
        head = "gmm" if heads == {"gmm"} else next(iter(heads))
        return {
            "classes": self.classes,
            "models": sorted(set(self.classes.values())),
            "default_temperature": default_temperature(head),
            "checkpoint": str(self.checkpoint) if self.checkpoint is not None else None,
            "limits": {"sketches": MAX_SKETCHES, "strokes": MAX_STROKES, "points": MAX_POINTS},
        }

    def load(self, model_name: str) -> Loaded:
        """The model called ``model_name`` (a shipped model's name, or the checkpoint as given)."""
        with self._lock:  # two first requests load it once
            if model_name not in self._loaded:
                self._loaded[model_name] = self._load(model_name)
            return self._loaded[model_name]

    def _load(self, model_name: str) -> Loaded:
        from qdsketch.checkpoint import load_checkpoint
        from qdsketch.judge import load_judge
        from qdsketch.paths import run_judge_file
        from qdsketch.shipped import shipped_models

        if self.checkpoint is not None:
            ckpt = load_checkpoint(self.checkpoint, self.device)
            judge_file: Path | None = run_judge_file(self.checkpoint)
        else:
            shipped = next(m for m in shipped_models() if m.name == model_name)
            ckpt = load_checkpoint(shipped.path, self.device)
            judge_file = shipped.judge_path
        judge = None
        if judge_file is not None and judge_file.is_file():
            net, names = load_judge(judge_file, "cpu")
            if set(ckpt.class_names) <= set(names):
                judge = (net, names)
        return Loaded(ckpt, model_name, judge)

    def draw(
        self,
        class_name: str,
        n: int,
        seed: int,
        temperature: float | None,
        prefix: list | None,
        emit: Callable[[dict], None],
    ) -> dict:
        """``n`` endings of ``class_name`` (from ``prefix``, a person's strokes ``[[xs, ys],
        ...]`` in any pixels, if given). ``emit`` hears ``{"event": "start", ...}``, then a
        ``{"event": "step", "t": t, "moves": [[sketch, dx, dy, pen], ...]}`` per step; the
        result (also emitted, as ``"end"``) holds each sketch as Quick, Draw! ndjson and SVG,
        and the judge's guesses where a judge knows the model's classes."""
        from qdsketch import render
        from qdsketch.classes import resolve_class
        from qdsketch.sample import (
            default_pen_temperature,
            default_temperature,
            generate_many,
            ndjson_lines,
            sketch_seeds,
        )

        if not 1 <= n <= MAX_SKETCHES:
            raise QdsketchError(f"{n} sketches at once", f"ask for 1 to {MAX_SKETCHES}")
        name = resolve_class(class_name, list(self.classes))
        model = self.load(self.classes[name])
        ckpt = model.ckpt
        head = ckpt.config.head
        temperature = default_temperature(head) if temperature is None else temperature
        pen_temperature = default_pen_temperature(head, temperature)
        given, placed = (None, None) if not prefix else person_strokes(prefix)
        if given is not None and not len(given):  # a single dot: nothing to continue from
            given, placed = None, None
        seeds = sketch_seeds(seed, n)  # as `qdsketch sample NAME -n N --seed SEED` draws them
        label = ckpt.class_names.index(name)
        emit(
            {
                "event": "start",
                "class": name,
                "model": model.name,
                "seed": seed,
                "n": n,
                "temperature": temperature,
                "prefix": None if given is None else strokes.stroke3_to_drawing(given, size=None),
                "placed": placed,
            }
        )

        def step(t, sketches, moves):
            out = [[int(i), round(float(m[0]), 3), round(float(m[1]), 3), int(m[2])] for i, m in zip(sketches, moves)]
            emit({"event": "step", "t": t, "moves": out})

        gen = generate_many(
            ckpt,
            [label] * n,
            seeds,
            temperature,
            ckpt.max_seq_len,
            given,
            self.device,
            pen_temperature,
            on_step=step,
        )
        kept = len(strokes.stroke3_to_strokes(given)) if given is not None else 0
        guesses = None
        if model.judge is not None:
            from qdsketch.judge import guesses as judge_guesses

            net, judge_classes = model.judge
            guesses = judge_guesses(net, judge_classes, gen.rows)
        sketches = []
        for i, (rows, sketch_seed) in enumerate(zip(gen.rows, seeds)):
            sketches.append(
                {
                    "seed": str(sketch_seed),  # a string: 63 bits are more than JavaScript's numbers hold
                    "ended": bool(gen.ended[i]),
                    "ndjson": ndjson_lines([rows], [name], [sketch_seed])[0],
                    "svg": render.svg_text([rows], [name], given=kept),
                    "judge": None if guesses is None else guesses[i],
                }
            )
        command = None  # the same sketches from a terminal; a person's strokes are in no file there
        if given is None:
            command = f"qdsketch sample {name!r} -n {n} --seed {seed} --temperature {temperature:g}"
            if self.checkpoint is not None:
                command += f" --checkpoint {self.checkpoint}"
        result = {
            "event": "end",
            "class": name,
            "model": model.name,
            "seed": seed,
            "sketches": sketches,
            "command": command,
        }
        emit(result)
        return result


def person_strokes(drawing: list) -> tuple[np.ndarray, dict]:
    """A person's strokes, ``[[xs, ys], ...]`` in screen pixels, as the model's prefix: simplified
    as Google simplified every drawing (top-left, scaled into 0..255, resampled, RDP 2.0), in
    stroke-3 rows; and where the simplified drawing lies on the screen (``left``, ``top``,
    ``scale``: a simplified pixel is ``1 / scale`` screen pixels), to draw its ending there.
    ``ValueError`` says what is wrong with a drawing that is not one."""
    if not isinstance(drawing, list) or not drawing:
        raise ValueError("the strokes are not a list of [xs, ys]")
    if len(drawing) > MAX_STROKES:
        raise ValueError(f"{len(drawing)} strokes, more than {MAX_STROKES}")
    arrays = []
    for stroke in drawing:
        if not (isinstance(stroke, list) and len(stroke) >= 2 and isinstance(stroke[0], list)):
            raise ValueError("a stroke is not [xs, ys]")
        xs, ys = stroke[0], stroke[1]
        if not isinstance(ys, list) or len(xs) != len(ys) or not xs:
            raise ValueError("a stroke's xs and ys differ in length, or are empty")
        if not all(type(v) in (int, float) for v in xs + ys):
            raise ValueError("a coordinate is not a number")
        if not all(abs(v) <= 1e6 for v in xs + ys):  # inf, and ints too large for a float, too
            raise ValueError("a coordinate is not a finite screen position")
        arrays.append(np.array([xs, ys], dtype=np.float64).T)
    if sum(len(a) for a in arrays) > MAX_POINTS:
        raise ValueError(f"more than {MAX_POINTS} points")
    every = np.concatenate(arrays)
    low = every.min(axis=0)
    extent = float((every - low).max())
    scale = strokes.SIMPLIFIED_MAX / extent if extent > 0 else 1.0
    simplified = strokes.simplify_drawing([[a[:, 0].tolist(), a[:, 1].tolist()] for a in arrays])
    rows = strokes.drawing_to_stroke3([[s[:, 0].tolist(), s[:, 1].tolist()] for s in simplified])
    if len(rows):
        rows[-1, 2] = 1  # the person's last stroke is finished: the model starts a new one
    first = simplified[0][0]
    return rows.astype(np.float32), {
        "left": float(low[0]),
        "top": float(low[1]),
        "scale": scale,
        "start": [int(first[0]), int(first[1])],
    }
