"""scikit-learn families through the same protocol and command as every other family."""

import numpy as np
import pytest

from benchmark.model import TrainingData, TrainSettings
from benchmark.models.sklearn_families import gaussian_process
from benchmark.predict import predict
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


def test_every_familys_stored_estimators_answer_its_probes_again(run):
    """skops round-trips each family: the estimators read back from the run folder are the ones that were scored."""
    probes = run.table("probes")
    for (target, model), group in probes.groupby(["target", "model"]):
        points = [list(x) for x in group.loc[group["seed"] == group["seed"].iloc[0], "x"]]
        answers = predict(run.run_dir, target, model, points)
        assert np.array_equal(answers["y_pred"].to_numpy(), group["y_pred"].to_numpy()), (target, model)
    assert probes[["target", "model"]].drop_duplicates().shape[0] == 2 * len(FAMILIES)


def test_a_gaussian_process_is_kept_without_its_factor_and_comes_back_whole():
    spec = gaussian_process.create()
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (2, 200, 2))
    trained = spec.build(("a", "b"), [0, 1], "cpu")
    y = np.sin(3 * x[:, :, :1]) + 0.1 * rng.normal(size=(2, 200, 1))  # noisy: the spread is well above zero
    trained.fit(TrainingData(x, y, monitor=[]), TrainSettings())
    state = trained.state()
    assert all(hasattr(e, "L_") for e in trained.estimators)  # the fitted model is left whole
    assert len(state) < 200 * 200 * 8  # without the 200 x 200 factor of either seed
    loaded = spec.build(("a", "b"), [0, 1], "cpu")
    loaded.load_state(state)
    points = rng.uniform(-3, 3, (50, 2))
    for before, after in zip(trained.estimators, loaded.estimators):
        (mean, spread), (mean_again, spread_again) = (e.predict(points, return_std=True) for e in (before, after))
        assert np.array_equal(mean, mean_again)  # the mean needs alpha_ alone, which is stored
        # The factor is computed again as fit computed it: the same up to the last bits a BLAS may order differently.
        assert np.allclose(before.L_, after.L_, rtol=1e-12, atol=0) and np.allclose(spread, spread_again, rtol=1e-9)
