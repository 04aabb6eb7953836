"""scikit-learn families through the same protocol and command as every other family."""

import numpy as np
import pytest

from benchmark.statistics import nalu_scores

FAMILIES = ["poly_ridge", "knn", "random_forest[trees=20]", "gradient_boosting[trees=20]", "gaussian_process",
            "sklearn_mlp[epochs=20]"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from click.testing import CliRunner
    from conftest import Invocation

    from benchmark.cli import cli

    out = tmp_path_factory.mktemp("sklearn")
    result = CliRunner().invoke(cli, ["run", "--targets", "product,addition", "--models", ",".join(FAMILIES),
                                      "--seeds", "2", "--samples", "300", "--out", str(out)], catch_exceptions=False)
    return Invocation(result.exit_code, result.stdout, result.stderr)


def test_every_family_runs_quietly_with_finite_predictions(run):
    assert run.exit_code == 0, run.stderr
    assert run.stderr.strip() == ""  # no ConvergenceWarning or other noise
    results = run.table("results")
    assert len(set(results["model"])) == len(FAMILIES)
    assert (results["status"] == "ok").all() and np.isfinite(results["mse"]).all()
    # Untrained estimators predict nothing, so their NALU score is undefined rather than made up.
    assert nalu_scores(results)["interpolation"].isna().all()


def test_polynomial_ridge_of_degree_two_carries_the_product_anywhere(run):
    results = run.table("results").query("target == 'product' and model == 'poly_ridge'")
    assert (results.loc[results["split_kind"] == "extrapolation", "nmse"] < 1e-10).all()
    params = run.table("params").query("target == 'product' and model == 'poly_ridge'")
    assert np.allclose(params.loc[params["parameter"] == "coef[a b]", "value"], 1.0, atol=1e-6)


def test_nearest_neighbours_predict_a_constant_far_outside(run):
    lines = run.table("lines").query("model == 'knn' and distance > 1")
    for (_, _, side), group in lines.groupby(["target", "seed", np.sign(lines["position"])]):
        assert np.ptp(group["y_pred"]) < 1e-12  # the same k nearest points, whatever the distance
    far = run.table("results").query("model == 'knn' and split == 'far'")
    assert (far["r2"] < 0).all()  # worse than the far region's own mean


def test_each_seed_is_its_own_estimator_and_data(run):
    results = run.table("results").query("model == 'random_forest[trees=20]' and split == 'interpolation'")
    assert results["mse"].nunique() == len(results)
