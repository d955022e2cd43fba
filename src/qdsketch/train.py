"""Training: one loop (``fit``), the state that resumes it (``TrainState``), small helpers.

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
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from qdsketch.averaging import WeightAverage
from qdsketch.batching import DeviceSplit, StreamSplit, balanced_weights, batch_order
from qdsketch.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from qdsketch.config import ModelConfig, TrainConfig, flat_settings
from qdsketch.data.dataset import Dataset
from qdsketch.data.preprocess import load_dataset
from qdsketch.devices import autocast, pick_device
from qdsketch.errors import CheckpointError, QdsketchError
from qdsketch.evaluate import METRICS, Sums, evaluate_split
from qdsketch.files import atomic_path, folder_lock
from qdsketch.model import StrokeModel, build_model, count_parameters
from qdsketch.seeds import derive_seed
from qdsketch.signals import die_with_parent

__all__ = ["TrainConfig", "TrainState", "fit", "resume", "train"]


class Reporter(Protocol):
    def start(self, info: dict) -> None: ...
    def batch(self, epoch: int, done: int, total: int, loss: float, seqs_per_s: float) -> None: ...
    def validating(self, epoch: int, done: int, total: int) -> None: ...
    def saved(self, path: Path, steps: int) -> None: ...  # a checkpoint was written
    def epoch(self, row: dict) -> None: ...
    def close(self) -> None: ...


class SilentReporter:
    def start(self, info):
        pass

    def batch(self, epoch, done, total, loss, seqs_per_s):
        pass

    def validating(self, epoch, done, total):
        pass

    def saved(self, path, steps):
        pass

    def epoch(self, row):
        pass

    def close(self):
        pass


# --- helpers -----------------------------------------------------------------------


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch])


def batch_generator(seed: int, epoch: int, index: int, device: torch.device) -> torch.Generator:
    """The augmentation generator of one batch: a function of where it is, so a
    resumed run draws exactly what an uninterrupted one would."""
    return torch.Generator(device).manual_seed(derive_seed(seed, epoch, index))


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


#: how long the processes of a run started without a launcher wait for each other
#: (``$QDSKETCH_RENDEZVOUS_TIMEOUT`` seconds overrides it), where torch would wait 30 minutes
RENDEZVOUS_SECONDS = 120.0

_ONE_PROCESS = "unset WORLD_SIZE and RANK to train in one process, or start them all with torchrun --nproc-per-node N"


def dist_env() -> Dist:
    """This process's place among a run's processes, from ``RANK`` and ``WORLD_SIZE`` as
    torchrun sets them (the only process of one when they are unset)."""
    counts = {}
    for name, default, least in (("RANK", "0", 0), ("WORLD_SIZE", "1", 1)):
        text = os.environ.get(name, default)
        if not (text.strip().isdigit() and int(text) >= least):
            raise QdsketchError(f"{name}={text!r} is not a process count", _ONE_PROCESS)
        counts[name] = int(text)
    if counts["RANK"] >= counts["WORLD_SIZE"]:
        raise QdsketchError(f"RANK={counts['RANK']} is not below WORLD_SIZE={counts['WORLD_SIZE']}", _ONE_PROCESS)
    return Dist(counts["RANK"], counts["WORLD_SIZE"])


def _rendezvous(me: Dist):
    """Where no launcher started the processes (torchrun meets them itself), they meet at
    ``MASTER_ADDR:MASTER_PORT``: the store that says so, once every one has come, or an
    error after ``RENDEZVOUS_SECONDS`` that says who is missing."""
    import torch.distributed as dist

    addr, port = os.environ.get("MASTER_ADDR", ""), os.environ.get("MASTER_PORT", "")
    if not addr or not port.isdigit():
        raise QdsketchError(
            f"WORLD_SIZE={me.world} asks for {me.world} processes, but MASTER_ADDR and MASTER_PORT do not say "
            "where they meet",
            _ONE_PROCESS,
        )
    text = os.environ.get("QDSKETCH_RENDEZVOUS_TIMEOUT", str(RENDEZVOUS_SECONDS))
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds < 1e6:
        raise QdsketchError(
            f"QDSKETCH_RENDEZVOUS_TIMEOUT={text!r} is not a number of seconds", "unset it, or give e.g. 120"
        )
    try:
        if not me.main:  # first the first process's port, by hand: torch's client logs every try in C++
            _wait_for_port(addr, int(port), seconds)
        return dist.TCPStore(
            addr, int(port), me.world, is_master=me.main, timeout=timedelta(seconds=seconds), wait_for_workers=True
        )
    except (RuntimeError, OSError, ValueError, OverflowError) as exc:  # torch's DistStoreError is a RuntimeError
        why = str(exc).strip().splitlines()[0][:120].rstrip(".") if str(exc).strip() else type(exc).__name__
        raise QdsketchError(
            f"the {me.world} processes of this run did not all meet at {addr}:{port} within {seconds:g} s "
            f"(this is rank {me.rank}: {why})",
            _ONE_PROCESS,
        ) from None


def _wait_for_port(addr: str, port: int, seconds: float) -> None:
    """Until ``addr:port`` takes a connection; ``TimeoutError`` after ``seconds``."""
    import socket

    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection((addr, port), timeout=max(0.1, min(1.0, deadline - time.monotonic()))).close()
            return
        except OSError:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"nothing listens at {addr}:{port}") from None
            time.sleep(0.2)


def init_distributed(device: torch.device) -> tuple[Dist, torch.device]:
    """Join the process group that ``torchrun`` (or RANK, WORLD_SIZE, MASTER_ADDR and
    MASTER_PORT) describe, if there is one."""
    me = dist_env()
    if me.world <= 1:
        return Dist(), device
    import torch.distributed as dist

    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        # a launcher killed with -9 must not leave its trainers writing into the run directory:
        # they get SIGTERM, which saves last.pt and stops them, as Ctrl-C does
        die_with_parent(signal.SIGTERM)
        backend = "nccl" if device.type == "cuda" else "gloo"
        if "TORCHELASTIC_RUN_ID" in os.environ:  # torchrun: its agent has met the processes already
            dist.init_process_group(backend)
        else:
            dist.init_process_group(backend, store=_rendezvous(me), rank=me.rank, world_size=me.world)
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


# --- the state that resumes --------------------------------------------------------------


@dataclass
class TrainState:
    """Everything that resumes a run exactly; ``last.pt`` keeps ``to_checkpoint()``."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau
    epoch: int = 1  # the epoch to run next
    batch: int = 0  # and its first batch
    partial: dict | None = None  # loss sums of that epoch's batches already run (``Sums.state()``)
    best: float = math.inf  # early stopping: the best validation loss ...
    best_epoch: int = 0  # ... its epoch ...
    bad_epochs: int = 0  # ... and the epochs since
    history: list[dict] = field(default_factory=list)  # one row per finished epoch
    steps: int = 0  # optimizer steps taken, for --max-steps
    steps_before: int = 0  # --init-from: the steps its weights had taken, counted in ``trained``
    cpu_seconds: float = 0.0  # CPU time this process and every run before a resume spent in fit

    @property
    def total_steps(self) -> int:
        """The optimizer steps its weights have taken: this run's, and ``--init-from``'s before it."""
        return self.steps_before + self.steps

    @classmethod
    def new(cls, model: StrokeModel, cfg: TrainConfig) -> TrainState:
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="min", factor=cfg.lr_factor, patience=cfg.lr_patience
        )
        return cls(opt, sched)

    def to_checkpoint(self, device: torch.device) -> dict:
        cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "early": {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs},
            "history": self.history,
            "epoch": self.epoch,
            "batch": self.batch,
            "partial": self.partial,
            "rng": {"torch": torch.get_rng_state(), "cuda": cuda},
            "steps": self.steps,
            "steps_before": self.steps_before,
            "cpu_seconds": self.cpu_seconds,
        }

    def load(self, saved: dict, device: torch.device) -> None:
        """Take up ``saved`` (``to_checkpoint()``), torch's random state included."""
        self.optimizer.load_state_dict(saved["optimizer"])
        for group in self.optimizer.param_groups:  # load_state_dict checks counts, not shapes
            for param in group["params"]:
                for value in self.optimizer.state.get(param, {}).values():
                    if torch.is_tensor(value) and value.dim() and value.shape != param.shape:
                        raise ValueError(f"its optimizer state is for a model of another shape ({tuple(value.shape)})")
        self.scheduler.load_state_dict(saved["scheduler"])
        early = saved["early"]
        self.best, self.best_epoch, self.bad_epochs = early["best"], early["best_epoch"], early["bad_epochs"]
        self.history, self.epoch, self.batch = saved["history"], saved["epoch"], saved["batch"]
        self.partial, self.steps = saved["partial"], saved["steps"]
        self.cpu_seconds = float(saved.get("cpu_seconds", 0.0))  # earlier runs did not count it
        self.steps_before = saved.get("steps_before", 0)  # nor this
        counts = {"epoch": self.epoch, "batch": self.batch, "steps": self.steps, "steps_before": self.steps_before}
        counts |= {"best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}
        for name, value in counts.items():  # checked now: a wrong one would fail an hour into the run
            if type(value) is not int or value < (1 if name == "epoch" else 0):
                raise ValueError(f"{name} is {value!r}, not a count")
        if type(self.best) not in (int, float) or not isinstance(self.history, list):
            raise ValueError("the early-stopping state or the history is not what training writes")
        if self.partial is not None:
            Sums(device, self.partial)  # raises on sums that are not numbers
        torch.set_rng_state(saved["rng"]["torch"])
        if device.type == "cuda" and saved["rng"]["cuda"] is not None:
            torch.cuda.set_rng_state(saved["rng"]["cuda"], device)

    def done(self, cfg: TrainConfig) -> bool:
        out_of_steps = cfg.max_steps is not None and self.steps >= cfg.max_steps
        return self.epoch > cfg.epochs or self.bad_epochs >= cfg.early_stop or out_of_steps


def warmup_scale(steps: int, warmup: int) -> float:
    """The share of the learning rate for the optimizer step after ``steps`` steps under
    ``--warmup``: 1/warmup, 2/warmup, ... then 1. A function of the step count alone, so
    ``--resume`` goes on with the same rates."""
    return 1.0 if steps >= warmup else (steps + 1) / warmup


@contextmanager
def warmed_up(optimizer: torch.optim.Optimizer, scale: float) -> Iterator[None]:
    """Step ``optimizer`` at ``scale`` times its learning rate, then put the rate back: the
    plateau scheduler and the saved state only ever see the rate it chose itself."""
    if scale == 1.0:
        yield
        return
    rates = [group["lr"] for group in optimizer.param_groups]
    for group, rate in zip(optimizer.param_groups, rates):
        group["lr"] = rate * scale
    try:
        yield
    finally:
        for group, rate in zip(optimizer.param_groups, rates):
            group["lr"] = rate


# --- one run ----------------------------------------------------------------------------


@dataclass
class Run:
    """What a training run works with, set up once."""

    cfg: TrainConfig
    model: StrokeModel
    net: torch.nn.Module  # the model, or its DistributedDataParallel wrapper
    ds: Dataset
    train_split: DeviceSplit | StreamSplit
    val_split: DeviceSplit | StreamSplit
    device: torch.device
    dist: Dist
    run_dir: Path
    reporter: Reporter
    average: WeightAverage | None = None  # --ema: the weights that are validated and saved
    cpu_before: float = 0.0  # CPU seconds of the parts of the run before a resume
    cpu_at_start: float = field(default_factory=time.process_time)

    @property
    def weights(self) -> StrokeModel:
        """The model that is validated and saved: the weight average under ``--ema``."""
        return self.average.model if self.average is not None else self.model

    def checkpoint(self, state: TrainState, last: bool) -> Checkpoint:
        """``last.pt`` (``last``: the state to resume from) or ``best.pt``. Under ``--ema``
        the weights are the average, and last.pt's state also holds the trained weights."""
        ds = self.ds
        val = {} if last or not state.history else {k: state.history[-1][f"val_{k}"] for k in METRICS}
        saved = state.to_checkpoint(self.device) if last else None
        if saved is not None and self.average is not None:
            saved["trained_weights"] = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
            saved["average_updates"] = self.average.updates
        return Checkpoint(
            model=self.weights,
            config=self.model.cfg,
            class_names=ds.class_names,
            mean=ds.mean.tolist(),
            std=ds.std.tolist(),
            max_seq_len=ds.max_seq_len,
            train=self.cfg,
            epoch=state.epoch - 1,
            val=val,
            state=saved,
            trained={
                "steps": state.total_steps,
                "cpu_hours": self.cpu_seconds() / 3600,
                **({"batches_into_epoch": state.batch} if state.batch else {}),  # a save within an epoch
            },
        )

    def save_last(self, state: TrainState) -> None:
        """``last.pt``: the weights and everything that resumes the run exactly."""
        if self.dist.main:
            state.cpu_seconds = self.cpu_seconds()
            self._save(self.run_dir / "last.pt", self.checkpoint(state, last=True), state)

    def save_best(self, state: TrainState) -> None:
        """``best.pt``: the weights of the best epoch so far, with its validation losses."""
        if self.dist.main:
            state.cpu_seconds = self.cpu_seconds()
            self._save(self.run_dir / "best.pt", self.checkpoint(state, last=False), state)

    def _save(self, path: Path, checkpoint: Checkpoint, state: TrainState) -> None:
        save_checkpoint(path, checkpoint)
        self.reporter.saved(path, state.total_steps)

    def save_snapshot(self, state: TrainState) -> None:
        """Within an epoch (``--save-every``): ``last.pt`` at the next batch, and the weights
        alone as ``snapshots/steps-<N>.pt``, a point on the run's curve that sample and
        evaluate read like any checkpoint."""
        self.save_last(state)
        if self.dist.main:
            (self.run_dir / "snapshots").mkdir(exist_ok=True)
            # not validated: the last epoch's validation losses are not these weights'
            snapshot = replace(self.checkpoint(state, last=False), val={})
            # --init-from: counted from the first random weights
            self._save(self.run_dir / "snapshots" / f"steps-{state.total_steps}.pt", snapshot, state)

    def cpu_seconds(self) -> float:
        """CPU time spent training this run so far, every resumed part included."""
        return self.cpu_before + time.process_time() - self.cpu_at_start


#: above this size (the training split as float32 stroke-5 on the device), ``stream="auto"`` streams
STREAM_ABOVE = 1 << 30


def make_split(ds: Dataset, name: str, stream: str, device: torch.device) -> DeviceSplit | StreamSplit:
    """A split held whole on the device, or streamed from its shards (``TrainConfig.stream``)."""
    train = ds.splits["train"]
    flat_bytes = 20 * (sum(len(s.drawings.rows) for s in train.shards) + 2 * len(train))
    if stream == "always" or (stream == "auto" and ds.sharded and flat_bytes > STREAM_ABOVE):
        return StreamSplit(ds.splits[name], ds.mean, ds.std, device)
    return DeviceSplit(ds.splits[name], ds.mean, ds.std, device)


def _setup(
    cfg: TrainConfig,
    model_cfg: ModelConfig,
    run_dir: Path,
    reporter: Reporter,
    class_names=None,
    start: Checkpoint | None = None,
    scale: tuple[list[float], list[float]] | None = None,
) -> Run:
    """Device, process group, dataset and model; ``class_names`` must match on resume.
    ``start`` (``--init-from``) gives the model, its first weights and the normalisation;
    ``scale`` (mean, std) is a resumed run's own normalisation."""
    device = pick_device(cfg.device)
    dist_info, device = init_distributed(device)
    ds = load_dataset(Path(cfg.data))
    if class_names is not None and ds.class_names != class_names:
        raise QdsketchError(f"{cfg.data} has other classes than the run", "resume with the dataset it started on")
    if start is not None:
        if ds.class_names != start.class_names:
            raise QdsketchError(
                f"--init-from {cfg.init_from} knows {len(start.class_names)} classes, and {cfg.data} holds "
                f"{len(ds.class_names)} others (or in another order)",
                "start from a model of the dataset's classes, or preprocess its classes with --classes",
            )
        model_cfg, scale = start.config, (start.mean, start.std)
    if scale is not None:  # the weights read strokes scaled by their own statistics: so must the batches
        ds = replace(ds, mean=np.asarray(scale[0], ds.mean.dtype), std=np.asarray(scale[1], ds.std.dtype))
    model_cfg = replace(model_cfg, n_classes=len(ds.class_names))
    torch.manual_seed(cfg.seed)
    try:
        model = build_model(model_cfg).to(device)
    except ValueError as exc:  # a shape that cannot be built, e.g. --hidden not a multiple of --heads
        raise QdsketchError(f"this model cannot be built: {exc}", "change --hidden, --heads or --arch") from None
    if start is not None:
        model.load_state_dict(start.model.state_dict())
    for name in ("train", "val"):  # validation picks the best weights and stops early: training needs both
        if not len(ds.splits[name]):
            raise QdsketchError(
                f"{cfg.data} has no {'training' if name == 'train' else 'validation'} drawings",
                "preprocess with a --split that keeps some of each, e.g. 70,15,15, and enough drawings a class",
            )
    val_split = make_split(ds, "val", cfg.stream, device)
    average = WeightAverage(model, cfg.ema) if cfg.ema > 0 else None
    net: torch.nn.Module = model
    if dist_info.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    train_split = make_split(ds, "train", cfg.stream, device)
    return Run(cfg, model, net, ds, train_split, val_split, device, dist_info, run_dir, reporter, average)


def run_epoch(run: Run, state: TrainState, should_stop: Callable[[], bool]) -> Sums | None:
    """Train ``state.epoch`` from ``state.batch``; the epoch's loss sums, or
    ``None`` when ``should_stop`` said so (``state`` then points at the next batch)."""
    cfg, device, d = run.cfg, run.device, run.dist
    weights = balanced_weights(run.train_split.labels_np) if cfg.balance else None
    batches = batch_order(run.train_split.steps_np, cfg.batch_size, epoch_rng(cfg.seed, state.epoch), cfg.pool, weights)
    if d.world > 1:  # every rank takes the same number of batches
        if len(batches) < d.world:
            raise QdsketchError(
                f"the training split makes {len(batches)} batch(es) of {cfg.batch_size}, fewer than the "
                f"{d.world} processes: none would train",
                "lower --batch-size, or start fewer processes",
            )
        batches = batches[d.rank : len(batches) - len(batches) % d.world : d.world]
    sums = Sums(device, state.partial)
    t0 = shown = saved = time.perf_counter()
    seqs_done = 0
    for i in range(state.batch, len(batches)):
        if _stop_agreed(should_stop, d, device):
            state.batch, state.partial = i, sums.state()
            return None
        if cfg.save_every is not None and i > state.batch and time.perf_counter() - saved > 60 * cfg.save_every:
            state.batch, state.partial = i, sums.state()
            run.save_snapshot(state)
            saved = time.perf_counter()
        generator = batch_generator(cfg.seed, state.epoch, i, device) if cfg.augment else None
        batch = run.train_split.batch(batches[i], cfg.augment, generator)
        with autocast(device, cfg.amp):
            _, losses = run.net(batch.inputs, batch.labels, batch.targets, batch.mask)
        state.optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.grad_clip)
        with warmed_up(state.optimizer, warmup_scale(state.steps, cfg.warmup)):
            state.optimizer.step()
        if run.average is not None:
            run.average.update(run.model)
        state.steps += 1
        sums.add(losses, batch)
        seqs_done += len(batch.labels)
        now = time.perf_counter()
        last = i + 1 == len(batches) or (cfg.max_steps is not None and state.steps >= cfg.max_steps)
        if d.main and (now - shown > 0.25 or last):  # reading the loss syncs
            shown = now
            rate = seqs_done / max(now - t0, 1e-9) * d.world
            run.reporter.batch(state.epoch, i + 1, len(batches), sums.means()["total"], rate)
        if cfg.max_steps is not None and state.steps >= cfg.max_steps:
            break  # the epoch closes here: validated, saved, and the run is done
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    sums.seconds = time.perf_counter() - t0
    return sums


def close_epoch(run: Run, state: TrainState, sums: Sums, t0: float) -> dict:
    """Validate, step early stopping and the scheduler, save, and return the history row."""
    cfg, train_seconds = run.cfg, sums.seconds
    sums = all_reduce_sums(sums, run.device, run.dist)
    d = run.dist
    mine = np.arange(d.rank, len(run.val_split), d.world) if d.world > 1 else None  # each rank reads its own part
    heard = (lambda done, total: run.reporter.validating(state.epoch, done, total)) if d.main else None
    val = evaluate_split(run.weights, run.val_split, cfg.batch_size * 2, cfg.amp, mine, progress=heard)
    val = all_reduce_sums(val, run.device, d)
    train_means, val_means = sums.means(), val.means()
    if not (math.isfinite(train_means["total"]) and math.isfinite(val_means["total"])):  # this epoch is not saved
        kept = f"last.pt and best.pt keep epoch {state.epoch - 1}" if state.epoch > 1 else "nothing was saved"
        raise QdsketchError(
            f"training diverged: the loss became {train_means['total']:g} in epoch {state.epoch}",
            f"lower --lr (it is {cfg.lr:g}) or the loss weights; {kept}",
        )
    improved = val_means["total"] < state.best
    if improved:
        state.best, state.best_epoch, state.bad_epochs = val_means["total"], state.epoch, 0
    else:
        state.bad_epochs += 1
    lr = state.optimizer.param_groups[0]["lr"]
    state.scheduler.step(val_means["total"])
    row = {
        "epoch": state.epoch,
        **{f"train_{k}": train_means[k] for k in METRICS},
        **{f"val_{k}": val_means[k] for k in METRICS},
        "lr": lr,
        "seconds": time.perf_counter() - t0,  # the epoch, validation included
        "train_seconds": train_seconds,  # the batches alone
        "seqs_per_s": sums.seqs / max(train_seconds, 1e-9),
        "padding_efficiency": sums.efficiency,
        "cpu_hours": run.cpu_seconds() / 3600,  # the run's CPU time so far, resumed parts included
        "best": improved,
    }
    state.history.append(row)
    state.epoch, state.batch, state.partial = state.epoch + 1, 0, None
    if improved:
        run.save_best(state)
    run.save_last(state)
    if run.dist.main:
        write_history(run.run_dir, state.history)
    return row


def _stop_agreed(should_stop: Callable[[], bool], d: Dist, device: torch.device) -> bool:
    """Whether to stop before this batch: this process's Ctrl-C or SIGTERM, or under torchrun
    any process's. Every process must stop at the same batch, or the others would wait for
    it forever in the next gradient exchange (a launcher killed with -9 sends each of them a
    SIGTERM of its own, at its own batch)."""
    if d.world == 1:
        return should_stop()
    import torch.distributed as dist

    flag = torch.tensor([float(should_stop())], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def fit(run: Run, state: TrainState, should_stop: Callable[[], bool] = lambda: False) -> dict:
    """The loop: epochs until done or early stop; Ctrl-C (``should_stop``) saves
    ``last.pt`` at the exact batch. Returns the summary, history included."""
    run.model.train()
    interrupted = False
    try:
        while not state.done(run.cfg):
            t0 = time.perf_counter()
            sums = run_epoch(run, state, should_stop)
            if sums is None:
                if run.dist.world == 1:  # several processes' losses so far are not gathered: under
                    run.save_last(state)  # torchrun, last.pt keeps the last whole epoch
                interrupted = True
                break
            row = close_epoch(run, state, sums, t0)
            if run.dist.main:
                run.reporter.epoch(row)
    finally:  # an error prints alone, after the bar
        if run.dist.main:
            run.reporter.close()
    finish_distributed(run.dist)  # a stop is agreed by every process: they leave together
    return {
        "interrupted": interrupted,
        "head": run.model.cfg.head,
        "epoch": state.epoch,
        "batch": state.batch,
        "processes": run.dist.world,
        "stopped_early": state.bad_epochs >= run.cfg.early_stop,
        "best_epoch": state.best_epoch,
        "best_val": state.best,
        "epochs": len(state.history),
        "history": state.history,
    }


def _start(run: Run, state: TrainState, resumed_at: tuple[int, int] | None) -> None:
    """config.json in the run directory, and the reporter's header."""
    if not run.dist.main:
        return
    cfg, ds, model_cfg = run.cfg, run.ds, run.model.cfg
    run.run_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "model": model_cfg.to_dict(),
        "train": cfg.to_dict(),
        "class_names": ds.class_names,
        "mean": ds.mean.tolist(),
        "std": ds.std.tolist(),
        "max_seq_len": ds.max_seq_len,
    }
    with atomic_path(run.run_dir / "config.json") as tmp:
        tmp.write_text(json.dumps(config, indent=1))
    run.reporter.start(
        {
            "parameters": count_parameters(run.model),
            "model": model_cfg.to_dict(),
            "train": cfg.to_dict(),
            "device": str(run.device),
            "world": run.dist.world,
            "sizes": {k: len(v) for k, v in ds.splits.items()},
            "resumed_at": resumed_at,
            "run_dir": str(run.run_dir),
            "steps_before": state.steps_before,
        }
    )


def train(
    cfg: TrainConfig,
    model_cfg: ModelConfig,
    run_dir: Path,
    reporter: Reporter | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict:
    """Train a new run into ``run_dir``; returns ``fit``'s summary."""
    run_dir = Path(run_dir)
    with run_dir_lock(run_dir):
        if (run_dir / "last.pt").exists():
            raise QdsketchError(f"{run_dir} already holds a run", "pass --resume to continue it, or another --run-dir")
        start = load_checkpoint(starting_weights(cfg.init_from)) if cfg.init_from is not None else None
        run = _setup(cfg, model_cfg, run_dir, reporter or SilentReporter(), start=start)
        state = TrainState.new(run.model, cfg)
        if start is not None:  # its training counts in the new run's steps and CPU hours
            state.steps_before = int(start.trained.get("steps", 0))
            run.cpu_before = float(start.trained.get("cpu_hours", 0.0)) * 3600
            if run.average is not None:  # at its full decay: these are no random weights to fade out
                run.average.updates = state.steps_before
        _start(run, state, None)
        return fit(run, state, should_stop)


def starting_weights(text: str) -> Path:
    """``--init-from``'s checkpoint: a file, a run directory (its ``best.pt``), or the name
    of a shipped model (``five``, ``all``) where no such path exists."""
    from qdsketch.paths import checkpoint_file
    from qdsketch.shipped import shipped_models

    if Path(text).exists():
        return checkpoint_file(Path(text))
    shipped = {model.name: model.path for model in shipped_models()}
    if text not in shipped:
        raise CheckpointError(
            f"--init-from {text}: no checkpoint or run directory there, and no shipped model of that name",
            f"give a best.pt, last.pt or run directory, or one of {', '.join(shipped)}",
        )
    return shipped[text]


@contextmanager
def run_dir_lock(run_dir: Path) -> Iterator[None]:
    """``run_dir``, locked before anything in it is read or written, for the whole run:
    two trainings never share a folder, and the second to come finds what the first
    left (a finished run it must not overwrite). The folders made here and left empty by a
    failure (``runs/`` too) are removed. Under torchrun, the first process holds it for all."""
    if not dist_env().main:
        yield
        return
    made = [p for p in [run_dir, *run_dir.parents] if not p.exists()]  # deepest first
    try:
        with folder_lock(run_dir):
            yield
    finally:
        for folder in made:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()


#: what a resumed run may change: how long it trains, where, where its dataset moved
#: (it must hold the same classes), how often it saves within an epoch, and whether it
#: keeps a weight average (which leaves the trained weights as they would have been)
MAY_CHANGE = ("epochs", "device", "data", "save_every", "ema")


def settings(cfg: TrainConfig, model_cfg: ModelConfig) -> dict:
    """Every setting of a run by its option's name (``batch_size``, ``augment_scale``,
    ``hidden``), the class count aside: what ``--resume`` compares."""
    return flat_settings(cfg.to_dict()) | {k: v for k, v in model_cfg.to_dict().items() if k != "n_classes"}


def resume(
    run_dir: Path,
    asked: dict | None = None,
    reporter: Reporter | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict:
    """Continue the run in ``run_dir`` from its ``last.pt``, with its own settings.

    ``asked`` holds the settings given again, by option name (``settings``'s names):
    ``epochs`` may raise its total, ``device`` move it, ``data`` point at its dataset
    where that moved, ``save_every`` set how often it saves. Any other is accepted
    when it is the run's own value, so the command that started a run, given again
    with ``--resume``, continues it; a changed one is refused with both values."""
    run_dir = Path(run_dir)
    with run_dir_lock(run_dir):
        run, state = _resumed(run_dir, dict(asked or {}), reporter or SilentReporter())
        _start(run, state, (state.epoch, state.batch))
        return fit(run, state, should_stop)


def _resumed(run_dir: Path, asked: dict, reporter: Reporter) -> tuple[Run, TrainState]:
    """The run in ``run_dir`` and its state, as its ``last.pt`` left them (``resume``'s rules)."""
    last = run_dir / "last.pt"
    if not last.is_file():
        raise CheckpointError(f"nothing to resume: no {last}", f"start it with `qdsketch train --run-dir {run_dir}`")
    ckpt = load_checkpoint(last)
    if ckpt.state is None:
        raise CheckpointError(f"{last} holds no training state", "resume from the last.pt that training wrote")
    own = settings(ckpt.train, ckpt.config)
    changed = [name for name, value in asked.items() if name not in MAY_CHANGE and own.get(name, value) != value]
    if changed:
        flag = lambda name: "--" + name.replace("_", "-")
        said = ", ".join(f"{flag(n)} {asked[n]} (the run has {own[n]})" for n in changed)
        raise QdsketchError(
            f"{run_dir} was trained with other settings: {said}",
            f"drop {', '.join(map(flag, changed))} to continue it as it was, or start a new run with another "
            "--run-dir (only --epochs, --device, --data, --save-every and --ema may change on --resume)",
        )
    cfg = replace(ckpt.train, **{k: v for k, v in asked.items() if k in MAY_CHANGE and v is not None})
    run = _setup(cfg, ckpt.config, run_dir, reporter, ckpt.class_names, scale=(ckpt.mean, ckpt.std))
    try:  # a state written for another model, or edited by hand, is refused here, not mid-step
        trained = ckpt.state.get("trained_weights")  # under --ema: ckpt.model is the average
        run.model.load_state_dict(trained if trained is not None else ckpt.model.state_dict())
        if run.average is not None:  # the run's average; on a newly given --ema, ckpt.model is the trained weights
            updates = ckpt.state.get("average_updates", 0) if trained is not None else 0
            if type(updates) is not int or updates < 0:
                raise ValueError(f"average_updates is {updates!r}, not a count")
            run.average.model.load_state_dict(ckpt.model.state_dict())
            run.average.updates = updates
        state = TrainState.new(run.model, cfg)
        state.load(ckpt.state, run.device)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as exc:
        why = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:160]
        raise CheckpointError(
            f"{last} holds a training state that does not fit its run ({why})",
            "resume from the last.pt that training wrote, or start a new run with another --run-dir",
        ) from None
    run.cpu_before, run.cpu_at_start = state.cpu_seconds, time.process_time()
    return run, state
