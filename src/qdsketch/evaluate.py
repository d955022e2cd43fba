"""Evaluating a checkpoint on a dataset split: losses overall and per class."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qdsketch.batching import DeviceSplit
from qdsketch.checkpoint import load_checkpoint, resolve
from qdsketch.data import SPLITS, load_dataset
from qdsketch.errors import DataError
from qdsketch.train import evaluate_split, pick_device


def evaluate(checkpoint: Path, data: Path | None = None, split: str = "test", device: str = "auto", batch_size: int = 256) -> dict:
    """Losses (total, xy, pen) of ``checkpoint`` on ``split``, overall and per class.

    ``data`` defaults to the dataset the checkpoint was trained on.
    """
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}", f"use one of {', '.join(SPLITS)}")
    dev = pick_device(device)
    ckpt = load_checkpoint(checkpoint, dev)
    data = Path(data or ckpt.extra.get("train_config", {}).get("data", "data/dataset.npz"))
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
    for i, name in enumerate(ds.class_names):
        index = np.flatnonzero(labels == i)
        if len(index):
            sums = evaluate_split(ckpt.model, part, batch_size, index=index)
            per_class[name] = {**sums.means(), "drawings": len(index), "steps": sums.steps}
    steps = sum(c["steps"] for c in per_class.values())
    overall = {k: sum(c[k] * c["steps"] for c in per_class.values()) / steps for k in ("total", "xy", "pen")}
    return {
        "checkpoint": str(resolve(checkpoint)),
        "data": str(data),
        "split": split,
        "head": ckpt.config.head,
        "overall": {**overall, "drawings": len(part), "steps": steps},
        "classes": per_class,
    }
