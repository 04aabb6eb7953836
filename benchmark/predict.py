"""Asking a run's trained models for new points, without retraining.

A finished cell keeps its members in ``cells/<cell-id>/model.bin``
(`benchmark.store`). To answer, the run's plan is built again from its
run.json, exactly as a repeat of the run would build it; the cell found
there must have the stored cell's id. An id hashes the target's and the
model's code, the settings and the libraries (`benchmark.plan.Cell.id`), so
a model trained by other code than what is installed now is refused rather
than run on code it was not trained with.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import FuncbenchError, unknown_name
from .evaluate import predict_everywhere, true_values_along
from .plan import Cell, build_plan
from .plugins import add_objects, load_registry
from .store import MODEL_FILE


def predict(run_dir: str | Path | Any, target: str, model: str, x: Any, objects: Sequence[Any] = ()) -> pd.DataFrame:
    """Every seed's prediction at points `x` ((n, d), or one point of d numbers) of the run's `model` trained on
    `target` (labels as the run has them): columns target, model, seed, one per input, y_pred, y_true (the
    target's value there; NaN where it is undefined). `objects` are entries defined in the caller's session
    that the run used (`benchmark.run`'s `plugins`). `run_dir` may be the run already open, a `Run`, whose
    run.json and results are then not read again."""
    from .runs import Run

    run = run_dir if isinstance(run_dir, Run) else Run.open(run_dir, objects)
    cell = _cell(run, target, model, objects)
    points = _points(x, cell)
    folder = run.path / "cells" / cell.id
    ensemble = cell.model.build(cell.target.inputs, cell.seeds, "cpu")
    if not (folder / MODEL_FILE).is_file() or not hasattr(ensemble, "load_state"):
        raise FuncbenchError(f"cell {target} x {model} of '{run.path}' kept no trained model (run with "
                             "--no-keep-models, made before funcbench 0.7, or of a family that cannot save one); "
                             "run it again with --force to keep it")
    _load(ensemble, folder / MODEL_FILE, cell)
    # float32 inputs, as every split was scored: the answer at a probe point is the stored probe's.
    predicted = predict_everywhere(ensemble, points.astype(np.float32), len(cell.seeds))
    exact = points.astype(np.float32).astype(np.float64)
    rows = []
    for s, seed in enumerate(cell.seeds):
        truth = true_values_along(cell.target if cell.target.seeded is None else cell.target.at_seed(seed), exact)
        rows.append(pd.DataFrame({"target": target, "model": model, "seed": seed,
                                  **{name: points[:, i] for i, name in enumerate(cell.target.inputs)},
                                  "y_pred": predicted[s], "y_true": truth}))
    return pd.concat(rows, ignore_index=True)


def _cell(run, target: str, model: str, objects: Sequence[Any]) -> Cell:
    """The run's cell for (target, model), as the code installed now builds it, checked against the stored one."""
    pairs = run.results[["target", "model", "cell"]].drop_duplicates() if len(run.results) else None
    labels = {t["label"] for t in run.meta["targets"]}
    models = {m["label"] for m in run.meta["models"]}
    if target not in labels:
        raise unknown_name("target in this run", target, labels)
    if model not in models:
        raise unknown_name("model in this run", model, models)
    stored = None if pairs is None else pairs[(pairs["target"] == target) & (pairs["model"] == model)]
    if stored is None or stored.empty:
        raise FuncbenchError(f"cell {target} x {model} has not finished in '{run.path}'; run its `bench run` "
                             "command again to train it")
    registry = load_registry(run.config.plugins)
    add_objects(registry, objects)
    try:
        plan = build_plan(registry, run.config)
    except FuncbenchError as exc:
        raise FuncbenchError(f"the run in '{run.path}' cannot be planned again here ({exc}); a target or model "
                             "defined in a notebook must be given again, as load(path, plugins=[...])") from None
    cell = next((c for c in plan.cells if c.target.label == target and c.model.label == model), None)
    stored_id = stored["cell"].iloc[0]
    if cell is None or cell.id != stored_id:
        now = f", now {cell.id}" if cell is not None else ""
        raise FuncbenchError(f"refused: the stored model of {target} x {model} was trained by other code (cell "
                             f"{stored_id}{now}: the target's or model's code, the settings or the libraries "
                             "changed); run the run again to retrain it")
    return cell


def _load(ensemble, path: Path, cell: Cell) -> None:
    """Put the stored members into the freshly built `ensemble`, or say in one line why they cannot be."""
    try:
        ensemble.load_state(path.read_bytes())
    except Exception as exc:  # noqa: BLE001 - torch, skops and zipfile each say a damaged file their own way
        text = str(exc).strip()
        # Its first sentence: torch goes on for several about what a corrupted checkpoint may mean.
        reason = text.splitlines()[0].split(". ")[0].rstrip(".") if text else type(exc).__name__
        raise FuncbenchError(f"the stored model of {cell.target.label} x {cell.model.label} ('{path}') does not "
                             f"load: {reason}; run it again with --force to retrain it") from None


def _points(x: Any, cell: Cell) -> np.ndarray:
    """`x` as finite float64 points (n, d) for the cell's target, or a one-line error saying what is wrong."""
    try:
        points = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise FuncbenchError(f"points must be numbers, (n, {cell.target.dim}) of them; got {x!r}") from None
    if points.ndim == 1:
        points = points.reshape(1, -1)
    inputs = ", ".join(cell.target.inputs)
    if points.ndim != 2 or points.shape[1] != cell.target.dim or not len(points):
        raise FuncbenchError(f"{cell.target.label} takes {cell.target.dim} input(s) ({inputs}) per point, "
                             f"got points of shape {points.shape}")
    if not np.isfinite(points).all():
        raise FuncbenchError("points must be finite numbers; some are NaN or infinite")
    return points
