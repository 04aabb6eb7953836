"""The neural arithmetic units, the formula readout and the published statistics, checked by hand."""

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.optimize import brentq

from benchmark.checks import evaluate_target
from benchmark.data import FRESH_STREAM, stream
from benchmark.domains import Ball, Box, Intervals, Shell
from benchmark.formula import GatedProduct, Input, PowerProduct, is_exact, linear_form
from benchmark.model import MonitoredSplit, TrainingData, TrainSettings
from benchmark.models.torch_model import MemberStack, build_member
from benchmark.models.units import (
    INALU,
    NAC,
    NALU,
    NAU,
    NMU,
    NPU,
    GoldenNALU,
    MultiplicativeNAC,
    RealNPU,
    SigmoidNAC,
    UnitNetwork,
)
from benchmark.models.units.network import LOG_EPSILON
from benchmark.models.units.npu import beta_at
from benchmark.plugins import load_registry
from benchmark.registry import Target
from benchmark.statistics import (
    EPSILON,
    exact_threshold,
    success_thresholds,
    wilson_interval,
)
from benchmark.train import cells

REFERENCE = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def unit_with(cls, **values):
    """A one-seed unit of class `cls` (2 inputs, 1 output) with the named parameters set to the given values."""
    unit = cls(2, 1)
    with torch.no_grad():
        for name, value in values.items():
            getattr(unit, name).copy_(torch.as_tensor(np.asarray(value, dtype=np.float32)).reshape(getattr(unit, name).shape))
    return unit


def forward(unit, x):
    return unit(torch.as_tensor(np.asarray(x, dtype=np.float32))).detach().double().numpy()[:, 0]


X = [[2.0, 3.0], [0.5, -4.0]]


def test_nau_is_a_plain_matrix_product():
    np.testing.assert_allclose(forward(unit_with(NAU, W=[1.0, -0.5]), X), [2 - 1.5, 0.5 + 2.0])


def test_nmu_multiplies_gated_inputs():
    # W = (1, 0.5): y = x1 * (0.5 * x2 + 0.5)
    np.testing.assert_allclose(forward(unit_with(NMU, W=[1.0, 0.5]), X), [2 * (1.5 + 0.5), 0.5 * (-2 + 0.5)])


def test_nac_weights_are_tanh_times_sigmoid():
    w_hat, m_hat = [0.3, -1.2], [2.0, 0.1]
    w = np.tanh(w_hat) / (1 + np.exp(-np.asarray(m_hat)))
    np.testing.assert_allclose(forward(unit_with(NAC, W_hat=w_hat, M_hat=m_hat), X), np.asarray(X) @ w, rtol=1e-6)


def test_nac_mul_and_nalu_in_log_space():
    w_hat, m_hat, gate = [0.9, 0.4], [3.0, 1.0], [0.2, -0.7]
    w = np.tanh(w_hat) / (1 + np.exp(-np.asarray(m_hat)))
    x = np.asarray(X)
    multiplied = np.exp(np.log(np.abs(x) + LOG_EPSILON) @ w)
    np.testing.assert_allclose(forward(unit_with(MultiplicativeNAC, W_hat=w_hat, M_hat=m_hat), X), multiplied, rtol=1e-5)
    g = 1 / (1 + np.exp(-(x @ np.asarray(gate))))
    np.testing.assert_allclose(forward(unit_with(NALU, W_hat=w_hat, M_hat=m_hat, G=gate), X),
                               g * (x @ w) + (1 - g) * multiplied, rtol=1e-5)


# The values below were worked out by hand from each paper's equations (the arithmetic is in the comments).

def test_nac_sigma_raises_inputs_to_sigmoid_weights():
    # W^ = (ln 3, 0): W = sigmoid(W^) = (3/4, 1/2); 2^0.75 * 3^0.5 = 1.681793 * 1.732051
    out = forward(unit_with(SigmoidNAC, W_hat=[math.log(3), 0.0]), [[2.0, 3.0]])
    np.testing.assert_allclose(out, [2.912951], rtol=1e-5)


def test_golden_nalu_works_in_base_phi():
    # tanh_phi(1) = phi / (phi^2 + 1) = 0.447214, sigmoid_phi(0) = 1/2: W = (0.223607, 0.223607);
    # a = 0.223607 * 5 = 1.118034; m = 6^0.223607 = 1.492794; g = sigmoid_phi(0.5 * 2) = 1 / phi = 0.618034;
    # y = 0.618034 * 1.118034 + 0.381966 * 1.492794
    unit = unit_with(GoldenNALU, W_hat=[1.0, 1.0], M_hat=[0.0, 0.0], G=[0.5, 0.0])
    np.testing.assert_allclose(forward(unit, [[2.0, 3.0]]), [1.261180], rtol=1e-5)


def test_golden_nalu_starts_from_the_nac_variance():
    # r solves max(in + out, 5) Var(tanh(W^) sigmoid(M^)) = 2 for W^, M^ ~ U[-r, r]: 9.4714 for 2 -> 1.
    bounds = GoldenNALU(2, 1).W_hat.abs().max().item()
    assert bounds <= 9.4714
    draws = torch.stack([torch.tanh(u.W_hat) * torch.sigmoid(u.M_hat) for u in (GoldenNALU(30, 30) for _ in range(5))])
    np.testing.assert_allclose(draws.var().item(), 2 / 60, rtol=0.05)


def test_npu_keeps_the_sign_of_negative_inputs_in_its_phase():
    # g = (1, 0.5): r = (2, 0.5 * 3 + 0.5) = (2, 2), k = (0, pi / 2);
    # exp(2 ln 2 - 0.5 pi / 2) * cos(pi / 2 + 0.5 ln 2) = 1.823698 * (-0.339683)
    npu = unit_with(NPU, W=[1.0, 1.0], W_im=[0.0, 0.5], g=[1.0, 0.5])
    np.testing.assert_allclose(forward(npu, [[2.0, -3.0]]), [-0.619487], rtol=1e-5)
    # Fully open gates and W = (1, 1): the product, sign included.
    npu = unit_with(NPU, W=[1.0, 1.0], W_im=[0.0, 0.0], g=[1.0, 1.0])
    np.testing.assert_allclose(forward(npu, [[2.0, 3.0], [2.0, -3.0]]), [6.0, -6.0], rtol=1e-5)


def test_real_npu_is_the_npu_without_imaginary_weights():
    # r = (2, 2), k = (0, pi / 2): exp(ln 2 + 2 ln 2) * cos(2 pi / 2) = 8 * -1
    np.testing.assert_allclose(forward(unit_with(RealNPU, W=[1.0, 2.0], g=[1.0, 0.5]), [[2.0, -3.0]]), [-8.0], rtol=1e-5)
    # exp(ln 2 - ln 3) cos(-pi) = -2/3
    np.testing.assert_allclose(forward(unit_with(RealNPU, W=[1.0, -1.0], g=[1.0, 1.0]), [[2.0, -3.0]]), [-2 / 3], rtol=1e-5)


def test_npu_l1_schedule_grows_tenfold_twice():
    assert [beta_at(p, 1e-7, 1e-5) for p in (0.0, 0.49, 0.5, 0.99, 1.0)] == pytest.approx([1e-7, 1e-7, 1e-6, 1e-6, 1e-5])
    # The L1 norm of every parameter: |1| + |-2| + |0.5| + |0.25| (W) + |0| (W_im) at beta 1e-7
    npu = unit_with(NPU, W=[1.0, -2.0], g=[0.5, 0.25])
    np.testing.assert_allclose(npu.regularizer(0.0)["l1"].item(), 1e-7 * 3.75, rtol=1e-6)


def test_inalu_recovers_the_sign_of_a_product():
    # W_a = W_m = tanh(1) * sigmoid(0) = 0.380797 (W_m's second weight negative), g = 0: gate 1/2;
    # a = 0.380797 * (2 - 3) = -0.380797; m = exp(0.380797 (ln 2 - ln 3)) = 0.856929;
    # sign = (1 * 0.380797 + 0.619203) * (-1 * 0.380797 + 0.619203) = 0.238406;
    # y = 0.5 * -0.380797 + 0.5 * 0.856929 * 0.238406
    unit = unit_with(INALU, W_a_hat=[1.0, 1.0], M_a_hat=[0.0, 0.0], W_m_hat=[1.0, -1.0], M_m_hat=[0.0, 0.0], g=[0.0])
    np.testing.assert_allclose(forward(unit, [[2.0, -3.0]]), [-0.088250], rtol=1e-4)


def test_inalu_reinitialises_a_member_that_stopped_learning_and_only_that_member():
    stack = MemberStack([build_member(lambda d: UnitNetwork([INALU(d, 1)]), 2, {}, seed) for seed in range(3)])
    before = {name: t.detach().clone() for name, t in stack.stacked.named_parameters()}
    losses = torch.tensor([0.5, 5.0, 5.0])  # the first learns (loss below 1); the others are stuck at 5
    with torch.no_grad():  # as the training loop calls it
        for _ in range(5_000):
            stack.after_step(losses)
    after = dict(stack.stacked.named_parameters())
    changed = [not all(torch.equal(before[n][s], after[n][s]) for n in before) for s in range(3)]
    assert changed == [False, True, True]
    assert stack.stacked[0].resets.tolist() == [0, 1, 1]
    # A member's new parameters come from its own stream: the same whichever members share the stack.
    alone = MemberStack([build_member(lambda d: UnitNetwork([INALU(d, 1)]), 2, {}, 2)])
    with torch.no_grad():
        for _ in range(5_000):
            alone.after_step(torch.tensor([5.0]))
    for name, t in alone.stacked.named_parameters():
        assert torch.equal(t[0], after[name][2])


def test_inalu_compares_its_losses_oldest_half_first_across_the_ring():
    """A loss that keeps falling never resets, however often its ring of 5,000 losses wraps; a flat one does, once."""
    stack = MemberStack([build_member(lambda d: UnitNetwork([INALU(d, 1)]), 2, {}, seed) for seed in range(2)])
    with torch.no_grad():
        for step in range(12_000):
            stack.after_step(torch.tensor([100.0 - 0.008 * step, 5.0]))
    # Falling: the older half's mean stays above the newer half's by far more than its spread. Flat: one reset
    # at 5,000 steps and another 5,000 later.
    assert stack.stacked[0].resets.tolist() == [0, 2]


@pytest.mark.parametrize("family", ["nac", "nac_mul", "nac_sigma", "nalu", "gnalu", "inalu", "nau", "nmu", "npu", "realnpu"])
@pytest.mark.parametrize("hidden", [0, 2])
def test_built_in_units_give_vmaps_numbers_when_run_stacked_directly(registry, family, hidden):
    """The built-in units broadcast over members (their fast path); torch.func.vmap must agree with it."""
    spec = registry.models[family].create(hidden=hidden)
    fast = spec.build(("a", "b", "c"), [0, 1, 2, 3], "cpu").module
    generic = spec.build(("a", "b", "c"), [0, 1, 2, 3], "cpu").module
    generic.broadcasts = False
    x = torch.rand(4, 64, 3) * 3 - 1
    torch.testing.assert_close(fast(x), generic(x), rtol=1e-5, atol=1e-6)
    for progress in (0.0, 0.5, 1.0):
        fast_terms, generic_terms = fast.regularizer(progress), generic.regularizer(progress)
        assert fast_terms.keys() == generic_terms.keys()
        for name in fast_terms:
            torch.testing.assert_close(fast_terms[name], generic_terms[name], rtol=1e-5, atol=1e-8)
    if family != "inalu":  # its reinitialisation reads its buffers as numbers, which vmap cannot
        with torch.no_grad():
            for module in (fast, generic):
                for p in module.parameters():
                    p.mul_(3)  # out of the clamps' bounds
            fast.after_step(torch.ones(4))
            generic.after_step(torch.ones(4))
        for a, b in zip(fast.parameters(), generic.parameters()):
            torch.testing.assert_close(a, b)
    assert fast.formulas(("a", "b", "c")) == generic.formulas(("a", "b", "c"))
    assert fast.readable_parameters(("a", "b", "c")) == generic.readable_parameters(("a", "b", "c"))


class NumpyFreshBatches:
    """funcbench 0.4's fresh batches, in today's layout: numpy streams, float64 draws rounded to float32.

    Today's batches come from torch generators; the reference's cells
    trained by steps saw these, so the units are compared on them.
    """

    def __init__(self, parts, batch_size):
        self.parts = [(target, seed, stream(seed, target.label, "fresh", FRESH_STREAM)) for target, seeds in parts
                      for seed in seeds]
        self.batch_size = batch_size

    def steps_per_draw(self):
        return max(1, 500_000 // (self.batch_size * self.parts[0][0].dim))

    def draw(self, k):
        xs, ys = [], []
        for target, seed, rng in self.parts:
            x = target.domain.sample(k * self.batch_size, rng).astype(np.float32)
            xs.append(x.reshape(k, self.batch_size, -1))
            ys.append(evaluate_target(target.at_seed(seed), x.astype(np.float64)).reshape(k, self.batch_size, 1))
        return torch.as_tensor(np.stack(xs)), torch.as_tensor(np.stack(ys), dtype=torch.float32)


def test_units_train_as_the_kind_dispatched_units_of_0_4_did(monkeypatch):
    """Today's units against what funcbench 0.4.0's units computed for the same cells (tests/data/make_units_reference.py)."""
    spec = importlib.util.spec_from_file_location("make_units_reference", REFERENCE / "make_units_reference.py")
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    reference = json.loads((REFERENCE / "units_reference.json").read_text())
    monkeypatch.setattr(cells, "FreshBatches", NumpyFreshBatches)
    now = maker.trained()
    assert now.keys() == reference.keys()
    for key, then in reference.items():
        assert now[key]["kept_step"] == then["kept_step"], key
        for split, mse in then["monitored"].items():
            np.testing.assert_allclose(now[key]["monitored"][split], mse, rtol=1e-4, atol=1e-9, err_msg=key)
        for now_seed, then_seed in zip(now[key]["parameters"], then["parameters"]):
            assert now_seed.keys() == then_seed.keys()
            names = sorted(then_seed)
            np.testing.assert_allclose([now_seed[n] for n in names], [then_seed[n] for n in names], atol=1e-6, err_msg=key)


@pytest.mark.parametrize("family, low, high", [("nau", -1.0, 1.0), ("nmu", 0.0, 1.0)])
def test_units_stay_clamped_whatever_the_learning_rate(registry, family, low, high):
    model = registry.models[family].create(hidden=2).build(("a", "b"), [0, 1, 2], "cpu")
    rng = np.random.default_rng(0)
    x = rng.uniform(1, 2, size=(3, 64, 2)).astype(np.float32)
    y = 50 * x.sum(axis=2, keepdims=True)  # far outside what clamped weights can reach: they press on the bounds
    # reg_start = reg_end = 0: the sparsity regulariser is on from the first step, and the clamp must still hold.
    settings = TrainSettings(epochs=5, batch_size=16, learning_rate=5.0, reg_start=0, reg_end=0, regularizer_strength=10)
    model.fit(TrainingData(x, y, [MonitoredSplit("interpolation", x, y)]), settings)
    weights = np.concatenate([unit.W.detach().numpy().ravel() for unit in model.module.stacked])
    assert weights.min() >= low and weights.max() <= high
    assert np.isclose(weights, high).any()  # the clamp was actually needed


def test_sparsity_regulariser_ramps_linearly():
    settings = TrainSettings(reg_start=100, reg_end=300)
    assert [settings.ramp(s) for s in (0, 100, 200, 300, 1000)] == [0.0, 0.0, 0.5, 1.0, 1.0]
    network = UnitNetwork([unit_with(NAU, W=[0.25, -1.0])])
    assert network.regularizer(0.0) == {}  # before the ramp: no term at all (logged as 0)
    # mean(min(|W|, 1 - |W|)) = mean(0.25, 0) = 0.125, at half the ramp (the loop weights it by the strength, 10)
    np.testing.assert_allclose(network.regularizer(0.5)["sparsity"].item(), 0.5 * 0.125)


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
        first, second = model.module.stacked
        first.W.copy_(torch.tensor([[[1.0, 0.0], [1.0, 1.0], [0.0, -1.0]]]))
        second.W.copy_(torch.tensor([[[1.0], [1.0]]]))
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


@pytest.mark.parametrize("region", [
    Box((1.0, -2.0, 0.5), (2.0, 2.0, 3.0)),
    Ball((0.5, -1.0), 2.0),
    Intervals(((-6.0, -2.0), (2.0, 6.0)), 2),
    Shell.around(Box((0.0, 1.0), (1.0, 3.0)), 10, 20),
    Shell.around(Ball((0.0, 0.0, 0.0), 1.0), 1, 5),
], ids=["box", "ball", "intervals", "box-shell", "ball-shell"])
def test_exact_thresholds_are_the_monte_carlo_estimate_without_its_noise(region):
    """A linear target's threshold from its region's moments, against the mean over 4 million points."""
    weights = (1.0, -1.0, 0.0)[: region.dim]
    target = Target(fn=lambda x: x @ np.asarray(weights)[:, None] + 0.5, domain=Box.cube(region.dim, -0.5, 0.5),
                    extrapolation={"far": region}, linear_solution=(weights, 0.5), description="w . x + 1/2")
    x = region.sample(4_000_000, np.random.default_rng(0))
    estimate = np.mean((target.near_exact_values(x, EPSILON) - evaluate_target(target, x)) ** 2)
    np.testing.assert_allclose(exact_threshold(target, region), estimate, rtol=3e-3)


def test_a_target_the_same_for_every_seed_has_one_threshold_per_region(registry):
    """Estimated once, on the target's stream; a target drawn per seed keeps an estimate per seed."""
    shared = success_thresholds(registry.targets["binary_op"].create(op="mul", range="1:2"), [0, 1, 2],
                                {"near": Shell.around(Box.cube(2, 1, 2), 1, 2), "far": Box.cube(2, 2, 6)})
    assert shared.groupby("split")["threshold"].nunique().tolist() == [1, 1]
    per_seed = registry.targets["subset_op"].create(op="mul")
    table = success_thresholds(per_seed, [0, 1, 2], dict(per_seed.extrapolation))
    assert (table.groupby("split")["threshold"].nunique() == 3).all()


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
