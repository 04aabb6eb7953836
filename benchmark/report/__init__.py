"""The HTML report of a run: index.html, one page per target, figures and CSV tables.

Everything is rebuilt from the run folder alone (run.json and the Parquet
tables), so `bench report RUN_DIR` needs neither the plugins nor a retrain,
and the folder can be copied anywhere: all links are relative, CSS is
inline, figures are embedded as SVG, nothing is fetched from the network.

Layout written beside the tables::

    index.html
    targets/<target>.html
    figures/heatmap-{interpolation,extrapolation}.{svg,pdf}
    figures/<target>-{predictions,learning}.{svg,pdf}
    figures/success.{svg,pdf}, figures/success-grid.{svg,pdf} (where targets have a success threshold)
    csv/<table>.csv, csv/success.csv
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import re
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from ..evaluate import OK
from ..statistics import protocol_summary, with_nalu_score
from ..store import TABLES, atomic_write
from .tables import (
    EXACT,
    FITS,
    VERDICT_STYLES,
    cell_summary,
    formula_summary,
    leaderboard,
    median_probes,
    success_table,
    target_summary,
    target_table,
    verdict_table,
)

__all__ = ["write_report", "write_comparison", "target_summary"]

SPLIT_ERRORS = ("interpolation", "extrapolation")


def write_report(run_dir: Path, meta: dict, tables: dict[str, pd.DataFrame]) -> Path:
    """Write the whole report of a run; return the path of its index.html."""
    # The plotting stack takes seconds to import; `bench list` and `bench compare` use this package without it.
    from .figures import heatmap, palette, save, success_figure, success_grid

    run_dir = Path(run_dir)
    labels = [t["label"] for t in meta["targets"]]
    models = [m["label"] for m in meta["models"]]
    pages = page_names(labels)
    colours = palette(models)
    cells = cell_summary(tables["results"], tables["linearity"])
    drawable = finite_seeds(tables)

    with _page_workers(len(labels)) as workers:
        # Target pages are independent and drawing dominates; they render in
        # worker processes while this one draws the overview.
        pending = [
            workers.submit(
                write_target_page, run_dir, meta, t, pages[t["label"]], colours,
                {name: table[table["target"] == t["label"]] for name, table in {**tables, **drawable, "cells": cells}.items()},
            )
            for t in meta["targets"]
        ]
        heatmaps = {
            split: Markup(save(heatmap(cells, split, labels, models), run_dir / "figures", f"heatmap-{split}"))
            for split in SPLIT_ERRORS
        }
        success = protocol_summary(tables["results"], tables["evaluations"], tables["params"])
        success_figures = {}
        if len(success):
            success_figures["rates"] = Markup(save(success_figure(success, labels, models, colours), run_dir / "figures", "success"))
            grid = success_grid(success, meta["targets"], models)
            if grid is not None:
                success_figures["grid"] = Markup(save(grid, run_dir / "figures", "success-grid"))
        (run_dir / "csv").mkdir(exist_ok=True)
        for name, table in {**{name: tables[name] for name in TABLES}, "success": success}.items():
            atomic_write(run_dir / "csv" / f"{name}.csv", lambda path, t=table: t.to_csv(path, index=False))
        for page in pending:
            page.result()  # re-raises a worker's exception here

    html = _environment().get_template("index.html.j2").render(
        meta=meta,
        verdicts=verdict_table(meta, tables, cells),
        pages=pages,
        verdict_styles=VERDICT_STYLES,
        heatmaps=heatmaps,
        leaderboard=Markup(styled_leaderboard(leaderboard(cells, pages))),
        success=success_table(success),
        success_figures=success_figures,
        formulas=formula_summary(tables["formulas"]),
        targets=target_table(meta),
        tables=TABLES,
        exact=EXACT,
        fits=FITS,
    )
    index = run_dir / "index.html"
    _write_text(index, html)
    return index


def write_target_page(run_dir: Path, meta: dict, target: dict, page: str, colours: dict, of_target: dict) -> None:
    """One target's page and its two figures; `of_target` holds the target's rows of every table."""
    from .figures import learning_figure, prediction_figure, save

    stem = Path(page).stem
    figures = run_dir / "figures"
    predictions = save(prediction_figure(target, of_target["lines"], colours), figures, f"{stem}-predictions")
    learning = save(learning_figure(target["label"], of_target["curves"], colours), figures, f"{stem}-learning")
    cells = of_target["cells"]
    html = _environment().get_template("target.html.j2").render(
        meta=meta,
        target=target,
        stem=stem,
        predictions=Markup(predictions),
        learning=Markup(learning),
        metrics=target_metrics(of_target["results"]),
        formulas=of_target["formulas"].drop(columns="target"),
        probes=median_probes(of_target["probes"]).drop(columns="target"),
        verdicts=cells[["model", "interpolation", "extrapolation", "linearity", "outside", "verdict"]].rename(
            columns={"linearity": "extrapolation linearity R²", "outside": "outside the data"}),
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
    with ProcessPoolExecutor(max_workers=count, mp_context=multiprocessing.get_context("fork")) as pool:
        yield pool


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
        nmse_q25=("nmse", lambda s: s.quantile(0.25)), nmse_q75=("nmse", lambda s: s.quantile(0.75)),
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


def format_number(value: object) -> str:
    """Errors span twenty orders of magnitude: three significant digits, always."""
    if isinstance(value, Markup):
        return value
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
