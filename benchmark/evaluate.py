"""Scoring a trained cell: error per seed and split, probes, readable parameters.

nmse is the MSE divided by the variance of the target on the same split, so
that 1.0 means "no better than predicting the split's mean" whatever the
target's scale; a split on which the target is constant has no nmse (NaN).
initial_mse is the same split's MSE before training, from which the
statistics compute the NALU paper's score.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .checks import evaluate_target
from .data import Split
from .domains import diagonal_line, reach
from .errors import ModelError, describe_exception
from .formula import is_exact, symbolic_solution
from .train import TrainedCell

log = logging.getLogger(__name__)

#: Points along each target's diagonal line (see `domains.diagonal_line`).
LINE_POINTS = 512
#: Points per split on which a learned formula is compared with the target.
FORMULA_CHECK_POINTS = 256
#: Random directions, and points along each, of the extrapolation-linearity measurement.
LINEARITY_DIRECTIONS = 64
LINEARITY_POINTS = 32

OK = "ok"
DIVERGED = "diverged"
#: A seed its family could not train (`TrainedCell.failures`): left out of every median, like a diverged one.
FAILED = "failed"


@dataclass(frozen=True, eq=False)
class CellResult:
    """A cell's tidy tables, one row per measurement (see the README's schema)."""

    results: pd.DataFrame
    probes: pd.DataFrame
    params: pd.DataFrame
    curves: pd.DataFrame
    lines: pd.DataFrame
    evaluations: pd.DataFrame
    formulas: pd.DataFrame
    linearity: pd.DataFrame
    #: The trained members, as the family's `state()` gives them (`benchmark.model.Model`): None where the
    #: family cannot save them, or for a cell read back from its folder, whose model stays on disk.
    model_state: bytes | None = None


#: R^2 above which a fit is an "accuracy solution" (SRBench's criterion).
ACCURACY_SOLUTION_R2 = 0.999


def error_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, np.ndarray]:
    """Error metrics along the last two axes (the samples of a split).

    - mse; nmse = mse / variance of the target on the split;
    - r2 = 1 - nmse, the coefficient of determination (scikit-learn's r2_score);
    - mape_mean_pct = 100 x mean(|error| / |y|), |y| floored at float64's
      epsilon as in scikit-learn's mean_absolute_percentage_error;
      mape_median_pct = 100 x the median of the same ratios (Xu et al.'s MAPE);
    - max_abs_error; accuracy_solution: r2 above 0.999.
    """
    error = y_pred - y_true
    abs_error = np.abs(error)
    mse = np.mean(error**2, axis=(-2, -1))
    variance = np.var(y_true, axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        nmse = np.where(variance > 0, mse / np.where(variance > 0, variance, 1), np.nan)
        relative = abs_error / np.maximum(np.abs(y_true), np.finfo(np.float64).eps)
    r2 = 1 - nmse
    return {
        "mse": mse, "nmse": nmse, "r2": r2,
        "mape_mean_pct": 100 * np.mean(relative, axis=(-2, -1)),
        "mape_median_pct": 100 * np.median(relative, axis=(-2, -1)),
        "max_abs_error": np.max(abs_error, axis=(-2, -1)),
        "accuracy_solution": r2 > ACCURACY_SOLUTION_R2,
    }


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


def evaluate_cell(trained: TrainedCell, splits: list[Split], thresholds: pd.DataFrame | None = None,
                  keep_model: bool = True) -> CellResult:
    """Score a trained cell. `thresholds` (seed, split, threshold) are the success thresholds, if the target has them;
    with `keep_model`, the result carries the trained members too, where the family can save them."""
    cell, model, log = trained.cell, trained.model, trained.log
    seeds = np.asarray(cell.seeds)
    ids = {"target": cell.target.label, "model": cell.model.label}
    failures = trained.failures or (None,) * len(seeds)
    failed = np.array([reason is not None for reason in failures], dtype=bool)
    status = np.where(failed, FAILED, np.where(trained.diverged, DIVERGED, OK))
    error = [reason or "" for reason in failures]

    results = []
    for split in splits:
        with np.errstate(all="ignore"):  # diverged members predict NaN or inf
            metrics = error_metrics(split.y, model.predict(split.x))
            initial = log.monitored.get(split.name, np.full((len(seeds), 1), np.nan))[:, 0]
        threshold = np.full(len(seeds), np.nan)
        if thresholds is not None:
            known = thresholds[thresholds["split"] == split.name].set_index("seed")["threshold"]
            threshold = known.reindex(seeds).to_numpy(dtype=np.float64)
        results.append(
            pd.DataFrame(
                {**ids, "seed": seeds, "split": split.name, "split_kind": split.kind, **metrics,
                 "initial_mse": initial, "threshold": threshold,
                 "status": status, "error": error, "kept_step": log.kept_step, "train_seconds": trained.seconds,
                 "cell": cell.id}
            )
        )

    probes = pd.DataFrame(columns=["target", "model", "seed", "x", "y_true", "y_pred"])
    if cell.target.probes:
        points = np.asarray(cell.target.probes, dtype=np.float32)
        y_true = np.stack([evaluate_target(cell.target.at_seed(s), points.astype(np.float64))[:, 0] for s in seeds])
        y_pred = predict_everywhere(model, points, len(seeds))
        probes = pd.DataFrame(
            [
                {**ids, "seed": seed, "x": points[i].astype(np.float64).tolist(), "y_true": y_true[s, i], "y_pred": y_pred[s, i]}
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
    line_points = line.points.astype(np.float32).astype(np.float64)
    # Computed once where the target is the same for every seed.
    per_seed = [cell.target] if cell.target.seeded is None else [cell.target.at_seed(s) for s in seeds]
    line_true = np.broadcast_to(np.stack([true_values_along(t, line_points) for t in per_seed]), (len(seeds), len(line_points)))
    line_pred = predict_everywhere(model, line.points.astype(np.float32), len(seeds))
    lines = pd.DataFrame(
        {**ids, "seed": np.repeat(seeds, len(line.position)), "position": np.tile(line.position, len(seeds)),
         "distance": np.tile(line.distance, len(seeds)), "y_true": line_true.reshape(-1),
         "y_pred": line_pred.reshape(-1)}
    )

    curves = pd.DataFrame(
        {**ids, "seed": np.repeat(seeds, len(log.loss_steps)), "step": np.tile(log.loss_steps, len(seeds)),
         "loss": log.loss.reshape(-1), **{f"reg_{name}": term.reshape(-1) for name, term in log.regularizer.items()}}
    )
    evaluations = pd.concat(
        [
            pd.DataFrame({**ids, "seed": np.repeat(seeds, len(log.steps)), "step": np.tile(log.steps, len(seeds)),
                          "split": name, "mse": mse.reshape(-1)})
            for name, mse in log.monitored.items()
        ],
        ignore_index=True,
    )
    linearity = pd.DataFrame({**ids, "seed": seeds, **extrapolation_linearity(model, cell.target, len(seeds))})
    state = _saved(model) if keep_model else None
    return CellResult(pd.concat(results, ignore_index=True), probes, params, curves, lines, evaluations,
                      formula_table(ids, cell, model, splits), linearity, state)


def _saved(model) -> bytes | None:
    """The members as the family saves them (`Model.state`), None where it cannot; its failure is the family's."""
    save = getattr(model, "state", None)
    if not callable(save):
        return None
    try:
        return save()
    except Exception as exc:  # noqa: BLE001 - a plugin's model may raise anything
        raise ModelError(f"its state() raised {describe_exception(exc)}") from exc


def extrapolation_linearity(model, target, seeds: int) -> dict[str, np.ndarray]:
    """How straight each member's predictions run outside the training domain (Xu et al.).

    Along LINEARITY_DIRECTIONS random directions from the domain's centre,
    LINEARITY_POINTS points run from where the ray leaves the training domain
    out to where it leaves the last of the target's extrapolation regions (at
    least twice as far as it left the domain); a line is
    fitted to the predictions along each, and its R^2 kept. Returns per seed
    the mean and median R^2 over directions. Predictions that do not vary
    along a ray are a line of slope 0: R^2 1. The directions depend only on
    the target, so every model is measured along the same rays.
    """
    domain = target.domain
    centre = np.asarray(domain.centre)
    rng = np.random.default_rng([zlib.crc32(target.label.encode()), zlib.crc32(b"linearity")])
    directions = rng.standard_normal((LINEARITY_DIRECTIONS, domain.dim))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    if getattr(domain, "orthant", False):  # an orthant of a ball, its regions too: rays into that orthant only
        directions = np.abs(directions)
    leave = domain.exit_distance(directions)
    far = np.max([reach(region, centre, directions) for region in target.extrapolation.values()], axis=0)
    steps = np.linspace(0, 1, LINEARITY_POINTS)
    distance = leave[:, None] + (np.maximum(far, 2 * leave)[:, None] - leave[:, None]) * steps  # (directions, points)
    points = centre + distance[:, :, None] * directions[:, None, :]
    predicted = predict_everywhere(model, points.reshape(-1, domain.dim).astype(np.float32), seeds)
    predicted = predicted.reshape(seeds, LINEARITY_DIRECTIONS, LINEARITY_POINTS)
    r2 = _line_r2(distance[None], predicted)
    # Rays where a member predicts non-finite values are left out; a member
    # with none left (a diverged seed) gets NaN, without numpy's warning.
    finite = [row[np.isfinite(row)] for row in r2]
    return {"linearity_mean_r2": np.array([row.mean() if row.size else np.nan for row in finite]),
            "linearity_median_r2": np.array([np.median(row) if row.size else np.nan for row in finite])}


def _line_r2(t: np.ndarray, y: np.ndarray) -> np.ndarray:
    """R^2 of the least-squares line through (t, y) along the last axis; 1 where y is constant, NaN where not finite."""
    with np.errstate(all="ignore"):
        t_centred = t - t.mean(axis=-1, keepdims=True)
        y_centred = y - y.mean(axis=-1, keepdims=True)
        covariance = (t_centred * y_centred).sum(axis=-1)
        spread_t, spread_y = (t_centred**2).sum(axis=-1), (y_centred**2).sum(axis=-1)
        r2 = covariance**2 / (spread_t * spread_y)
        flat = spread_y <= 1e-12 * np.maximum(np.abs(y).max(axis=-1) ** 2, 1e-300) * y.shape[-1]
    return np.where(~np.isfinite(y).all(axis=-1), np.nan, np.where(flat, 1.0, r2))


FORMULA_COLUMNS = ["target", "model", "seed", "formula", "exact", "symbolic_solution"]


def formula_table(ids: dict, cell, model, splits: list[Split]) -> pd.DataFrame:
    """Per seed: the learned formula, and whether it is the target, checked two ways.

    `exact`: the formula as printed reproduces the target on every split
    (numerically, `formula.is_exact`). `symbolic_solution`: where the target
    is given as a formula, the two are the same expression once their
    constants are rounded (sympy; SRBench's criterion, `formula.symbolic_solution`);
    missing where the target is not a formula, or where sympy fails on the formula.
    """
    rows = []
    target = cell.target
    for s, (seed, expression) in enumerate(zip(cell.seeds, model.formulas())):
        if expression is None:
            continue
        x = np.concatenate([split.x[s, :FORMULA_CHECK_POINTS] for split in splits]).astype(np.float64)
        y = np.concatenate([split.y[s, :FORMULA_CHECK_POINTS] for split in splits])
        symbolic = pd.NA
        if target.expression:
            try:
                symbolic = symbolic_solution(expression, target.expression, target.inputs, x)
            except Exception:  # noqa: BLE001 - sympy failing on one formula leaves it undecided, not the cell failed
                log.debug(f"sympy could not compare seed {seed}'s formula of {ids['model']} with {target.label}")
        rows.append({**ids, "seed": seed, "formula": expression.formula(target.inputs),
                     "exact": is_exact(expression, y, x), "symbolic_solution": symbolic})
    table = pd.DataFrame(rows, columns=FORMULA_COLUMNS)
    return table.astype({"exact": bool, "symbolic_solution": "boolean"})
