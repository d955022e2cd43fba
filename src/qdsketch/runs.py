"""The runs folder: which runs there are, how far each went, which is latest and which best.

Read from each run's own small files (``config.json``, ``history.json``, the checkpoints'
times and the folder's ``.lock``), never from its checkpoints: no torch here, so
``qdsketch runs`` answers at once however large the runs are.
"""

from __future__ import annotations

import json
from pathlib import Path

from qdsketch.config import PRESETS
from qdsketch.errors import CheckpointError
from qdsketch.files import lock_owner


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


def latest_run(runs: Path) -> Path:
    """The run in folder ``runs`` whose ``last.pt`` was written last: what ``--resume``
    continues when no ``--run-dir`` is given."""
    found = sorted((p.stat().st_mtime, p.parent) for p in Path(runs).glob("*/last.pt") if p.is_file())
    if not found:
        raise CheckpointError(f"no run to resume in {runs}/", "pass the --run-dir of the run to continue")
    return found[-1][1]


def list_runs(runs: Path) -> list[dict]:
    """Every run in folder ``runs`` (a folder with a ``config.json`` that training wrote), oldest
    first: its model, data, progress and state. ``latest`` marks the one ``--resume`` continues;
    ``best``, for each dataset, the run with the lowest validation loss on it (losses on
    different data do not compare)."""
    found = []
    for config_file in sorted(Path(runs).glob("*/config.json")):
        run_dir = config_file.parent
        try:
            config = json.loads(config_file.read_text())
            model, train = config["model"], config["train"]
            classes = len(config["class_names"])
        except (OSError, ValueError, TypeError, KeyError):
            continue  # not a run's config
        checkpoints = [run_dir / name for name in ("last.pt", "best.pt") if (run_dir / name).is_file()]
        history = run_history(run_dir)
        epochs_done = history["epochs"] if history else 0
        owner = lock_owner(run_dir)
        if owner is not None:
            state = "training"
        elif history and (epochs_done >= train["epochs"] or epochs_done - history["best_epoch"] >= train["early_stop"]):
            state = "done" if epochs_done >= train["epochs"] else "stopped early"
        elif checkpoints:
            state = "resumable"  # stopped before its end: --resume continues it
        else:
            state = "no checkpoint"
        found.append(
            {
                "run_dir": str(run_dir),
                "updated": max((p.stat().st_mtime for p in checkpoints), default=config_file.stat().st_mtime),
                "preset": preset_of(model),
                "model": f"{model.get('arch', 'lstm')} {model['layers']}x{model['hidden']} {model['head']}",
                "classes": classes,
                "data": train["data"],
                "epochs": epochs_done,
                "of_epochs": train["epochs"],
                "best_val": history["best_val"] if history else None,
                "cpu_hours": history["cpu_hours"] if history else None,
                "state": state,
                "pid": owner,
                "latest": False,
                "best": False,
            }
        )
    found.sort(key=lambda run: run["updated"])
    try:
        latest = str(latest_run(runs))
    except CheckpointError:
        latest = None
    for run in found:
        run["latest"] = run["run_dir"] == latest
    for data in {run["data"] for run in found}:
        scored = [run for run in found if run["data"] == data and run["best_val"] is not None]
        if scored:
            min(scored, key=lambda run: run["best_val"])["best"] = True
    return found
