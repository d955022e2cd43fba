"""Training: ``TrainConfig`` and one loop, with small pure helpers.

The recipe is the reference's: AdamW (lr 1e-3, weight decay 1e-5), gradient
norm clipped at 1.0, ReduceLROnPlateau on the validation loss (factor 0.5,
patience 3), early stopping after 7 epochs without improvement, the best
weights kept in ``best.pt``.

Reproducibility: the batch order of epoch ``e`` comes from
``numpy.random.default_rng([seed, e])``; model initialisation and LSTM dropout
use torch's generator, seeded once from ``seed`` (``nn.LSTM`` takes no
generator of its own), whose state ``last.pt`` saves. A run stopped between
two batches and resumed ends bit-identical, on CPU, to one that was not.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from qdsketch.batching import Augment, DeviceSplit, balanced_weights, batch_order
from qdsketch.checkpoint import load_checkpoint, save_checkpoint
from qdsketch.data import Dataset, load_dataset
from qdsketch.errors import CheckpointError, QdsketchError
from qdsketch.files import atomic_path
from qdsketch.model import ModelConfig, SketchModel, count_parameters
from qdsketch.seeds import derive_seed

METRICS = ("total", "xy", "pen")


@dataclass
class TrainConfig:
    data: str = "data/dataset.npz"  # dataset file written by `qdsketch preprocess`
    epochs: int = 50  # most epochs to train (early stopping may end sooner)
    batch_size: int = 128  # drawings per batch
    lr: float = 1e-3  # AdamW learning rate
    weight_decay: float = 1e-5  # AdamW weight decay
    grad_clip: float = 1.0  # gradient norm clipped to this
    lr_factor: float = 0.5  # ReduceLROnPlateau: multiply the lr by this ...
    lr_patience: int = 3  # ... after this many epochs without a better validation loss
    early_stop: int = 7  # stop after this many epochs without a better validation loss
    seed: int = 0  # model initialisation, dropout and batch order
    device: str = "auto"  # auto, cpu, cuda, cuda:N or mps
    amp: bool = False  # bf16 autocast for the forward pass (CUDA)
    pool: int = 50  # batches per pool sorted by length (padding vs randomness)
    balance: bool = False  # draw every class equally often (with replacement) instead of in proportion
    augment_scale: float = 0.0  # scale each axis of a training drawing by up to +-this (0.15 in Sketch-RNN)
    augment_rotate: float = 0.0  # rotate each training drawing by up to +-this many degrees
    augment_drop: float = 0.0  # drop each point inside a stroke with this probability (0.1 in Sketch-RNN)
    augment_jitter: float = 0.0  # add noise of this std, in pixels, to each training dx and dy

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


class Reporter(Protocol):
    def start(self, info: dict) -> None: ...
    def batch(self, epoch: int, done: int, total: int, loss: float, seqs_per_s: float) -> None: ...
    def epoch(self, row: dict) -> None: ...
    def close(self) -> None: ...


class SilentReporter:
    def start(self, info):
        pass

    def batch(self, epoch, done, total, loss, seqs_per_s):
        pass

    def epoch(self, row):
        pass

    def close(self):
        pass


# --- helpers -----------------------------------------------------------------------


def pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise QdsketchError("CUDA is not available on this machine", "use --device cpu (or auto)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise QdsketchError("MPS is not available on this machine", "use --device cpu (or auto)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise QdsketchError(f"unknown device {name!r}", "use auto, cpu, cuda, cuda:N or mps") from None


def autocast(device: torch.device, amp: bool):
    """bf16 autocast where asked for and supported; a no-op context otherwise."""
    enabled = amp and device.type == "cuda" and torch.cuda.is_bf16_supported()
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch])


def batch_generator(seed: int, epoch: int, index: int, device: torch.device) -> torch.Generator:
    """The augmentation generator of one batch: a function of where it is, so a
    resumed run draws exactly what an uninterrupted one would."""
    return torch.Generator(device).manual_seed(derive_seed(seed, epoch, index))


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

    def add(self, losses: dict, steps: int, computed: int, seqs: int) -> None:
        self.loss += torch.stack([losses[k].detach().double() for k in METRICS]) * steps
        self.steps += steps
        self.computed += computed
        self.seqs += seqs

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
def evaluate_split(model: SketchModel, split: DeviceSplit, batch_size: int, amp: bool = False, index=None) -> Sums:
    """Losses over ``split`` (or the drawings at ``index``), in eval mode."""
    was_training = model.training
    model.eval()
    sums = Sums(split.device)
    steps = split.steps_np
    chosen = np.arange(len(split)) if index is None else np.asarray(index)
    for b in batch_order(steps[chosen], batch_size, None, shuffle=False):
        b = chosen[b]
        inp, tgt, mask, labels = split.batch(b)
        with autocast(split.device, amp):
            _, losses = model(inp, labels, tgt, mask)
        sums.add(losses, int(steps[b].sum()), len(b) * int(steps[b].max()), len(b))
    model.train(was_training)
    return sums


def write_history(run_dir: Path, history: list[dict]) -> None:
    with atomic_path(run_dir / "history.json") as tmp:
        tmp.write_text(json.dumps(history, indent=1))
    if history:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
        with atomic_path(run_dir / "history.csv") as tmp:
            tmp.write_text(out.getvalue())


# --- distributed ---------------------------------------------------------------------


@dataclass
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> tuple[Dist, torch.device]:
    """Join the process group that ``torchrun`` describes, if there is one."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), device
    import torch.distributed as dist

    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size()), device


def finish_distributed(d: Dist) -> None:
    """Leave the process group together: a rank that exits while another still
    holds a connection to it can make gloo abort."""
    if d.world > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()


def all_reduce_sums(sums: Sums, device: torch.device, d: Dist) -> Sums:
    if d.world == 1:
        return sums
    import torch.distributed as dist

    state = sums.state()
    keys = sorted(state)
    t = torch.tensor([float(state[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return Sums(device, dict(zip(keys, t.tolist())))


# --- the loop ------------------------------------------------------------------------


def train(
    cfg: TrainConfig,
    model_cfg: ModelConfig | None,
    run_dir: Path,
    resume: bool = False,
    reporter: Reporter | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    epochs: int | None = None,
) -> dict:
    """Train into ``run_dir``; returns a summary. ``should_stop`` is polled
    between batches (Ctrl-C): when it says so, ``last.pt`` is saved with the
    exact position and ``summary["interrupted"]`` is true.

    On ``resume`` the run's saved config is used, except the device and
    ``epochs``, which may raise the total (by default the run's own)."""
    reporter = reporter or SilentReporter()
    run_dir = Path(run_dir)
    state: dict = {}
    if resume:
        last = run_dir / "last.pt"
        if not last.is_file():
            raise CheckpointError(
                f"nothing to resume: no {last}", f"start it with `qdsketch train --run-dir {run_dir}`"
            )
        ckpt = load_checkpoint(last)
        state = ckpt.extra
        saved = TrainConfig.from_dict(state["train_config"])
        cfg = TrainConfig(**{**asdict(saved), "epochs": epochs or saved.epochs, "device": cfg.device})
        model_cfg = ckpt.config
    elif (run_dir / "last.pt").exists():
        raise QdsketchError(f"{run_dir} already holds a run", "pass --resume to continue it, or another --run-dir")

    device = pick_device(cfg.device)
    dist_info, device = init_distributed(device)
    ds: Dataset = load_dataset(Path(cfg.data))
    if resume and ds.class_names != ckpt.class_names:
        raise QdsketchError(f"{cfg.data} has other classes than the run", "resume with the dataset it started on")
    model_cfg = ModelConfig.from_dict({**model_cfg.to_dict(), "n_classes": len(ds.class_names)})

    torch.manual_seed(cfg.seed)
    model = SketchModel(model_cfg)
    if resume:
        model.load_state_dict(ckpt.model.state_dict())
    model.to(device)
    train_split = DeviceSplit(ds.splits["train"], ds.mean, ds.std, device)
    val_split = DeviceSplit(ds.splits["val"], ds.mean, ds.std, device)
    if not len(val_split):
        raise QdsketchError(
            f"{cfg.data} has no validation drawings", "preprocess with a --split that keeps some, e.g. 70,15,15"
        )
    net = model
    if dist_info.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=cfg.lr_factor, patience=cfg.lr_patience)
    early = {"best": math.inf, "best_epoch": 0, "bad_epochs": 0}
    history: list[dict] = []
    epoch, start_batch, partial = 1, 0, None
    if resume:
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        early, history = state["early"], state["history"]
        epoch, start_batch, partial = state["epoch"], state["batch"], state["partial"]
        torch.set_rng_state(state["rng"]["torch"])
        if device.type == "cuda" and state["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(state["rng"]["cuda"], device)
    if dist_info.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(run_dir / "config.json") as tmp:
            tmp.write_text(
                json.dumps(
                    {
                        "model": model_cfg.to_dict(),
                        "train": asdict(cfg),
                        "class_names": ds.class_names,
                        "mean": ds.mean.tolist(),
                        "std": ds.std.tolist(),
                        "max_seq_len": ds.max_seq_len,
                    },
                    indent=1,
                )
            )

    def snapshot(next_epoch: int, next_batch: int, sums: Sums | None) -> dict:
        return {
            "train_config": asdict(cfg),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "early": dict(early),
            "history": history,
            "epoch": next_epoch,
            "batch": next_batch,
            "partial": sums.state() if sums else None,
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            },
            "max_seq_len": ds.max_seq_len,
        }

    def save(name: str, extra: dict) -> None:
        if dist_info.main:
            save_checkpoint(run_dir / name, model, ds.class_names, ds.mean, ds.std, extra)

    if dist_info.main:
        reporter.start(
            {
                "parameters": count_parameters(model),
                "model": model_cfg.to_dict(),
                "train": asdict(cfg),
                "device": str(device),
                "world": dist_info.world,
                "sizes": {k: len(v) for k, v in ds.splits.items()},
                "resumed_at": (epoch, start_batch) if resume else None,
            }
        )
    summary = {"interrupted": False, "head": model_cfg.head}
    steps = train_split.steps_np
    augment = Augment(cfg.augment_scale, cfg.augment_rotate, cfg.augment_drop, cfg.augment_jitter)
    weights = balanced_weights(train_split.labels_np) if cfg.balance else None
    model.train()
    while epoch <= cfg.epochs and early["bad_epochs"] < cfg.early_stop:
        batches = batch_order(steps, cfg.batch_size, epoch_rng(cfg.seed, epoch), cfg.pool, weights=weights)
        if dist_info.world > 1:  # every rank takes the same number of batches
            usable = len(batches) - len(batches) % dist_info.world
            batches = batches[dist_info.rank : usable : dist_info.world]
        sums = Sums(device, partial)
        t0 = shown = time.perf_counter()
        seqs_done = 0
        for i in range(start_batch, len(batches)):
            if dist_info.world == 1 and should_stop():  # under torchrun, last.pt of the last epoch serves
                save("last.pt", snapshot(epoch, i, sums))
                reporter.close()
                summary.update(interrupted=True, epoch=epoch, batch=i)
                return summary
            b = batches[i]
            generator = batch_generator(cfg.seed, epoch, i, device) if augment else None
            inp, tgt, mask, labels = train_split.batch(b, augment, generator)
            with autocast(device, cfg.amp):
                _, losses = net(inp, labels, tgt, mask)
            opt.zero_grad(set_to_none=True)
            losses["total"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            real = int(mask.sum()) if augment.drop else int(steps[b].sum())  # dropping points shortens drawings
            sums.add({k: v.detach() for k, v in losses.items()}, real, len(b) * int(steps[b].max()), len(b))
            seqs_done += len(b)
            now = time.perf_counter()
            if dist_info.main and (now - shown > 0.25 or i + 1 == len(batches)):  # reading the loss syncs
                shown = now
                rate = seqs_done / max(now - t0, 1e-9)
                reporter.batch(epoch, i + 1, len(batches), sums.means()["total"], rate * dist_info.world)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        train_seconds = time.perf_counter() - t0
        sums = all_reduce_sums(sums, device, dist_info)
        val = all_reduce_sums(evaluate_split(model, val_split, cfg.batch_size * 2, cfg.amp), device, dist_info)
        seconds = time.perf_counter() - t0
        tm, vm = sums.means(), val.means()
        improved = vm["total"] < early["best"]
        if improved:
            early.update(best=vm["total"], best_epoch=epoch, bad_epochs=0)
        else:
            early["bad_epochs"] += 1
        lr = opt.param_groups[0]["lr"]
        sched.step(vm["total"])
        row = {
            "epoch": epoch,
            **{f"train_{k}": tm[k] for k in METRICS},
            **{f"val_{k}": vm[k] for k in METRICS},
            "lr": lr,
            "seconds": seconds,  # the epoch, validation included
            "train_seconds": train_seconds,  # the batches alone
            "seqs_per_s": sums.seqs / max(train_seconds, 1e-9),
            "padding_efficiency": sums.efficiency,
            "best": improved,
        }
        history.append(row)
        if improved:
            save("best.pt", {"train_config": asdict(cfg), "epoch": epoch, "val": vm, "max_seq_len": ds.max_seq_len})
        epoch, start_batch, partial = epoch + 1, 0, None
        save("last.pt", snapshot(epoch, 0, None))
        if dist_info.main:
            write_history(run_dir, history)
            reporter.epoch(row)
    # the result is best.pt, the best weights; last.pt stays the exact last state, to resume from
    if dist_info.main:
        reporter.close()
    finish_distributed(dist_info)
    summary.update(
        stopped_early=early["bad_epochs"] >= cfg.early_stop,
        best_epoch=early["best_epoch"],
        best_val=early["best"],
        epochs=len(history),
        history=history,
    )
    return summary
