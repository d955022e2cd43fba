"""``train --processes N``: start a run's N processes on this machine, as
``torchrun --standalone --nproc-per-node N`` would, and end them as a single command does.

torchrun is torch's launcher, and it speaks for itself: a Ctrl-C ends in its own
``SignalException`` traceback, a failed process in a ``ChildFailedError`` report, and
an error that every process meets (a split too small for them, a wrong ``--data``) is
printed once by each of them. Here the same launcher runs inside qdsketch, and:

- its log and its exceptions stay quiet; a Ctrl-C or SIGTERM is passed to the processes as
  one SIGTERM each, which stops training as Ctrl-C does (``last.pt`` keeps the last whole
  epoch), and the command exits 130 after them;
- each process writes its error, if it meets one, to a file of this launcher's (``ERRORS_ENV``)
  instead of the terminal, and the launcher prints each different one once.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import tempfile
import uuid
from pathlib import Path
from typing import NoReturn

from qdsketch.errors import QdsketchError

#: set for the processes of a launched run: the folder where each writes its error, as ``rank-N``
ERRORS_ENV = "QDSKETCH_LAUNCH_ERRORS"

#: how long the processes have to stop after a Ctrl-C (finishing a validation pass can take
#: minutes) before the launcher kills them
STOP_SECONDS = 600


def launched_error(message: str) -> bool:
    """Under ``launch``: write ``message``, this process's error, where the launcher
    collects them, and say so (the caller then prints nothing)."""
    folder = os.environ.get(ERRORS_ENV)
    if not folder or "RANK" not in os.environ:
        return False
    try:
        (Path(folder) / f"rank-{int(os.environ['RANK'])}").write_text(message, "utf-8")
    except (OSError, ValueError):
        return False  # printed after all, rather than lost
    return True


def one_of_several() -> bool:
    """Whether this process is one of a run's several (torchrun's or ``--processes``'s)."""
    text = os.environ.get("WORLD_SIZE", "1").strip()
    return text.isdigit() and int(text) > 1


def leave(code: int | str | None) -> NoReturn:
    """End one of a run's several processes with ``code`` (``SystemExit``'s), skipping the
    interpreter's clean-up.

    Why: under torch 2.13, DistributedDataParallel keeps gloo's process group alive after
    ``destroy_process_group``, and its threads are torn down with the interpreter; now and
    then (3 of about 50 two-process test runs) a process then aborts (SIGABRT, "terminate
    called without an active exception") after a run that ended well, and the launcher
    reports a failed run. Everything this process writes is renamed into place before it
    gets here, so there is nothing left to clean up: only the output streams are flushed."""
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(code or 0)


def launch(processes: int, argv: list[str]) -> int:
    """Run ``qdsketch ARGV`` in ``processes`` processes of one run (DistributedDataParallel)
    and wait for them; the exit code of the run (130: stopped by a signal). Raises
    ``QdsketchError`` with each different error the processes met."""
    from torch.distributed.elastic.multiprocessing import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    # the agent's notes (rendezvous, "Received SIGINT death signal", the failure report) are
    # for torch's developers; what happened is said below, in the processes' own words
    # (each of its modules sets its logger's own level, so each is quieted)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    # the agent turns these into a SignalException, and passes SIGINT on as a second SIGINT,
    # which stops a process at once, unsaved; a Ctrl-C (SIGINT) is handled here instead
    os.environ["TORCHELASTIC_SIGNALS_TO_HANDLE"] = "SIGTERM,SIGHUP,SIGQUIT"
    errors = Path(tempfile.mkdtemp(prefix="qdsketch-launch-"))
    os.environ[ERRORS_ENV] = str(errors)
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=processes,
        run_id=str(uuid.uuid4()),
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",  # torchrun --standalone: a free port of this machine
        max_restarts=0,
        monitor_interval=0.1,
        shutdown_timeout=STOP_SECONDS,
    )
    previous = signal.signal(signal.SIGINT, _as_sigterm)
    try:
        elastic_launch(config, sys.executable)("-m", "qdsketch", *argv)
        return 0
    except SignalException:  # the processes got their SIGTERM, and have stopped
        return 130
    except ChildFailedError as exc:
        said = _said(errors)
        if said:
            raise QdsketchError("; ".join(said)) from None
        codes = sorted({failure.exitcode for failure in exc.failures.values()})
        if codes == [130]:  # stopped by their own Ctrl-C, and rank 0 has said where it is saved
            return 130
        how = ", ".join(f"killed by signal {-c}" if c < 0 else f"exit code {c}" for c in codes)
        raise QdsketchError(
            f"{len(exc.failures)} of the {processes} training processes ended abnormally ({how})",
            "see the lines above; resume with --resume",
        ) from None
    finally:
        signal.signal(signal.SIGINT, previous)
        os.environ.pop(ERRORS_ENV, None)
        shutil.rmtree(errors, ignore_errors=True)


def _as_sigterm(signum, frame):
    """A Ctrl-C to the launcher: the agent's shutdown, with SIGTERM to the processes (which
    stop as after Ctrl-C, and a second one does not escalate)."""
    from torch.distributed.elastic.multiprocessing import SignalException

    raise SignalException("Ctrl-C", sigval=signal.SIGTERM)


def _said(errors: Path) -> list[str]:
    """The processes' errors, in rank order, each different one once."""
    said: list[str] = []
    for path in sorted(errors.glob("rank-*"), key=lambda p: int(p.name.split("-")[1])):
        text = path.read_text("utf-8", errors="replace").strip()
        if text and text not in said:
            said.append(text)
    return said
