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
from dataclasses import asdict, dataclass
from importlib import metadata

import pandas as pd

from . import __version__
from .data import sample_splits
from .domains import diagonal_line
from .evaluate import evaluate_cell
from .plan import Cell, Plan, RunConfig
from .registry import Target
from .store import SCHEMA_VERSION, RunStore
from .train import train_cell


@dataclass(frozen=True)
class RunOutcome:
    tables: dict[str, pd.DataFrame]
    trained: int  # cells trained by this invocation
    reused: int  # cells found finished in the folder
    seconds: float


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
    store.write_json("run.json", run_metadata(plan, config, started, None))
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
        splits = sample_splits(target, first.seeds, first.samples, first.eval_samples)
        for cell in pending:
            store.write_cell(cell.id, evaluate_cell(train_cell(cell, splits), splits))
            trained += 1
            on_cell(cell, False)
    tables = store.consolidate(c.id for c in plan.cells)
    finished = dt.datetime.now(dt.timezone.utc)
    meta = run_metadata(plan, config, started, finished)
    per_seed = tables["results"].drop_duplicates(["target", "model", "seed"])
    meta["counts"] = {
        "cells": len(plan.cells),
        "cells_trained": trained,
        "cells_reused": reused,
        "seeds": config.seeds,
        "diverged_seeds": int((per_seed["status"] == "diverged").sum()),
    }
    store.write_json("run.json", meta)
    return RunOutcome(tables, trained, reused, time.perf_counter() - clock)


def run_metadata(plan: Plan, config: RunConfig, started: dt.datetime, finished: dt.datetime | None) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "funcbench_version": __version__,
        "config": asdict(config),
        "started": started.isoformat(),
        "finished": finished.isoformat() if finished else None,
        "duration_seconds": (finished - started).total_seconds() if finished else None,
        "targets": [describe_target(t) for t in plan.targets],
        "models": [
            {"label": m.label, "name": m.name, "params": dict(m.params), "description": m.description,
             "learning_rate": config.learning_rate or m.learning_rate}
            for m in plan.models
        ],
        "problems": plan.problems,
        "versions": _versions(),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "python": sys.version.split()[0],
        },
    }


def describe_target(target: Target) -> dict:
    """What a report needs to know about a target without importing its plugin."""
    solution = target.linear_solution
    line = diagonal_line(target.domain, target.extrapolation.values())
    return {
        "label": target.label,
        "name": target.name,
        "params": dict(target.params),
        "description": target.description,
        "inputs": list(target.inputs),
        "domain": target.domain.describe(),
        "extrapolation": {name: region.describe() for name, region in target.extrapolation.items()},
        "probes": [list(p) for p in target.probes],
        "linear_solution": None if solution is None else {"weights": list(solution.weights), "bias": solution.bias},
        "line": {"origin": line.origin.tolist(), "direction": line.direction.tolist(),
                 "from": float(line.position[0]), "to": float(line.position[-1])},
    }


def _versions() -> dict[str, str]:
    versions = {}
    for dist in ("funcbench", "torch", "numpy", "pandas", "pyarrow", "scikit-learn", "seaborn", "click"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions
