"""The run folder: schema, crash-safety and resuming."""

import os
import re
import signal
import subprocess
import sys
import time

import pandas as pd
from conftest import assert_one_line_error

from benchmark.store import TABLES

SMALL = ["--targets", "addition,square,sine", "--models", "linear,mlp_small", "--seeds", "2", "--epochs", "10"]


def test_schema_of_every_table(bench):
    result = bench("run", *SMALL)
    assert result.exit_code == 0, result.stderr
    columns = {
        "results": ["target", "model", "seed", "split", "split_kind", "mse", "nmse", "r2", "mape_mean_pct", "mape_median_pct",
                    "max_abs_error", "accuracy_solution", "initial_mse", "threshold", "status", "error", "kept_step",
                    "train_seconds", "cell"],
        "probes": ["target", "model", "seed", "x", "y_true", "y_pred"],
        "params": ["target", "model", "seed", "parameter", "value"],
        "formulas": ["target", "model", "seed", "formula", "exact", "symbolic_solution"],
        "curves": ["target", "model", "seed", "step", "loss"],
        "evaluations": ["target", "model", "seed", "step", "split", "mse"],
        "linearity": ["target", "model", "seed", "linearity_mean_r2", "linearity_median_r2"],
    }
    for table, expected in columns.items():
        assert list(result.table(table).columns) == expected, table
    results = result.table("results")
    assert len(results) == 3 * 2 * 2 * 4
    assert not results.duplicated(["target", "model", "seed", "split"]).any()
    assert set(result.table("params")["model"]) == {"linear"}
    assert set(result.table("formulas")["model"]) == {"linear"}
    # Thresholds exist where the target states an exact solution (addition), not elsewhere.
    thresholds = results[results["split_kind"] == "extrapolation"].groupby("target")["threshold"]
    assert thresholds.apply(lambda t: t.notna().all()).to_dict() == {"addition": True, "sine": False, "square": False}
    meta = result.meta()
    assert meta["schema_version"] == 2
    assert meta["config"]["seeds"] == 2 and meta["config"]["epochs"] == 10
    assert {"torch", "numpy", "pandas"} <= set(meta["versions"])
    assert meta["machine"]["cpu_count"] >= 1
    assert meta["finished"] >= meta["started"]
    assert [t["label"] for t in meta["targets"]] == ["addition", "square", "sine"]


def test_rerunning_the_same_command_reuses_every_cell(bench):
    first = bench("run", *SMALL)
    again = bench("run", *SMALL)
    assert again.run_dir == first.run_dir
    assert "(0 trained, 6 reused)" in again.stdout
    pd.testing.assert_frame_equal(first.table("results"), again.table("results"))

    forced = bench("run", *SMALL, "--force")
    assert "(6 trained, 0 reused)" in forced.stdout

    changed = bench("run", *SMALL[:-1], "11")
    assert changed.run_dir != first.run_dir
    assert "(6 trained, 0 reused)" in changed.stdout


def test_a_named_folder_holding_another_configuration_is_refused_unless_replaced(bench):
    first = bench("run", *SMALL, "--run-id", "mine")
    before = {p: p.read_bytes() for p in first.run_dir.rglob("*") if p.is_file() and p.name != ".lock"}
    refused = bench("run", *SMALL[:-1], "12", "--run-id", "mine")
    assert_one_line_error(refused, "holds another run (epochs 10 -> 12)", "--replace")
    assert {p: p.read_bytes() for p in first.run_dir.rglob("*") if p.is_file() and p.name != ".lock"} == before

    changed = bench("run", *SMALL[:-1], "12", "--run-id", "mine", "--replace")
    assert changed.run_dir == first.run_dir
    assert "(6 trained, 0 reused)" in changed.stdout
    assert set(changed.table("curves")["step"]) == set(range(5, 61, 5))  # 12 epochs of 5 batches
    assert len(list((changed.run_dir / "cells").iterdir())) == 6  # the old run's cells went with it


def test_a_run_killed_with_sigkill_resumes_without_losing_or_repeating_cells(tmp_path):
    args = [sys.executable, "-m", "benchmark", "run", "--targets", "all", "--models", "linear,mlp_small",
            "--seeds", "2", "--epochs", "15", "--out", str(tmp_path)]
    for kill_after_cells in (2, 9):
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            cells = [p for p in tmp_path.glob("run-*/cells/*") if not p.name.startswith(".")]
            if len(cells) >= kill_after_cells:
                break
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        run_dir = next(tmp_path.glob("run-*"))
        for cell in (p for p in (run_dir / "cells").iterdir() if not p.name.startswith(".")):
            for table in TABLES:  # every finished cell reads back whole
                pd.read_parquet(cell / f"{table}.parquet")

    finished = subprocess.run(args, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    trained, reused = map(int, re.search(r"\((\d+) trained, (\d+) reused\)", finished.stdout).groups())
    assert trained + reused == 26 and reused >= 9
    results = pd.read_parquet(run_dir / "results.parquet")
    assert len(results.drop_duplicates(["target", "model"])) == 26
    assert not results.duplicated(["target", "model", "seed", "split"]).any()


def test_report_rebuilds_from_stored_results(bench):
    result = bench("run", *SMALL)
    index = result.run_dir / "index.html"
    index.unlink()
    rebuilt = bench("report", str(result.run_dir))
    assert rebuilt.exit_code == 0
    assert index.is_file() and "addition" in index.read_text()


def test_report_on_a_folder_that_is_not_a_run(bench, tmp_path):
    assert_one_line_error(bench("report", str(tmp_path)), "not a funcbench run folder")


def test_report_on_a_corrupted_run(bench):
    result = bench("run", *SMALL)
    (result.run_dir / "results.parquet").write_bytes(b"not parquet")
    before = (result.run_dir / "index.html").read_bytes()
    assert_one_line_error(bench("report", str(result.run_dir)), "unreadable or corrupted")
    assert (result.run_dir / "index.html").read_bytes() == before


def test_report_on_a_run_from_an_incompatible_version(bench):
    result = bench("run", *SMALL)
    meta = result.meta()
    meta["schema_version"] = 1
    (result.run_dir / "run.json").write_text(__import__("json").dumps(meta))
    before = (result.run_dir / "index.html").read_bytes()
    assert_one_line_error(bench("report", str(result.run_dir)), "has schema version 1", "reads version 2")
    assert (result.run_dir / "index.html").read_bytes() == before


def test_report_on_an_interrupted_run_says_how_to_resume(bench, tmp_path):
    result = bench("run", *SMALL)
    meta = result.meta()
    meta["finished"] = None  # as run.json stands while a run is in progress or after a kill
    (result.run_dir / "run.json").write_text(__import__("json").dumps(meta))
    assert_one_line_error(bench("report", str(result.run_dir)), "did not finish", "again to resume")
