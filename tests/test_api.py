"""funcbench from Python: `benchmark.run` and `benchmark.load` against the command line, and the `Run` they give."""

import re
import shutil
import time
from dataclasses import fields

import pandas as pd
import pytest
from conftest import assert_one_line_error
from test_cli import BAD_RUN_INPUT

import benchmark
from benchmark.api import RunInterrupted, execute
from benchmark.config import RunConfig
from benchmark.options import CONFIG_OPTIONS, OPTIONS
from benchmark.store import RunStore

SMALL = dict(targets="addition,product", models="linear", seeds=2, epochs=10)
SMALL_ARGS = ["--targets", "addition,product", "--models", "linear", "--seeds", "2", "--epochs", "10"]


def numbers(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=[c for c in ("train_seconds",) if c in table])


def test_the_declaration_is_runconfigs_fields_and_defaults():
    declared = {o.name for o in CONFIG_OPTIONS}
    assert declared == {f.name for f in fields(RunConfig)} - {"model_settings"}
    defaults = RunConfig()
    assert all(getattr(defaults, o.name) == o.default for o in CONFIG_OPTIONS)


def test_run_gives_the_clis_run_folder_and_numbers_bit_for_bit(bench, tmp_path):
    cli = bench("run", *SMALL_ARGS, "--out", str(tmp_path / "cli"))
    assert cli.exit_code == 0, cli.stderr
    run = benchmark.run(**SMALL, out=tmp_path / "api", quiet=True)
    assert run.path.name == cli.run_dir.name  # the same configuration names the same folder
    assert run.finished and (run.path / "index.html").is_file()
    for name in ("results", "probes", "params", "formulas", "curves", "evaluations", "linearity", "lines"):
        pd.testing.assert_frame_equal(numbers(getattr(run, name)), numbers(cli.table(name)), check_exact=True)
    assert run.meta["options"] == {**cli.meta()["options"], "out": str(tmp_path / "api")}


def test_the_done_when_example(tmp_path):
    r = benchmark.run(targets="addition,product", models="linear", seeds=2, out=tmp_path, quiet=True)
    results = r.results
    assert set(results["target"]) == {"addition", "product"} and set(results["seed"]) == {0, 1}
    assert {"target", "model", "seed", "split", "nmse", "mse"} <= set(results.columns)
    assert len(results) == len(results.drop_duplicates(["target", "model", "seed", "split"]))  # tidy: one row each
    again = benchmark.load(r.path)
    for name in ("results", "probes", "params", "formulas", "curves", "evaluations", "linearity", "lines"):
        pd.testing.assert_frame_equal(getattr(again, name), getattr(r, name))
    assert again.config == r.config and again.config.seeds == 2
    with pytest.raises(benchmark.FuncbenchError, match=r"unknown target 'additon'; did you mean addition"):
        benchmark.run(targets="additon", models="linear", out=tmp_path)


def test_summary_success_and_compare_are_the_clis_tables(bench, tmp_path):
    from benchmark.compare import compare_runs
    from benchmark.report import run_summary
    from benchmark.store import read_run

    run = benchmark.run(targets="addition", models="nau,linear", seeds=3, steps=200, out=tmp_path, quiet=True)
    meta, tables = read_run(run.path)
    pd.testing.assert_frame_equal(run.summary(), run_summary(meta, tables))
    from benchmark.statistics import wilson_interval

    success = run.success().set_index("model")
    assert list(success.index) == ["nau", "linear"] and (success["seeds"] == 3).all()
    for model, row in success.iterrows():  # the rate of seeds that succeeded, with its Wilson interval
        assert row["success rate"] == row["successes"] / 3
        assert (row["success low"], row["success high"]) == pytest.approx(wilson_interval(row["successes"], 3))
    other = benchmark.run(targets="addition", models="nau,linear", seeds=3, steps=100, out=tmp_path, quiet=True)
    expected = compare_runs(meta, tables["results"], other.meta, other.results).rows
    pd.testing.assert_frame_equal(run.compare(other), expected)
    pd.testing.assert_frame_equal(run.compare(other.path), expected)


@pytest.mark.parametrize("args, fragments", BAD_RUN_INPUT)
def test_the_clis_bad_input_raises_the_same_line(tmp_path, args, fragments):
    keywords = {}
    flags = {o.cli_flag: o for o in OPTIONS}
    for flag, value in zip(args[::2], [*args[1::2], None]):
        option = flags.get(flag)
        if option is None:  # not an option: as a keyword argument, Python's own words
            keywords[flag.lstrip("-").replace("-", "_")] = True
            fragments = [f"unknown keyword argument '{flag.lstrip('-').replace('-', '_')}'"]
            continue
        try:
            keywords[option.name] = option.kind(value) if option.kind in (int, float) else value
        except ValueError:  # a number the command line could not parse: passed as typed, refused by type
            keywords[option.name] = value
            fragments = [f"'{option.name}' must be {'an integer' if option.kind is int else 'a number'}, got '{value}'"]
    keywords.setdefault("models", "linear")
    with pytest.raises(benchmark.FuncbenchError) as raised:
        benchmark.run(out=tmp_path, quiet=True, **keywords)
    assert isinstance(raised.value, ValueError) and "\n" not in str(raised.value)
    for fragment in fragments:
        assert fragment in str(raised.value), (fragment, str(raised.value))
    assert not list(tmp_path.glob("*/cells/*"))  # nothing ran


def test_bad_keyword_values_are_one_line_errors(tmp_path):
    cases = [(dict(seed=3), "unknown keyword argument 'seed'; did you mean seeds"),
             (dict(seeds=True), "'seeds' must be an integer, got True"),
             (dict(lr=0.1, learning_rate=0.2), "'lr' and 'learning_rate' set the same option"),
             (dict(executor="slurm"), "--executor must be one of local, dask"),
             (dict(plugins=[3]), "plugins takes files, module names, modules or objects"),
             (dict(quiet=True, verbose=True), "quiet and verbose contradict each other")]
    for keywords, fragment in cases:
        with pytest.raises(benchmark.FuncbenchError, match=re.escape(fragment)):
            benchmark.run(targets="addition", models="linear", out=tmp_path, **keywords)


def test_options_take_any_spelling_and_a_config_file_under_them(tmp_path):
    (tmp_path / "study.toml").write_text('targets = ["addition"]\nmodels = "linear"\nseeds = 3\nepochs = 5\n')
    run = benchmark.run(config=tmp_path / "study.toml", seeds=2, lr=0.05, out=tmp_path, quiet=True)
    assert run.config.seeds == 2 and run.config.epochs == 5 and run.config.learning_rate == 0.05
    assert run.config.targets == "addition"
    listed = benchmark.run(targets=["addition", "weighted_sum[n=3]"], models=["linear"], seeds=1, epochs=2,
                           out=tmp_path, quiet=True)
    assert listed.config.targets == "addition,weighted_sum[n=3]"


def test_a_target_defined_in_the_session_is_a_plugin(tmp_path):
    from benchmark import Box, near_and_far, target

    domain = Box.cube(1, 0.0, 1.0)

    @target(domain=domain, extrapolation=near_and_far(domain), description="3x - 1", linear_solution=((3,), -1))
    def affine3(x):
        return 3 * x - 1

    for jobs in (1, 2):  # in this process, and in forked workers
        run = benchmark.run(targets="affine3", models="linear", seeds=2, plugins=[affine3], jobs=jobs, force=True,
                            out=tmp_path, quiet=True)
        assert run.results["target"].unique().tolist() == ["affine3"]
        weights = run.params.pivot(index="seed", columns="parameter", values="value")
        assert ((weights["weight[x1]"] - 3).abs() < 1e-3).all() and ((weights["bias"] + 1).abs() < 1e-3).all()
    with pytest.raises(benchmark.FuncbenchError, match="train on this machine only"):
        benchmark.run(targets="affine3", models="linear", plugins=[affine3], executor="dask", out=tmp_path)


def test_ctrl_c_keeps_the_finished_cells_and_raises_keyboard_interrupt(tmp_path, monkeypatch):
    write_cell = RunStore.write_cell
    written = []

    def interrupted_after_one(store, cell_id, result):
        if written:
            raise KeyboardInterrupt
        write_cell(store, cell_id, result)
        written.append(cell_id)

    monkeypatch.setattr(RunStore, "write_cell", interrupted_after_one)
    with pytest.raises(KeyboardInterrupt) as stop:
        benchmark.run(**SMALL, jobs=1, cell_batching=False, out=tmp_path, quiet=True)
    assert isinstance(stop.value, RunInterrupted) and "finished cells are saved in" in str(stop.value)
    [folder] = tmp_path.glob("run-*")
    [finished] = (folder / "cells").iterdir()
    shutil.copytree(finished, folder / "cells" / "0123456789abcdef")  # a folder run.json does not list: not read
    partial = benchmark.load(folder)
    assert not partial.finished and "not finished" in repr(partial)
    assert "not finished" in partial._repr_html_()
    assert partial.results["target"].unique().tolist() == ["addition"]  # the one cell written
    monkeypatch.setattr(RunStore, "write_cell", write_cell)
    done = execute({**SMALL, "jobs": 1, "cell_batching": False, "out": tmp_path})
    assert (done.trained, done.reused) == (1, 1) and done.run.finished


def test_a_runs_html_in_jupyter_is_its_headline_and_heatmap_self_contained(tmp_path):
    run = benchmark.run(**SMALL, out=tmp_path, quiet=True)
    html = run._repr_html_()
    assert "<table" in html and "<svg" in html and "addition" in html and "product" in html
    assert not re.search(r"""(src|href)=["'](?!#|data:)""", html)  # nothing fetched from elsewhere


def test_report_writes_or_refreshes_the_html(tmp_path):
    run = benchmark.run(**SMALL, out=tmp_path, quiet=True)
    index = run.path / "index.html"
    index.unlink()
    assert run.report() == index and index.is_file()
    elsewhere = run.report(out=tmp_path / "copy")
    assert elsewhere == tmp_path / "copy" / "index.html" and elsewhere.is_file()


def test_load_refuses_what_is_not_a_run_folder(tmp_path, bench):
    with pytest.raises(benchmark.FuncbenchError, match="is not a funcbench run folder"):
        benchmark.load(tmp_path)
    with pytest.raises(benchmark.FuncbenchError, match="has no table 'result'; its tables are results"):
        benchmark.run(**SMALL, out=tmp_path, quiet=True).table("result")
    assert_one_line_error(bench("report", str(tmp_path)), "is not a funcbench run folder")


def test_every_option_is_a_keyword_of_run():
    """`run` takes each declared option as a keyword, by its name and its flag's spelling: none is left to the
    command line alone."""
    from pathlib import Path

    from benchmark.options import checked_settings

    samples = {int: 3, float: 0.5, bool: True, str: "text", Path: "somewhere", tuple: ["plugin.py"]}
    for option in OPTIONS:
        if option.name == "config":  # a parameter of run() itself
            continue
        value = option.choices[0] if option.choices else samples[option.kind]
        for spelling in option.spellings:
            assert checked_settings({spelling: value}, "run()", names="python") == {option.name: value}
    with pytest.raises(benchmark.FuncbenchError, match="unknown keyword argument 'not_an_option'"):
        benchmark.run(not_an_option=1)
    with pytest.raises(benchmark.FuncbenchError, match="'plugin' and 'plugins' set the same option"):
        benchmark.run(plugin="a.py", plugins=["b.py"])


def test_interrupting_a_jupyter_kernel_stops_the_run_and_keeps_its_cells(tmp_path):
    """Jupyter's *interrupt* (SIGINT to the kernel) during a run: RunInterrupted, finished cells kept, resumable."""
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    try:
        client.execute_interactive("import benchmark", timeout=60)
        code = ("r = benchmark.run(targets='addition,product,square,sine', models='mlp', seeds=2, epochs=400, "
                "jobs=1, cell_batching=False, quiet=True)")
        message_id = client.execute(code)
        cells = tmp_path / "reports"
        deadline = time.monotonic() + 300
        while not list(cells.glob("run-*/cells/[!.]*")) and time.monotonic() < deadline:
            time.sleep(0.2)
        manager.interrupt_kernel()
        reply = client.get_shell_msg(timeout=120)
        while reply["parent_header"].get("msg_id") != message_id:
            reply = client.get_shell_msg(timeout=120)
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "RunInterrupted"
        assert "finished cells are saved in" in reply["content"]["evalue"]
        [folder] = cells.glob("run-*")
        kept = benchmark.load(folder)
        assert not kept.finished and 1 <= kept.results["target"].nunique() < 4
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def test_a_partial_run_with_no_finished_cell_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(RunStore, "write_cell", lambda *args: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(RunInterrupted):
        benchmark.run(**SMALL, jobs=1, out=tmp_path, quiet=True)
    [folder] = tmp_path.glob("run-*")
    with pytest.raises(benchmark.FuncbenchError, match="has finished yet"):
        benchmark.load(folder).summary()
    assert "has finished yet" in benchmark.load(folder)._repr_html_()
