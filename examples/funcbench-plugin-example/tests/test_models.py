"""The example's model family: it passes funcbench's checks and learns a product a linear unit cannot."""

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from benchmark.cli import cli
from benchmark.plugins import load_registry
from benchmark.testing import CheckFailed, check_model_family

MODULE = "funcbench_plugin_example.models"


@pytest.fixture(scope="module")
def quadnet():
    return load_registry([MODULE]).models["example_quadnet"]


def test_it_trains_as_funcbench_needs(quadnet):
    spec = check_model_family(quadnet, dims=(1, 2, 5))
    assert spec.learning_rate == 0.01


def test_its_parameters_are_checked(quadnet):
    assert check_model_family(quadnet, dims=(2,), hidden=2).label == "example_quadnet[hidden=2]"
    with pytest.raises(CheckFailed, match="hidden must be between 1 and 1024"):
        check_model_family(quadnet, dims=(2,), hidden=0)


def test_its_hooks_are_called_per_seed(quadnet):
    spec = quadnet.create(hidden=3)
    model = spec.build(("a", "b"), [0, 1], "cpu")
    terms = model.module.regularizer(1.0)
    expected = [1e-4 * model.module.stacked.inner.weight[s].square().sum() for s in (0, 1)]
    torch.testing.assert_close(terms["decay"], torch.stack(expected))
    assert [set(p) for p in model.readable_parameters()] == [{"outer_bias"}, {"outer_bias"}]


def test_it_carries_a_product_beyond_its_training_range(tmp_path):
    result = CliRunner().invoke(cli, [
        "run", "--plugin", MODULE, "--targets", "product", "--models", "example_quadnet,linear",
        "--seeds", "2", "--epochs", "60", "--out", str(tmp_path),
    ], catch_exceptions=False)
    assert result.exit_code == 0, result.stdout + result.stderr
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    results = pd.read_parquet(run_dir / "results.parquet")
    far = results[results["split"] == "far"].groupby("model")["nmse"].median()
    assert far["example_quadnet"] < 0.1 * far["linear"]
    curves = pd.read_parquet(run_dir / "curves.parquet")
    assert curves.loc[curves["model"] == "example_quadnet", "reg_decay"].notna().all()
