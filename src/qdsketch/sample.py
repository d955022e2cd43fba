"""Generating sketches: autoregressive, batched, reproducible.

As in the reference: the class gives the embedding and the initial state;
``SOS`` comes first; each step gives dx, dy (denormalised for the output, kept
normalised for the next input) and a pen state drawn from
``softmax(logits / pen_temperature)``; a sketch ends at ``EOS`` or at the
maximum length.

Two temperatures. ``temperature`` shapes the offsets: the mixture head divides
its mixture logits by it and multiplies its variances by it (Sketch-RNN). The
pen state has its own, ``pen_temperature``. For the mixture head it defaults
to 1, the model's own probabilities: the end of a sketch is one of the three
pen states, and sharpening them makes ``EOS`` rarer than the model predicts,
so sketches run on past their end (at 0.5 the shipped model's nails come out
twice as long as real ones, and at 0.1 most cats and clocks run to the limit;
docs/sampling.md). The reference's regression head has no random
offsets, so there, as in the reference, ``temperature`` is the pen's.

All sketches step together; finished ones are masked. Each sketch draws its
randomness from its own ``torch.Generator``, seeded from ``(seed, i)`` before
generation starts, so sketch ``i`` comes out the same whether it is generated
alone or in a batch of any size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from qdsketch import strokes
from qdsketch.checkpoint import Checkpoint, load_checkpoint
from qdsketch.classes import resolve_class
from qdsketch.errors import CheckpointError, QdsketchError
from qdsketch.paths import checkpoint_file, run_judge_file
from qdsketch.seeds import derive_seed
from qdsketch.shipped import judge_for, known_classes, model_for

NOISE = 4  # per sketch and step: a uniform for the pen, then a uniform and two normals for the head


def sketch_seeds(seed: int, n: int, offset: int = 0) -> list[int]:
    """One independent 63-bit seed per sketch, from ``(seed, index)``."""
    return [derive_seed(seed, offset + i) for i in range(n)]


def draw_noise(seeds: list[int], steps: int) -> torch.Tensor:
    """``(B, steps, NOISE)``: each row from its own explicit generator."""
    rows = []
    for s in seeds:
        g = torch.Generator().manual_seed(s)
        u = torch.rand(steps, 2, generator=g)
        z = torch.randn(steps, 2, generator=g)
        rows.append(torch.cat([u, z], dim=1))
    return torch.stack(rows)


def sample_pen(logits: torch.Tensor, temperature: float, u: torch.Tensor) -> torch.Tensor:
    """Pen state 0 (down), 1 (up) or 2 (end) per row, from ``softmax(logits / T)``
    by inverting its CDF at the uniform ``u``; ``T = 0`` takes the most likely."""
    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    cdf = probs.cumsum(-1)
    return (u[:, None] > cdf[:, :-1]).sum(-1)


DEFAULT_TEMPERATURE = {"mse": 0.5, "gmm": 0.25}  # per head: the best sketches by the judge (docs/results.md)


def default_temperature(head: str) -> float:
    return DEFAULT_TEMPERATURE.get(head, 0.5)


def default_pen_temperature(head: str, temperature: float) -> float:
    """The pen's temperature when none is given: the model's own probabilities
    for the mixture head, ``temperature`` for the reference's head."""
    return temperature if head == "mse" else 1.0


@dataclass
class Generated:
    rows: list[np.ndarray]  # stroke-3 per sketch, in simplified pixels; the prefix first, if any
    ended: np.ndarray  # (B,) bool: True where the sketch ended at EOS, False at the length limit
    temperature: float = 0.5  # of the offsets (the mixture head) or the pen (the regression head)
    pen_temperature: float = 0.5  # of the pen state


@torch.no_grad()
def generate(
    ckpt: Checkpoint,
    labels: list[int],
    seeds: list[int],
    temperature: float | None = None,
    max_len: int = 150,
    prefix: np.ndarray | None = None,
    device: str | torch.device = "cpu",
    pen_temperature: float | None = None,
    *,
    progress=None,
    on_step=None,
) -> Generated:
    """Sketches of the classes ``labels``, one per seed, at most ``max_len`` rows
    after ``prefix`` (stroke-3 rows in simplified pixels, continued by every sketch).
    ``None`` temperatures take the head's defaults. ``progress(finished)``, if
    given, hears how many sketches have ended after each step. ``on_step(t, sketches,
    moves)``, if given, hears each step as it is drawn: the indices of the sketches still
    drawing, and their moves ``(k, 3)``: dx, dy in simplified pixels and the pen (0 down,
    1 lifted after this point, 2 the end, whose dx, dy are not part of the sketch); the
    rows of ``Generated`` are these moves, up to each end (``qdsketch serve`` streams them)."""
    model = ckpt.model.to(device).eval()
    head = ckpt.config.head
    temperature = default_temperature(head) if temperature is None else temperature
    pen_temperature = default_pen_temperature(head, temperature) if pen_temperature is None else pen_temperature
    mean = torch.tensor(ckpt.mean, device=device)
    std = torch.tensor(ckpt.std, device=device)
    prefix = None if prefix is None or len(prefix) == 0 else np.asarray(prefix, np.float32)
    start = torch.as_tensor(strokes.SOS, device=device).expand(len(labels), 1, 5)
    if prefix is not None:
        pre = torch.as_tensor(strokes.stroke3_to_stroke5(prefix), device=device)
        pre[:, :2] = (pre[:, :2] - mean) / std
        start = torch.cat([start, pre.expand(len(labels), -1, -1)], dim=1)
    emb = model.class_embedding(torch.as_tensor(labels, device=device))
    noise = draw_noise(seeds, max_len).to(device)
    heard = None
    if on_step is not None:  # in pixels, on the CPU: as the rows come out below

        def heard(t, sketches, xy, pen):
            moves = np.zeros((len(sketches), 3), np.float32)
            moves[:, :2] = (xy * std + mean).cpu().numpy()
            moves[:, 2] = pen.cpu().numpy()
            on_step(t, sketches.cpu().numpy(), moves)

    xy, pen, length = _steps(
        model,
        start,
        emb,
        noise,
        temperature,
        pen_temperature,
        first_may_end=prefix is not None,
        progress=progress,
        on_step=heard,
    )
    rows = _rows((xy * std + mean).cpu().numpy(), pen.cpu().numpy(), length.cpu().numpy(), prefix)
    return Generated(rows, length.cpu().numpy() < max_len, temperature, pen_temperature)


def generate_many(
    ckpt: Checkpoint, labels: list[int], seeds: list[int], *args, chunk: int = 4096, progress=None, **kw
) -> Generated:
    """``generate`` in batches of ``chunk`` sketches, so memory stays bounded however many
    are asked for; each sketch has its own generator, so the result is the same.
    ``progress(done, total)``, if given, hears how many sketches are finished."""
    parts = []
    for i in range(0, len(labels), chunk):
        step = None if progress is None else (lambda finished, i=i: progress(i + finished, len(labels)))
        parts.append(generate(ckpt, labels[i : i + chunk], seeds[i : i + chunk], *args, progress=step, **kw))
    if len(parts) == 1:
        return parts[0]
    rows = [r for p in parts for r in p.rows]
    return Generated(rows, np.concatenate([p.ended for p in parts]), parts[0].temperature, parts[0].pen_temperature)


def _steps(
    model,
    start,
    emb,
    noise,
    temperature: float,
    pen_temperature: float,
    first_may_end: bool,
    progress=None,
    on_step=None,
):
    """The autoregressive loop: normalised (dx, dy) ``(B, T, 2)``, pen states
    ``(B, T)`` and each sketch's length (``T`` where it never ended). ``on_step(t,
    sketches, xy, pen)`` hears the step of the sketches that had not ended before it.

    Sketches that have ended are dropped from the batch once they are an eighth of it:
    a batch otherwise runs every sketch as long as its longest one (the length limit,
    often), at several times the cost. ``rows`` maps the batch to the output's rows."""
    b, max_len, device = len(emb), noise.shape[1], emb.device
    out = model.run(start, emb, model.initial_state(emb))
    xy_out = torch.zeros(b, max_len, 2, device=device)
    pen_out = torch.zeros(b, max_len, dtype=torch.long, device=device)
    length = torch.full((b,), max_len, dtype=torch.long, device=device)
    rows = torch.arange(b, device=device)
    finished = torch.zeros(b, dtype=torch.bool, device=device)  # of the rows still in the batch
    n_finished = 0
    for t in range(max_len):
        xy = model.head.sample_xy(out, temperature, noise[rows, t, 1:])
        logits = out["pen"][:, -1]
        if t == 0 and not first_may_end:  # a sketch has at least one row: no EOS straight after SOS
            logits = logits.clone()
            logits[:, 2] = -torch.inf
        pen = sample_pen(logits, pen_temperature, noise[rows, t, 0])
        ends_now = (pen == 2) & ~finished
        if on_step is not None:
            drawing = ~finished
            on_step(t, rows[drawing], xy[drawing], pen[drawing])
        length[rows[ends_now]] = t
        finished |= ends_now
        n_finished += int(ends_now.sum())
        xy_out[rows, t], pen_out[rows, t] = xy, pen
        if progress is not None:
            progress(b if t == max_len - 1 else n_finished)
        if n_finished == b:
            break
        state = out["state"]
        if 8 * int(finished.sum()) >= len(rows):
            keep = (~finished).nonzero().squeeze(1)
            rows, emb, xy, pen, finished = rows[keep], emb[keep], xy[keep], pen[keep], finished[keep]
            state = model.keep_rows(state, keep)
        step = torch.zeros(len(rows), 1, 5, device=device)
        step[:, 0, :2] = xy
        step[:, 0, 2:] = torch.nn.functional.one_hot(pen, 3).float()
        out = model.run(step, emb, state)
    return xy_out, pen_out, length


def _rows(xy_px: np.ndarray, pen: np.ndarray, lengths: np.ndarray, prefix: np.ndarray | None) -> list[np.ndarray]:
    """Stroke-3 rows of each sketch, after the prefix; its last stroke ends, at EOS or at the limit."""
    rows = []
    for i in range(len(lengths)):
        n = int(lengths[i])
        r = np.zeros((n, 3), dtype=np.float32)
        r[:, :2] = xy_px[i, :n]
        r[:, 2] = pen[i, :n] == 1
        if prefix is not None:
            r = np.vstack([prefix, r])
        if len(r):
            r[-1, 2] = 1
        rows.append(r)
    return rows


# --- output ---------------------------------------------------------------------------------


def key_id(seed: int) -> str:
    """A 16-digit numeric key_id, as Google's look, derived from a sketch's seed."""
    return str(10**15 + seed % (9 * 10**15))


def ndjson_lines(rows: list[np.ndarray], words: list[str], seeds: list[int]) -> list[str]:
    """Quick, Draw! simplified ndjson: coordinates aligned and scaled into 0..255.

    ``recognized`` is false: Google's classifier never saw these drawings (and
    `qdsketch preprocess` leaves them out by default, so they do not slip into
    training data). ``countrycode`` is ``ZZ``, "unknown".
    """
    import json
    import os
    import time

    # when they were drawn; SOURCE_DATE_EPOCH (the reproducible-builds convention) fixes it, so
    # that the same seed gives the same file byte for byte
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is not None and not epoch.strip().isdigit():
        raise QdsketchError(f"SOURCE_DATE_EPOCH={epoch!r} is not a count of seconds", "unset it, or give e.g. 0")
    when = time.gmtime(None if epoch is None else int(epoch))
    stamp = time.strftime("%Y-%m-%d %H:%M:%S.000000 UTC", when)
    return [
        json.dumps(
            {
                "word": w,
                "countrycode": "ZZ",
                "timestamp": stamp,
                "recognized": False,
                "key_id": key_id(s),
                "drawing": strokes.stroke3_to_drawing(r),
            },
            separators=(",", ":"),
        )
        for r, w, s in zip(rows, words, seeds)
    ]


# --- drawing classes by name: the one library call of `sample` and `animate` ----------------------


@dataclass
class Drawn:
    """Sketches of classes asked for by name, and how they were drawn."""

    names: list[str]  # the classes asked for, in Google's spelling, in order
    words: list[str]  # the class of each sketch
    generated: Generated  # the sketches kept (with best-of: the judge's pick of each K tries)
    seeds: list[int]  # each kept sketch's own seed
    seed: int  # the seed of the call: the same seed draws the same sketches
    models: dict[str, str]  # class -> the model that drew it (a shipped model's name, or the checkpoint)


def draw(
    checkpoint,
    classes: list[str],
    count: int,
    seed: int,
    temperature: float | None = None,
    pen_temperature: float | None = None,
    best_of: int = 1,
    prefix: np.ndarray | None = None,
    device: str | torch.device = "cpu",
    progress=None,
) -> Drawn:
    """``count`` sketches of each of ``classes`` (names as users type them), by the
    model at ``checkpoint``, or, with ``None``, by the shipped model that draws each
    class best (``qdsketch.shipped``). With ``best_of`` K, K tries of each sketch are
    drawn and the judge keeps the one it finds most like its class. Sketch ``i`` of the
    whole call has seed ``sketch_seeds(seed, ...)[i]``, whichever model draws it, so
    a seed draws the same sketches however the classes are shared among models.
    ``progress(done, total)`` hears how many tries are finished."""
    routes: dict[str, tuple] = {}  # class -> (checkpoint file, the model's name in reports)
    loaded: dict = {}  # checkpoint file -> Checkpoint
    if checkpoint is None:
        names = []
        for c in classes:
            model = model_for(c)
            names.append(resolve_class(c, model.classes))
            routes[names[-1]] = (model.path, model.name)
    else:
        given = load_checkpoint(checkpoint, device)  # a run directory as given: its errors name it
        path = checkpoint_file(checkpoint)
        loaded[path] = given
        names = [resolve_class(c, loaded[path].class_names) for c in classes]
        routes = {n: (path, str(checkpoint)) for n in names}
    words = [n for n in names for _ in range(count)]
    tries = [w for w in words for _ in range(best_of)]
    seeds = sketch_seeds(seed, len(tries))
    rows: list = [None] * len(tries)
    ended = np.zeros(len(tries), dtype=bool)
    done, temps = 0, None
    for path in dict.fromkeys(p for p, _ in routes.values()):  # each model once, in the order first asked for
        ckpt = loaded[path] if path in loaded else load_checkpoint(path, device)
        mine = [i for i, w in enumerate(tries) if routes[w][0] == path]
        step = None if progress is None else (lambda d, _t, before=done: progress(before + d, len(tries)))
        labels = [ckpt.class_names.index(tries[i]) for i in mine]
        gen = generate_many(
            ckpt,
            labels,
            [seeds[i] for i in mine],
            temperature,
            ckpt.max_seq_len,
            prefix,
            device,
            pen_temperature,
            progress=step,
        )
        for j, i in enumerate(mine):
            rows[i], ended[i] = gen.rows[j], gen.ended[j]
        done += len(mine)
        temps = temps or (gen.temperature, gen.pen_temperature)
    keep = list(range(len(tries)))
    if best_of > 1:
        keep = _judge_picks(checkpoint, names, rows, words, best_of, device)
    kept = Generated([rows[i] for i in keep], ended[keep], *(temps or (0.0, 0.0)))
    return Drawn(names, words, kept, [seeds[i] for i in keep], seed, {n: routes[n][1] for n in names})


def model_classes(checkpoint: Path | None) -> dict[str, str]:
    """The classes a model draws, each with what draws it: the shipped models' (each class
    by the one that draws it best, ``shipped.model_for``), or a checkpoint's own."""
    if checkpoint is None:
        return {name: model_for(name).name for name in known_classes()}
    return {name: str(checkpoint) for name in load_checkpoint(checkpoint).class_names}


def _judge_picks(checkpoint, names: list[str], rows, words: list[str], best_of: int, device) -> list[int]:
    """The index of the try the judge likes most, for each sketch (``best_of`` tries in a row)."""
    from qdsketch.judge import best_of as pick  # the judge and its rasteriser load only for --best-of
    from qdsketch.judge import load_judge

    own = run_judge_file(checkpoint) if checkpoint is not None else None
    if own is not None and own.is_file():  # a run's own judge, which `evaluate RUN --judge` keeps in it, first
        net, judge_classes = load_judge(own, str(device))
        if set(names) <= set(judge_classes):
            return pick(net, judge_classes, rows, words, best_of, str(device))
    judge_path = judge_for(names)
    if judge_path is None:
        from qdsketch.shipped import judged_classes

        asked = list(dict.fromkeys(names))
        unknown = [n for n in asked if n not in judged_classes()] or asked  # else no one judge knows them all
        fix = "use --best-of 1 with these classes"
        if checkpoint is not None:
            fix = f"`qdsketch evaluate {checkpoint} --judge` trains one and keeps it in the run; or {fix}"
        raise CheckpointError(f"no judge knows {', '.join(unknown)}", fix)
    net, judge_classes = load_judge(judge_path, str(device))
    return pick(net, judge_classes, rows, words, best_of, str(device))
