"""The ``qdsketch`` command line: thin Click commands over the library.

Nothing imported at module level pulls in numpy, torch, matplotlib, imageio or
Rich, so ``qdsketch --help`` answers fast; each command imports what it uses.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from pathlib import Path

import click

from qdsketch import __version__
from qdsketch.errors import QdsketchError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class FiniteRange(click.FloatRange):
    """A float range that also refuses nan and inf, which every comparison lets through."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if number != number or number in (float("inf"), float("-inf")):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


FORMAT_CHOICES = ("simplified", "raw", "sketchrnn")


class Group(click.Group):
    """Turns library errors into one-line messages with a non-zero exit."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except QdsketchError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            if exc.filename is None or os.environ.get("QDSKETCH_DEBUG"):
                raise
            raise click.ClickException(f"{exc.strerror or exc}: {exc.filename}") from None


@click.group(cls=Group, context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="qdsketch")
def cli():
    """Draw like people do: learn Quick, Draw! sketches stroke by stroke.

    A model ships with qdsketch, so `sample` and `animate` work at once; the
    other commands make your own from Google's drawings.

    \b
    Example:
        qdsketch animate house -o house.gif
        qdsketch download --classes cat,clock
        qdsketch preprocess
        qdsketch train --device cuda
        qdsketch evaluate runs/seed-20261125-101500 --judge
        qdsketch sample cat clock -n 16 --checkpoint runs/seed-20261125-101500 -o grid.png
    """


def main() -> None:
    cli(prog_name="qdsketch")


# --- shared options ----------------------------------------------------------------


def data_dir_option(f):
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("data"),
        show_default=True,
        help="Folder holding simplified/, raw/ and sketchrnn/.",
    )(f)


def max_per_class_option(default):
    return click.option(
        "--max-per-class",
        type=click.IntRange(min=1),
        default=default,
        show_default=default is not None,
        help="Keep at most this many drawings of each class.",
    )


def all_drawings_option(f):
    return click.option(
        "--all-drawings", is_flag=True, help="Keep drawings Google's classifier did not recognize too."
    )(f)


def quiet_option(f):
    return click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")(f)


def _console(quiet: bool = False):
    from rich.console import Console

    return Console(quiet=quiet, highlight=False, soft_wrap=True)  # long paths stay on one line, copyable


# --- download ------------------------------------------------------------------------


@cli.command()
@click.option("--classes", "classes_text", metavar="NAMES", help="Comma-separated class names, as Google spells them.")
@max_per_class_option(10000)
@all_drawings_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMAT_CHOICES),
    help="File format [default: simplified; with --from: every format found].",
)
@data_dir_option
@click.option(
    "--base-url",
    envvar="QDSKETCH_BASE_URL",
    metavar="URL",
    help="A mirror in Google's layout [env: QDSKETCH_BASE_URL; default: Google's bucket].",
)
@click.option("--force", is_flag=True, help="Fetch files again even when they are complete.")
@click.option(
    "--from",
    "source",
    type=click.Path(path_type=Path),
    help="Import files copied by hand from this folder (same layout) instead of downloading.",
)
@click.option("--retries", type=click.IntRange(min=0), default=5, show_default=True, help="Retries per file.")
@click.option("--timeout", type=FiniteRange(min=0.1), default=30.0, show_default=True, help="Seconds.")
@click.option("--list-classes", is_flag=True, help="Print all 345 class names and exit.")
@quiet_option
def download(
    classes_text,
    max_per_class,
    all_drawings,
    fmt,
    data_dir,
    base_url,
    force,
    source,
    retries,
    timeout,
    list_classes,
    quiet,
):
    """Download Quick, Draw! drawings, streaming only what is kept.

    ndjson files are read line by line and the transfer stops once
    --max-per-class recognized drawings are kept. Files land in
    DATA_DIR/FORMAT/CLASS.EXT; complete ones are skipped on the next run.

    \b
    Example:
        qdsketch download --classes cat,clock
        qdsketch download --classes "hot air balloon" --format raw --max-per-class 500
        qdsketch download --from /media/usb/quickdraw
    """
    from qdsketch import download as dl
    from qdsketch.classes import categories, parse_class_list

    if list_classes:
        click.echo("\n".join(categories()))
        return
    classes = parse_class_list(classes_text) if classes_text else None
    console = _console(quiet)
    from qdsketch.progress import RichDownloadReporter

    results = []
    with RichDownloadReporter(console) if not quiet else nullcontext(dl.SilentReporter()) as reporter:
        if source is not None:
            for name, f in dl.importable(source, classes, [fmt] if fmt else FORMAT_CHOICES):
                results.append(dl.import_class(source, name, f, data_dir, max_per_class, all_drawings, force, reporter))
        else:
            if classes is None:
                raise click.UsageError("pass --classes NAMES (or --from PATH to import files)")
            policy = dl.RetryPolicy(attempts=retries, timeout=timeout)
            base = dl.base_url(base_url)
            for name in classes:
                results.append(
                    dl.download_class(
                        name, fmt or "simplified", data_dir, max_per_class, all_drawings, base, force, policy, reporter
                    )
                )
    _download_table(console, results)


def _download_table(console, results) -> None:
    from rich.filesize import decimal
    from rich.table import Table

    retried = any(r.retries for r in results)  # a column only when something was retried
    table = Table(title="download")
    for col in ("class", "format", "status", "drawings", "kept", "moved", "ratio") + (("retries",) if retried else ()):
        table.add_column(col, justify="left" if col in ("class", "format", "status") else "right")
    for r in results:
        counted = r.status in ("downloaded", "imported")
        table.add_row(
            r.name,
            r.fmt,
            r.status if r.status != "kept-existing" else "exists: --force replaces it",
            f"{r.kept:,}" if counted and r.kept >= 0 else "",
            decimal(r.bytes_kept) if counted else "",
            decimal(r.bytes_moved) if counted else "",
            f"{r.bytes_moved / r.bytes_kept:.2f}x" if counted and r.bytes_kept else "",
            *((str(r.retries) if counted else "",) if retried else ()),
        )
    console.print(table)
    bad = sum(r.bad for r in results)
    if bad:
        console.print(f"skipped {bad:,} malformed lines")


# --- preprocess ------------------------------------------------------------------------


@cli.command()
@data_dir_option
@click.option("--classes", "classes_text", metavar="NAMES", help="Comma-separated classes [default: all in DATA_DIR].")
@max_per_class_option(None)
@click.option(
    "--max-seq-len", type=click.IntRange(min=1), default=150, show_default=True, help="Truncate longer drawings."
)
@click.option("--split", "split_text", default="70,15,15", show_default=True, help="train,val,test weights.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split.")
@all_drawings_option
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("data/dataset.npz"),
    show_default=True,
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def preprocess(data_dir, classes_text, max_per_class, max_seq_len, split_text, seed, all_drawings, output, as_json):
    """Turn downloaded drawings into one dataset file for training.

    Reads simplified and raw ndjson and sketchrnn npz, converts them to
    stroke-5, splits them per class with a seeded generator and fits the
    dx/dy normalisation on the training split.

    \b
    Example:
        qdsketch preprocess --classes cat,clock --max-per-class 10000
    """
    import json

    from qdsketch.classes import parse_class_list
    from qdsketch.data import build_dataset, parse_split, save_dataset, summarize

    classes = parse_class_list(classes_text) if classes_text else None
    ds = build_dataset(data_dir, classes, max_per_class, max_seq_len, parse_split(split_text), seed, not all_drawings)
    inputs = {Path(p).resolve() for paths in ds.meta["sources"].values() for p in paths}
    if output.resolve() in inputs:
        raise click.ClickException(f"{output} is one of the input files: pass another --output")
    save_dataset(ds, output)
    summary = summarize(ds)
    if as_json:
        click.echo(json.dumps({**summary, "output": str(output)}, indent=2))
    else:
        _print_summary(_console(), summary, output)


def _print_summary(console, s: dict, output: Path) -> None:
    from rich.table import Table

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
    for example in sk["examples"][:5]:
        console.print(f"  {example}")
    console.print(f"wrote {output}")


# --- train -----------------------------------------------------------------------------


def device_option(f):
    return click.option(
        "--device",
        default="auto",
        show_default=True,
        metavar="auto|cpu|cuda|mps",
        help="Where to run (cuda:N works too).",
    )(f)


class _CtrlC:
    """First Ctrl-C: ask the loop to stop after this batch. Second: stop now."""

    def __init__(self):
        self.requested = False

    def __enter__(self):
        import signal

        self.signal = signal
        self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        self.signal.signal(self.signal.SIGINT, self.previous)
        return False


@cli.command()
@click.option(
    "--data",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("data/dataset.npz"),
    show_default=True,
    help="Dataset file from `qdsketch preprocess`.",
)
@click.option(
    "--preset",
    type=click.Choice(["seed", "sketchrnn", "tiny"]),
    default="seed",
    show_default=True,
    help="Model preset: `seed` is the reference's 5.9M-parameter LSTM; `sketchrnn` the same LSTM "
    "with Sketch-RNN's mixture-density head.",
)
@click.option(
    "--epochs", type=click.IntRange(min=1), help="Most epochs to train [default: 50; with --resume: the run's]."
)
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True)
@click.option(
    "--lr", type=FiniteRange(min=0, min_open=True), default=1e-3, show_default=True, help="AdamW learning rate."
)
@click.option("--weight-decay", type=FiniteRange(min=0), default=1e-5, show_default=True)
@click.option(
    "--early-stop",
    type=click.IntRange(min=1),
    default=7,
    show_default=True,
    help="Stop after this many epochs without a better validation loss.",
)
@device_option
@click.option("--amp", is_flag=True, help="bf16 autocast for the forward pass (CUDA).")
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the run's files go [default: runs/<preset>-<time>].",
)
@click.option("--resume", is_flag=True, help="Continue the run in --run-dir from its last.pt.")
@click.option("--seed", type=int, default=0, show_default=True, help="Model init, dropout and batch order.")
@click.option("--embed-dim", type=click.IntRange(min=1), help="Class embedding size [preset's].")
@click.option("--hidden", type=click.IntRange(min=1), help="LSTM units per layer [preset's].")
@click.option("--layers", type=click.IntRange(min=1), help="LSTM layers [preset's].")
@click.option("--dropout", type=FiniteRange(0, 1, max_open=True), help="Dropout between LSTM layers [preset's].")
@click.option(
    "--head", type=click.Choice(["mse", "gmm"]), help="Output head: regression or mixture density [preset's]."
)
@click.option("--mixtures", type=click.IntRange(min=1), help="Gaussians in the gmm head [20].")
@click.option("--xy-weight", type=FiniteRange(min=0), help="Weight of the dx, dy loss [1.0].")
@click.option("--pen-weight", type=FiniteRange(min=0), help="Weight of the pen loss [1.0].")
@click.option(
    "--balance",
    is_flag=True,
    help="Draw every class equally often in an epoch (with replacement), however many drawings it has.",
)
@click.option(
    "--augment-scale",
    type=FiniteRange(0, 1, max_open=True),
    default=0.0,
    show_default=True,
    help="Scale each axis of a training drawing by a random factor in 1 +- this.",
)
@click.option(
    "--augment-rotate",
    type=FiniteRange(0, 180),
    default=0.0,
    show_default=True,
    help="Rotate each training drawing by a random angle within +- this many degrees.",
)
@click.option(
    "--augment-drop",
    type=FiniteRange(0, 1, max_open=True),
    default=0.0,
    show_default=True,
    help="Drop each point inside a stroke with this probability (Sketch-RNN: 0.1).",
)
@click.option(
    "--augment-jitter",
    type=FiniteRange(min=0),
    default=0.0,
    show_default=True,
    help="Add noise of this std (pixels) to every training dx, dy.",
)
@quiet_option
def train(
    data,
    preset,
    epochs,
    batch_size,
    lr,
    weight_decay,
    early_stop,
    device,
    amp,
    run_dir,
    resume,
    seed,
    embed_dim,
    hidden,
    layers,
    dropout,
    head,
    mixtures,
    xy_weight,
    pen_weight,
    balance,
    augment_scale,
    augment_rotate,
    augment_drop,
    augment_jitter,
    quiet,
):
    """Train the class-conditional stroke model on a dataset file.

    Follows the reference recipe: AdamW, gradient clipping at 1.0, the learning
    rate halved after 3 epochs without improvement, early stopping after 7.
    The run directory gets best.pt, last.pt, history.csv/.json, config.json and
    three loss plots. Ctrl-C saves last.pt; --resume continues exactly there.
    Under `torchrun --nproc-per-node N -m qdsketch train ...` it trains with
    DistributedDataParallel.

    \b
    Example:
        qdsketch train --device cuda
        qdsketch train --preset tiny --epochs 5 --run-dir runs/try
        qdsketch train --run-dir runs/try --resume --epochs 10
    """
    import time as _time

    from qdsketch.model import preset as make_preset
    from qdsketch.train import SilentReporter, TrainConfig
    from qdsketch.train import train as run_train

    if resume and run_dir is None:
        raise click.UsageError("--resume needs the --run-dir of the run to continue")
    run_dir = run_dir or Path("runs") / f"{preset}-{_time.strftime('%Y%m%d-%H%M%S')}"
    model_cfg = make_preset(
        preset,
        embed_dim=embed_dim,
        hidden=hidden,
        layers=layers,
        dropout=dropout,
        head=head,
        mixtures=mixtures,
        xy_weight=xy_weight,
        pen_weight=pen_weight,
    )
    cfg = TrainConfig(
        data=str(data),
        epochs=epochs or TrainConfig.epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        early_stop=early_stop,
        seed=seed,
        device=device,
        amp=amp,
        balance=balance,
        augment_scale=augment_scale,
        augment_rotate=augment_rotate,
        augment_drop=augment_drop,
        augment_jitter=augment_jitter,
    )
    main = int(os.environ.get("RANK", "0")) == 0
    console = _console(quiet or not main)
    if quiet or not main:
        reporter = SilentReporter()
    else:
        from qdsketch.progress import RichTrainReporter

        reporter = RichTrainReporter(console)
    with _CtrlC() as ctrl_c:
        summary = run_train(
            cfg, model_cfg, run_dir, resume, reporter, should_stop=lambda: ctrl_c.requested, epochs=epochs
        )
    if not main:
        return
    from qdsketch.render import plot_history

    history = summary.get("history") or _read_history(run_dir)
    if history:
        plot_history(history, run_dir, summary["head"])  # the run's own head, also on --resume
    if summary["interrupted"]:
        console.print(
            f"interrupted at epoch {summary['epoch']}, batch {summary['batch']}: saved {run_dir / 'last.pt'}\n"
            f"resume with: qdsketch train --run-dir {run_dir} --resume"
        )
        raise SystemExit(130)
    how = "stopped early" if summary["stopped_early"] else "done"
    console.print(
        f"{how} after {summary['epochs']} epochs; best validation loss {summary['best_val']:.4f} "
        f"at epoch {summary['best_epoch']}: {run_dir / 'best.pt'}"
    )


def _read_history(run_dir: Path) -> list:
    import json

    path = run_dir / "history.json"
    return json.loads(path.read_text()) if path.exists() else []


# --- evaluate ----------------------------------------------------------------------------


@cli.command()
@click.argument("checkpoint", metavar="RUN_DIR_OR_CHECKPOINT", type=click.Path(path_type=Path))
@click.option(
    "--data",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Dataset file [default: the one the checkpoint was trained on].",
)
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="test", show_default=True)
@device_option
@click.option(
    "--judge",
    "use_judge",
    is_flag=True,
    help="Also judge recognisability, Frechet distance and novelty of generated sketches.",
)
@click.option(
    "-n", "count", type=click.IntRange(min=2), default=100, show_default=True, help="Judge: sketches per class."
)
@click.option(
    "--temperature",
    "temperatures",
    type=FiniteRange(min=0),
    multiple=True,
    help="Judge: sampling temperature; repeat for several [default: the model's head's, as sample uses].",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Judge: seed of the generated sketches.")
@click.option(
    "--judge-path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Judge: where the classifier is cached [default: beside the dataset, .judge.pt].",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def evaluate(checkpoint, data, split, device, use_judge, count, temperatures, seed, judge_path, as_json):
    """Report a model's losses on a dataset split, overall and per class.

    With --judge, a compact classifier trained on the dataset's training
    split (cached beside it) also reports, per class: its accuracy on real
    test drawings; the fraction of generated sketches it recognises; a
    Frechet distance between its features for real and generated sketches;
    and novelty, the distance from each sketch to its nearest training
    drawing, beside the same for real test drawings.

    \b
    Example:
        qdsketch evaluate runs/seed-20261125-101500
        qdsketch evaluate runs/try/last.pt --split val --json
        qdsketch evaluate runs/try --judge --temperature 0.3 --temperature 0.7
    """
    import json

    from qdsketch.evaluate import evaluate as run_evaluate

    judge = None
    console = _console()
    bar = nullcontext()
    if use_judge:
        judge = {"n": count, "temperatures": temperatures or None, "seed": seed, "path": judge_path}
        if not as_json and console.is_terminal:  # a minute or more on a CPU: show it, on a terminal only
            from qdsketch.progress import StepBar

            bar = judge["progress"] = StepBar(console, "training the judge (cached for next time)")
    with bar:
        report = run_evaluate(checkpoint, data, split, device, judge=judge)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    from rich.table import Table

    xy, pen = ("MSE", "CE") if report["head"] == "mse" else ("xy", "pen")
    table = Table(title=f"{report['checkpoint']} on the {split} split of {report['data']}")
    for col in ("class", "drawings", "total", xy, pen):
        table.add_column(col, justify="left" if col == "class" else "right")
    for name, c in report["classes"].items():
        table.add_row(name, f"{c['drawings']:,}", f"{c['total']:.4f}", f"{c['xy']:.4f}", f"{c['pen']:.4f}")
    o = report["overall"]
    table.add_row(
        "[bold]all", f"[bold]{o['drawings']:,}", f"[bold]{o['total']:.4f}", f"{o['xy']:.4f}", f"{o['pen']:.4f}"
    )
    console.print(table)
    if "sketchrnn_units" in report:
        u = report["sketchrnn_units"]
        console.print(
            f"in Sketch-RNN's units: L_R = L_s + L_p = {u['L_s']:.4f} + {u['L_p']:.4f} = {u['L_R']:.4f} "
            f"(N_max {u['n_max']}, scale {u['scale']:.2f}; docs/results.md)"
        )
    if "judge" in report:
        _judge_table(console, report["judge"])


def _judge_table(console, j: dict) -> None:
    from rich.table import Table

    fmt = lambda v, spec=".2f": "" if v is None else format(v, spec)
    o = j["overall"]
    own = Table(title=f"the judge on real drawings ({o['held_out_drawings']:,} held out of other classes)")
    for col in ("class", "real acc", "false pos", "prec real", "recall real", "novelty real"):
        own.add_column(col, justify="left" if col == "class" else "right")
    for name, c in j["classes"].items():
        own.add_row(
            name,
            fmt(c["accuracy"]),
            fmt(c["false_positive"], ".3f"),
            fmt(c["precision_real"]),
            fmt(c["recall_real"]),
            fmt(c["novelty_real"], ".3f"),
        )
    own.add_row("[bold]all", fmt(o["accuracy"]), fmt(o["false_positive"], ".3f"), "", "", "")
    console.print(own)
    for t in j["temperatures"]:
        table = Table(title=f"judge: {j['n']} sketches per class, seed {j['seed']}, temperature {t}")
        for col in ("class", "recog", "none", "prec", "recall", "FD", "novelty"):
            table.add_column(col, justify="left" if col == "class" else "right")
        for name, c in j["classes"].items():
            table.add_row(
                name,
                *(fmt(c[f"{k}@{t}"]) for k in ("recognised", "none", "precision", "recall")),
                fmt(c[f"frechet@{t}"], ".1f"),
                fmt(c[f"novelty@{t}"], ".3f"),
            )
        table.add_row(
            "[bold]all", fmt(o[f"recognised@{t}"]), "", fmt(o[f"precision@{t}"]), fmt(o[f"recall@{t}"]), "", ""
        )
        console.print(table)
    console.print(
        "real acc: the judge on real test drawings; false pos: held-out drawings of classes it never saw that it "
        "calls this class; prec/recall real: real validation against real test drawings, the ceiling; "
        "none: sketches it calls none of these"
    )


# --- sample and animate ----------------------------------------------------------------------


def checkpoint_option(f):
    return click.option(
        "--checkpoint",
        type=click.Path(path_type=Path),
        metavar="PATH",
        help="A checkpoint or run directory [default: the model that ships with qdsketch].",
    )(f)


def generation_options(f):
    f = click.option(
        "--pen-temperature",
        type=FiniteRange(min=0),
        help="Temperature of the pen state (down, up, end) [default: 1 for a mixture head, "
        "--temperature for a regression head].",
    )(f)
    f = click.option(
        "--temperature",
        type=FiniteRange(min=0),
        help="Sampling temperature: how adventurous the strokes are (0 takes the likeliest); "
        "[default: the model's head's best, 0.25 for a mixture head, 0.5 for a regression head]. "
        "docs/sampling.md.",
    )(f)
    f = click.option("--seed", type=int, help="Seed for reproducible sketches [default: a random one, printed].")(f)
    f = click.option(
        "--best-of",
        type=click.IntRange(min=1),
        default=1,
        show_default=True,
        metavar="K",
        help="Draw K tries of each sketch and keep the one the judge that ships with qdsketch finds "
        "most like its class (the shipped model's classes only).",
    )(f)
    return device_option(checkpoint_option(f))


def _generate(checkpoint, device, classes, count, seed, temperature, pen_temperature, best_of=1, prefix=None):
    """Load a checkpoint and draw ``count`` sketches of each class in one batch
    (``best_of`` tries each, the judge keeping the likeliest). Returns ``(names,
    words, generated, sketch seeds, seed)``; ``seed`` is chosen at random when
    not given, so it can be printed and reused."""
    from qdsketch.checkpoint import load_checkpoint
    from qdsketch.classes import resolve_class
    from qdsketch.sample import generate, sketch_seeds
    from qdsketch.train import pick_device

    dev = pick_device(device)
    ckpt = load_checkpoint(checkpoint, dev)
    names = [resolve_class(c, ckpt.class_names) for c in classes]
    seed = seed if seed is not None else int.from_bytes(os.urandom(4), "little")
    labels = [ckpt.class_names.index(n) for n in names for _ in range(count)]
    words = [ckpt.class_names[i] for i in labels]
    tries = [label for label in labels for _ in range(best_of)]
    seeds = sketch_seeds(seed, len(tries))
    gen = generate(ckpt, tries, seeds, temperature, ckpt.extra.get("max_seq_len", 150), prefix, dev, pen_temperature)
    if best_of > 1:
        from qdsketch.judge import best_of as pick
        from qdsketch.judge import load_judge

        net, judge_classes = load_judge(None, str(dev))
        keep = pick(net, judge_classes, gen.rows, words, best_of, str(dev))
        gen.rows, gen.ended = [gen.rows[i] for i in keep], gen.ended[keep]
        seeds = [seeds[i] for i in keep]
    return names, words, gen, seeds, seed


def _how(gen, best_of: int) -> str:
    """How sketches were drawn, for the one-line report: temperatures, tries."""
    said = f"temperature {gen.temperature:g}"
    if gen.pen_temperature != gen.temperature:
        said += f" (pen {gen.pen_temperature:g})"
    return said + (f", best of {best_of}" if best_of > 1 else "")


SAMPLE_SUFFIXES = (".png", ".svg", ".ndjson")


@cli.command()
@click.argument("classes", nargs=-1, required=True)
@click.option("-n", "count", type=click.IntRange(min=1), default=16, show_default=True, help="Sketches per class.")
@generation_options
@click.option(
    "--prefix",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Continue the first drawing of this ndjson file instead of starting blank.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="out.png (a grid), out.svg or out.ndjson (Quick, Draw! simplified format).",
)
def sample(classes, count, temperature, pen_temperature, best_of, seed, checkpoint, device, prefix, output):
    """Generate sketches of one or more classes.

    All sketches are generated in one batch; --seed makes them reproducible.

    \b
    Example:
        qdsketch sample cat clock tent house nail -n 16 -o grid.png
        qdsketch sample house -n 100 --temperature 0.3 --seed 7 -o houses.ndjson
        qdsketch sample cat --prefix my-cat-head.ndjson -o cats.svg
    """
    from qdsketch.readers import read_drawing

    suffix = output.suffix.lower()
    if suffix not in SAMPLE_SUFFIXES:
        raise click.ClickException(f"unknown output suffix {output.suffix or '(none)'!r}: use .png, .svg or .ndjson")
    pre = read_drawing(prefix)[1] if prefix else None
    names, words, gen, seeds, seed = _generate(
        checkpoint, device, classes, count, seed, temperature, pen_temperature, best_of, pre
    )
    rows = gen.rows
    if suffix == ".ndjson":
        from qdsketch.files import atomic_path
        from qdsketch.sample import ndjson_lines

        with atomic_path(output) as tmp:
            tmp.write_text("\n".join(ndjson_lines(rows, words, seeds)) + "\n")
    else:
        from qdsketch import render

        (render.save_grid if suffix == ".png" else render.save_svg)(rows, words, output)
    click.echo(f"wrote {output}: {len(rows)} sketches ({', '.join(names)}), seed {seed}, {_how(gen, best_of)}")


@cli.command()
@click.argument("class_name", metavar="CLASS", required=False)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The GIF to write."
)
@click.option("--fps", type=FiniteRange(min=1, max=100), default=20, show_default=True, help="Frames per second.")
@click.option(
    "--size", type=click.IntRange(min=32, max=2048), default=256, show_default=True, help="Width and height in pixels."
)
@click.option(
    "--points-per-frame",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Points of ink added each frame.",
)
@click.option(
    "--hold", type=FiniteRange(min=0), default=1.5, show_default=True, help="Seconds the finished drawing stays."
)
@generation_options
@click.option(
    "--from",
    "source",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Animate the first drawing of this ndjson file instead of generating one.",
)
def animate(
    class_name,
    output,
    fps,
    size,
    points_per_frame,
    hold,
    temperature,
    pen_temperature,
    best_of,
    seed,
    checkpoint,
    device,
    source,
):
    """Write a looping GIF of a sketch being drawn, stroke by stroke.

    \b
    Example:
        qdsketch animate house -o house.gif
        qdsketch animate cat -o cat.gif --seed 3 --fps 30 --size 384
        qdsketch animate --from drawing.ndjson -o real.gif
    """
    from qdsketch import render

    if output.suffix.lower() != ".gif":
        raise click.ClickException(f"unknown output suffix {output.suffix or '(none)'!r}: animate writes .gif")
    if source is not None:
        from qdsketch.readers import read_drawing

        word, rows = read_drawing(source)
        what = f"{word or 'drawing'} from {source}"
    else:
        if not class_name:
            raise click.UsageError("give a CLASS to draw, or --from FILE to animate a real drawing")
        names, _, gen, _, seed = _generate(
            checkpoint, device, [class_name], 1, seed, temperature, pen_temperature, best_of
        )
        rows = gen.rows[0]
        what = f"{names[0]}, seed {seed}, {_how(gen, best_of)}"
    frame_list = render.frames(rows, size, points_per_frame)
    render.save_gif(frame_list, output, fps, hold)
    click.echo(f"wrote {output}: {len(frame_list)} frames, {what}")
