"""Rich reporters for the CLI. The core never imports this module: it takes a
reporter object, and has a silent one of its own."""

from __future__ import annotations

import time

from rich.console import Console
from rich.filesize import decimal
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn


class RichDownloadReporter:
    """One bar per class file: drawings kept against the target, bytes, rate."""

    def __init__(self, console: Console):
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[count]}"),
            TextColumn("{task.fields[moved]}"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, tuple[TaskID, float, str]] = {}

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is not None:  # the error message says it all: drop bars left unfinished
            for task in self.progress.tasks:
                if not task.finished:
                    self.progress.remove_task(task.id)
        if self.progress.live.is_started:
            self.progress.stop()

    def start(self, label, total, unit):
        task = self.progress.add_task(label, total=total, count="", moved="", rate="")
        self.tasks[label] = (task, time.perf_counter(), unit)

    def update(self, label, completed, moved):
        if not self.progress.live.is_started:  # shown from the first bytes on, so an early error prints alone
            self.progress.start()
        task, t0, unit = self.tasks[label]
        total = self.progress.tasks[task].total
        if unit == "drawings":
            count = f"{completed:,}/{total:,} drawings" if total else f"{completed:,} drawings"
        else:
            count = ""
        rate = moved / max(time.perf_counter() - t0, 1e-6)
        self.progress.update(
            task,
            completed=completed if total else None,
            count=count,
            moved=decimal(moved),
            rate=f"{decimal(int(rate))}/s",
        )

    def finish(self, label):
        task, _, _ = self.tasks[label]
        self.progress.update(
            task, completed=self.progress.tasks[task].total or 1, total=self.progress.tasks[task].total or 1
        )


class RichTrainReporter:
    """A live bar over the batches, and one row per epoch printed above it."""

    COLUMNS = (  # fits 80 columns: epoch; train total, MSE (NLL for gmm), CE; validation the same; ...
        ("ep", 3),
        ("train", 6),
        ("mse", 6),
        ("ce", 6),
        ("val", 6),
        ("mse", 6),
        ("ce", 6),
        ("lr", 7),
        ("secs", 5),
        ("seq/s", 6),
        ("pad", 4),
        ("", 4),
    )

    def __init__(self, console: Console):
        from rich.progress import MofNCompleteColumn

        self.console = console
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"),
            TextColumn("{task.fields[rate]:,.0f} seq/s"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.task: TaskID | None = None

    def start(self, info):
        c = self.console
        model = ", ".join(f"{k}={v}" for k, v in info["model"].items())
        c.print(f"model: {info['parameters']:,} trainable parameters ({model})")
        train = info["train"]
        c.print(
            "train: "
            + ", ".join(f"{k}={train[k]}" for k in ("data", "epochs", "batch_size", "lr", "weight_decay", "seed"))
            + f"; device {info['device']}"
            + (f" x {info['world']} processes" if info["world"] > 1 else "")
        )
        sizes = info["sizes"]
        c.print(f"data: {sizes['train']:,} train, {sizes['val']:,} validation, {sizes['test']:,} test drawings")
        if info["resumed_at"]:
            epoch, batch = info["resumed_at"]
            c.print(f"resuming at epoch {epoch}, batch {batch}")
        xy = "nll" if info["model"]["head"] == "gmm" else "mse"
        c.print(" ".join(f"{xy if name == 'mse' else name:>{width}}" for name, width in self.COLUMNS).rstrip())
        self.progress.start()

    def batch(self, epoch, done, total, loss, seqs_per_s):
        if self.task is None:
            self.task = self.progress.add_task("", total=total, epoch=epoch, loss=loss, rate=seqs_per_s)
        self.progress.update(self.task, completed=done, total=total, epoch=epoch, loss=loss, rate=seqs_per_s)

    def epoch(self, row):
        values = [
            f"{row['epoch']}",
            *(f"{row[k]:.4f}" for k in ("train_total", "train_xy", "train_pen", "val_total", "val_xy", "val_pen")),
            f"{row['lr']:.1e}",
            f"{row['seconds']:.1f}",
            f"{row['seqs_per_s']:,.0f}",
            f"{row['padding_efficiency']:.0%}",
            "best" if row["best"] else "",
        ]
        line = " ".join(f"{v:>{w}}" for v, (_, w) in zip(values, self.COLUMNS))
        self.progress.console.print(line.rstrip())
        if self.task is not None:
            self.progress.reset(self.task)

    def close(self):
        self.progress.stop()


class StepBar:
    """A transient bar for one long step (training the judge): call it with
    ``(done, total)``; it disappears when the step is over."""

    def __init__(self, console: Console, description: str):
        self.progress = Progress(
            TextColumn(description),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.task: TaskID | None = None

    def __call__(self, done: int, total: int) -> None:
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task("", total=total)
        self.progress.update(self.task, completed=done)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.task is not None:
            self.progress.stop()
