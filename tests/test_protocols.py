"""The published arithmetic protocols through the CLI: suites, training by steps, the success statistics."""

import re
import textwrap
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import Invocation, assert_one_line_error

from benchmark.cli import cli
from benchmark.data import sample_splits
from benchmark.plan import build_plan, resolve_config
from benchmark.plugins import load_registry
from benchmark.statistics import nalu_scores

SHORT = ["--suite", "arithmetic-single-layer", "--seeds", "3",
         "--targets", "binary_op[op=add],binary_op[op=sub],binary_op[op=mul]", "--models", "nau,nmu,mlp"]


@pytest.fixture(scope="module")
def short_run(tmp_path_factory) -> Invocation:
    """NAU, NMU and a ReLU MLP on +, - and * over U[1, 2] -> U[2, 6]: 3 seeds x the suite's 5,000 steps."""
    out = tmp_path_factory.mktemp("protocol")
    result = CliRunner().invoke(cli, ["run", *SHORT, "--out", str(out)], catch_exceptions=False)
    return Invocation(result.exit_code, result.stdout, result.stderr)


def success(run: Invocation) -> pd.Series:
    return pd.read_csv(run.run_dir / "csv" / "success.csv").set_index(["target", "model"])["success rate"]


def test_units_solve_what_they_are_built_for_and_the_mlp_does_not(short_run):
    assert short_run.exit_code == 0, short_run.stderr
    rates = success(short_run)
    assert rates[("binary_op", "nau")] == 1.0  # a + b
    assert rates[("binary_op[op=sub]", "nau")] == 1.0
    assert rates[("binary_op[op=mul]", "nmu")] == 1.0
    assert rates[("binary_op[op=mul]", "mlp")] == 0.0  # fits in range, fails outside it
    assert rates[("binary_op[op=mul]", "nau")] == 0.0  # a sum cannot be a product
    summary = pd.read_csv(short_run.run_dir / "csv" / "success.csv").set_index(["target", "model"])
    solved = summary.loc[("binary_op[op=mul]", "nmu")]
    assert 0 < solved["solved at"] <= 5000 and solved["success low"] > 0.4 and solved["success high"] == 1.0
    assert solved["sparsity error"] < 1e-3


def test_the_suite_sets_the_published_settings_and_the_command_line_overrides_them(short_run):
    config = short_run.meta()["config"]
    assert config["suite"] == "arithmetic-single-layer"
    assert (config["batch_size"], config["learning_rate"], config["eval_samples"]) == (128, 1e-3, 10_000)
    assert config["seeds"] == 3  # given on the command line
    assert (config["steps"], config["eval_every"]) == (5000, 500)  # from the suite


def test_learned_formulas_are_read_and_checked(short_run):
    formulas = short_run.table("formulas").set_index(["target", "model", "seed"]).sort_index()
    assert set(formulas.loc[("binary_op", "nau"), "formula"]) == {"y = 1.000*a + 1.000*b"}
    assert formulas.loc[("binary_op", "nau"), "exact"].all()
    assert set(formulas.loc[("binary_op[op=mul]", "nmu"), "formula"]) == {"y = a * b"}
    assert not formulas.loc[("binary_op[op=mul]", "nau"), "exact"].any()
    assert "mlp" not in set(formulas.reset_index()["model"])  # an MLP has no formula to read
    index = (short_run.run_dir / "index.html").read_text()
    assert "Success on the published criterion" in index and "y = a * b" in index


def test_the_kept_checkpoint_is_the_best_validation_one(short_run):
    results = short_run.table("results")
    evaluations = short_run.table("evaluations")
    validation = evaluations[evaluations["split"] == "validation"]
    best = validation.loc[validation.groupby(["target", "model", "seed"])["mse"].idxmin()]
    kept = results[results["split"] == "validation"].merge(best, on=["target", "model", "seed"], suffixes=("", "_best"))
    assert len(kept) == 3 * 3 * 3
    np.testing.assert_array_equal(kept["kept_step"], kept["step"])
    np.testing.assert_allclose(kept["mse"], kept["mse_best"], rtol=1e-5, atol=1e-12)
    assert sorted(evaluations["step"].unique()) == list(range(0, 5001, 500))
    # The validation split only picks the checkpoint; interpolation is a separate, held-out sample.
    splits = results.drop_duplicates("split").set_index("split")["split_kind"].to_dict()
    assert splits == {"train": "train", "validation": "validation", "interpolation": "interpolation",
                      "extrapolation": "extrapolation"}


def test_nalu_score_divides_by_the_untrained_models_error(short_run):
    registry = load_registry()
    results = short_run.table("results")
    target = registry.targets["binary_op"].create(op="mul")
    splits = {s.name: s for s in sample_splits(target, (0, 1, 2), 1000, 10_000)}
    untrained = registry.models["nmu"].create().build(target.inputs, (0, 1, 2), "cpu")
    split = splits["extrapolation"]
    initial = ((untrained.predict(split.x) - split.y) ** 2).mean(axis=(1, 2))
    rows = results[(results["target"] == "binary_op[op=mul]") & (results["model"] == "nmu") & (results["split"] == "extrapolation")]
    np.testing.assert_allclose(rows["initial_mse"], initial, rtol=1e-6)
    scores = nalu_scores(results).set_index(["target", "model", "seed"]).sort_index().loc[("binary_op[op=mul]", "nmu")]
    np.testing.assert_allclose(scores["extrapolation"], 100 * rows["mse"].to_numpy() / np.median(initial), rtol=1e-6)
    assert (scores["extrapolation"] < 1e-6).all()  # solved: a vanishing fraction of the untrained error


def test_subset_offsets_are_drawn_per_seed():
    target = load_registry().targets["subset_op"].create(op="add")
    x = np.ones((1, 100))
    x[0, 50:] = 0  # the sum a + b depends on where the subsets sit
    values = {float(target.at_seed(seed).fn(x)[0, 0]) for seed in range(20)}
    assert len(values) > 3
    splits = sample_splits(target, (4, 7), 50, 50)
    for s, seed in enumerate((4, 7)):
        np.testing.assert_allclose(splits[0].y[s], target.at_seed(seed).fn(splits[0].x[s].astype(np.float64)))


def test_the_static_task_runs_through_the_same_runner(bench):
    result = bench("run", "--suite", "arithmetic-static", "--targets", "subset_op[op=mul,size=8]", "--models", "nmu[hidden=2],mlp[width=2,depth=1]",
                   "--seeds", "2", "--steps", "200", "--eval-every", "100", "--eval-samples", "500")
    assert result.exit_code == 0, result.stderr
    summary = pd.read_csv(result.run_dir / "csv" / "success.csv")
    assert set(summary["model"]) == {"nmu[hidden=2]", "mlp[width=2,depth=1]"} and (summary["seeds"] == 2).all()
    params = result.table("params")
    assert {"layer1.weight[x1,h1]", "layer2.weight[h2]", "sparsity_error"} <= set(params["parameter"])


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--suite", "arithmetc"], ["unknown suite 'arithmetc'", "did you mean"]),
        (["--suite", "arithmetic-static,arithmetic-single-layer"], ["--suite takes one suite"]),
        (["--steps", "-1"], ["--steps must be between 0 and"]),
        (["--reg-start", "10", "--reg-end", "5"], ["need 0 <= --reg-start <= --reg-end"]),
        (["--steps", "1000", "--reg-end", "100"], ["--reg-end 100 comes before the regulariser's start, step 400"]),
        (["--models", "nau[hidden=-1]"], ["hidden must be between 0"]),
    ],
)
def test_bad_protocol_options_get_one_line(bench, args, fragments):
    assert_one_line_error(bench("run", *args), *fragments)


def test_list_suites(bench):
    result = bench("list", "suites", "--details")
    assert result.exit_code == 0
    names = [line.split(":")[0] for line in result.stdout.splitlines() if not line.startswith(" ")]
    assert names == ["feynman", "arithmetic-static", "arithmetic-static-published", "arithmetic-single-layer",
                     "arithmetic-single-layer-published", "relu-extrapolation"]
    assert "steps 5000000" in result.stdout
    # scikit-learn's families and the symbolic regressor have no learning rate to show.
    assert "      random_forest: fitted by its own solver, on the fixed training set" in result.stdout


PLUGIN_SUITE = '''
import re
import textwrap

import numpy as np
from benchmark import Box, near_and_far, suite, target

LINE = Box((0.0,), (1.0,))

@target(domain=LINE, extrapolation=near_and_far(LINE, "low"), description="3x", linear_solution=((3.0,), 0.0))
def triple(x):
    return 3 * x

study = suite("triple-study", description="a plugin's own study", targets="triple", models="linear", seeds=2, epochs=150)
broken = suite("broken-study", description="a typo in a setting", targets="triple", models="linear", seeds=2, epohcs=40)
'''


def test_a_plugin_defines_a_suite(bench, tmp_path):
    plugin = tmp_path / "study.py"
    plugin.write_text(PLUGIN_SUITE)
    result = bench("run", "--plugin", str(plugin), "--suite", "triple-study")
    assert result.exit_code == 0, result.stderr
    config = result.meta()["config"]
    assert (config["suite"], config["seeds"], config["epochs"], config["targets"]) == ("triple-study", 2, 150, "triple")
    rates = success(result)
    assert rates[("triple", "linear")] == 1.0  # the linear unit learns 3x exactly
    assert_one_line_error(bench("run", "--plugin", str(plugin), "--suite", "broken-study"),
                          "suite 'broken-study' sets unknown option(s) epohcs")


RARELY_UNDEFINED = '''
import re
import textwrap

import numpy as np
from benchmark import Box, near_and_far, target

LINE = Box((0.0,), (1.0,))

@target(domain=LINE, extrapolation=near_and_far(LINE, "low"), description="undefined on a sliver of its domain")
def sliver(x):
    return np.where((x > 0.5) & (x < 0.5003), np.nan, x)
'''


def test_a_target_undefined_where_a_fresh_batch_lands_is_skipped_with_one_line(bench, tmp_path):
    plugin = tmp_path / "sliver.py"
    plugin.write_text(RARELY_UNDEFINED)
    # Its checks and fixed splits miss the sliver; 20,000 fresh points do not.
    result = bench("run", "--plugin", str(plugin), "--targets", "sliver,addition", "--models", "linear", "--seeds", "1",
                   "--steps", "200", "--batch-size", "100", "--samples", "20", "--eval-samples", "20")
    assert result.exit_code == 1, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "target 'sliver' failed while training: returned NaN or infinite values" in warnings[0]
    assert set(result.table("results")["target"]) == {"addition"}
    assert "Traceback" not in result.stderr


def test_a_suite_sets_the_npus_learning_rate_apart_and_a_repeat_from_run_json_keeps_it(bench, tmp_path):
    args = ["--suite", "arithmetic-single-layer", "--targets", "binary_op[op=mul]", "--models", "npu,nau",
            "--steps", "40", "--eval-every", "20", "--seeds", "1", "--eval-samples", "100"]
    registry = load_registry()
    config = resolve_config(registry, "arithmetic-single-layer", {"steps": 40})
    rates = {cell.model.label: cell.settings.learning_rate
             for cell in build_plan(registry, replace(config, targets="binary_op[op=mul]", models="npu,nau")).cells}
    assert rates == {"npu": 5e-3, "nau": 1e-3}  # nalm-benchmark's: the NPUs at 5e-3, every other unit at 1e-3
    first = bench("run", *args)
    assert first.exit_code == 0, first.stderr
    again = bench("run", "--config", str(first.run_dir))
    assert again.exit_code == 0, again.stderr
    assert "(0 trained, 2 reused)" in again.stdout and again.run_dir == first.run_dir
    # An option given on the command line wins for every family, the NPUs included.
    overridden = resolve_config(registry, "arithmetic-single-layer", {"learning_rate": 0.02})
    assert overridden.model_settings == {}


def test_the_published_suites_train_each_unit_with_its_published_regulariser(bench):
    registry = load_registry()
    config = resolve_config(registry, "arithmetic-single-layer-published", {})
    settings = {cell.model.label: cell.settings for cell in
                build_plan(registry, replace(config, targets="binary_op[op=mul,range=1:2]")).cells}
    # nalm-benchmark's single_layer_benchmark.sh: NAU 0.01 and NMU 10, both ramped over steps 20,000 to 35,000.
    assert (settings["nau"].regularizer_strength, settings["nau"].reg_start, settings["nau"].reg_end) == (0.01, 20_000, 35_000)
    assert (settings["nmu"].regularizer_strength, settings["nmu"].reg_start, settings["nmu"].reg_end) == (10.0, 20_000, 35_000)
    assert (settings["npu[beta=div]"].learning_rate, settings["npu[beta=div]"].reg_end) == (5e-3, 20_000)
    static = resolve_config(registry, "arithmetic-static-published", {})
    static_settings = {cell.model.label: cell.settings for cell in
                       build_plan(registry, replace(static, targets="subset_op[op=mul]")).cells}
    # Madsen & Johansen 2020: NAU 0.01 from 5,000 to 50,000 steps, NMU 10 from 1,000,000 to 2,000,000.
    nau, nmu = static_settings["nau[hidden=2]"], static_settings["nmu[hidden=2]"]
    assert (nau.regularizer_strength, nau.reg_start, nau.reg_end) == (0.01, 5_000, 50_000)
    assert (nmu.regularizer_strength, nmu.reg_start, nmu.reg_end) == (10.0, 1_000_000, 2_000_000)
    # The ramp is one setting: --reg-start alone replaces every family's, which then ends at its own schedule.
    moved = resolve_config(registry, "arithmetic-static-published", {"reg_start": 100, "steps": 1_000})
    moved_settings = {cell.model.label: cell.settings for cell in
                      build_plan(registry, replace(moved, targets="subset_op[op=mul]")).cells}
    assert moved_settings["nau[hidden=2]"].reg_start == moved_settings["nmu[hidden=2]"].reg_start == 100
    assert moved_settings["nau[hidden=2]"].reg_end == moved_settings["nmu[hidden=2]"].reg_end == 700  # 70% of 1,000
    assert moved_settings["nmu[hidden=2]"].regularizer_strength == 10.0  # the strength stays the suite's
    listed = bench("list", "suites", "arithmetic-static-published")
    assert listed.exit_code == 0, listed.stderr
    assert "nau[hidden=2]: learning rate 0.001, adam, mse loss, regulariser x0.01, ramped from step 5,000 to 50,000" in listed.stdout
    assert "nmu[hidden=2]: learning rate 0.001, adam, mse loss, regulariser x10, ramped from step 1,000,000 to 2,000,000" in listed.stdout
    assert "linear: learning rate 0.001, adam, mse loss\n" in listed.stdout  # no regulariser to speak of


def test_a_suite_that_sets_an_unknown_setting_for_a_model_is_one_line(bench, tmp_path):
    plugin = tmp_path / "odd_suite.py"
    plugin.write_text(textwrap.dedent("""
        from benchmark import suite
        odd = suite("odd", description="a typo", targets="addition", models="nau", model_settings={"nau": {"reg_begin": 5}})
    """))
    result = bench("run", "--plugin", str(plugin), "--suite", "odd")
    assert_one_line_error(result, "suite 'odd' sets reg_begin for model 'nau'; a suite may set only")
    assert "reg_start, reg_end per model" in result.stderr


PLUGIN_REPRODUCTION = PLUGIN_SUITE + '''
from benchmark import Reference

# The numbers are known: the linear unit learns 3x exactly and cannot multiply.
repro = suite("repro", description="a study with published numbers", targets="triple,binary_op[op=mul,range=1:2]",
              models="linear", seeds=2, epochs=150, reference=Reference.from_rows([
                  dict(target="triple", model="linear", seeds=50, success_rate=1.0, success_low=0.93,
                       success_high=1.0, solved_at_median=None, sparsity_error_mean=0.0),
                  dict(target="binary_op[op=mul,range=1:2]", model="linear", seeds=100, success_rate=1.0,
                       success_low=0.96, success_high=1.0, solved_at_median=None, sparsity_error_mean=None),
                  dict(target="triple", model="nau", seeds=10, success_rate=0.5, success_low=0.24,
                       success_high=0.76, solved_at_median=None, sparsity_error_mean=None),
              ], source="A. Author 2020, Table 1"))
'''


def test_a_suite_run_as_published_gets_a_verdict_per_row_and_one_run_otherwise_gets_context(bench, tmp_path):
    plugin = tmp_path / "repro.py"
    plugin.write_text(PLUGIN_REPRODUCTION)
    as_published = bench("run", "--plugin", str(plugin), "--suite", "repro")
    assert as_published.exit_code == 0, as_published.stderr
    assert as_published.meta()["reference"]["differences"] == []
    table = pd.read_csv(as_published.run_dir / "csv" / "published.csv").set_index(["target", "model"])
    # 2 of 2 against 50 of 50: no evidence of a different rate. 0 of 2 against 100 of 100: Fisher's p is
    # 1 / C(102, 2), far below 0.05. The NAU did not run: its published row is not shown.
    assert table["verdict"].to_dict() == {("triple", "linear"): "consistent", ("binary_op[op=mul]", "linear"): "differs"}
    assert table.loc[("triple", "linear"), "published success [95% CI]"] == "1.00 [0.93 – 1.00] of 50"
    assert table.loc[("triple", "linear"), "this run [95% CI]"].endswith(" of 2")
    index = (as_published.run_dir / "index.html").read_text()
    assert "Published: A. Author 2020, Table 1." in index and "This run trains as published." in index
    assert index.index("Published results beside this run") < index.index("<h2>Verdict")

    shortened = bench("run", "--plugin", str(plugin), "--suite", "repro", "--seeds", "3", "--epochs", "40",
                      "--out", str(tmp_path / "short"))
    assert shortened.exit_code == 0, shortened.stderr
    assert shortened.meta()["reference"]["differences"] == ["seeds: 3 here, 2 published", "epochs: 40 here, 150 published"]
    context = pd.read_csv(shortened.run_dir / "csv" / "published.csv")
    assert set(context["verdict"]) == {"–"} and len(context) == 2
    index = (shortened.run_dir / "index.html").read_text()
    assert "This run does not train as published" in index and "seeds: 3 here, 2 published" in index


def test_the_static_task_as_published_carries_madsen_and_johansens_numbers(bench, tmp_path):
    result = bench("run", "--suite", "arithmetic-static-published", "--targets", "subset_op[op=mul]",
                   "--models", "nmu[hidden=2],linear", "--steps", "40", "--eval-every", "10", "--seeds", "2",
                   "--eval-samples", "200")
    assert result.exit_code == 0, result.stderr
    reference = result.meta()["reference"]
    assert reference["differences"] == ["seeds: 2 here, 100 published", "steps: 40 here, 5,000,000 published",
                                        "eval-every: 10 here, 1,000 published",
                                        "eval-samples: 200 here, 10,000 published"]
    assert "Madsen & Johansen 2020" in reference["source"]
    table = pd.read_csv(result.run_dir / "csv" / "published.csv").set_index("model")
    assert table.loc["nmu[hidden=2]", "published success [95% CI]"] == "0.98 [0.93 – 0.99] of 100"  # Table 2
    assert table.loc["nmu[hidden=2]", "published solved at (median)"] == "1,434,500"
    assert table.loc["linear", "published success [95% CI]"] == "0.00 [0.00 – 0.04] of 100"
    assert "Python warning" not in result.stderr and "Warning" not in result.stderr


def test_a_reference_with_a_row_twice_or_a_rate_above_one_is_refused():
    from benchmark import Reference
    from benchmark.errors import FuncbenchError

    row = dict(target="addition", model="linear", seeds=10, success_rate=1.0, success_low=0.7, success_high=1.0,
               solved_at_median=None, sparsity_error_mean=None)
    with pytest.raises(FuncbenchError, match=r"\(addition, linear\) more than once"):
        Reference.from_rows([row, row], source="x")
    with pytest.raises(FuncbenchError, match=r"success rates outside \[0, 1\]"):
        Reference.from_rows([{**row, "success_rate": 98.0}], source="x")
    with pytest.raises(FuncbenchError, match="lacks column"):
        Reference.from_rows([{"target": "addition", "model": "linear"}], source="x")


def test_an_arithmetic_suites_report_and_summary_lead_with_its_success_rates(bench):
    result = bench("run", "--suite", "arithmetic-single-layer", "--models", "nau,nmu",
                   "--targets", "binary_op[op=add,range=1:2],binary_op[op=mul,range=1:2]",
                   "--steps", "60", "--eval-every", "20", "--seeds", "2", "--eval-samples", "100")
    assert result.exit_code == 0, result.stderr
    assert result.meta()["headline"] == {"section": "success", "reference_model": "linear"}
    sections = re.findall(r"<h2>(.*?)</h2>", (result.run_dir / "index.html").read_text())
    assert sections[0] == "Success on the published criterion"
    # The linear unit did not run: no section speaks of it, and the best model per target stands in.
    assert not any("linear" in section for section in sections) and "The best model per target" in sections
    header = next(line for line in result.stdout.splitlines() if line.startswith("model"))
    assert header.split()[:4] == ["model", "targets", "successes", "success"]
    rates = success(result)
    pooled = {m: sum(rates[(t, m)] for t in ("binary_op", "binary_op[op=mul]")) * 2 for m in ("nau", "nmu")}
    for line in result.stdout.splitlines():
        if line.split()[:1] in (["nau"], ["nmu"]):
            model, targets, k, _, n = line.split()[:5]
            assert (int(targets), int(k), int(n)) == (2, round(pooled[model]), 4)


def test_the_default_run_leads_with_the_linear_units_verdict_and_a_plugin_suite_can_lead_with_linearity(bench, tmp_path):
    default = bench("run", "--targets", "addition,product", "--models", "linear,mlp", "--seeds", "2", "--epochs", "5")
    assert default.exit_code == 0, default.stderr
    sections = re.findall(r"<h2>(.*?)</h2>", (default.run_dir / "index.html").read_text())
    assert sections[0] == "Verdict: where linear succeeds and where it fails"
    assert default.stdout.splitlines()[0].split()[:3] == ["target", "linear", "interpolation"]
    plugin = tmp_path / "straight.py"
    plugin.write_text(textwrap.dedent("""
        from benchmark import suite
        straight = suite("straight", description="how straight an MLP runs", targets="addition,sine",
                         models="mlp", headline="linearity", reference_model=None, seeds=2, epochs=5)
    """))
    study = bench("run", "--plugin", str(plugin), "--suite", "straight", "--out", str(tmp_path / "runs"))
    assert study.exit_code == 0, study.stderr
    sections = re.findall(r"<h2>(.*?)</h2>", (study.run_dir / "index.html").read_text())
    assert sections[0] == "Leaderboard" and "The best model per target" in sections
    assert "extrapolation linearity R²" in study.stdout.splitlines()[0]


def test_models_that_are_all_exact_tie_for_best():
    from benchmark.report.tables import best_models

    cells = pd.DataFrame({"target": ["t", "t", "t", "u", "u"], "model": ["a", "b", "c", "a", "b"],
                          "extrapolation": [3e-13, 1e-14, 0.5, 1e-14, 0.2], "verdict": ["exact everywhere"] * 5})
    best = best_models(cells)
    assert best["t"] == "tie, all exact: b, a" and best["u"] == "a"  # one exact model is simply the best
