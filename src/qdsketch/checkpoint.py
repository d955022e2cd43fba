"""Saving and loading checkpoints: the one place that does it.

A checkpoint is a dict that ``torch.load(..., weights_only=True)`` can read:
tensors, numbers, strings, lists and dicts only. It carries everything needed
to sample from it alone (the model's config, its class names, the dataset's
normalisation statistics and longest drawing), how it was trained, and, for
``last.pt``, the training state to resume from exactly (``train.TrainState``).

Version 1 (qdsketch 0.1 and 0.2) kept the training fields in an ``extra``
dict; it still loads, through ``_from_version_1``.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch

from qdsketch.config import ModelConfig, TrainConfig, field_type
from qdsketch.errors import CheckpointError
from qdsketch.files import write_atomically
from qdsketch.model import StrokeModel, build_model
from qdsketch.paths import checkpoint_file

FORMAT = "qdsketch-checkpoint"
VERSION = 2


@dataclass(kw_only=True)
class Checkpoint:
    model: StrokeModel
    config: ModelConfig
    class_names: list[str]
    mean: list[float]  # dx, dy mean of the training rows
    std: list[float]  # dx, dy standard deviation of the training rows
    max_seq_len: int  # the dataset's longest drawing, in stroke-3 rows: sampling's default length limit
    train: TrainConfig  # how it was trained; ``train.data`` is the dataset file
    epoch: int  # the epoch whose weights these are (0: before the first)
    val: dict[str, float] = field(default_factory=dict)  # validation losses at that epoch (total, xy, pen)
    state: dict | None = None  # last.pt only: ``TrainState.to_checkpoint()``
    trained: dict = field(default_factory=dict)  # how much training these weights took: steps, cpu_hours


def save_checkpoint(path: Path, ckpt: Checkpoint) -> None:
    module = getattr(ckpt.model, "module", ckpt.model)  # unwrap DistributedDataParallel
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model_config": ckpt.config.to_dict(),
        "model": {k: v.detach().cpu() for k, v in module.state_dict().items()},
        "class_names": list(ckpt.class_names),
        "mean": [float(v) for v in ckpt.mean],
        "std": [float(v) for v in ckpt.std],
        "max_seq_len": int(ckpt.max_seq_len),
        "train_config": ckpt.train.to_dict(),
        "epoch": int(ckpt.epoch),
        "val": {k: float(v) for k, v in ckpt.val.items()},
        "state": ckpt.state,
        "trained": {k: float(v) for k, v in ckpt.trained.items()},
    }
    buffer = io.BytesIO()  # torch's own writer turns a full disk into a RuntimeError
    torch.save(payload, buffer)
    write_atomically(path, buffer.getbuffer())


def load_checkpoint(path: Path | None, device: str | torch.device = "cpu") -> Checkpoint:
    if path is not None and Path(path).is_dir() and not (Path(path) / "best.pt").exists():
        if (Path(path) / "last.pt").is_file():  # a run stopped before its first validation chose a best
            raise CheckpointError(
                f"{path} has no best.pt yet: the run stopped within its first epoch, before validation chose one",
                f"use its weights so far with --checkpoint {Path(path) / 'last.pt'}, "
                f"or go on with `qdsketch train --run-dir {path} --resume`",
            )
    path = checkpoint_file(path)
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
    if type(payload.get("version")) is not int:
        raise CheckpointError(f"{path} has no format version", "pass a best.pt or last.pt that qdsketch wrote")
    if payload["version"] > VERSION:
        raise CheckpointError(f"{path} was written by a newer qdsketch", "upgrade qdsketch")
    try:
        if payload.get("version") == 1:
            payload = _from_version_1(payload, path)
        config = ModelConfig.from_dict(payload["model_config"])
        _check(payload, config)
        model = build_model(config)
        model.load_state_dict(payload["model"])
        train = TrainConfig.from_dict(payload["train_config"])  # inside: None or a string is a clear error too
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is not a checkpoint qdsketch can use ({_why(exc)})", "train again") from None
    model.to(device).eval()
    return Checkpoint(
        model=model,
        config=config,
        class_names=payload["class_names"],
        mean=payload["mean"],
        std=payload["std"],
        max_seq_len=payload["max_seq_len"],
        train=train,
        epoch=payload["epoch"],
        val=payload["val"],
        state=payload["state"],
        trained=_trained(payload.get("trained")),
    )


#: the longest sketch sampling will draw by default; a checkpoint may not ask for more
MAX_SEQ_LEN = 10_000


def _check(payload: dict, config: ModelConfig) -> None:
    """What must hold before a checkpoint is built and sampled from; ``ValueError`` says what does not."""
    for f in fields(ModelConfig):
        value, m = getattr(config, f.name), f.metadata
        if field_type(ModelConfig, f) in (int, float) and (type(value) not in (int, float) or not math.isfinite(value)):
            raise ValueError(f"{f.name} is {value!r}")
        if ("min" in m and value < m["min"]) or ("max" in m and value > m["max"]):
            raise ValueError(f"{f.name} {value!r} is out of range")
        if "choices" in m and value not in m["choices"]:
            raise ValueError(f"unknown {f.name} {value!r}")
    names, max_len = payload["class_names"], payload["max_seq_len"]
    if not isinstance(names, list) or len(names) != config.n_classes or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{config.n_classes} classes, but class names {names!r:.60}")
    if type(max_len) is not int or not 1 <= max_len <= MAX_SEQ_LEN:
        raise ValueError(f"max_seq_len {max_len!r:.20}")
    stats = [float(v) for v in [*payload["mean"], *payload["std"]]]
    if len(stats) != 4 or not all(math.isfinite(v) for v in stats) or min(stats[2:]) <= 0:
        raise ValueError("its normalisation is not finite")
    if not all(torch.isfinite(t).all() for t in payload["model"].values() if t.is_floating_point()):
        raise ValueError("some weights are not finite")


def _trained(value) -> dict:
    """The ``trained`` record, numbers only (earlier checkpoints have none)."""
    if not isinstance(value, dict):
        return {}
    return {k: float(v) for k, v in value.items() if isinstance(k, str) and type(v) in (int, float)}


def _why(exc: Exception) -> str:
    text = str(exc) if isinstance(exc, ValueError) else ""
    return text or f"{type(exc).__name__}: {exc}"[:80]


def _from_version_1(payload: dict, path: Path) -> dict:
    """A version 1 payload in version 2's layout. Version 1 kept the training
    fields in ``extra``; ``last.pt`` held the next epoch to run, ``best.pt`` its own."""
    extra = payload["extra"]
    if "max_seq_len" not in extra or "train_config" not in extra:
        raise CheckpointError(f"{path} was written by a qdsketch older than 0.2", "train it again with this qdsketch")
    resumable = "optimizer" in extra
    state = {k: v for k, v in extra.items() if k not in ("train_config", "max_seq_len")} if resumable else None
    if state is not None:
        state["steps"] = 0  # version 1 did not count optimizer steps
    return {
        **payload,
        "max_seq_len": extra["max_seq_len"],
        "train_config": extra["train_config"],
        "epoch": extra["epoch"] - 1 if resumable else extra["epoch"],
        "val": {} if resumable else extra["val"],
        "state": state,
    }
