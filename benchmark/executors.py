"""Where work runs: in this process, or in worker processes on this machine.

The runner hands an executor a function and a stream of tasks and gets the
results back as they finish; only the runner writes them. Workers are forked
(on Linux), so they start with the plan already in memory (targets are code,
often lambdas, and need not be picklable); a task carries only names and
arrays. Each of N workers runs torch, scikit-learn and the BLAS under numpy
on cores // N threads, so the workers together do not oversubscribe the
machine.

Forking is safe here because the parent runs no parallel torch work before
it forks; a caller that has (a notebook, a test process) should keep the
workers at one thread each, which `run_local` does when cores // N is 1.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
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
    # Only Linux: macOS's system libraries are not fork-safe, and Windows cannot fork.
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def run_local(fn: Callable[[Task], Result], tasks: Iterable[Task], jobs: int) -> Iterator[Result]:
    """`fn` over `tasks`, in this process (jobs=1) or in `jobs` forked workers; results in finishing order.

    Tasks are drawn from the iterable only as workers free up (one spare in
    the queue per worker), so a lazy stream of tasks holding large arrays is
    never all in memory at once. On an interrupt or an error, the results
    already finished are still handed back before it propagates, and the
    workers are stopped at once rather than left to finish their tasks.
    """
    if jobs <= 1 or not can_fork():
        yield from map(fn, tasks)
        return
    threads = max(1, usable_cores() // jobs)
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork"),
                               initializer=_start_worker, initargs=(threads, os.getpid()))
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
    except GeneratorExit:  # the caller stopped reading (its own error or interrupt): nothing more can be handed back
        _stop(pool)
        raise
    except BaseException:
        finished = [f for f in pending if f.done() and not f.cancelled() and f.exception() is None]
        _stop(pool)
        yield from (future.result() for future in finished)
        raise
    pool.shutdown(wait=True)


def _stop(pool: ProcessPoolExecutor) -> None:
    """Cancel the queued tasks and end the workers now (the pool would wait for the running ones)."""
    workers = list((getattr(pool, "_processes", None) or {}).values())  # no public way to reach them
    pool.shutdown(wait=False, cancel_futures=True)
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.join(timeout=5)


def _start_worker(threads: int, parent: int) -> None:
    global _threads
    _threads = threads
    # Ctrl-C is the parent's to handle: it stops the workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with(parent)
    import torch  # already imported by the parent; this only sets the worker's share of the cores
    from threadpoolctl import threadpool_limits  # comes with scikit-learn

    torch.set_num_threads(threads)
    threadpool_limits(threads)  # the BLAS and OpenMP pools numpy and scikit-learn use, too


def _die_with(parent: int) -> None:
    """End this worker when the parent dies, even by SIGKILL, instead of waiting on its queue forever."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)
