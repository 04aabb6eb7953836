"""Merging run folders made apart (on several machines, or a grid split by hand) into one run and report.

Cells are matched by their (target, model) pair. A pair found in several
runs must be the same cell there (the same id, which hashes everything that
decides its result), and every run must have used the same settings (seeds,
epochs, learning rate, ...: all but the choice of targets and models, and
the same funcbench version), so that the merged run.json describes every
cell; otherwise the merge stops with a message saying how they differ. The merged folder is a run folder like any
other: its cells, its tables, its run.json (which lists the runs it came
from) and its report.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .errors import FuncbenchError
from .evaluate import CellResult
from .store import (
    MODEL_FILE,
    TABLES,
    RunStore,
    differing_settings,
    read_run,
    run_counts,
)


@dataclass(frozen=True)
class _Run:
    folder: Path
    meta: dict
    tables: dict[str, pd.DataFrame]

    def cells(self) -> dict[tuple[str, str], str]:
        """The cell id of every (target, model) pair the run holds."""
        pairs = self.tables["results"][["target", "model", "cell"]].drop_duplicates()
        return {(t, m): c for t, m, c in pairs.itertuples(index=False)}


def merge_runs(folders: list[Path], out: Path) -> tuple[Path, dict, dict[str, pd.DataFrame]]:
    """Write the merged run of `folders` into `out`; return its folder, run.json and tables."""
    folders = [Path(f) for f in folders]
    if len(folders) < 2:
        raise FuncbenchError("bench merge needs at least two run folders")
    out = Path(out)
    if out.resolve() in {f.resolve() for f in folders}:
        raise FuncbenchError(f"--out '{out}' is one of the runs being merged; choose a new folder")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FuncbenchError(f"--out '{out}' exists and is not an empty folder; choose a new folder")
    runs = [_Run(folder, *read_run(folder)) for folder in folders]
    owner = _check_agreement(runs)
    store = RunStore.open(out)
    with store.locked():
        return _write_merged(runs, owner, store)


def _write_merged(runs: list[_Run], owner: dict[tuple[str, str], tuple[_Run, str]],
                  store: RunStore) -> tuple[Path, dict, dict[str, pd.DataFrame]]:
    results: dict[str, CellResult] = {}
    for (target, model), (run, cell_id) in owner.items():
        if cell_id in results:
            continue
        model_file = run.folder / "cells" / cell_id / MODEL_FILE
        results[cell_id] = CellResult(**{
            name: run.tables[name][(run.tables[name]["target"] == target) & (run.tables[name]["model"] == model)]
            .reset_index(drop=True)
            for name in TABLES
        }, model_state=model_file.read_bytes() if model_file.is_file() else None)
        store.write_cell(cell_id, results[cell_id])
    tables = store.consolidate(results, known=results)
    meta = _merged_meta(runs, tables)
    store.write_json("run.json", meta)
    return store.root, meta, tables


def _check_agreement(runs: list[_Run]) -> dict[tuple[str, str], tuple[_Run, str]]:
    """For every pair, the run that provides it and its cell id; refuse runs that disagree."""
    owner: dict[tuple[str, str], tuple[_Run, str]] = {}
    described: dict[str, tuple[_Run, dict]] = {}
    for run in runs:
        for target in run.meta["targets"]:
            first = described.setdefault(target["label"], (run, target))
            if first[1] != target:
                raise FuncbenchError(
                    f"runs '{first[0].folder}' and '{run.folder}' define target '{target['label']}' differently "
                    "(its domain, regions or parameters); merge runs of the same targets"
                )
        for pair, cell_id in run.cells().items():
            if pair not in owner:
                owner[pair] = (run, cell_id)
            elif owner[pair][1] != cell_id:
                other = owner[pair][0]
                raise FuncbenchError(
                    f"runs '{other.folder}' and '{run.folder}' both hold {pair[0]} x {pair[1]} but not as the same "
                    f"cell: {_difference(other.meta, run.meta)}; merge runs made with the same settings"
                )
    # The merged run.json states one set of settings, so every run must have used them.
    first = runs[0]
    for run in runs[1:]:
        difference = _difference(first.meta, run.meta, code=False)
        if difference:
            raise FuncbenchError(f"runs '{first.folder}' and '{run.folder}' were made with different settings "
                                 f"({difference}); merge runs made with the same settings")
    return owner


def _difference(a: dict, b: dict, code: bool = True) -> str:
    """The settings two runs differ in (the grid aside); with `code`, say so when they differ in none."""
    changed = differing_settings(a, b)
    if changed or not code:
        return ", ".join(changed)
    return "the same settings, so the target's or model's code differs between them"


def _merged_meta(runs: list[_Run], tables: dict[str, pd.DataFrame]) -> dict:
    first = runs[0].meta
    targets = list({t["label"]: t for run in runs for t in run.meta["targets"]}.values())
    models = list({m["label"]: m for run in runs for m in run.meta["models"]}.values())
    config = {**first["config"], "targets": ",".join(t["label"] for t in targets),
              "models": ",".join(m["label"] for m in models)}
    # Each run's `options` describe its own command; the merge was made by none, so they stay per run.
    return {
        **{key: value for key, value in first.items() if key != "options"},
        "config": config,
        "started": min(run.meta["started"] for run in runs),
        "finished": max(run.meta["finished"] for run in runs),
        # Compute time: the runs may have run at once on different machines.
        "duration_seconds": sum(run.meta["duration_seconds"] or 0 for run in runs),
        "targets": targets,
        "models": models,
        "cells": sorted(tables["results"]["cell"].unique().tolist()),
        "problems": [p for run in runs for p in run.meta.get("problems", [])],
        # A pair one run failed on and another trained is no failure of the merged run.
        "failed_cells": [c for run in runs for c in run.meta.get("failed_cells", [])
                         if not ((tables["results"]["target"] == c["target"])
                                 & (tables["results"]["model"] == c["model"])).any()],
        "execution": {"executor": "merge", "runs": len(runs)},
        "counts": run_counts(tables["results"], int(tables["results"]["cell"].nunique()), 0, 0, config["seeds"]),
        "merged_from": [
            {"folder": str(run.folder.resolve()), "config": run.meta["config"], "started": run.meta["started"],
             "finished": run.meta["finished"], "funcbench_version": run.meta.get("funcbench_version"),
             "machine": run.meta.get("machine"), "execution": run.meta.get("execution"),
             "options": run.meta.get("options")}
            for run in runs
        ],
    }
