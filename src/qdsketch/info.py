"""``qdsketch info``: what a checkpoint is, what it knows and how it was trained."""

from __future__ import annotations

from pathlib import Path

from qdsketch.checkpoint import load_checkpoint
from qdsketch.model import count_parameters
from qdsketch.paths import checkpoint_file
from qdsketch.runs import preset_of, run_history


def describe(path: Path | None) -> dict:
    """``path`` (a checkpoint, a run directory, or none: the model that ships) described;
    a run with no ``best.pt`` yet, by its ``last.pt``."""
    if path is not None and path.is_dir() and not (path / "best.pt").exists() and (path / "last.pt").is_file():
        path = path / "last.pt"
    file = checkpoint_file(path)
    ckpt = load_checkpoint(path)
    model = ckpt.config.to_dict()
    train = ckpt.train.to_dict()
    report = {
        "checkpoint": str(file),
        "classes": ckpt.class_names,
        "parameters": count_parameters(ckpt.model),
        "preset": preset_of(model),
        "model": model,
        "epoch": ckpt.epoch,  # the epoch whose weights these are
        "val": ckpt.val,
        "trained": ckpt.trained,
        "data": train["data"],
        "train": {k: train[k] for k in ("epochs", "batch_size", "lr", "seed", "ema", "augment", "init_from")},
        "max_seq_len": ckpt.max_seq_len,
        "settings": train,  # every setting of its training, as config.json keeps them
        "normalisation": {"mean": ckpt.mean, "std": ckpt.std},  # of dx, dy, from its training split
        "resumable": ckpt.state is not None,
        "history": run_history(file.parent) if path is not None else None,
    }
    if ckpt.state is not None:
        report["resumes_at"] = {"epoch": ckpt.state["epoch"], "batch": ckpt.state["batch"]}
    return report
