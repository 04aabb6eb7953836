"""Training one cell: every seed of a (target, model) pair as one ensemble."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .checks import INTERPOLATION, TRAIN, VALIDATION
from .data import Split, fresh_batches
from .models import Model, MonitoredSplit, TrainingData, TrainingLog
from .plan import Cell


@dataclass(frozen=True, eq=False)
class TrainedCell:
    cell: Cell
    model: Model
    log: TrainingLog
    diverged: np.ndarray  # (seeds,) bool
    seconds: float


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
    """Build the cell's ensemble, fit it, time the fit.

    A seed is diverged when the parameters it ends with predict non-finite
    values on its training data, or, training by epochs, when its loss
    stopped being finite. (Training by steps keeps each seed's best
    checkpoint, which a later blow-up does not spoil.) Members' arithmetic is
    independent, so the rest of the ensemble is unaffected.
    """
    train = next(s for s in splits if s.name == TRAIN)
    settings = cell.settings
    data = TrainingData(
        x=train.x,
        y=train.y,
        monitor=[MonitoredSplit(s.name, s.x, s.y) for s in monitored_splits(splits)],
        fresh=fresh_batches(cell.target, cell.seeds, settings.batch_size) if settings.by_steps else None,
    )
    model = cell.model.build(cell.target.inputs, cell.seeds, cell.device)
    start = time.perf_counter()
    log = model.fit(data, settings)
    seconds = time.perf_counter() - start
    with np.errstate(all="ignore"):
        finite_predictions = np.isfinite(model.predict(train.x)).all(axis=(1, 2))
    finite_loss = np.isfinite(log.loss).all(axis=1)
    diverged = ~finite_predictions | (~finite_loss & (not settings.by_steps))
    return TrainedCell(cell, model, log, diverged, seconds)
