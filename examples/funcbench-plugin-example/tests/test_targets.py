"""The example's targets: registered by funcbench, correct, and learnable where they should be.

These pass whether the package is installed or only importable (pytest puts
this folder on sys.path, see pyproject.toml): funcbench is pointed at the
module by name, which works either way.
"""

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from benchmark.cli import cli
from benchmark.plugins import load_registry
from benchmark.testing import check_target

MODULE = "funcbench_plugin_example.targets"
NAMES = ("example_hypotenuse", "example_weighted_difference")


@pytest.fixture(scope="module")
def registry():
    return load_registry([MODULE])


@pytest.fixture(scope="module")
def targets(registry):
    return {name: registry.targets[name].create() for name in NAMES}


def test_funcbench_registers_both_targets_without_problems(registry):
    assert set(NAMES) <= set(registry.targets)
    assert [p for p in registry.problems if "example" in p] == []


@pytest.mark.parametrize("name", NAMES)
def test_each_target_passes_the_checks_every_run_makes(registry, name):
    check_target(registry.targets[name])


@pytest.mark.parametrize("name", NAMES)
def test_extrapolation_regions_lie_outside_the_training_domain(targets, name):
    target = targets[name]
    assert target.inputs == ("a", "b")
    assert set(target.extrapolation) == {"near", "far"}
    rng = np.random.default_rng(0)
    for region in target.extrapolation.values():
        assert not target.domain.contains(region.sample(500, rng)).any()


@pytest.mark.parametrize("name", NAMES)
def test_functions_are_vectorised_and_finite_everywhere_they_are_asked(targets, name):
    target = targets[name]
    rng = np.random.default_rng(0)
    for where in [target.domain, *target.extrapolation.values()]:
        y = target(where.sample(64, rng))
        assert y.shape == (64, 1)
        assert np.isfinite(y).all()


def test_hypotenuse_values(targets):
    x = np.array([[3.0, 4.0], [5.0, 12.0], [8.0, 15.0]])
    np.testing.assert_allclose(targets["example_hypotenuse"](x), [[5.0], [13.0], [17.0]])


def test_weighted_difference_is_its_stated_linear_solution(targets):
    target = targets["example_weighted_difference"]
    np.testing.assert_allclose(target(np.array([[10.0, -10.0], [0.0, 0.0]])), [[51.0], [1.0]])
    solution = target.linear_solution
    assert solution.weights == (3.0, -2.0) and solution.bias == 1.0
    x = target.extrapolation["far"].sample(200, np.random.default_rng(0))
    np.testing.assert_allclose(target(x), x @ np.array(solution.weights)[:, None] + solution.bias)


def test_a_linear_model_recovers_the_weighted_difference(tmp_path):
    result = CliRunner().invoke(cli, [
        "run", "--plugin", MODULE, "--targets", "example_weighted_difference", "--models", "linear",
        "--seeds", "1", "--epochs", "30", "--out", str(tmp_path),
    ], catch_exceptions=False)
    assert result.exit_code == 0, result.stdout + result.stderr
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    params = pd.read_parquet(run_dir / "params.parquet").set_index("parameter")["value"]
    np.testing.assert_allclose(params[["weight[a]", "weight[b]", "bias"]], [3.0, -2.0, 1.0], atol=1e-2)
