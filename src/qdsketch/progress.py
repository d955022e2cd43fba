"""Rich reporters for the CLI. The core never imports this module: it takes a
reporter object, and has a silent one of its own."""

from __future__ import annotations

import time

from rich.console import Console
from rich.filesize import decimal
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn


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
        self.tasks: dict[str, tuple[int, float, str]] = {}

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
            task, completed=completed if total else None, count=count, moved=decimal(moved), rate=f"{decimal(int(rate))}/s"
        )

    def finish(self, label):
        task, _, _ = self.tasks[label]
        self.progress.update(task, completed=self.progress.tasks[task].total or 1, total=self.progress.tasks[task].total or 1)
