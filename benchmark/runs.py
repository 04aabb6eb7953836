"""A run folder as a Python object: its tables as DataFrames, its summaries, its report, its trained models.

`benchmark.run` and `benchmark.load` give a `Run`. Everything it shows is
read from the folder, never kept from the process that trained it, so a
run loaded tomorrow answers exactly as the one just made. Tables are read
when first asked for: a notebook that wants one table of a large run reads
only that one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from .config import RunConfig
from .errors import FuncbenchError
from .store import TABLES, IncompleteCell, RunStore, read_meta, read_run, read_table


class Run:
    """A finished or partial run folder (see the README's *The run folder* for its files and columns).

    A finished run's tables are its run-level Parquet files; a partial
    run's (one interrupted, or still training) are those of the cells
    finished so far, gathered from ``cells/``.
    """

    def __init__(self, path: Path, meta: dict, objects: Sequence[Any] = ()):
        self.path = path
        self.meta = meta
        self._objects = tuple(objects)  # entries defined in the caller's session, for `predict`
        self._tables: dict[str, pd.DataFrame] = {}

    @classmethod
    def open(cls, path: str | Path, objects: Sequence[Any] = ()) -> Run:
        path = Path(path)
        if path.name == "run.json" and path.is_file():
            path = path.parent
        return cls(path, read_meta(path, finished=False), objects)

    def __repr__(self) -> str:
        state = "finished" if self.finished else "not finished"
        return (f"Run('{self.path}': {len(self.meta['targets'])} target(s) x {len(self.meta['models'])} model(s), "
                f"{self.config.seeds} seeds, {state})")

    @property
    def finished(self) -> bool:
        return self.meta.get("finished") is not None

    @cached_property
    def config(self) -> RunConfig:
        """What the run computes, as `bench run` resolved it (its suite's settings included)."""
        recorded = self.meta["config"]
        known = {f.name for f in fields(RunConfig)}
        values = {key: value for key, value in recorded.items() if key in known}
        values["plugins"] = tuple(values.get("plugins", ()))
        return RunConfig(**values)

    @property
    def problems(self) -> list[str]:
        """Every entry, target and cell that was skipped or failed, as ``bench run`` said on stderr."""
        return list(self.meta.get("problems", []))

    def table(self, name: str) -> pd.DataFrame:
        """One of the run's tables (`benchmark.store.TABLES`), read on first use."""
        if name not in TABLES:
            raise FuncbenchError(f"a run has no table '{name}'; its tables are {', '.join(TABLES)}")
        if name not in self._tables:
            self._tables.update(self._read(name))
        return self._tables[name]

    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: self.table(name) for name in TABLES}

    def _read(self, name: str) -> dict[str, pd.DataFrame]:
        if self.finished:
            try:
                return {name: read_table(self.path / f"{name}.parquet", name)}
            except Exception as exc:  # noqa: BLE001 - a missing, truncated or foreign file, as pyarrow says it
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise FuncbenchError(f"run folder '{self.path}' has an unreadable or corrupted table ({reason}); "
                                     "run its `bench run` command again to rebuild it from its cells") from None
        parts = []
        store = RunStore(self.path)
        # The run's own cells, as its run.json lists them (one from before 0.7 lists none: every folder).
        listed = self.meta.get("cells") or sorted(p.name for p in store.cells.glob("[!.]*") if p.is_dir())
        for cell_id in listed:
            if store.has_cell(cell_id):
                try:
                    parts.append(store.read_cell(cell_id))
                except IncompleteCell:
                    continue  # half-written by a killed run: not a result
        if not parts:
            raise FuncbenchError(f"no cell of the run in '{self.path}' has finished yet; its tables are empty")
        # Every table at once: a partial run's cells are read whole anyway.
        return {table: pd.concat([getattr(p, table) for p in parts], ignore_index=True) for table in TABLES}

    results = property(lambda self: self.table("results"), doc="One row per (target, model, seed, split): the errors.")
    probes = property(lambda self: self.table("probes"), doc="Each seed's answer at the targets' probe points.")
    params = property(lambda self: self.table("params"), doc="The learned parameters small enough to read.")
    formulas = property(lambda self: self.table("formulas"), doc="Learned formulas, and whether each is exact.")
    curves = property(lambda self: self.table("curves"), doc="The training loss (and regulariser terms) over steps.")
    evaluations = property(lambda self: self.table("evaluations"), doc="Every split's MSE at each evaluation.")
    linearity = property(lambda self: self.table("linearity"), doc="How straight predictions run outside the domain.")
    lines = property(lambda self: self.table("lines"), doc="Predictions along the diagonal through the domain.")

    def summary(self) -> pd.DataFrame:
        """The table ``bench run`` ends with: what the run's report leads with."""
        from .report import run_summary

        return run_summary(self.meta, self.tables())

    def success(self) -> pd.DataFrame:
        """Per (target, model) with success thresholds: successes of seeds, the rate and its Wilson 95% interval,
        the step at which seeds were solved, sparsity error and NALU scores (`statistics.protocol_summary`)."""
        from .statistics import protocol_summary

        return protocol_summary(self.results, self.evaluations, self.params)

    def solutions(self) -> pd.DataFrame:
        """Per model and criterion (exact outside, accurate inside, symbolic solution, exact formula), on the
        run's formula targets: the equations solved (by most of their seeds), the share and its Wilson 95%
        interval, and the (target, seed) runs that meet it (`report.tables.solution_rates`)."""
        from .report.tables import solution_rates

        return solution_rates(self.meta, self.results, self.formulas)

    def report(self, out: str | Path | None = None, pdf: bool = False) -> Path:
        """Write the HTML report (into the run folder, or `out`, the ``--out`` of ``bench report``), or refresh
        it; return its index.html."""
        from .report import write_report

        meta, tables = read_run(self.path)  # a report is of a finished run
        if out is not None and Path(out).resolve() != self.path.resolve():
            return write_report(self.path, meta, tables, Path(out), pdf=pdf)
        try:
            with RunStore(self.path).locked():
                return write_report(self.path, meta, tables, pdf=pdf)
        except OSError as exc:  # the lock file itself cannot be made: a read-only folder
            raise FuncbenchError(f"cannot write to '{self.path}': {exc.strerror.lower()}; "
                                 "give --out to write the report elsewhere") from None

    def compare(self, other: Run | str | Path, metric: str = "nmse", fail_above: float = 2.0,
                floor: float | None = None) -> pd.DataFrame:
        """The ``bench compare`` table of `other` (B) against this run (A): per (target, model, split), the
        medians, their change and ratio B/A, and a flag."""
        from .compare import FLOOR, compare_runs

        other = other if isinstance(other, Run) else Run.open(other)
        return compare_runs(self.meta, self.results, other.meta, other.results, metric, fail_above,
                            FLOOR if floor is None else floor).rows

    def predict(self, target: str, model: str, x: Any) -> pd.DataFrame:
        """Every seed's prediction at new points `x` ((n, d), or one point), from the stored models, without
        retraining: one row per (seed, point), with the target's true value beside it."""
        from .predict import predict

        return predict(self, target, model, x, objects=self._objects)

    def _repr_html_(self) -> str:
        """The headline table and the extrapolation heatmap, inline and self-contained, for Jupyter."""
        from markupsafe import escape

        from .report import model_labels
        from .report.figures import heatmap, svg_markup
        from .report.tables import cell_states, cell_summary

        head = f"<p><b>funcbench run</b> <code>{escape(str(self.path))}</code>: {escape(repr(self))}</p>"
        try:
            self.results
        except FuncbenchError as nothing:
            return f"{head}<p>{escape(str(nothing))}</p>"
        labels = [t["label"] for t in self.meta["targets"]]
        models = model_labels(self.meta, self.results)
        cells = cell_summary(self.results, self.linearity)
        figure = heatmap(cells, "extrapolation", labels, models, cell_states(self.meta, cells, labels, models))
        table = self.summary().to_html(index=False, float_format=lambda v: f"{v:.3g}", na_rep="–")
        return f"{head}{table}<div style='overflow-x:auto'>{svg_markup(figure)}</div>"
