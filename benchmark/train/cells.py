"""Training one cell: every seed of a (target, model) pair as one ensemble."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..checks import INTERPOLATION, TRAIN, VALIDATION
from ..data import FreshBatches, Split
from ..errors import ModelError, describe_exception
from ..model import Model, MonitoredSplit, TrainingData, TrainingLog, TrainSettings
from ..plan import Cell
from ..registry import Target


@dataclass(frozen=True, eq=False)
class TrainedCell:
    cell: Cell
    model: Model
    log: TrainingLog
    diverged: np.ndarray  # (seeds,) bool
    seconds: float
    #: Per seed, why the family could not train it (a symbolic regressor past its time limit), or None.
    failures: tuple[str | None, ...] = ()


def monitored_splits(splits: list[Split]) -> list[Split]:
    """The splits scored while training, the one that picks the kept parameters first.

    That is the validation split where there is one (training by steps), so
    the interpolation split stays a held-out test; otherwise interpolation,
    which then picks nothing: training by epochs keeps the final parameters.
    """
    names = [s.name for s in splits]
    first = VALIDATION if VALIDATION in names else INTERPOLATION
    return sorted(splits, key=lambda s: (s.name != first, s.name == TRAIN))


def train_cell(cell: Cell, splits: list[Split]) -> TrainedCell:
    """Build the cell's ensemble, fit it, time the fit (see `train_cells`)."""
    return train_cells([(cell, splits)])[0]


def train_cells(work: Sequence[tuple[Cell, list[Split]]]) -> list[TrainedCell]:
    """Train cells of one model family as one ensemble, its members every cell's seeds in turn.

    The cells must share the model, the training settings, the input
    dimension and the names and sizes of their splits (`group_key`). A
    member's initialisation, batches and optimiser arithmetic do not depend
    on the other members (see `benchmark.train.loop`), so each
    cell trains exactly as it would alone; training them together only
    takes fewer, larger steps. Each cell's share of the time is its share
    of the members.

    A seed is diverged when the parameters it ends with predict non-finite
    values on its training data, or, training by epochs, when its loss
    stopped being finite. (Training by steps keeps each seed's best
    checkpoint, which a later blow-up does not spoil.)
    """
    first, first_splits = work[0]
    settings = first.settings
    monitored = [s.name for s in monitored_splits(first_splits)]
    by_name = [{s.name: s for s in splits} for _, splits in work]

    def stacked(name: str, field: str) -> np.ndarray:
        return np.concatenate([getattr(splits[name], field) for splits in by_name])

    seeds = [seed for cell, _ in work for seed in cell.seeds]
    data = TrainingData(
        x=stacked(TRAIN, "x"),
        y=stacked(TRAIN, "y"),
        monitor=[MonitoredSplit(name, stacked(name, "x"), stacked(name, "y")) for name in monitored],
        fresh=FreshBatches([(cell.target, cell.seeds) for cell, _ in work], settings.batch_size) if settings.by_steps else None,
    )
    model = first.model.build(first.target.inputs, seeds, first.device)
    if len(work) > 1 and not hasattr(model, "members"):  # a family that cannot hand back a cell's members
        return [trained for one in work for trained in train_cells([one])]
    start = time.perf_counter()
    try:
        log = model.fit(data, settings)
    except ModelError as exc:  # a plugin's hook: say whose
        raise ModelError.of(first.model, exc) from exc
    seconds = time.perf_counter() - start
    if len(work) == 1:
        return [_trained(first, model, log, data.x, settings, seconds)]
    trained, offset = [], 0
    for cell, _ in work:
        members = slice(offset, offset + len(cell.seeds))
        offset = members.stop
        part_log = TrainingLog(
            loss_steps=log.loss_steps, loss=log.loss[members], steps=log.steps,
            monitored={name: scores[members] for name, scores in log.monitored.items()},
            kept_step=log.kept_step[members],
            regularizer={name: terms[members] for name, terms in log.regularizer.items()},
        )
        trained.append(_trained(cell, model.members(members, cell.target.inputs), part_log, data.x[members], settings,
                                seconds * len(cell.seeds) / len(seeds)))
    return trained


def data_shape(target: Target) -> tuple:
    """What the targets of one ensemble must share: the input dimension and the names of the regions."""
    return target.dim, tuple(target.extrapolation)


def group_key(cell: Cell) -> tuple:
    """Cells with equal keys can train as one ensemble (`train_cells`): same model, settings and data shapes."""
    return cell.model.label, cell.settings, cell.device, data_shape(cell.target), cell.samples, cell.eval_samples


def _trained(cell: Cell, model: Model, log: TrainingLog, train_x: np.ndarray, settings: TrainSettings,
             seconds: float) -> TrainedCell:
    with np.errstate(all="ignore"):
        finite_predictions = np.isfinite(model.predict(train_x)).all(axis=(1, 2))
    finite_loss = np.isfinite(log.loss).all(axis=1)
    diverged = ~finite_predictions | (~finite_loss & (not settings.by_steps))
    try:
        failures = seed_failures(model, len(cell.seeds))
    except ModelError as exc:  # a plugin's hook: say whose
        raise ModelError.of(cell.model, exc) from exc
    return TrainedCell(cell, model, log, diverged, seconds, failures)


def seed_failures(model: Model, seeds: int) -> tuple[str | None, ...]:
    """Per seed, the reason the family gives for not training it (its optional `failures()`), or None.

    A family that fits its seeds one by one may lose one (an error, a time
    limit) and keep the others; those seeds are marked failed, not diverged.
    """
    report = getattr(model, "failures", None)
    if not callable(report):
        return (None,) * seeds
    try:
        reasons = [None if reason is None else str(reason) for reason in report()]
    except Exception as exc:  # noqa: BLE001 - a plugin's hook may raise anything
        raise ModelError(f"its failures() raised {describe_exception(exc)}") from exc
    if len(reasons) != seeds:
        raise ModelError(f"its failures() gave {len(reasons)} entries for {seeds} seeds")
    return tuple(reasons)
