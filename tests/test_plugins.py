"""Plugins: a local file, a module, an installed package's entry point, and broken ones."""

import os
import subprocess
import sys
import textwrap

import pytest
from conftest import assert_one_line_error

PLUGIN = '''
import numpy as np
from benchmark import Box, near_and_far, target, target_family, Target

DOMAIN = Box.cube(2, -1.0, 1.0)

@target(domain=DOMAIN, extrapolation=near_and_far(DOMAIN), description="{description}",
        inputs=("u", "v"), linear_solution=((2, -3), 1))
def {name}(x):
    return 2 * x[:, [0]] - 3 * x[:, [1]] + 1

@target_family(description="x^p on [0, 1]")
def {name}_power(p: float = 3.0) -> Target:
    domain = Box((0.0,), (1.0,))
    return Target(fn=lambda x: x**p, domain=domain, extrapolation=near_and_far(domain, "low"),
                  description=f"x^{{p}}")
'''


def write_plugin(folder, name="affine", description="2u - 3v + 1", body=None):
    path = folder / f"{name}_plugin.py"
    path.write_text(body if body is not None else PLUGIN.format(name=name, description=description))
    return path


def test_plugin_file_is_listed_and_runs(bench, tmp_path):
    plugin = write_plugin(tmp_path)
    listing = bench("list", "targets", "--details", "--plugin", str(plugin))
    assert listing.exit_code == 0, listing.stderr
    assert "affine: 2u - 3v + 1" in listing.stdout
    assert "affine_power[p=3.0]: x^p on [0, 1]" in listing.stdout
    assert f"from plugin {plugin}" in listing.stdout
    assert "addition:" in listing.stdout  # the built-ins are still there

    result = bench("run", "--plugin", str(plugin), "--targets", "affine,affine_power[p=2]", "--models", "linear", "--seeds", "2")
    assert result.exit_code == 0, result.stderr
    results = result.table("results")
    assert set(results["target"]) == {"affine", "affine_power[p=2.0]"}
    affine = results[(results["target"] == "affine") & (results["split"] != "train")]
    assert affine["nmse"].max() < 1e-6
    params = result.table("params")
    assert set(params["parameter"]) == {"weight[u]", "weight[v]", "weight[x1]", "bias"}


def test_plugin_module_by_name(bench, tmp_path, monkeypatch):
    write_plugin(tmp_path, name="modtarget")
    monkeypatch.syspath_prepend(str(tmp_path))
    listing = bench("list", "targets", "--details", "--plugin", "modtarget_plugin")
    assert listing.exit_code == 0, listing.stderr
    assert "modtarget: 2u - 3v + 1" in listing.stdout


def test_installed_package_registers_through_its_entry_point(tmp_path):
    """A real distribution on sys.path, found by importlib.metadata like any installed package."""
    site = tmp_path / "site"
    site.mkdir()
    write_plugin(site, name="packaged", description="from an installed package")
    dist_info = site / "funcbench_test_plugin-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: funcbench-test-plugin\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text("[funcbench.targets]\npackaged = packaged_plugin\n")
    env = {**os.environ, "PYTHONPATH": str(site)}

    def bench(*args):
        return subprocess.run([sys.executable, "-m", "benchmark", *args], capture_output=True, text=True, env=env, cwd=tmp_path)

    listing = bench("list", "targets", "--details")
    assert listing.returncode == 0, listing.stderr
    assert "packaged: from an installed package" in listing.stdout
    assert "from entry point 'packaged' (packaged_plugin)" in listing.stdout

    run = bench("run", "--targets", "packaged", "--models", "linear", "--seeds", "1", "--out", str(tmp_path / "out"))
    assert run.returncode == 0, run.stderr
    assert "packaged" in run.stdout and "report: " in run.stdout


BROKEN_TARGETS = {
    "raises": ("def f(x):\n    raise RuntimeError('boom')", "raised RuntimeError: boom"),
    "wrong_shape": ("def f(x):\n    return x[:, 0]", "must return shape"),
    "non_finite": ("def f(x):\n    return np.log(x[:, :1] - 0.5)", "NaN or infinite"),
    "fails_far_out": ("def f(x):\n    return np.where(x[:, :1] < -5, np.nan, x[:, :1])", "region 'far'"),
}


@pytest.mark.parametrize("kind", sorted(BROKEN_TARGETS))
def test_a_broken_target_is_one_line_and_the_others_run(bench, tmp_path, kind):
    body, message = BROKEN_TARGETS[kind]
    plugin = write_plugin(
        tmp_path,
        name="broken",
        body=textwrap.dedent(
            f"""
            import numpy as np
            from benchmark import Box, near_and_far, target
            D = Box.cube(1, -1.0, 1.0)
            @target(domain=D, extrapolation=near_and_far(D), description="broken", name="{kind}")
            """
        ) + body,
    )
    result = bench("run", "--plugin", str(plugin), "--targets", f"{kind},addition", "--models", "linear", "--seeds", "1")
    assert result.exit_code == 1
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, result.stderr
    assert f"target '{kind}'" in warnings[0] and message in warnings[0] and str(plugin) in warnings[0]
    assert "Traceback" not in result.stderr
    assert set(result.table("results")["target"]) == {"addition"}
    assert result.meta()["problems"] == [warnings[0].removeprefix("warning: ")]


@pytest.mark.parametrize(
    "body, message",
    [
        ("def broken(:\n    pass\n", "SyntaxError"),
        ("raise ImportError('needs a package that is not installed')\n", "ImportError: needs a package"),
        ("import numpy\nnumpy.no_such_function()\n", "AttributeError"),
    ],
)
def test_a_plugin_that_fails_to_import_is_one_line_and_the_rest_runs(bench, tmp_path, body, message):
    plugin = write_plugin(tmp_path, name="bad", body=body)
    result = bench("run", "--plugin", str(plugin), "--targets", "all", "--models", "linear", "--seeds", "1", "--epochs", "2")
    assert result.exit_code == 1
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, result.stderr
    assert f"plugin {plugin}: failed to import: {message}" in warnings[0]
    assert "bad_plugin.py:" in warnings[0]  # where in the plugin it failed
    assert "Traceback" not in result.stderr
    assert len(set(result.table("results")["target"])) == 13  # every built-in ran


def test_a_name_registered_twice_keeps_the_first(bench, tmp_path):
    plugin = write_plugin(tmp_path, name="addition")
    result = bench("list", "targets", "--details", "--plugin", str(plugin))
    assert result.exit_code == 1
    assert "target 'addition' is already registered by entry point 'builtin'" in result.stderr
    assert "addition: a + b, the article's target" in result.stdout


def test_missing_plugin_file_is_a_usage_error(bench, tmp_path):
    result = bench("run", "--plugin", str(tmp_path / "nope.py"))
    assert_one_line_error(result, "nope.py", "does not exist")
    result = bench("list", "targets", "--plugin", "no_such_module_anywhere")
    assert_one_line_error(result, "no_such_module_anywhere", "neither a .py file nor an importable module")


def plugin_with(tmp_path, body: str, name: str = "extra"):
    return write_plugin(
        tmp_path,
        name=name,
        body="import numpy as np\nfrom benchmark import Box, Target, near_and_far, target, target_family\n"
        "D = Box.cube(1, 0.0, 1.0)\nREGIONS = near_and_far(D, 'low')\n" + textwrap.dedent(body),
    )


@pytest.mark.parametrize(
    "body, message",
    [
        # Passes the 256-point check, fails on the 1000 training samples.
        ("@target(domain=D, extrapolation=REGIONS, description='late')\ndef late(x):\n"
         "    if len(x) >= 500:\n        raise ArithmeticError('too many points')\n    return x\n",
         "target 'late' failed while its data was drawn: ArithmeticError: too many points"),
        ("@target(domain=D, extrapolation=REGIONS, description='bad probe', probes=[(-1,)])\ndef late(x):\n"
         "    return np.sqrt(x)\n",
         "target 'late' function fails on its probe points: returned NaN or infinite values"),
        ("@target_family(description='typo')\ndef late(k: int = 2) -> Target:\n    return Target(fn=np.sin, domain=D.lower)\n",
         "target 'late' cannot be built: AttributeError: 'Box' object has no attribute 'lower'"),
        ("@target_family(description='forgot to return')\ndef late(k: int = 2) -> Target:\n    Target(fn=np.sin, domain=D, extrapolation=REGIONS, description='x')\n",
         "target 'late' cannot be built: TypeError: its factory returned NoneType, not a Target"),
        ("@target(domain=D, extrapolation=REGIONS, description='odd name', name='late one')\ndef late(x):\n    return x\n",
         "target name 'late one' cannot be selected on the command line"),
        ("@target_family(description='inverted')\ndef late(k: int = 2) -> Target:\n"
         "    return Target(fn=np.sin, domain=Box((1.0,), (0.0,)), extrapolation=REGIONS, description='x')\n",
         "target 'late' cannot be built: target 'late': box is empty or inverted: low (1.0,) must be below high (0.0,)"),
        ("@target_family(description='empty')\ndef late(k: int = 2) -> Target:\n"
         "    return Target(fn=np.sin, domain=Box((), ()), extrapolation=REGIONS, description='x')\n",
         "target 'late' cannot be built: target 'late': box bounds need the same, non-zero length"),
    ],
    ids=["fails-late", "bad-probe", "factory-raises", "factory-returns-none", "bad-name", "inverted-domain", "empty-domain"],
)
def test_plugin_faults_found_later_are_still_one_line(bench, tmp_path, body, message):
    plugin = plugin_with(tmp_path, body)
    result = bench("run", "--plugin", str(plugin), "--targets", "all", "--models", "linear", "--seeds", "1", "--epochs", "2")
    # An entry no selection can name is the plugin's problem, not this run's: a warning only.
    selected = "cannot be selected" not in message
    assert result.exit_code == (1 if selected else 0), result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and message in warnings[0], result.stderr
    assert warnings[0].startswith(f"warning: plugin {plugin}: ")  # names the plugin
    assert "Traceback" not in result.stderr
    assert len(set(result.table("results")["target"])) == 13  # every built-in still ran
    assert (message in " ".join(result.meta()["problems"])) == selected
    # A skipped target has no page, row or heatmap cell in the report.
    assert "late" not in [t["label"] for t in result.meta()["targets"]]
    assert not (result.run_dir / "targets" / "late.html").exists()


def test_a_plugin_that_calls_sys_exit_does_not_end_bench(bench, tmp_path):
    plugin = plugin_with(tmp_path, "import sys\nsys.exit(3)\n")
    result = bench("list", "targets", "--details", "--plugin", str(plugin))
    assert result.exit_code == 1
    assert "failed to import: SystemExit: 3" in result.stderr
    assert "addition:" in result.stdout


def test_the_same_plugin_given_twice_loads_once(bench, tmp_path, monkeypatch):
    plugin = write_plugin(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = bench("list", "targets", "--details", "--plugin", str(plugin), "--plugin", f"./{plugin.name}")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("affine: 2u - 3v + 1") == 1


def test_a_folder_is_not_a_plugin(bench, tmp_path):
    assert_one_line_error(bench("list", "targets", "--plugin", str(tmp_path)), "neither a .py file nor an importable module")


def test_editing_a_plugin_target_invalidates_its_cells(bench, tmp_path):
    plugin = plugin_with(tmp_path, "@target(domain=D, extrapolation=REGIONS, description='f')\ndef f(x):\n    return 2 * x\n")
    args = ("run", "--plugin", str(plugin), "--targets", "f", "--models", "linear", "--seeds", "1", "--epochs", "5")
    assert "(1 trained, 0 reused)" in bench(*args).stdout
    assert "(0 trained, 1 reused)" in bench(*args).stdout
    plugin.write_text(plugin.read_text().replace("2 * x", "np.sin(5 * x)"))
    assert "(1 trained, 0 reused)" in bench(*args).stdout


def test_a_target_undefined_between_its_regions_leaves_a_gap_in_the_curve(bench, tmp_path):
    """Scored only on its domain and regions, a target may be undefined elsewhere on the report's line."""
    plugin = plugin_with(
        tmp_path,
        "@target(domain=D, extrapolation=REGIONS, description='gap')\ndef gap(x):\n"
        "    if ((x > 3) & (x < 9)).any():\n        raise ValueError('undefined between 3 and 9')\n    return x\n",
    )
    result = bench("run", "--plugin", str(plugin), "--targets", "gap", "--models", "linear", "--seeds", "1", "--epochs", "5")
    assert result.exit_code == 0, result.stderr
    lines = result.table("lines")
    inside_gap = (lines["position"] > 3.05 - 0.5) & (lines["position"] < 8.95 - 0.5)  # positions are from the centre, 0.5
    assert lines.loc[inside_gap, "y_true"].isna().all() and inside_gap.any()
    assert lines.loc[~inside_gap & ((lines["position"] < 2) | (lines["position"] > 9)), "y_true"].notna().all()
    assert (result.run_dir / "targets" / "gap.html").is_file()


def test_cell_ids_are_the_same_whether_function_sources_are_read_once_or_every_time():
    """code_fingerprint keeps each function's source; reading it afresh for every cell gives the same ids."""
    from benchmark.config import RunConfig
    from benchmark.fingerprint import code_fingerprint
    from benchmark.plan import build_plan
    from benchmark.plugins import load_registry

    config = RunConfig(targets="addition,product,weighted_sum[n=3]", models="linear,nau,nmu[hidden=2],knn", seeds=2)
    registry = load_registry()
    kept = [cell.id for cell in build_plan(registry, config).cells]
    afresh = []
    for cell in build_plan(load_registry(), config).cells:
        code_fingerprint.cache_clear()
        afresh.append(cell.id)
    assert kept == afresh and len(set(kept)) == len(kept) == 12
