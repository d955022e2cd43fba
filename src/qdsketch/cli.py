"""The ``qdsketch`` command line: thin Click commands over the library.

Nothing imported at module level pulls in numpy, torch, matplotlib, imageio or
Rich, so ``qdsketch --help`` answers fast; each command imports what it uses.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import json
import os
import sys
import tempfile
from contextlib import ExitStack, nullcontext
from pathlib import Path
from typing import Any

import click

from qdsketch import __version__, completion, paths
from qdsketch.config import PRESETS, ModelConfig, TrainConfig, field_type
from qdsketch.errors import QdsketchError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class FiniteRange(click.FloatRange):
    """A float range that also refuses nan and inf, which every comparison lets through."""

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx)
        if number != number or number in (float("inf"), float("-inf")):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(number, param, ctx)  # then the range


FORMAT_CHOICES = ("simplified", "raw", "sketchrnn")
#: every seed, wherever it is asked for: what numpy's and torch's generators both take
SEED = click.IntRange(0, 2**63 - 1)


DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES}


class Group(click.Group):
    """Turns library errors into one-line messages with a non-zero exit."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except QdsketchError as exc:
            from qdsketch.launch import launched_error

            if launched_error(str(exc)):  # one of train --processes's: the launcher says it, once
                raise SystemExit(1) from None
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:  # Ctrl-C: what was being written was never renamed into place
            click.echo("interrupted: nothing half-written was left", err=True)
            raise SystemExit(130) from None
        except OSError as exc:
            if os.environ.get("QDSKETCH_DEBUG"):
                raise
            if exc.filename is not None:
                raise click.ClickException(f"{exc.strerror or exc}: {exc.filename}") from None
            if exc.errno in DISK_ERRORS:  # a write that failed; the atomic writes left nothing behind
                raise click.ClickException(
                    f"{exc.strerror}: nothing was written. Free some disk space or write somewhere else"
                ) from None
            raise


def _show_version(ctx, param, value):
    """``--version``: qdsketch's, and torch's with the devices it sees (torch loads only here)."""
    if not value or ctx.resilient_parsing:
        return
    import torch

    from qdsketch.devices import visible_devices

    click.echo(f"qdsketch, version {__version__}")
    click.echo(f"torch {torch.__version__}; devices: {', '.join(visible_devices())}")
    ctx.exit()


@click.group(cls=Group, context_settings=CONTEXT)
@click.option(
    "-V",
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_show_version,
    help="Show qdsketch's version, torch's, and the devices it sees, and exit.",
)
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
        qdsketch evaluate runs/mixture-20261125-101500 --judge
        qdsketch sample cat clock -n 16 --checkpoint runs/mixture-20261125-101500 -o grid.png

    \b
    Environment:
        QDSKETCH_HOME      data and runs go to $QDSKETCH_HOME/data and $QDSKETCH_HOME/runs
                           instead of ./data and ./runs (XDG: $XDG_DATA_HOME/qdsketch)
        QDSKETCH_BASE_URL  a mirror for download --base-url

    \b
    Shell completion (commands, options, class names), in ~/.bashrc or ~/.zshrc:
        eval "$(_QDSKETCH_COMPLETE=bash_source qdsketch)"    # bash
        eval "$(_QDSKETCH_COMPLETE=zsh_source qdsketch)"     # zsh
        _QDSKETCH_COMPLETE=fish_source qdsketch | source      # fish
    """


def main() -> None:
    if os.environ.get("_QDSKETCH_COMPLETE") and not _is_int(os.environ.get("COMP_CWORD", "0")):
        return  # a TAB from a broken completion script: no suggestions, rather than Click's traceback
    import signal

    # SIGTERM (kill, timeout, systemd, docker) stops a command as Ctrl-C does: what it was
    # writing is removed, and it exits 130 in one line (train saves last.pt first)
    signal.signal(signal.SIGTERM, _terminated)
    try:
        cli(prog_name="qdsketch")
    except SystemExit as done:
        from qdsketch.launch import leave, one_of_several

        if one_of_several():  # one of train's processes: its process group must not be torn down at exit
            leave(done.code)
        raise


def _terminated(signum, frame):
    raise KeyboardInterrupt


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


# --- shared options ----------------------------------------------------------------


def data_dir_option(f):
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=paths.data_dir,
        show_default="data, or $QDSKETCH_HOME/data",
        help="Folder holding simplified/, raw/ and sketchrnn/.",
    )(f)


class ClassNames(click.ParamType):
    """``cat,hot air balloon`` as ``("cat", "hot air balloon")``: names split at commas and
    trimmed, empty ones dropped (``,`` is ``()``); ``all`` stays ``("all",)``. Each command resolves them
    against the classes it knows (Google's, or a model's)."""

    name = "names"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        return tuple(part.strip() for part in str(value).split(",") if part.strip())


def classes_option(help_text: str, complete=None):
    """``--classes a,b``, as every command that takes classes spells it; TAB completes the last name."""
    return click.option(
        "--classes",
        "class_names",
        type=ClassNames(),
        metavar="NAMES",
        help=help_text,
        shell_complete=complete or completion.google_class_list,
    )


def seed_option(help_text: str, default: int | None = 0):
    """``--seed``, as every command that takes one declares it: any seed numpy's and torch's generators take."""
    return click.option("--seed", type=SEED, default=default, show_default=default is not None, help=help_text)


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


class Output:
    """Where a command's words go, as ``--json`` and ``-q`` ask: the console (tables,
    bars, the last line), nothing but errors (``-q``), or the result as JSON on stdout
    and nothing else (``--json``). ``report_options`` makes one for each command that
    reports, and passes it as ``out``."""

    def __init__(self, as_json: bool = False, quiet: bool = False, verbose: bool = False):
        self.as_json = as_json
        self.quiet = quiet or as_json  # with --json, the JSON is all that is printed
        self.verbose = verbose and not self.quiet  # -v: also the details a summary leaves out

    @functools.cached_property
    def console(self):
        return _console(self.quiet)

    @functools.cached_property
    def stderr(self):
        """For commands whose stdout holds their output (``sample -o -``)."""
        return _console(self.quiet, stderr=True)

    def bar(self, description: str, stderr: bool = False):
        """A transient bar for a step that can take more than a few seconds, called with
        ``(done, total)``: on a terminal only, so a pipe stays quiet; else ``None``."""
        console = self.stderr if stderr else self.console
        if self.quiet or not console.is_terminal:
            return None
        from qdsketch.reporting import StepBar

        return StepBar(console, description)

    def status(self, text: str, stderr: bool = False):
        """A transient spinner with ``text`` while a step with no bar of its own runs (loading
        torch and a model, drawing a grid): on a terminal only; else a context that does nothing."""
        console = self.stderr if stderr else self.console
        if self.quiet or not console.is_terminal:
            return nullcontext()
        return console.status(text)

    def result(self, data, text: str | None = None, show=None) -> None:
        """A command's last word: ``data`` as JSON with ``--json``; else ``show(console)``
        (tables) or the line ``text``, unless ``-q``."""
        if self.as_json:
            click.echo(json.dumps(_json_safe(data), indent=2, allow_nan=False))
        elif not self.quiet:
            if show is not None:
                show(self.console)
            elif text is not None:
                click.echo(text)

    def say(self, text: str, stderr: bool = False) -> None:
        """A line on the way (not the result), unless ``-q`` or ``--json``."""
        if not self.quiet:
            click.echo(text, err=stderr)


#: said before the compiled ndjson reader's first use on a machine, which compiles it
COMPILING = "compiling the fast ndjson reader: once on this machine, 10 to 30 s"


#: what ``-v`` adds, command by command: the same idea everywhere (what was read and written,
#: and the details a summary leaves out), in each command's own terms
VERBOSE = {
    "download": "Also say where each file came from and where it went.",
    "preprocess": "Also list the files read and every reason a drawing was skipped.",
    "train": "Also print every setting of the run, and each checkpoint as it is saved.",
    "evaluate": "Also show the judge's tables for every class, not only the 20 drawn worst.",
    "info": "Also list every class, every training setting and the normalisation.",
    "runs": "Also give each run's folder and dataset.",
    "sample": "Also say, for each sketch, its class, seed, model, length and how it ended (on stderr).",
    "animate": "Also say how long the sketch is, how it ended, and the GIF's frames and length.",
}


def report_options(f):
    """``--json``, ``-q`` and ``-v``, which every command that reports takes, turned into the
    ``out`` (an ``Output``) that the command is called with."""

    @functools.wraps(f)
    def command(*args, as_json: bool, quiet: bool, verbose: bool, **kwargs):
        if verbose and (quiet or as_json):
            why = "--json prints nothing but JSON" if as_json else "-q asks for none"
            raise click.UsageError(f"-v asks for more words, and {why}: drop one")
        return f(*args, out=Output(as_json, quiet, verbose), **kwargs)

    command = click.option("-v", "--verbose", is_flag=True, help=VERBOSE[f.__name__])(command)
    command = click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")(command)
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout, nothing else.")(
        command
    )


def _json_safe(value):
    """``value`` with every NaN or infinity as ``null``: JSON has no NaN, and parsers refuse it."""
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _check_writable(output: Path) -> None:
    """Before any work: the output can be written (its folder, or the nearest one that exists)."""
    folder = output.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if output.is_dir():
        raise click.ClickException(f"{output} is a folder: pass a file name")
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise click.ClickException(f"cannot write to {folder}: pass an --output somewhere writable")
    try:  # what access() cannot tell (root, /proc, a read-only mount): a real file, gone at once
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as exc:
        raise click.ClickException(
            f"cannot write to {folder} ({exc.strerror}): pass an --output somewhere writable"
        ) from None


def _console(quiet: bool = False, stderr: bool = False):
    from rich.console import Console

    return Console(quiet=quiet, stderr=stderr, highlight=False, soft_wrap=True)  # long paths stay on one line


# --- download ------------------------------------------------------------------------


@cli.command()
@classes_option("Comma-separated class names, as Google spells them, or `all` for all 345.")
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
    help="A mirror in Google's layout: URL/full/simplified/<class>.ndjson, URL/full/raw/<class>.ndjson, "
    "URL/sketchrnn/<class>.npz, class names URL-encoded [env: QDSKETCH_BASE_URL; default: Google's bucket].",
)
@click.option("--force", is_flag=True, help="Fetch files again even when they are complete.")
@click.option(
    "--from",
    "source",
    type=click.Path(path_type=Path),
    help="Import files copied by hand from this folder instead of downloading: in Google's layout "
    "(full/simplified/, full/raw/, sketchrnn/), in qdsketch's (simplified/, raw/), or a flat folder of "
    "<class>.ndjson (simplified); ndjson may be gzipped (<class>.ndjson.gz).",
)
@click.option("--retries", type=click.IntRange(0, 100), default=5, show_default=True, help="Retries per file.")
@click.option(
    "--timeout",
    type=FiniteRange(0.1, 600),
    default=30.0,
    show_default=True,
    help="Seconds to connect, and between bytes; a transfer slower than 1 KB/s for twice this long "
    "(a server that trickles) is cut and retried.",
)
@click.option(
    "--jobs", type=click.IntRange(min=1, max=64), default=4, show_default=True, help="Files downloaded at once."
)
@click.option(
    "--max-file-size",
    type=FiniteRange(min=0.001),
    metavar="GB",
    help="Stop a file that moves more than this [default: 4 for simplified, 16 for raw, 2 for sketchrnn].",
)
@click.option("--list-classes", is_flag=True, help="Print all 345 class names and exit.")
@report_options
def download(
    class_names,
    max_per_class,
    all_drawings,
    fmt,
    data_dir,
    base_url,
    force,
    source,
    retries,
    timeout,
    jobs,
    max_file_size,
    list_classes,
    out,
):
    """Download Quick, Draw! drawings, streaming only what is kept.

    ndjson files are read line by line and the transfer stops once
    --max-per-class recognized drawings are kept. Files land in
    DATA_DIR/FORMAT/CLASS.EXT; complete ones are skipped on the next run.

    \b
    Example:
        qdsketch download --classes cat,clock
        qdsketch download --classes "hot air balloon" --format raw --max-per-class 500
        qdsketch download --classes all --max-per-class 2000 --jobs 8
        qdsketch download --from /media/usb/quickdraw
    """
    from qdsketch.classes import categories, parse_class_list
    from qdsketch.data import download as dl
    from qdsketch.reporting import RichDownloadReporter, download_table

    if list_classes:
        click.echo("\n".join(categories()))
        return
    classes = parse_class_list(class_names) if class_names is not None else None
    if source is None and classes is None:
        raise click.UsageError("pass --classes NAMES (or --from PATH to import files)")
    kw = {"data_dir": data_dir, "limit": max_per_class, "all_drawings": all_drawings, "force": force}
    with RichDownloadReporter(out.console) if not out.quiet else nullcontext(dl.SilentReporter()) as reporter:
        if source is not None:
            results = dl.import_classes(source, classes, [fmt] if fmt else list(FORMAT_CHOICES), reporter, **kw)
        else:
            max_bytes = None if max_file_size is None else int(max_file_size * 1e9)
            policy = dl.RetryPolicy(attempts=retries, timeout=timeout, max_bytes=max_bytes, slow_seconds=2 * timeout)
            base = dl.base_url(base_url)
            assert classes is not None
            results = dl.download_classes(
                classes, jobs, reporter, fmt=fmt or "simplified", base=base, policy=policy, **kw
            )
    if len(results) == 1 and results[0].status == "failed":  # one file: its error alone says it
        raise click.ClickException(results[0].why)
    shown = lambda console: download_table(console, results, out.verbose)
    out.result([dataclasses.asdict(r) for r in results], show=shown)
    if any(r.status == "failed" for r in results):  # the others are in: the table says why these failed
        raise SystemExit(1)


# --- preprocess ------------------------------------------------------------------------


@cli.command()
@data_dir_option
@classes_option("Comma-separated classes [default: all in DATA_DIR].")
@max_per_class_option(None)
@click.option(
    "--max-seq-len",
    type=click.IntRange(1, 10_000),
    default=150,
    show_default=True,
    help="Truncate longer drawings (a checkpoint allows at most 10,000).",
)
@click.option("--split", "split_text", default="70,15,15", show_default=True, help="train,val,test weights.")
@seed_option("Seed of the split.")
@all_drawings_option
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=paths.dataset_file,
    show_default="data/dataset.npz, or $QDSKETCH_HOME/data/dataset.npz",
    help="A dataset file (.npz, built in memory) or a directory, for a sharded dataset written as it goes "
    "(bounded memory, for large data; docs/scale.md).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    help="Processes that read classes in parallel; the output is the same for any number [default: the cores].",
)
@report_options
def preprocess(
    data_dir,
    class_names,
    max_per_class,
    max_seq_len,
    split_text,
    seed,
    all_drawings,
    output,
    workers,
    out,
):
    """Turn downloaded drawings into a dataset for training.

    Reads simplified and raw ndjson (or .ndjson.gz) and sketchrnn npz,
    converts them to stroke-3, splits them per class with a seeded generator
    and fits the dx/dy normalisation on the training split.

    \b
    Example:
        qdsketch preprocess --classes cat,clock --max-per-class 10000
        qdsketch preprocess --data-dir /data/quickdraw -o data/all --workers 8
    """

    from qdsketch.classes import parse_class_list
    from qdsketch.data.plan import Plan, parse_split
    from qdsketch.data.preprocess import preprocess as run_preprocess

    classes = parse_class_list(class_names) if class_names is not None else None
    plan = Plan.of(
        data_dir,
        classes,
        max_per_class=max_per_class,
        max_seq_len=max_seq_len,
        fractions=parse_split(split_text),
        seed=seed,
        recognized_only=not all_drawings,
    )
    if output.is_symlink():  # a loop cannot be resolved, and a link to a dataset would be replaced, not followed
        raise click.ClickException(f"{output} is a symbolic link: pass the path it points to, or another --output")
    sources = plan.sources()
    inputs = {Path(p).resolve() for files in sources.values() for p in files}
    if output.resolve() in inputs or any(output.resolve() in p.parents for p in inputs):
        raise click.ClickException(f"{output} is one of the input files: pass another --output")
    if output.is_dir() and output.suffix.lower() == ".npz":
        raise click.ClickException(f"{output} is a directory: pass a file name for a .npz dataset")
    workers = workers or min(os.cpu_count() or 1, len(plan.classes))
    from qdsketch.data.ndjson import FAST, kernels_compiled, load_kernels

    if FAST and not kernels_compiled():  # its first use on a machine: said, instead of freezing the bar
        out.say(COMPILING, stderr=True)
        load_kernels()
    bar = out.bar(f"reading {len(plan.classes)} classes")
    with bar or nullcontext():
        summary = run_preprocess(plan, output, workers, bar)
    from qdsketch.reporting import dataset_summary

    out.result(
        {**summary, "output": str(output)},
        show=lambda console: dataset_summary(console, {**summary, "sources": sources}, output, out.verbose),
    )


# --- train -----------------------------------------------------------------------------


def device_option(f):
    """``--device``, as ``TrainConfig.device`` declares it."""
    field = {fl.name: fl for fl in dataclasses.fields(TrainConfig)}["device"]
    return click.option(
        "--device",
        default=field.default,
        show_default=True,
        metavar=field.metadata["metavar"],
        help=field.metadata["help"],
    )(f)


class _CtrlC:
    """First Ctrl-C (or SIGTERM, as `kill`, a scheduler or a closing session sends):
    ask the loop to stop after this batch, which saves last.pt. Second Ctrl-C: stop now."""

    def __init__(self):
        self.requested = False

    def __enter__(self):
        import signal

        self.signal = signal
        self.previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, signum, frame):
        if self.requested and signum == self.signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        for sig, previous in self.previous.items():
            self.signal.signal(sig, previous)
        return False


def _with_note(help_text: str, note: str) -> str:
    """``"Say this."`` and ``"x"`` -> ``"Say this [x]."``."""
    body = help_text[:-1] if help_text.endswith(".") else help_text
    return f"{body} [{note}]." if body else f"[{note}]"


def _click_type(cls, f: dataclasses.Field):
    m = f.metadata
    if "choices" in m:
        return click.Choice(m["choices"])
    if m.get("path"):
        return click.Path(path_type=Path)
    bounds = {k: m[k] for k in ("min", "max", "min_open", "max_open") if k in m}
    kind = field_type(cls, f)
    if kind is int:
        return click.IntRange(**bounds) if bounds else int
    if kind is float:
        return FiniteRange(**bounds)
    return str


def _nested(f: dataclasses.Field):
    """The config class of a field that holds one (``TrainConfig.augment``), else ``None``."""
    factory = f.default_factory
    return factory if factory is not dataclasses.MISSING and dataclasses.is_dataclass(factory) else None


def config_options(cls, prefix: str = "", note: str | None = None):
    """Click options made from the fields of the config dataclass ``cls``
    (``qdsketch.config``): the name, type, bounds, default and help of each.
    With ``note``, every option defaults to ``None`` ("leave it to ...") and
    its help ends in ``[note]``."""

    def decorate(fn):
        for f in reversed(dataclasses.fields(cls)):
            m = f.metadata
            if m.get("cli") is False:
                continue
            if _nested(f):
                fn = config_options(_nested(f), f"{prefix}{f.name}_", note)(fn)
                continue
            flag = "--" + (prefix + f.name).replace("_", "-")
            text = m.get("help", "")
            if field_type(cls, f) is bool:
                fn = click.option(flag, is_flag=True, help=text)(fn)
                continue
            kw: dict = {"type": _click_type(cls, f), "metavar": m.get("metavar")}
            if note or "default_help" in m:
                kw.update(default=None, help=_with_note(text, note or m["default_help"]))
            else:
                kw.update(default=f.default, show_default=f.default is not None, help=text or None)
            fn = click.option(flag, **kw)(fn)
        return fn

    return decorate


def config_values(cls, params: dict, prefix: str = "") -> dict:
    """The fields of ``cls`` that ``params`` (Click's, as ``config_options``
    made them) sets; popped from ``params``."""
    values = {}
    for f in dataclasses.fields(cls):
        if f.metadata.get("cli") is False:
            continue
        if _nested(f):
            values[f.name] = _nested(f)(**config_values(_nested(f), params, f"{prefix}{f.name}_"))
            continue
        value = params.pop(prefix + f.name)
        if value is not None:
            values[f.name] = str(value) if isinstance(value, Path) else value
    return values


DEFAULT_PRESET = "mixture"


def _preset_help() -> str:
    return "Model preset: " + "; ".join(f"{name}: {p.about}" for name, p in PRESETS.items()) + "."


@cli.command()
@click.option(
    "--preset", type=click.Choice(list(PRESETS)), default=DEFAULT_PRESET, show_default=True, help=_preset_help()
)
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the run's files go [default: runs/<preset>-<time>, or $QDSKETCH_HOME/runs/...].",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the run in --run-dir (by default the latest in runs/) from its last.pt, with its own settings: "
    "the same options again are accepted; only --epochs, --device, --data, --save-every and --ema may change.",
)
@click.option(
    "--processes",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Train in this many processes on this machine (DistributedDataParallel: one GPU each with --device "
    "cuda, or CPU processes sharing the cores), started and stopped by qdsketch as torchrun --standalone would.",
)
@config_options(TrainConfig)
@config_options(ModelConfig, note="preset's")
@report_options
@click.pass_context
def train(ctx, preset, run_dir, resume, processes, out, **params):
    """Train the class-conditional stroke model on a dataset file.

    Follows the reference recipe: AdamW, gradient clipping at 1.0, the learning
    rate halved after 3 epochs without improvement, early stopping after 7.
    The run directory gets best.pt, last.pt, history.csv/.json, config.json and
    three loss plots. Ctrl-C saves last.pt; --resume continues exactly there.
    With --processes N (or under `torchrun --nproc-per-node N -m qdsketch
    train ...`) it trains with DistributedDataParallel.

    \b
    Example:
        qdsketch train --device cuda
        qdsketch train --preset tiny --epochs 5 --run-dir runs/try
        qdsketch train --run-dir runs/try --resume --epochs 10
    """
    if processes > 1 and "RANK" not in os.environ:  # the launcher: it starts the processes, which train
        from qdsketch.launch import launch

        raise SystemExit(launch(processes, sys.argv[1:]))
    world = os.environ.get("WORLD_SIZE", "")
    if "RANK" in os.environ and processes > 1 and world.isdigit() and int(world) != processes:
        raise QdsketchError(
            f"--processes {processes}, but torchrun started {os.environ.get('WORLD_SIZE')}",
            "drop --processes under torchrun",
        )
    # a spinner from the start (importing torch takes seconds) until the run's header; closing
    # the stack ends it, once, whichever comes first: the header, or an error before it. Under
    # torchrun only the first process speaks, and the others share its terminal: none there
    with ExitStack() as waiting:
        if os.environ.get("RANK", "0") == "0":
            waiting.enter_context(out.status("loading the data and building the model"))
        _train(ctx, preset, run_dir, resume, out, waiting.close, params)


def _train(ctx, preset, run_dir, resume, out, stop_waiting, params: dict) -> None:
    import time as _time

    from qdsketch import train as training
    from qdsketch.config import preset as make_preset

    if params["data"] is None:
        params["data"] = paths.dataset_file()
    for name, value in PRESETS[preset].train.items():  # the preset's recipe, where the user said nothing else
        if not _given(ctx, name):
            params[name] = value
    typed = {name for name in params if _given(ctx, name)}
    cfg = TrainConfig(**config_values(TrainConfig, params))
    model_cfg = make_preset(preset, **config_values(ModelConfig, params))
    if cfg.init_from is not None and not resume:
        model_flags = ["--preset"] * _given(ctx, "preset") + [
            "--" + name.replace("_", "-") for name in model_cfg.to_dict() if _given(ctx, name)
        ]
        if model_flags:
            raise QdsketchError(
                f"--init-from {cfg.init_from} brings its own model, so {', '.join(model_flags)} cannot change it",
                f"drop {', '.join(model_flags)}, or train a new model without --init-from",
            )
    if resume:
        from qdsketch.runs import latest_run

        run_dir = run_dir or latest_run(paths.runs_dir())
        if _given(ctx, "preset"):  # the preset's model and recipe, as a new run would get them
            typed |= set(model_cfg.to_dict()) | (set(PRESETS[preset].train) - set(training.MAY_CHANGE))
        asked = {name: value for name, value in training.settings(cfg, model_cfg).items() if name in typed}
    run_dir = run_dir or paths.runs_dir() / f"{preset}-{_time.strftime('%Y%m%d-%H%M%S')}"
    main = training.dist_env().main
    if not main:  # under torchrun, only the first process speaks
        out = Output(quiet=True)
    reporter: training.Reporter = training.SilentReporter()
    if out.as_json and main:
        reporter = _epoch_lines(training.SilentReporter)
    elif not out.quiet:
        from qdsketch.reporting import RichTrainReporter

        reporter = RichTrainReporter(out.console, stop_waiting, out.verbose)
    with _CtrlC() as ctrl_c:
        stop = lambda: ctrl_c.requested
        if resume:
            summary = training.resume(run_dir, asked, reporter, stop)
        else:
            summary = training.train(cfg, model_cfg, run_dir, reporter, stop)
    if main:
        _train_done(out, summary, run_dir)


def _epoch_lines(silent: type) -> Any:
    """``train --json``'s reporter: JSON lines on stdout, one as each epoch ends (``"event":
    "epoch"``, its history row); the run's summary comes last (``"event": "end"``). Silent
    otherwise, as ``silent`` (``train.SilentReporter``, passed in: torch loads with it)."""

    class EpochLines(silent):
        def epoch(self, row):
            click.echo(json.dumps(_json_safe({"event": "epoch", **row}), allow_nan=False))

    return EpochLines()


def _given(ctx, name: str) -> bool:
    """Whether the user typed option ``name`` (or set it through its environment variable)."""
    from click.core import ParameterSource

    return ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


def _train_done(out: Output, summary: dict, run_dir: Path) -> None:
    from qdsketch.render import plot_history

    if summary["history"]:
        plot_history(summary["history"], run_dir, summary["head"])  # the run's own head, also on --resume
    if summary["interrupted"]:
        kept = f"saved {run_dir / 'last.pt'}"
        if summary["processes"] > 1:
            kept = (
                f"{run_dir / 'last.pt'} keeps the end of epoch {summary['epoch'] - 1} "
                "(with several processes, a stop within an epoch is not saved)"
            )
        text = (
            f"interrupted at epoch {summary['epoch']}, batch {summary['batch']}: {kept}\n"
            f"resume with: qdsketch train --run-dir {run_dir} --resume"
        )
    else:
        how = "stopped early" if summary["stopped_early"] else "done"
        text = (
            f"{how} after {summary['epochs']} epochs; best validation loss {summary['best_val']:.4f} "
            f"at epoch {summary['best_epoch']}: {run_dir / 'best.pt'}"
        )
    result = {**summary, "run_dir": str(run_dir), "best": str(run_dir / "best.pt")}
    if out.as_json:  # the last of its JSON lines
        click.echo(json.dumps(_json_safe({"event": "end", **result}), allow_nan=False))
    else:
        out.result(result, text)
    if summary["interrupted"]:
        raise SystemExit(130)


def checkpoint_option(f):
    return click.option(
        "--checkpoint",
        type=click.Path(path_type=Path),
        metavar="PATH",
        help="A checkpoint or run directory [default: the model that ships with qdsketch].",
    )(f)


# --- evaluate ----------------------------------------------------------------------------


@cli.command()
@click.argument("run_path", metavar="[RUN_DIR_OR_CHECKPOINT]", type=click.Path(path_type=Path), required=False)
@checkpoint_option
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    help="Dataset, a file or a sharded directory [default: the one the checkpoint was trained on].",
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
    "-n", "count", type=click.IntRange(2, 10_000), default=100, show_default=True, help="Judge: sketches per class."
)
@click.option(
    "--temperature",
    "temperatures",
    type=FiniteRange(min=0),
    multiple=True,
    help="Judge: sampling temperature; repeat for several [default: the model's head's, as sample uses].",
)
@seed_option("Judge: seed of the generated sketches.")
@click.option(
    "--judge-path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Judge: where the classifier is cached [default: beside the dataset, .judge.pt].",
)
@report_options
def evaluate(run_path, checkpoint, data, split, device, use_judge, count, temperatures, seed, judge_path, out):
    """Report a model's losses on a dataset split, overall and per class.

    With --judge, a compact classifier trained on the dataset's training
    split (cached beside it) also reports, per class: its accuracy on real
    test drawings; the fraction of generated sketches it recognises; a
    Frechet distance between its features for real and generated sketches;
    and novelty, the distance from each sketch to its nearest training
    drawing, beside the same for real test drawings.

    \b
    Example:
        qdsketch evaluate runs/mixture-20261125-101500
        qdsketch evaluate --checkpoint runs/try/last.pt --split val --json
        qdsketch evaluate runs/try --judge --temperature 0.3 --temperature 0.7
    """

    if run_path is not None and checkpoint is not None:
        raise click.UsageError(f"give the model once: {run_path} or --checkpoint {checkpoint}")
    checkpoint = run_path if run_path is not None else checkpoint  # neither: the model that ships
    judge = None
    if use_judge:
        judge = {"n": count, "temperatures": temperatures or None, "seed": seed, "path": judge_path}
    bar = out.bar("evaluating")  # the loss pass, and the judge's steps: each tens of seconds on a CPU
    with bar or nullcontext():  # shown at once: importing torch takes seconds
        from qdsketch.evaluate import evaluate as run_evaluate

        report = run_evaluate(checkpoint, data, split, device, judge=judge, progress=bar)
    from qdsketch.reporting import evaluate_tables

    out.result(report, show=lambda console: evaluate_tables(console, report, split, out.verbose))


# --- info ----------------------------------------------------------------------------------


@cli.command()
@click.argument("path", metavar="[RUN_DIR_OR_CHECKPOINT]", type=click.Path(path_type=Path), required=False)
@report_options
def info(path, out):
    """Say what a checkpoint is: its classes, model, training and losses.

    A run directory means its best.pt; no argument, the model that ships.
    Beside a run's history.json, also its epochs and best validation loss.

    \b
    Example:
        qdsketch info runs/mixture-20261125-101500
        qdsketch info runs/try/last.pt --json
    """
    with out.status("reading the checkpoint"):  # from the start: importing torch takes seconds
        from qdsketch.info import describe

        report = describe(path)
    from qdsketch.reporting import info_table

    out.result(report, show=lambda console: info_table(console, report, out.verbose))


@cli.command()
@click.argument("folder", metavar="[RUNS_DIR]", type=click.Path(path_type=Path), required=False)
@report_options
def runs(folder, out):
    """List the training runs in a folder, one line each, oldest first.

    Each line says the run's model, classes, epochs, best validation loss and
    state (training, done, stopped early, or stopped and resumable). `latest`
    marks the run that `train --resume` continues; `best`, the lowest validation
    loss of the runs on the same dataset.

    \b
    Example:
        qdsketch runs
        qdsketch runs /data/experiments --json
    """
    from qdsketch.runs import list_runs

    folder = folder if folder is not None else paths.runs_dir()
    if not folder.is_dir():
        raise QdsketchError(f"no runs folder at {folder}", "train one with `qdsketch train`, or pass your runs folder")
    found = list_runs(folder)
    if not found and not out.as_json:
        out.say(f"no runs in {folder}/: `qdsketch train` makes one")
        return
    from qdsketch.reporting import runs_table

    out.result(found, show=lambda console: runs_table(console, folder, found, out.verbose))


# --- sample and animate ----------------------------------------------------------------------


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
    f = seed_option("Seed for reproducible sketches [default: a random one, printed].", default=None)(f)
    f = click.option(
        "--best-of",
        type=click.IntRange(1, 64),
        default=1,
        show_default=True,
        metavar="K",
        help="Draw K tries of each sketch and keep the one the judge that ships with qdsketch finds "
        "most like its class (the shipped model's classes only).",
    )(f)
    return device_option(checkpoint_option(f))


def _draw(
    checkpoint, device, classes, count, seed, temperature, pen_temperature, best_of=1, prefix=None, progress=None
):
    """``qdsketch.sample.draw`` on the chosen device, with a random seed (to print and
    reuse) when none is given."""
    from qdsketch.devices import pick_device
    from qdsketch.sample import draw

    seed = seed if seed is not None else int.from_bytes(os.urandom(4), "little")
    return draw(
        checkpoint, classes, count, seed, temperature, pen_temperature, best_of, prefix, pick_device(device), progress
    )


def _models_said(drawn, checkpoint) -> str:
    """Which shipped model drew which classes, for the one-line report ("" for a --checkpoint)."""
    if checkpoint is not None:
        return ""
    by_model: dict[str, list[str]] = {}
    for name in dict.fromkeys(drawn.names):
        by_model.setdefault(drawn.models[name], []).append(name)
    if len(by_model) == 1:
        return f", by the shipped model {next(iter(by_model))}"
    return ", by the shipped models " + ", ".join(f"{m} ({_names_said(n)})" for m, n in by_model.items())


def _names_said(names: list[str]) -> str:
    """Class names for a one-line report: the names, or how many when there are many."""
    return ", ".join(names) if len(names) <= 8 else f"{len(names)} classes"


def _temperatures_data(gen, best_of: int) -> dict:
    return {"temperature": gen.temperature, "pen_temperature": gen.pen_temperature, "best_of": best_of}


def _temperatures_said(gen, best_of: int) -> str:
    """How sketches were drawn, for the one-line report: temperatures, tries."""
    said = f"temperature {gen.temperature:g}"
    if gen.pen_temperature != gen.temperature:
        said += f" (pen {gen.pen_temperature:g})"
    return said + (f", best of {best_of}" if best_of > 1 else "")


SAMPLE_FORMATS = ("png", "svg", "ndjson")


def _is_stdout(output: Path) -> bool:
    """``-o -``: write to stdout."""
    return str(output) == "-"


def _sample_format(output: Path, fmt: str | None, as_json: bool) -> str:
    """What sample writes: ``--format``, else the suffix of ``--output``; ndjson for ``-``."""
    to_stdout = _is_stdout(output)
    if to_stdout and as_json:
        raise click.UsageError("--json and -o - both write to stdout: drop one")
    if fmt is None:
        fmt = "ndjson" if to_stdout else output.suffix.lower().lstrip(".")
        if fmt not in SAMPLE_FORMATS:
            raise click.ClickException(
                f"unknown output suffix {output.suffix or '(none)'!r}: use .png, .svg or .ndjson, or pass --format"
            )
    if to_stdout and fmt == "png":
        raise click.UsageError("-o - writes text: use --format ndjson or svg, or -o grid.png")
    return fmt


@cli.command()
@click.argument("classes", nargs=-1, shell_complete=completion.model_class)
@classes_option(
    "Comma-separated classes, as download and preprocess take them; all: every class the model draws.",
    completion.model_class_list,
)
@click.option("-n", "count", type=click.IntRange(1, 100_000), default=16, show_default=True, help="Sketches per class.")
@generation_options
@click.option(
    "--prefix",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Continue the first drawing of this ndjson file instead of starting blank.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="out.png (a grid), out.svg or out.ndjson (Quick, Draw! simplified format); - writes to stdout.  [required]",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(SAMPLE_FORMATS),
    help="What to write [default: from the --output suffix; ndjson for -].",
)
@click.option(
    "--list-classes",
    is_flag=True,
    help="Print the classes the model draws (the shipped models', or --checkpoint's), one a line, and exit.",
)
@report_options
def sample(
    classes,
    class_names,
    count,
    temperature,
    pen_temperature,
    best_of,
    seed,
    checkpoint,
    device,
    prefix,
    output,
    fmt,
    list_classes,
    out,
):
    """Generate sketches of one or more classes.

    All sketches are generated in one batch; --seed makes them reproducible.

    \b
    Example:
        qdsketch sample cat clock tent house nail -n 16 -o grid.png
        qdsketch sample --classes cat,clock -n 8 -o grid.svg
        qdsketch sample house -n 100 --temperature 0.3 --seed 7 -o houses.ndjson
        qdsketch sample cat --prefix my-cat-head.ndjson -o cats.svg
        qdsketch sample house -n 4 -o - | jq .drawing
    """
    from qdsketch.data.ndjson import read_drawing
    from qdsketch.strokes import stroke3_to_strokes

    if list_classes:
        from qdsketch.sample import model_classes

        drawn_by = model_classes(checkpoint)
        out.result({"classes": drawn_by}, "\n".join(drawn_by))
        return
    if output is None:
        raise click.UsageError("Missing option '-o' / '--output'.")
    fmt = _sample_format(output, fmt, out.as_json)
    to_stdout = _is_stdout(output)
    if to_stdout and sys.stdout is None:  # `>&-`: Python starts with no stdout at all
        raise click.ClickException("stdout is closed: nothing can be written there. Pass -o FILE")
    if not classes and class_names is None:
        raise click.UsageError("give the classes to draw: CLASSES... or --classes a,b")
    if classes and class_names is not None:
        raise click.UsageError("give the classes once: as CLASSES... or as --classes a,b")
    if class_names is not None:
        from qdsketch.sample import model_classes

        every = [name.lower() for name in class_names] == ["all"]
        classes = list(model_classes(checkpoint)) if every else list(class_names)
    if not to_stdout:
        _check_writable(output)
    pre = read_drawing(prefix)[1] if prefix else None
    total = len(classes) * count * best_of
    bar = out.bar(f"drawing {total:,} sketches", stderr=True)
    with bar or nullcontext():
        drawn = _draw(checkpoint, device, classes, count, seed, temperature, pen_temperature, best_of, pre, bar)
    gen, names, seed = drawn.generated, drawn.names, drawn.seed
    given = len(stroke3_to_strokes(pre)) if pre is not None else 0  # drawn grey in a PNG or SVG
    with out.status(f"writing {output}", stderr=True) if not to_stdout else nullcontext():
        _write_sketches(gen.rows, drawn.words, drawn.seeds, output, fmt, given)
    rows = gen.rows
    if out.verbose:  # on stderr: stdout may hold the sketches
        for i, line in enumerate(_sketch_lines(drawn)):
            out.say(f"{i + 1:>5} {line}", stderr=True)
    what = "1 sketch" if len(rows) == 1 else f"{len(rows)} sketches"
    where = "stdout" if to_stdout else str(output)
    how = _temperatures_said(gen, best_of) + _models_said(drawn, checkpoint)
    text = f"wrote {where}: {what} ({_names_said(names)}), seed {seed}, {how}"
    if to_stdout:  # stdout holds the sketches: the report goes to stderr
        out.say(text, stderr=True)
        return
    data = {"output": str(output), "sketches": len(rows), "classes": names, "seed": seed}
    out.result({**data, **_temperatures_data(gen, best_of), "models": drawn.models}, text)


def _sketch_lines(drawn) -> list[str]:
    """``-v``: one line a sketch, what the summary leaves out: class, seed, model, length, end."""
    gen = drawn.generated
    lines = []
    for word, seed, rows, ended in zip(drawn.words, drawn.seeds, gen.rows, gen.ended, strict=True):
        lines.append(f"{word}: seed {seed}, by {drawn.models[word]}, {_ink(rows)}, {_ending(ended)}")
    return lines


def _ending(ended: bool) -> str:
    """How a generated sketch ended, for ``-v``."""
    return "ended by the model" if ended else "cut at the length limit"


def _ink(rows) -> str:
    """``"52 points in 6 strokes"``: a sketch's size, as its ndjson has it."""
    from qdsketch.strokes import stroke3_to_strokes

    strokes = stroke3_to_strokes(rows) if len(rows) else []
    return f"{sum(len(s) for s in strokes)} points in {len(strokes)} strokes"


def _write_sketches(rows, words: list[str], seeds: list[int], output: Path, fmt: str, given: int = 0) -> None:
    """Sketches as ``fmt`` to ``output`` (atomically), or to stdout for ``-``; in a PNG or SVG
    the ``given`` strokes of a prefix are grey."""
    from qdsketch import render
    from qdsketch.sample import ndjson_lines

    if fmt == "png":
        render.save_grid(rows, words, output, given=given)
        return
    if fmt == "ndjson":
        text = "\n".join(ndjson_lines(rows, words, seeds)) + "\n"
    else:
        text = render.svg_text(rows, words, given=given)
    if _is_stdout(output):
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except OSError as exc:  # a pipe closed by its reader, a full disk behind a redirect
            raise click.ClickException(f"could not write the sketches to stdout ({exc.strerror or exc})") from None
        return
    from qdsketch.files import atomic_path

    with atomic_path(output) as tmp:
        tmp.write_text(text)


def _one_class(class_name: str | None, names: tuple[str, ...] | None) -> str | None:
    """animate's class, given as CLASS or as --classes NAME (one)."""
    if names is None:
        return class_name
    if class_name:
        raise click.UsageError(f"give the class once: {class_name!r} or --classes {','.join(names)}")
    if len(names) != 1:
        raise click.UsageError(
            f"animate draws one class, --classes names {len(names)}: run it once per class, "
            "or use `qdsketch sample` for a grid"
        )
    return names[0]


@cli.command()
@click.argument("class_name", metavar="[CLASS]", required=False, shell_complete=completion.model_class)
@classes_option("The class, as sample, download and preprocess take it (one here).", completion.model_class_list)
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
    "--hold",
    type=FiniteRange(min=0, max=600),
    default=1.5,
    show_default=True,
    help="Seconds the finished drawing stays (a GIF frame lasts at most 655 s).",
)
@generation_options
@click.option(
    "--drawing",
    "--from",
    "source",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Animate the first drawing of this ndjson file instead of generating one (--from: the old name).",
)
@report_options
def animate(
    class_name,
    class_names,
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
    out,
):
    """Write a looping GIF of a sketch being drawn, stroke by stroke.

    \b
    Example:
        qdsketch animate house -o house.gif
        qdsketch animate --classes cat -o cat.gif --seed 3 --fps 30 --size 384
        qdsketch animate --drawing drawing.ndjson -o real.gif
    """
    from qdsketch import render

    if output.suffix.lower() != ".gif":
        raise click.ClickException(f"unknown output suffix {output.suffix or '(none)'!r}: animate writes .gif")
    class_name = _one_class(class_name, class_names)
    _check_writable(output)
    if source is not None:
        from qdsketch.data.ndjson import read_drawing

        if class_name:
            raise click.UsageError(f"--drawing animates the one in {source}: drop {class_name!r}, or drop --drawing")
        word, rows = read_drawing(source)
        what = f"{word or 'drawing'} from {source}"
        data: dict = {"class": word, "from": str(source)}
    else:
        if not class_name:
            raise click.UsageError("give a CLASS to draw, or --drawing FILE to animate a real drawing")
        with out.status(f"drawing {class_name}"):
            drawn = _draw(checkpoint, device, [class_name], 1, seed, temperature, pen_temperature, best_of)
        gen, name, seed = drawn.generated, drawn.names[0], drawn.seed
        rows = gen.rows[0]
        what = f"{name}, seed {seed}, {_temperatures_said(gen, best_of)}{_models_said(drawn, checkpoint)}"
        data = {"class": name, "seed": seed, **_temperatures_data(gen, best_of), "model": drawn.models[name]}
    with out.status(f"writing {output}"):
        frame_list = render.frames(rows, size, points_per_frame)
        render.save_gif(frame_list, output, fps, hold)
    if out.verbose:
        ended = "" if source is not None else ", " + _ending(drawn.generated.ended[0])
        seconds = (len(frame_list) - 1) / fps + max(hold, 1 / fps)
        out.say(
            f"{_ink(rows)}{ended}; {len(frame_list)} frames of {size} x {size} pixels, "
            f"{seconds:.1f} s a loop at {fps:g} fps"
        )
    out.result(
        {"output": str(output), "frames": len(frame_list), **data}, f"wrote {output}: {len(frame_list)} frames, {what}"
    )


# --- serve ------------------------------------------------------------------------------------


@cli.command()
@checkpoint_option
@device_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="The address to listen on. Anything but this machine's loopback lets others on the network draw "
    "with your machine: it is said with a warning.",
)
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="The port (0: any free one)."
)
@click.option("--no-browser", is_flag=True, help="Only print the address; do not open a browser.")
@click.option("-v", "--verbose", is_flag=True, help="Also print a line for each request.")
def serve(checkpoint, device, host, port, no_browser, verbose):
    """Draw together in a browser: a local page where the model draws live.

    Pick a class and watch sketches appear stroke by stroke, or draw the
    start of one with a mouse, pen or finger and watch the model finish it,
    several ways at once, at the temperature you choose. Save any result as
    SVG, ndjson or GIF. The shipped models by default, or --checkpoint RUN.
    Ctrl-C stops it.

    \b
    Example:
        qdsketch serve
        qdsketch serve --checkpoint runs/mixture-20261125-101500 --port 9000
    """
    import threading

    from qdsketch.devices import pick_device
    from qdsketch.live import Studio
    from qdsketch.server import LOOPBACK
    from qdsketch.server import serve as make_server

    studio = Studio(checkpoint, str(pick_device(device)))
    try:
        server = make_server(studio, host, port, log=(lambda line: click.echo(line, err=True)) if verbose else None)
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}). Pass another --port, or --port 0 for any free one"
        ) from None
    # the models load while the browser opens, so the first sketch does not wait for them
    threading.Thread(target=studio.describe, daemon=True).start()
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else shown}:{server.server_address[1]}/"
    try:  # from here on, Ctrl-C is the way to stop it, even before the first request
        if host not in LOOPBACK:
            click.echo(
                f"warning: listening on {host}: anyone who can reach this machine can draw with it (and its CPU)",
                err=True,
            )
        click.echo(f"qdsketch serve: {url}  (Ctrl-C stops it)")
        if not no_browser and _has_browser():
            import webbrowser

            webbrowser.open(url)
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (main's handler): a clean stop
        click.echo("stopped", err=True)
    finally:
        server.server_close()


def _has_browser() -> bool:
    """Whether a browser can open here: a desktop session (not a terminal over ssh, where
    Python's webbrowser would start a text browser in this very terminal)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
