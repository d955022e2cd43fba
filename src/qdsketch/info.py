"""``qdsketch info``: what a checkpoint is, what it knows and how it was trained."""

from __future__ import annotations

import json
from pathlib import Path

from qdsketch.checkpoint import load_checkpoint
from qdsketch.config import PRESETS
from qdsketch.model import count_parameters
from qdsketch.paths import checkpoint_file


def preset_of(model: dict) -> str | None:
    """The preset whose model a checkpoint's is (the class count aside), if one is."""
    for name, preset in PRESETS.items():
        if {**preset.model.to_dict(), "n_classes": model["n_classes"]} == model:
            return name
    return None


def run_history(run_dir: Path) -> dict | None:
    """What ``history.json`` beside a checkpoint says: epochs, the best and the last."""
    try:
        rows = json.loads((run_dir / "history.json").read_text())
        best = min(rows, key=lambda row: row["val_total"])
        return {
            "epochs": len(rows),
            "best_epoch": best["epoch"],
            "best_val": best["val_total"],
            "last_val": rows[-1]["val_total"],
            "cpu_hours": rows[-1].get("cpu_hours"),
        }
    except (OSError, ValueError, TypeError, KeyError, IndexError):  # none, or not one training wrote
        return None


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
        "train": {k: train[k] for k in ("epochs", "batch_size", "lr", "seed", "ema", "augment")},
        "max_seq_len": ckpt.max_seq_len,
        "resumable": ckpt.state is not None,
        "history": run_history(file.parent) if path is not None else None,
    }
    if ckpt.state is not None:
        report["resumes_at"] = {"epoch": ckpt.state["epoch"], "batch": ckpt.state["batch"]}
    return report
