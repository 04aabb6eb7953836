"""Configuration files, repeating a run from its run.json, comparing runs, and the command's verbosity."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import Invocation, assert_one_line_error

from benchmark.cli import cli
from benchmark.cli import run as run_command
from benchmark.config import read_config
from benchmark.options import checked_settings

SMALL = ["--targets", "addition,product", "--models", "linear", "--seeds", "2", "--epochs", "10"]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def bench_here(tmp_path, monkeypatch):
    """`bench` run from a scratch folder, without the `bench` fixture's --out, so a file's `out` is seen."""
    monkeypatch.chdir(tmp_path)

    def invoke(*args: str) -> Invocation:
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
        return Invocation(result.exit_code, result.stdout, result.stderr)

    return invoke


def test_a_toml_file_sets_options_and_the_command_line_overrides_it(bench_here, tmp_path):
    config = write(tmp_path / "study.toml", """
        # kept in git next to the paper
        targets = ["addition", "weighted_sum[n=3]"]
        models = "linear"
        seeds = 2
        epochs = 10
        eval-samples = 500
        lr = 0.05
        run-id = "study"
        out = "from-file"
    """.replace("\n        ", "\n"))
    result = bench_here("run", "--config", str(config), "--epochs", "12")
    assert result.exit_code == 0, result.stderr
    assert result.run_dir.resolve() == tmp_path / "from-file" / "study"
    recorded = result.meta()["config"]
    assert recorded["targets"] == "addition,weighted_sum[n=3]"
    assert (recorded["seeds"], recorded["eval_samples"], recorded["learning_rate"]) == (2, 500, 0.05)
    assert recorded["epochs"] == 12  # the command line wins over the file


def test_a_suite_in_a_file_is_overridden_by_the_file_and_the_file_by_the_command_line(bench, tmp_path):
    config = write(tmp_path / "relu.toml", 'suite = "relu-extrapolation"\ntargets = "linear_map[d=1]"\nepochs = 2\n'
                                           'samples = 256\neval-samples = 200\nseeds = 3\n')
    result = bench("run", "--config", str(config), "--seeds", "1")
    assert result.exit_code == 0, result.stderr
    recorded = result.meta()["config"]
    assert recorded["suite"] == "relu-extrapolation"
    assert (recorded["batch_size"], recorded["learning_rate"]) == (64, 0.0001)  # from the suite
    assert (recorded["epochs"], recorded["samples"]) == (2, 256)  # the file over the suite
    assert recorded["seeds"] == 1  # the command line over the file
    assert recorded["models"] == "mlp[width=128,depth=1]"


def test_run_json_repeats_the_run_exactly(bench_here, tmp_path):
    first = bench_here("run", *SMALL, "--lr", "0.02", "--out", "first")
    assert first.exit_code == 0, first.stderr
    options = first.meta()["options"]
    assert options["out"] == "first" and options["learning_rate"] == 0.02 and "force" not in options

    # The folder itself, from another folder: the same configuration finds the same run folder and reuses every cell.
    elsewhere_dir = tmp_path / "elsewhere"
    elsewhere_dir.mkdir()
    os.chdir(elsewhere_dir)
    again = bench_here("run", "--config", str(tmp_path / first.run_dir))
    assert again.exit_code == 0, again.stderr
    assert again.run_dir == (tmp_path / first.run_dir).resolve()
    assert "(0 trained, 2 reused)" in again.stdout
    os.chdir(tmp_path)

    # Elsewhere, retrained from scratch: the same numbers, bit for bit.
    elsewhere = bench_here("run", "--config", str(tmp_path / first.run_dir / "run.json"), "--out", "second")
    assert elsewhere.exit_code == 0, elsewhere.stderr
    assert "(2 trained, 0 reused)" in elsewhere.stdout
    assert elsewhere.meta()["config"] == first.meta()["config"]
    pd.testing.assert_frame_equal(elsewhere.table("results").drop(columns="train_seconds"),
                                  first.table("results").drop(columns="train_seconds"), check_exact=True)


def test_every_run_option_has_a_config_key():
    """Each option of `bench run` is a key of a config file, under the spelling its flag has."""
    samples = {click.types.IntParamType: 3, click.types.FloatParamType: 0.5, click.types.BoolParamType: True}
    for param in run_command.params:
        if not isinstance(param, click.Option) or param.name in ("config", "help"):
            continue
        if param.multiple:
            value = ["plugin.py"]
        elif param.is_flag:
            value = True
        elif isinstance(param.type, click.Choice):
            value = param.type.choices[0]
        else:
            value = next((v for kind, v in samples.items() if isinstance(param.type, kind)), "text")
        key = max(param.opts, key=len).lstrip("-")
        assert checked_settings({key: value}, "f.toml") == {param.name: value}, key


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("seed = 3\n", ["f.toml: unknown option 'seed'", "did you mean seeds"]),
        ("[run]\nseeds = 3\n", ["unknown option 'run'"]),
        ('seeds = "3"\n', ["'seeds' must be an integer, got '3'"]),
        ("seeds = 3.0\n", ["'seeds' must be an integer, got 3.0"]),
        ("seeds = true\n", ["'seeds' must be an integer, got True"]),
        ('lr = "fast"\n', ["'lr' must be a number"]),
        ("cell-batching = 1\n", ["'cell-batching' must be true or false"]),
        ("plugins = [1, 2]\n", ["'plugins' must be a string or a list of strings"]),
        ("targets = 5\n", ["'targets' must be a string"]),
        ('executor = "slurm"\n', ["'executor' must be one of local, dask"]),
        ("lr = 0.1\nlearning_rate = 0.2\n", ["'lr' and 'learning_rate' set the same option"]),
        ("seeds = \n", ["is not valid TOML"]),
        ("seeds = 0\n", ["f.toml", "'seeds' must be between 1 and"]),  # parsed, then checked like the option
        ("jobs = -1\n", ["f.toml: 'jobs' must be between 0 and 10,000, got -1"]),
        ('targets = "additon"\n', ["unknown target 'additon'"]),
    ],
)
def test_bad_config_files_are_one_line_errors(bench, tmp_path, monkeypatch, text, fragments):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "f.toml", text)
    assert_one_line_error(bench("run", "--config", "f.toml", "--models", "linear"), *fragments)


def test_config_paths_that_are_not_config_files(bench, tmp_path):
    assert_one_line_error(bench("run", "--config", str(tmp_path / "nope.toml")), "does not exist")
    assert_one_line_error(bench("run", "--config", str(tmp_path)), "a folder without a run.json")
    assert_one_line_error(bench("run", "--config", str(write(tmp_path / "c.yaml", "seeds: 3"))), "must be a .toml file")
    assert_one_line_error(bench("run", "--config", str(write(tmp_path / "run.json", "{"))), "is not valid JSON")
    assert_one_line_error(bench("run", "--config", str(write(tmp_path / "run.json", "[]"))), "not a funcbench run.json")
    merged = write(tmp_path / "run.json", json.dumps({"config": {}, "merged_from": [{"folder": "a"}]}))
    assert_one_line_error(bench("run", "--config", str(merged)), "is a merged run")
    for malformed in ({"config": None}, {"config": {}, "options": [1]}):
        path = write(tmp_path / "run.json", json.dumps(malformed))
        assert_one_line_error(bench("run", "--config", str(path)), "not a funcbench run.json")


def test_a_plugin_file_is_found_again_from_another_folder(bench_here, tmp_path):
    (tmp_path / "plugins").mkdir()
    write(tmp_path / "plugins" / "affine.py", "from benchmark import Box, near_and_far, target\n"
          "D = Box.cube(1, 0.0, 1.0)\n"
          "@target(domain=D, extrapolation=near_and_far(D), description='2x + 1', linear_solution=((2,), 1))\n"
          "def affine(x):\n    return 2 * x + 1\n")
    first = bench_here("run", "--plugin", "plugins/affine.py", "--targets", "affine", "--models", "linear",
                       "--seeds", "1", "--epochs", "5", "--out", "runs", "-q")
    assert first.exit_code == 0, first.stderr
    assert first.meta()["options"]["plugins"] == [str(tmp_path / "plugins" / "affine.py")]
    os.chdir(tmp_path / "plugins")
    again = bench_here("run", "--config", str(tmp_path / first.run_dir))
    os.chdir(tmp_path)
    assert again.exit_code == 0, again.stderr
    assert "(0 trained, 1 reused)" in again.stdout


def test_the_command_line_wins_over_a_files_verbosity(bench, tmp_path):
    config = write(tmp_path / "quiet.toml", "quiet = true\n")
    args = ["run", "--config", str(config), *SMALL]
    quiet = bench(*args)
    assert quiet.exit_code == 0 and quiet.stdout.startswith("report: ")
    verbose = bench(*args, "--verbose")
    assert verbose.exit_code == 0, verbose.stderr
    assert "debug: " in verbose.stderr and "cells x 2 seeds" in verbose.stdout


def test_the_example_configs_are_valid(tmp_path):
    examples = Path(__file__).parents[1] / "examples"
    for path in sorted(examples.glob("*.toml")):
        settings, source = read_config(path)
        assert checked_settings(settings, source), path


# --- bench compare -----------------------------------------------------------


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """A run, the same run with more epochs, and one whose MLP seeds all diverge."""
    out = tmp_path_factory.mktemp("compare")
    runs = {}
    for name, extra in {"short": ["--epochs", "10"], "long": ["--epochs", "60"], "diverged": ["--epochs", "10", "--lr", "1e30"]}.items():
        result = CliRunner().invoke(cli, ["run", "--targets", "addition,sine", "--models", "linear,mlp_small", "--seeds", "3",
                                          "--out", str(out), "--run-id", name, "-q", *extra], catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
        runs[name] = out / name
    return runs


def rows_of(stdout: str) -> list[list[str]]:
    return [line.split() for line in stdout.splitlines()[1:] if line.split() and line.split()[0] in ("addition", "sine")]


def test_compare_reports_medians_changes_and_ratios(bench, two_runs):
    result = bench("compare", str(two_runs["short"]), str(two_runs["long"]))
    assert result.exit_code == 0, result.stderr
    assert "the runs differ in epochs 10 -> 60" in result.stderr
    rows = rows_of(result.stdout)
    assert len(rows) == 2 * 2 * 4  # targets x models x (train, interpolation, near, far)

    def median(run, target, model, split):
        results = pd.read_parquet(two_runs[run] / "results.parquet")
        chosen = results[(results.target == target) & (results.model == model) & (results.split == split)]
        return chosen["nmse"].median()

    row = next(r for r in rows if r[:3] == ["addition", "linear", "interpolation"])
    a, b = median("short", "addition", "linear", "interpolation"), median("long", "addition", "linear", "interpolation")
    assert [float(row[3]), float(row[4])] == pytest.approx([a, b], rel=5e-3)  # printed to 3 digits
    assert float(row[6].rstrip("x")) == pytest.approx(max(b, 1e-6) / max(a, 1e-6), rel=5e-3)
    assert row[-1] == ("better" if max(b, 1e-6) / max(a, 1e-6) < 0.5 else "within")
    assert result.stdout.splitlines()[-1].startswith("nmse, median over seeds, B/A: ")


def test_compare_fails_above_a_ratio_for_ci(bench, two_runs):
    same = bench("compare", str(two_runs["short"]), str(two_runs["short"] / "run.json"), "--fail-above", "1.0001")
    assert same.exit_code == 0, same.stderr
    assert all(row[-1] == "within" and row[6] == "1x" for row in rows_of(same.stdout))

    worse = bench("compare", str(two_runs["long"]), str(two_runs["short"]), "--fail-above", "1.5", "--changes-only")
    assert worse.exit_code == 1
    flagged = rows_of(worse.stdout)
    assert flagged and all(row[-1] in ("worse", "better") for row in flagged)
    worse_count = sum(row[-1] == "worse" for row in flagged)
    assert worse.stderr.strip().splitlines()[-1] == f"error: {worse_count} error(s) grew by more than 1.5x"
    assert "Traceback" not in worse.stderr


def test_compare_flags_a_pair_whose_seeds_all_diverged(bench, two_runs):
    result = bench("compare", str(two_runs["short"]), str(two_runs["diverged"]), "--fail-above", "1000")
    assert result.exit_code == 1
    mlp = [row for row in rows_of(result.stdout) if row[1] == "mlp_small"]
    assert mlp and all(row[4] == "-" and row[-2] == "3" and row[-1] == "worse" for row in mlp)


def test_compare_writes_a_self_contained_page(bench, two_runs, tmp_path):
    page = tmp_path / "compare.html"
    result = bench("compare", str(two_runs["short"]), str(two_runs["long"]), "--html", str(page))
    assert result.exit_code == 0, result.stderr
    html = page.read_text()
    assert html.count("<tr class=") == 16 and "epochs 10 -&gt; 60" in html
    assert "http://" not in html and "https://" not in html and "<script" not in html


def test_compare_bad_input(bench, two_runs, tmp_path):
    assert_one_line_error(bench("compare", str(two_runs["short"]), str(tmp_path)), "not a funcbench run folder")
    assert_one_line_error(bench("compare", str(two_runs["short"]), str(two_runs["short"]), "--html", "/proc/nope/x.html"),
                          "cannot write '/proc/nope/x.html'")
    assert_one_line_error(bench("compare", str(two_runs["short"]), str(two_runs["long"]), "--fail-above", "0.5"),
                          "--fail-above", "0.5")
    assert_one_line_error(bench("compare", str(two_runs["short"]), str(two_runs["long"]), "--metric", "mape"),
                          "'mape' is not one of")


# --- verbosity and completion ---------------------------------------------------------


def test_quiet_and_verbose(bench):
    quiet = bench("run", *SMALL, "--quiet")
    assert quiet.exit_code == 0, quiet.stderr
    assert quiet.stdout.splitlines() == [f"report: {quiet.run_dir / 'index.html'}"]
    assert quiet.stderr == ""
    verbose = bench("run", *SMALL, "-v", "--force")
    assert verbose.exit_code == 0, verbose.stderr
    assert "debug: 2 cells (2 targets x 1 models)" in verbose.stderr
    assert "debug: trained addition x linear, product x linear" in verbose.stderr
    assert_one_line_error(bench("run", *SMALL, "-q", "-v"), "--quiet and --verbose contradict each other")


def test_shell_completion_answers_without_loading_torch(tmp_path):
    bench = shutil.which("bench") or str(Path(sys.executable).with_name("bench"))
    env = {**os.environ, "_BENCH_COMPLETE": "bash_complete", "COMP_WORDS": "bench ru", "COMP_CWORD": "1"}
    completed = subprocess.run([bench], capture_output=True, text=True, env=env)
    assert completed.returncode == 0, completed.stderr
    assert "plain,run" in completed.stdout.splitlines()
    env.update(COMP_WORDS="bench run --ep", COMP_CWORD="2")
    assert "plain,--epochs" in subprocess.run([bench], capture_output=True, text=True, env=env).stdout.splitlines()
    # The command module itself imports neither torch nor the plotting stack.
    probe = "import sys, benchmark.cli; print(sorted(m for m in ('torch', 'pandas', 'matplotlib') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip() == "[]"


def test_the_article_config_reproduces_the_article(bench):
    result = bench("run", "--config", str(Path(__file__).parents[1] / "examples" / "article.toml"))
    assert result.exit_code == 0, result.stderr
    params = result.table("params").pivot(index="seed", columns="parameter", values="value")
    assert len(params) == 10
    assert params[["weight[a]", "weight[b]"]].sub(1).abs().max().max() < 1e-4
    probes = result.table("probes")
    answers = probes[[list(x) == [9.0, 90.0] for x in probes["x"]]]["y_pred"]
    assert len(answers) == 10 and (answers - 99).abs().max() < 1e-2
