"""Running a plan: train and evaluate each cell, store it, then the run's files.

Cells of one model family on targets of the same shape train as one
ensemble. Finished cells already in the run folder are skipped, so
rerunning an interrupted command resumes it.

A task is the ids of an ensemble's cells, nothing more: cells are code
(targets are often lambdas) and samples are large. A worker finds a task's
cells by id in the plan it builds once from the run's `PlanSource` (the
configuration and the text of every plugin file; workers forked from this
process find the plan already built), and draws their samples itself.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import platform
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from importlib import metadata
from typing import Any

import pandas as pd

from . import __version__
from .checks import INTERPOLATION, TargetError
from .config import RunConfig
from .data import Split, sample_splits
from .errors import FuncbenchError, ModelError, describe_exception
from .evaluate import FAILED, CellResult, evaluate_cell
from .executors import Executor, LocalExecutor, TaskFailed
from .fingerprint import stable_hash
from .heap import release_free_memory
from .plan import Cell, Plan, build_plan
from .plugins import load_registry, plugin_sources
from .registry import Target
from .resources import ensemble_members
from .statistics import success_thresholds
from .store import SCHEMA_VERSION, IncompleteCell, RunStore, run_counts
from .train import data_shape, group_key, train_cells

log = logging.getLogger(__name__)


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
    batch_cells: bool = True,
    keep_models: bool = True,
    executor: Executor | None = None,
    on_cell: Callable[[Cell, bool], None] = lambda cell, reused: None,
    options: Mapping[str, Any] | None = None,
    reference: Mapping[str, Any] | None = None,
    headline: Mapping[str, Any] | None = None,
) -> RunOutcome:
    """Train every pending cell of `plan` into `store`; return the run's tables.

    With `batch_cells`, the cells of one model family on targets of the same
    input dimension and splits train as one ensemble (`train_cells`), which
    gives the same numbers in fewer, larger steps. With `keep_models`, each
    cell's folder keeps its trained members (`benchmark.predict`). The `executor` (this
    process alone by default) runs those ensembles, wherever it runs them;
    the numbers are the same. A task the executor gives up on is a problem,
    and the rest of the run completes. `options`, the command's options as a
    config file would give them, are recorded in run.json to repeat the run,
    and so are the `reference` of the run's suite (`benchmark.references`) and
    the `headline` its report leads with (`plan.run_headline`).
    """
    executor = executor or LocalExecutor(1)
    started = dt.datetime.now(dt.timezone.utc)
    clock = time.perf_counter()
    trained = reused = 0
    problems: list[str] = []
    failed_cells: list[dict[str, str]] = []
    recorded = {"options": dict(options)} if options is not None else {}
    if reference is not None:
        recorded["reference"] = dict(reference)
    if headline is not None:
        recorded["headline"] = dict(headline)
    # A finished run.json from before stays readable until this run's replaces it; an unfinished one is this
    # run's, rewritten so that its list of cells is this code's (`benchmark.runs` reads a partial run by it).
    if not _finished_before(store):
        store.write_json("run.json", {**run_metadata(plan, config, started, None, problems), **recorded})
    results: dict[str, CellResult] = {}
    pending: dict[Target, list[Cell]] = {}
    for cell in plan.cells:
        if not force and store.has_cell(cell.id):
            try:
                results[cell.id] = store.read_cell(cell.id)
            except IncompleteCell as exc:
                log.warning(f"cell {cell.target.label} x {cell.model.label} in {store.cells / cell.id} does not read "
                            f"back whole ({exc}); it is trained again")
            else:
                reused += 1
                on_cell(cell, True)
                continue
        pending.setdefault(cell.target, []).append(cell)
    source = PlanSource.of(config)
    _PLANS[source.key] = {cell.id: cell for cell in plan.cells}  # forked workers find the plan built
    failed: set[str] = set()
    work = layout(pending, config, batch_cells)
    ensembles = sum(len(group) for _, group in work)
    for outcome in executor.run(train_group, _group_tasks(work, source, keep_models), ensembles):
        if isinstance(outcome, TaskFailed):
            cells = [_PLANS[source.key][cell_id] for cell_id in outcome.task.cell_ids]
            names = ", ".join(f"{c.target.label} x {c.model.label}" for c in cells)
            problems.append(f"cells {names} failed ({outcome.error}) and are left out; {_advice(outcome.error)}")
            failed_cells += [{"target": c.target.label, "model": c.model.label, "error": outcome.error} for c in cells]
            if outcome.traceback:
                log.debug(f"the traceback of {names}:\n{outcome.traceback.rstrip()}")
            continue
        if outcome.finished and log.isEnabledFor(logging.DEBUG):
            cells = (_PLANS[source.key][cell_id] for cell_id, _ in outcome.finished)
            log.debug("trained " + ", ".join(f"{c.target.label} x {c.model.label}" for c in cells))
        for cell_id, result in outcome.finished:
            store.write_cell(cell_id, result)
            results[cell_id] = result
            trained += 1
            on_cell(_PLANS[source.key][cell_id], False)
        for label, problem in outcome.failed:
            if label not in failed:  # every model of a target meets the same failing batch; say it once
                failed.add(label)
                problems.append(problem)
    finished_cells = [c for c in plan.cells if c.id in results]
    problems += failed_seed_lines(results[c.id].results for c in finished_cells)
    if not finished_cells:
        raise FuncbenchError("no target could be run: " + problems[-1])
    # A target skipped while its data was drawn is in the problems, not the report.
    ran = replace(plan, targets=[t for t in plan.targets if any(c.target is t for c in finished_cells)])
    meta = {**run_metadata(ran, config, started, None, problems), **recorded, "failed_cells": failed_cells}
    # Unfinished while the run-level tables are rewritten: a kill in between leaves no mix passed off as a run.
    store.write_json("run.json", meta)
    tables = store.consolidate((c.id for c in finished_cells), known=results)
    finished = dt.datetime.now(dt.timezone.utc)
    meta.update(run_metadata(ran, config, started, finished, problems))
    # How the work was cut: it changes the times in results.train_seconds, never a number.
    meta["execution"] = {**executor.describe(), "cell_batching": batch_cells}
    meta["counts"] = run_counts(tables["results"], len(finished_cells), trained, reused, config.seeds)
    store.write_json("run.json", meta)
    return RunOutcome(tables, trained, reused, time.perf_counter() - clock, problems)


def failed_seed_lines(results: Iterable[pd.DataFrame]) -> list[str]:
    """One problem line per cell with failed seeds: which, and why; the cell's other seeds are scored."""
    lines = []
    for table in results:
        if "error" not in table or not (table["status"] == FAILED).any():
            continue
        failed = table[table["status"] == FAILED].drop_duplicates("seed")
        first = failed.iloc[0]
        why = "; ".join(f"seed {seed}: {error}" for seed, error in zip(failed["seed"], failed["error"]))
        lines.append(f"{first['target']} x {first['model']}: {len(failed)} seed(s) failed ({why}); they are marked "
                     "failed in results.parquet and the cell's other seeds are scored")
    return lines


def _advice(error: str) -> str:
    """What to do about a failed task: a retry helps only where the failure was the machine's, not the code's."""
    if error.startswith("MemoryError"):
        return "they need more memory than this machine has: use fewer --seeds or --samples, or a smaller model"
    return "fix the cause and run the same command again to train them (-v shows the traceback)"


@dataclass(frozen=True)
class PlanSource:
    """What a worker needs to build the run's plan itself: the configuration and each plugin file's text.

    Plugin files travel as text, so a worker on another machine needs no
    copy of them, and runs the driver's version of them; plugins given as
    module names, and installed entry points, must be installed on the
    workers too.
    """

    config: RunConfig
    plugin_files: tuple[tuple[str, str, str], ...]  # (the --plugin as given, its absolute path, its text)

    @classmethod
    def of(cls, config: RunConfig) -> PlanSource:
        return cls(config, plugin_sources(config.plugins))

    @property
    def key(self) -> str:
        return stable_hash([asdict(self.config), self.plugin_files])


#: Plans built in this process, as their cells by id, by `PlanSource.key`.
_PLANS: dict[str, dict[str, Cell]] = {}


_PLANS_LOCK = threading.Lock()  # a Dask worker with several threads builds each plan once


def _cells_of(source: PlanSource) -> dict[str, Cell]:
    with _PLANS_LOCK:
        if source.key not in _PLANS:
            files = {given: (path, text) for given, path, text in source.plugin_files}
            plan = build_plan(load_registry(source.config.plugins, files), source.config)
            _PLANS[source.key] = {cell.id: cell for cell in plan.cells}
        return _PLANS[source.key]


@dataclass(frozen=True)
class GroupTask:
    """Cells to train as one ensemble: the worker draws their targets' samples itself.

    A task carries no arrays. Its samples come from each seed's own streams,
    so they are the same numbers wherever they are drawn; drawing them in the
    worker keeps them out of the driver's memory and out of the pickles that
    carry a task to a worker (the published single-layer suite's tasks
    held a quarter of a GB each), for a second or so of sampling per task.
    """

    source: PlanSource
    cell_ids: tuple[str, ...]
    keep_models: bool = True  # whether each cell's trained members go with its tables (`Model.state`)


@dataclass(frozen=True)
class GroupOutcome:
    finished: list[tuple[str, CellResult]]  # (cell id, its evaluated tables)
    failed: list[tuple[str, str]]  # (target label, the problem line) for targets that failed while training


def _prepare(cell: Cell) -> tuple[list[Split], pd.DataFrame | None]:
    """A cell's target's samples for every split and seed, and its success thresholds."""
    target = cell.target
    splits = sample_splits(target, cell.seeds, cell.samples, cell.eval_samples, validation=cell.settings.by_steps)
    return splits, success_thresholds(target, cell.seeds, {INTERPOLATION: target.domain, **target.extrapolation})


def train_group(task: GroupTask) -> GroupOutcome:
    """Draw a task's samples, then train and evaluate its cells; a target that fails is found and left out."""
    finished: list[tuple[str, CellResult]] = []
    failed: list[tuple[str, str]] = []
    prepared: dict[str, tuple[list[Split], pd.DataFrame | None] | None] = {}  # None: its data failed to draw

    def attempt(cells: list[Cell]) -> None:
        try:
            trained_cells = train_cells([(cell, prepared[cell.target.label][0]) for cell in cells])
        except TargetError as exc:  # a fresh batch hit a point where the target is not finite
            if len(cells) > 1:  # find which target it was: train them one at a time
                for cell in cells:
                    attempt([cell])
                return
            target = cells[0].target
            failed.append((target.label, f"{target.origin}: target '{target.label}' failed while training: {exc}; "
                                         "the cells that met it are skipped"))
            return
        for trained_cell in trained_cells:
            splits, thresholds = prepared[trained_cell.cell.target.label]
            try:
                result = evaluate_cell(trained_cell, splits, thresholds, keep_model=task.keep_models)
            except ModelError as exc:  # a plugin's formula or readable_parameters hook: say whose
                raise ModelError.of(trained_cell.cell.model, exc) from exc
            finished.append((trained_cell.cell.id, result))

    cells = _cells_of(task.source)
    missing = [cell_id for cell_id in task.cell_ids if cell_id not in cells]
    if missing:
        raise FuncbenchError(
            f"this worker's plan lacks cell {missing[0]}: its funcbench ({__version__}) or its installed "
            "plugins differ from the driver's; install the same versions on every worker"
        )
    drawable = []
    for cell in (cells[cell_id] for cell_id in task.cell_ids):
        target = cell.target
        if target.label not in prepared:
            try:
                prepared[target.label] = _prepare(cell)
            except Exception as exc:  # noqa: BLE001 - the target's own code failed on a sample its checks did not draw
                failed.append((target.label, f"{target.origin}: target '{target.label}' failed while its data was "
                                             f"drawn: {describe_exception(exc)}; it is skipped"))
                prepared[target.label] = None
        if prepared[target.label] is not None:
            drawable.append(cell)
    if drawable:
        attempt(drawable)
    prepared.clear()
    release_free_memory()  # a worker trains task after task: what this one freed goes back now
    return GroupOutcome(finished, failed)


def layout(pending: dict[Target, list[Cell]], config: RunConfig, together: bool) -> list[tuple[list[Target], list[list[Cell]]]]:
    """The work: batches of targets whose samples are drawn together, each with its ensembles.

    An ensemble is a list of cells that train together (`train_cells`): one
    model family on targets of one shape, as many seeds in all as
    `resources.ensemble_members` allows;
    without `together`, every cell alone. The largest batches, and in each
    the largest ensembles, come first (by members), so that parallel workers
    end together rather than one finishing a big ensemble alone (longest
    first, with members as the measure of length). On the default run the
    gain is within the machine's noise (training 20.1 against 19.4 s,
    medians of 3 on 2 cores); it matters for grids whose big ensembles come
    last in plan order. The order changes no number, and the tables list
    cells in plan order.
    """
    work = []
    for targets in _target_batches(list(pending), config, together):
        groups: dict[tuple, list[Cell]] = {}
        for target in targets:
            for cell in pending[target]:
                groups.setdefault(group_key(cell) if together else (cell.id,), []).append(cell)
        ensembles = [part for group in groups.values() for part in _chunks(group)]
        work.append((targets, sorted(ensembles, key=_members, reverse=True)))
    return sorted(work, key=lambda batch: sum(map(_members, batch[1])), reverse=True)


def _members(cells: list[Cell]) -> int:
    return sum(len(cell.seeds) for cell in cells)


def _group_tasks(work: list[tuple[list[Target], list[list[Cell]]]], source: PlanSource,
                 keep_models: bool) -> Iterator[GroupTask]:
    """A task per ensemble, in the order of the batches of targets."""
    for _, ensembles in work:
        for cells in ensembles:
            yield GroupTask(source, tuple(cell.id for cell in cells), keep_models)


def _finished_before(store: RunStore) -> bool:
    """Whether the folder's run.json is a finished run's (an unreadable one counts as not)."""
    try:
        return json.loads((store.root / "run.json").read_text(encoding="utf-8")).get("finished") is not None
    except (OSError, ValueError, AttributeError):
        return False


def _chunks(cells: list[Cell]) -> Iterator[list[Cell]]:
    """Consecutive runs of cells with at most `ensemble_members` seeds in all (a cell is never split)."""
    first = cells[0]
    batch = first.settings.batch_size if first.settings.by_steps else min(first.settings.batch_size, first.samples)
    most = ensemble_members(first.model, first.target.dim, batch)
    chunk: list[Cell] = []
    for cell in cells:
        if chunk and _members(chunk) + len(cell.seeds) > most:
            yield chunk
            chunk = []
        chunk.append(cell)
    if chunk:
        yield chunk


#: Samples a task holds at once, in float32 elements over every split, seed and input (about 200 MB).
SAMPLE_BUDGET = 50_000_000


def _target_batches(targets: list[Target], config: RunConfig, together: bool) -> Iterator[list[Target]]:
    """Targets whose cells may share an ensemble, in plan order, their samples within SAMPLE_BUDGET.

    Targets of one `data_shape` go together,
    since only they can share an ensemble.
    """
    if not together:
        yield from ([t] for t in targets)
        return
    kinds: dict[tuple, list[Target]] = {}
    for target in targets:
        kinds.setdefault(data_shape(target), []).append(target)
    for same in kinds.values():
        batch, size = [], 0
        for target in same:
            splits = 3 + len(target.extrapolation)  # train, validation, interpolation and the regions
            elements = config.seeds * max(config.samples, config.eval_samples) * splits * (target.dim + 1)
            if batch and size + elements > SAMPLE_BUDGET:
                yield batch
                batch, size = [], 0
            batch.append(target)
            size += elements
        yield batch


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
        # Which cell folders are this run's: a partial run is read from them alone (`benchmark.runs`).
        "cells": [cell.id for cell in plan.cells],
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
