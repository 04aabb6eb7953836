"""Scale out and survive: a real Dask cluster, killed runs that resume, killed workers, merged runs."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import assert_one_line_error

from benchmark.store import TABLES

distributed = pytest.importorskip("distributed")

# A grid with a plugin target, two torch families and a scikit-learn one, small enough for seconds.
PLUGIN = textwrap.dedent('''
    from benchmark import Box, near_and_far, target

    DOMAIN = Box.cube(2, 0.0, 1.0)

    @target(domain=DOMAIN, extrapolation=near_and_far(DOMAIN), description="u * v + u")
    def shipped(x):
        return x[:, [0]] * x[:, [1]] + x[:, [0]]
''')
GRID = ["--targets", "addition,product,sine,shipped", "--models", "linear,mlp[width=8,depth=1],knn",
        "--seeds", "2", "--epochs", "5", "--samples", "200", "--eval-samples", "100"]


@pytest.fixture(scope="module")
def cluster():
    """A scheduler and two worker processes on 127.0.0.1, shared by this module's tests."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=":0", silence_logs=logging.ERROR) as local:
        yield local


def comparable(result, table: str) -> pd.DataFrame:
    return result.table(table).drop(columns=["train_seconds"], errors="ignore")


def test_a_dask_cluster_gives_the_local_executors_numbers(bench, tmp_path, cluster):
    plugin = tmp_path / "shipped_plugin.py"
    plugin.write_text(PLUGIN)
    local = bench("run", *GRID, "--plugin", str(plugin), "--jobs", "1", "--out", str(tmp_path / "local"))
    dask = bench("run", *GRID, "--plugin", str(plugin), "--scheduler", cluster.scheduler_address,
                 "--out", str(tmp_path / "dask"))
    started = bench("run", *GRID, "--plugin", str(plugin), "--executor", "dask", "--jobs", "2",
                    "--out", str(tmp_path / "started"))  # a LocalCluster of its own
    assert local.exit_code == 0 and dask.exit_code == 0 and started.exit_code == 0, (dask.stderr, started.stderr)
    assert dask.meta()["execution"]["executor"] == "dask"
    assert dask.meta()["execution"]["workers"] == 2
    assert started.meta()["execution"] == {"executor": "dask", "scheduler": "local cluster", "workers": 2,
                                           "threads_per_job": 1, "cell_batching": True}
    assert local.meta()["execution"]["executor"] == "local"
    again = bench("run", *GRID, "--plugin", str(plugin), "--executor", "dask", "--out", str(tmp_path / "started"))
    assert again.exit_code == 0 and "(0 trained, 12 reused)" in again.stdout  # resumed: no cluster needed
    assert again.meta()["execution"]["workers"] == 0
    assert set(dask.table("results")["target"]) == {"addition", "product", "sine", "shipped"}
    for table in TABLES:
        for other in (dask, started):
            pd.testing.assert_frame_equal(comparable(other, table), comparable(local, table), check_exact=True,
                                          obj=table)


def test_a_plugin_file_runs_on_a_worker_that_lacks_it(tmp_path, monkeypatch):
    """Workers build the plan from the plugin's text, and find the driver's cells under the same ids."""
    from benchmark import runner
    from benchmark.config import RunConfig
    from benchmark.plan import build_plan
    from benchmark.plugins import load_registry

    plugin = tmp_path / "shipped_plugin.py"
    plugin.write_text(PLUGIN)
    monkeypatch.chdir(tmp_path)
    config = RunConfig(targets="shipped,addition", models="linear", plugins=("shipped_plugin.py",))  # relative
    driver_ids = [cell.id for cell in build_plan(load_registry(config.plugins), config).cells]
    source = runner.PlanSource.of(config)
    plugin.unlink()  # the worker's disk has no such file, and it runs elsewhere
    monkeypatch.chdir(tmp_path.parent)
    monkeypatch.setattr(runner, "_PLANS", {})
    assert list(runner._cells_of(source)) == driver_ids


def test_a_task_carries_its_cells_ids_and_the_worker_draws_the_samples(monkeypatch):
    """What travels to a worker is a few ids, however many samples the worker then draws and trains on."""
    import pickle

    from benchmark import runner
    from benchmark.config import RunConfig
    from benchmark.data import sample_splits
    from benchmark.plan import build_plan
    from benchmark.plugins import load_registry

    config = RunConfig(targets="addition,product", models="linear", seeds=3, eval_samples=20_000, epochs=1)
    plan = build_plan(load_registry(), config)
    source = runner.PlanSource.of(config)
    pending = {t: [c for c in plan.cells if c.target is t] for t in plan.targets}
    tasks = list(runner._group_tasks(runner.layout(pending, config, True), source, keep_models=True))
    first = plan.cells[0]
    samples = sum(split.x.nbytes + split.y.nbytes
                  for split in sample_splits(first.target, first.seeds, first.samples, first.eval_samples))
    assert samples > 1_000_000
    assert all(len(pickle.dumps(task)) < samples / 100 for task in tasks)
    monkeypatch.setattr(runner, "_PLANS", {})  # a worker that has built nothing yet
    outcome = runner.train_group(tasks[0])
    assert sorted(cell_id for cell_id, _ in outcome.finished) == sorted(tasks[0].cell_ids) and not outcome.failed


def test_a_killed_dask_worker_does_not_lose_the_run(bench, tmp_path):
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=":0", silence_logs=logging.CRITICAL) as local, \
            distributed.Client(local) as client:
        pids = client.run(os.getpid)
        outcome = {}
        args = ["run", "--targets", "addition,product,sine,square,cubic,abs", "--models", "mlp[width=32,depth=2]",
                "--no-cell-batching", "--epochs", "60", "--seeds", "2", "--scheduler", local.scheduler_address]
        runner = threading.Thread(target=lambda: outcome.update(result=bench(*args)))
        runner.start()
        deadline = time.monotonic() + 60
        while not any(client.processing().values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        busy = next(address for address, tasks in client.processing().items() if tasks)
        os.kill(pids[busy], signal.SIGKILL)  # mid-task: its nanny starts a new worker, the scheduler reschedules
        killed_while_running = runner.is_alive()
        runner.join(timeout=300)
    result = outcome["result"]
    assert killed_while_running
    assert result.exit_code == 0, result.stderr
    results = result.table("results")
    assert results.groupby(["target", "model"]).ngroups == 6
    assert not results.duplicated(["target", "model", "seed", "split"]).any()


def test_a_task_that_keeps_failing_is_recorded_and_the_rest_completes(bench, tmp_path, cluster):
    plugin = tmp_path / "broken_family.py"
    plugin.write_text(textwrap.dedent('''
        from benchmark import model_family
        from benchmark.models import ModelSpec

        @model_family(description="a family whose build always raises")
        def broken():
            def build(inputs, seeds, device):
                raise RuntimeError("this family cannot be built")
            return ModelSpec(build, "broken", learning_rate=0.1)
    '''))
    for where in (["--jobs", "1"], ["--jobs", "2"], ["--scheduler", cluster.scheduler_address]):
        result = bench("run", "--targets", "addition,product", "--models", "linear,broken", "--plugin", str(plugin),
                       "--seeds", "2", "--epochs", "3", "--out", str(tmp_path / where[-1].replace("/", "_")), *where)
        assert result.exit_code == 1, (where, result.stderr)
        assert "RuntimeError: this family cannot be built" in result.stderr, where
        assert "Traceback" not in result.stderr
        assert set(result.table("results")["model"]) == {"linear"}, where
        assert any("broken" in problem for problem in result.meta()["problems"])


def test_an_unreachable_scheduler_is_one_line(bench):
    result = bench("run", "--targets", "addition", "--scheduler", "tcp://127.0.0.1:9")
    assert_one_line_error(result, "cannot reach the Dask scheduler", "tcp://127.0.0.1:9")
    assert_one_line_error(bench("run", "--executor", "local", "--scheduler", "tcp://127.0.0.1:9"), "--scheduler")


# Killing runs: a real `bench run` process, killed at several moments, then run again.

KILLED_GRID = ["--targets", "addition,product,sine,square,exp,abs", "--models", "linear,mlp[width=16,depth=1]",
               "--seeds", "2", "--epochs", "40", "--no-cell-batching", "--run-id", "killed"]


def start_bench(out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "benchmark", "run", *KILLED_GRID, "--out", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for_cells(folder: Path, count: int, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        cells = folder / "cells"
        if cells.is_dir() and sum(not p.name.startswith(".") for p in cells.iterdir()) >= count:
            return
        time.sleep(0.02)


def session_processes(session: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == session and fields[0] != "Z":
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_run_killed_again_and_again_resumes_without_loss(tmp_path):
    out = tmp_path / "reports"
    folder = out / "killed"
    # SIGKILL while starting and after 1, 7 and 10 cells (with two worker processes for some); SIGTERM after 4.
    for cells, extra, sig in ((0, [], signal.SIGKILL), (1, ["--jobs", "2"], signal.SIGKILL), (4, [], signal.SIGTERM),
                              (7, ["--jobs", "2"], signal.SIGKILL), (10, [], signal.SIGKILL)):
        process = start_bench(out, *extra)
        if cells:
            wait_for_cells(folder, cells, process)
        else:
            time.sleep(1.0)
        process.send_signal(sig)
        _, stderr = process.communicate(timeout=60)
        if sig == signal.SIGTERM:
            assert process.returncode == 128 + signal.SIGTERM, stderr
            assert "run the same command again to resume" in stderr
            assert "Traceback" not in stderr
        deadline = time.monotonic() + 10  # worker processes die with their parent
        while session_processes(process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert session_processes(process.pid) == [], f"workers outlived a killed run ({sig!r} after {cells} cells)"
    finished_before = {p.name for p in (folder / "cells").iterdir() if not p.name.startswith(".")}
    assert 10 <= len(finished_before) < 12

    final = start_bench(out)
    stdout, stderr = final.communicate(timeout=300)
    assert final.returncode == 0, stderr
    counts = re.search(r"\((\d+) trained, (\d+) reused\)", stdout)
    assert counts and int(counts[1]) == 12 - len(finished_before) and int(counts[2]) == len(finished_before), stdout
    results = pd.read_parquet(folder / "results.parquet")
    assert results.groupby(["target", "model"]).ngroups == 12
    assert not results.duplicated(["target", "model", "seed", "split"]).any()
    assert sorted(results["cell"].unique()) == sorted(p.name for p in (folder / "cells").iterdir())
    for parquet in folder.rglob("*.parquet"):
        pd.read_parquet(parquet)  # every file whole
    assert not list(folder.rglob(".tmp-*")) and not list(folder.rglob("*.partial"))
    assert json.loads((folder / "run.json").read_text())["counts"]["cells_reused"] == len(finished_before)


# Merging runs made apart.

MERGE_GRID = ["--models", "linear,mlp[width=8,depth=1]", "--seeds", "2", "--epochs", "5",
              "--samples", "200", "--eval-samples", "100"]


def test_runs_made_apart_merge_into_one_run_and_report(bench, tmp_path):
    a = bench("run", "--targets", "addition,product", *MERGE_GRID, "--out", str(tmp_path / "a"))
    b = bench("run", "--targets", "product,sine", *MERGE_GRID, "--out", str(tmp_path / "b"))
    assert a.exit_code == 0 and b.exit_code == 0
    merged = bench("merge", str(a.run_dir), str(b.run_dir), "--out", str(tmp_path / "merged"))
    assert merged.exit_code == 0, merged.stderr
    assert merged.run_dir == tmp_path / "merged"
    results = merged.table("results")
    assert results.groupby(["target", "model"]).ngroups == 6
    assert not results.duplicated(["target", "model", "seed", "split"]).any()
    for table in TABLES:  # every cell as its own run stored it
        for run, targets in ((a, ["addition", "product"]), (b, ["sine"])):
            mine = merged.table(table)[merged.table(table)["target"].isin(targets)].reset_index(drop=True)
            pd.testing.assert_frame_equal(mine, run.table(table)[run.table(table)["target"].isin(targets)]
                                          .reset_index(drop=True), check_exact=True, obj=table)
    meta = merged.meta()
    assert [t["label"] for t in meta["targets"]] == ["addition", "product", "sine"]
    assert len(meta["merged_from"]) == 2
    # Made by no one command: each run's options stay with it, and `--config` refuses the merged run.json.
    assert "options" not in meta and all(run["options"]["out"] for run in meta["merged_from"])
    assert "sine" in (merged.run_dir / "index.html").read_text()
    assert bench("report", str(merged.run_dir)).exit_code == 0


def test_merge_refuses_runs_that_disagree_and_writes_nothing(bench, tmp_path):
    a = bench("run", "--targets", "addition,product", *MERGE_GRID, "--out", str(tmp_path / "a"))
    c = bench("run", "--targets", "product", *[("6" if v == "5" else v) for v in MERGE_GRID], "--out", str(tmp_path / "c"))
    assert a.exit_code == 0 and c.exit_code == 0
    refused = bench("merge", str(a.run_dir), str(c.run_dir), "--out", str(tmp_path / "merged"))
    assert_one_line_error(refused, "product x linear", "epochs 5 -> 6")
    assert not (tmp_path / "merged").exists()
    # No cell in common, but other settings: the merged run.json could not describe both.
    d = bench("run", "--targets", "sine", *[("6" if v == "5" else v) for v in MERGE_GRID], "--out", str(tmp_path / "d"))
    assert d.exit_code == 0
    assert_one_line_error(bench("merge", str(a.run_dir), str(d.run_dir), "--out", str(tmp_path / "merged")),
                          "different settings", "epochs 5 -> 6")
    assert not (tmp_path / "merged").exists()
    assert_one_line_error(bench("merge", str(a.run_dir), str(c.run_dir), "--out", str(a.run_dir)), "one of the runs")
    assert_one_line_error(bench("merge", str(a.run_dir), str(tmp_path / "nowhere"), "--out", str(tmp_path / "m")),
                          "not a funcbench run folder")
