"""Where work runs: in this process, or in worker processes on this machine.

The runner hands an executor a function and a stream of tasks and gets the
results back as they finish; only the runner writes them. Workers are forked,
so they start with the plan already in memory (targets are code, often
lambdas, and need not be picklable); a task carries only names and arrays.
Each of N workers runs torch and scikit-learn on cores // N threads, so
the workers together do not oversubscribe the machine.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import TypeVar

Task = TypeVar("Task")
Result = TypeVar("Result")

_threads: int | None = None


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def worker_threads() -> int:
    """Threads a model may use for its own parallel work (scikit-learn's joblib pool)."""
    return _threads or usable_cores()


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def run_local(fn: Callable[[Task], Result], tasks: Iterable[Task], jobs: int) -> Iterator[Result]:
    """`fn` over `tasks`, in this process (jobs=1) or in `jobs` forked workers; results in finishing order.

    Tasks are drawn from the iterable only as workers free up (one spare in
    the queue per worker), so a lazy stream of tasks holding large arrays is
    never all in memory at once.
    """
    if jobs <= 1 or not can_fork():
        yield from map(fn, tasks)
        return
    threads = max(1, usable_cores() // jobs)
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork"),
                               initializer=_start_worker, initargs=(threads,))
    pending: set[Future] = set()
    try:
        for task in tasks:
            pending.add(pool.submit(fn, task))
            while len(pending) >= 2 * jobs:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                yield from (future.result() for future in done)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            yield from (future.result() for future in done)
    finally:
        # On an interrupt or an error, drop the queued tasks; a running one
        # ends with its worker (Ctrl-C reaches the workers too).
        pool.shutdown(wait=True, cancel_futures=True)


def _start_worker(threads: int) -> None:
    global _threads
    _threads = threads
    import torch  # already imported by the parent; this only sets the worker's share of the cores

    torch.set_num_threads(threads)
