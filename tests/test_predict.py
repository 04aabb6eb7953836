"""A run's trained models answer new points afterwards, without retraining: `Run.predict` and `bench predict`."""

import io
import json
import shutil
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import assert_one_line_error

import benchmark
from benchmark.store import MODEL_FILE

ARTICLE = dict(targets="addition", models="linear", seeds=2, quiet=True)


def no_training(monkeypatch):
    """Make any training raise: what follows must answer from the stored models alone."""

    def refuse(*args, **kwargs):
        raise AssertionError("predict trained a model")

    monkeypatch.setattr("benchmark.runner.train_cells", refuse)
    monkeypatch.setattr("benchmark.runner.train_group", refuse)
    monkeypatch.setattr("benchmark.train.cells.train_cells", refuse)
    # Nor any family's own fit: a loaded member is used as it was stored.
    monkeypatch.setattr("benchmark.models.ensemble.TorchEnsemble.fit", refuse)
    monkeypatch.setattr("benchmark.models.sklearn_families.SklearnEnsemble.fit", refuse)


def test_the_article_unit_answers_7_for_3_plus_4_without_retraining(tmp_path, monkeypatch):
    run = benchmark.run(**ARTICLE, out=tmp_path)
    no_training(monkeypatch)
    answers = benchmark.load(run.path).predict("addition", "linear", [[3, 4]])
    assert list(answers.columns) == ["target", "model", "seed", "a", "b", "y_pred", "y_true"]
    assert answers["seed"].tolist() == [0, 1] and (answers["y_true"] == 7).all()
    assert np.allclose(answers["y_pred"], 7, atol=1e-3)
    one = run.predict("addition", "linear", [9, 90])  # a single point
    assert np.allclose(one["y_pred"], 99, atol=1e-2) and len(one) == 2


@pytest.mark.parametrize("model", ["linear", "nau", "mlp_small", "poly_ridge", "random_forest", "knn"])
def test_the_stored_model_is_the_trained_one_its_probes_answer_again(tmp_path, monkeypatch, model):
    run = benchmark.run(targets="addition,product", models=model, seeds=2, epochs=20, out=tmp_path, quiet=True)
    no_training(monkeypatch)
    for target in ("addition", "product"):
        probes = run.probes[(run.probes["target"] == target)]
        points = [list(x) for x in probes.loc[probes["seed"] == 0, "x"]]
        answers = run.predict(target, model, points)
        assert np.array_equal(answers["y_pred"].to_numpy(), probes["y_pred"].to_numpy()), (target, model)
        assert np.array_equal(answers["y_true"].to_numpy(), probes["y_true"].to_numpy())


def test_cells_trained_as_one_ensemble_keep_their_own_members(tmp_path):
    run = benchmark.run(targets="addition,subtraction", models="linear", seeds=2, out=tmp_path, quiet=True)
    plus, minus = (run.predict(t, "linear", [[3, 4]])["y_pred"].to_numpy() for t in ("addition", "subtraction"))
    assert np.allclose(plus, 7, atol=1e-3) and np.allclose(minus, -1, atol=1e-3)
    weights = run.params.pivot_table(index=["target", "seed"], columns="parameter", values="value")
    assert np.allclose(minus, 3 * weights.loc["subtraction", "weight[a]"] + 4 * weights.loc["subtraction", "weight[b]"]
                       + weights.loc["subtraction", "bias"], atol=1e-5)


def test_a_resumed_run_still_predicts(tmp_path):
    benchmark.run(**ARTICLE, out=tmp_path)
    again = benchmark.run(**ARTICLE, out=tmp_path)
    assert np.allclose(again.predict("addition", "linear", [[3, 4]])["y_pred"], 7, atol=1e-3)


def test_bad_questions_are_one_line_errors(tmp_path):
    run = benchmark.run(**ARTICLE, out=tmp_path)
    cases = [(("additon", "linear", [[3, 4]]), "unknown target in this run 'additon'; did you mean addition"),
             (("addition", "mlp", [[3, 4]]), "unknown model in this run 'mlp'; known: linear"),
             (("addition", "linear", [[3, 4, 5]]), "addition takes 2 input(s) (a, b) per point, got points of shape (1, 3)"),
             (("addition", "linear", [[3, float("nan")]]), "points must be finite numbers"),
             (("addition", "linear", [["three", 4]]), "points must be numbers")]
    for args, fragment in cases:
        with pytest.raises(benchmark.FuncbenchError) as raised:
            run.predict(*args)
        assert fragment in str(raised.value) and "\n" not in str(raised.value)


def test_a_model_trained_by_other_code_is_refused(tmp_path):
    plugin = tmp_path / "mine.py"
    source = ("from benchmark import Box, near_and_far, target\nD = Box.cube(1, 0.0, 1.0)\n"
              "@target(domain=D, extrapolation=near_and_far(D), description='2x')\ndef double(x):\n    return {} * x\n")
    plugin.write_text(source.format(2))
    run = benchmark.run(targets="double", models="linear", seeds=1, plugins=[plugin], out=tmp_path, quiet=True)
    assert np.allclose(run.predict("double", "linear", [[3]])["y_pred"], 6, atol=1e-3)
    plugin.write_text(source.format(3))  # the target's code changed since it was trained
    with pytest.raises(benchmark.FuncbenchError, match=r"refused: the stored model of double x linear was trained "
                                                        r"by other code \(cell \w+, now \w+"):
        benchmark.load(run.path).predict("double", "linear", [[3]])


def test_a_cell_without_a_model_file_says_so(tmp_path):
    run = benchmark.run(**ARTICLE, out=tmp_path)
    [model_file] = run.path.glob(f"cells/*/{MODEL_FILE}")
    model_file.unlink()
    with pytest.raises(benchmark.FuncbenchError, match="kept no trained model"):
        run.predict("addition", "linear", [[3, 4]])


def test_bench_predict_prints_every_seeds_answer(bench, tmp_path):
    run = benchmark.run(**ARTICLE, out=tmp_path)
    result = bench("predict", str(run.path), "--target", "addition", "--model", "linear", "3,4", "9,90")
    assert result.exit_code == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows[0] == ["target", "model", "seed", "a", "b", "y_pred", "y_true"] and len(rows) == 5
    answers = pd.DataFrame(rows[1:], columns=rows[0])
    assert np.allclose(answers["y_pred"].astype(float), answers["y_true"].astype(float), atol=1e-2)
    assert_one_line_error(bench("predict", str(run.path), "--target", "addition", "--model", "linear", "3,x"),
                          "point '3,x' is not numbers separated by commas")
    assert_one_line_error(bench("predict", str(run.path), "--target", "additon", "--model", "linear", "3,4"),
                          "did you mean addition")


def test_a_merged_run_keeps_its_cells_models(bench, tmp_path):
    a = benchmark.run(targets="addition", models="linear", seeds=2, out=tmp_path / "a", quiet=True)
    b = benchmark.run(targets="subtraction", models="linear", seeds=2, out=tmp_path / "b", quiet=True)
    assert bench("merge", str(a.path), str(b.path), "--out", str(tmp_path / "merged"), "-q").exit_code == 0
    merged = benchmark.load(tmp_path / "merged")
    for target, answer in (("addition", 7), ("subtraction", -1)):
        assert np.allclose(merged.predict(target, "linear", [[3, 4]])["y_pred"], answer, atol=1e-3)


def test_no_keep_models_keeps_none_and_predict_says_so(tmp_path, bench):
    run = benchmark.run(**ARTICLE, keep_models=False, out=tmp_path)
    assert run.results["cell"].nunique() == 1 and not list(run.path.glob(f"cells/*/{MODEL_FILE}"))
    with pytest.raises(benchmark.FuncbenchError, match="kept no trained model \\(run with --no-keep-models"):
        run.predict("addition", "linear", [[3, 4]])
    cli = bench("run", "--targets", "addition", "--models", "linear", "--seeds", "2", "--no-keep-models",
                "--out", str(tmp_path / "cli"))
    assert cli.exit_code == 0 and not list(cli.run_dir.glob(f"cells/*/{MODEL_FILE}"))
    assert cli.meta()["options"]["keep_models"] is False


def test_a_partial_runs_finished_cells_answer_and_the_others_are_refused(tmp_path):
    run = benchmark.run(targets="addition,subtraction", models="linear", seeds=2, out=tmp_path, quiet=True)
    # As a run killed before its last cell leaves the folder: run.json not finished, that cell never written.
    meta = json.loads((run.path / "run.json").read_text())
    (run.path / "run.json").write_text(json.dumps({**meta, "finished": None}))
    shutil.rmtree(run.path / "cells" / run.results.query("target == 'subtraction'")["cell"].iloc[0])
    partial = benchmark.load(run.path)
    assert not partial.finished
    assert np.allclose(partial.predict("addition", "linear", [[3, 4]])["y_pred"], 7, atol=1e-3)
    with pytest.raises(benchmark.FuncbenchError, match="cell subtraction x linear has not finished in") as raised:
        partial.predict("subtraction", "linear", [[3, 4]])
    assert "\n" not in str(raised.value)


def test_y_true_is_nan_where_the_target_is_undefined(tmp_path):
    run = benchmark.run(targets="sqrt", models="linear", seeds=1, epochs=2, out=tmp_path, quiet=True)
    answers = run.predict("sqrt", "linear", [[4], [-4]])
    assert answers["x1"].tolist() == [4, -4] and answers["y_true"].iloc[0] == 2 and np.isnan(answers["y_true"].iloc[1])
    assert np.isfinite(answers["y_pred"]).all()


class RunsCode:
    """Unpickling it would create `marker`: a stored model that must not be built."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def assert_refused(run, target, model, *fragments):
    with pytest.raises(benchmark.FuncbenchError) as raised:
        run.predict(target, model, [[3, 4]])
    message = str(raised.value)
    assert "\n" not in message and f"the stored model of {target} x {model}" in message, message
    assert "does not load" in message and "run it again with --force" in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_a_damaged_or_foreign_torch_model_file_is_refused_without_running_it(tmp_path):
    run = benchmark.run(**ARTICLE, out=tmp_path)
    [model_file] = run.path.glob(f"cells/*/{MODEL_FILE}")
    whole, marker = model_file.read_bytes(), tmp_path / "ran"
    model_file.write_bytes(whole[: len(whole) // 2])  # truncated
    assert_refused(run, "addition", "linear", "PytorchStreamReader")
    buffer = io.BytesIO()
    torch.save({"weight": RunsCode(marker)}, buffer)
    model_file.write_bytes(buffer.getvalue())
    assert_refused(run, "addition", "linear", "not tensors alone")
    assert not marker.exists()
    model_file.write_bytes(whole)  # put back, it answers again
    assert np.allclose(run.predict("addition", "linear", [[3, 4]])["y_pred"], 7, atol=1e-3)


def test_a_scikit_learn_model_file_of_foreign_types_is_refused_without_building_them(tmp_path):
    import skops.io

    run = benchmark.run(targets="addition", models="poly_ridge", seeds=1, samples=100, out=tmp_path, quiet=True)
    [model_file] = run.path.glob(f"cells/*/{MODEL_FILE}")
    marker = tmp_path / "ran"
    model_file.write_bytes(skops.io.dumps([RunsCode(marker)]))
    assert_refused(run, "addition", "poly_ridge", "test_predict.RunsCode", "not scikit-learn's")
    assert not marker.exists()


STATELESS = textwrap.dedent("""
    import numpy as np
    from benchmark import model_family
    from benchmark.model import ModelSpec, TrainingLog

    class Mean:
        \"\"\"Each seed's mean training target, everywhere: a Model without state() and load_state().\"\"\"

        def __init__(self, seeds):
            self.mean = np.zeros((len(seeds), 1, 1))

        def fit(self, data, settings):
            self.mean = data.y.mean(axis=1, keepdims=True)
            k = len(self.mean)
            return TrainingLog(loss_steps=np.array([1]), loss=np.zeros((k, 1)), steps=np.array([0, 1]),
                               monitored={m.name: np.zeros((k, 2)) for m in data.monitor},
                               kept_step=np.ones(k, dtype=int))

        def predict(self, x):
            return np.broadcast_to(self.mean, (len(self.mean), x.shape[1], 1)).copy()

        def readable_parameters(self):
            return [{} for _ in self.mean]

        def formulas(self):
            return [None for _ in self.mean]

    @model_family(description="each seed's mean training target")
    def mean():
        return ModelSpec(lambda inputs, seeds, device: Mean(seeds), "the mean", learning_rate=None)
""")


def test_a_family_that_cannot_save_its_models_keeps_none_and_predict_says_so(tmp_path):
    plugin = tmp_path / "stateless.py"
    plugin.write_text(STATELESS)
    run = benchmark.run(targets="addition", models="mean,linear", seeds=2, plugins=[plugin], out=tmp_path, quiet=True)
    cells = run.results.drop_duplicates("model").set_index("model")["cell"]
    assert not (run.path / "cells" / cells["mean"] / MODEL_FILE).exists()
    assert (run.path / "cells" / cells["linear"] / MODEL_FILE).is_file()
    with pytest.raises(benchmark.FuncbenchError, match="cell addition x mean of .* kept no trained model") as raised:
        run.predict("addition", "mean", [[3, 4]])
    assert "\n" not in str(raised.value) and "a family that cannot save one" in str(raised.value)
