"""Fault injection: every stored number is what the code computed for its configuration, or absent.

Each fault is checked for three things: a one-line error or a clean
recovery, nothing finished lost, and no stale reuse. "Nothing lost, nothing
stale" is checked the same way everywhere: after the fault, running the
same command again gives tables equal to those of a run that met no fault.

Faults are injected where they happen in real use: signals sent by the
process to itself at a chosen phase (`KILLER`, run as a real `bench`
process), OSErrors raised by the write layer in-process, files damaged on
disk, a small tmpfs where the machine lets the test mount one, and two real
processes on one run folder.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from conftest import assert_one_line_error

from benchmark.store import TABLES

#: Two targets of one shape and two families: 4 cells, trained as 2 ensembles.
RUN = ["run", "--targets", "addition,product", "--models", "linear,mlp_small", "--seeds", "2", "--epochs", "3",
       "--jobs", "1"]
VOLATILE = ["train_seconds"]  # the one column that is a measurement of the machine, not a computed number


def tables_of(run_dir: Path) -> dict[str, pd.DataFrame]:
    return {t: pd.read_parquet(run_dir / f"{t}.parquet").drop(columns=VOLATILE, errors="ignore") for t in TABLES}


def assert_same_tables(a: Path, b: Path) -> None:
    left, right = tables_of(a), tables_of(b)
    for table in TABLES:
        pd.testing.assert_frame_equal(left[table], right[table], check_exact=True, obj=table)


def assert_cells_whole(run_dir: Path) -> None:
    for cell in (p for p in (run_dir / "cells").iterdir() if not p.name.startswith(".")):
        for table in TABLES:
            pd.read_parquet(cell / f"{table}.parquet")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The tables of RUN when nothing goes wrong."""
    from click.testing import CliRunner

    from benchmark.cli import cli

    out = tmp_path_factory.mktemp("reference")
    result = CliRunner().invoke(cli, [*RUN, "--out", str(out), "--run-id", "ref"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return out / "ref"


# --- kills at every phase, as real processes ----------------------------------------------------

#: Run `bench` with one function wrapped so that its Nth call sends SIG to this process first. The
#: process's children (report page workers) are written to PIDS, to check that none outlives it.
KILLER = textwrap.dedent("""
    import importlib, os, signal, sys
    import psutil
    # Ctrl-C as at a terminal, however the tests were started: a shell's background job inherits
    # SIGINT ignored, and Python then leaves it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    module, name, nth, sig, pids = sys.argv[1:6]
    owner, _, attribute = name.rpartition(".")
    holder = importlib.import_module(module)
    for part in filter(None, owner.split(".")):
        holder = getattr(holder, part)
    original, calls = getattr(holder, attribute), [0]
    def wrapped(*args, **kwargs):
        calls[0] += 1
        if calls[0] == int(nth):
            with open(pids, "w") as f:
                f.write(" ".join(str(c.pid) for c in psutil.Process().children(recursive=True)))
            os.kill(os.getpid(), getattr(signal, sig))
        return original(*args, **kwargs)
    setattr(holder, attribute, wrapped)
    sys.argv = ["bench", *sys.argv[6:]]
    from benchmark.cli import main
    main()
""")

#: (phase, module, function, which call, jobs): where a kill lands. With 2 jobs, the other
#: ensemble is training in a worker process when the driver is killed.
PHASES = [
    ("training", "benchmark.runner", "train_cells", 2, 1),
    ("scoring", "benchmark.runner", "evaluate_cell", 2, 1),
    ("cell write", "pandas", "DataFrame.to_parquet", 12, 1),  # the 4th table of the 2nd cell
    ("cell write with workers", "benchmark.store", "RunStore.write_cell", 2, 2),
    ("table write", "pandas", "DataFrame.to_parquet", 36, 1),  # the 4th run-level table, after 4 cells of 8
    ("run.json write", "benchmark.store", "RunStore.write_json", 2, 1),
    ("report", "benchmark.report.figures", "heatmap", 1, 1),
]
EXIT = {"SIGINT": 130, "SIGTERM": 143, "SIGKILL": -signal.SIGKILL}


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM", "SIGKILL"])
@pytest.mark.parametrize("phase, module, function, nth, jobs", PHASES, ids=[p[0] for p in PHASES])
def test_a_kill_at_any_phase_loses_nothing_and_resumes_to_the_same_tables(
        phase, module, function, nth, jobs, sig, tmp_path, bench, reference):
    pids = tmp_path / "pids"
    args = [*RUN, "--jobs", str(jobs), "--out", str(tmp_path), "--run-id", "killed"]
    killed = subprocess.run([sys.executable, "-c", KILLER, module, function, str(nth), sig, str(pids), *args],
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == EXIT[sig], (phase, killed.returncode, killed.stderr)
    assert "Traceback" not in killed.stderr and "Exception ignored" not in killed.stderr, killed.stderr
    if sig != "SIGKILL":
        said = [line for line in killed.stderr.splitlines() if line.startswith("interrupted")]
        assert len(said) == 1, killed.stderr
        assert ("bench report" in said[0]) == (phase == "report"), said
    survivors = [int(p) for p in pids.read_text().split()] if pids.exists() else []
    deadline = time.monotonic() + 10
    while survivors and time.monotonic() < deadline:
        survivors = [p for p in survivors if _alive(p)]
        time.sleep(0.1)
    assert not survivors, f"worker processes {survivors} outlived the killed run"
    run_dir = tmp_path / "killed"
    assert_cells_whole(run_dir)
    for path in run_dir.rglob("*"):  # no half-written file where a reader looks
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(run_dir).parts):
            assert path.stat().st_size > 0, path
    if phase == "report":  # the run itself finished: its tables are readable before any rerun
        assert_same_tables(run_dir, reference)
    again = bench(*args)
    assert again.exit_code == 0, again.stderr
    assert_same_tables(run_dir, reference)


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# --- a full disk and a folder that cannot be written, at each kind of write ---------------------

#: (kind of write, what to break): each raises the OSError on its first call.
WRITES = [
    ("cell table", "pandas.DataFrame.to_parquet", 1),
    ("run-level table", "pandas.DataFrame.to_parquet", 33),  # after the 4 cells' 8 tables each
    ("run.json", "pathlib.Path.write_text", 1),
    ("report figure", "matplotlib.figure.Figure.savefig", 1),
    ("report csv", "pyarrow.csv.write_csv", 1),
]


@pytest.mark.parametrize("code, fragment, exit_code", [(errno.ENOSPC, "no space left on device writing", 3),
                                                       (errno.EROFS, "read-only file system", 2)],
                         ids=["ENOSPC", "EROFS"])
@pytest.mark.parametrize("kind, target, nth", WRITES, ids=[w[0] for w in WRITES])
def test_a_failed_write_is_one_line_and_loses_nothing(kind, target, nth, code, fragment, exit_code,
                                                      monkeypatch, tmp_path, bench, reference):
    import importlib

    owner_path, _, attribute = target.rpartition(".")
    module_name, _, owner_name = owner_path.rpartition(".")
    try:  # a module's function, or a class's method
        owner = importlib.import_module(owner_path)
    except ImportError:
        owner = getattr(importlib.import_module(module_name), owner_name)
    original, calls = getattr(owner, attribute), [0]

    def failing(*args, **kwargs):
        calls[0] += 1
        if calls[0] == nth:
            raise OSError(code, os.strerror(code), str(tmp_path / "somewhere"))
        return original(*args, **kwargs)

    args = [*RUN, "--out", str(tmp_path), "--run-id", "full"]
    with monkeypatch.context() as patch:
        patch.setattr(owner, attribute, failing)
        broken = bench(*args)
    assert_one_line_error(broken, fragment, code=exit_code)
    run_dir = tmp_path / "full"
    assert_cells_whole(run_dir)
    again = bench(*args)
    assert again.exit_code == 0, again.stderr
    assert_same_tables(run_dir, reference)
    if kind.startswith("report"):
        assert "(0 trained, 4 reused)" in again.stdout  # the cells were all kept


def _mount(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    return done.returncode == 0


def test_a_really_full_disk_is_one_line(tmp_path, bench):
    """A 3 MB tmpfs, as a user's full disk: the run stops in one line, and what finished is whole."""
    disk = tmp_path / "disk"
    if not _mount(disk, "size=3m"):
        pytest.skip("this machine does not let the test mount a tmpfs")
    try:
        result = bench("run", "--targets", "all", "--models", "linear,mlp_small", "--seeds", "3", "--epochs", "2",
                       "--samples", "4000", "--eval-samples", "4000", "--out", str(disk))
        assert_one_line_error(result, "no space left on device writing", code=3)
        for run_dir in disk.iterdir():
            assert_cells_whole(run_dir)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_read_only_run_folder_gets_its_report_elsewhere(tmp_path, bench):
    first = bench(*RUN, "--out", str(tmp_path / "runs"))
    assert first.exit_code == 0, first.stderr
    archive = tmp_path / "archive"
    if not _mount(archive, "size=50m"):
        pytest.skip("this machine does not let the test mount a tmpfs")
    try:
        shutil.copytree(first.run_dir, archive / "run")
        subprocess.run(["mount", "-o", "remount,ro", str(archive)], check=True)
        refused = bench("report", str(archive / "run"))
        assert_one_line_error(refused, "read-only file system", "--out")
        elsewhere = bench("report", str(archive / "run"), "--out", str(tmp_path / "rebuilt"))
        assert elsewhere.exit_code == 0, elsewhere.stderr
        index = (tmp_path / "rebuilt" / "index.html").read_text()
        assert "addition" in index and "product" in index
        # The Parquet links lead back to the archived run's tables.
        assert os.path.relpath(archive / "run", tmp_path / "rebuilt") + "/results.parquet" in index
    finally:
        subprocess.run(["umount", "-l", str(archive)], check=False)


# --- damaged cells and a hand-edited run.json ---------------------------------------------------

@pytest.mark.parametrize("damage", ["truncated", "empty file", "missing table", "empty folder"])
def test_a_damaged_cell_is_retrained_and_the_run_stays_readable(damage, tmp_path, bench, reference):
    args = [*RUN, "--out", str(tmp_path), "--run-id", "damaged"]
    assert bench(*args).exit_code == 0
    run_dir = tmp_path / "damaged"
    cell = sorted((run_dir / "cells").iterdir())[0]
    table = cell / "results.parquet"
    if damage == "truncated":
        os.truncate(table, 100)
    elif damage == "empty file":
        os.truncate(table, 0)
    elif damage == "missing table":
        table.unlink()
    else:
        shutil.rmtree(cell)
        cell.mkdir()
    assert bench("report", str(run_dir)).exit_code == 0  # the run's own tables are whole: still readable
    again = bench(*args)
    assert again.exit_code == 0, again.stderr
    warnings = [line for line in again.stderr.splitlines() if "does not read back whole" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: "), again.stderr
    assert "(1 trained, 3 reused)" in again.stdout
    assert_same_tables(run_dir, reference)


EDITS = {
    "no targets": lambda m: m.pop("targets"),
    "a target without its label": lambda m: m["targets"][0].pop("label"),
    "seeds as text": lambda m: m["config"].__setitem__("seeds", "two"),
    "a model that is not a table": lambda m: m["models"].__setitem__(0, "linear"),
    "problems as text": lambda m: m.__setitem__("problems", "none"),
}


@pytest.mark.parametrize("edit", EDITS, ids=list(EDITS))
def test_a_hand_edited_run_json_is_one_line(edit, tmp_path, bench):
    first = bench(*RUN, "--out", str(tmp_path))
    meta = first.meta()
    EDITS[edit](meta)
    (first.run_dir / "run.json").write_text(json.dumps(meta))
    before = (first.run_dir / "index.html").read_bytes()
    assert_one_line_error(bench("report", str(first.run_dir)), "is not a valid run.json")
    assert (first.run_dir / "index.html").read_bytes() == before
    # The run itself rewrites it, reusing every cell.
    again = bench(*RUN, "--out", str(tmp_path))
    if edit == "seeds as text":  # it now records another configuration: refused, as any other would be
        assert_one_line_error(again, "holds another run", "--replace")
    else:
        assert again.exit_code == 0 and "(0 trained, 4 reused)" in again.stdout, again.stderr


def test_the_report_takes_its_models_from_the_tables(tmp_path, bench):
    first = bench("run", "--targets", "addition", "--models", "linear,mlp_small", "--seeds", "2", "--epochs", "2",
                  "--out", str(tmp_path))
    meta = first.meta()
    meta["models"] = meta["models"][:1]  # trimmed by hand: mlp_small is still in the tables
    (first.run_dir / "run.json").write_text(json.dumps(meta))
    assert bench("report", str(first.run_dir)).exit_code == 0
    heatmap = (first.run_dir / "figures" / "heatmap-extrapolation.svg").read_text()
    assert "mlp_small" in heatmap and "linear" in heatmap


def test_a_truncated_run_level_table_is_one_line_and_a_rerun_rebuilds_it(tmp_path, bench, reference):
    args = [*RUN, "--out", str(tmp_path), "--run-id", "t"]
    bench(*args)
    os.truncate(tmp_path / "t" / "results.parquet", 100)
    assert_one_line_error(bench("report", str(tmp_path / "t")), "unreadable or corrupted table", "again")
    assert bench(*args).exit_code == 0
    assert_same_tables(tmp_path / "t", reference)


# --- two runs at once ---------------------------------------------------------------------------

def test_two_runs_on_one_folder_at_once_one_is_refused_the_other_finishes(tmp_path, reference):
    args = [sys.executable, "-m", "benchmark", *RUN, "--epochs", "2000", "--out", str(tmp_path), "--run-id", "shared"]
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (tmp_path / "shared" / "run.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # run.json is written under the lock, before training
    second = subprocess.run(args, capture_output=True, text=True, timeout=120)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert second.returncode == 2, second.stderr
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and "in use by another bench command" in lines[0], second.stderr
    assert "(4 trained, 0 reused)" in out
    assert_cells_whole(tmp_path / "shared")


def test_a_report_on_a_folder_a_run_holds_is_refused(tmp_path, bench):
    first = bench(*RUN, "--out", str(tmp_path))
    from filelock import FileLock

    with FileLock(first.run_dir / ".lock"):  # as a running `bench run` holds it
        assert_one_line_error(bench("report", str(first.run_dir)), "in use by another bench command")


# --- a reused --run-id --------------------------------------------------------------------------

def test_a_reused_run_id_with_another_grid_is_refused_and_replace_leaves_no_old_page(tmp_path, bench):
    base = ["--out", str(tmp_path), "--run-id", "base", "--seeds", "2", "--epochs", "2"]
    first = bench("run", "--targets", "addition,product", "--models", "linear", *base)
    assert first.exit_code == 0
    refused = bench("run", "--targets", "sine", "--models", "mlp_small", *base)
    assert_one_line_error(refused, "holds another run", "models 'linear' -> 'mlp_small'",
                          "targets 'addition,product' -> 'sine'", "--replace")
    assert (first.run_dir / "targets" / "addition.html").exists()  # the first run is untouched
    assert json.loads((first.run_dir / "run.json").read_text())["config"]["targets"] == "addition,product"
    replaced = bench("run", "--targets", "sine", "--models", "mlp_small", *base, "--replace")
    assert replaced.exit_code == 0, replaced.stderr
    assert sorted(p.name for p in (replaced.run_dir / "targets").iterdir()) == ["sine.html"]
    assert set(replaced.table("results")["target"]) == {"sine"}


# --- edited plugins: no stale reuse -------------------------------------------------------------

TARGET_PLUGIN = textwrap.dedent("""
    import numpy as np
    from benchmark import Box, near_and_far, target

    K = {k}
    SQUARE = Box.cube(2, 0.0, 1.0)

    def helper(x):
        return np.sin(K * x[:, [0]]) + x[:, [1]]

    @target(domain=SQUARE, extrapolation=near_and_far(SQUARE, anchor="low"), description="sin(K a) + b")
    def wavy(x):
        return helper(x)
""")

MODEL_PLUGIN = textwrap.dedent("""
    import torch
    from benchmark import torch_model

    class Scaled(torch.nn.Module):
        def __init__(self, inputs):
            super().__init__()
            self.linear = torch.nn.Linear(inputs, 1)

        def forward(self, x):
            return {forward}

    @torch_model(description="a linear unit whose output is scaled", learning_rate=0.1)
    def scaled(inputs: int) -> torch.nn.Module:
        return Scaled(inputs)
""")

EDITED = {
    "a module constant": (TARGET_PLUGIN, {"k": "2.0"}, {"k": "50.0"}, "wavy", "linear"),
    "a helper": (TARGET_PLUGIN.replace("np.sin(K", "{fn}(K"), {"k": "2.0", "fn": "np.sin"},
                 {"k": "2.0", "fn": "np.cos"}, "wavy", "linear"),
    "a model class": (MODEL_PLUGIN, {"forward": "self.linear(x)"}, {"forward": "0 * self.linear(x)"},
                      "addition", "scaled"),
}


@pytest.mark.parametrize("edit", EDITED, ids=list(EDITED))
def test_an_edited_plugin_is_a_new_cell_never_a_stale_reuse(edit, tmp_path, bench):
    template, before, after, target_name, model = EDITED[edit]
    plugin = tmp_path / "my_plugin.py"
    args = ["run", "--plugin", str(plugin), "--targets", target_name, "--models", model, "--seeds", "2",
            "--epochs", "3", "--out", str(tmp_path / "runs")]
    plugin.write_text(template.format(**before))
    first = bench(*args)
    assert first.exit_code == 0, first.stderr
    before_mse = first.table("results")["mse"]
    plugin.write_text(template.format(**after))
    edited = bench(*args)
    assert edited.exit_code == 0, edited.stderr
    assert "(1 trained, 0 reused)" in edited.stdout
    assert not before_mse.equals(edited.table("results")["mse"])
    plugin.write_text(template.format(**before))  # back as it was: its cell is found again
    assert "(0 trained, 1 reused)" in bench(*args).stdout


# --- cells that never ran, constant and overflowing targets -------------------------------------

FAILING = textwrap.dedent("""
    import numpy as np
    from benchmark import Box, near_and_far, target, model_family
    from benchmark.models import ModelSpec

    SQUARE = Box.cube(2, 1.0, 2.0)

    @target(domain=SQUARE, extrapolation=near_and_far(SQUARE, anchor="low"), description="a constant")
    def constant(x):
        return np.full((len(x), 1), 3.0)

    @target(domain=SQUARE, extrapolation=near_and_far(SQUARE, anchor="low"), description="beyond float32")
    def huge(x):
        return 1e200 * (x[:, [0]] + x[:, [1]])

    class Broken:
        def fit(self, data, settings):
            raise ValueError("this model cannot fit")

    @model_family(description="a family whose fit raises")
    def broken():
        return ModelSpec(lambda inputs, seeds, device: Broken(), "broken", learning_rate=0.1)
""")


def test_failed_not_run_diverged_and_undefined_are_each_what_they_are(tmp_path, bench):
    plugin = tmp_path / "failing.py"
    plugin.write_text(FAILING)
    common = ["--plugin", str(plugin), "--seeds", "2", "--epochs", "2", "--out", str(tmp_path / "runs")]
    result = bench("run", "--targets", "addition,constant,huge", "--models", "linear,broken", *common)
    assert result.exit_code == 1
    huge = [line for line in result.stderr.splitlines() if "'huge'" in line]
    assert len(huge) == 1 and "returned values up to " in huge[0] and "e+200" in huge[0], huge
    assert "scale the target down" in huge[0]
    failed = [line for line in result.stderr.splitlines() if "failed (ValueError: this model cannot fit" in line]
    assert len(failed) == 1 and "failing.py:" in failed[0], result.stderr
    assert "(all diverged)" not in result.stdout  # the constant target's seeds are fine; only its nmse is undefined
    meta = result.meta()
    assert {(c["target"], c["model"]) for c in meta["failed_cells"]} == {("addition", "broken"), ("constant", "broken")}
    heatmap = (result.run_dir / "figures" / "heatmap-interpolation.svg").read_text()
    assert "failed" in heatmap and "undefined" in heatmap and "diverged" not in heatmap
    index = (result.run_dir / "index.html").read_text()
    assert "addition x broken (failed)" in index

    # A merge of runs that each trained part of the grid: the missing pair is "not run".
    a = bench("run", "--targets", "addition", "--models", "linear", *common)
    b = bench("run", "--targets", "product", "--models", "mlp_small", *common)
    merged = bench("merge", str(a.run_dir), str(b.run_dir), "--out", str(tmp_path / "merged"))
    assert merged.exit_code == 0, merged.stderr
    heatmap = (tmp_path / "merged" / "figures" / "heatmap-extrapolation.svg").read_text()
    assert "not run" in heatmap and "diverged" not in heatmap


# --- resources up front -------------------------------------------------------------------------

@pytest.mark.parametrize("args, fragment", [
    (["--seeds", "1000", "--samples", "10000000"], "use fewer --seeds or --samples"),
    (["--models", "mlp[width=65536,depth=64]"], "use a smaller model"),
], ids=["data", "model"])
def test_a_run_that_cannot_fit_in_memory_is_refused_before_it_starts(args, fragment, tmp_path, bench):
    started = time.monotonic()
    result = bench("run", "--targets", "addition", *args, "--out", str(tmp_path))
    assert_one_line_error(result, "this run needs about", "GiB of memory", "is available", fragment, code=3)
    assert "run it again" not in result.stderr and "run the same command again" not in result.stderr
    assert time.monotonic() - started < 30  # refused from the estimate, not after growing
    assert not any((tmp_path / p.name / "cells").exists() and any((tmp_path / p.name / "cells").iterdir())
                   for p in tmp_path.iterdir())


# --- plugins, packaging and output --------------------------------------------------------------

def test_a_users_own_targets_py_does_not_shadow_the_built_ins(tmp_path):
    (tmp_path / "targets.py").write_text("raise SystemExit('the user file was imported')\n")
    listing = subprocess.run([sys.executable, "-m", "benchmark", "list", "targets"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0, listing.stderr
    assert "addition" in listing.stdout and "the user file" not in listing.stderr


def test_the_wheel_ships_only_the_packages_that_belong(tmp_path):
    root = Path(__file__).resolve().parents[1]
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path), str(root)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    wheel = next(tmp_path.glob("funcbench-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {
        "benchmark", "funcbench_targets"}
    assert "funcbench_targets/arithmetic.py" in names and "benchmark/report/templates/index.html.j2" in names


SCOPED = textwrap.dedent("""
    import numpy as np
    from benchmark import Box, near_and_far, target

    SQUARE = Box.cube(2, 0.0, 1.0)
    print("hello from the plugin")

    @target(domain=SQUARE, extrapolation=near_and_far(SQUARE, anchor="low"), description="fine")
    def fine(x):
        print("evaluated")
        return x[:, [0]] - x[:, [1]]

    @target(domain=SQUARE, extrapolation=near_and_far(SQUARE, anchor="low"), description="bad name",
            name="not selectable!")
    def bad(x):
        return x[:, [0]]

    @target(domain=SQUARE, extrapolation=near_and_far(SQUARE, anchor="low"), description="raises in training")
    def raises(x):
        if len(x) == 200:  # a training batch; the checks use 256 points
            raise ArithmeticError("a plugin bug")
        return x[:, [0]]
""")


def test_plugin_problems_are_scoped_and_plugin_output_stays_off_stdout(tmp_path, bench):
    plugin = tmp_path / "scoped.py"
    plugin.write_text(SCOPED)
    listing = bench("list", "targets", "--plugin", str(plugin))
    assert "cannot be selected" in listing.stderr
    common = ["--plugin", str(plugin), "--models", "linear", "--seeds", "2", "--epochs", "2",
              "--out", str(tmp_path / "runs")]
    run = bench("run", "--targets", "fine", *common)
    assert run.exit_code == 0, run.stderr  # the broken entry is not selected: a warning, not a failure
    assert "cannot be selected" in run.stderr
    assert "hello from the plugin" not in run.stdout and "evaluated" not in run.stdout
    assert "hello from the plugin" in run.stderr
    assert run.stdout.strip().splitlines()[-1].startswith("report: ")
    assert "cannot be selected" not in (run.run_dir / "index.html").read_text()


def test_a_plugins_exception_in_a_worker_keeps_its_file_and_line(tmp_path, bench):
    plugin = tmp_path / "failing.py"
    plugin.write_text(FAILING)
    result = bench("run", "--plugin", str(plugin), "--targets", "addition", "--models", "broken,linear",
                   "--seeds", "2", "--epochs", "2", "--jobs", "2", "-v", "--out", str(tmp_path / "runs"))
    assert result.exit_code == 1
    line = FAILING.splitlines().index('        raise ValueError("this model cannot fit")') + 1
    failed = [entry for entry in result.stderr.splitlines() if entry.startswith("warning: cells addition x broken")]
    assert len(failed) == 1 and f"failing.py:{line}" in failed[0], result.stderr
    # -v gives the worker's whole traceback, down to the plugin's line.
    assert f'failing.py", line {line}, in fit' in result.stderr


# --- silent no-ops --------------------------------------------------------------------------------

@pytest.mark.parametrize("args, fragment", [
    (["--steps", "100", "--reg-start", "500", "--reg-end", "600"], "the sparsity regulariser never applies"),
    (["--steps", "100", "--eval-every", "1000"], "scores only 2 checkpoints"),
    (["--batch-size", "5000", "--epochs", "2"], "every step is one full batch"),
], ids=["regulariser", "evaluations", "batch"])
def test_a_setting_that_does_nothing_is_a_warning(args, fragment, tmp_path, bench):
    result = bench("run", "--targets", "addition", "--models", "linear", "--seeds", "1", *args)
    assert result.exit_code == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if fragment in line]
    assert len(warned) == 1 and warned[0].startswith("warning: "), result.stderr


def test_an_out_of_range_value_in_a_toml_file_names_the_file_and_the_key(tmp_path, bench):
    config = tmp_path / "study.toml"
    config.write_text("seeds = 0\n")
    assert_one_line_error(bench("run", "--config", str(config)), "study.toml", "'seeds' must be between 1 and")


def test_an_edited_module_plugin_is_a_new_cell(tmp_path):
    """A plugin given by module name (as an installed package's is found): its package's files are in the cell id."""
    package = tmp_path / "site" / "mytargets"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("from .waves import wavy\n")
    (package / "waves.py").write_text(TARGET_PLUGIN.format(k="2.0"))
    args = [sys.executable, "-m", "benchmark", "run", "--plugin", "mytargets", "--targets", "wavy", "--models",
            "linear", "--seeds", "1", "--epochs", "2", "--out", str(tmp_path / "runs")]
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}

    def run() -> str:
        done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "(1 trained, 0 reused)" in run()
    assert "(0 trained, 1 reused)" in run()
    (package / "waves.py").write_text(TARGET_PLUGIN.format(k="50.0"))  # a constant in another file of the package
    assert "(1 trained, 0 reused)" in run()


def test_the_memory_estimate_counts_an_ensembles_real_members():
    """One cell of 5 seeds stacks 5 members, not the ensemble cap; the shipped suites are never refused here."""
    from benchmark.plan import build_plan, resolve_config
    from benchmark.plugins import load_registry
    from benchmark.resources import GIB, PARAMETER_COPIES, estimate

    registry = load_registry()
    config = resolve_config(registry, None, {"targets": "addition", "models": "mlp[width=4096,depth=2]"})
    wide = estimate(build_plan(registry, config), config, jobs=4)
    parameters = 2 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 + 1
    assert wide.workers == 1  # one cell: one worker process, whatever --jobs
    assert 5 * PARAMETER_COPIES * 4 * parameters < wide.models < 2 * 5 * PARAMETER_COPIES * 4 * parameters
    for suite in [None, *registry.suites]:
        config = resolve_config(registry, suite, {})
        assert estimate(build_plan(registry, config), config, 2).total < 16 * GIB, suite
