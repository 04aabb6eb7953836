"""funcbench's own checks, for plugin authors' tests (as scikit-learn's ``check_estimator``).

::

    from benchmark.testing import check_model_family, check_target
    from my_plugin import my_target, my_unit

    def test_my_target_is_sound():
        check_target(my_target)

    def test_my_unit_trains_like_a_built_in():
        check_model_family(my_unit)

Each takes an `Entry` (what ``@target``, ``@target_family``, ``@torch_model``
or ``@model_family`` made), runs what ``bench run`` runs before and while
training, and raises `CheckFailed` with the one line ``bench run`` would
print. Each returns what it built, for further assertions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .checks import check_target as target_problem
from .config import RunConfig
from .data import sample_splits
from .domains import Box
from .errors import FuncbenchError
from .model import ModelSpec, MonitoredSplit, TrainingData
from .plan import train_settings
from .registry import SELECTABLE_NAME, Entry, Target


class CheckFailed(AssertionError):
    """A plugin's entry fails one of funcbench's checks; the message says which and what to fix."""


def check_target(entry: Entry, **params: Any) -> Target:
    """Build the target with its defaults (or `params`) and run the checks every run makes before sampling."""
    _check_entry(entry, "target")
    target = _create(entry, params)
    if problem := target_problem(target):
        raise CheckFailed(f"target '{target.label}' {problem}")
    return target


#: The run the seed-independence check trains as: short, by epochs, on a fixed training set of 200.
_RUN = RunConfig(epochs=3, batch_size=50, samples=200, eval_samples=100)


def check_model_family(entry: Entry, *, dims: tuple[int, ...] = (1, 2, 3), target: Target | None = None,
                       **params: Any) -> ModelSpec:
    """Build the family (its defaults, or `params`) and check it trains as funcbench needs.

    On inputs of each dimension in `dims` (or of `target`): the checks a
    run makes before training (`ModelSpec.check`: for a `torch_model`, a
    module of the right output shape, finite at initialisation, whose
    members run as one with the numbers each gives alone, every hook
    callable); then a short training (3 epochs, with the family's
    training defaults and regulariser schedule) of seeds 0, 1 and 2
    together, whose predictions must be finite and of the right shape, and
    in which seed 2 must end where it ends trained alone (to float32
    tolerance).
    """
    _check_entry(entry, "model")
    spec = _create(entry, params)
    rng = np.random.default_rng(0)
    cases = [(target.dim, target)] if target is not None else [(d, None) for d in dims]
    for dim, chosen in cases:
        domain = chosen.domain if chosen is not None else Box.cube(dim, 1.0, 2.0)
        try:
            problem = spec.check(domain.sample(16, rng)) if spec.check is not None else None
        except ValueError as exc:  # the factory refused a parameter's value
            raise CheckFailed(f"model '{spec.label}': {exc}") from None
        if problem:
            raise CheckFailed(f"model '{spec.label}' on {dim} input(s): {problem}")
        _trains_like_one_member_per_seed(spec, dim, chosen)
    return spec


def _trains_like_one_member_per_seed(spec: ModelSpec, dim: int, target: Target | None) -> None:
    inputs = target.inputs if target is not None else tuple(f"x{i + 1}" for i in range(dim))
    if target is None:
        target = Target(fn=lambda x: x.sum(axis=1, keepdims=True), domain=Box.cube(dim, 1.0, 2.0),
                        extrapolation={"far": Box.cube(dim, 3.0, 4.0)}, description="a sum", inputs=inputs)
    settings = train_settings(_RUN, spec)  # the family's own training defaults and schedule, as a run's
    predictions = {}
    for seeds in ((0, 1, 2), (2,)):
        splits = {s.name: s for s in sample_splits(target, seeds, _RUN.samples, _RUN.eval_samples)}
        train, held_out = splits["train"], splits["interpolation"]
        model = spec.build(inputs, seeds, "cpu")
        data = TrainingData(train.x, train.y, [MonitoredSplit(held_out.name, held_out.x, held_out.y)])
        try:
            log = model.fit(data, settings)
        except FuncbenchError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported as the check's failure, in one line
            raise CheckFailed(f"model '{spec.label}' failed while training on {dim} input(s): {exc}") from exc
        predicted = model.predict(held_out.x)
        if predicted.shape != (len(seeds), held_out.x.shape[1], 1):
            raise CheckFailed(f"model '{spec.label}' predicts shape {predicted.shape} for {held_out.x.shape}")
        if log.loss.shape[0] != len(seeds) or len(model.formulas()) != len(seeds) \
                or len(model.readable_parameters()) != len(seeds):
            raise CheckFailed(f"model '{spec.label}' does not report one loss, formula and parameter set per seed")
        predictions[seeds] = predicted
    if not np.isfinite(predictions[(2,)]).all():
        raise CheckFailed(f"model '{spec.label}' predicts non-finite values after a short training")
    if not np.allclose(predictions[(0, 1, 2)][2], predictions[(2,)][0], rtol=1e-4, atol=1e-5):
        raise CheckFailed(f"model '{spec.label}': seed 2 trains to other predictions beside seeds 0 and 1 than alone; "
                          "a member must not depend on the others (per-seed initialisation and batches)")


def _check_entry(entry: Any, kind: str) -> None:
    if not isinstance(entry, Entry) or entry.kind != kind:
        raise CheckFailed(f"expected a registered {kind} (what the decorator returns), got {type(entry).__name__}"
                          + (f" of kind {entry.kind}" if isinstance(entry, Entry) else ""))
    if not SELECTABLE_NAME.fullmatch(entry.name):
        raise CheckFailed(f"{kind} name '{entry.name}' cannot be selected on the command line; use letters, digits and _ . -")


def _create(entry: Entry, params: dict[str, Any]) -> Any:
    try:
        return entry.create(**params)
    except FuncbenchError as exc:
        raise CheckFailed(str(exc)) from None
    except Exception as exc:  # noqa: BLE001
        raise CheckFailed(f"{entry.kind} '{entry.name}' cannot be built: {exc}") from exc
