"""Turning a stored run into tables a reader can take in: the summary and index.html.

Aggregation rules, used everywhere a single number per (target, model) is
shown: a seed's extrapolation error is its worst region (the largest nmse
over the extrapolation regions), so "extrapolates" means "everywhere we
looked"; seeds are combined by the median; diverged seeds are left out of
the median and counted separately.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from .store import TABLES, atomic_write

LINEAR = "linear"


def per_seed_errors(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (target, model, seed): interpolation and worst-region extrapolation nmse."""
    keys = ["target", "model", "seed"]
    interp = results[results["split"] == "interpolation"].set_index(keys)["nmse"].rename("interpolation")
    extrap = results[results["split_kind"] == "extrapolation"].groupby(keys)["nmse"].max(min_count=1)
    status = results.drop_duplicates(keys).set_index(keys)["status"]
    return pd.concat([interp, extrap.rename("extrapolation"), status], axis=1).reset_index()


def cell_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Median (over non-diverged seeds) interpolation and extrapolation nmse per cell."""
    seeds = per_seed_errors(results)
    ok = seeds[seeds["status"] == "ok"]
    medians = ok.groupby(["target", "model"], sort=False)[["interpolation", "extrapolation"]].median()
    counts = seeds.groupby(["target", "model"], sort=False).agg(
        seeds=("seed", "size"), diverged=("status", lambda s: int((s == "diverged").sum()))
    )
    return counts.join(medians).reset_index()


def target_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Per target: the linear unit's errors and the family that extrapolates best."""
    cells = cell_summary(results)
    rows = []
    for target, group in cells.groupby("target", sort=False):
        ranked = group.dropna(subset=["extrapolation"]).sort_values("extrapolation")
        row = {"target": target}
        linear = group[group["model"] == LINEAR]
        if len(linear):
            row["linear interpolation nmse"] = linear["interpolation"].iloc[0]
            row["linear extrapolation nmse"] = linear["extrapolation"].iloc[0]
        row["best model"] = ranked["model"].iloc[0] if len(ranked) else "(all diverged)"
        row["best extrapolation nmse"] = ranked["extrapolation"].iloc[0] if len(ranked) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def split_table(results: pd.DataFrame) -> pd.DataFrame:
    """Median nmse per (target, model), one column per split in run order, and diverged seeds."""
    ok = results[results["status"] == "ok"]
    order = list(dict.fromkeys(results["split"]))
    medians = ok.pivot_table(index=["target", "model"], columns="split", values="nmse", aggfunc="median", sort=False)
    medians = medians.reindex(columns=[s for s in order if s in medians.columns])
    cells = cell_summary(results).set_index(["target", "model"])
    diverged = (cells["diverged"].astype(str) + " / " + cells["seeds"].astype(str)).rename("diverged")
    return cells[[]].join(medians).join(diverged).reset_index()


def target_table(meta: dict) -> pd.DataFrame:
    """What each target is, from run.json, so the page needs no plugin to render."""
    rows = []
    for t in meta["targets"]:
        solution = t["linear_solution"]
        rows.append(
            {
                "target": t["label"],
                "description": t["description"],
                "inputs": ", ".join(t["inputs"]),
                "trained on": t["domain"],
                **{f"{name}": region for name, region in t["extrapolation"].items()},
                "exact linear solution": "none" if solution is None else
                f"w = ({', '.join(f'{w:g}' for w in solution['weights'])}), b = {solution['bias']:g}",
            }
        )
    return pd.DataFrame(rows).fillna("")


def write_index(run_dir: Path, meta: dict, tables: dict[str, pd.DataFrame]) -> Path:
    """Write index.html: the run's configuration, summary and every median."""
    env = Environment(loader=PackageLoader("benchmark"), autoescape=select_autoescape(["html", "j2"]))
    env.filters["num"] = format_number
    results = tables["results"]
    params = tables["params"]
    linear_params = (
        params[params["model"] == LINEAR].pivot_table(
            index=["target", "seed"], columns="parameter", values="value", sort=False
        ).reset_index()
        if len(params)
        else pd.DataFrame()
    )
    html = env.get_template("index.html.j2").render(
        meta=meta,
        targets=target_table(meta),
        summary=target_summary(results),
        splits=split_table(results),
        probes=tables["probes"],
        linear_params=linear_params,
        files=[f"{t}.parquet" for t in TABLES] + ["run.json"],
    )
    path = Path(run_dir) / "index.html"
    atomic_write(path, lambda tmp: tmp.write_text(html, encoding="utf-8"))
    return path


def format_number(value: object) -> str:
    """Errors span twenty orders of magnitude: three significant digits, always."""
    if isinstance(value, (int, np.integer)):
        return str(value)
    if isinstance(value, (float, np.floating)):
        if np.isnan(value):
            return "–"
        return f"{value:.3g}"
    if isinstance(value, (list, tuple, np.ndarray)):
        return "(" + ", ".join(format_number(v) for v in value) + ")"
    return str(value)
