"""The built-in targets keep the conventions a reader of the report relies on."""

import numpy as np
import pytest

from benchmark import Ball, Box, Shell, near_and_far
from benchmark.checks import check_target
from benchmark.data import sample_splits
from benchmark.plugins import load_registry

REGISTRY = load_registry()
# The everyday targets (in `--targets all`); the protocols' own targets keep their published ranges instead.
BUILTINS = [entry.create() for entry in REGISTRY.targets.values() if entry.in_all] + [REGISTRY.targets["weighted_sum"].create(n=10)]
PROTOCOL_TARGETS = [
    REGISTRY.targets["subset_op"].create(op=op) for op in ("add", "sub", "mul", "div", "square", "sqrt")
] + [REGISTRY.targets["binary_op"].create(op=op, range=r) for op in ("add", "sub", "mul", "div")
     for r in ("-20:-10", "-2:-1", "-1.2:-1.1", "-0.2:-0.1", "-2:2", "0.1:0.2", "1:2", "1.1:1.2", "10:20")]
REQUIRED = {"addition", "subtraction", "weighted_sum", "product", "square", "division", "sqrt", "sine", "cosine", "exp", "log", "cubic", "abs"}


def test_every_required_builtin_is_registered_through_the_entry_point():
    assert REQUIRED <= set(REGISTRY.targets)
    assert {REGISTRY.targets[name].origin for name in REQUIRED} == {"entry point 'builtin' (funcbench_targets)"}
    assert REGISTRY.problems == []


@pytest.mark.parametrize("target", PROTOCOL_TARGETS, ids=lambda t: t.label)
def test_protocol_targets_pass_their_checks_and_their_near_exact_solution_is_near(target):
    assert check_target(target) is None
    x = target.extrapolation["extrapolation"].sample(1000, np.random.default_rng(0))
    exact, near = target.fn(x), target.near_exact_values(x, 1e-5)
    assert np.isfinite(near).all()
    # Each weight moved by 1e-5 moves the output by about 1e-5 relative, never by nothing.
    relative = np.abs(near - exact) / np.maximum(np.abs(exact), 1)
    assert 0 < np.median(relative) < 1e-3


@pytest.mark.parametrize("target", BUILTINS, ids=lambda t: t.label)
def test_builtin_passes_its_checks_and_has_near_and_far_regions(target):
    assert check_target(target) is None
    assert {"near", "far"} <= set(target.extrapolation)
    rng = np.random.default_rng(1)
    low, width = np.asarray(target.domain.low), target.domain.width
    centre = low + width / 2

    def reach(region):
        """How far points go, in multiples of the training box's half-width from its centre."""
        x = region.sample(4000, rng)
        assert not target.domain.contains(x).any()
        return np.max(np.abs(x - centre) / (width / 2), axis=1)

    assert reach(target.extrapolation["near"]).max() <= 4 + 1e-9  # within twice the training range
    assert reach(target.extrapolation["far"]).min() >= 9  # ten times or more
    y = target(target.domain.sample(100, rng))
    assert y.shape == (100, 1) and np.isfinite(y).all()


def test_linear_solutions_are_exact():
    for target in BUILTINS:
        if target.linear_solution is None:
            continue
        x = target.extrapolation["far"].sample(100, np.random.default_rng(0))
        w, b = np.asarray(target.linear_solution.weights), target.linear_solution.bias
        np.testing.assert_allclose(target(x)[:, 0], x @ w + b, rtol=1e-12, atol=1e-12)
    assert {t.label for t in BUILTINS if t.linear_solution} == {"addition", "subtraction", "weighted_sum", "weighted_sum[n=10]"}


def test_addition_asks_the_articles_question():
    addition = REGISTRY.targets["addition"].create()
    assert (9.0, 90.0) in addition.probes
    assert addition.domain == Box.cube(2, 0, 1)
    assert addition(np.array([[9.0, 90.0]]))[0, 0] == 99


def test_weighted_sum_weights_are_fixed_and_differ_with_n():
    a, b = REGISTRY.targets["weighted_sum"].create(n=4), REGISTRY.targets["weighted_sum"].create(n=4)
    assert a.linear_solution == b.linear_solution
    assert len(set(a.linear_solution.weights)) == 4  # non-trivial: no two weights equal
    assert REGISTRY.targets["weighted_sum"].create(n=3).linear_solution.weights != a.linear_solution.weights[:3]


def test_samples_depend_on_the_seed_only():
    target = REGISTRY.targets["product"].create()
    one = sample_splits(target, [0, 1], 50, 20)
    two = sample_splits(target, [1, 5], 50, 20)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a.x[1], b.x[0])
        assert not np.array_equal(a.x[0], a.x[1])
        np.testing.assert_array_equal(a.y, target(a.x.astype(np.float64).reshape(-1, 2)).reshape(a.y.shape))
    names = [s.name for s in one]
    assert names == ["train", "interpolation", "near", "far"]
    assert one[0].x.shape == (2, 50, 2) and one[1].x.shape == (2, 20, 2)


def test_shell_sampling_is_uniform_on_the_shell():
    shell = Shell.around(Box.cube(1, -1, 1), 1, 2)
    x = shell.sample(20000, np.random.default_rng(0))[:, 0]
    assert ((np.abs(x) >= 1) & (np.abs(x) <= 2)).all()
    assert abs(np.mean(x > 0) - 0.5) < 0.02
    counts, _ = np.histogram(np.abs(x), bins=4, range=(1, 2))
    assert counts.min() / counts.max() > 0.9


@pytest.mark.parametrize("orthant", [False, True])
def test_ball_sampling_is_uniform_in_the_ball_and_its_shell_lies_outside(orthant):
    ball = Ball.around_origin(3, 0.5, orthant=orthant)
    x = ball.sample(40000, np.random.default_rng(0))
    radius = np.linalg.norm(x, axis=1)
    assert ball.contains(x).all() and (x >= 0).all() == orthant
    # Uniform in 3-d: P(|x| <= r) = (r / 0.5)^3, and every octant (or only the positive one) equally often.
    assert abs(np.mean(radius <= 0.25) - 0.125) < 0.01
    octants = np.unique((x > 0) @ [1, 2, 4], return_counts=True)[1]
    assert len(octants) == (1 if orthant else 8) and octants.min() / octants.max() > 0.9
    shell = Shell.around(ball, 1, 10)
    y = shell.sample(5000, np.random.default_rng(1))
    assert shell.contains(y).all() and not ball.contains(y).any()
    assert ((np.linalg.norm(y, axis=1) > 0.5) & (np.linalg.norm(y, axis=1) <= 5)).all()
    # Distance to the ball: along an axis, and (for the orthant) from a negative coordinate.
    assert np.allclose(ball.distance(np.array([[2.0, 0, 0], [0.1, 0.1, 0.1]])), [1.5, 0])
    if orthant:
        assert np.isclose(ball.distance(np.array([[-1.0, 0.2, 0]]))[0], 1.0)
        assert ball.exit_distance(np.array([[1.0, 0, 0], [-1.0, 0, 0]])).tolist() == [0.5, 0.0]


def test_invalid_boxes_and_shells_are_refused():
    with pytest.raises(ValueError, match="empty or inverted"):
        Box((1.0,), (0.0,))
    with pytest.raises(ValueError, match="inner < outer"):
        Shell.around(Box.cube(1, 0, 1), 2, 2)
    assert set(near_and_far(Box.cube(1, 0, 1))) == {"near", "far"}
    with pytest.raises(ValueError, match="positive radius"):
        Ball.around_origin(2, 0.0)
