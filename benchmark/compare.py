"""Did a change make things better? Two runs' median errors, per (target, model, split).

Each side is the median over the seeds that did not diverge, as everywhere in
the report. The ratio is B over A, with both clamped to a floor first:
errors at float32's rounding level (an exact fit scores 1e-14 one run and
3e-14 the next) differ by large factors that mean nothing, so everything at
or below the floor counts as the floor. A row is flagged worse when its
ratio is above the threshold, better when below its inverse, and a pair
whose seeds all diverged on one side only is flagged too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .evaluate import DIVERGED, FAILED, OK
from .store import differing_settings

KEYS = ["target", "model", "split"]
METRICS = ("nmse", "mse", "max_abs_error")
#: The default floor: the nmse at or below which the report calls a fit exact.
FLOOR = 1e-6
WORSE, BETTER, WITHIN = "worse", "better", "within"
ONLY_A, ONLY_B, DIVERGED_BOTH = "only in A", "only in B", "diverged in both"


@dataclass(frozen=True)
class Comparison:
    rows: pd.DataFrame  # target, model, split, A, B, change, ratio, diverged A, diverged B, flag
    metric: str
    threshold: float
    floor: float
    settings: list[str]  # "epochs 100 -> 50" for each setting the runs differ in

    def count(self, flag: str) -> int:
        return int((self.rows["flag"] == flag).sum())

    def summary(self) -> str:
        """One line: how many rows changed beyond the threshold, each way."""
        parts = [f"{self.count(WORSE)} worse", f"{self.count(BETTER)} better",
                 f"{self.count(WITHIN)} within {self.threshold:g}x"]
        parts += [f"{self.count(flag)} {flag}" for flag in (DIVERGED_BOTH, ONLY_A, ONLY_B) if self.count(flag)]
        return f"{self.metric}, median over seeds, B/A: " + ", ".join(parts)


def compare_runs(a: dict, a_results: pd.DataFrame, b: dict, b_results: pd.DataFrame,
                 metric: str = "nmse", threshold: float = 2.0, floor: float = FLOOR) -> Comparison:
    """Compare run B against run A (their run.json and results tables)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}")
    if not threshold > 1:
        raise ValueError("the threshold is a ratio above 1")
    left, right = _medians(a_results, metric), _medians(b_results, metric)
    rows = left.merge(right, on=KEYS, how="outer", suffixes=(" A", " B"), indicator=True, sort=False)
    rows = rows.rename(columns={f"{metric} A": "A", f"{metric} B": "B"})
    rows["change"] = rows["B"] - rows["A"]
    rows["ratio"] = np.maximum(rows["B"], floor) / np.maximum(rows["A"], floor)
    rows["flag"] = [_flag(*values, threshold) for values in zip(rows["_merge"], rows["A"], rows["B"], rows["ratio"])]
    order = _order(a_results, b_results)
    rows = rows.drop(columns="_merge").sort_values(KEYS, key=lambda column: column.map(order[column.name]), kind="stable")
    # Failed seeds (a family that could not train them) are counted where either run has any.
    failed = ["failed A", "failed B"] if rows[["failed A", "failed B"]].fillna(0).to_numpy().any() else []
    columns = [*KEYS, "A", "B", "change", "ratio", "diverged A", "diverged B", *failed, "flag"]
    return Comparison(rows[columns].reset_index(drop=True), metric, threshold, floor, differing_settings(a, b))


def _medians(results: pd.DataFrame, metric: str) -> pd.DataFrame:
    table = pd.DataFrame({
        metric: results[results["status"] == OK].groupby(KEYS, sort=False)[metric].median(),
        "diverged": results.groupby(KEYS, sort=False)["status"].agg(lambda s: int((s == DIVERGED).sum())),
        "failed": results.groupby(KEYS, sort=False)["status"].agg(lambda s: int((s == FAILED).sum())),
    })
    return table.reset_index()


def _flag(side: str, a: float, b: float, ratio: float, threshold: float) -> str:
    if side == "left_only":
        return ONLY_A
    if side == "right_only":
        return ONLY_B
    if np.isnan(a) and np.isnan(b):
        return DIVERGED_BOTH
    if np.isnan(b) or ratio > threshold:  # every seed of B diverged, or its error grew
        return WORSE
    if np.isnan(a) or ratio < 1 / threshold:
        return BETTER
    return WITHIN


def _order(*tables: pd.DataFrame) -> dict[str, dict]:
    """Rows in the order the runs list them (A's first, then B's new ones), not alphabetically."""
    order: dict[str, dict] = {}
    for key in KEYS:
        values = pd.concat([table[key] for table in tables]).drop_duplicates()
        order[key] = {value: i for i, value in enumerate(values)}
    return order
