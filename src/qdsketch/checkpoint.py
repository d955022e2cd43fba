"""Saving and loading checkpoints: the one place that does it.

A checkpoint is a dict that ``torch.load(..., weights_only=True)`` can read:
tensors, numbers, strings, lists and dicts only. It carries everything needed
to sample from it alone (the model's config, its class names and the dataset's
normalisation statistics), and, for ``last.pt``, everything needed to resume
training exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from qdsketch.errors import CheckpointError
from qdsketch.files import atomic_path
from qdsketch.model import ModelConfig, SketchModel

FORMAT = "qdsketch-checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    model: SketchModel
    config: ModelConfig
    class_names: list[str]
    mean: list[float]  # dx, dy mean of the training rows
    std: list[float]  # dx, dy standard deviation of the training rows
    extra: dict = field(default_factory=dict)  # training state, train config, metrics


def save_checkpoint(
    path: Path, model: SketchModel, class_names: list[str], mean, std, extra: dict | None = None
) -> None:
    module = getattr(model, "module", model)  # unwrap DistributedDataParallel
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model_config": module.cfg.to_dict(),
        "model": {k: v.detach().cpu() for k, v in module.state_dict().items()},
        "class_names": list(class_names),
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "extra": extra or {},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def bundled() -> Path:
    """The model that ships with the package (docs/model-card.md)."""
    from importlib import resources

    return Path(str(resources.files("qdsketch") / "data" / "default.pt"))


def resolve(path: Path | None) -> Path:
    """A run directory means its ``best.pt``; no path means the bundled model."""
    if path is None:
        return bundled()
    path = Path(path)
    return path / "best.pt" if path.is_dir() else path


def load_checkpoint(path: Path | None, device: str | torch.device = "cpu") -> Checkpoint:
    path = resolve(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}", "train one with `qdsketch train`, or pass --checkpoint")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # truncated zip, foreign pickle, ... all mean the same to the user
        raise CheckpointError(
            f"{path} is truncated or not a checkpoint ({type(exc).__name__})", "use another file, or train again"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a qdsketch checkpoint", "pass a best.pt or last.pt that qdsketch wrote")
    if payload.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} was written by a newer qdsketch", "upgrade qdsketch")
    config = ModelConfig.from_dict(payload["model_config"])
    model = SketchModel(config)
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError:
        raise CheckpointError(f"{path} holds weights that do not fit its config", "train again") from None
    model.to(device).eval()
    return Checkpoint(model, config, payload["class_names"], payload["mean"], payload["std"], payload["extra"])
