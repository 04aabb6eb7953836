"""The AI Feynman equations as targets: every row checked, regions restricted at poles, selection and the suite."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import assert_one_line_error
from funcbench_targets.feynman import EQUATIONS, TABLE, feynman_target, read_table

import benchmark
from benchmark import Restricted, Shell
from benchmark.checks import LARGEST_VALUE
from benchmark.formula import parse_formula
from benchmark.plan import build_plan, resolve_config
from benchmark.plugins import load_registry
from benchmark.report.tables import (
    cell_summary,
    formula_summary,
    per_seed_errors,
    solution_rates,
)

SAMPLES = 2_000


def test_the_table_holds_the_hundred_equations_each_with_its_variables():
    assert len(EQUATIONS) == 100
    with TABLE.open(newline="") as file:
        rows = list(csv.DictReader(file))
    for row in rows:
        equation = EQUATIONS[row["Filename"]]
        assert len(equation.inputs) == int(row["# variables"])
        expression = parse_formula(equation.formula, equation.inputs)
        # Every variable the table names is one the formula uses, and nothing else.
        assert {str(s) for s in expression.free_symbols} == set(equation.inputs), equation.id
        assert all(lo < hi for lo, hi in zip(equation.low, equation.high))


def test_a_row_whose_variable_count_disagrees_is_refused(tmp_path):
    lines = TABLE.read_text().splitlines()
    header, first = lines[0], lines[1].split(",")
    first[header.split(",").index("# variables")] = "2"  # I.6.2a names one variable
    broken = tmp_path / "table.csv"
    broken.write_text("\n".join([header, ",".join(first)]))
    with pytest.raises(ValueError, match="I.6.2a says 2 variables but names 1"):
        read_table(broken)


@pytest.mark.parametrize("eq", list(EQUATIONS))
def test_every_equation_is_finite_on_its_box_and_on_both_regions(eq):
    target = feynman_target(EQUATIONS[eq])
    rng = np.random.default_rng(0)
    box = target.domain
    assert set(target.extrapolation) == {"near", "far"}
    for name, region in {"train": box, **target.extrapolation}.items():
        x = region.sample(SAMPLES, rng)
        y = target.fn(x)
        assert y.shape == (SAMPLES, 1)
        assert np.all(np.isfinite(y)) and np.all(np.abs(y) <= LARGEST_VALUE), (eq, name)
        if name != "train":
            assert not box.contains(x).any(), (eq, name)  # wholly outside the training data
            # Grown away from the low corner: nothing below a range's low end, so positive stays positive.
            assert np.all(x >= np.asarray(box.low)), (eq, name)


def test_the_regions_are_the_box_grown_two_and_ten_to_twenty_times_from_its_low_corner():
    target = feynman_target(EQUATIONS["I.12.1"])  # F = mu * Nn on [1, 5]^2: no pole, nothing restricted
    near, far = target.extrapolation["near"], target.extrapolation["far"]
    assert isinstance(near, Shell) and isinstance(far, Shell)
    assert near.outer.describe() == "[1, 9]^2" and near.inner.describe() == "[1, 5]^2"
    assert far.outer.describe() == "[1, 81]^2" and far.inner.describe() == "[1, 41]^2"


def test_a_pole_is_approached_no_closer_than_in_training():
    """m = m_0 / sqrt(1 - v^2/c^2), v on [1, 2] and c on [3, 10]: grown, v can reach c; the regions keep
    1 - v^2/c^2 at least as large as the training box's smallest (about 1 - 4/9)."""
    target = feynman_target(EQUATIONS["I.10.7"])
    v, c = 1, 2  # columns of (m_0, v, c)
    for name in ("near", "far"):
        region = target.extrapolation[name]
        assert isinstance(region, Restricted), name
        assert "1 - v**2/c**2 >=" in region.describe()
        x = region.sample(SAMPLES, np.random.default_rng(1))
        assert np.all(1 - x[:, v] ** 2 / x[:, c] ** 2 >= 0.99 * (1 - 4 / 9) - 1e-9)
        assert region.contains(x).all()
    # The plain ring does hold points past the domain edge v = c, which the restriction removed.
    ring = target.extrapolation["far"].region.sample(SAMPLES, np.random.default_rng(1))
    assert np.any(ring[:, v] >= ring[:, c])


def test_the_regions_stay_on_the_training_side_of_a_pole():
    """theta = 1 + n*alpha/(1 - n*alpha/3), n and alpha on [0, 1]: the pole at n*alpha = 3 lies inside both
    rings, and the formula is finite beyond it; the regions keep 1 - n*alpha/3 at least its training minimum
    (about 2/3), on the training side, rather than the far branch of the function."""
    target = feynman_target(EQUATIONS["II.11.28"])
    for name in ("near", "far"):
        region = target.extrapolation[name]
        assert isinstance(region, Restricted) and "-alpha*n/3 + 1 >= " in region.describe(), name
        x = region.sample(SAMPLES, np.random.default_rng(2))
        assert np.all(1 - x[:, 0] * x[:, 1] / 3 >= 0.99 * (1 - 1 / 3) - 1e-9), name
        ring = region.region.sample(SAMPLES, np.random.default_rng(2))
        assert np.any(1 - ring[:, 0] * ring[:, 1] / 3 < 0), name  # the other branch, left out


def test_an_unknown_equation_is_one_line_naming_the_closest_ids(bench):
    result = bench("run", "--targets", "feynman[eq=I.99.99]", "--models", "linear")
    assert_one_line_error(result, "no equation 'I.99.99'", "the closest ids are", "I.9.18")
    result = bench("run", "--targets", "feynman", "--models", "linear")
    assert result.exit_code != 0 and "name an equation, e.g. feynman[eq=I.12.1]" in result.stderr


def test_the_family_is_not_in_all_and_the_listing_shows_every_equation(bench):
    registry = load_registry()
    plan = build_plan(registry, resolve_config(registry, None, {"targets": "all", "models": "linear"}))
    assert not any(t.name == "feynman" for t in plan.targets)
    listing = bench("list", "targets", "feynman")
    assert listing.exit_code == 0, listing.stderr
    for eq, equation in EQUATIONS.items():
        assert f"  feynman[eq={eq}]: {eq}: {equation.output} = {equation.formula}\n" in listing.stdout
    assert "inputs (mu, Nn) trained on [1, 5]^2" in listing.stdout
    assert "where 1 - v**2/c**2 >=" in listing.stdout


def test_the_suite_runs_every_equation_with_the_default_families_and_the_baselines():
    registry = load_registry()
    config = resolve_config(registry, "feynman", {})
    assert config.seeds == 5
    assert config.models == "linear,mlp,mlp_tanh,poly_ridge,random_forest,symbolic"
    plan = build_plan(registry, config)
    assert sorted(t.params["eq"] for t in plan.targets) == sorted(EQUATIONS)


def test_a_formula_run_leads_with_solution_rates_and_checks_formulas_symbolically(bench):
    """F = mu * Nn: a polynomial of degree two holds it exactly and carries it anywhere; the linear unit
    cannot, and its formulas are judged against the true one both ways."""
    result = bench("run", "--targets", "feynman[eq=I.12.1]", "--models", "linear,poly_ridge", "--seeds", "2")
    assert result.exit_code == 0, result.stderr
    assert result.meta()["headline"]["section"] == "solutions"
    lines = [re.split(r"\s{2,}", line.strip()) for line in result.stdout.splitlines()[:3]]
    assert lines[0] == ["model", "targets", "exact outside", "accurate inside", "symbolic solution", "exact formula"]
    rows = {row[0]: dict(zip(lines[0], row)) for row in lines[1:]}
    # One equation: solved or not, by both seeds; the Wilson interval of 1 of 1, and of 0 of 1.
    assert rows["poly_ridge"]["exact outside"] == "1.00 [0.21 – 1.00] (1 / 1; seeds 2 / 2)"
    assert rows["poly_ridge"]["symbolic solution"] == "–"  # it gives no formula
    assert rows["linear"]["exact outside"] == rows["linear"]["symbolic solution"] == "0.00 [0.00 – 0.79] (0 / 1; seeds 0 / 2)"
    formulas = result.table("formulas")
    assert list(formulas.columns) == ["target", "model", "seed", "formula", "exact", "symbolic_solution"]
    assert (formulas["model"] == "linear").all() and not formulas["symbolic_solution"].any()
    index = (result.run_dir / "index.html").read_text()
    assert "How often each family recovers the formula" in index and "mu*Nn" in index
    assert (result.run_dir / "csv" / "solutions.csv").is_file()
    rates = benchmark.load(result.run_dir).solutions().set_index(["model", "criterion"])
    assert rates.loc[("poly_ridge", "exact outside"), ["solved", "targets", "solved_runs", "runs"]].tolist() == [1, 1, 2, 2]
    assert rates.loc[("linear", "symbolic solution"), ["solved", "targets", "solved_runs", "runs"]].tolist() == [0, 1, 0, 2]
    assert ("poly_ridge", "symbolic solution") not in rates.index  # it gives no formulas


def test_the_readme_counts_the_equations_with_restricted_regions():
    restricted = [eq for eq, equation in EQUATIONS.items()
                  if any(isinstance(r, Restricted) for r in feynman_target(equation).extrapolation.values())]
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert f"{len(restricted)} of the 100\nequations have a restricted region" in readme


def test_the_done_when_command_shows_the_regressor_carrying_f_equals_mu_n_and_the_mlp_not(bench):
    result = bench("run", "--targets", "feynman[eq=I.12.1]", "--models", "symbolic,mlp", "--seeds", "2")
    assert result.exit_code == 0, result.stderr
    far = result.table("results").query("split == 'far'").set_index(["model", "seed"])["nmse"]
    assert (far["symbolic"] < 1e-6).all() and len(far["symbolic"]) == 2
    assert (far["mlp"] > 1e-3).all()
    formulas = result.table("formulas").set_index("seed")
    assert (formulas["model"] == "symbolic").all() and formulas["exact"].all() and formulas["symbolic_solution"].all()
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:3]}
    assert rows["symbolic"].count("1.00 [0.21 – 1.00] (1 / 1; seeds 2 / 2)") == 4  # every criterion
    assert "0.00 [0.00 – 0.79] (0 / 1; seeds 0 / 2)" in rows["mlp"]


def _results(rows):
    """A results table of (target, model, seed, split, split_kind, mse, nmse, status) rows, as a run stores it."""
    table = pd.DataFrame(rows, columns=["target", "model", "seed", "split", "split_kind", "mse", "nmse", "status"])
    return table.assign(r2=1 - table["nmse"], accuracy_solution=1 - table["nmse"] > 0.999, initial_mse=np.nan)


def test_a_region_where_predictions_are_not_finite_is_the_worst_not_skipped():
    """A formula off its domain far out predicts NaN there: that seed is not exact outside, whatever its near error."""
    results = _results([
        ("f", "symbolic", 0, "interpolation", "interpolation", 1e-12, 1e-12, "ok"),
        ("f", "symbolic", 0, "near", "extrapolation", 1e-12, 1e-12, "ok"),
        ("f", "symbolic", 0, "far", "extrapolation", np.nan, np.nan, "ok"),
    ])
    seeds = per_seed_errors(results)
    assert seeds["extrapolation"].tolist() == [np.inf]
    assert cell_summary(results)["verdict"].tolist() == ["fits inside the range only"]


def test_solution_rates_count_failed_seeds_and_failed_cells_as_unsolved():
    """Two equations x two seeds of one family: seed 1 of g failed, and f's cell never finished (no rows).
    The denominators are the run's grid, not the rows that happen to exist."""
    meta = {"targets": [{"label": t, "expression": "x"} for t in ("f", "g")], "models": [{"label": "symbolic"}],
            "config": {"seeds": 2}}
    results = _results([
        ("g", "symbolic", 0, "interpolation", "interpolation", 0.0, 0.0, "ok"),
        ("g", "symbolic", 0, "far", "extrapolation", 0.0, 0.0, "ok"),
        ("g", "symbolic", 1, "interpolation", "interpolation", np.nan, np.nan, "failed"),
        ("g", "symbolic", 1, "far", "extrapolation", np.nan, np.nan, "failed"),
    ])
    formulas = pd.DataFrame({"target": ["g"], "model": ["symbolic"], "seed": [0], "formula": ["y = x"],
                             "exact": [True], "symbolic_solution": pd.array([True], dtype="boolean")})
    rates = solution_rates(meta, results, formulas).set_index("criterion")
    for criterion in ("exact outside", "symbolic solution", "exact formula"):
        # g: one of two seeds, not more than half; f: nothing. Two equations, four runs.
        assert rates.loc[criterion, ["solved", "targets", "solved_runs", "runs"]].tolist() == [0, 2, 1, 4], criterion
    assert formula_summary(formulas, results)["symbolic solutions"].tolist() == ["1 / 2"]


def test_a_report_of_a_run_folder_from_before_these_columns_is_drawn(bench):
    """Run folders written before results had `error` and formulas had `symbolic_solution` still report."""
    result = bench("run", "--targets", "feynman[eq=I.12.1]", "--models", "linear", "--seeds", "2", "--epochs", "2")
    assert result.exit_code == 0, result.stderr
    for folder in [result.run_dir, *(result.run_dir / "cells").iterdir()]:
        for table, column in (("results", "error"), ("formulas", "symbolic_solution")):
            path = folder / f"{table}.parquet"
            pd.read_parquet(path).drop(columns=column).to_parquet(path, index=False)
    rebuilt = bench("report", str(result.run_dir))
    assert rebuilt.exit_code == 0, rebuilt.stderr
    assert "How often each family recovers the formula" in (result.run_dir / "index.html").read_text()
    assert benchmark.load(result.run_dir).formulas["symbolic_solution"].isna().all()


def test_a_mixed_run_shows_the_symbolic_check_only_where_the_target_is_a_formula(bench):
    result = bench("run", "--targets", "addition,feynman[eq=I.12.1]", "--models", "linear", "--seeds", "2",
                   "--epochs", "2")
    assert result.exit_code == 0, result.stderr
    assert result.meta()["headline"]["section"] == "verdict"  # not every target is a formula
    pages = {page.stem: page.read_text() for page in (result.run_dir / "targets").glob("*.html")}
    assert "symbolic_solution" in pages["feynman-eq-I.12.1"] and "symbolic_solution" not in pages["addition"]
    index = (result.run_dir / "index.html").read_text()
    assert "How often each family recovers the formula" in index  # the formula targets' section, after the verdict
    assert "&lt;NA&gt;" not in index + "".join(pages.values())
