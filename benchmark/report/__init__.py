"""The HTML report of a run: index.html, one page per target, figures and CSV tables.

Everything is rebuilt from the run folder alone (run.json and the Parquet
tables), so `bench report RUN_DIR` needs neither the plugins nor a retrain,
and the folder can be copied anywhere: all links are relative, CSS is
inline, figures are embedded as SVG, nothing is fetched from the network.

Layout written beside the tables::

    index.html
    targets/<target>.html
    figures/heatmap-{interpolation,extrapolation}.svg
    figures/<target>-{predictions,learning}.svg
    figures/success.svg, figures/success-grid.svg (where targets have a success threshold)
    csv/<table>.csv, csv/success.csv

and, with `pdf`, a PDF beside every SVG.
"""

from __future__ import annotations

import contextlib
import functools
import json
import multiprocessing
import os
import re
import shutil
import signal
import tempfile
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from ..config import REFERENCE_MODEL
from ..errors import one_line_write_failures
from ..evaluate import OK
from ..executors import die_with, stop_pool
from ..references import ALPHA, beside
from ..statistics import protocol_summary, with_nalu_score
from ..store import TABLES, atomic_write
from .tables import (
    EXACT,
    FITS,
    SOLUTION_CRITERIA,
    VERDICT_STYLES,
    cell_states,
    cell_summary,
    equation_table,
    formula_summary,
    leaderboard,
    linearity_summary,
    median_probes,
    missing_cells,
    quartile,
    solution_rates,
    solution_table,
    success_summary,
    success_table,
    target_summary,
    target_table,
    verdict_table,
)

__all__ = ["write_report", "write_comparison", "run_summary"]

SPLIT_ERRORS = ("interpolation", "extrapolation")

#: Rows past which a table scrolls inside its own box, and characters past which a listing folds.
LONG_TABLE = 40
LONG_LISTING = 160

#: The index's sections in order, by what the run leads with (`plan.run_headline`); the published results,
#: where the run's suite carries them, always come first.
SECTION_ORDER = {
    "verdict": ("published", "verdict", "heatmaps", "leaderboard", "success", "solutions"),
    "success": ("published", "success", "verdict", "heatmaps", "leaderboard", "solutions"),
    "linearity": ("published", "leaderboard", "verdict", "heatmaps", "success", "solutions"),
    "solutions": ("published", "solutions", "heatmaps", "leaderboard", "verdict", "success"),
}


def headline(meta: dict) -> dict:
    """What the run leads with; a run.json from before runs recorded it leads with the default's."""
    return meta.get("headline") or {"section": "verdict", "reference_model": REFERENCE_MODEL}


def run_summary(meta: dict, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The terminal's summary of a run, led as its report is: success rates per model, the linearity per
    cell, or per target the reference family's errors and the best family."""
    lead = headline(meta)
    if lead["section"] == "success":
        success = protocol_summary(tables["results"], tables["evaluations"], tables["params"])
        if len(success):
            return success_summary(success)
    if lead["section"] == "linearity":
        return linearity_summary(cell_summary(tables["results"], tables["linearity"]))
    if lead["section"] == "solutions":
        return solution_table(solution_rates(meta, tables["results"], tables["formulas"]))
    return target_summary(tables["results"], lead["reference_model"])


#: What a report consists of, beside the run's tables; index.html last, so that it never links to pages not yet there.
REPORT_FILES = ("targets", "figures", "csv", "index.html")


def write_report(run_dir: Path, meta: dict, tables: dict[str, pd.DataFrame], out: Path | None = None,
                 pdf: bool = False) -> Path:
    """Write the whole report of a run into `out` (the run folder by default); return the path of its index.html.

    The report is drawn into a staging folder and then moved over the old
    one, so a report killed half-way leaves the previous report whole, and
    a rebuilt report holds no page of a target the run no longer has. A
    full disk or a folder that cannot be written is one line, saying that
    the run's tables are kept.
    """
    run_dir = Path(run_dir)
    out = Path(out) if out is not None else run_dir
    rebuild = f"the run's tables are saved in {run_dir}: run `bench report {run_dir}` once that is fixed"
    if out == run_dir:
        rebuild += ", or give it --out to write the report elsewhere"
    with one_line_write_failures(out, rebuild):
        out.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".report-", dir=out))
        try:
            tables_href = os.path.relpath(run_dir, out)
            _draw_report(staging, meta, tables, "" if tables_href == "." else tables_href + "/", pdf)
            for name in REPORT_FILES:
                if (out / name).exists():
                    (out / name).rename(staging / f"old-{name}")
                (staging / name).rename(out / name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return out / "index.html"


def _draw_report(folder: Path, meta: dict, tables: dict[str, pd.DataFrame], tables_href: str, pdf: bool) -> None:
    """Every file of the report, into `folder`; `tables_href` leads from there to the run's Parquet tables ("" or "path/")."""
    # The plotting stack takes seconds to import; `bench list` and `bench compare` use this package without it.
    from .figures import (
        heatmap,
        palette,
        save,
        solution_figure,
        success_figure,
        success_grid,
    )

    labels = [t["label"] for t in meta["targets"]]
    models = model_labels(meta, tables["results"])
    lead = headline(meta)
    reference_model = lead["reference_model"]
    pages = page_names(labels)
    colours = palette(models)
    cells = cell_summary(tables["results"], tables["linearity"])
    drawable = finite_seeds(tables)
    states = cell_states(meta, cells, labels, models)

    with _page_workers(len(labels)) as workers:
        # Target pages are independent and drawing dominates; they render in
        # worker processes while this one draws the overview.
        pending = [
            workers.submit(
                write_target_page, folder, meta, t, pages[t["label"]], colours,
                {name: table[table["target"] == t["label"]] for name, table in {**tables, **drawable, "cells": cells}.items()},
                pdf,
            )
            for t in meta["targets"]
        ]
        heatmaps = {
            split: Markup(save(heatmap(cells, split, labels, models, states), folder / "figures", f"heatmap-{split}", pdf))
            for split in SPLIT_ERRORS
        }
        success = protocol_summary(tables["results"], tables["evaluations"], tables["params"])
        published = beside(meta["reference"], success) if meta.get("reference") else None
        success_figures = {}
        if len(success):
            success_figures["rates"] = Markup(save(success_figure(success, labels, models, colours), folder / "figures", "success", pdf))
            grid = success_grid(success, meta["targets"], models)
            if grid is not None:
                success_figures["grid"] = Markup(save(grid, folder / "figures", "success-grid", pdf))
        formula_targets = any(t.get("expression") for t in meta["targets"])
        solutions = solution_rates(meta, tables["results"], tables["formulas"]) if formula_targets else None
        if formula_targets:
            success_figures["solutions"] = Markup(save(solution_figure(solutions, models, colours), folder / "figures",
                                                       "solutions", pdf))
        (folder / "csv").mkdir(exist_ok=True)
        extra = {"success": success, **({"published": published} if published is not None else {}),
                 **({"solutions": solutions} if formula_targets else {})}
        for name, table in {**{name: tables[name] for name in TABLES}, **extra}.items():
            atomic_write(folder / "csv" / f"{name}.csv", lambda path, t=table: write_csv(t, path))
        for page in pending:
            page.result()  # re-raises a worker's exception here

    html = _environment().get_template("index.html.j2").render(
        meta=meta,
        verdicts=verdict_table(meta, tables, cells, reference_model) if reference_model in models else None,
        best=target_summary(tables["results"], None),
        reference_model=reference_model,
        order=SECTION_ORDER[lead["section"]],
        pages=pages,
        verdict_styles=VERDICT_STYLES,
        heatmaps=heatmaps,
        leaderboard=Markup(styled_leaderboard(leaderboard(cells, pages))),
        success=success_table(success),
        reference=meta.get("reference"),
        alpha=ALPHA,
        families=target_families(meta, pages),
        published=published,
        success_figures=success_figures,
        formulas=formula_summary(tables["formulas"], tables["results"]),
        solutions=solution_table(solutions) if formula_targets else None,
        equations=equation_table(meta, tables["results"], tables["formulas"]) if formula_targets else None,
        criteria=SOLUTION_CRITERIA,
        targets=target_table(meta),
        tables=TABLES,
        tables_href=tables_href,
        missing=missing_cells(states),
        exact=EXACT,
        fits=FITS,
        pdf=pdf,
    )
    _write_text(folder / "index.html", html)


def target_families(meta: dict, pages: dict[str, str]) -> list[tuple[str, list[tuple[str, str]]]]:
    """The target pages by family, in the run's order: (family, [(label, page), ...])."""
    families: dict[str, list[tuple[str, str]]] = {}
    for t in meta["targets"]:
        families.setdefault(t["name"], []).append((t["label"], pages[t["label"]]))
    return list(families.items())


def model_labels(meta: dict, results: pd.DataFrame) -> list[str]:
    """The models the report shows: those run.json lists, in its order, then any the tables hold beside them."""
    listed = [m["label"] for m in meta["models"]]
    return listed + [m for m in results["model"].unique() if m not in listed]


def write_target_page(run_dir: Path, meta: dict, target: dict, page: str, colours: dict, of_target: dict,
                      pdf: bool = False) -> None:
    """One target's page and its two figures; `of_target` holds the target's rows of every table."""
    from .figures import learning_figure, prediction_figure, save

    stem = Path(page).stem
    figures = run_dir / "figures"
    predictions = save(prediction_figure(target, of_target["lines"], colours), figures, f"{stem}-predictions", pdf)
    learning = save(learning_figure(target["label"], of_target["curves"], colours), figures, f"{stem}-learning", pdf)
    cells = of_target["cells"]
    html = _environment().get_template("target.html.j2").render(
        meta=meta,
        target=target,
        stem=stem,
        predictions=Markup(predictions),
        learning=Markup(learning),
        metrics=target_metrics(of_target["results"]),
        # The symbolic check only where the target is a formula; elsewhere the column is empty.
        formulas=of_target["formulas"].drop(columns=["target", *([] if target.get("expression") else ["symbolic_solution"])]),
        probes=median_probes(of_target["probes"]).drop(columns="target"),
        verdicts=cells[["model", "interpolation", "extrapolation", "linearity", "outside", "verdict"]].rename(
            columns={"linearity": "extrapolation linearity R²", "outside": "outside the data"}),
        pdf=pdf,
    )
    _write_text(run_dir / page, html)


@contextlib.contextmanager
def _page_workers(pages: int):
    """A pool of forked processes, one per core; or this process alone where that cannot help."""
    count = min(os.cpu_count() or 1, pages)
    if count < 2 or "fork" not in multiprocessing.get_all_start_methods():
        with ThreadPoolExecutor(max_workers=1) as serial:
            yield serial
        return
    # Fork, not spawn: the children inherit the imported plotting stack
    # instead of paying seconds to import it again; they use no torch.
    pool = ProcessPoolExecutor(max_workers=count, mp_context=multiprocessing.get_context("fork"),
                               initializer=_start_page_worker, initargs=(os.getpid(),))
    try:
        yield pool
    except BaseException:
        stop_pool(pool)  # an interrupt or an error: the pages in flight are not waited for
        raise
    pool.shutdown(wait=True)


def _start_page_worker(parent: int) -> None:
    # Ctrl-C is the parent's to handle; a worker ends with its parent, even one killed by SIGKILL.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with(parent)


def write_comparison(path: Path, comparison, a: tuple[Path, dict], b: tuple[Path, dict]) -> Path:
    """`bench compare --html`: the comparison of two runs (each its folder and run.json) as one page."""
    path = Path(path)
    html = _environment().get_template("compare.html.j2").render(
        meta={"funcbench_version": a[1].get("funcbench_version")},
        comparison=comparison,
        runs={"A": (Path(a[0]).resolve(), a[1]), "B": (Path(b[0]).resolve(), b[1])},
        rows=comparison.rows,
    )
    _write_text(path, html)
    return path


@functools.cache
def _environment() -> Environment:
    env = Environment(loader=PackageLoader("benchmark.report"), autoescape=select_autoescape(["html", "j2"]))
    env.filters["num"] = format_number
    # Past these sizes a table scrolls in a box of its own and a listing folds away: a 468-cell
    # suite's tables and selection strings would otherwise push everything else pages down.
    env.globals.update(long_table=LONG_TABLE, long_listing=LONG_LISTING)
    return env


def page_names(labels: list[str]) -> dict[str, str]:
    """A file name per target label, safe on every file system and unique in the run."""
    pages: dict[str, str] = {}
    for label in labels:
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-.") or "target"
        candidate, n = stem, 1
        while f"targets/{candidate}.html" in pages.values():
            n += 1
            candidate = f"{stem}-{n}"
        pages[label] = f"targets/{candidate}.html"
    return pages


def finite_seeds(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The lines and curves of seeds that did not diverge (diverged ones are counted, not drawn)."""
    keys = ["target", "model", "seed"]
    good = tables["results"].loc[tables["results"]["status"] == OK, keys].drop_duplicates()
    return {name: tables[name].merge(good, on=keys) for name in ("lines", "curves")}


def target_metrics(results: pd.DataFrame) -> pd.DataFrame:
    """Per model and split: medians over non-diverged seeds of every error metric."""
    ok = with_nalu_score(results)[results["status"] == OK]
    table = ok.groupby(["model", "split"], sort=False).agg(
        mse=("mse", "median"), nmse=("nmse", "median"),
        nmse_q25=("nmse", lambda s: quartile(s, 0.25)), nmse_q75=("nmse", lambda s: quartile(s, 0.75)),
        max_abs_error=("max_abs_error", "median"), nalu_score=("nalu_score", "median"),
        threshold=("threshold", "median"),
    )
    table = table.rename(columns={"nmse_q25": "nmse q25", "nmse_q75": "nmse q75", "max_abs_error": "max |error|",
                                  "nalu_score": "NALU score", "threshold": "success threshold (mse)"})
    return table.reset_index()


def styled_leaderboard(board: pd.DataFrame) -> str:
    """The leaderboard as a pandas Styler table, errors shaded on a log scale."""
    errors = ["interpolation nmse", "extrapolation nmse"]
    # Green at the exact threshold and below, red at nmse 1 (no better than the mean) and above.
    shade = np.log10(board[errors].astype(float).clip(lower=1e-16).fillna(1e3))
    styler = (
        board.style.hide(axis="index")
        .format({column: format_number for column in board.columns if board[column].dtype.kind == "f"})
        .background_gradient(cmap="RdYlGn_r", subset=errors, gmap=shade, axis=None, vmin=np.log10(EXACT), vmax=0)
        .set_table_attributes('class="leaderboard"')
    )
    return styler.to_html()


def write_csv(table: pd.DataFrame, path: Path) -> None:
    """`table` as CSV, by pyarrow: eight times faster than pandas on a run's larger tables.

    A list (a probe's point) is written as JSON, "[9.0, 90.0]"; NaN is an
    empty field.
    """
    import pyarrow as pa
    from pyarrow import csv

    lists = [c for c in table.columns if table[c].dtype == object and table[c].map(_is_sequence).any()]
    table = table.assign(**{c: table[c].map(lambda v: json.dumps(np.asarray(v).tolist()) if _is_sequence(v) else v)
                            for c in lists})
    csv.write_csv(pa.Table.from_pandas(table, preserve_index=False), str(path))


def _is_sequence(value: object) -> bool:
    return isinstance(value, (list, tuple, np.ndarray))


def format_number(value: object) -> str:
    """Errors span twenty orders of magnitude: three significant digits, always."""
    if isinstance(value, Markup):
        return value
    if value is None or value is pd.NA:  # a check not made: the symbolic one, where the target is no formula
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(value)
    if isinstance(value, (float, np.floating)):
        return "–" if np.isnan(value) else f"{value:.3g}"
    if isinstance(value, (list, tuple, np.ndarray)):
        return "(" + ", ".join(format_number(v) for v in value) + ")"
    return str(value)


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
