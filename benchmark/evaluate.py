"""Scoring a trained cell: error per seed and split, probes, readable parameters.

nmse is the MSE divided by the variance of the target on the same split, so
that 1.0 means "no better than predicting the split's mean" whatever the
target's scale; a split on which the target is constant has no nmse (NaN).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .checks import evaluate_target
from .data import Split
from .domains import diagonal_line
from .train import TrainedCell

#: Points along each target's diagonal line (see `domains.diagonal_line`).
LINE_POINTS = 512

OK = "ok"
DIVERGED = "diverged"


@dataclass(frozen=True, eq=False)
class CellResult:
    """A cell's tidy tables, one row per measurement (see the README's schema)."""

    results: pd.DataFrame
    probes: pd.DataFrame
    params: pd.DataFrame
    curves: pd.DataFrame
    lines: pd.DataFrame


def error_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, np.ndarray]:
    """MSE, normalised MSE and max absolute error along the last two axes."""
    error = y_pred - y_true
    mse = np.mean(error**2, axis=(-2, -1))
    variance = np.var(y_true, axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        nmse = np.where(variance > 0, mse / np.where(variance > 0, variance, 1), np.nan)
    return {"mse": mse, "nmse": nmse, "max_abs_error": np.max(np.abs(error), axis=(-2, -1))}


def predict_everywhere(model, points: np.ndarray, seeds: int) -> np.ndarray:
    """Every member's predictions (seeds, n) at the same points (n, d)."""
    with np.errstate(all="ignore"):  # diverged members predict NaN or inf
        return model.predict(np.broadcast_to(points, (seeds, *points.shape)).copy())[:, :, 0]


def true_values_along(target, points: np.ndarray) -> np.ndarray:
    """The target along the report's line; NaN where it is undefined (between a plugin's regions, say)."""
    with np.errstate(all="ignore"):
        try:
            values = np.asarray(target.fn(points), dtype=np.float64).reshape(len(points))
        except Exception:  # noqa: BLE001 - only drawn, never scored: find the points where it fails
            values = np.array([_true_value_at(target, point) for point in points])
    return np.where(np.isfinite(values), values, np.nan)


def _true_value_at(target, point: np.ndarray) -> float:
    try:
        return float(np.asarray(target.fn(point[None, :]), dtype=np.float64).reshape(-1)[0])
    except Exception:  # noqa: BLE001 - a gap in the curve is the honest answer
        return np.nan


def evaluate_cell(trained: TrainedCell, splits: list[Split]) -> CellResult:
    cell, model = trained.cell, trained.model
    seeds = np.asarray(cell.seeds)
    ids = {"target": cell.target.label, "model": cell.model.label}
    status = np.where(trained.diverged, DIVERGED, OK)

    results = []
    for split in splits:
        with np.errstate(all="ignore"):  # diverged members predict NaN or inf
            metrics = error_metrics(split.y, model.predict(split.x))
        results.append(
            pd.DataFrame(
                {**ids, "seed": seeds, "split": split.name, "split_kind": split.kind, **metrics,
                 "status": status, "train_seconds": trained.seconds, "cell": cell.id}
            )
        )

    probes = pd.DataFrame(columns=["target", "model", "seed", "x", "y_true", "y_pred"])
    if cell.target.probes:
        points = np.asarray(cell.target.probes, dtype=np.float32)
        y_true = evaluate_target(cell.target, points.astype(np.float64))[:, 0]
        y_pred = predict_everywhere(model, points, len(seeds))
        probes = pd.DataFrame(
            [
                {**ids, "seed": seed, "x": points[i].astype(np.float64).tolist(), "y_true": y_true[i], "y_pred": y_pred[s, i]}
                for s, seed in enumerate(seeds)
                for i in range(len(points))
            ]
        )

    params = pd.DataFrame(
        [
            {**ids, "seed": seed, "parameter": name, "value": value}
            for seed, readable in zip(seeds, model.readable_parameters())
            for name, value in readable.items()
        ],
        columns=["target", "model", "seed", "parameter", "value"],
    )

    line = diagonal_line(cell.target.domain, cell.target.extrapolation.values(), LINE_POINTS)
    line_true = true_values_along(cell.target, line.points.astype(np.float32).astype(np.float64))
    line_pred = predict_everywhere(model, line.points.astype(np.float32), len(seeds))
    lines = pd.DataFrame(
        {**ids, "seed": np.repeat(seeds, len(line.position)), "position": np.tile(line.position, len(seeds)),
         "distance": np.tile(line.distance, len(seeds)), "y_true": np.tile(line_true, len(seeds)),
         "y_pred": line_pred.reshape(-1)}
    )

    epochs = trained.losses.shape[1]
    curves = pd.DataFrame(
        {**ids, "seed": np.repeat(seeds, epochs), "epoch": np.tile(np.arange(1, epochs + 1), len(seeds)),
         "loss": trained.losses.reshape(-1)}
    )
    return CellResult(pd.concat(results, ignore_index=True), probes, params, curves, lines)
