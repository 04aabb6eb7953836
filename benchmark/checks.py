"""Is a target fit to run? Checked before anything is trained.

A plugin's target is code funcbench did not write: it may raise, return the
wrong shape, or produce NaN where it is asked to be evaluated. These checks
find that on a sample of points from the training domain, every
extrapolation region and the probe points, and say it in one line.
"""

from __future__ import annotations

import numpy as np

from .errors import describe_exception
from .registry import Target

#: Largest |y| a target may return: models train in float32, whose squared errors overflow above about 1.8e19.
LARGEST_VALUE = float(np.sqrt(np.finfo(np.float32).max))
TRAIN = "train"
INTERPOLATION = "interpolation"
#: Drawn from the training domain when training by steps, only to pick the kept checkpoint.
VALIDATION = "validation"


def evaluate_target(target: Target, x: np.ndarray) -> np.ndarray:
    """The target on x (n, d), checked to be finite and of shape (n, 1)."""
    with np.errstate(all="ignore"):  # non-finite results are reported below, in one line
        y = np.asarray(target.fn(x), dtype=np.float64)
    if y.shape != (len(x), 1):
        raise TargetError(f"returned shape {y.shape} for {len(x)} inputs; it must return shape ({len(x)}, 1)")
    if not np.all(np.isfinite(y)):
        raise TargetError("returned NaN or infinite values")
    largest = float(np.abs(y).max(initial=0.0))
    if largest > LARGEST_VALUE:
        raise TargetError(f"returned values up to {largest:.3g}; models train in float32, whose squared errors "
                          f"overflow beyond {LARGEST_VALUE:.2g}: scale the target down")
    return y


class TargetError(ValueError):
    """A target's function broke its contract (shape or finiteness)."""


def check_target(target: Target) -> str | None:
    """Why `target` cannot be run, or None: dimensions, regions, probes and its function."""
    d = target.dim
    if len(target.inputs) != d:
        return f"names {len(target.inputs)} inputs but its domain has {d} dimensions"
    if not target.extrapolation:
        return "needs at least one extrapolation region"
    for name, region in target.extrapolation.items():
        if name in (TRAIN, VALIDATION, INTERPOLATION):
            return f"names an extrapolation region '{name}', which is reserved; rename it"
        if region.dim != d:
            return f"has extrapolation region '{name}' of dimension {region.dim}, not {d}"
    if any(len(p) != d for p in target.probes):
        return f"has a probe point that is not of dimension {d}"
    if target.linear_solution is not None and len(target.linear_solution.weights) != d:
        return f"has a linear solution with {len(target.linear_solution.weights)} weights, not {d}"
    rng = np.random.default_rng(0)
    for name, region in [("training domain", target.domain), *((f"region '{n}'", r) for n, r in target.extrapolation.items())]:
        try:
            x = region.sample(256, rng)
        except Exception as exc:  # noqa: BLE001 - a plugin's region may raise anything
            return f"cannot sample its {name}: {describe_exception(exc)}"
        if not np.all(np.abs(x) <= LARGEST_VALUE):
            return f"has its {name} beyond {LARGEST_VALUE:.2g}, where float32 inputs are not trained reliably"
        if name != "training domain" and target.domain.contains(x).any():
            return f"has extrapolation {name} that overlaps its training domain"
        if problem := _evaluation_problem(target, x):
            return f"function fails on its {name}: {problem}"
    if target.probes and (problem := _evaluation_problem(target, np.asarray(target.probes, dtype=np.float64))):
        return f"function fails on its probe points: {problem}"
    return None


def _evaluation_problem(target: Target, x: np.ndarray) -> str | None:
    try:
        evaluate_target(target, x)
    except TargetError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - a plugin's function may raise anything
        return f"raised {describe_exception(exc)}"
    return None
