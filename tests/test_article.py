"""The article's experiment, and the lesson it is meant to teach, through the CLI."""

import numpy as np
import pandas as pd


def test_linear_unit_learns_addition_and_answers_99(bench):
    result = bench("run", "--targets", "addition", "--models", "linear", "--seeds", "1")
    assert result.exit_code == 0, result.stderr

    params = result.table("params").set_index("parameter")["value"]
    assert abs(params["weight[a]"] - 1) < 1e-3
    assert abs(params["weight[b]"] - 1) < 1e-3
    assert abs(params["bias"]) < 1e-3

    probes = result.table("probes")
    question = probes[probes["x"].map(lambda x: list(x) == [9.0, 90.0])]
    assert len(question) == 1
    assert question["y_true"].iloc[0] == 99
    assert abs(question["y_pred"].iloc[0] - 99) < 0.01

    curves = result.table("curves")
    assert curves["step"].tolist() == list(range(5, 501, 5))  # one loss per epoch of 5 batches of 200
    assert curves["loss"].iloc[-1] < 1e-9 < curves["loss"].iloc[0]


def median_nmse(results: pd.DataFrame) -> pd.DataFrame:
    return results.groupby(["target", "model", "split"])["nmse"].median().unstack("split")


def test_linear_unit_extrapolates_linear_targets_exactly_and_fails_the_rest(bench):
    result = bench(
        "run", "--targets", "addition,subtraction,weighted_sum,weighted_sum[n=10],product,square,sine",
        "--models", "linear", "--seeds", "3",
    )
    assert result.exit_code == 0, result.stderr
    results = result.table("results")
    assert set(results["split"]) == {"train", "interpolation", "near", "far"}
    assert (results["status"] == "ok").all()

    linear_targets = results[results["target"].isin(["addition", "subtraction", "weighted_sum", "weighted_sum[n=10]"])]
    evaluated = linear_targets[linear_targets["split"] != "train"]
    assert len(evaluated) == 4 * 3 * 3
    # Every seed, not only the median: the linear solution is exactly reachable.
    assert evaluated["nmse"].max() < 1e-6, evaluated.sort_values("nmse").tail()

    nonlinear = median_nmse(results).loc[["product", "square", "sine"]]
    assert (nonlinear[["near", "far"]] > 0.05).all().all(), nonlinear


def test_mlp_fits_sine_inside_its_training_range(bench):
    result = bench("run", "--targets", "sine", "--models", "mlp_tanh,mlp", "--seeds", "3")
    assert result.exit_code == 0, result.stderr
    nmse = median_nmse(result.table("results"))
    assert (nmse["interpolation"] < 1e-2).all(), nmse
    # ... and, having no notion of periodicity, not far outside it.
    assert (nmse["far"] > 0.05).all(), nmse


def test_weighted_sum_learns_its_documented_weights(bench):
    result = bench("run", "--targets", "weighted_sum[n=3]", "--models", "linear", "--seeds", "1")
    assert result.exit_code == 0, result.stderr
    expected = np.random.default_rng(3).uniform(-2, 2, size=3).round(2)
    params = result.table("params").set_index("parameter")["value"]
    learned = params[["weight[x1]", "weight[x2]", "weight[x3]"]].to_numpy()
    np.testing.assert_allclose(learned, expected, atol=1e-3)
    solution = result.meta()["targets"][0]["linear_solution"]
    np.testing.assert_allclose(solution["weights"], expected)
