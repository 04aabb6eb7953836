"""The vectorised trainer: seeds are independent members of one ensemble."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from benchmark.config import RunConfig
from benchmark.data import sample_splits
from benchmark.model import MonitoredSplit, TrainingData, TrainSettings
from benchmark.plan import build_plan
from benchmark.plugins import load_registry
from benchmark.store import TABLES
from benchmark.train import train_cell


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def cell_for(registry, target, model, seeds, **settings):
    config = RunConfig(targets=target, models=model, seeds=max(seeds) + 1, **settings)
    cell = build_plan(registry, config).cells[0]
    return dataclasses.replace(cell, seeds=tuple(seeds))


@pytest.mark.parametrize("model", ["linear", "mlp", "mlp_tanh[width=16,depth=3]"])
def test_a_seed_trains_the_same_alone_or_among_others(registry, model):
    together = cell_for(registry, "weighted_sum[n=3]", model, [0, 1, 2, 3, 4], epochs=20)
    alone = dataclasses.replace(together, seeds=(3,))
    splits_together = sample_splits(together.target, together.seeds, together.samples, together.eval_samples)
    splits_alone = sample_splits(alone.target, alone.seeds, alone.samples, alone.eval_samples)
    for a, b in zip(splits_together, splits_alone):
        np.testing.assert_array_equal(a.x[3], b.x[0])  # the same data for seed 3

    fit_together = train_cell(together, splits_together)
    fit_alone = train_cell(alone, splits_alone)
    np.testing.assert_allclose(fit_together.log.loss[3], fit_alone.log.loss[0], rtol=1e-4, atol=1e-7)
    probe = splits_alone[1].x
    np.testing.assert_allclose(
        fit_together.model.predict(np.repeat(probe, 5, axis=0))[3], fit_alone.model.predict(probe)[0], rtol=1e-4, atol=1e-5
    )
    # ... and other seeds really are different models.
    assert not np.allclose(fit_together.log.loss[0], fit_together.log.loss[3])


def test_linear_unit_starts_from_pytorchs_default_init(registry):
    model = registry.models["linear"].create().build(("a", "b"), [7, 8], "cpu")
    torch.manual_seed(8)
    reference = nn.Linear(2, 1)
    start = model.readable_parameters()[1]
    np.testing.assert_allclose([start["weight[a]"], start["weight[b]"]], reference.weight.detach()[0], rtol=1e-6)
    np.testing.assert_allclose(start["bias"], reference.bias.item(), rtol=1e-6)


def test_a_diverging_member_leaves_the_others_untouched(registry):
    model_spec = registry.models["mlp"].create(width=8, depth=1)
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(3, 100, 1)).astype(np.float32)
    y = (x**2).astype(np.float32)
    poisoned_x = x.copy()
    poisoned_x[1, 0, 0] = np.inf  # seed 1 sees one bad sample and diverges
    settings = TrainSettings(epochs=5, batch_size=20, learning_rate=0.01)

    clean = model_spec.build(("x",), [0, 1, 2], "cpu")
    poisoned = model_spec.build(("x",), [0, 1, 2], "cpu")
    clean_losses = clean.fit(TrainingData(x, y, [MonitoredSplit("interpolation", x, y)]), settings).loss
    poisoned_losses = poisoned.fit(TrainingData(poisoned_x, y, [MonitoredSplit("interpolation", x, y)]), settings).loss

    assert not np.isfinite(poisoned_losses[1]).all()
    np.testing.assert_array_equal(poisoned_losses[[0, 2]], clean_losses[[0, 2]])
    assert np.isfinite(poisoned.predict(x)[[0, 2]]).all()


def test_a_diverging_run_completes_and_says_so(bench):
    result = bench("run", "--targets", "square", "--models", "mlp", "--seeds", "2", "--lr", "1e30", "--epochs", "3")
    assert result.exit_code == 0, result.stderr
    results = result.table("results")
    assert (results["status"] == "diverged").all()
    assert result.meta()["counts"]["diverged_seeds"] == 2
    assert "2 / 2" in (result.run_dir / "index.html").read_text()
    assert "(all diverged)" in result.stdout
    heatmap = (result.run_dir / "figures" / "heatmap-extrapolation.svg").read_text()
    assert "diverged" in heatmap  # seaborn leaves NaN cells blank; the report writes the word in them


def test_training_loss_falls_for_every_family(registry):
    for model in ("linear", "mlp", "mlp_tanh", "mlp_small", "mlp_wide"):
        cell = cell_for(registry, "square", model, [0, 1], epochs=30)
        fitted = train_cell(cell, sample_splits(cell.target, cell.seeds, cell.samples, cell.eval_samples))
        assert fitted.log.loss.shape == (2, 30)  # one loss per epoch
        assert (fitted.log.loss[:, -1] < fitted.log.loss[:, 0]).all(), model
        assert not fitted.diverged.any()


@pytest.mark.parametrize("model", ["nmu[hidden=2]", "nalu"])
def test_training_by_steps_is_independent_of_other_seeds_and_of_chunking(registry, model, monkeypatch):
    """Fresh batches per seed, a kept checkpoint per seed: none of it may depend on the ensemble or the chunk size."""
    from benchmark import data

    together = cell_for(registry, "binary_op[op=mul]", model, [0, 1, 2], steps=300, eval_every=50, batch_size=32)
    alone = dataclasses.replace(together, seeds=(2,))
    splits_together = sample_splits(together.target, together.seeds, 100, 200, validation=True)
    splits_alone = sample_splits(alone.target, alone.seeds, 100, 200, validation=True)
    fit_together = train_cell(together, splits_together)
    monkeypatch.setattr(data, "FRESH_CHUNK", 32 * 3 * 7)  # 7 steps per draw instead of hundreds
    fit_alone = train_cell(alone, splits_alone)
    assert fit_together.log.kept_step[2] == fit_alone.log.kept_step[0]
    np.testing.assert_allclose(fit_together.log.loss[2], fit_alone.log.loss[0], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(fit_together.log.monitored["validation"][2], fit_alone.log.monitored["validation"][0], rtol=1e-4)
    assert not np.allclose(fit_together.log.loss[0], fit_together.log.loss[2])


def test_the_default_run_trains_as_nine_ensembles(registry):
    """Three families on targets of three input dimensions (1, 2 and 5): nine ensembles, not 39 cells."""
    from benchmark.runner import layout

    plan = build_plan(registry, RunConfig(targets="all", seeds=5))
    pending = {t: [c for c in plan.cells if c.target is t] for t in plan.targets}
    ensembles = [cells for _, batch in layout(pending, RunConfig(seeds=5), together=True) for cells in batch]
    assert len(plan.cells) == 39 and len(ensembles) == 9
    assert sorted(len(cells) for cells in ensembles) == [1, 1, 1, 4, 4, 4, 8, 8, 8]
    assert all(len({(c.model.label, c.target.dim) for c in cells}) == 1 for cells in ensembles)
    alone = [cells for _, batch in layout(pending, RunConfig(seeds=5), together=False) for cells in batch]
    assert len(alone) == 39


@pytest.mark.parametrize("batch", [32, 20])
def test_ensemble_size_changes_no_number(registry, monkeypatch, batch):
    """A family's cells as one ensemble, as ensembles of one or two cells: the same numbers.

    To the last bit where a member's batch fills whole pairs of float32
    vectors (a multiple of 32 points, as the published batch of 128 does);
    otherwise torch finishes each tensor's elements with scalar code, whose
    exp and log may differ from the vector code's in the last bit, so a
    member's numbers agree to float32's rounding.
    """
    from benchmark import resources
    from benchmark.runner import layout
    from benchmark.train import train_cells

    config = RunConfig(targets="binary_op[op=add],binary_op[op=mul],binary_op[op=div,range=-2:2]", models="nau,nalu",
                       seeds=3, steps=60, eval_every=20, batch_size=batch, samples=100, eval_samples=50)
    plan = build_plan(registry, config)
    splits = {t.label: sample_splits(t, range(3), 100, 50, validation=True) for t in plan.targets}
    pending = {t: [c for c in plan.cells if c.target is t] for t in plan.targets}
    same = np.testing.assert_array_equal if batch % 32 == 0 else (
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7))

    def trained(ensemble_bytes: int) -> tuple[list[int], dict]:
        monkeypatch.setattr(resources, "ENSEMBLE_BYTES", ensemble_bytes)
        ensembles = [cells for _, batch in layout(pending, config, together=True) for cells in batch]
        logs = {fit.cell.id: (fit.log, fit.model.readable_parameters()) for cells in ensembles
                for fit in train_cells([(cell, splits[cell.target.label]) for cell in cells])}
        return sorted(len(cells) for cells in ensembles), logs

    sizes, reference = trained(resources.ENSEMBLE_BYTES)
    assert sizes == [3, 3]
    for ensemble_bytes, expected in ((1, [1] * 6), (6 * 4 * 4 * batch, [1, 1, 1, 1, 2])):  # 6 NAU, 3 NALU members
        sizes, logs = trained(ensemble_bytes)
        assert sizes == expected
        for cell_id, (log, parameters) in logs.items():
            then, then_parameters = reference[cell_id]
            same(log.loss, then.loss)
            np.testing.assert_array_equal(log.kept_step, then.kept_step)
            for name, scores in log.monitored.items():
                same(scores, then.monitored[name])
            assert [p.keys() for p in parameters] == [p.keys() for p in then_parameters]
            same([list(p.values()) for p in parameters], [list(p.values()) for p in then_parameters])


def test_fresh_batches_of_a_seed_depend_on_nothing_else(registry, monkeypatch):
    """A seed's batches are the same in any ensemble, however many steps a draw holds and labels a block."""
    from benchmark import data

    add, div = (registry.targets["binary_op"].create(op=op, range="-2:2") for op in ("add", "div"))
    together = data.FreshBatches([(add, [0, 1, 2]), (div, [0, 7])], batch_size=64)
    x, y = together.draw(40)
    assert x.shape == (5, 40, 64, 2) and y.shape == (5, 40, 64, 1)
    monkeypatch.setattr(data, "LABEL_BLOCK", 64 * 2 * 3)  # a block of members per few steps, not all at once
    alone = data.FreshBatches([(div, [7])], batch_size=64)
    parts = [alone.draw(k) for k in (1, 13, 26)]
    torch.testing.assert_close(torch.cat([p[0] for p in parts], dim=1), x[4:], rtol=0, atol=0)
    torch.testing.assert_close(torch.cat([p[1] for p in parts], dim=1), y[4:], rtol=0, atol=0)
    np.testing.assert_array_equal(y[3:].numpy(), (x[3:, ..., :1].double() / x[3:, ..., 1:].double()).float().numpy())
    assert not torch.equal(x[0], x[3])  # seed 0 of another target draws other points
    # Draws sit at the midpoints of 2^24 steps of the range: never on its edges, never on 0.
    assert x.abs().min() >= 2**-23 and x.min() > -2 and x.max() < 2


@pytest.mark.parametrize("protocol", [
    ["--targets", "addition,subtraction,weighted_sum[n=2],square,sine,product",
     "--models", "linear,mlp[width=16,depth=2],mlp_tanh[width=8,depth=1],knn", "--epochs", "8"],
    ["--targets", "binary_op[op=add],binary_op[op=mul],binary_op[op=sub,range=-2:2]",
     "--models", "nau,nmu[hidden=2],mlp[width=8,depth=1]", "--steps", "120", "--eval-every", "40", "--batch-size", "16"],
], ids=["epochs", "steps"])
def test_cell_batching_and_worker_processes_change_no_number(tmp_path, bench, protocol):
    """Cells trained as one ensemble, in two worker processes, give bit for bit the numbers they give alone."""
    runs = {}
    for flag, jobs in (("--cell-batching", "2"), ("--no-cell-batching", "1")):
        result = bench("run", *protocol, "--seeds", "3", "--samples", "200", "--eval-samples", "100",
                       "--out", str(tmp_path / flag), flag, "--jobs", jobs)
        assert result.exit_code == 0, result.stderr
        runs[flag] = result
    for table in TABLES:
        batched, alone = (runs[flag].table(table).drop(columns=["train_seconds"], errors="ignore")
                          for flag in ("--cell-batching", "--no-cell-batching"))
        # Tables list cells in the plan's order, whichever order they trained in.
        assert len(batched) == len(alone) and (len(batched) or table in ("probes", "formulas")), table
        pd.testing.assert_frame_equal(batched, alone, check_exact=True, obj=table)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("widths", [[2, 64, 1], [3, 16, 16, 2], [1, 8, 8, 8, 1]])
def test_the_written_out_mlp_backward_equals_autograd(activation, widths):
    """The MLP's own backward pass gives autograd's gradients of the same forward pass, inputs' included.

    To rounding: autograd hands some gradients on as transposed views, and a
    sum over another memory layout may round its last bit differently.
    """
    from benchmark.models import stacked as te

    mlp = te.StackedMLP(widths, activation, te.seed_generators(range(3)))
    x = torch.randn(3, 50, widths[0], generator=torch.Generator().manual_seed(1), requires_grad=True)
    target = torch.randn(3, 50, widths[-1], generator=torch.Generator().manual_seed(2))

    def gradients(forward):
        x.grad = None
        for p in mlp.parameters():
            p.grad = None
        out = forward(x)
        (out - target).square().mean(dim=(1, 2)).sum().backward()
        return [out.detach(), x.grad, *(p.grad for p in mlp.parameters())]

    def by_autograd(h):  # the same forward pass, differentiated by autograd
        *hidden, last = mlp.layers
        for layer in hidden:
            h = te.ACTIVATIONS[activation](layer(h))
        return te._product(h, last.weight) + last.bias

    written_out, reference = gradients(mlp), gradients(by_autograd)
    assert len(written_out) == 2 + 2 * (len(widths) - 1)
    assert torch.equal(written_out[0], reference[0])  # the forward pass: the same operations
    for ours, theirs in zip(written_out[1:], reference[1:]):
        assert ours.abs().max() > 0
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-7)


def test_evaluating_in_chunks_changes_no_number(monkeypatch):
    from benchmark.models.stacked import StackedMLP, seed_generators
    from benchmark.train import batches

    mlp = StackedMLP([2, 64, 64, 1], "tanh", seed_generators(range(5)))
    x = torch.randn(5, 1000, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        whole = mlp(x)
        monkeypatch.setattr(batches, "EVALUATION_CHUNK", 96)  # 11 chunks, the last one short
        chunked = batches.evaluate_in_chunks(mlp, x)
    assert chunked.shape == whole.shape
    assert torch.equal(chunked, whole)


@pytest.mark.parametrize("name, torch_optimizer", [
    ("adam", lambda params: torch.optim.Adam(params, lr=0.01, foreach=True)),
    ("adamw", lambda params: torch.optim.AdamW(params, lr=0.01, foreach=True)),
    ("sgd", lambda params: torch.optim.SGD(params, lr=0.01, foreach=True)),
])
def test_foreach_optimisers_are_torchs_to_the_last_bit(name, torch_optimizer):
    """funcbench's optimisers run torch.optim's foreach kernels; 300 steps must end in the same bits."""
    from benchmark.models.stacked import StackedMLP, seed_generators
    from benchmark.train.optimizers import OPTIMIZERS

    def train(make_optimizer):
        mlp = StackedMLP([2, 16, 16, 1], "tanh", seed_generators(range(4)))
        spare = nn.Parameter(torch.ones(4, 3))  # never in the loss until step 100: its steps wait, as torch's do
        optimizer = make_optimizer([*mlp.parameters(), spare])
        data = torch.Generator().manual_seed(0)
        for step in range(300):
            x = torch.rand(4, 32, 2, generator=data)
            loss = (mlp(x) - x.prod(-1, keepdim=True)).square().mean(dim=(1, 2)).sum()
            if step >= 100:
                loss = loss + spare.square().sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return [p.detach() for p in (*mlp.parameters(), spare)]

    ours = train(lambda params: OPTIMIZERS[name](params, 0.01))
    torchs = train(torch_optimizer)
    assert not torch.equal(ours[-1], torch.ones(4, 3))
    for mine, theirs in zip(ours, torchs):
        assert torch.equal(mine, theirs)


def test_every_optimiser_and_loss_a_run_may_name_exists():
    from benchmark.options import LOSS_NAMES, OPTIMIZER_NAMES
    from benchmark.train.loop import LOSSES
    from benchmark.train.optimizers import OPTIMIZERS

    assert OPTIMIZER_NAMES == tuple(OPTIMIZERS) and LOSS_NAMES == tuple(LOSSES)


@pytest.mark.parametrize("clip", [{"clip_value": 0.05}, {"clip_norm": 0.1}, {"clip_value": 0.05, "clip_norm": 0.02}])
def test_gradient_clipping_is_per_member_as_torchs_is_for_one_model(clip):
    """Clipping a stacked gradient clips each member as torch.nn.utils would clip that member alone."""
    from benchmark.models.stacked import StackedMLP, seed_generators
    from benchmark.train.optimizers import clip_gradients

    mlp = StackedMLP([2, 8, 1], "tanh", seed_generators(range(3)))
    x = torch.rand(3, 32, 2, generator=torch.Generator().manual_seed(0)) * 10
    (mlp(x) - 100).square().mean(dim=(1, 2)).sum().backward()
    members = [[p.grad[s].clone() for p in mlp.parameters()] for s in range(3)]
    clip_gradients(list(mlp.parameters()), clip.get("clip_value"), clip.get("clip_norm"))
    for s, grads in enumerate(members):
        alone = [nn.Parameter(torch.zeros_like(g)) for g in grads]
        for p, g in zip(alone, grads):
            p.grad = g
        if "clip_value" in clip:
            torch.nn.utils.clip_grad_value_(alone, clip["clip_value"])
        if "clip_norm" in clip:
            torch.nn.utils.clip_grad_norm_(alone, clip["clip_norm"])
        for p, stacked in zip(alone, mlp.parameters()):
            torch.testing.assert_close(stacked.grad[s], p.grad, rtol=1e-6, atol=1e-9)
    norms = torch.stack([torch.linalg.vector_norm(torch.cat([p.grad[s].flatten() for p in mlp.parameters()]))
                         for s in range(3)])
    if "clip_norm" in clip:
        assert (norms <= clip["clip_norm"] * (1 + 1e-5)).all()


def test_clipping_by_norm_takes_a_parameter_of_one_number_per_seed():
    from benchmark.train.optimizers import clip_gradients

    scalar, matrix = nn.Parameter(torch.zeros(3)), nn.Parameter(torch.zeros(3, 2, 2))
    scalar.grad, matrix.grad = torch.tensor([3.0, 0.0, 0.3]), torch.full((3, 2, 2), 2.0)
    clip_gradients([scalar, matrix], None, 1.0)
    norms = torch.sqrt(scalar.grad**2 + matrix.grad.square().sum(dim=(1, 2)))
    torch.testing.assert_close(norms, torch.ones(3), rtol=1e-5, atol=1e-6)


def test_an_epochs_reshuffle_copies_the_rows_index_select_would():
    """The shuffled epoch is taken by numpy on the CPU: the same rows, bit for bit, as torch's index_select."""
    from benchmark.train.batches import _rows

    table = torch.randn(3000, 2)
    order = torch.from_numpy(np.random.default_rng(0).permutation(3000))
    assert torch.equal(_rows(table, order), table.index_select(0, order))
