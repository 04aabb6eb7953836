"""The one protocol every model family follows, and the settings it trains with.

A family's spec builds a `Model`: an ensemble holding one independent member
per seed. The runner only ever calls `fit`, `predict`, `readable_parameters`,
`formulas` and `members`, so a torch module, an arithmetic unit and a
scikit-learn regressor look the same to it. Arrays cross this boundary as numpy, stacked
along a leading seed axis: x is (seeds, n, d), y is (seeds, n, 1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from .data import FreshBatches
    from .formula import Expression


@dataclass(frozen=True)
class TrainSettings:
    """How long and how hard to train; the article's protocol by default.

    With `steps` at 0 a model makes `epochs` passes over a fixed training
    set and keeps its final parameters (the article). With `steps` above 0 it
    takes that many optimiser steps, each on a fresh batch, and keeps the
    parameters that scored best on the validation split (the published
    arithmetic protocols).
    """

    epochs: int = 100
    batch_size: int = 200
    learning_rate: float = 0.1
    steps: int = 0
    eval_every: int = 0  # steps between evaluations; 0: about 20 evenly spread
    # The sparsity regulariser of the arithmetic units is off up to step
    # `reg_start` and at full strength from `reg_end`, linear in between.
    # `bench run` sets them (by default to 40% and 70% of the steps); left
    # at 0, the regulariser applies in full from the first step.
    reg_start: int = 0
    reg_end: int = 0
    #: Multiplies the sum of a model's regulariser terms in the loss.
    regularizer_strength: float = 1.0
    optimizer: str = "adam"  # a name in `benchmark.train.optimizers.OPTIMIZERS`
    loss: str = "mse"  # a name in `benchmark.train.loop.LOSSES`
    #: Gradient clipping before each step, per member: every element to
    #: [-clip_value, clip_value], then each member's whole gradient to norm clip_norm.
    clip_value: float | None = None
    clip_norm: float | None = None

    def ramp(self, step: int) -> float:
        """How much of the sparsity regulariser applies at `step`, from 0 to 1."""
        if step <= self.reg_start:
            return 0.0
        if step >= self.reg_end:
            return 1.0
        return (step - self.reg_start) / (self.reg_end - self.reg_start)

    @property
    def by_steps(self) -> bool:
        return self.steps > 0

    def total_steps(self, samples: int) -> int:
        """Optimiser steps the training takes with `samples` training samples."""
        if self.by_steps:
            return self.steps
        return self.epochs * -(-samples // self.batch_size)

    def evaluation_interval(self, samples: int) -> int:
        """Steps between evaluations; a whole number of epochs when training by epochs."""
        if self.by_steps:
            return self.eval_every or max(1, self.steps // 20)
        per_epoch = -(-samples // self.batch_size)
        if self.eval_every:
            return max(1, -(-self.eval_every // per_epoch)) * per_epoch
        return max(1, self.epochs // 20) * per_epoch


@dataclass(frozen=True, eq=False)
class MonitoredSplit:
    """A split scored while training: its MSE per seed at every evaluation."""

    name: str
    x: np.ndarray  # (seeds, n, d)
    y: np.ndarray  # (seeds, n, 1)


@dataclass(frozen=True, eq=False)
class TrainingData:
    """What a model trains on.

    `x`, `y` is a fixed training set. `fresh.draw(k)` gives the next k
    steps' batches, float32 tensors (seeds, k, batch, d) and (seeds, k,
    batch, 1), for training by steps (`benchmark.data.FreshBatches`). `monitor` lists the splits scored at every evaluation; the first
    is the validation split that picks the kept parameters.
    """

    x: np.ndarray
    y: np.ndarray
    monitor: Sequence[MonitoredSplit]
    fresh: FreshBatches | None = None


@dataclass(frozen=True, eq=False)
class TrainingLog:
    """What happened while a model trained, per seed."""

    loss_steps: np.ndarray  # (k,) steps at which the loss was logged: every epoch, or every evaluation
    loss: np.ndarray  # (seeds, k) mean training loss over the steps since the previous log
    steps: np.ndarray  # (points,) steps at each evaluation, the first (0) before any training
    monitored: Mapping[str, np.ndarray]  # split name -> (seeds, points) MSE
    kept_step: np.ndarray  # (seeds,) the step whose parameters the model now holds
    #: term name -> (seeds, k) mean of the model's regulariser term (unweighted) at each loss log
    regularizer: Mapping[str, np.ndarray] = field(default_factory=dict)


class Model(Protocol):
    """What a family's ensemble does.

    Four more methods are optional, and so not part of this protocol:

    - ``members(index: slice, inputs) -> Model``, the members at `index`
      alone, as a model for inputs named `inputs`. It lets the runner train
      the cells of several targets that share a family and input dimension
      as one ensemble and evaluate each target's members on their own; a
      family without it trains one cell at a time.
    - ``state() -> bytes`` and ``load_state(data: bytes) -> None``: the
      trained members as bytes, and those bytes put back into an ensemble
      the family's spec has just built for the same inputs and seeds. A
      cell keeps them in its folder (``model.bin``), so that a run's models
      answer new points later without retraining (`benchmark.predict`); a
      family without them keeps no models. A run folder may come from
      elsewhere, so ``load_state`` refuses bytes it would have to run code
      to rebuild, raising an error that says why in one line.
    - ``failures() -> list[str | None]``: per seed, after `fit`, None or
      the one-line reason the family could not train that seed (a search
      past its time limit). Such a seed is marked ``failed`` and left out
      of every median; the other seeds are scored as usual.
    """

    def fit(self, data: TrainingData, settings: TrainSettings) -> TrainingLog:
        """Train every member on its own slice of the data."""
        ...

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predictions (seeds, m, 1) for inputs (seeds, m, d)."""
        ...

    def readable_parameters(self) -> list[dict[str, float]]:
        """Per seed, the learned parameters small enough to read (may be empty)."""
        ...

    def formulas(self) -> list[Expression | None]:
        """Per seed, the learned function as a formula, where its parameters read as one."""
        ...


def fitted_once_log(predict: Callable[[np.ndarray], np.ndarray], data: TrainingData, seeds: int) -> TrainingLog:
    """The log of a family fitted in one go rather than by steps (scikit-learn's, the symbolic regressor):
    one "step", its training MSE, and each monitored split's MSE after it; before it there was no model."""
    y = data.y[:, :, 0]
    untrained = np.full(seeds, np.nan)
    with np.errstate(all="ignore"):  # a formula may overflow far outside its data: an infinite MSE, said as such
        train_mse = ((predict(data.x)[:, :, 0] - y) ** 2).mean(axis=1)
        monitored = {m.name: np.stack([untrained, ((predict(m.x) - m.y) ** 2).mean(axis=(1, 2))], axis=1)
                     for m in data.monitor}
    return TrainingLog(loss_steps=np.array([1]), loss=train_mse[:, None], steps=np.array([0, 1]),
                       monitored=monitored, kept_step=np.ones(seeds, dtype=int))


def layer_sizes(widths: Sequence[int], gates: int = 1) -> tuple[int, int]:
    """(parameters, activations per sample) of dense layers of these widths, each with `gates` weight matrices."""
    parameters = sum(gates * a * b + b for a, b in zip(widths, widths[1:]))
    return parameters, gates * sum(widths)


@dataclass(frozen=True, eq=False)
class ModelSpec:
    """A configured model family: how to build its ensemble and train it.

    `build(inputs, seeds, device)` returns a `Model` for inputs named
    `inputs` with one member per seed; the same seed must give the same
    member whatever other seeds are built beside it.
    """

    build: Callable[[tuple[str, ...], Sequence[int], str], Model]
    description: str
    learning_rate: float | None  # the optimiser's default for the family; None where it does not use one
    #: (parameters, activations per sample) of one member with d inputs, for the run's memory estimate
    #: (`benchmark.resources`); None where the family cannot say (scikit-learn's).
    size: Callable[[int], tuple[int, int]] | None = None
    #: The family's own defaults for other `TrainSettings` fields (optimizer,
    #: loss, clip_value, clip_norm, regularizer_strength); a run's option overrides them.
    training: Mapping[str, Any] = field(default_factory=dict)
    #: What defines the family for d inputs beyond `build`'s own code, hashed into the cell id
    #: (a `torch_model`'s factory and its module's class); None where `build` says it all.
    identity: Callable[[int], str] | None = None
    #: Why the family cannot train on inputs like x (n, d), in one line, or None: run on
    #: every input dimension of a run before training (`benchmark.testing.check_model_family`).
    check: Callable[[np.ndarray], str | None] | None = None
    # Filled in by the registry, as for targets.
    name: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""
    origin: str = ""  # the plugin that defined it, for messages
