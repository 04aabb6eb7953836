"""The command line: help, listings, summaries, and one-line errors for bad input."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import assert_one_line_error

from benchmark.cli import cli


def test_help_on_every_command(bench):
    for command in ([], ["run"], ["list"], ["report"], ["merge"], ["compare"], ["predict"]):
        result = bench(*command, "--help")
        assert result.exit_code == 0
        assert "Usage:" in result.stdout


def test_run_prints_a_summary_and_the_report_path(bench):
    result = bench("run", "--targets", "addition,product", "--models", "linear,mlp_small", "--seeds", "2", "--epochs", "20")
    assert result.exit_code == 0, result.stderr
    header = result.stdout.splitlines()[0].split()
    assert header[:2] == ["target", "linear"]
    assert "best" in header
    assert "4 cells x 2 seeds" in result.stdout
    assert (result.run_dir / "index.html").is_file()


def test_list_models_is_a_table_of_families_and_presets(bench):
    result = bench("list", "models")
    assert result.exit_code == 0
    rows = {line.split()[0]: line.split("  ") for line in result.stdout.splitlines() if line and not line.startswith(" ")}
    assert rows["NAME"][0] == "NAME" and "PARAMETERS" in result.stdout.splitlines()[0]
    assert "width=64, depth=2, act=relu" in [cell.strip() for cell in rows["mlp"]]
    assert "width=64, depth=2, act=tanh" in [cell.strip() for cell in rows["mlp_tanh"]]
    assert {"linear", "mlp_wide", "knn"} <= set(rows)


def test_list_names_in_full(bench):
    result = bench("list", "models", "mlp_tanh", "linear")
    assert result.exit_code == 0
    assert result.stdout.startswith("mlp_tanh[width=64, depth=2, act=tanh]: ")
    assert "\nlinear: " in result.stdout and "from funcbench" in result.stdout
    assert_one_line_error(bench("list", "targets", "additon"), "unknown target 'additon'", "did you mean addition")


def test_list_targets_shows_every_builtin_with_its_domains(bench):
    table = bench("list", "targets")
    starred = [line.split()[0] for line in table.stdout.splitlines() if line.split() and line.split()[0].endswith("*") and not line.startswith("*")]
    assert starred == ["feynman*", "subset_op*", "binary_op*", "quadratic*", "cos_sum*", "l1_norm*", "linear_map*",
                       "sqrt_sum*"]
    result = bench("list", "targets", "--details")
    assert result.exit_code == 0
    names = [line.split(":")[0].split("[")[0] for line in result.stdout.splitlines() if not line.startswith(" ")]
    assert names == [
        "addition", "subtraction", "weighted_sum", "product", "division",
        "feynman",  # the AI Feynman equations, each listed beneath it
        "square", "cubic", "abs", "sqrt", "sine", "cosine", "exp", "log",
        "subset_op", "binary_op",  # the published protocols' targets
        "quadratic", "cos_sum", "l1_norm", "linear_map", "sqrt_sum",  # the ReLU-extrapolation study's
    ]
    assert "extrapolation far: [0, 20]^2 outside [0, 10]^2" in result.stdout
    assert result.stdout.count("not part of '--targets all'") == 8


#: `bench run ARGS` that must fail in one line, and what that line says; tests/test_api.py runs them through
#: `benchmark.run` too.
BAD_RUN_INPUT = [
    (["--targets", "additon"], ["unknown target 'additon'", "did you mean addition"]),
    (["--models", "mlp_tahn"], ["unknown model 'mlp_tahn'", "mlp_tanh"]),
    (["--targets", ""], ["empty target selection"]),
    (["--targets", "addition,"], ["ends with a comma"]),
    (["--models", "mlp[width=abc]"], ["'width' expects an integer, got 'abc'"]),
    (["--models", "mlp[width=64"], ["'[' without a closing ']'"]),
    (["--models", "mlp[width]"], ["'width' in 'mlp[width]' is not of the form key=value"]),
    (["--models", "mlp[height=3]"], ["model 'mlp' has no parameter 'height'", "width, depth, act"]),
    (["--models", "mlp[width=0]"], ["width must be between 1 and 65536"]),
    (["--models", "mlp[width=100000000,depth=50]"], ["width must be between 1 and 65536"]),
    (["--models", "mlp[depth=500]"], ["depth must be between 1 and 64"]),
    (["--models", "mlp[act=swish]"], ["'act' must be one of relu, tanh"]),
    (["--models", "linear[width=3]"], ["takes no parameters"]),
    (["--targets", "weighted_sum[n=1.5]"], ["'n' expects an integer"]),
    (["--targets", "weighted_sum[n=0]"], ["n must be between 1 and 1000"]),
    (["--targets", "addition,addition"], ["names addition twice"]),
    (["--targets", "weighted_sum,weighted_sum[n=5]"], ["names weighted_sum twice"]),
    (["--seeds", "0"], ["--seeds must be between 1 and 10,000"]),
    (["--seeds", "-3"], ["--seeds must be between 1 and 10,000"]),
    (["--epochs", "0"], ["--epochs must be between 1 and"]),
    (["--samples", "2000000000"], ["--samples must be between 1 and 10,000,000"]),
    (["--eval-samples", "1"], ["--eval-samples must be between 2 and"]),
    (["--run-id", "../elsewhere"], ["must be a plain folder name"]),
    (["--lr", "-0.1"], ["--lr must be a positive number"]),
    (["--lr", "nan"], ["--lr must be a positive number"]),
    (["--batch-size", "0"], ["--batch-size must be between 1 and"]),
    (["--jobs", "-1"], ["--jobs must be between 0 and"]),
    (["--seeds", "many"], ["'many' is not a valid integer"]),
    (["--device", "tpu"], ["unknown device 'tpu'"]),
    (["--suite", "nalu"], ["unknown suite 'nalu'", "arithmetic-static"]),
    (["--suite", "arithmetic-static,relu-extrapolation"], ["--suite takes one suite"]),
    (["--targets", "addition\nproduct"], ["expected ',' before", "\\nproduct"]),  # still one line
    (["--no-such-option"], ["No such option"]),
]


@pytest.mark.parametrize("args, fragments", BAD_RUN_INPUT)
def test_bad_input_is_one_line_and_exit_2(bench, args, fragments):
    assert_one_line_error(bench("run", *args), *fragments)


def test_click_usage_errors_are_one_line_too(bench):
    assert_one_line_error(bench("list"), "Missing argument", "Choose from: targets, models", "(see 'bench list --help')")
    assert_one_line_error(bench("list", "things"), "'things' is not one of")
    assert_one_line_error(bench("frobnicate"), "No such command 'frobnicate'")


def test_bench_alone_shows_its_help(bench):
    result = bench()
    assert result.exit_code == 0
    assert "Usage:" in result.stdout and "run" in result.stdout and "report" in result.stdout


def test_cuda_without_a_gpu_says_so(bench):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert_one_line_error(bench("run", "--device", "cuda"), "CUDA is not available")


def test_output_folder_that_cannot_be_created(bench):
    result = bench("run", "--targets", "addition", "--models", "linear", "--out", "/proc/funcbench-cannot-write-here")
    assert_one_line_error(result, "cannot write to '/proc/funcbench-cannot-write-here/run-", "choose another folder with --out")


def test_output_folder_that_is_a_file(bench, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = bench("run", "--targets", "addition", "--models", "linear", "--out", str(blocker))
    assert_one_line_error(result, "cannot write to")


def test_installed_console_script(tmp_path):
    """The `bench` entry point itself, as a user's shell runs it."""
    bench = shutil.which("bench") or str(Path(sys.executable).with_name("bench"))
    result = subprocess.run([bench, "run", "--targets", "xyzzy"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unknown target 'xyzzy'; known: abs, addition,"), lines
    version = subprocess.run([bench, "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and "funcbench" in version.stdout


def test_the_article_run_ends_with_its_headline_the_weights_and_the_answer_for_9_90(bench):
    article = Path(__file__).parents[1] / "examples" / "article.toml"
    result = bench("run", "--config", str(article), "--seeds", "3")
    assert result.exit_code == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if line.startswith("addition: linear learned")]
    weights = re.search(r"weight\[a\] (\S+), weight\[b\] (\S+), bias (\S+) \(exact: 1, 1, bias 0\)", line)
    assert weights and all(abs(float(w) - 1) < 1e-4 for w in weights.groups()[:2]), line
    answer = re.search(r"at \(9, 90\) it answers (\S+) \(true 99\)", line)
    assert answer and abs(float(answer.group(1)) - 99) < 0.01 and line.endswith("median over 3 seed(s)")
    assert "learned" not in bench("run", "--targets", "product", "--models", "linear", "--seeds", "1", "--epochs", "2").stdout


def complete(words: str) -> list[str]:
    """What `bench`'s bash completion offers for the last of `words` (click's protocol, as the shell calls it)."""
    env = {"_BENCH_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - 1)}
    result = CliRunner().invoke(cli, [], env=env, prog_name="bench")
    return [line.split(",", 1)[1] for line in result.output.splitlines()]


def test_shell_completion_offers_target_model_and_suite_names_plugins_included(tmp_path):
    assert complete("bench run --targets add") == ["addition"]
    assert complete("bench run --targets addition,sq") == ["addition,square", "addition,sqrt", "addition,sqrt_sum"]
    assert set(complete("bench run --models mlp")) >= {"mlp", "mlp_tanh", "mlp_small"}
    assert complete("bench run --suite arithmetic-st") == ["arithmetic-static", "arithmetic-static-published"]
    plugin = tmp_path / "mine.py"
    plugin.write_text("from benchmark import Box, near_and_far, target\nD = Box.cube(1, 0.0, 1.0)\n"
                      "@target(domain=D, extrapolation=near_and_far(D), description='x')\ndef my_line(x):\n    return x\n")
    assert complete(f"bench run --plugin {plugin} --targets my_") == ["my_line"]
