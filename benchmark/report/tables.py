"""The numbers a reader sees: aggregations of a run's tidy tables.

Rules used everywhere one number per (target, model) is shown: a seed's
extrapolation error is its worst region (the largest nmse over the
extrapolation regions), so "extrapolates" means "everywhere we looked";
seeds are combined by the median, with the interquartile range as their
spread; diverged seeds are left out and counted separately.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from markupsafe import Markup, escape

from ..evaluate import DIVERGED, FAILED, OK
from ..statistics import nalu_scores, wilson_interval

#: nmse at or below which a fit counts as exact (float32 arithmetic reaches ~1e-13).
EXACT = 1e-6
#: nmse at or below which a model counts as fitting (1% of the target's variance left).
FITS = 1e-2

#: Median extrapolation-linearity R^2 at or above which a model is said to run straight
#: outside its data (Xu et al. report about 0.99 for ReLU networks).
STRAIGHT = 0.99

VERDICTS = {
    "exact": "exact everywhere",
    "inside": "fits inside the range only",
    "fails": "fails",
    "diverged": "diverged",
    "failed": "failed or diverged (every seed)",
    "undefined": "undefined (constant target)",
}
#: The CSS class of each verdict's text (diverged reads as a failure).
VERDICT_STYLES = {text: "fails" if key in ("diverged", "failed", "undefined") else key for key, text in VERDICTS.items()}


def per_seed_errors(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (target, model, seed): interpolation and worst-region extrapolation nmse."""
    keys = ["target", "model", "seed"]
    # Where a seed's predictions are not finite (a formula off its domain far out), its error is infinite,
    # not undefined: nmse is NaN there, and a NaN region must not leave the worst region to the others.
    # nmse stays undefined (NaN) only where the target is constant on the split.
    nmse = results["nmse"].where(np.isfinite(results["mse"]), np.inf)
    results = results.assign(nmse=nmse)
    interp = results[results["split"] == "interpolation"].set_index(keys)["nmse"].rename("interpolation")
    extrap = results[results["split_kind"] == "extrapolation"].groupby(keys, sort=False)["nmse"].max(min_count=1)
    status = results.drop_duplicates(keys).set_index(keys)["status"]
    return pd.concat([interp, extrap.rename("extrapolation"), status], axis=1).reset_index()


def cell_summary(results: pd.DataFrame, linearity: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per (target, model): median and quartiles over non-diverged seeds, seed counts, verdict.

    With the run's `linearity` table, also the median over seeds of each
    seed's median extrapolation-linearity R^2.
    """
    seeds = per_seed_errors(results)
    ok = seeds[seeds["status"] == OK].groupby(["target", "model"], sort=False)
    stats = {}
    for split in ("interpolation", "extrapolation"):
        stats[split] = ok[split].median()
        stats[f"{split} q25"] = ok[split].agg(quartile, 0.25)
        stats[f"{split} q75"] = ok[split].agg(quartile, 0.75)
    scores = nalu_scores(results).merge(seeds[["target", "model", "seed", "status"]], on=["target", "model", "seed"])
    scores = scores[scores["status"] == OK].groupby(["target", "model"], sort=False)
    stats["nalu interpolation"] = scores["interpolation"].median()
    stats["nalu extrapolation"] = scores["extrapolation"].median()
    if linearity is not None:
        straight = linearity.merge(seeds[["target", "model", "seed", "status"]], on=["target", "model", "seed"])
        stats["linearity"] = straight[straight["status"] == OK].groupby(["target", "model"], sort=False)["linearity_median_r2"].median()
        stats["outside"] = stats["linearity"].map(shape_outside)
    counts = seeds.groupby(["target", "model"], sort=False).agg(
        seeds=("seed", "size"), diverged=("status", lambda s: int((s == DIVERGED).sum())),
        failed=("status", lambda s: int((s == FAILED).sum())),
    )
    summary = counts.join(pd.DataFrame(stats)).reset_index()
    summary["verdict"] = [
        VERDICTS["diverged"] if d == n else VERDICTS["failed"] if d + f == n else verdict(i, e)
        for i, e, d, f, n in zip(summary["interpolation"], summary["extrapolation"], summary["diverged"],
                                 summary["failed"], summary["seeds"])
    ]
    return summary


def quartile(errors: pd.Series, q: float) -> float:
    """The q-quantile of `errors`, linear between neighbours, where an infinite error (a formula that
    overflows far out) stays infinite: numpy's interpolation would give inf - inf, NaN."""
    finite = errors[np.isfinite(errors)]
    if len(finite) == len(errors.dropna()):
        return float(errors.quantile(q))
    largest = np.finfo(np.float64).max
    value = errors.replace([np.inf, -np.inf], [largest, -largest]).quantile(q)
    # Between finite neighbours the value cannot pass the largest finite error: beyond it, inf had weight.
    return float(np.inf) if finite.empty or value > finite.max() else float(value)


def shape_outside(linearity_r2: float) -> str:
    """In words: does the model run straight outside its data (a line, or a constant, along every ray)?"""
    if np.isnan(linearity_r2):
        return ""
    return "straight" if linearity_r2 >= STRAIGHT else "curved"


def verdict(interpolation: float, extrapolation: float) -> str:
    """In words: is the fit exact everywhere, good inside the range only, or poor?"""
    if np.isnan(interpolation):
        return VERDICTS["undefined"]  # nmse has no meaning where the target is constant
    if interpolation <= EXACT and extrapolation <= EXACT:
        return VERDICTS["exact"]
    if interpolation <= FITS:
        return VERDICTS["inside"]
    return VERDICTS["fails"]


def best_models(cells: pd.DataFrame) -> pd.Series:
    """Per target, the model with the lowest median extrapolation nmse; where none has one, why not.

    Where several are exact (at most EXACT), which of them is lowest is
    rounding: they tie, and the entry names them all.
    """
    ranked = cells.dropna(subset=["extrapolation"]).sort_values("extrapolation", kind="stable")
    best = ranked.groupby("target", sort=False)["model"].first()
    exact = ranked[ranked["extrapolation"] <= EXACT].groupby("target", sort=False)["model"].agg(list)
    for target, models in exact.items():
        if len(models) > 1:
            best[target] = f"tie, all exact: {', '.join(models)}"
    verdicts = cells.groupby("target", sort=False)["verdict"].agg(set)
    reasons = verdicts.map(lambda seen: "(all diverged)" if seen == {VERDICTS["diverged"]}
                           else "(all failed or diverged)" if seen <= {VERDICTS["diverged"], VERDICTS["failed"]}
                           else "(none: nmse undefined, the target is constant)" if VERDICTS["undefined"] in seen
                           else "(none: no finite extrapolation error)")
    return best.reindex(cells["target"].unique()).fillna(reasons)


#: Why a (target, model) pair of the run's grid shows no error: every seed diverged, nmse is undefined
#: (a constant target), its training raised, or it never ran (e.g. in no merged run).
CELL_STATES = {"ok": "", "diverged": "diverged", "undefined": "undefined", "failed": "failed", "not run": "not run"}


def cell_states(meta: dict, cells: pd.DataFrame, targets: list[str], models: list[str]) -> pd.DataFrame:
    """A grid (targets x models) of each pair's state, one of CELL_STATES (`cells`: `cell_summary`)."""
    failed = {(c["target"], c["model"]) for c in meta.get("failed_cells", [])}
    known = {(t, m): "diverged" if d == n else "failed" if d + f == n else "undefined" if np.isnan(i) else "ok"
             for t, m, d, f, n, i in zip(cells["target"], cells["model"], cells["diverged"], cells["failed"],
                                         cells["seeds"], cells["interpolation"])}
    return pd.DataFrame([[known.get((t, m), "failed" if (t, m) in failed else "not run") for m in models]
                         for t in targets], index=list(targets), columns=list(models))


def missing_cells(states: pd.DataFrame) -> list[str]:
    """'target x model (failed)' for every pair that has no result at all."""
    return [f"{t} x {m} ({state})" for t, row in states.iterrows() for m, state in row.items()
            if state in ("failed", "not run")]


def target_summary(results: pd.DataFrame, reference_model: str | None) -> pd.DataFrame:
    """Per target: the reference family's errors (where it ran) and the family that extrapolates best."""
    cells = cell_summary(results)
    best = best_models(cells)
    summary = pd.DataFrame({"target": best.index})
    ours = cells[cells["model"] == reference_model].set_index("target")
    if len(ours):
        summary[f"{reference_model} interpolation nmse"] = summary["target"].map(ours["interpolation"])
        summary[f"{reference_model} extrapolation nmse"] = summary["target"].map(ours["extrapolation"])
    summary["best model"] = best.to_numpy()
    by_cell = cells.set_index(["target", "model"])["extrapolation"]
    summary["best extrapolation nmse"] = [by_cell.get((t, m), np.nan) for t, m in zip(summary["target"], best)]
    if best.str.startswith("tie").any():  # every tied model is exact: the lowest of them is rounding
        summary.loc[best.str.startswith("tie").to_numpy(), "best extrapolation nmse"] = np.nan
    return summary


def success_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """Per model, over every target of a `statistics.protocol_summary`: successes, seeds and the pooled rate
    with its Wilson interval (the terminal's summary of a study that counts successes)."""
    rows = []
    for model, group in summary.groupby("model", sort=False):
        k, n = int(group["successes"].sum()), int(group["seeds"].sum())
        low, high = wilson_interval(k, n)
        rows.append({"model": model, "targets": len(group), "successes": f"{k} / {n}",
                     "success rate [95% CI]": f"{k / n:.2f} [{low:.2f} – {high:.2f}]",
                     "targets solved by every seed": int((group["successes"] == group["seeds"]).sum())})
    return pd.DataFrame(rows)


def linearity_summary(cells: pd.DataFrame) -> pd.DataFrame:
    """Per (target, model): the extrapolation linearity, its reading and the errors (`cells`: `cell_summary`)."""
    return cells[["target", "model", "linearity", "outside", "extrapolation"]].rename(
        columns={"linearity": "extrapolation linearity R²", "outside": "outside the data",
                 "extrapolation": "extrapolation nmse"})


def verdict_table(meta: dict, tables: dict[str, pd.DataFrame], cells: pd.DataFrame, model: str) -> pd.DataFrame:
    """One row per target: `model`'s errors, verdict, weights and probe answers, and the best family
    (`cells`: `cell_summary`)."""
    best = best_models(cells)
    ours = cells[cells["model"] == model].set_index("target")
    weights = median_parameters(tables["params"], model)
    probes = median_probes(tables["probes"])
    rows = []
    for t in meta["targets"]:
        label = t["label"]
        row = {"target": label}
        if label in ours.index:
            row[f"{model} interpolation nmse"] = ours.at[label, "interpolation"]
            row[f"{model} extrapolation nmse"] = ours.at[label, "extrapolation"]
            row["verdict"] = ours.at[label, "verdict"]
            row[f"learned by {model}"] = weights.get(label, "")
            row["exact linear solution"] = format_solution(t["linear_solution"])
            answers = probes[(probes["target"] == label) & (probes["model"] == model)]
            row["probe answers (true)"] = "; ".join(
                f"f{format_point(x)} = {y_pred:.4g} ({y_true:.4g})" for x, y_true, y_pred in
                zip(answers["x"], answers["y_true"], answers["y_pred"])
            )
        row["best model"] = best.get(label, "")
        rows.append(row)
    return pd.DataFrame(rows)


def median_parameters(params: pd.DataFrame, model: str) -> dict[str, str]:
    """Per target, `model`'s median learned weights and bias, as text (where it has them)."""
    ours = params[params["model"] == model]
    text = {}
    for target, group in ours.groupby("target", sort=False):
        medians = group.groupby("parameter", sort=False)["value"].median()
        weights = [v for name, v in medians.items() if name.startswith("weight[")]
        if weights:
            text[target] = f"w = ({', '.join(f'{w:.4f}' for w in weights)}), b = {medians.get('bias', np.nan):.4f}"
    return text


def median_probes(probes: pd.DataFrame) -> pd.DataFrame:
    """Per (target, model, probe point), the median prediction over seeds."""
    if not len(probes):
        return pd.DataFrame(columns=["target", "model", "x", "y_true", "y_pred"])
    keyed = probes.assign(point=probes["x"].map(tuple))
    medians = keyed.groupby(["target", "model", "point"], sort=False).agg(y_true=("y_true", "first"), y_pred=("y_pred", "median"))
    return medians.reset_index().rename(columns={"point": "x"})


def leaderboard(cells: pd.DataFrame, pages: dict[str, str]) -> pd.DataFrame:
    """Every (target, model): median and IQR over seeds, best extrapolation first within a target."""
    ordered = cells.assign(order=cells["target"].map({t: i for i, t in enumerate(pages)}))
    ordered = ordered.sort_values(["order", "extrapolation"], kind="stable", na_position="last")
    return pd.DataFrame(
        {
            "target": [link(t, pages[t]) for t in ordered["target"]],
            "model": ordered["model"].map(escape),
            "interpolation nmse": ordered["interpolation"],
            "interpolation IQR": iqr(ordered, "interpolation"),
            "extrapolation nmse": ordered["extrapolation"],
            "extrapolation IQR": iqr(ordered, "extrapolation"),
            "NALU score interpolation": ordered["nalu interpolation"],
            "NALU score extrapolation": ordered["nalu extrapolation"],
            "diverged": ordered["diverged"].astype(str) + " / " + ordered["seeds"].astype(str),
            # Only where a family lost seeds (`evaluate.FAILED`): the medians are over the others.
            **({"failed": ordered["failed"].astype(str) + " / " + ordered["seeds"].astype(str)}
               if ordered["failed"].any() else {}),
            **({"extrapolation linearity R²": ordered["linearity"], "outside the data": ordered["outside"]}
               if "linearity" in ordered else {}),
            "verdict": ordered["verdict"],
        }
    )


def target_table(meta: dict) -> pd.DataFrame:
    """What each target is, from run.json, so the pages need no plugin to render."""
    rows = []
    for t in meta["targets"]:
        rows.append(
            {
                "target": t["label"],
                "description": t["description"],
                "inputs": ", ".join(t["inputs"]),
                "trained on": t["domain"],
                **dict(t["extrapolation"]),
                "exact linear solution": format_solution(t["linear_solution"]),
            }
        )
    return pd.DataFrame(rows).fillna("")


def iqr(cells: pd.DataFrame, split: str) -> list[str]:
    return [
        "–" if np.isnan(lo) else f"{lo:.2g} – {hi:.2g}" for lo, hi in zip(cells[f"{split} q25"], cells[f"{split} q75"])
    ]


def format_solution(solution: dict | None) -> str:
    if solution is None:
        return "none"
    return f"w = ({', '.join(f'{w:g}' for w in solution['weights'])}), b = {solution['bias']:g}"


def format_point(x) -> str:
    return "(" + ", ".join(f"{v:g}" for v in x) + ")"


def link(label: str, href: str) -> Markup:
    """An HTML link with its label escaped (labels come from plugins)."""
    return Markup('<a href="{}">{}</a>').format(href, label)


def success_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The published statistics in words: successes, rate with its interval, solved at, sparsity, NALU scores."""
    def solved(row) -> str:
        if np.isnan(row["solved at"]):
            return "–"
        return f"{row['solved at']:,.0f} [{row['solved at q25']:,.0f} – {row['solved at q75']:,.0f}]"

    return pd.DataFrame({
        "target": summary["target"],
        "model": summary["model"],
        "successes": summary["successes"].astype(str) + " / " + summary["seeds"].astype(str),
        "success rate [95% CI]": [f"{r:.2f} [{lo:.2f} – {hi:.2f}]" for r, lo, hi in
                                  zip(summary["success rate"], summary["success low"], summary["success high"])],
        "solved at: median step [IQR]": [solved(row) for _, row in summary.iterrows()],
        "sparsity error": summary["sparsity error"],
        "NALU score interpolation": summary["nalu score interpolation"],
        "NALU score extrapolation": summary["nalu score extrapolation"],
    })


def formula_summary(formulas: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """Per (target, model): how many of its seeds learnt an exact formula, and a symbolic solution where the
    target is a formula, of all its seeds (a failed seed has none); and the formula most seeds learnt."""
    if formulas.empty:
        return pd.DataFrame(columns=["target", "model", "exact formulas", "most common formula"])
    seeds = results.drop_duplicates(["target", "model", "seed"]).groupby(["target", "model"], sort=False).size()
    rows = []
    for (target, model), group in formulas.groupby(["target", "model"], sort=False):
        total = int(seeds.get((target, model), len(group)))
        row = {"target": target, "model": model, "exact formulas": f"{int(group['exact'].sum())} / {total}"}
        verdicts = group["symbolic_solution"].dropna()
        if len(verdicts):  # only where the target is a formula
            row["symbolic solutions"] = f"{int(verdicts.astype(bool).sum())} / {total}"
        row["most common formula"] = group["formula"].value_counts().index[0]
        rows.append(row)
    table = pd.DataFrame(rows).fillna("")
    return table[[c for c in ["target", "model", "exact formulas", "symbolic solutions", "most common formula"]
                  if c in table]]


def learned_lines(meta: dict, tables: dict[str, pd.DataFrame], model: str | None) -> list[str]:
    """The article's headline for each target with an exact linear solution that `model` ran on: the weights
    it learned and its answers at the target's probes, each the median over its non-diverged seeds, the
    true values beside them. Empty where the run has no such target or `model` has no readable weights."""
    results, params, probes = tables["results"], tables["params"], tables["probes"]
    ok = results.loc[(results["model"] == model) & (results["status"] == OK), ["target", "seed"]].drop_duplicates()
    lines = []
    for target in meta["targets"]:
        seeds = ok.loc[ok["target"] == target["label"], "seed"]
        if target["linear_solution"] is None or seeds.empty:
            continue
        mine = params[(params["target"] == target["label"]) & (params["model"] == model) & params["seed"].isin(seeds)]
        weights = mine.groupby("parameter", sort=False)["value"].median()
        if not len(weights):
            continue
        solution = target["linear_solution"]
        wanted = [*(f"weight[{name}]" for name in target["inputs"]), "bias"]
        learned = ", ".join(f"{name} {weights[name]:.6g}" for name in wanted if name in weights)
        exact = ", ".join(f"{w:g}" for w in solution["weights"]) + f", bias {solution['bias']:g}"
        line = f"{target['label']}: {model} learned {learned} (exact: {exact})"
        answers = probes[(probes["target"] == target["label"]) & (probes["model"] == model) & probes["seed"].isin(seeds)]
        for x, group in answers.groupby(answers["x"].map(tuple), sort=False):
            line += f"; at {format_point(x)} it answers {group['y_pred'].median():.6g} (true {group['y_true'].iloc[0]:g})"
        lines.append(line + f"; median over {len(seeds)} seed(s)")
    return lines


#: What counts as solving a formula target, in the order the report shows them (`solution_rates`).
SOLUTION_CRITERIA = {
    "exact outside": "nmse at most 1e-6 on every extrapolation region",
    "accurate inside": "R² above 0.999 on the training range (SRBench's accuracy solution)",
    "symbolic solution": "the learned formula is the target's, constants rounded (sympy; SRBench's criterion)",
    "exact formula": "the learned formula, as printed, reproduces the target on every split",
}
#: The criteria only a family whose models read as a formula can meet.
FORMULA_CRITERIA = ("symbolic solution", "exact formula")


def seed_outcomes(meta: dict, results: pd.DataFrame, formulas: pd.DataFrame) -> pd.DataFrame:
    """One row per (formula target, model, seed) the run set out to train, and which criteria it meets.

    The grid comes from run.json (every target that is a formula, every
    model, seeds 0..N-1), so a seed that diverged or failed, and a cell
    whose training raised, are rows that meet nothing rather than rows that
    are missing. `gives_formulas` marks the models with any formula in the run.
    """
    keys = ["target", "model", "seed"]
    targets = [t["label"] for t in meta["targets"] if t.get("expression")]
    models = [m["label"] for m in meta["models"]]
    grid = pd.MultiIndex.from_product([targets, models, range(int(meta["config"]["seeds"]))], names=keys)
    seeds = per_seed_errors(results).set_index(keys)
    inside = results[results["split"] == "interpolation"].set_index(keys)["accuracy_solution"]
    found = formulas.set_index(keys)[["symbolic_solution", "exact"]]
    ok = seeds["status"].reindex(grid) == OK
    outcomes = pd.DataFrame({
        "exact outside": ok & (seeds["extrapolation"].reindex(grid) <= EXACT),
        "accurate inside": ok & inside.reindex(grid).fillna(False).astype(bool),
        "symbolic solution": ok & found["symbolic_solution"].reindex(grid).fillna(False).astype(bool),
        "exact formula": ok & found["exact"].reindex(grid).fillna(False).astype(bool),
    }, index=grid).reset_index()
    outcomes["gives_formulas"] = outcomes["model"].isin(set(formulas["model"]))
    return outcomes


def solution_rates(meta: dict, results: pd.DataFrame, formulas: pd.DataFrame) -> pd.DataFrame:
    """Per model and criterion of SOLUTION_CRITERIA, on the run's formula targets: the equations it solves,
    of all, with the share's 95% Wilson interval; and the (target, seed) runs that meet the criterion.

    An equation counts as solved when more than half of its seeds meet the
    criterion: the seeds of one equation succeed or fail together, so the
    interval is over equations, not over seeds. The formula criteria are
    given only for models whose models read as a formula.
    """
    outcomes = seed_outcomes(meta, results, formulas)
    rows = []
    for model, group in outcomes.groupby("model", sort=False):
        for criterion in SOLUTION_CRITERIA:
            if criterion in FORMULA_CRITERIA and not group["gives_formulas"].any():
                continue
            per_target = group.groupby("target", sort=False)[criterion].agg(["sum", "size"])
            solved = int((2 * per_target["sum"] > per_target["size"]).sum())
            low, high = wilson_interval(solved, len(per_target))
            rows.append({"model": model, "criterion": criterion, "solved": solved, "targets": len(per_target),
                         "rate": solved / len(per_target), "low": low, "high": high,
                         "solved_runs": int(group[criterion].sum()), "runs": len(group)})
    columns = ["model", "criterion", "solved", "targets", "rate", "low", "high", "solved_runs", "runs"]
    return pd.DataFrame(rows, columns=columns)


def solution_table(rates: pd.DataFrame) -> pd.DataFrame:
    """`solution_rates` in words: one row per model, a column per criterion,
    "rate [interval] (equations solved / equations; seeds)"."""
    if rates.empty:
        return pd.DataFrame(columns=["model", "targets", *SOLUTION_CRITERIA])
    text = [f"{r:.2f} [{lo:.2f} – {hi:.2f}] ({k} / {n}; seeds {ks} / {ns})" for r, lo, hi, k, n, ks, ns in
            zip(rates["rate"], rates["low"], rates["high"], rates["solved"], rates["targets"], rates["solved_runs"],
                rates["runs"])]
    wide = rates.assign(text=text).pivot_table(index="model", columns="criterion", values="text", aggfunc="first",
                                               sort=False)
    counts = rates.drop_duplicates("model").set_index("model")["targets"]
    table = pd.DataFrame({"model": wide.index, "targets": counts.reindex(wide.index).to_numpy()})
    for criterion in SOLUTION_CRITERIA:
        if criterion in wide:
            table[criterion] = wide[criterion].fillna("–").to_numpy()
    return table


def equation_table(meta: dict, results: pd.DataFrame, formulas: pd.DataFrame) -> pd.DataFrame:
    """One row per formula target: the true formula, which models carry it outside the data (seeds exact on
    every extrapolation region, of all its seeds), and the formula-giving models' most common formulas and
    how many of their seeds found a symbolic solution.

    Those models are the ones with a symbolic solution anywhere in the run,
    most first, or every formula-giving model where none has one; the
    learned-formulas section has every model's formulas.
    """
    outcomes = seed_outcomes(meta, results, formulas)
    seeds = int(meta["config"]["seeds"])
    solved = outcomes[outcomes["gives_formulas"]].groupby("model", sort=False)["symbolic solution"].sum()
    ranked = solved.sort_values(ascending=False, kind="stable")
    givers = list(ranked[ranked > 0].index) or list(ranked.index)
    rows = []
    for target, group in outcomes.groupby("target", sort=False):
        exact = group.groupby("model", sort=False)["exact outside"].sum()
        row = {"target": target, "formula": next(t["expression"] for t in meta["targets"] if t["label"] == target),
               "exact outside (seeds)": ", ".join(f"{m} {n}/{seeds}" for m, n in exact.items() if n) or "none"}
        for model in givers:
            mine = formulas[(formulas["target"] == target) & (formulas["model"] == model)]
            row[f"{model}: formula"] = mine["formula"].value_counts().index[0] if len(mine) else ""
            found = int(group.loc[group["model"] == model, "symbolic solution"].sum())
            row[f"{model}: symbolic solutions"] = f"{found} / {seeds}"
        rows.append(row)
    return pd.DataFrame(rows)
