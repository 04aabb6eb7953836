"""The published statistics of the arithmetic-extrapolation literature.

Madsen & Johansen (2020) call a seed *successful* when its extrapolation MSE
is below that of a near-perfect model: the exact solution with every weight
of 1 moved to 1 - eps and every weight of 0 to eps, eps = 1e-5. That
threshold depends on the operation and the range, so it is estimated here
by Monte-Carlo, per seed and split, and stored with the results. A seed
succeeds when it is below the threshold on every extrapolation region; a
diverged seed counts as a failure. Over seeds they report:

- the success rate with a 95% Wilson score interval;
- "solved at": the first evaluated step whose extrapolation MSE is below
  the threshold, over the successful seeds;
- the sparsity error, max over weights of min(|W|, |1 - |W||), over the
  successful seeds.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .domains import Region
from .registry import Target

#: How far the near-perfect model's weights are from the exact ones.
EPSILON = 1e-5
#: z for a two-sided 95% interval (the 0.975 quantile of the standard normal).
Z_95 = 1.959963984540054


def threshold_samples(dim: int) -> int:
    """Monte-Carlo points per estimate: 100,000, fewer in high dimension to bound memory."""
    return int(np.clip(10_000_000 // max(dim, 1), 10_000, 100_000))


def success_thresholds(target: Target, seeds: Sequence[int], regions: dict[str, Region]) -> pd.DataFrame | None:
    """MSE of the near-perfect model per (seed, split), or None where the target has no exact solution."""
    rows = []
    n = threshold_samples(target.dim)
    for seed in seeds:
        seeded = target.at_seed(seed)
        for name, region in regions.items():
            rng = np.random.default_rng([seed, zlib.crc32(target.label.encode()), zlib.crc32(name.encode()), 0x7E5])
            x = region.sample(n, rng)
            with np.errstate(all="ignore"):
                near = seeded.near_exact_values(x, EPSILON)
                if near is None:
                    return None
                exact = np.asarray(seeded.fn(x), dtype=np.float64).reshape(n, 1)
            rows.append({"seed": seed, "split": name, "threshold": float(np.mean((near - exact) ** 2))})
    return pd.DataFrame(rows)


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion; (nan, nan) for no trials."""
    if trials == 0:
        return (math.nan, math.nan)
    p = successes / trials
    denominator = 1 + z**2 / trials
    centre = (p + z**2 / (2 * trials)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / trials + z**2 / (4 * trials**2))
    return (max(0.0, centre - half), min(1.0, centre + half))


def seed_success(results: pd.DataFrame) -> pd.DataFrame:
    """Per (target, model, seed): whether it succeeded; NaN where the target has no threshold."""
    keys = ["target", "model", "seed"]
    extrapolation = results[results["split_kind"] == "extrapolation"]
    below = extrapolation["mse"] < extrapolation["threshold"]
    grouped = extrapolation.assign(below=below).groupby(keys, sort=False)
    table = grouped.agg(below=("below", "all"), has_threshold=("threshold", lambda t: bool(t.notna().all())),
                        status=("status", "first"))
    table["success"] = np.where(table["has_threshold"], table["below"] & (table["status"] == "ok"), np.nan)
    return table["success"].reset_index()


def solved_at(evaluations: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """Per (target, model, seed): the first evaluated step below the threshold on every extrapolation region."""
    keys = ["target", "model", "seed"]
    thresholds = results.loc[results["split_kind"] == "extrapolation", [*keys, "split", "threshold"]]
    merged = evaluations.merge(thresholds, on=[*keys, "split"])
    merged["below"] = merged["mse"] < merged["threshold"]
    per_step = merged.groupby([*keys, "step"], sort=False)["below"].all().reset_index()
    first = per_step[per_step["below"]].groupby(keys, sort=False)["step"].min()
    return first.rename("solved_at").reset_index()


def protocol_summary(results: pd.DataFrame, evaluations: pd.DataFrame, params: pd.DataFrame) -> pd.DataFrame:
    """Per (target, model) with a threshold: success rate, its Wilson interval, solved at, sparsity error, NALU scores."""
    keys = ["target", "model", "seed"]
    seeds = seed_success(results)
    seeds = seeds[seeds["success"].notna()]
    if seeds.empty:
        return pd.DataFrame(columns=["target", "model", "seeds", "successes", "success rate", "success low",
                                     "success high", "solved at", "solved at q25", "solved at q75",
                                     "sparsity error", "nalu score interpolation", "nalu score extrapolation"])
    seeds = seeds.merge(solved_at(evaluations, results), on=keys, how="left")
    sparsity = params.loc[params["parameter"] == "sparsity_error", [*keys, "value"]].rename(columns={"value": "sparsity"})
    seeds = seeds.merge(sparsity, on=keys, how="left")
    scores = nalu_scores(results)
    rows = []
    for (target, model), group in seeds.groupby(["target", "model"], sort=False):
        won = group[group["success"].astype(bool)]
        k, n = len(won), len(group)
        low, high = wilson_interval(k, n)
        steps = won["solved_at"].dropna()
        score = scores.loc[(scores["target"] == target) & (scores["model"] == model)]
        rows.append({
            "target": target, "model": model, "seeds": n, "successes": k, "success rate": k / n,
            "success low": low, "success high": high,
            "solved at": steps.median() if len(steps) else np.nan,
            "solved at q25": steps.quantile(0.25) if len(steps) else np.nan,
            "solved at q75": steps.quantile(0.75) if len(steps) else np.nan,
            "sparsity error": won["sparsity"].median() if k else np.nan,
            "nalu score interpolation": score["interpolation"].median(),
            "nalu score extrapolation": score["extrapolation"].median(),
        })
    return pd.DataFrame(rows)


def nalu_scores(results: pd.DataFrame) -> pd.DataFrame:
    """Per (target, model, seed): the NALU paper's score on interpolation and the worst extrapolation region.

    100 x MSE / MSE of the randomly initialised models of the same family
    (the median over the cell's seeds before training): 0 is perfect, 100 no
    better than an untrained model.
    """
    keys = ["target", "model", "seed"]
    interp = results[results["split"] == "interpolation"].set_index(keys)["nalu_score"].rename("interpolation")
    extrap = results[results["split_kind"] == "extrapolation"].groupby(keys, sort=False)["nalu_score"].max(min_count=1)
    return pd.concat([interp, extrap.rename("extrapolation")], axis=1).reset_index()
