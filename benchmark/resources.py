"""The memory a run will need, estimated from its plan before anything is allocated.

A run that cannot fit is refused in one line with the estimate and what to
shrink, rather than growing until the kernel's out-of-memory killer ends it
(or the machine). The estimate counts what scales with the settings:

- samples: the largest target's splits, for every seed, drawn in float64
  and kept as float32 inputs and float64 outputs, once in the driver and
  once more in the worker that trains on them;
- models: per ensemble (the members that train together: the seeds of a
  family's cells on targets of one shape, as many as `ensemble_members`
  allows unless one cell has more), each member's parameters five times over
  (weights, gradients, Adam's two moments, the best checkpoint) and its
  activations for a batch, forward and backward; once per worker process.

Families that do not state their size (scikit-learn's) count as nothing
beyond their data. On top comes what the libraries take when imported.
"""

from __future__ import annotations

import os
import resource
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .errors import ResourceError

GIB = 1024**3
#: Resident memory of a process that has imported torch, numpy, pandas and scikit-learn.
BASELINE_BYTES = 600 * 1024**2
#: Copies of a member's parameters held while training: weights, gradients, two Adam moments, the best checkpoint.
PARAMETER_COPIES = 5
#: Floats kept per activation for the backward pass, beside the forward value.
ACTIVATION_COPIES = 3
#: The activations of one ensemble's step, in bytes: members x batch x activations per sample x 4.
#: Per member, a step costs least once there are some tens of members; an ensemble whose
#: activations outgrow the CPU's caches pays about twice as much per member. This is 64
#: members of the default MLP (two hidden layers of 64, 2 inputs, batch 200), the size
#: measured best for it, and room for every seed of a single-layer benchmark's family (36
#: targets x 25 seeds of a unit with two inputs and a batch of 128); the runner's
#: SAMPLE_BUDGET, which bounds the samples a task holds, cuts those into 16, 16 and 4 targets.
ENSEMBLE_BYTES = 64 * 4 * (2 + 64 + 64 + 1) * 200
#: Members per ensemble for a family that does not state its size.
DEFAULT_MEMBERS = 64


@dataclass(frozen=True)
class Estimate:
    samples: int  # bytes
    models: int  # over every worker process
    workers: int
    baseline: int = BASELINE_BYTES

    @property
    def total(self) -> int:
        return self.samples + self.models + self.baseline


def ensemble_members(model, dim: int, batch_size: int) -> int:
    """How many members of `model` (a ModelSpec) on d inputs train as one ensemble: ENSEMBLE_BYTES of activations."""
    if model.size is None:
        return DEFAULT_MEMBERS
    _, activations = model.size(dim)
    return max(1, ENSEMBLE_BYTES // (4 * max(activations, 1) * batch_size))


def estimate(plan, config, jobs: int) -> Estimate:
    """Peak bytes of a run of `plan` with `jobs` worker processes (see the module's docstring)."""
    samples = 0
    for target in plan.targets:
        evaluation_splits = 1 + len(target.extrapolation) + (1 if config.steps else 0)
        points = config.seeds * (config.samples + evaluation_splits * config.eval_samples)
        # float64 while drawn, then float32 inputs and float64 outputs kept.
        per_point = 8 * target.dim + 4 * target.dim + 8
        samples = max(samples, 2 * points * per_point)
    models = 0
    same_dim = Counter(target.dim for target in plan.targets)
    for model in plan.models:
        if model.size is None:
            continue
        batch = config.batch_size if config.steps else min(config.batch_size, config.samples)
        for dim, targets in same_dim.items():
            if not any(cell.model is model and cell.target.dim == dim for cell in plan.cells):
                continue  # a family that failed its checks on such targets trains nothing there
            # Cells of one family on targets of one shape stack, up to the ensemble's size (a cell is never split).
            members = min(config.seeds * targets, max(ensemble_members(model, dim, batch), config.seeds))
            parameters, activations = model.size(dim)
            per_member = 4 * (PARAMETER_COPIES * parameters + ACTIVATION_COPIES * activations * batch)
            models = max(models, per_member * members)
    workers = max(1, min(jobs, len(plan.cells)))  # never more workers than cells
    return Estimate(samples=samples, models=models * workers, workers=workers)


def available_bytes() -> int:
    """Memory this process may still take: the least of free memory, its cgroup's limit and its address-space limit."""
    import psutil

    limits = [psutil.virtual_memory().available]
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            used = _cgroup_usage(Path(path).parent)
            limits.append(int(text) - used)
        break
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        limits.append(soft - psutil.Process(os.getpid()).memory_info().vms)
    return max(0, min(limits))


def _cgroup_usage(folder: Path) -> int:
    for name in ("memory.current", "memory.usage_in_bytes"):
        try:
            return int((folder / name).read_text().strip())
        except (OSError, ValueError):
            continue
    return 0


def check_fits(plan, config, jobs: int) -> Estimate:
    """The run's estimate, or a ResourceError saying how much it needs, how much there is, and what to shrink."""
    needed = estimate(plan, config, jobs)
    free = available_bytes()
    if needed.total > free:
        parts = [f"training data {needed.samples / GIB:.1f} GiB (--seeds {config.seeds} x --samples "
                 f"{config.samples:,} and --eval-samples {config.eval_samples:,} per split)"]
        if needed.models:
            parts.append(f"models {needed.models / GIB:.1f} GiB ({needed.workers} worker process(es))")
        biggest = "use fewer --seeds or --samples" if needed.samples >= needed.models else \
            "use a smaller model, fewer --seeds or fewer --jobs"
        raise ResourceError(f"this run needs about {needed.total / GIB:.1f} GiB of memory ({', '.join(parts)}) "
                            f"but {free / GIB:.1f} GiB is available; {biggest}")
    return needed
