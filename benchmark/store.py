"""A run on disk: a folder of Parquet tables and a run.json, written crash-safe.

Layout of ``reports/<run-id>/`` (schema version 2):

- ``results.parquet``: target, model, seed, split, split_kind, mse, nmse, r2,
  mape_mean_pct, mape_median_pct, max_abs_error, accuracy_solution (r2 >
  0.999), initial_mse (before training), threshold (the success
  threshold, NaN where the target has none), status (ok, diverged or
  failed), error (why a failed seed failed; empty otherwise), kept_step,
  train_seconds, cell
- ``probes.parquet``: target, model, seed, x (list of floats), y_true, y_pred
- ``params.parquet``: target, model, seed, parameter, value (including
  ``sparsity_error`` for the arithmetic units)
- ``formulas.parquet``: target, model, seed, formula, exact, symbolic_solution (empty where the
  target is not a formula)
- ``curves.parquet``: target, model, seed, step, loss (mean training loss
  per epoch, or since the previous evaluation when training by steps), and
  ``reg_<name>`` for each regulariser term of a model that has them (its
  mean over the same steps, before the strength weights it)
- ``evaluations.parquet``: target, model, seed, step, split, mse: every
  split scored during training (step 0 is before the first step)
- ``linearity.parquet``: target, model, seed, linearity_mean_r2,
  linearity_median_r2: how straight the predictions run outside the
  training domain (`benchmark.evaluate.extrapolation_linearity`)
- ``lines.parquet``: target, model, seed, position, distance, y_true, y_pred:
  predictions along the diagonal through the training domain's centre
  (`benchmark.domains.diagonal_line`), for the report's prediction curves
- ``run.json``: configuration, targets and models, versions, machine, times
- ``cells/<cell-id>/``: the same tables for one cell, and ``model.bin``,
  its trained members (every seed's), which `benchmark.predict` asks for
  new points: for a torch family its stacked ``state_dict`` as `torch.save`
  writes it (read back with ``weights_only``, so loading runs no code), for
  a scikit-learn family its estimators in skops' format, a deflated zip
  (no pickle; only scikit-learn's, numpy's and scipy's types are built; a
  Gaussian process is kept without its Cholesky factor, n x n floats a
  seed, which loading computes again; the README's *The run folder*
  gives their sizes). A cell folder appears in one
  rename once all of it is written, so a killed run leaves either a whole
  cell or none, and the next run skips what is there.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import pandas as pd

from .config import HEADLINES
from .errors import FuncbenchError, one_line_write_failures
from .evaluate import DIVERGED, FAILED, CellResult

SCHEMA_VERSION = 2
# mkstemp and mkdtemp create private files (0600, 0700); a run folder is
# meant to be shared and served like any other output, so apply the umask.
_UMASK = os.umask(0)
os.umask(_UMASK)
TABLES = ("results", "probes", "params", "formulas", "curves", "evaluations", "lines", "linearity")
#: Columns added to a table after its schema version began, with what a table written before them holds
#: there: no seed of theirs failed, and no formula was checked symbolically.
ADDED_COLUMNS = {"results": {"error": ""}, "formulas": {"symbolic_solution": None}}


def read_table(path: Path, name: str) -> pd.DataFrame:
    """A Parquet table of a run or cell, with any column added since it was written (`ADDED_COLUMNS`)."""
    table = pd.read_parquet(path)
    for column, value in ADDED_COLUMNS.get(name, {}).items():
        if column not in table:
            table[column] = pd.array([value] * len(table), dtype="boolean" if value is None else object)
    return table
#: A cell's trained members, as its family saves them (`benchmark.model.Model.state`).
MODEL_FILE = "model.bin"
PARTIAL = ".partial"
#: The file every command that writes into a run folder holds locked while it does.
LOCK = ".lock"
#: Staging folders: a cell being written, a report being drawn.
STAGING = (".tmp-", ".report-")


class IncompleteCell(Exception):
    """A cell folder that does not read back whole (a table missing, truncated or unreadable)."""


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
        return cls(root)

    @contextlib.contextmanager
    def locked(self) -> Iterator[RunStore]:
        """Hold the run folder for this command: a second command on the same folder is refused in one line.

        The lock is the operating system's (filelock's flock), so it goes
        with its process, however that ends: a killed run never leaves the
        folder locked. Under it, what a killed command left half-written is
        cleared, since no one else can be writing it.
        """
        from filelock import FileLock, Timeout

        lock = FileLock(self.root / LOCK, timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise FuncbenchError(
                f"run folder '{self.root}' is in use by another bench command; "
                "wait for it to finish, or choose another --run-id or --out"
            ) from None
        try:
            self._clear_staging()
            yield self
        finally:
            lock.release()

    def _clear_staging(self) -> None:
        for folder in (self.cells, self.root):
            for stale in folder.glob(".*"):
                if stale.name.startswith(STAGING) and stale.is_dir():
                    shutil.rmtree(stale, ignore_errors=True)
        for stale in self.root.glob(f".*{PARTIAL}"):
            stale.unlink(missing_ok=True)

    def claim(self, config: Mapping, replace: bool) -> None:
        """Make sure the folder holds this configuration's run, or none: never another run, silently replaced.

        A folder whose run.json records another configuration is refused in
        one line naming the settings that differ, unless `replace`, which
        empties it first.
        """
        meta_path = self.root / "run.json"
        others = [p.name for p in self.root.iterdir() if p.name not in ("cells", LOCK) and not p.name.startswith(".")]
        if replace:
            self._empty()
            return
        if not meta_path.exists():
            if others:
                raise FuncbenchError(f"'{self.root}' is not empty and holds no funcbench run (no run.json); "
                                     "choose another --run-id or --out")
            return
        try:  # only its configuration matters here: a run.json damaged elsewhere is rewritten by this run
            recorded = json.loads(meta_path.read_text(encoding="utf-8"))["config"]
            if not isinstance(recorded, dict):
                raise TypeError
        except (OSError, ValueError, KeyError, TypeError):
            raise FuncbenchError(f"'{meta_path}' is unreadable, so the run in '{self.root}' cannot be resumed; "
                                 "give --replace to start it again there, or choose another --run-id") from None
        changed = changed_settings(recorded, dict(config))
        if changed:
            raise FuncbenchError(f"run folder '{self.root}' holds another run ({'; '.join(changed)}); "
                                 "choose another --run-id, or give --replace to replace it")

    def _empty(self) -> None:
        for path in self.root.iterdir():
            if path.name == LOCK:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        self.cells.mkdir()

    def has_cell(self, cell_id: str) -> bool:
        return (self.cells / cell_id).is_dir()

    def write_cell(self, cell_id: str, result: CellResult) -> None:
        final = self.cells / cell_id
        with self._writing(self.cells):
            staging = Path(tempfile.mkdtemp(prefix=f".tmp-{cell_id}-", dir=self.cells))
            try:
                staging.chmod(0o777 & ~_UMASK)
                for table in TABLES:
                    getattr(result, table).to_parquet(staging / f"{table}.parquet", index=False)
                if result.model_state is not None:
                    (staging / MODEL_FILE).write_bytes(result.model_state)
                if final.exists():  # recomputed with --force: the new result replaces the old
                    shutil.rmtree(final)
                staging.rename(final)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise

    def read_cell(self, cell_id: str) -> CellResult:
        """A finished cell's tables, or IncompleteCell saying what is wrong with it."""
        folder = self.cells / cell_id
        tables = {}
        for table in TABLES:
            path = folder / f"{table}.parquet"
            if not path.is_file():
                raise IncompleteCell(f"{path.name} is missing")
            try:
                tables[table] = read_table(path, table)
            except Exception as exc:  # noqa: BLE001 - pyarrow has many ways to say a file is damaged
                raise IncompleteCell(f"{path.name} is unreadable ({type(exc).__name__}: "
                                     f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})") from None
        return CellResult(**tables)

    def consolidate(self, cell_ids: Iterable[str], known: Mapping[str, CellResult]) -> dict[str, pd.DataFrame]:
        """Gather the cells (`known`: their tables, by id) into the run-level tables and write them."""
        cell_ids, tables = list(cell_ids), {}
        for table in TABLES:
            parts = [getattr(known[c], table) for c in cell_ids]
            parts = [p for p in parts if len(p)] or parts[:1]
            tables[table] = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
            with self._writing(self.root):
                atomic_write(self.root / f"{table}.parquet", lambda path, t=tables[table]: t.to_parquet(path, index=False))
        return tables

    def write_json(self, name: str, payload: dict) -> None:
        text = json.dumps(payload, indent=2, default=str) + "\n"
        with self._writing(self.root):
            atomic_write(self.root / name, lambda path: path.write_text(text))

    def _writing(self, where: Path):
        """A full disk or a folder that cannot be written is one line, saying that finished cells are kept."""
        return one_line_write_failures(where, f"finished cells are saved in {self.root}; "
                                       "free some space and run the same command again to resume")


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


def changed_settings(a: Mapping, b: Mapping, skip: Iterable[str] = ()) -> list[str]:
    """The keys two configurations differ in, as 'epochs 5 -> 6'."""
    skip = set(skip)
    return [f"{key} {a.get(key)!r} -> {b.get(key)!r}" for key in sorted(set(a) | set(b))
            if key not in skip and _comparable(a.get(key)) != _comparable(b.get(key))]


def _comparable(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value  # run.json stores tuples as lists


def differing_settings(a: dict, b: dict) -> list[str]:
    """What two runs' run.json differ in, the grid aside: settings and funcbench version, as 'epochs 5 -> 6'."""
    changed = changed_settings(a["config"], b["config"], skip=GRID_SETTINGS)
    if a.get("funcbench_version") != b.get("funcbench_version"):
        changed.append(f"funcbench {a.get('funcbench_version')} -> {b.get('funcbench_version')}")
    return changed


def read_meta(root: Path, finished: bool = True) -> dict:
    """A run folder's run.json, checked against its schema (`RUN_JSON`); with `finished`, only a finished run's."""
    meta_path = Path(root) / "run.json"
    if not meta_path.is_file():
        raise FuncbenchError(f"'{root}' is not a funcbench run folder (no run.json)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FuncbenchError(f"'{meta_path}' is unreadable or corrupted: {exc}") from None
    if isinstance(meta, dict) and meta.get("schema_version") != SCHEMA_VERSION:
        raise FuncbenchError(
            f"run folder '{root}' has schema version {meta.get('schema_version')}, "
            f"this funcbench reads version {SCHEMA_VERSION}"
        )
    _check_schema(meta, meta_path)
    if finished and meta.get("finished") is None:
        raise FuncbenchError(f"the run in '{root}' did not finish; run its `bench run` command again to resume it")
    return meta


def read_run(root: Path) -> tuple[dict, dict[str, pd.DataFrame]]:
    """run.json and the tables of a finished run (given as its folder or its run.json), or a one-line error."""
    root = Path(root)
    if root.name == "run.json" and root.is_file():
        root = root.parent
    meta = read_meta(root)
    try:
        tables = {t: read_table(root / f"{t}.parquet", t) for t in TABLES}
    except Exception as exc:  # noqa: BLE001 - a missing, truncated or foreign file, as pyarrow says it
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FuncbenchError(f"run folder '{root}' has an unreadable or corrupted table ({reason}); "
                             "run its `bench run` command again to rebuild it from its cells") from None
    missing = sorted(set(tables["results"]["target"]) - {t["label"] for t in meta["targets"]})
    if missing:
        raise FuncbenchError(f"'{root / 'run.json'}' does not describe target(s) {', '.join(missing)} that its "
                             "results hold; run its `bench run` command again to rewrite it")
    return meta, tables


#: What the report and the other readers take from run.json (JSON Schema): checked on reading, so that a
#: hand-edited file is one line naming what is wrong, never a KeyError deep in the report.
RUN_JSON = {
    "type": "object",
    "required": ["schema_version", "funcbench_version", "config", "started", "finished", "targets", "models",
                 "problems"],
    "properties": {
        "config": {"type": "object", "required": ["targets", "models", "seeds"],
                   "properties": {"seeds": {"type": "integer", "minimum": 1}}},
        "started": {"type": "string"},
        "finished": {"type": ["string", "null"]},
        "duration_seconds": {"type": ["number", "null"]},
        "problems": {"type": "array", "items": {"type": "string"}},
        "targets": {"type": "array", "items": {
            "type": "object",
            "required": ["label", "name", "params", "description", "inputs", "domain", "extrapolation",
                         "probes", "linear_solution", "line"],
            "properties": {
                "label": {"type": "string"}, "name": {"type": "string"}, "params": {"type": "object"},
                "description": {"type": "string"}, "inputs": {"type": "array", "items": {"type": "string"}},
                "domain": {"type": "string"}, "extrapolation": {"type": "object",
                                                                "additionalProperties": {"type": "string"}},
                "probes": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
                "linear_solution": {"oneOf": [{"type": "null"}, {
                    "type": "object", "required": ["weights", "bias"],
                    "properties": {"weights": {"type": "array", "items": {"type": "number"}},
                                   "bias": {"type": "number"}}}]},
                "line": {"type": "object", "required": ["origin", "direction", "from", "to"]},
            }}},
        "models": {"type": "array", "items": {"type": "object", "required": ["label"],
                                              "properties": {"label": {"type": "string"}}}},
        "counts": {"type": "object"},
        "machine": {"type": "object"},
        "versions": {"type": "object"},
        "failed_cells": {"type": "array", "items": {"type": "object", "required": ["target", "model", "error"]}},
        "headline": {"type": "object", "required": ["section", "reference_model"],
                     "properties": {"section": {"enum": list(HEADLINES)},
                                    "reference_model": {"type": ["string", "null"]}}},
        "reference": {"type": "object", "required": ["source", "rows", "differences"],
                      "properties": {"source": {"type": "string"},
                                     "rows": {"type": "array", "items": {"type": "object"}},
                                     "differences": {"type": "array", "items": {"type": "string"}}}},
    },
}


def _check_schema(meta: object, path: Path) -> None:
    import jsonschema

    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(RUN_JSON).iter_errors(meta))
    if error is not None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path) or "the top level"
        raise FuncbenchError(f"'{path}' is not a valid run.json: at {where.lstrip('.')}, {error.message}; "
                             "run its `bench run` command again to rewrite it")


def run_counts(results: pd.DataFrame, cells: int, trained: int, reused: int, seeds: int) -> dict[str, int]:
    """run.json's `counts`: cells in all, trained now and found finished, seeds per cell, diverged and failed seeds."""
    per_seed = results.drop_duplicates(["target", "model", "seed"])
    return {"cells": cells, "cells_trained": trained, "cells_reused": reused, "seeds": seeds,
            "diverged_seeds": int((per_seed["status"] == DIVERGED).sum()),
            "failed_seeds": int((per_seed["status"] == FAILED).sum())}
