"""The metrics every run reports, against scikit-learn's own, and the extrapolation-linearity measurement."""

import numpy as np
from sklearn.metrics import mean_absolute_percentage_error, r2_score

from benchmark.evaluate import ACCURACY_SOLUTION_R2, _line_r2, error_metrics


def test_r2_and_mean_ape_match_scikit_learn():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(4, 200, 1))
    y[1, 3, 0] = 0.0  # a zero target: both floor |y| at float64's epsilon
    predicted = y + rng.normal(scale=[[[0.01]], [[0.3]], [[1.0]], [[3.0]]], size=y.shape)
    metrics = error_metrics(y, predicted)
    for s in range(4):
        assert np.isclose(metrics["r2"][s], r2_score(y[s], predicted[s]), rtol=1e-12)
        assert np.isclose(metrics["mape_mean_pct"][s], 100 * mean_absolute_percentage_error(y[s], predicted[s]), rtol=1e-12)
        ratios = np.abs(predicted[s] - y[s]) / np.maximum(np.abs(y[s]), np.finfo(float).eps)
        assert np.isclose(metrics["mape_median_pct"][s], 100 * np.median(ratios))
    assert metrics["accuracy_solution"].tolist() == [r > ACCURACY_SOLUTION_R2 for r in metrics["r2"]] == [True, False, False, False]


def test_line_r2_is_one_on_lines_and_constants_and_less_on_curves():
    t = np.linspace(1, 5, 32)[None]
    curves = np.stack([3 * t[0] - 2, np.full(32, 7.0), t[0] ** 2, np.sin(3 * t[0])])
    r2 = _line_r2(t, curves)
    assert np.allclose(r2[:2], 1.0)
    assert 0.9 < r2[2] < 1 and r2[3] < 0.5
    assert np.isnan(_line_r2(t, np.where(t > 3, np.inf, t)))[0]


def test_relu_mlp_extrapolates_linearly_and_wrongly_where_tanh_does_not(bench):
    result = bench("run", "--targets", "square", "--models", "mlp,mlp_tanh", "--seeds", "2", "--epochs", "60")
    assert result.exit_code == 0, result.stderr
    linearity = result.table("linearity").groupby("model")["linearity_median_r2"].median()
    far = result.table("results").query("split == 'far'").groupby("model")["nmse"].median()
    assert linearity["mlp"] > 0.999 and far["mlp"] > 1  # straight, and far from x^2
    assert linearity["mlp_tanh"] < 0.95  # it saturates instead
    assert "extrapolation linearity R²</th>" in (result.run_dir / "index.html").read_text()


def test_relu_mlp_on_the_quadratic_form_is_straight_outside_and_wrong(bench):
    """Xu et al.'s observation, through their suite's settings (shortened), trained on a ball and on a cube."""
    result = bench("run", "--suite", "relu-extrapolation", "--targets", "quadratic[d=2,shape=sphere],linear_map[d=2]", "--seeds", "2",
                   "--epochs", "20", "--samples", "2000", "--eval-samples", "500")
    assert result.exit_code == 0, result.stderr
    assert result.meta()["config"]["models"] == "mlp[width=128,depth=1]"
    linearity = result.table("linearity").groupby("target")["linearity_median_r2"].min()
    test = result.table("results").query("split == 'test'").groupby("target")["nmse"].max()
    assert (linearity > 0.99).all()  # straight outside the data, on both targets
    quadratic = test["quadratic[shape=sphere]"]
    assert quadratic > 0.2 and quadratic > 10 * test["linear_map"]  # right only on the linear one
    assert "ball of radius 1 about the origin" in (result.run_dir / "targets" / "quadratic-shape-sphere.html").read_text()
