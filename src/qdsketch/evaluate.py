"""Evaluating a model on a dataset split: losses overall and per class.

``Sums`` and ``evaluate_split`` are also what training validates with.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from qdsketch.batching import Batch, DeviceSplit, StreamSplit, sorted_batches
from qdsketch.checkpoint import load_checkpoint
from qdsketch.data.dataset import SPLITS
from qdsketch.data.preprocess import load_dataset
from qdsketch.devices import autocast, pick_device
from qdsketch.errors import DataError
from qdsketch.model import StrokeModel
from qdsketch.paths import checkpoint_file, dataset_file, run_judge_file

METRICS = ("total", "xy", "pen")


class Sums:
    """Loss sums weighted by real steps, so an epoch's mean does not depend on
    how drawings fell into batches. The sums stay on the device: reading them
    (``means``) is the only point where the host waits for it."""

    def __init__(self, device: torch.device, state: dict | None = None):
        state = state or {}
        self.loss = torch.tensor([state.get(k, 0.0) for k in METRICS], dtype=torch.float64, device=device)
        self.steps = int(state.get("steps", 0))
        self.computed = int(state.get("computed", 0))
        self.seqs = int(state.get("seqs", 0))
        self.seconds = 0.0  # time spent on the batches, set by whoever ran them

    def add(self, losses: dict, batch: Batch) -> None:
        self.loss += torch.stack([losses[k].detach().double() for k in METRICS]) * batch.steps
        self.steps += batch.steps
        self.computed += batch.computed
        self.seqs += len(batch.labels)

    def means(self) -> dict:
        return dict(zip(METRICS, (self.loss / max(self.steps, 1)).tolist()))

    def state(self) -> dict:
        return {
            **dict(zip(METRICS, self.loss.tolist())),
            "steps": self.steps,
            "computed": self.computed,
            "seqs": self.seqs,
        }

    @property
    def efficiency(self) -> float:
        return self.steps / max(self.computed, 1)


@torch.no_grad()
def evaluate_split(
    model: StrokeModel,
    split: DeviceSplit | StreamSplit,
    batch_size: int,
    amp: bool = False,
    index: np.ndarray | None = None,
    progress=None,
) -> Sums:
    """Losses over ``split`` (or the drawings at ``index``), in eval mode.
    ``progress(done, total)``, if given, hears the drawings done after each batch."""
    was_training = model.training
    model.eval()
    sums = Sums(split.device)
    chosen = np.arange(len(split)) if index is None else np.asarray(index)
    done = 0
    for b in sorted_batches(split.steps_np[chosen], batch_size):
        batch = split.batch(chosen[b])
        with autocast(split.device, amp):
            _, losses = model(batch.inputs, batch.labels, batch.targets, batch.mask)
        sums.add(losses, batch)
        done += len(b)
        if progress is not None:
            progress(done, len(chosen))
    model.train(was_training)
    return sums


def default_data(trained_on: str, class_names: list[str]) -> Path:
    """The dataset a checkpoint is evaluated on when none is given: the one it was trained
    on, or where that is not on this machine (the shipped models were trained on this
    project's own build), the user's own ``data/dataset.npz``."""
    for path in (Path(trained_on), dataset_file()):
        if path.exists():
            return path
    shown = ",".join(class_names) if len(class_names) <= 8 else "all"
    raise DataError(
        f"this model was trained on {trained_on}, which is not here, and there is no {dataset_file()}",
        f"pass --data, or make a dataset of its classes: qdsketch download --classes {shown} && qdsketch preprocess",
    )


def evaluate(
    checkpoint: Path | None,
    data: Path | None = None,
    split: str = "test",
    device: str = "auto",
    batch_size: int = 256,
    judge: dict | None = None,
    progress=None,
) -> dict:
    """Losses (total, xy, pen) of ``checkpoint`` on ``split``, overall and per class.

    ``data`` defaults to the dataset the checkpoint was trained on. With
    ``judge`` (keyword arguments of ``run_judge``), the judge's figures too.
    ``progress(done, total, stage)``, if given, hears each step's work as it goes.
    """
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}", f"use one of {', '.join(SPLITS)}")
    dev = pick_device(device)
    ckpt = load_checkpoint(checkpoint, dev)
    data = Path(data) if data is not None else default_data(ckpt.train.data, ckpt.class_names)
    ds = load_dataset(data)
    if ds.class_names != ckpt.class_names:
        raise DataError(
            f"{data} holds classes {ds.class_names}, the checkpoint {ckpt.class_names}",
            "pass the --data it was trained on",
        )
    part = DeviceSplit(ds.splits[split], ckpt.mean, ckpt.std, dev)
    if not len(part):
        raise DataError(f"the {split} split of {data} is empty", "preprocess with a --split that keeps some")
    labels = part.labels_np
    per_class = {}
    stage, before = f"losses on {len(part):,} {split} drawings", 0
    for i, name in enumerate(ds.class_names):
        index = np.flatnonzero(labels == i)
        if len(index):
            heard = None if progress is None else lambda done, _, b=before: progress(b + done, len(part), stage)
            sums = evaluate_split(ckpt.model, part, batch_size, index=index, progress=heard)
            per_class[name] = {**sums.means(), "drawings": len(index), "steps": sums.steps}
            before += len(index)
    steps = sum(c["steps"] for c in per_class.values())
    overall = {k: sum(c[k] * c["steps"] for c in per_class.values()) / steps for k in ("total", "xy", "pen")}
    totals = {**overall, "drawings": len(part), "steps": steps}
    report: dict = {
        "checkpoint": str(checkpoint_file(checkpoint)),
        "data": str(data),
        "split": split,
        "head": ckpt.config.head,
        "overall": totals,
        "classes": per_class,
    }
    if ckpt.config.head == "gmm":
        report["sketchrnn_units"] = sketchrnn_units(totals, ds, ckpt)
    if judge is not None:
        keep = None  # a run keeps its judge: --best-of works wherever the run goes
        if checkpoint is not None and (checkpoint_file(checkpoint).parent / "config.json").is_file():
            keep = run_judge_file(checkpoint)
        report["judge"] = run_judge(ckpt, ds, data, dev, **judge, progress=progress, keep_in=keep)
    return report


def nll_in_sketchrnn_units(nll: float, std, scale: float) -> float:
    """A (dx, dy) negative log-likelihood per step, from our per-axis standard
    scaling (std_x, std_y) to offsets divided by one ``scale``: the Jacobian."""
    return nll + float(np.log(std[0]) + np.log(std[1]) - 2 * np.log(scale))


def sketchrnn_units(overall: dict, ds, ckpt) -> dict:
    """The reconstruction loss in Sketch-RNN's convention (Ha & Eck 2017, eq. 9-11).

    Sketch-RNN divides offsets by one scale, the standard deviation of all
    training dx and dy pooled; we standard-scale each axis. The density of
    (dx, dy) changes by that Jacobian, so per real step the NLL in its units is
    ours + log(std_x) + log(std_y) - 2 log(scale). Its ``L_s`` and ``L_p`` sum
    over a drawing and divide by ``N_max`` (its longest sequence, here
    max_seq_len + 1). One difference stays: its ``L_p`` also counts the
    padding steps after the end, which our model never reads; here ``L_p``
    covers the real steps only.
    """
    rows = ds.splits["train"].drawings.rows[:, :2].astype(np.float64)
    scale = float(rows.std())
    nll_step = nll_in_sketchrnn_units(overall["xy"], ckpt.std, scale)
    n_max = ckpt.max_seq_len + 1
    per_drawing = overall["steps"] / overall["drawings"] / n_max  # real steps / N_max, on average
    l_s, l_p = nll_step * per_drawing, overall["pen"] * per_drawing
    return {"scale": scale, "n_max": n_max, "nll_per_step": nll_step, "L_s": l_s, "L_p": l_p, "L_R": l_s + l_p}


def run_judge(
    ckpt,
    ds,
    data: Path,
    device,
    n: int = 100,
    temperatures=None,
    seed: int = 0,
    path: Path | None = None,
    config=None,
    progress=None,
    pen_temperature: float | None = None,
    keep_in: Path | None = None,
) -> dict:
    """Recognisability, precision and recall, Frechet distance and novelty of
    ``n`` sketches per class at each temperature (by default the head's own;
    ``qdsketch.judge``). ``progress(done, total, stage)`` follows the judge's training
    (where none is cached yet) and the drawing of the sketches."""
    from qdsketch import judge
    from qdsketch.sample import default_temperature, generate_many, sketch_seeds

    cfg = config or judge.DEFAULT_CONFIG
    temperatures = tuple(temperatures or (default_temperature(ckpt.config.head),))
    path = Path(path) if path else data.with_name(data.stem + ".judge.pt")
    training = None
    if progress is not None:
        stage = f"training the judge (once: it is kept at {path})"
        training = lambda done, total: progress(done, total, stage)  # noqa: E731
    net, trained, used = judge.load_or_train(ds, path, cfg, str(device), training)
    if keep_in is not None:  # a copy in the run (``keep_in``), wherever the judge came from
        judge.save_judge(keep_in, net, ds, cfg)
    max_len = ckpt.max_seq_len
    generated: dict[float, dict[int, list[np.ndarray]]] = {}
    classes = range(len(ds.class_names))
    labels = [label for label in classes for _ in range(n)]
    seeds = sketch_seeds(seed, len(labels))  # sketch i of class c: seed (seed, c * n + i), as ever
    drawing = None
    if progress is not None:
        each = f" at each of {len(temperatures)} temperatures" if len(temperatures) > 1 else ""
        stage = f"drawing {len(labels):,} sketches{each}"
        drawing = lambda done, total: progress(done, total, stage)  # noqa: E731
    for t in temperatures:  # every class in one batch (generate_many bounds its memory)
        rows = generate_many(ckpt, labels, seeds, t, max_len, None, device, pen_temperature, progress=drawing).rows
        generated[t] = {label: rows[label * n : (label + 1) * n] for label in classes}
    result = judge.judge_generator(net, ds, generated, str(device), cfg)
    kept = {"run_judge_path": str(keep_in)} if keep_in is not None else {}
    return {**result, "n": n, "seed": seed, "judge_path": str(used), "judge_trained_now": trained, **kept}
