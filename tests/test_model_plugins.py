"""A plain torch module as a model family: per-seed copies trained as one, its hooks, its loading and its mistakes."""

import dataclasses
import textwrap

import numpy as np
import pytest
import torch
from conftest import assert_one_line_error

from benchmark.config import RunConfig
from benchmark.data import sample_splits
from benchmark.model import MonitoredSplit, TrainingData, TrainSettings
from benchmark.plan import build_plan
from benchmark.plugins import load_registry
from benchmark.testing import CheckFailed, check_model_family, check_target
from benchmark.train import train_cell, train_cells

PLUGIN = textwrap.dedent('''
    import torch
    from torch import nn

    from benchmark import torch_model
    from benchmark.formula import Affine


    class TwoLayer(nn.Module):
        """An ordinary MLP for one seed: (batch, inputs) -> (batch, 1)."""

        def __init__(self, inputs, hidden):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(inputs, hidden), nn.Tanh(), nn.Linear(hidden, 1))

        def forward(self, x):
            return self.net(x)


    class Clamped(nn.Module):
        """A linear unit whose weights stay in [-1, 1] and are pushed towards 0 or +-1, NAU-like."""

        def __init__(self, inputs):
            super().__init__()
            self.weight = nn.Parameter(torch.empty(inputs, 1).uniform_(-0.5, 0.5))
            self.register_buffer("steps", torch.zeros(()))

        def forward(self, x):
            return x @ self.weight

        def regularizer(self, progress):
            w = self.weight.abs()
            return {"sparsity": progress * torch.minimum(w, 1 - w).mean()}

        def after_step(self):
            self.weight.clamp_(-1.0, 1.0)
            self.steps += 1

        def formula(self, inputs):
            return Affine(tuple(float(w) for w in self.weight[:, 0]), tuple(inputs))

        def readable_parameters(self, inputs):
            return {f"weight[{name}]": float(w) for name, w in zip(inputs, self.weight[:, 0])}


    @torch_model(description="two layers of a plain nn.Module", learning_rate=0.01)
    def two_layer(inputs: int, hidden: int = 16) -> nn.Module:
        return TwoLayer(inputs, hidden)


    @torch_model(description="a clamped, regularised linear unit", learning_rate=0.05, regularizer_strength=0.1)
    def clamped(inputs: int) -> Clamped:
        return Clamped(inputs)
''')


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    path = tmp_path_factory.mktemp("plugin") / "my_models.py"
    path.write_text(PLUGIN)
    return path


@pytest.fixture(scope="module")
def registry(plugin):
    return load_registry([str(plugin)])


def cell_for(registry, target, model, seeds, **settings):
    cell = build_plan(registry, RunConfig(targets=target, models=model, seeds=max(seeds) + 1, **settings)).cells[0]
    return dataclasses.replace(cell, seeds=tuple(seeds))


def test_a_seed_trains_the_same_alone_as_among_sixteen(registry):
    """Seed 11 alone and seed 11 among seeds 0..15: the same start, the same batches, the same end (float32)."""
    together = cell_for(registry, "product", "two_layer", list(range(16)), epochs=15)
    alone = dataclasses.replace(together, seeds=(11,))
    fit_together = train_cell(together, sample_splits(together.target, together.seeds, 500, 200))
    fit_alone = train_cell(alone, sample_splits(alone.target, alone.seeds, 500, 200))
    np.testing.assert_allclose(fit_together.log.loss[11], fit_alone.log.loss[0], rtol=1e-4, atol=1e-7)
    probe = np.random.default_rng(0).uniform(-3, 3, size=(1, 50, 2)).astype(np.float32)
    np.testing.assert_allclose(fit_together.model.predict(np.repeat(probe, 16, axis=0))[11],
                               fit_alone.model.predict(probe)[0], rtol=1e-4, atol=1e-5)
    assert not np.allclose(fit_together.log.loss[0], fit_together.log.loss[11])  # other seeds are other models


def test_seed_s_starts_as_the_factorys_module_after_manual_seed_s(registry):
    spec = registry.models["two_layer"].create(hidden=4)
    stack = spec.build(("a", "b"), [3, 7], "cpu").module
    for index, seed in enumerate((3, 7)):
        torch.manual_seed(seed)
        reference = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
        for (name, mine), theirs in zip(stack.stacked.named_parameters(), reference.parameters()):
            assert torch.equal(mine[index], theirs), name


def test_a_diverging_seed_leaves_the_others_untouched(registry):
    spec = registry.models["two_layer"].create(hidden=8)
    x = np.random.default_rng(0).uniform(size=(3, 100, 1)).astype(np.float32)
    y = (x**2).astype(np.float32)
    poisoned_x = x.copy()
    poisoned_x[1, 0, 0] = np.inf  # seed 1 sees one bad sample and diverges
    settings = TrainSettings(epochs=5, batch_size=20, learning_rate=0.01)
    clean, poisoned = (spec.build(("x",), [0, 1, 2], "cpu") for _ in range(2))
    clean_losses = clean.fit(TrainingData(x, y, [MonitoredSplit("interpolation", x, y)]), settings).loss
    poisoned_losses = poisoned.fit(TrainingData(poisoned_x, y, [MonitoredSplit("interpolation", x, y)]), settings).loss
    assert not np.isfinite(poisoned_losses[1]).all()
    np.testing.assert_allclose(poisoned_losses[[0, 2]], clean_losses[[0, 2]], rtol=1e-6)
    assert np.isfinite(poisoned.predict(x)[[0, 2]]).all()


def test_cells_of_one_shape_train_together_with_the_numbers_they_get_alone(registry):
    plan = build_plan(registry, RunConfig(targets="addition,product", models="two_layer", seeds=3, epochs=8))
    work = [(cell, sample_splits(cell.target, cell.seeds, 300, 100)) for cell in plan.cells]
    together = train_cells(work)
    for (cell, splits), batched in zip(work, together):
        alone = train_cell(cell, splits)
        np.testing.assert_allclose(batched.log.loss, alone.log.loss, rtol=1e-4, atol=1e-7)


def test_hooks_regularise_clamp_and_read_out(bench, plugin):
    result = bench("run", "--plugin", str(plugin), "--targets", "addition", "--models", "clamped", "--seeds", "3",
                   "--epochs", "40", "--lr", "0.5")
    assert result.exit_code == 0, result.stderr
    params = result.table("params")
    assert set(params["parameter"]) == {"weight[a]", "weight[b]"}
    assert params["value"].between(-1, 1).all()  # after_step clamped every step, however large the step
    formulas = result.table("formulas")
    assert formulas["formula"].str.startswith("y = ").all()
    assert formulas["exact"].any()  # y = 1.000*a + 1.000*b, checked against the target like a built-in's
    curves = result.table("curves")
    assert curves["reg_sparsity"].iloc[0] == 0 and curves["reg_sparsity"].iloc[-1] >= 0  # the ramp starts at 0
    assert result.meta()["counts"]["cells_trained"] == 1


def test_training_options_reach_the_family_and_a_run_overrides_them(registry):
    family_default = cell_for(registry, "addition", "clamped", [0], epochs=2)
    assert family_default.settings.regularizer_strength == 0.1 and family_default.settings.learning_rate == 0.05
    chosen = cell_for(registry, "addition", "clamped", [0], epochs=2, reg_strength=3.0, optimizer="sgd",
                      clip_norm=0.5, loss="mae")
    assert (chosen.settings.regularizer_strength, chosen.settings.optimizer, chosen.settings.clip_norm,
            chosen.settings.loss) == (3.0, "sgd", 0.5, "mae")
    assert chosen.id != family_default.id
    assert cell_for(registry, "addition", "two_layer[hidden=8]", [0]).id != cell_for(registry, "addition", "two_layer", [0]).id


def test_the_example_plugins_checks_pass_for_the_built_in_units_too(registry):
    for name in ("nau", "nmu", "npu", "inalu", "two_layer", "clamped"):
        check_model_family(registry.models[name], dims=(2,))
    check_target(registry.targets["addition"])
    with pytest.raises(CheckFailed, match="expected a registered model"):
        check_model_family(registry.targets["addition"])


def test_the_done_when_command(bench, plugin):
    """One file holding a plain nn.Module, beside the built-in units on the single-layer suite (shortened further)."""
    result = bench("run", "--plugin", str(plugin), "--suite", "arithmetic-single-layer", "--models", "clamped,nau,nmu",
                   "--targets", "binary_op[op=add],binary_op[op=mul]", "--steps", "300", "--eval-every", "50",
                   "--seeds", "2", "--eval-samples", "500")
    assert result.exit_code == 0, result.stderr
    summary = result.table("results")
    assert set(summary["model"]) == {"clamped", "nau", "nmu"}
    page = (result.run_dir / "index.html").read_text()
    assert "clamped" in page and "success" in page


def test_bench_list_models_says_where_each_came_from(bench, plugin):
    listing = bench("list", "models", "two_layer", "nau", "--plugin", str(plugin))
    assert listing.exit_code == 0, listing.stderr
    assert f"from plugin {plugin}" in listing.stdout
    assert "from funcbench" in listing.stdout
    table = bench("list", "models", "--plugin", str(plugin))
    rows = {line.split()[0]: line for line in table.stdout.splitlines() if line and not line.startswith(" ")}
    assert "FROM" in rows["NAME"]
    assert "plugin my_models.py" in rows["two_layer"] and "funcbench" in rows["nau"]


# --- mistakes: one line naming the plugin and the model, the other models still run, exit code 1 ----------------

BROKEN = {
    "not a module": ("return 42", "its factory returned int, not a torch.nn.Module"),
    "wrong shape": ("return Shaped(inputs, 3)", "its forward returned (16, 3) for inputs of shape (16, 2)"),
    "non-finite at init": ("return Shaped(inputs, 1, start=float('nan'))", "non-finite values at initialisation"),
    "not vmappable": ("return Itemised(inputs)", "cannot run its members as one under torch.func.vmap"),
    "a hook that raises": ("return Raising(inputs)", "its regularizer() raised ZeroDivisionError"),
    "a near-miss hook": ("return Misspelt(inputs)", "its method 'after_stpe' is not a hook funcbench calls; did you mean 'after_step'?"),
    "another near-miss": ("return Regulariser(inputs)", "its method 'regulariser' is not a hook funcbench calls; did you mean 'regularizer'?"),
    "a hook of the wrong type": ("return Untyped(inputs)", "its regularizer() raised TypeError"),
    "tied weights": ("return Tied(inputs)", "shares one parameter between two of its submodules"),
}

BROKEN_PLUGIN = textwrap.dedent('''
    import torch
    from torch import nn

    from benchmark import torch_model


    class Shaped(nn.Module):
        def __init__(self, inputs, outputs, start=0.1):
            super().__init__()
            self.weight = nn.Parameter(torch.full((inputs, outputs), start))

        def forward(self, x):
            return x @ self.weight


    class Itemised(Shaped):
        def __init__(self, inputs):
            super().__init__(inputs, 1)

        def forward(self, x):
            return x @ self.weight * self.weight.sum().item()  # .item() cannot run under vmap


    class Raising(Shaped):
        def __init__(self, inputs):
            super().__init__(inputs, 1)

        def regularizer(self, progress):
            return dict(l1=1 / 0)


    class Misspelt(Shaped):
        def __init__(self, inputs):
            super().__init__(inputs, 1)

        def after_stpe(self):
            self.weight.clamp_(-1, 1)


    class Regulariser(Shaped):
        def __init__(self, inputs):
            super().__init__(inputs, 1)

        def regulariser(self, progress):
            return {{}}


    class Untyped(Shaped):
        def __init__(self, inputs):
            super().__init__(inputs, 1)

        def regularizer(self, progress=1.0):  # a default is fine; a bare tensor is not a dict of terms
            return self.weight.sum()


    class Tied(nn.Module):
        def __init__(self, inputs):
            super().__init__()
            self.first = nn.Linear(inputs, inputs)
            self.second = nn.Linear(inputs, 1)
            self.again = nn.Linear(inputs, inputs)
            self.again.weight = self.first.weight

        def forward(self, x):
            return self.second(self.again(self.first(x)))


    @torch_model(description="a broken family")
    def broken(inputs: int) -> nn.Module:
        {body}
''')


def run_beside_linear(bench, plugin, epochs: int = 2):
    """`bench run` of the plugin's model `broken` beside `linear`: it ends with exit code 1, no traceback,
    and `linear`'s results; the stderr lines naming `broken` come back with the invocation."""
    result = bench("run", "--plugin", str(plugin), "--targets", "addition", "--models", "broken,linear",
                   "--seeds", "2", "--epochs", str(epochs))
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    assert set(result.table("results")["model"]) == {"linear"}  # the other model ran
    return result, [line for line in result.stderr.splitlines() if "broken" in line]


@pytest.mark.parametrize("case", BROKEN, ids=list(BROKEN))
def test_a_broken_model_is_one_line_and_the_others_still_run(case, tmp_path, bench):
    body, message = BROKEN[case]
    plugin = tmp_path / "broken_models.py"
    plugin.write_text(BROKEN_PLUGIN.format(body=body))
    result, lines = run_beside_linear(bench, plugin)
    assert len(lines) == 1, result.stderr
    assert f"plugin {plugin}" in lines[0] and "model 'broken'" in lines[0] and message in lines[0], lines[0]


def test_a_near_miss_hook_on_the_declared_class_is_found_when_the_plugin_loads(tmp_path, bench):
    plugin = tmp_path / "misspelt.py"
    plugin.write_text(BROKEN_PLUGIN.format(body="return Misspelt(inputs)").replace("-> nn.Module:", "-> Misspelt:"))
    listing = bench("list", "models", "--plugin", str(plugin))
    assert listing.exit_code == 1
    assert "did you mean 'after_step'?" in listing.stderr and str(plugin) in listing.stderr
    result, lines = run_beside_linear(bench, plugin)
    assert len(lines) == 1 and "model 'broken'" in lines[0] and "did you mean 'after_step'?" in lines[0], result.stderr


def test_a_hook_that_raises_while_training_fails_its_cells_in_one_line(tmp_path, bench):
    plugin = tmp_path / "late.py"
    plugin.write_text(BROKEN_PLUGIN.format(body="return Late(inputs)") + textwrap.dedent('''
        class Late(Shaped):
            def __init__(self, inputs):
                super().__init__(inputs, 1)
                self.calls = 0  # a plain attribute: counted once per step for all seeds

            def after_step(self):
                self.calls += 1
                if self.calls > 3:
                    raise RuntimeError("the clamp broke")
    '''))
    result, _ = run_beside_linear(bench, plugin, epochs=3)
    failed = [line for line in result.stderr.splitlines() if "the clamp broke" in line]
    assert len(failed) == 1 and "model 'broken'" in failed[0] and "its after_step() raised RuntimeError" in failed[0]
    assert result.meta()["failed_cells"][0]["model"] == "broken"


def test_a_formula_hook_that_raises_after_training_names_the_plugin(tmp_path, bench):
    plugin = tmp_path / "late_formula.py"
    plugin.write_text(BROKEN_PLUGIN.format(body="return Unreadable(inputs)") + textwrap.dedent('''
        class Unreadable(Shaped):
            def __init__(self, inputs):
                super().__init__(inputs, 1)
                self.trained = False

            def after_step(self):
                self.trained = True

            def formula(self, inputs):
                if self.trained:
                    raise KeyError("no formula after training")
                return None
    '''))
    result, _ = run_beside_linear(bench, plugin)
    failed = [line for line in result.stderr.splitlines() if "no formula after training" in line]
    assert len(failed) == 1 and f"plugin {plugin}: model 'broken': its formula() raised KeyError" in failed[0], failed


def test_a_parameter_value_the_factory_refuses_is_the_users_error(bench):
    assert_one_line_error(bench("run", "--targets", "addition", "--models", "linear,nmu[hidden=-1]"),
                          "model 'nmu[hidden=-1]': hidden must be between 0")


def test_a_bad_training_option_is_one_line(bench):
    assert_one_line_error(bench("run", "--targets", "addition", "--clip-norm", "-1"), "--clip-norm must be a positive number")
    assert_one_line_error(bench("run", "--targets", "addition", "--optimizer", "rmsprop"), "rmsprop")


FLAKY_PLUGIN = textwrap.dedent('''
    import numpy as np

    from benchmark import model_family
    from benchmark.model import ModelSpec, fitted_once_log


    class MeanPerSeed:
        """Each seed predicts its training mean, but seed 1, which the family could not train."""

        def __init__(self, seeds):
            self.seeds, self.means = list(seeds), None

        def fit(self, data, settings):
            self.means = np.where(np.array(self.seeds) == 1, np.nan, data.y.mean(axis=(1, 2)))
            return fitted_once_log(self.predict, data, len(self.seeds))

        def predict(self, x):
            means = np.full(len(self.seeds), np.nan) if self.means is None else self.means
            return np.broadcast_to(means[:, None, None], (*x.shape[:2], 1)).copy()

        def readable_parameters(self):
            return [{} for _ in self.seeds]

        def formulas(self):
            return [None for _ in self.seeds]

        def failures(self):
            return ["timed out after 1 s" if seed == 1 else None for seed in self.seeds]


    @model_family(description="the training mean; seed 1 times out")
    def flaky() -> ModelSpec:
        return ModelSpec(lambda inputs, seeds, device: MeanPerSeed(seeds), "training mean", learning_rate=None)
''')


def test_a_seed_its_family_could_not_train_is_marked_failed_and_the_others_are_scored(tmp_path, bench):
    plugin = tmp_path / "flaky.py"
    plugin.write_text(FLAKY_PLUGIN)
    result = bench("run", "--plugin", str(plugin), "--targets", "addition,product", "--models", "flaky,linear",
                   "--seeds", "3", "--epochs", "2")
    assert result.exit_code == 1, result.stderr  # a problem, said; the rest ran
    for target in ("addition", "product"):
        assert (f"{target} x flaky: 1 seed(s) failed (seed 1: timed out after 1 s); they are marked failed in "
                "results.parquet and the cell's other seeds are scored") in result.stderr
    results = result.table("results")
    flaky = results[results["model"] == "flaky"]
    assert set(flaky.loc[flaky["seed"] == 1, "status"]) == {"failed"}
    assert set(flaky.loc[flaky["seed"] == 1, "error"]) == {"timed out after 1 s"}
    scored = flaky[flaky["seed"] != 1]
    assert set(scored["status"]) == {"ok"} and set(scored["error"]) == {""} and np.isfinite(scored["mse"]).all()
    assert set(results.loc[results["model"] == "linear", "status"]) == {"ok"}
    meta = result.meta()
    assert meta["counts"]["failed_seeds"] == 2 and meta["counts"]["diverged_seeds"] == 0
    assert "2 failed seeds" in (result.run_dir / "index.html").read_text()
