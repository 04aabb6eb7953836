"""The HTML report: what it says, that it is self-contained, and that plugin text is escaped."""

import re

import pandas as pd
import pytest

from benchmark.report.tables import VERDICTS, cell_summary, target_summary, verdict
from benchmark.store import TABLES

EVIL_DESCRIPTION = '<script>alert("description")</script>'


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """One small real run shared by the tests of this module."""
    from click.testing import CliRunner
    from conftest import Invocation

    from benchmark.cli import cli

    out = tmp_path_factory.mktemp("reports")
    result = CliRunner().invoke(
        cli, ["run", "--targets", "addition,product,sine", "--models", "linear,mlp_small", "--seeds", "2", "--out", str(out)]
    )
    invocation = Invocation(result.exit_code, result.stdout, result.stderr)
    assert invocation.exit_code == 0, invocation.stderr
    return invocation


def verdict_rows(html: str) -> dict[str, str]:
    """target -> the verdict cell of the index's verdict table."""
    section = html.split("<h2>Verdict", 1)[1].split("<h2>", 1)[0]
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", section, re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        if cells:
            target = re.sub(r"<[^>]+>", "", cells[0])
            rows[target] = next(c for c in cells if c in VERDICTS.values())
    return rows


def test_pdfs_are_written_when_asked(report, bench, tmp_path):
    """Without --pdf the report says how to get them; `bench report --pdf` adds one beside every SVG, linked."""
    run = report.run_dir
    assert not list((run / "figures").glob("*.pdf"))
    assert "bench report --pdf" in (run / "index.html").read_text()
    out = tmp_path / "with-pdf"
    result = bench("report", str(run), "--out", str(out), "--pdf")
    assert result.exit_code == 0, result.stderr
    svgs = sorted(p.stem for p in (out / "figures").glob("*.svg"))
    assert svgs == sorted(p.stem for p in (out / "figures").glob("*.pdf")) and len(svgs) >= 8
    assert all((out / "figures" / f"{stem}.pdf").read_bytes().startswith(b"%PDF") for stem in svgs)
    page = (out / "targets" / "product.html").read_text()
    assert 'href="../figures/product-learning.pdf"' in page
    assert "bench report --pdf" not in (out / "index.html").read_text()


def test_verdicts_say_where_the_linear_unit_succeeds_and_fails(report):
    html = (report.run_dir / "index.html").read_text()
    verdicts = verdict_rows(html)
    assert verdicts["addition"] == "exact everywhere"
    assert verdicts["product"] == "fails"
    assert verdicts["sine"] == "fails"
    # The article's question, answered in the table: (9, 90) -> 99.
    assert re.search(r"f\(9, 90\) = 99(\.0+)? \(99\)", html)
    assert "w = (1.0000, 1.0000), b = " in html and "w = (1, 1), b = 0" in html


def test_every_page_figure_and_table_is_written(report):
    run = report.run_dir
    for stem in ("addition", "product", "sine"):
        page = (run / "targets" / f"{stem}.html").read_text()
        assert f"<h1>{stem}</h1>" in page
        assert page.count("<svg") >= 2  # predictions and learning curves, embedded
        assert "Metrics per model and split" in page
        for figure in ("predictions", "learning"):
            path = run / "figures" / f"{stem}-{figure}.svg"
            assert path.stat().st_size > 1000, path
            assert f'href="../figures/{stem}-{figure}.svg"' in page
    index = (run / "index.html").read_text()
    for split in ("interpolation", "extrapolation"):
        assert (run / "figures" / f"heatmap-{split}.svg").stat().st_size > 1000
        assert f'href="figures/heatmap-{split}.svg"' in index
    for table in TABLES:
        csv = pd.read_csv(run / "csv" / f"{table}.csv")
        stored = report.table(table)
        assert len(csv) == len(stored) and list(csv.columns) == list(stored.columns)
        numbers = [c for c in stored.columns if stored[c].dtype.kind in "fi"]
        pd.testing.assert_frame_equal(csv[numbers], stored[numbers], check_dtype=False, obj=table)  # every digit
        assert f'href="csv/{table}.csv"' in index and f'href="{table}.parquet"' in index
    assert 'href="targets/addition.html"' in index


def test_figures_carry_titles_labels_and_legends(report):
    svg = (report.run_dir / "figures" / "sine-predictions.svg").read_text()
    for text in ("sine: predictions", "training domain", "true function", "linear", "mlp_small",
                 "distance from the training domain", "Absolute error against distance"):
        assert text in svg, text
    heatmap = (report.run_dir / "figures" / "heatmap-extrapolation.svg").read_text()
    assert "normalised MSE" in heatmap and "Extrapolation error" in heatmap


def test_pages_are_self_contained(report):
    run = report.run_dir
    for page in [run / "index.html", *(run / "targets").glob("*.html")]:
        html = page.read_text()
        # No resource is fetched from anywhere: every src/href is relative or a data: URI.
        for link in re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', html):
            assert not re.match(r"^(https?:|//|/|file:)", link), (page.name, link)
        assert "url(http" not in html and "@import" not in html
        assert str(run) not in html  # no absolute local path
        assert "<script" not in html


def test_colours_are_the_same_model_in_every_figure(report):
    """A model keeps its colour across the figures of a run (lines carry a gid naming their model)."""
    def colour_of(svg: str, gid: str) -> str:
        group = svg.split(f'<g id="{gid}">', 1)[1]
        return re.search(r"stroke: (#[0-9a-f]{6})", group).group(1)

    figures = report.run_dir / "figures"
    read = {name: (figures / f"{name}.svg").read_text() for name in ("addition-predictions", "sine-predictions", "product-learning")}
    linear = {
        colour_of(read["addition-predictions"], "prediction linear"),
        colour_of(read["sine-predictions"], "prediction linear"),
        colour_of(read["sine-predictions"], "error linear"),
        colour_of(read["product-learning"], "loss linear"),
    }
    assert len(linear) == 1
    assert colour_of(read["sine-predictions"], "prediction mlp_small") not in linear


def test_plugin_names_and_descriptions_are_escaped(bench, tmp_path):
    plugin = tmp_path / "evil.py"
    plugin.write_text(
        "from benchmark import Box, Target, near_and_far, target_family\n"
        f"@target_family(description={EVIL_DESCRIPTION!r})\n"
        "def evil(tag: str = 'plain') -> Target:\n"
        "    d = Box.cube(1, 0.0, 1.0)\n"
        f"    return Target(fn=lambda x: 2 * x, domain=d, extrapolation=near_and_far(d, 'low'), description={EVIL_DESCRIPTION!r},\n"
        "                  inputs=(tag,))\n"
    )
    name = "evil[tag=<b>bold</b>]"
    result = bench("run", "--plugin", str(plugin), "--targets", name, "--models", "linear", "--seeds", "1", "--epochs", "5")
    assert result.exit_code == 0, result.stderr
    pages = [result.run_dir / "index.html", *(result.run_dir / "targets").glob("*.html")]
    assert len(pages) == 2
    for page in pages:
        html = page.read_text()
        assert "<b>bold</b>" not in html and EVIL_DESCRIPTION not in html
        assert "&lt;b&gt;bold&lt;/b&gt;" in html
        assert "&lt;script&gt;alert(" in html


def test_report_rebuilds_the_same_pages_without_retraining(report, bench):
    index = report.run_dir / "index.html"
    before = sorted(p.name for p in (report.run_dir / "figures").iterdir())
    index.unlink()
    rebuilt = bench("report", str(report.run_dir))
    assert rebuilt.exit_code == 0, rebuilt.stderr
    assert index.is_file()
    assert sorted(p.name for p in (report.run_dir / "figures").iterdir()) == before


def test_verdict_thresholds():
    assert verdict(1e-9, 1e-8) == "exact everywhere"
    assert verdict(1e-9, 0.5) == "fits inside the range only"
    assert verdict(5e-3, 5e-3) == "fits inside the range only"
    assert verdict(0.2, 0.1) == "fails"
    assert verdict(float("nan"), float("nan")) == "undefined (constant target)"


def test_aggregation_takes_the_worst_region_and_skips_diverged_seeds():
    rows = []
    for seed, (near, far, status) in enumerate([(0.1, 0.3, "ok"), (0.2, 0.1, "ok"), (float("nan"), float("nan"), "diverged")]):
        for split, kind, nmse in [("interpolation", "interpolation", 0.01 * (seed + 1)), ("near", "extrapolation", near), ("far", "extrapolation", far)]:
            rows.append({"target": "t", "model": "linear", "seed": seed, "split": split, "split_kind": kind, "nmse": nmse,
                         "mse": nmse, "initial_mse": 0.5, "status": status})
    cells = cell_summary(pd.DataFrame(rows))
    assert cells.loc[0, "extrapolation"] == 0.25  # median of the worst regions, 0.3 and 0.2
    assert cells.loc[0, "interpolation"] == 0.015
    assert cells.loc[0, "extrapolation q25"] == pytest.approx(0.225)
    assert cells.loc[0, "diverged"] == 1 and cells.loc[0, "seeds"] == 3
    # NALU score: 100 x mse / the untrained error (0.5), same worst-region and median rules.
    assert cells.loc[0, "nalu extrapolation"] == pytest.approx(50.0)
    summary = target_summary(pd.DataFrame(rows), "linear")
    assert summary.loc[0, "best model"] == "linear"


@pytest.mark.parametrize("targets, models", [(1, 1), (300, 20)])
def test_figures_fit_their_labels_at_any_size_without_a_warning(tmp_path, targets, models):
    """Every text of the heatmap and the success figures lies inside its figure, and matplotlib says nothing."""
    import warnings

    import numpy as np

    from benchmark.report.figures import heatmap, save, success_figure

    rng = np.random.default_rng(0)
    labels = [f"weighted_sum[n={i},scale={i % 7}]" for i in range(targets)]
    names = [f"mlp[width={8 * (j + 1)},depth=2,act=tanh]" for j in range(models)]
    cells = pd.DataFrame([(t, m, 10 ** rng.uniform(-14, 3)) for t in labels for m in names],
                         columns=["target", "model", "extrapolation"])
    summary = cells.assign(**{"success rate": 0.5, "success low": 0.2, "success high": 0.8})
    shown = labels[:36]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figures = [heatmap(cells, "extrapolation", labels, names, pd.DataFrame("ok", index=labels, columns=names)),
                   success_figure(summary[summary["target"].isin(shown)], shown, names, {})]
        for index, fig in enumerate(figures):
            save(fig, tmp_path, f"figure-{index}")  # lays it out
            # What the figure draws (its texts included, and only the ticks inside the axes' limits),
            # against the figure itself. Two pixels of slack: a text's box reaches the font's full descent
            # below the baseline, where constrained layout lets an axis label's box overhang by 1.3 pixels.
            drawn, box = fig.get_tightbbox(fig.canvas.get_renderer()), fig.bbox
            assert drawn.x0 >= -2 / fig.dpi and drawn.y0 >= -2 / fig.dpi, (index, drawn.bounds, box.bounds)
            assert drawn.x1 <= box.width / fig.dpi + 2 / fig.dpi and drawn.y1 <= box.height / fig.dpi + 2 / fig.dpi, (index, drawn)
    # The success figure's bars stand side by side, each model's within its target's slot.
    bars = [patch.get_width() for patch in figures[1].axes[0].patches]
    assert len(bars) == len(shown) * models and max(bars) == pytest.approx(0.8 / models)
