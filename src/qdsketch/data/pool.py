"""An order-keeping process pool of one or two stages, in bounded memory.

``ordered`` runs ``first`` on each job in worker processes, then, in job order here,
``between`` on its result, and ``second`` on that in the workers again, and yields the
results in job order. At most ``2 x workers`` jobs wait at each stage, so memory stays
bounded however many jobs there are: preprocess reads 345 classes through it, a few at
a time.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable, Iterator
from itertools import islice


def _worker_start() -> None:
    """In each worker, first: Ctrl-C is the parent's to handle (it reaches the whole process
    group; the parent stops the pool), the pool's ``terminate()`` ends it quietly, and it
    dies with its parent, even a parent killed with -9 (``signals.die_with_parent``)."""
    import signal

    from qdsketch.signals import die_with_parent

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a fork inherits the CLI's handler, which raises
    die_with_parent(signal.SIGTERM)


def start_method() -> str:
    """``fork`` starts a worker in milliseconds, but is unsafe once torch (and its threads) is loaded."""
    import multiprocessing as mp

    return "fork" if "fork" in mp.get_all_start_methods() and "torch" not in sys.modules else "spawn"


def ordered(
    jobs: list, workers: int, first: Callable, between: Callable | None = None, second: Callable | None = None
) -> Iterator[tuple]:
    """``(first(job), second(between(first(job))))`` for each job, in order, with ``first``
    and ``second`` run in up to ``workers`` processes at once and ``between`` here
    (``second`` is ``None`` where no second stage is given). With one worker, or one job,
    everything runs here."""
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            got = first(job)
            yield got, None if second is None else second(between(got) if between else got)
        return
    import multiprocessing as mp

    with mp.get_context(start_method()).Pool(workers, initializer=_worker_start) as pool:
        firsts: deque = deque()  # results of first, in job order
        seconds: deque = deque()  # (first's result, second's), in job order
        queue = iter(jobs)
        for job in islice(queue, 2 * workers):
            firsts.append(pool.apply_async(first, (job,)))
        while firsts or seconds:
            if firsts and (second is None or len(seconds) < 2 * workers):
                got = firsts.popleft().get()
                for job in islice(queue, 1):  # one more in, for the one out
                    firsts.append(pool.apply_async(first, (job,)))
                if second is None:
                    yield got, None
                    continue
                seconds.append((got, pool.apply_async(second, (between(got) if between else got,))))
            else:
                got, then = seconds.popleft()
                yield got, then.get()
