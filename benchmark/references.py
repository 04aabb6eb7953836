"""Published results a suite carries, and how a run's measurements are set beside them.

A suite may carry a `Reference`: per (target, model), the success rate a
paper reports with its 95% interval and seed count, its median solved-at
step and its mean sparsity error. A run of the suite records the
reference in its run.json with the settings the run changed from the
suite's own (which are the published ones); its report then sets the
published numbers beside the measured ones. Where nothing differs, each
row gets a verdict; where something does, the report names what and shows
the published numbers as context only.

The verdict is Fisher's exact test of the two success counts (published
successes out of published seeds against this run's), two-sided at 5%:
*consistent* when it does not reject that both come from one success
rate, *differs* when it does. The published count is the rate times the
seeds, rounded. With few seeds here the test rejects only large gaps, and
says so by calling them consistent: read the intervals beside it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import RunConfig
from .errors import FuncbenchError

#: A reference table's columns; the last two may be empty (no successful seed, or not reported).
COLUMNS = ("target", "model", "seeds", "success_rate", "success_low", "success_high", "solved_at_median",
           "sparsity_error_mean")
#: Settings that choose which cells a run has, or where it runs, rather than how each cell trains.
NOT_COMPARED = ("targets", "models", "suite", "device", "plugins")
#: The level of the verdict's test.
ALPHA = 0.05


@dataclass(frozen=True, eq=False)
class Reference:
    """Published numbers per (target, model), with the source they come from (a citation a reader can follow)."""

    source: str
    table: pd.DataFrame

    def __post_init__(self) -> None:
        missing = [c for c in COLUMNS if c not in self.table.columns]
        if missing:
            raise FuncbenchError(f"the reference table from {self.source} lacks column(s) {', '.join(missing)}; "
                                 f"it needs {', '.join(COLUMNS)}")
        rates = self.table[["success_rate", "success_low", "success_high"]].to_numpy(dtype=float)
        if not (np.isfinite(rates).all() and ((rates >= 0) & (rates <= 1)).all()):
            raise FuncbenchError(f"the reference table from {self.source} has success rates outside [0, 1]")
        if self.table.duplicated(["target", "model"]).any():
            twice = self.table[self.table.duplicated(["target", "model"])].iloc[0]
            raise FuncbenchError(f"the reference table from {self.source} has ({twice['target']}, {twice['model']}) "
                                 "more than once; give each target and model one row")
        seeds = self.table["seeds"].to_numpy(dtype=float)
        if not (np.isfinite(seeds).all() and (seeds >= 1).all() and (seeds == np.round(seeds)).all()):
            raise FuncbenchError(f"the reference table from {self.source} needs a whole number of seeds (>= 1) per row")
        object.__setattr__(self, "table", self.table[list(COLUMNS)].reset_index(drop=True))

    @classmethod
    def from_csv(cls, path: str | Path, source: str) -> Reference:
        """A reference read from a CSV file with COLUMNS (lines starting with # are comments)."""
        return cls(source, pd.read_csv(path, comment="#"))

    @classmethod
    def from_rows(cls, rows: Sequence[Mapping[str, Any]], source: str) -> Reference:
        return cls(source, pd.DataFrame(list(rows)))

    def records(self) -> list[dict[str, Any]]:
        """The rows as JSON-ready dicts (missing values as None)."""
        return json.loads(self.table.to_json(orient="records", double_precision=15))


def settings_differences(published: RunConfig, run: RunConfig) -> list[str]:
    """How `run` trains otherwise than `published`, one phrase per setting: 'steps: 300 here, 5,000,000 published'."""
    differences = []
    for field in fields(RunConfig):
        name = field.name
        if name in NOT_COMPARED or name == "model_settings":
            continue
        here, there = getattr(run, name), getattr(published, name)
        if here != there:
            differences.append(f"{name.replace('_', '-')}: {_value(here)} here, {_value(there)} published")
    families = sorted(set(published.model_settings) | set(run.model_settings))
    for family in families:
        here, there = run.model_settings.get(family, {}), published.model_settings.get(family, {})
        for key in sorted(set(here) | set(there)):
            if here.get(key) != there.get(key):
                differences.append(f"{family}'s {key.replace('_', '-')}: {_value(here.get(key), 'the run-wide one')} "
                                   f"here, {_value(there.get(key), 'the run-wide one')} published")
    return differences


def _value(value: Any, missing: str = "each family's own") -> str:
    if value is None:
        return missing
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def suite_reference(registry, config: RunConfig) -> dict[str, Any] | None:
    """What run.json records of the run's suite's reference: its source, rows, and how this run differs."""
    from .plan import resolve_config, run_suite

    if config.suite is None:
        return None
    reference = run_suite(registry, config.suite).reference
    if reference is None:
        return None
    published = resolve_config(registry, config.suite, {"plugins": config.plugins})
    rows = reference.records()
    # A row may name a target or model as any selection does ('subset_op[op=add]'); the run's tables
    # hold labels ('subset_op', its parameters at their defaults left out).
    labels = {(kind, name): _label(registry, kind, name, config.suite)
              for row in rows for kind, name in (("target", row["target"]), ("model", row["model"]))}
    rows = [{**row, "target": labels["target", row["target"]], "model": labels["model", row["model"]]} for row in rows]
    return {"source": reference.source, "rows": rows, "differences": settings_differences(published, config)}


def _label(registry, kind: str, name: str, suite: str) -> str:
    from .plan import _select

    try:
        made, problems = _select(registry, kind, name)  # type: ignore[arg-type]
    except FuncbenchError as exc:
        raise FuncbenchError(f"suite '{suite}': a row of its reference names {kind} '{name}': {exc}") from None
    if not made:
        raise FuncbenchError(f"suite '{suite}': a row of its reference names {kind} '{name}', which cannot be built: "
                             + "; ".join(problems))
    return made[0].label


def verdict(published_successes: int, published_seeds: int, successes: int, seeds: int) -> str:
    """'consistent' or 'differs': Fisher's exact test of the two counts, two-sided, at ALPHA."""
    from scipy.stats import fisher_exact

    table = [[published_successes, published_seeds - published_successes], [successes, seeds - successes]]
    return "consistent" if fisher_exact(table).pvalue >= ALPHA else "differs"


def _step(value: float | None) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:,.0f}"


def beside(reference: Mapping[str, Any], summary: pd.DataFrame) -> pd.DataFrame:
    """Published and measured per (target, model) this run has both of; verdicts only where no setting differs.

    `summary` is `statistics.protocol_summary` of the run.
    """
    published = pd.DataFrame(reference["rows"], columns=list(COLUMNS)).set_index(["target", "model"])
    rows = []
    judged = not reference["differences"]
    for ours in summary.to_dict("records"):  # in the run's order of targets and models
        if (ours["target"], ours["model"]) not in published.index:
            continue
        row = published.loc[(ours["target"], ours["model"])]
        k, n, published_n = int(ours["successes"]), int(ours["seeds"]), int(row.seeds)
        published_k = round(row.success_rate * published_n)
        rows.append({
            "target": ours["target"], "model": ours["model"],
            "published success [95% CI]": f"{row.success_rate:.2f} [{row.success_low:.2f} – {row.success_high:.2f}] "
                                          f"of {published_n}",
            "this run [95% CI]": f"{ours['success rate']:.2f} [{ours['success low']:.2f} – {ours['success high']:.2f}] "
                                 f"of {n}",
            "verdict": verdict(published_k, published_n, k, n) if judged else "–",
            "published solved at (median)": _step(row.solved_at_median),
            "this run solved at (median)": _step(ours["solved at"]),
            "published sparsity error (mean)": row.sparsity_error_mean,
            "this run sparsity error (median)": ours["sparsity error"],
        })
    return pd.DataFrame(rows)
