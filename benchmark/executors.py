"""Where work runs: in this process, in worker processes on this machine, or on a Dask cluster.

The runner hands an executor a function and a stream of tasks and gets the
results back as they finish; only the runner writes them. Every executor
has the same two methods (`run` and `describe`) and is a context manager,
so the runner does not know which one it drives.

- `LocalExecutor`: workers forked on Linux, so they start with the plan
  already in memory. Each of N workers runs torch, scikit-learn and the
  BLAS under numpy on cores // N threads, so the workers together do not
  oversubscribe the machine. Forking is safe because the parent runs no
  parallel torch work before it forks; a caller that has (a notebook, a
  test process) should keep the workers at one thread each, which
  `run_local` does when cores // N is 1.
- `DaskExecutor`: a `distributed` cluster, either one already running
  (`--scheduler tcp://HOST:PORT`) or a `LocalCluster` started for the run.
  Tasks go through Dask's own retries; a worker that dies mid-task has its
  task rescheduled by the scheduler, and a task that keeps failing comes
  back as a `TaskFailed` instead of stopping the run.
"""

from __future__ import annotations

import asyncio
import ctypes
import multiprocessing
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from .errors import FuncbenchError, ResourceError, describe_exception
from .threads import limit_threads, usable_cores

Task = TypeVar("Task")
Result = TypeVar("Result")

def can_fork() -> bool:
    # Only Linux: macOS's system libraries are not fork-safe, and Windows cannot fork.
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


@dataclass(frozen=True)
class TaskFailed(Generic[Task]):
    """A task that raised on every try; the run goes on without it."""

    task: Task
    error: str  # one line: the exception and where it was raised
    traceback: str = ""  # the whole traceback, for -v


def traced(fn: Callable[[Task], Result], task: Task) -> Result:
    """`fn(task)`, its exception (if any) carrying where it was raised and its traceback as text.

    Run on the worker side: an exception pickled back from a worker process
    loses its frames, and with them the plugin's file and line.
    """
    try:
        return fn(task)
    except Exception as exc:
        frames = traceback.extract_tb(exc.__traceback__)
        if frames and not getattr(exc, "where", None):
            exc.where = f"{os.path.basename(frames[-1].filename)}:{frames[-1].lineno}"
        exc.remote_traceback = "".join(traceback.format_exception(exc))
        raise


def failure(task: Task, exc: BaseException) -> TaskFailed:
    return TaskFailed(task, describe_exception(exc), getattr(exc, "remote_traceback", "")
                      or "".join(traceback.format_exception(exc)))


class Executor(Protocol):
    def run(self, fn: Callable[[Task], Result], tasks: Iterable[Task], limit: int) -> Iterator[Result | TaskFailed]:
        """`fn` over `tasks`, results in finishing order; `limit`: how many tasks there will be, at most."""
        ...

    def describe(self) -> dict[str, Any]:
        """How the work was spread, for run.json."""
        ...


class LocalExecutor:
    """`jobs` forked worker processes on this machine, or this process alone."""

    def __init__(self, jobs: int):
        self.jobs = max(1, jobs)
        self.used = self.jobs

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc_info) -> None:
        return None

    def run(self, fn: Callable[[Task], Result], tasks: Iterable[Task], limit: int) -> Iterator[Result]:
        self.used = max(1, min(self.jobs, limit))  # no idle workers, and more threads for each
        return run_local(fn, tasks, self.used)

    def describe(self) -> dict[str, Any]:
        return {"executor": "local", "jobs": self.used, "threads_per_job": max(1, usable_cores() // self.used)}


def run_local(fn: Callable[[Task], Result], tasks: Iterable[Task], jobs: int) -> Iterator[Result | TaskFailed]:
    """`fn` over `tasks`, in this process (jobs=1) or in `jobs` forked workers; results in finishing order.

    A task that raises comes back as a `TaskFailed` and the others go on.
    Tasks are drawn from the iterable only as workers free up (one spare in
    the queue per worker), so a lazy stream of tasks holding large arrays is
    never all in memory at once. On an interrupt, or a worker that dies,
    the results already finished are still handed back before it
    propagates, and the workers are stopped at once rather than left to
    finish their tasks.
    """
    if jobs <= 1 or not can_fork():
        for task in tasks:
            try:
                yield fn(task)
            except Exception as exc:  # noqa: BLE001 - the task's failure is reported, the run goes on
                yield failure(task, exc)
        return
    threads = max(1, usable_cores() // jobs)
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork"),
                               initializer=_start_worker, initargs=(threads, os.getpid()))
    pending: dict[Future, Task] = {}

    def finished(done: set[Future]) -> Iterator[Result | TaskFailed]:
        for future in done:
            task = pending.pop(future)
            error = future.exception()
            if isinstance(error, BrokenProcessPool):
                raise ResourceError("a worker process died (out of memory, or killed); finished cells are saved: "
                                     "run the same command again to resume, with fewer --jobs if memory is short")
            yield failure(task, error) if error is not None else future.result()

    try:
        for task in tasks:
            pending[pool.submit(traced, fn, task)] = task
            while len(pending) >= 2 * jobs:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                yield from finished(done)
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            yield from finished(done)
    except GeneratorExit:  # the caller stopped reading (its own error or interrupt): nothing more can be handed back
        stop_pool(pool)
        raise
    except BaseException:
        done = {f for f in pending if f.done() and not f.cancelled() and f.exception() is None}
        stop_pool(pool)
        yield from finished(done)
        raise
    pool.shutdown(wait=True)


def stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel the queued tasks and end the workers now (the pool would wait for the running ones)."""
    workers = list((getattr(pool, "_processes", None) or {}).values())  # no public way to reach them
    pool.shutdown(wait=False, cancel_futures=True)
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.join(timeout=5)
    # A task half-written into the queue's pipe, which no worker reads any
    # more, would block the queue's feeder thread, and the exit that joins it.
    call_queue = getattr(pool, "_call_queue", None)
    if call_queue is not None:
        call_queue.cancel_join_thread()


def _start_worker(threads: int, parent: int) -> None:
    # Ctrl-C is the parent's to handle: it stops the workers itself. SIGTERM
    # (from the parent, or from its death) ends a worker at once, whatever
    # handler the parent had installed when it forked.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with(parent)
    limit_threads(threads)


def die_with(parent: int) -> None:
    """End this worker when the parent dies, even by SIGKILL, instead of waiting on its queue forever."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)


#: How often Dask tries a task again after it raised (a worker that dies is the scheduler's to
#: handle: it reschedules the task up to `distributed.scheduler.allowed-failures` times).
DASK_RETRIES = 2


class DaskExecutor:
    """A Dask cluster: the one at `scheduler`, or a LocalCluster of up to `jobs` worker processes.

    Each worker process runs one task at a time per Dask thread, and gives
    torch and the BLAS its host's cores divided by the Dask threads of all
    the workers on that host. Tasks are submitted as earlier ones finish
    (two per worker thread in flight), so a lazy stream of tasks holding
    arrays is never all in memory. A local cluster is started when the
    work is known, with no more workers than there are tasks.
    """

    def __init__(self, scheduler: str | None, jobs: int, retries: int = DASK_RETRIES):
        self.scheduler = scheduler
        self.jobs = max(1, jobs)
        self.retries = retries
        self.client: Any = None
        self.cluster: Any = None
        self.threads: dict[str, int] = {}

    def __enter__(self) -> DaskExecutor:
        try:
            import distributed  # noqa: F401 - only to say clearly when it is missing
        except ImportError:
            raise FuncbenchError("the dask executor needs the 'distributed' package: pip install distributed") from None
        if self.scheduler is not None:
            self._connect(lambda: self._client(self.scheduler, timeout="20s"))
        return self

    def _connect(self, make_client: Callable[[], Any]) -> None:
        """Connect and learn the workers; on any failure, close what was opened."""
        try:
            self.client = make_client()
            self.threads = self._threads_per_host()
        except BaseException as exc:
            self.__exit__()
            if isinstance(exc, (OSError, TimeoutError, ValueError)):
                where = f"the Dask scheduler at '{self.scheduler}'" if self.scheduler else "a local Dask cluster"
                raise FuncbenchError(f"cannot reach {where}: {describe_exception(exc)}; "
                                     "check the address, and that the scheduler has workers") from None
            raise

    @staticmethod
    def _client(*args: Any, **kwargs: Any) -> Any:
        from distributed import Client

        return Client(*args, **kwargs)

    def _start_local(self, workers: int) -> None:
        from distributed import LocalCluster

        def start() -> Any:
            # Processes, not threads: torch holds the GIL in much of a small model's step.
            self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                        host="127.0.0.1", dashboard_address=":0")
            return self._client(self.cluster)

        self._connect(start)

    def __exit__(self, *exc_info) -> None:
        try:
            if self.client is not None:
                self.client.close()
        finally:
            self.client = None
            if self.cluster is not None:
                self.cluster.close()
                self.cluster = None

    def _threads_per_host(self) -> dict[str, int]:
        workers = self.client.scheduler_info()["workers"]
        if not workers:
            self.client.wait_for_workers(1, timeout=60)
            workers = self.client.scheduler_info()["workers"]
        cores = self.client.run(usable_cores)
        slots: dict[str, int] = {}
        for info in workers.values():
            slots[info["host"]] = slots.get(info["host"], 0) + info["nthreads"]
        return {workers[a]["host"]: max(1, cores[a] // slots[workers[a]["host"]]) for a in workers if a in cores}

    def run(self, fn: Callable[[Task], Result], tasks: Iterable[Task], limit: int) -> Iterator[Result | TaskFailed]:
        from distributed import as_completed

        if self.client is None:
            if limit == 0:  # every cell was finished before: no cluster to start
                yield from ()
                return
            self._start_local(min(self.jobs, limit))
        slots = sum(info["nthreads"] for info in self.client.scheduler_info()["workers"].values()) or 1
        running = as_completed(with_results=False)
        submitted: dict[str, tuple[Any, Task]] = {}
        try:
            for task in tasks:
                future = self.client.submit(_on_dask_worker, fn, task, self.threads, retries=self.retries, pure=False)
                submitted[future.key] = (future, task)
                running.add(future)
                while running.count() >= 2 * slots:
                    yield self._collect(next(running), submitted)
            for future in running:
                yield self._collect(future, submitted)
        except BaseException:
            # As the local executor does: hand back what finished, then stop the rest.
            finished = [future for future, _ in submitted.values() if future.status == "finished"]
            self.client.cancel([future for future, _ in submitted.values() if future.status != "finished"])
            for future in finished:
                yield self._collect(future, submitted)
            raise

    @staticmethod
    def _collect(future: Any, submitted: dict[str, tuple[Any, Any]]) -> Any:
        _, task = submitted.pop(future.key)
        try:
            if future.status == "finished":
                return future.result()
            try:
                error = future.exception()
            except (Exception, asyncio.CancelledError) as exc:  # a cancelled future raises instead of returning
                error = exc
            return failure(task, error)
        finally:
            future.release()

    def describe(self) -> dict[str, Any]:
        workers = self.client.scheduler_info()["workers"] if self.client is not None else {}
        return {"executor": "dask", "scheduler": self.scheduler or "local cluster", "workers": len(workers),
                "threads_per_job": min(self.threads.values(), default=1)}


_dask_threads: int | None = None


def _on_dask_worker(fn: Callable[[Task], Result], task: Task, threads_by_host: dict[str, int]) -> Result:
    """Run `fn(task)` on a Dask worker, first giving this worker process its share of the host's cores."""
    global _dask_threads
    from distributed import get_worker
    from distributed.comm import get_address_host

    worker = get_worker()
    # A worker that joined after the run started is not in the map: it shares its host with none.
    threads = threads_by_host.get(get_address_host(worker.address)) or max(1, usable_cores() // worker.state.nthreads)
    if _dask_threads != threads:
        limit_threads(threads)
        _dask_threads = threads
    return traced(fn, task)
