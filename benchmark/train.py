"""Training one cell: every seed of a (target, model) pair as one ensemble."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .checks import TRAIN
from .data import Split
from .models import Model
from .plan import Cell


@dataclass(frozen=True, eq=False)
class TrainedCell:
    cell: Cell
    model: Model
    losses: np.ndarray  # (seeds, epochs)
    diverged: np.ndarray  # (seeds,) bool
    seconds: float


def train_cell(cell: Cell, splits: list[Split]) -> TrainedCell:
    """Build the cell's ensemble, fit it on the training split, time the fit.

    A seed is diverged when its loss or its predictions on the training data
    stop being finite; its members' arithmetic is independent of the others',
    so the rest of the ensemble is unaffected.
    """
    train = next(s for s in splits if s.name == TRAIN)
    model = cell.model.build(cell.target.inputs, cell.seeds, cell.device)
    start = time.perf_counter()
    losses = np.asarray(model.fit(train.x, train.y, cell.settings), dtype=np.float64)
    seconds = time.perf_counter() - start
    finite_predictions = np.isfinite(model.predict(train.x)).all(axis=(1, 2))
    diverged = ~np.isfinite(losses).all(axis=1) | ~finite_predictions
    return TrainedCell(cell, model, losses, diverged, seconds)
