"""A run on disk: a folder of Parquet tables and a run.json, written crash-safe.

Layout of ``reports/<run-id>/`` (schema version 2):

- ``results.parquet``: target, model, seed, split, split_kind, mse, nmse, r2,
  mape_mean_pct, mape_median_pct, max_abs_error, accuracy_solution (r2 >
  0.999), initial_mse (before training), threshold (the success
  threshold, NaN where the target has none), status, kept_step,
  train_seconds, cell
- ``probes.parquet``: target, model, seed, x (list of floats), y_true, y_pred
- ``params.parquet``: target, model, seed, parameter, value (including
  ``sparsity_error`` for the arithmetic units)
- ``formulas.parquet``: target, model, seed, formula, exact
- ``curves.parquet``: target, model, seed, step, loss (mean training loss
  per epoch, or since the previous evaluation when training by steps)
- ``evaluations.parquet``: target, model, seed, step, split, mse: every
  split scored during training (step 0 is before the first step)
- ``linearity.parquet``: target, model, seed, linearity_mean_r2,
  linearity_median_r2: how straight the predictions run outside the
  training domain (`benchmark.evaluate.extrapolation_linearity`)
- ``lines.parquet``: target, model, seed, position, distance, y_true, y_pred:
  predictions along the diagonal through the training domain's centre
  (`benchmark.domains.diagonal_line`), for the report's prediction curves
- ``run.json``: configuration, targets and models, versions, machine, times
- ``cells/<cell-id>/``: the same tables for one cell; a cell folder
  appears in one rename once all of it is written, so a killed run leaves
  either a whole cell or none, and the next run skips what is there.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from .errors import FuncbenchError
from .evaluate import CellResult

SCHEMA_VERSION = 2
# mkstemp and mkdtemp create private files (0600, 0700); a run folder is
# meant to be shared and served like any other output, so apply the umask.
_UMASK = os.umask(0)
os.umask(_UMASK)
TABLES = ("results", "probes", "params", "formulas", "curves", "evaluations", "lines", "linearity")
PARTIAL = ".partial"


class RunStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.cells = self.root / "cells"

    @classmethod
    def open(cls, root: Path) -> RunStore:
        """Create (or reopen, to resume) a run folder, checking it is writable."""
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise FuncbenchError(f"output path '{root}' is a file; choose a folder with --out")
        try:
            (root / "cells").mkdir(parents=True, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=root, prefix=".write-test-", suffix=PARTIAL)
            probe.close()
        except OSError as exc:
            raise FuncbenchError(f"cannot write to '{root}': {exc.strerror}; choose another folder with --out") from None
        store = cls(root)
        # Left by a run killed mid-write: half-written cells and files.
        for stale in store.cells.glob(".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        for stale in root.glob(f".*{PARTIAL}"):
            stale.unlink(missing_ok=True)
        return store

    def has_cell(self, cell_id: str) -> bool:
        return (self.cells / cell_id).is_dir()

    def write_cell(self, cell_id: str, result: CellResult) -> None:
        final = self.cells / cell_id
        staging = Path(tempfile.mkdtemp(prefix=f".tmp-{cell_id}-", dir=self.cells))
        staging.chmod(0o777 & ~_UMASK)
        for table in TABLES:
            getattr(result, table).to_parquet(staging / f"{table}.parquet", index=False)
        if final.exists():  # recomputed with --force: the new result replaces the old
            shutil.rmtree(final)
        staging.rename(final)

    def read_cell(self, cell_id: str, table: str) -> pd.DataFrame:
        return pd.read_parquet(self.cells / cell_id / f"{table}.parquet")

    def consolidate(self, cell_ids: Iterable[str], known: Mapping[str, CellResult] | None = None) -> dict[str, pd.DataFrame]:
        """Gather the planned cells into the run-level tables and write them.

        Cells in `known` (those this process just wrote) are taken from memory
        instead of being read back.
        """
        cell_ids, known = list(cell_ids), known or {}
        tables = {}
        for table in TABLES:
            parts = [getattr(known[c], table) if c in known else self.read_cell(c, table) for c in cell_ids]
            parts = [p for p in parts if len(p)] or parts[:1]
            tables[table] = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
            atomic_write(self.root / f"{table}.parquet", lambda path, t=tables[table]: t.to_parquet(path, index=False))
        return tables

    def write_json(self, name: str, payload: dict) -> None:
        text = json.dumps(payload, indent=2, default=str) + "\n"
        atomic_write(self.root / name, lambda path: path.write_text(text))


def atomic_write(path: Path, write) -> None:
    """Call write(tmp) and rename tmp over `path`: readers never see half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=PARTIAL, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


#: run.json's config keys that decide which cells a run has, not what they hold.
GRID_SETTINGS = ("targets", "models", "suite", "plugins")


def differing_settings(a: dict, b: dict) -> list[str]:
    """What two runs' run.json differ in, the grid aside: settings and funcbench version, as 'epochs 5 -> 6'."""
    changed = [f"{key} {a['config'].get(key)!r} -> {b['config'].get(key)!r}"
               for key in sorted(set(a["config"]) | set(b["config"]))
               if key not in GRID_SETTINGS and a["config"].get(key) != b["config"].get(key)]
    if a.get("funcbench_version") != b.get("funcbench_version"):
        changed.append(f"funcbench {a.get('funcbench_version')} -> {b.get('funcbench_version')}")
    return changed


def read_run(root: Path) -> tuple[dict, dict[str, pd.DataFrame]]:
    """run.json and the tables of a finished run (given as its folder or its run.json), or a one-line error."""
    root = Path(root)
    if root.name == "run.json" and root.is_file():
        root = root.parent
    meta_path = root / "run.json"
    if not meta_path.is_file():
        raise FuncbenchError(f"'{root}' is not a funcbench run folder (no run.json)")
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("finished") is None:
            raise FuncbenchError(f"the run in '{root}' did not finish; run its `bench run` command again to resume it")
        tables = {t: pd.read_parquet(root / f"{t}.parquet") for t in TABLES}
    except (OSError, ValueError) as exc:
        raise FuncbenchError(f"run folder '{root}' is unreadable or corrupted: {exc}") from None
    if meta.get("schema_version") != SCHEMA_VERSION:
        raise FuncbenchError(
            f"run folder '{root}' has schema version {meta.get('schema_version')}, "
            f"this funcbench reads version {SCHEMA_VERSION}"
        )
    return meta, tables
