"""The example plugin package, installed as a user would: found through its entry point, and it runs."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "funcbench-plugin-example"
TARGETS = ("example_hypotenuse", "example_weighted_difference")


def run(*args, env, cwd):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd)


def test_example_package_installs_lists_runs_and_passes_its_tests(tmp_path):
    pip = run("-m", "pip", "--version", env=os.environ, cwd=tmp_path)
    if pip.returncode != 0:
        pytest.fail(f"this test installs the example with pip, which {sys.executable} lacks:\n{pip.stderr}")
    # setuptools builds in the source folder (build/, *.egg-info); build a copy so the checkout stays clean.
    source = shutil.copytree(EXAMPLE, tmp_path / "example",
                             ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info", ".pytest_cache"))
    site = tmp_path / "site"
    # --target keeps the test environment untouched; --no-index, --no-deps and
    # --no-build-isolation keep pip off the network (funcbench and setuptools are already here).
    install = run("-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index", "--no-deps",
                  "--no-build-isolation", "--target", str(site), str(source), env=os.environ, cwd=tmp_path)
    assert install.returncode == 0, install.stdout + install.stderr
    assert (site / "funcbench_plugin_example" / "targets.py").is_file()
    assert (site / "funcbench_plugin_example" / "models.py").is_file()

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
           "PYTHONDONTWRITEBYTECODE": "1"}  # leaves no __pycache__ in examples/ when its tests run

    # Naming the targets shows them in full, origin included; an unknown name would be an error.
    listing = run("-m", "benchmark", "list", "targets", *TARGETS, env=env, cwd=tmp_path)
    assert listing.returncode == 0, listing.stdout + listing.stderr
    for name in TARGETS:
        assert f"{name}: " in listing.stdout
    assert listing.stdout.count("from entry point 'example' (funcbench_plugin_example.targets)") == 2, listing.stdout
    # The model family comes through the second group, funcbench.models.
    models = run("-m", "benchmark", "list", "models", "example_quadnet", env=env, cwd=tmp_path)
    assert models.returncode == 0, models.stdout + models.stderr
    assert "from entry point 'example_models' (funcbench_plugin_example.models)" in models.stdout, models.stdout

    bench = run("-m", "benchmark", "run", "--targets", ",".join(TARGETS), "--models", "linear",
                "--seeds", "2", "--epochs", "30", "--out", str(tmp_path / "out"), env=env, cwd=tmp_path)
    assert bench.returncode == 0, bench.stdout + bench.stderr
    reports = [line.removeprefix("report: ") for line in bench.stdout.splitlines() if line.startswith("report: ")]
    assert len(reports) == 1, bench.stdout
    index = Path(reports[0])
    assert index.is_file() and index.parent.parent == tmp_path / "out"
    results = pd.read_parquet(index.parent / "results.parquet")
    nmse = results[results["split"] != "train"].groupby(["target", "split"])["nmse"]
    worst, best = nmse.max(), nmse.min()
    # Measured with 2 seeds x 30 epochs: the affine target reaches ~1e-7 on
    # every split, the hypotenuse 0.17-0.79 on the far one.
    for split in ("interpolation", "near", "far"):
        assert worst["example_weighted_difference", split] < 1e-6, results
    assert best["example_hypotenuse", "far"] > 1e-2, results

    tests = run("-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests"), env=env, cwd=tmp_path)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert " passed" in tests.stdout and "failed" not in tests.stdout, tests.stdout
