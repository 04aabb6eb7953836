"""Running a plan: train and evaluate each cell, store it, then the run's files.

Cells of one target share their samples, drawn once. Finished cells already
in the run folder are skipped, so rerunning an interrupted command resumes it.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from importlib import metadata

import pandas as pd

from . import __version__
from .checks import INTERPOLATION, TargetError
from .data import sample_splits
from .errors import FuncbenchError, describe_exception
from .evaluate import DIVERGED, evaluate_cell
from .plan import Cell, Plan, RunConfig
from .statistics import success_thresholds
from .store import SCHEMA_VERSION, RunStore
from .train import train_cell


@dataclass(frozen=True)
class RunOutcome:
    tables: dict[str, pd.DataFrame]
    trained: int  # cells trained by this invocation
    reused: int  # cells found finished in the folder
    seconds: float
    problems: list[str]  # targets that failed while being sampled, and were skipped


def execute(
    plan: Plan,
    config: RunConfig,
    store: RunStore,
    *,
    force: bool = False,
    on_cell: Callable[[Cell, bool], None] = lambda cell, reused: None,
) -> RunOutcome:
    """Train every pending cell of `plan` into `store`; return the run's tables."""
    started = dt.datetime.now(dt.timezone.utc)
    clock = time.perf_counter()
    trained = reused = 0
    problems: list[str] = []
    store.write_json("run.json", run_metadata(plan, config, started, None, problems))
    for target in plan.targets:
        cells = [c for c in plan.cells if c.target is target]
        pending = [c for c in cells if force or not store.has_cell(c.id)]
        for cell in cells:
            if cell not in pending:
                reused += 1
                on_cell(cell, True)
        if not pending:
            continue
        first = pending[0]
        try:
            splits = sample_splits(target, first.seeds, first.samples, first.eval_samples, validation=first.settings.by_steps)
            thresholds = success_thresholds(target, first.seeds, {INTERPOLATION: target.domain, **target.extrapolation})
        except Exception as exc:  # noqa: BLE001 - the target's own code failed on a sample its checks did not draw
            problems.append(
                f"{target.origin}: target '{target.label}' failed while its data was drawn: "
                f"{describe_exception(exc)}; it is skipped"
            )
            continue
        for cell in pending:
            try:
                trained_cell = train_cell(cell, splits)
            except TargetError as exc:  # a fresh batch hit a point where the target is not finite
                problems.append(f"{target.origin}: target '{target.label}' failed while training: {exc}; its remaining cells are skipped")
                break
            store.write_cell(cell.id, evaluate_cell(trained_cell, splits, thresholds))
            trained += 1
            on_cell(cell, False)
    finished_cells = [c for c in plan.cells if store.has_cell(c.id)]
    if not finished_cells:
        raise FuncbenchError("no target could be run: " + problems[-1])
    tables = store.consolidate(c.id for c in finished_cells)
    # A target skipped while its data was drawn is in the problems, not the report.
    ran = replace(plan, targets=[t for t in plan.targets if any(c.target is t for c in finished_cells)])
    finished = dt.datetime.now(dt.timezone.utc)
    meta = run_metadata(ran, config, started, finished, problems)
    per_seed = tables["results"].drop_duplicates(["target", "model", "seed"])
    meta["counts"] = {
        "cells": len(finished_cells),
        "cells_trained": trained,
        "cells_reused": reused,
        "seeds": config.seeds,
        "diverged_seeds": int((per_seed["status"] == DIVERGED).sum()),
    }
    store.write_json("run.json", meta)
    return RunOutcome(tables, trained, reused, time.perf_counter() - clock, problems)


def run_metadata(
    plan: Plan, config: RunConfig, started: dt.datetime, finished: dt.datetime | None, problems: list[str]
) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "funcbench_version": __version__,
        "config": asdict(config),
        "started": started.isoformat(),
        "finished": finished.isoformat() if finished else None,
        "duration_seconds": (finished - started).total_seconds() if finished else None,
        "targets": [t.describe() for t in plan.targets],
        "models": [
            {"label": c.model.label, "name": c.model.name, "params": dict(c.model.params),
             "description": c.model.description, "learning_rate": c.settings.learning_rate}
            for c in plan.cells[: len(plan.models)]  # the first target's cells: one per model
        ],
        "problems": plan.problems + problems,
        "versions": _versions(),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "python": sys.version.split()[0],
        },
    }


def _versions() -> dict[str, str]:
    versions = {}
    for dist in ("funcbench", "torch", "numpy", "pandas", "pyarrow", "scikit-learn", "seaborn", "click"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions
