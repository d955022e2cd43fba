"""Run many `qdsketch` command lines as real processes, each forked from this one after it
has imported qdsketch and torch once.

A fresh `python -m qdsketch` spends about two seconds importing torch before it looks at
its arguments; a fork starts where this process is, so a case costs what the command itself
does. Each case is still its own process: its own working directory, environment, exit
status and file descriptors 1 and 2, `qdsketch.cli.main` run as `python -m qdsketch` runs it,
an exception that escapes printed as the interpreter prints it, and a case that hangs killed.
`tests/test_hostile.py` checks, on cases of every kind, that this gives exactly what a fresh
process gives.

    python tests/forker.py CASES.json RESULTS.json

CASES.json: a list of {"args": [...], "cwd": "...", "env": {...}, "output": "file for stdout
and stderr"}; RESULTS.json: a list of [exit status, or null if it ran past the timeout].
Started with the environment the cases share (OMP_NUM_THREADS=1: torch reads it on import).
"""

import json
import os
import signal
import sys
import time
import traceback

import matplotlib

matplotlib.use("Agg")
import imageio  # noqa: E402,F401
import matplotlib.pyplot  # noqa: E402,F401
import torch  # noqa: E402,F401

import qdsketch.cli  # noqa: E402
import qdsketch.data.download  # noqa: E402,F401
import qdsketch.data.preprocess  # noqa: E402,F401
import qdsketch.evaluate  # noqa: E402,F401
import qdsketch.reporting  # noqa: E402,F401
import qdsketch.sample  # noqa: E402,F401
import qdsketch.train  # noqa: E402,F401

TIMEOUT = 120  # seconds a case may take
AT_ONCE = 2  # cases running together: the machine's cores


def child(case: dict) -> None:
    """In the forked process: become `python -m qdsketch ARGS` in the case's folder. Never returns."""
    code = 1
    try:
        os.chdir(case["cwd"])
        os.environ.clear()
        os.environ.update(case["env"])
        signal.signal(signal.SIGINT, signal.default_int_handler)
        null = os.open(os.devnull, os.O_RDONLY)
        out = os.open(case["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        sys.argv = [sys.argv[0], *case["args"]]
        try:
            qdsketch.cli.main()
            code = 0
        except SystemExit as exc:  # as the interpreter ends on it
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:
                print(exc.code, file=sys.stderr)
        except BaseException:  # what escapes main: the traceback a user would see
            traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def main() -> None:
    cases = json.loads(open(sys.argv[1]).read())
    results: list[int | None] = [None] * len(cases)  # None: killed for running past TIMEOUT
    running: dict[int, tuple[int, float]] = {}  # pid: (case, when it started)
    hung: set[int] = set()
    waiting = list(range(len(cases)))[::-1]
    while waiting or running:
        while waiting and len(running) < AT_ONCE:
            index = waiting.pop()
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                child(cases[index])
            running[pid] = (index, time.monotonic())
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid:
            index, _ = running.pop(pid)
            results[index] = None if pid in hung else os.waitstatus_to_exitcode(status)
            continue
        for pid, (_, started) in running.items():
            if pid not in hung and time.monotonic() - started > TIMEOUT:
                os.kill(pid, signal.SIGKILL)
                hung.add(pid)
        time.sleep(0.005)
    with open(sys.argv[2], "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
