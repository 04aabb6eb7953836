"""funcbench: where does a model fit its data, and how far does it carry a function beyond it?

From a notebook or a script::

    import benchmark
    r = benchmark.run(targets="addition,product", models="linear", seeds=2)   # as `bench run`
    r.results, r.summary(), r.predict("addition", "linear", [[3, 4]])
    benchmark.load(r.path)                                                     # a run folder, read back

`run` and `load` give a `Run` (`benchmark.runs`); bad input raises `FuncbenchError`, a ValueError.

The public API a plugin needs::

    from benchmark import Box, Shell, Restricted, near_and_far, target, target_family, suite   # targets and studies
    from benchmark import Reference                                               # a study's published results
    from benchmark import torch_model                                             # model families

`benchmark.testing` runs funcbench's own checks on a plugin's entries, and
`benchmark.formula` has the expressions a model's ``formula`` hook returns.

Everything else (planning, training, storing, reporting) is reachable from
its module and from the ``bench`` command.
"""

__version__ = "0.8.0"

from .api import load, run  # noqa: E402
from .domains import Ball, Box, Intervals, Restricted, Shell, near_and_far  # noqa: E402
from .errors import FuncbenchError  # noqa: E402
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
    "Ball", "Box", "Intervals", "Restricted", "Shell", "near_and_far", "LinearSolution", "Suite", "Target",
    "target", "target_family", "model_family", "preset", "suite", "torch_model", "Reference", "__version__",
    "run", "load", "Run", "FuncbenchError",
]


def __getattr__(name: str):
    # torch is imported when a plugin asks for the model API, not by every `import benchmark`.
    if name == "torch_model":
        from .models.torch_model import torch_model

        return torch_model
    if name == "Reference":  # with pandas, which `bench`'s shell completion does without
        from .references import Reference

        return Reference
    if name == "Run":
        from .runs import Run

        return Run
    raise AttributeError(f"module 'benchmark' has no attribute '{name}'")
