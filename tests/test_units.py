"""The neural arithmetic units, the formula readout and the published statistics, checked by hand."""

import math

import numpy as np
import pytest
import torch
from scipy.optimize import brentq

from benchmark.formula import GatedProduct, Input, PowerProduct, is_exact, linear_form
from benchmark.models import MonitoredSplit, TrainingData, TrainSettings
from benchmark.models.units import LOG_EPSILON, UnitLayer, UnitNetwork
from benchmark.plugins import load_registry
from benchmark.statistics import EPSILON, success_thresholds, wilson_interval


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def layer_with(kind, weights, **extra):
    """A one-member layer of `kind` whose parameters are set to the given (in, out) arrays."""
    w = np.asarray(weights, dtype=np.float32)
    layer = UnitLayer(kind, w.shape[0], w.shape[1], [torch.Generator().manual_seed(0)])
    with torch.no_grad():
        for name, value in {"w" if kind in ("nau", "nmu") else "w_hat": w, **extra}.items():
            getattr(layer, name).copy_(torch.as_tensor(np.asarray(value, dtype=np.float32))[None])
    return layer


def forward(layer, x):
    return layer(torch.as_tensor(np.asarray(x, dtype=np.float32))[None]).detach().numpy()[0]


X = [[2.0, 3.0], [0.5, -4.0]]


def test_nau_is_a_plain_matrix_product():
    out = forward(layer_with("nau", [[1.0], [-0.5]]), X)
    np.testing.assert_allclose(out[:, 0], [2 - 1.5, 0.5 + 2.0])


def test_nmu_multiplies_gated_inputs():
    # W = (1, 0.5): y = x1 * (0.5 * x2 + 0.5)
    out = forward(layer_with("nmu", [[1.0], [0.5]]), X)
    np.testing.assert_allclose(out[:, 0], [2 * (1.5 + 0.5), 0.5 * (-2 + 0.5)])


def test_nac_weights_are_tanh_times_sigmoid():
    w_hat, m_hat = [[0.3], [-1.2]], [[2.0], [0.1]]
    w = np.tanh(w_hat) / (1 + np.exp(-np.asarray(m_hat)))
    out = forward(layer_with("nac", w_hat, m_hat=m_hat), X)
    np.testing.assert_allclose(out[:, 0], (np.asarray(X) @ w)[:, 0], rtol=1e-6)


def test_nac_mul_and_nalu_in_log_space():
    w_hat, m_hat, gate = [[0.9], [0.4]], [[3.0], [1.0]], [[0.2], [-0.7]]
    w = np.tanh(w_hat) / (1 + np.exp(-np.asarray(m_hat)))
    x = np.asarray(X)
    multiplied = np.exp(np.log(np.abs(x) + LOG_EPSILON) @ w)[:, 0]
    np.testing.assert_allclose(forward(layer_with("nac_mul", w_hat, m_hat=m_hat), X)[:, 0], multiplied, rtol=1e-5)
    g = 1 / (1 + np.exp(-(x @ np.asarray(gate))[:, 0]))
    expected = g * (x @ w)[:, 0] + (1 - g) * multiplied
    np.testing.assert_allclose(forward(layer_with("nalu", w_hat, m_hat=m_hat, gate=gate), X)[:, 0], expected, rtol=1e-5)


@pytest.mark.parametrize("family, low, high", [("nau", -1.0, 1.0), ("nmu", 0.0, 1.0)])
def test_units_stay_clamped_whatever_the_learning_rate(registry, family, low, high):
    model = registry.models[family].create(hidden=2).build(("a", "b"), [0, 1, 2], "cpu")
    rng = np.random.default_rng(0)
    x = rng.uniform(1, 2, size=(3, 64, 2)).astype(np.float32)
    y = 50 * x.sum(axis=2, keepdims=True)  # far outside what clamped weights can reach: they press on the bounds
    # reg_start = reg_end = 0: the sparsity regulariser is on from the first step, and the clamp must still hold.
    settings = TrainSettings(epochs=5, batch_size=16, learning_rate=5.0, reg_start=0, reg_end=0)
    model.fit(TrainingData(x, y, [MonitoredSplit("interpolation", x, y)]), settings)
    weights = np.concatenate([w.ravel() for w in model.module.weights()])
    assert weights.min() >= low and weights.max() <= high
    assert np.isclose(weights, high).any()  # the clamp was actually needed


def test_sparsity_regulariser_ramps_linearly():
    settings = TrainSettings(reg_start=100, reg_end=300)
    assert [settings.ramp(s) for s in (0, 100, 200, 300, 1000)] == [0.0, 0.0, 0.5, 1.0, 1.0]
    layer = layer_with("nau", [[0.25], [-1.0]])
    network = UnitNetwork([layer], sparsity=10.0)
    assert network.penalty(0.0) is None
    # mean(min(|W|, 1 - |W|)) = mean(0.25, 0) = 0.125, times lambda = 0.5 * 10
    np.testing.assert_allclose(network.penalty(0.5).detach().numpy(), [0.5 * 10 * 0.125])


def test_formulas_print_rounded_coefficients_and_know_when_they_are_exact():
    x = np.random.default_rng(0).uniform(2, 6, size=(100, 2))
    learned = linear_form([0.99996, 1.00003], -4e-5)
    assert learned.formula(("a", "b")) == "y = 1.000*a + 1.000*b"
    assert is_exact(learned, x.sum(axis=1), x)
    assert not is_exact(linear_form([0.9993, 1.0]), x.sum(axis=1), x)  # 0.999 as printed is not addition
    nmu = GatedProduct((1.0, 0.99998), (Input(0), Input(1)))
    assert nmu.formula(("a", "b")) == "y = a * b"
    assert is_exact(nmu, x[:, 0] * x[:, 1], x)
    assert GatedProduct((1.0, 0.5), (Input(0), Input(1))).formula(("a", "b")) == "y = a * (0.500*b + 0.500)"
    division = PowerProduct((1.0, -1.0), (Input(0), Input(1)))
    assert division.formula(("a", "b")) == "y = |a|^1.000 * |b|^-1.000"
    assert is_exact(division, x[:, 0] / x[:, 1], x)


def test_two_layer_formulas_compose(registry):
    model = registry.models["nau"].create(hidden=2).build(("a", "b", "c"), [0], "cpu")
    with torch.no_grad():
        first, second = model.module.layers
        first.w.copy_(torch.tensor([[[1.0, 0.0], [1.0, 1.0], [0.0, -1.0]]]))
        second.w.copy_(torch.tensor([[[1.0], [1.0]]]))
    # h1 = a + b, h2 = b - c; y = h1 + h2 = a + 2b - c
    assert model.formulas()[0].formula(("a", "b", "c")) == "y = 1.000*a + 2.000*b - 1.000*c"
    assert model.readable_parameters()[0]["sparsity_error"] == 0.0


def test_success_threshold_matches_its_closed_form(registry):
    """eps-perturbed a + b and a * b on U[2, 6]^2: the MSE follows from the moments of U[2, 6]."""
    mean, second = 4.0, (6**3 - 2**3) / (3 * 4)  # E[a], E[a^2]
    variance = second - mean**2
    expected = {
        # (1 - eps)(a + b) - (a + b) = -eps (a + b)
        "add": EPSILON**2 * (2 * variance + (2 * mean) ** 2),
        # ((1-eps) a + eps)((1-eps) b + eps) - ab ~ eps (a + b - 2ab), to first order in eps
        "mul": EPSILON**2 * (2 * second + 2 * mean**2 - 8 * second * mean + 4 * second**2),
    }
    for op, value in expected.items():
        target = registry.targets["binary_op"].create(op=op, range="1:2")
        table = success_thresholds(target, [0, 1], dict(target.extrapolation))
        np.testing.assert_allclose(table["threshold"], value, rtol=0.02)


@pytest.mark.parametrize("successes, trials", [(0, 5), (0, 7), (3, 10), (5, 5), (13, 13), (25, 25), (17, 25), (1, 100), (0, 100)])
def test_wilson_interval_bounds_are_where_the_score_test_stops_rejecting(successes, trials):
    """The Wilson bounds solve |p_hat - p| = z sqrt(p (1 - p) / n); find those roots numerically instead."""
    z, p_hat = 1.959963984540054, successes / trials

    def score(p):
        return abs(p_hat - p) - z * math.sqrt(p * (1 - p) / trials)

    # score is 0 at p_hat itself; each bound is the other root on its side.
    low = 0.0 if successes == 0 else brentq(score, 1e-12, p_hat - 1e-12)
    high = 1.0 if successes == trials else brentq(score, p_hat + 1e-12, 1 - 1e-12)
    np.testing.assert_allclose(wilson_interval(successes, trials), (low, high), atol=1e-9)
    # All or none: the bound is exactly 0 or 1, never a rounding error inside it (an error bar must not be negative).
    assert (successes != 0 or wilson_interval(successes, trials)[0] == 0.0)
    assert (successes != trials or wilson_interval(successes, trials)[1] == 1.0)
