"""The published statistics of the arithmetic-extrapolation literature.

Madsen & Johansen (2020) call a seed *successful* when its extrapolation MSE
is below that of a near-perfect model: the exact solution with every weight
of 1 moved to 1 - eps and every weight of 0 to eps, eps = 1e-5. That
threshold depends on the operation and the range: it is computed exactly
for a linear target on a region whose moments are known, estimated by
Monte-Carlo otherwise, once per region unless the target varies per seed,
and stored with the results. A seed
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
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .checks import TargetError, evaluate_target
from .data import THRESHOLD_STREAM, stream
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
    """MSE of the near-perfect model per (seed, split), or None where the target has no exact solution.

    A target that is the same for every seed has one threshold per region,
    which every seed shares: exact where `exact_threshold` can say it,
    otherwise estimated on points from the target's own stream. A target
    that varies per seed gets an estimate per seed, on the seed's stream.
    """
    n = threshold_samples(target.dim)
    rows = []
    shared: dict[str, float] = {}
    for seed in seeds:
        seeded = target.at_seed(seed)
        for name, region in regions.items():
            if target.seeded is None and name in shared:
                threshold = shared[name]
            elif (exact := exact_threshold(seeded, region)) is not None:
                threshold = exact
            else:
                rng = stream(seed if target.seeded else None, target.label, name, THRESHOLD_STREAM)
                x = region.sample(n, rng)
                with np.errstate(all="ignore"):
                    near = seeded.near_exact_values(x, EPSILON)
                    if near is None:
                        return None
                    threshold = float(np.mean((near - evaluate_target(seeded, x)) ** 2))
            if not np.isfinite(threshold):
                raise TargetError(f"its near-exact solution is not finite on region '{name}'")
            shared[name] = threshold
            rows.append({"seed": seed, "split": name, "threshold": threshold})
    return pd.DataFrame(rows)


def exact_threshold(target: Target, region: Region) -> float | None:
    """The near-perfect model's MSE on `region` in closed form, where the target is its linear solution.

    The near-perfect model's error is then affine, d . x + d_b, so its mean
    square is d^T E[x x^T] d + 2 d_b d . E[x] + d_b^2, from the region's
    first two moments (`moments()`: boxes, balls, unions of intervals and
    the shells between them). None for a target with its own near-exact
    solution, or a region that cannot say its moments.
    """
    solution = target.linear_solution
    moments = getattr(region, "moments", None)
    if target.near_exact is not None or solution is None or moments is None or (found := moments()) is None:
        return None
    mean, second = found
    weights = np.asarray(solution.weights)
    # Weights of 1 move to 1 - eps and weights of 0 to eps (`Target.near_exact_values`).
    d = np.where(weights != 0, -EPSILON * weights, EPSILON)
    d_b = -EPSILON * solution.bias if solution.bias else EPSILON
    return float(d @ second @ d + 2 * d_b * (d @ mean) + d_b**2)


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion; (nan, nan) for no trials."""
    if trials == 0:
        return (math.nan, math.nan)
    p = successes / trials
    denominator = 1 + z**2 / trials
    centre = (p + z**2 / (2 * trials)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / trials + z**2 / (4 * trials**2))
    # At 0 and n successes a bound is exactly 0 or 1; rounding would put it a hair inside.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return (low, high)


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


SUMMARY_COLUMNS = [
    "target", "model", "seeds", "successes", "success rate", "success low", "success high",
    "solved at", "solved at q25", "solved at q75", "sparsity error",
    "nalu score interpolation", "nalu score extrapolation",
]


def protocol_summary(results: pd.DataFrame, evaluations: pd.DataFrame, params: pd.DataFrame) -> pd.DataFrame:
    """Per (target, model) with a threshold: success rate, its Wilson interval, solved at, sparsity error, NALU scores."""
    keys = ["target", "model", "seed"]
    seeds = seed_success(results)
    seeds = seeds[seeds["success"].notna()]
    if seeds.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    seeds = seeds.merge(solved_at(evaluations, results), on=keys, how="left")
    sparsity = params.loc[params["parameter"] == "sparsity_error", [*keys, "value"]].rename(columns={"value": "sparsity"})
    seeds = seeds.merge(sparsity, on=keys, how="left").merge(nalu_scores(results), on=keys, how="left")
    rows = []
    for (target, model), group in seeds.groupby(["target", "model"], sort=False):
        won = group[group["success"].astype(bool)]
        k, n = len(won), len(group)
        low, high = wilson_interval(k, n)
        steps = won["solved_at"].dropna()
        rows.append(dict(zip(SUMMARY_COLUMNS, [
            target, model, n, k, k / n, low, high,
            steps.median() if len(steps) else np.nan,
            steps.quantile(0.25) if len(steps) else np.nan,
            steps.quantile(0.75) if len(steps) else np.nan,
            won["sparsity"].median() if k else np.nan,
            group["interpolation"].median(), group["extrapolation"].median(),
        ])))
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def with_nalu_score(results: pd.DataFrame) -> pd.DataFrame:
    """`results` with the NALU paper's score: 100 x MSE / MSE of the family at initialisation.

    The denominator is the median over the cell's seeds of their untrained
    models' MSE on the same split (NaN where that is 0 or not finite), so 0
    is perfect and 100 no better than an untrained model. It is computed
    here, not stored, because it depends on which seeds ran.
    """
    initial = results.groupby(["target", "model", "split"], sort=False)["initial_mse"].transform(
        lambda s: s[np.isfinite(s)].median()
    )
    usable = np.isfinite(initial) & (initial > 0)
    with np.errstate(all="ignore"):
        score = np.where(usable, 100 * results["mse"] / initial.where(usable, 1.0), np.nan)
    return results.assign(nalu_score=score)


def nalu_scores(results: pd.DataFrame) -> pd.DataFrame:
    """Per (target, model, seed): the NALU score on interpolation and on the worst extrapolation region."""
    keys = ["target", "model", "seed"]
    scored = with_nalu_score(results)
    interp = scored[scored["split"] == "interpolation"].set_index(keys)["nalu_score"].rename("interpolation")
    extrap = scored[scored["split_kind"] == "extrapolation"].groupby(keys, sort=False)["nalu_score"].max(min_count=1)
    return pd.concat([interp, extrap.rename("extrapolation")], axis=1).reset_index()
