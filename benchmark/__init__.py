"""funcbench: where does a model fit its data, and how far does it carry a function beyond it?

The public API a plugin needs::

    from benchmark import Box, Shell, near_and_far, target, target_family, suite

Everything else (planning, training, storing, reporting) is reachable from
its module and from the ``bench`` command.
"""

__version__ = "0.4.0"

from .domains import Ball, Box, Intervals, Shell, near_and_far  # noqa: E402
from .registry import (  # noqa: E402
    LinearSolution,
    Suite,
    Target,
    model_family,
    preset,
    suite,
    target,
    target_family,
)

__all__ = [
    "Ball", "Box", "Intervals", "Shell", "near_and_far", "LinearSolution", "Suite", "Target",
    "target", "target_family", "model_family", "preset", "suite", "__version__",
]
