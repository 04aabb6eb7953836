"""index.html: what it shows, and that plugin text cannot inject markup."""

import pandas as pd

from benchmark.report import cell_summary, target_summary

EVIL = '<script>alert("x")</script>'


def test_index_shows_the_summary_weights_and_probes(bench):
    result = bench("run", "--targets", "addition,product", "--models", "linear,mlp_small", "--seeds", "2", "--epochs", "30")
    html = (result.run_dir / "index.html").read_text()
    for fragment in ("Summary", "Median nmse per split", "weight[a]", "Probe points", "results.parquet", "(9, 90)"):
        assert fragment in html
    assert "http" not in html.replace("http-equiv", "")  # works offline: no external resources


def test_plugin_text_is_escaped(bench, tmp_path):
    plugin = tmp_path / "evil.py"
    plugin.write_text(
        "from benchmark import Box, near_and_far, target\n"
        "D = Box.cube(1, 0.0, 1.0)\n"
        f"@target(domain=D, extrapolation=near_and_far(D, 'low'), description={EVIL!r}, inputs=({EVIL!r},))\n"
        "def evil(x):\n    return 2 * x\n"
    )
    result = bench("run", "--plugin", str(plugin), "--targets", "evil", "--models", "linear", "--seeds", "1")
    assert result.exit_code == 0, result.stderr
    html = (result.run_dir / "index.html").read_text()
    assert EVIL not in html
    assert html.count("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") >= 2  # the description and the input name


def test_aggregation_takes_the_worst_region_and_skips_diverged_seeds():
    rows = []
    for seed, (near, far, status) in enumerate([(0.1, 0.3, "ok"), (0.2, 0.1, "ok"), (float("nan"), float("nan"), "diverged")]):
        for split, kind, nmse in [("interpolation", "interpolation", 0.01 * (seed + 1)), ("near", "extrapolation", near), ("far", "extrapolation", far)]:
            rows.append({"target": "t", "model": "linear", "seed": seed, "split": split, "split_kind": kind, "nmse": nmse, "status": status})
    cells = cell_summary(pd.DataFrame(rows))
    assert cells.loc[0, "extrapolation"] == 0.25  # median of worst regions 0.3 and 0.2
    assert cells.loc[0, "interpolation"] == 0.015
    assert cells.loc[0, "diverged"] == 1 and cells.loc[0, "seeds"] == 3
    summary = target_summary(pd.DataFrame(rows))
    assert summary.loc[0, "best model"] == "linear"
