"""What the CLI shows, with Rich: progress bars, the training table and the
commands' summary tables. The core never imports this module: it takes a
reporter object, and has a silent one of its own."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from rich.console import Console
from rich.filesize import decimal
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from qdsketch.config import flat_settings


class RichDownloadReporter:
    """One bar per class file: drawings kept against the target, bytes, rate.
    With several files at once (``begin``), one overall bar of files done, and
    a bar for each file only while it downloads. Safe to call from several threads."""

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
        self.tasks: dict[str, tuple[TaskID, float, str, int | None]] = {}
        self.lock = threading.Lock()
        self.overall: TaskID | None = None

    def begin(self, files):
        with self.lock:
            self.files, self.files_done = files, 0
            self.overall = self.progress.add_task("all", total=files, count=f"0/{files:,} files", moved="", rate="")

    def done(self, name):
        if self.overall is not None:
            with self.lock:
                self.files_done += 1
                count = f"{self.files_done:,}/{self.files:,} files"
                self.progress.update(self.overall, completed=self.files_done, count=count)

    def retry(self, label, what):
        """One line above the bars, so a wait is never silent."""
        self.progress.console.print(f"{label}: {what}")

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
        with self.lock:
            task = self.progress.add_task(label, total=total, count="", moved="", rate="")
            self.tasks[label] = (task, time.perf_counter(), unit, total)

    def update(self, label, completed, moved):
        with self.lock:
            if not self.progress.live.is_started:  # shown from the first bytes on, so an early error prints alone
                self.progress.start()
            task, t0, unit, total = self.tasks[label]
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

    def failed(self, label):
        """The summary says why; its bar goes."""
        with self.lock:
            if label in self.tasks:
                self.progress.remove_task(self.tasks.pop(label)[0])

    def finish(self, label):
        with self.lock:
            task, _, _, total = self.tasks[label]
            if self.overall is not None:  # many files: the overall bar says it, this one goes
                self.progress.remove_task(task)
                return
            self.progress.update(task, completed=total or 1, total=total or 1)


def loss_legend(head: str) -> str:
    """What the three losses are, for a model with this head: one line under their table."""
    from qdsketch.render import XY_LOSS

    return f"losses: xy, the {XY_LOSS[head]}; pen, the pen state's cross-entropy; total, their weighted sum"


class RichTrainReporter:
    """A live bar over the batches, and one row per epoch printed above it."""

    COLUMNS = (  # fits 80 columns: epoch; train total, xy, pen; validation the same; ...
        ("ep", 3),
        ("train", 6),
        ("xy", 6),
        ("pen", 6),
        ("val", 6),
        ("xy", 6),
        ("pen", 6),
        ("lr", 7),
        ("secs", 5),
        ("seq/s", 6),
        ("pad", 4),
        ("", 4),
    )

    def __init__(self, console: Console, waiting=None, verbose: bool = False):
        """``waiting``: called when the run starts, to end a spinner shown while the data
        loaded and the model was built. ``verbose`` (``-v``): also every setting of the
        run, and each checkpoint as it is saved."""
        from rich.progress import MofNCompleteColumn

        self.console = console
        self.waiting = waiting
        self.verbose = verbose
        self.progress = Progress(
            TextColumn("[bold]{task.fields[stage]} {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.task: TaskID | None = None

    def start(self, info):
        self._stop_waiting()
        c = self.console
        c.print(f"run: {info['run_dir']}")
        model = info["model"]
        unused = {"mixtures"} if model["head"] != "gmm" else set()
        unused |= {"heads"} if model.get("arch") != "transformer" else set()
        shown = {k: v for k, v in model.items() if k not in unused}
        model = ", ".join(f"{k}={v}" for k, v in shown.items())
        c.print(f"model: {info['parameters']:,} trainable parameters ({model})")
        train = info["train"]
        c.print(
            "train: "
            + ", ".join(f"{k}={train[k]}" for k in ("data", "epochs", "batch_size", "lr", "weight_decay", "seed"))
            + (f", ema={train['ema']} (validated and saved: the weight average)" if train.get("ema") else "")
            + f"; device {info['device']}"
            + (f" x {info['world']} processes" if info["world"] > 1 else "")
        )
        if train["amp"] and not info["device"].startswith("cuda"):
            c.print(f"note: --amp does nothing on {info['device']}: bf16 autocast runs on CUDA only")
        augment = {k: v for k, v in train["augment"].items() if v}
        if augment or train["balance"]:
            said = [f"{k} {v:g}" for k, v in augment.items()] + (["balanced classes"] if train["balance"] else [])
            c.print("augment: " + ", ".join(said))
        if train.get("init_from"):
            c.print(
                f"from: the weights of {train['init_from']}, after {info['steps_before']:,} optimizer steps "
                "(counted in this run's steps and CPU hours)"
            )
        sizes = info["sizes"]
        c.print(f"data: {sizes['train']:,} train, {sizes['val']:,} validation, {sizes['test']:,} test drawings")
        if info["resumed_at"]:
            epoch, batch = info["resumed_at"]
            c.print(f"resuming at epoch {epoch}, batch {batch}")
        if self.verbose:  # the settings the lines above leave out too, as config.json keeps them
            flat = flat_settings(info["train"])
            c.print("settings: " + ", ".join(f"{k}={v}" for k, v in flat.items()), highlight=False)
        c.print(loss_legend(info["model"]["head"]))
        c.print(" ".join(f"{name:>{width}}" for name, width in self.COLUMNS).rstrip())
        train = info["train"]
        self.speed = RunSpeed(train["epochs"], sizes["val"] / max(sizes["train"], 1), train["max_steps"])
        self.device = info["device"]
        self.progress.start()

    def _show(self, stage, epoch, done, total, note):
        if self.task is None:
            self.task = self.progress.add_task("", total=total, stage=stage, epoch=epoch, note=note)
        elif self.progress.tasks[0].fields["stage"] != stage:  # a new bar, so its eta is its own
            self.progress.reset(self.task, total=total, stage=stage, epoch=epoch, note=note)
        self.progress.update(self.task, completed=done, total=total, stage=stage, epoch=epoch, note=note)

    def batch(self, epoch, done, total, loss, seqs_per_s):
        self._show("epoch", epoch, done, total, f"loss {loss:.4f} {seqs_per_s:,.0f} seq/s")
        seconds = self.speed.batch(epoch, done, total)
        if seconds is not None:  # once, as soon as the speed is known
            for line in estimate_lines(seconds, self.speed.end, self.device):
                self.progress.console.print(line)

    def validating(self, epoch, done, total):
        self._show("validating", epoch, done, total, "drawings")

    def saved(self, path, steps):
        if self.verbose:
            self.progress.console.print(f"saved {path} (after {steps:,} optimizer steps)", highlight=False)

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
        self._stop_waiting()
        self.progress.stop()

    def _stop_waiting(self):
        if self.waiting is not None:
            self.waiting()
            self.waiting = None


class RunSpeed:
    """The time a run has left, from the speed of its first batches: the rest of this
    epoch and every epoch after it, validation included (a forward pass over the
    validation split costs about a third of a training pass over as many drawings)."""

    AFTER_SECONDS = 5.0  # time enough for a steady speed, early enough to be useful

    def __init__(self, epochs: int = 1, val_share: float = 0.0, max_steps: int | None = None):
        self.epochs, self.val_share, self.max_steps = epochs, val_share, max_steps
        self.first: tuple[float, int] | None = None  # (time, batches done) at the first batch heard
        self.said = False
        self.end = f"the end of epoch {epochs}"  # where the estimate runs to

    def batch(self, epoch: int, done: int, total: int, now: float | None = None) -> float | None:
        """The estimated seconds left, once (``None`` before and after)."""
        now = time.perf_counter() if now is None else now
        position = (epoch - 1) * total + done  # batches since the run began
        if self.first is None:  # the first batch heard paid for warming up: time from its end
            self.first = (now, position)
            return None
        t0, p0 = self.first
        if self.said or position <= p0 or now - t0 < self.AFTER_SECONDS:
            return None
        self.said = True
        per_batch = (now - t0) / (position - p0)
        left = self.epochs * total - position
        validations = self.epochs - epoch + 1
        if self.max_steps is not None and self.max_steps - position < left:  # --max-steps ends it first
            # a step a batch, counted from the run's start as positions are; one validation at its end
            left = max(self.max_steps - position, 0)
            validations = 1 + (position + left) // total - position // total
            self.end = f"step {self.max_steps:,} (--max-steps)"
        return per_batch * (left + total * validations * self.val_share / 3)


def duration(seconds: float) -> str:
    """``42 s``, ``12 min``, ``3.5 h``, ``2.1 days``: as precise as an estimate is."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def estimate_lines(seconds: float, end: str, device: str) -> list[str]:
    """What ``train`` says of the time its run has left, to ``end`` ("the end of epoch 40");
    on a CPU, over an hour, how to shorten it."""
    lines = [
        f"estimate: about {duration(seconds)} to {end} at this speed, "
        "validation included (early stopping may end it sooner)"
    ]
    if seconds > 3600 and device == "cpu":
        lines.append(
            "that is long for a CPU: --preset small trains in minutes and draws the five classes; "
            "--epochs or --max-steps shorten this run; --device cuda uses a GPU (docs/first-day.md)"
        )
    return lines


class StepBar:
    """A transient bar for a long step (training the judge, a loss pass), used as a context:
    call it with ``(done, total)``, or ``(done, total, stage)`` for one bar over steps that
    follow each other; it disappears when the work is over. It shows the time left."""

    def __init__(self, console: Console, description: str):
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.description = description

    def __call__(self, done: int, total: int, stage: str | None = None) -> None:
        description = stage or self.description
        shown = self.progress.tasks[0]
        # __enter__'s waiting bar, now that the work is known, or a new step: each its own eta
        if shown.total is None or shown.description != description:
            self.progress.reset(shown.id, total=total, description=description)
        self.progress.update(shown.id, completed=done, total=total)

    def __enter__(self):
        """Shown at once, without a total (what comes first, loading torch and a model, has
        none): a sign of life until the first ``(done, total)``."""
        self.progress.start()
        self.progress.add_task(self.description, total=None)
        return self

    def __exit__(self, *exc):
        self.progress.stop()


# --- the commands' tables ------------------------------------------------------------


def download_table(console: Console, results, verbose: bool = False) -> None:
    """download's summary: one row per class file, then why files were left as they are or failed;
    ``verbose``: also where each file came from and where it went."""
    retried = any(r.retries for r in results)  # a column only when something was retried
    table = Table(title="download")
    for col in ("class", "format", "status", "drawings", "kept", "moved", "ratio") + (("retries",) if retried else ()):
        table.add_column(col, justify="left" if col in ("class", "format", "status") else "right")
    status = {"kept-existing": "exists", "skipped": "complete", "failed": "[red]failed[/]"}
    for r in results:
        moved = r.status in ("downloaded", "imported")
        counted = moved or (r.status == "skipped" and r.bytes_kept)
        table.add_row(
            r.name,
            r.fmt,
            status.get(r.status, r.status),
            f"{r.kept:,}" if counted and r.kept >= 0 else "",
            decimal(r.bytes_kept) if counted else "",
            decimal(r.bytes_moved) if moved else "",
            f"{r.bytes_moved / r.bytes_kept:.2f}x" if moved and r.bytes_kept else "",
            *((str(r.retries) if moved else "",) if retried else ()),
        )
    console.print(table)
    bad = sum(r.bad for r in results)
    if bad:
        console.print(f"skipped {bad:,} malformed lines")
    left: dict[tuple[str, str], list] = {}
    for r in results:
        if r.status in ("skipped", "kept-existing"):
            left.setdefault((str(Path(r.path).parent), r.why), []).append(r.name)
    for (folder, why), names in left.items():
        which = ", ".join(names) if len(names) <= 5 else f"{len(names):,} files"
        console.print(f"left as they are in {folder}/: {which} ({why})")
    if verbose:
        for r in results:
            came = f"from {r.url} " if r.url else ""
            console.print(f"{r.name} ({r.fmt}): {came}to {r.path}", highlight=False, soft_wrap=True)
    failed = [r for r in results if r.status == "failed"]
    for r in failed:
        console.print(f"[red]failed[/] {r.name} ({r.fmt}): {r.why}")
    if failed:
        console.print(f"{len(failed):,} of {len(results):,} files failed; the others are in")


def dataset_summary(console: Console, s: dict, output, verbose: bool = False) -> None:
    """preprocess's summary: drawings per class and split, lengths, normalisation, skips;
    ``verbose``: also the files read and every reason a drawing was skipped, with examples."""
    table = Table(title="dataset")
    for col in ("class", "train", "val", "test", "total"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for name, counts in s["classes"].items():
        table.add_row(name, *(f"{counts[k]:,}" for k in ("train", "val", "test")), f"{sum(counts.values()):,}")
    t = s["total"]
    table.add_row("[bold]all", *(f"[bold]{t[k]:,}" for k in ("train", "val", "test")), f"[bold]{sum(t.values()):,}")
    console.print(table)
    console.print(
        f"length: mean {s['mean_length']:.1f}, max {s['max_length']} "
        f"(max_seq_len {s['max_seq_len']}, {s['truncated']:,} truncated)"
    )
    console.print(
        f"dx(mean={s['dx']['mean']:.3f}, std={s['dx']['std']:.3f}), "
        f"dy(mean={s['dy']['mean']:.3f}, std={s['dy']['std']:.3f})"
    )
    sk = s["skipped"]
    bad = sum(sk["bad"].values())
    console.print(f"skipped: {sk['unrecognized']:,} unrecognized, {sk['duplicates']:,} duplicates, {bad:,} bad")
    if verbose:
        for reason, count in sorted(sk["bad"].items(), key=lambda kv: -kv[1]):
            console.print(f"  {count:,} {reason}")
    for example in sk["examples"][: None if verbose else 5]:
        console.print(f"  {example}")
    if verbose:
        for name, files in s.get("sources", {}).items():
            console.print(f"read {name}: {', '.join(files)}")
    console.print(f"wrote {output}")


def evaluate_tables(console: Console, report: dict, split: str, every: bool = False) -> None:
    """evaluate's losses per class, and the judge's tables when it ran (``every``: all classes)."""
    table = Table(title=f"{report['checkpoint']} on the {split} split of {report['data']}")
    for col in ("class", "drawings", "total", "xy", "pen"):  # the JSON's keys, the history's, the plots'
        table.add_column(col, justify="left" if col == "class" else "right")
    for name, c in report["classes"].items():
        table.add_row(name, f"{c['drawings']:,}", f"{c['total']:.4f}", f"{c['xy']:.4f}", f"{c['pen']:.4f}")
    o = report["overall"]
    table.add_row(
        "[bold]all", f"[bold]{o['drawings']:,}", f"[bold]{o['total']:.4f}", f"{o['xy']:.4f}", f"{o['pen']:.4f}"
    )
    console.print(table)
    console.print(loss_legend(report["head"]))
    if "sketchrnn_units" in report:
        u = report["sketchrnn_units"]
        console.print(
            f"in Sketch-RNN's units: L_R = L_s + L_p = {u['L_s']:.4f} + {u['L_p']:.4f} = {u['L_R']:.4f} "
            f"(N_max {u['n_max']}, scale {u['scale']:.2f}; docs/results.md)"
        )
    if "judge" in report:
        judge_tables(console, report["judge"], every)


SHOWN = 25  # more classes than this: the judge's tables show the 20 drawn worst


def judge_tables(console: Console, j: dict, every: bool = False) -> None:
    """The judge's own figures, then one table per temperature. Of many classes
    (more than ``SHOWN``), the tables show the 20 drawn worst, unless ``every`` (``-v``);
    --json has them all."""
    fmt = lambda v, spec=".2f": "" if v is None else format(v, spec)
    o = j["overall"]
    many = len(j["classes"]) > SHOWN and not every
    none_class = o["held_out_drawings"] > 0  # a dataset of every class leaves no other class to learn "none" from
    held = f"{o['held_out_drawings']:,} held out of other classes" if none_class else "no other class left out"
    own = Table(title=f"the judge on real test drawings ({held})")
    for col in (
        "class",
        "real top-1",
        "real top-3",
        "false pos",
        "prec real",
        "recall real",
        "novelty real",
        "seen/unseen real",
    ):
        own.add_column(col, justify="left" if col == "class" else "right")
    t0 = j["temperatures"][0]
    shown = o[f"worst@{t0}"] if many else list(j["classes"])
    for name in shown:
        c = j["classes"][name]
        own.add_row(
            name,
            fmt(c["accuracy"]),
            fmt(c["accuracy_top3"]),
            fmt(c["false_positive"], ".3f"),
            fmt(c["precision_real"]),
            fmt(c["recall_real"]),
            fmt(c["novelty_real"], ".3f"),
            fmt(c["seen_ratio_real"]),
        )
    own.add_row(
        "[bold]all", fmt(o["accuracy"]), fmt(o["accuracy_top3"]), fmt(o["false_positive"], ".3f"), "", "", "", ""
    )
    console.print(own)
    for t in j["temperatures"]:
        what = f"the {len(o[f'worst@{t}'])} classes drawn worst of {len(j['classes'])}" if many else "per class"
        table = Table(title=f"judge: {j['n']} sketches per class, seed {j['seed']}, temperature {t}: {what}")
        for col in ("class", "top-1", "top-3", "ratio", "none", "prec", "recall", "FD", "novelty", "seen/unseen"):
            table.add_column(col, justify="left" if col == "class" else "right")
        for name in o[f"worst@{t}"] if many else list(j["classes"]):
            c = j["classes"][name]
            table.add_row(
                name,
                *(
                    fmt(c[f"{k}@{t}"])
                    for k in ("recognised", "recognised_top3", "ratio", "none", "precision", "recall")
                ),
                fmt(c[f"frechet@{t}"], ".1f"),
                fmt(c[f"novelty@{t}"], ".3f"),
                fmt(c[f"seen_ratio@{t}"]),
            )
        table.add_row(
            "[bold]all",
            fmt(o[f"recognised@{t}"]),
            fmt(o[f"recognised_top3@{t}"]),
            fmt(o[f"median_ratio@{t}"]),
            "",
            fmt(o[f"precision@{t}"]),
            fmt(o[f"recall@{t}"]),
            "",
            "",
            "",
        )
        console.print(table)
        console.print(
            f"temperature {t}: median ratio {fmt(o[f'median_ratio@{t}'])} over {len(j['classes'])} classes; "
            f"{o[f'top3_zero@{t}']:.1%} of classes with no sketch in the judge's top 3"
        )
    console.print(
        "real top-1/top-3: how often the judge's first (first three) guesses name the class of a real test drawing; "
        "top-1/top-3: the same for sketches; ratio: sketch top-1 over real top-1 (1: as recognisable as real "
        "drawings); 'all' is the mean over classes, the ratio's the median; false pos: held-out drawings of "
        "classes it never saw that it calls this class; prec/recall real: real validation against real test "
        "drawings, the ceiling; "
        "none: sketches it calls none of these; novelty: pixels off the nearest training drawing; seen/unseen: "
        "distance to the nearest training drawing over the nearest validation drawing (never trained on), "
        "about 1 when nothing is copied, 0 for copies"
    )


def info_table(console: Console, report: dict, verbose: bool = False) -> None:
    """``qdsketch info``: one line a fact; ``verbose``: every class, every setting, the normalisation."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    classes = report["classes"]
    cut = len(classes) > 12 and not verbose
    shown = ", ".join(classes[:12]) + f", ... ({len(classes)} in all)" if cut else ", ".join(classes)
    model = report["model"]
    arch = f"{model['arch']}, {model['layers']} x {model['hidden']}, {model['head']} head"
    preset = f"; preset {report['preset']}" if report["preset"] else ""
    trained = report["trained"]
    how = [f"epoch {report['epoch']}"]
    at = report.get("resumes_at")
    if at and at["batch"]:  # a last.pt saved within an epoch
        how = [f"epoch {report['epoch']} and {at['batch']:,} batches of epoch {at['epoch']}"]
    elif trained.get("batches_into_epoch"):  # a snapshot saved within one
        how = [
            f"epoch {report['epoch']} and {trained['batches_into_epoch']:,.0f} batches of epoch {report['epoch'] + 1}"
        ]
    if "steps" in trained:
        how.append(f"{trained['steps']:,.0f} optimizer steps")
    if trained.get("cpu_hours"):
        how.append(f"{trained['cpu_hours']:.2f} CPU hours")
    train = report["train"]
    recipe = f"batch {train['batch_size']}, lr {train['lr']:g}, seed {train['seed']}"
    recipe += "".join(f", augment {k} {v:g}" for k, v in train["augment"].items() if v)
    if train["ema"]:
        recipe += f", weight average {train['ema']:g}"
    if train.get("init_from"):  # the steps and hours above count its training too
        recipe += f", from the weights of {train['init_from']}"
    rows = [
        ("checkpoint", report["checkpoint"]),
        ("classes", f"{len(classes)}: {shown}"),
        ("model", f"{report['parameters']:,} parameters ({arch}){preset}"),
        ("weights", ", ".join(how)),
        ("trained on", f"{report['data']} ({recipe})"),
    ]
    if verbose:
        settings = flat_settings(report["settings"])
        rows.append(("settings", ", ".join(f"{k}={v}" for k, v in settings.items())))
        mean, std = report["normalisation"]["mean"], report["normalisation"]["std"]
        rows.append(
            (
                "scaling",
                f"dx, dy mean {mean[0]:.4g}, {mean[1]:.4g}; std {std[0]:.4g}, {std[1]:.4g}; "
                f"longest drawing {report['max_seq_len']} points",
            )
        )
    if report["val"]:
        rows.append(("validation", ", ".join(f"{k} {v:.4f}" for k, v in report["val"].items())))
    history = report["history"]
    if history:
        rows.append(
            (
                "run",
                f"{history['epochs']} epoch{'s' if history['epochs'] != 1 else ''}, best validation "
                f"{history['best_val']:.4f} at epoch "
                f"{history['best_epoch']}, last {history['last_val']:.4f}",
            )
        )
    if at:  # a last.pt
        rows.append(("resumable", f"yes: train --resume continues at epoch {at['epoch']}, batch {at['batch']}"))
    for key, value in rows:
        grid.add_row(key, value)
    console.print(grid)


def runs_table(console: Console, folder, runs: list[dict], verbose: bool = False) -> None:
    """``qdsketch runs``: a line a run, oldest first, the latest and the best marked;
    ``verbose``: then each run's folder and dataset."""
    console.print(f"runs in {folder}/")
    table = Table(box=None, pad_edge=False, padding=(0, 1, 0, 0))
    for name, justify in (
        ("run", "left"),
        ("updated", "left"),
        ("model", "left"),
        ("classes", "right"),
        ("epochs", "right"),
        ("best val", "right"),
        ("state", "left"),
        ("", "left"),
    ):
        table.add_column(name, justify=justify, no_wrap=name != "model")  # type: ignore[arg-type]
    for run in runs:
        table.add_row(
            Path(run["run_dir"]).name,
            time.strftime("%m-%d %H:%M", time.localtime(run["updated"])),
            run["preset"] or run["model"],
            f"{run['classes']:,}",
            f"{run['epochs']}/{run['of_epochs']}",
            "" if run["best_val"] is None else f"{run['best_val']:.4f}",
            run["state"],
            " ".join(m for m in ("latest", "best") if run[m]),
        )
    console.print(table)
    if verbose:
        for run in runs:
            where = Path(run["run_dir"]).resolve()
            console.print(f"{where.name}: {where}, trained on {run['data']}", highlight=False)
    if any(run["state"] == "resumable" for run in runs):
        console.print("resumable: `qdsketch train --run-dir RUN --resume` continues it")
