"""A run's trained models answer new points afterwards, without retraining: `Run.predict` and `bench predict`."""

import numpy as np
import pandas as pd
import pytest
from conftest import assert_one_line_error

import benchmark
from benchmark.store import MODEL_FILE

ARTICLE = dict(targets="addition", models="linear", seeds=2, quiet=True)


def no_training(monkeypatch):
    """Make any training raise: what follows must answer from the stored models alone."""

    def refuse(*args, **kwargs):
        raise AssertionError("predict trained a model")

    monkeypatch.setattr("benchmark.runner.train_cells", refuse)
    monkeypatch.setattr("benchmark.train.cells.train_cells", refuse)


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
def test_the_stored_model_is_the_trained_one_its_probes_answer_again(tmp_path, model):
    run = benchmark.run(targets="addition,product", models=model, seeds=2, epochs=20, out=tmp_path, quiet=True)
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
