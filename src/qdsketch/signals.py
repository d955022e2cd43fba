"""Processes that end with the process that started them.

A worker whose parent is gone (killed with -9, say) would otherwise live on: preprocess's
readers printing tracebacks into a closed pipe, torchrun's trainers writing into a run
directory nobody watches. Linux delivers a chosen signal to a process when its parent
dies (``PR_SET_PDEATHSIG``); elsewhere this does nothing, and the closed pipe or the lost
peer ends the worker instead.
"""

from __future__ import annotations

import os
import signal

PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>


def die_with_parent(signum: int = signal.SIGTERM) -> None:
    """Have ``signum`` sent to this process when its parent dies (Linux); if the parent
    is already gone, and nothing would tell us, exit now."""
    parent = os.getppid()
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signum)
    except (OSError, AttributeError):  # not Linux
        return
    if os.getppid() != parent:  # the parent died before the call above took effect
        os._exit(1)
