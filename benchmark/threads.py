"""This process's share of the machine's cores: set by the executor that runs it, read by the families that fork threads."""

from __future__ import annotations

import os

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


def limit_threads(threads: int) -> None:
    """Give this worker process `threads` threads: torch's, scikit-learn's joblib pool, every BLAS and OpenMP pool.

    threadpoolctl caps the pools of the libraries loaded now (torch's, and
    numpy's BLAS); the environment caps those loaded later, such as
    scikit-learn's OpenMP and SciPy's BLAS, which read it when they load.
    """
    global _threads
    _threads = threads
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(threads)
    import torch  # already imported by the parent; this only sets the worker's share of the cores
    from threadpoolctl import threadpool_limits  # comes with scikit-learn

    torch.set_num_threads(threads)
    threadpool_limits(threads)
