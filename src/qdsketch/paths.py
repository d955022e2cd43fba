"""Where things are: the files that ship with qdsketch, and the default places of
the user's data and runs.

Data and runs default to ``./data`` and ``./runs``, the project folder's. With
``QDSKETCH_HOME`` set they are ``$QDSKETCH_HOME/data`` and ``$QDSKETCH_HOME/runs``
instead, one cache for every folder (XDG users: ``QDSKETCH_HOME=$XDG_DATA_HOME/qdsketch``).
No torch here: the CLI and shell completion read these at once.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

HOME_ENV = "QDSKETCH_HOME"


def home() -> Path:
    """``$QDSKETCH_HOME`` (``~`` expanded) when it is set and not empty, else the current folder."""
    value = os.environ.get(HOME_ENV, "").strip()
    return Path(value).expanduser() if value else Path()


def data_dir() -> Path:
    """Where ``download`` puts files and ``preprocess`` reads them."""
    return home() / "data"


def dataset_file() -> Path:
    """Where ``preprocess`` writes the dataset and ``train`` reads it."""
    return data_dir() / "dataset.npz"


def runs_dir() -> Path:
    """Where ``train`` makes its run directories."""
    return home() / "runs"


def shipped(name: str) -> Path:
    """A file that ships inside the package's ``assets/`` folder."""
    return Path(str(resources.files("qdsketch") / "assets" / name))


def bundled_model() -> Path:
    """The model that ships with the package (docs/model-card.md)."""
    return shipped("default.pt")


def run_judge_file(checkpoint: Path) -> Path:
    """Where a run keeps its judge (``evaluate RUN --judge`` puts it there): ``judge.pt``
    beside its checkpoints."""
    return checkpoint_file(checkpoint).parent / "judge.pt"


def checkpoint_file(path: Path | None) -> Path:
    """A run directory means its ``best.pt``; no path means the bundled model."""
    if path is None:
        return bundled_model()
    path = Path(path)
    return path / "best.pt" if path.is_dir() else path
