"""The report as a reader's browser shows it: headless Chromium, no console error, no request out.

Needs Debian's `chromium` (`.ci/run` installs it); elsewhere the test is
skipped with a reason unless CI is set, where a missing browser fails it.
Screenshots are kept in tests/artifacts/ for a person to look at.
"""

import os
import shutil
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).parent / "artifacts"


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs Debian's chromium for the browser test; .ci/run installs it")
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    return path


def test_report_pages_open_cleanly_in_chromium(bench):
    executable = chromium()
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    result = bench("run", "--targets", "addition,sine", "--models", "linear,mlp_tanh", "--seeds", "2", "--epochs", "30")
    assert result.exit_code == 0, result.stderr
    ARTIFACTS.mkdir(exist_ok=True)

    problems, requests = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--no-first-run", "--disable-sync"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: problems.append(f"failed request: {r.url}"))
        page.on("request", lambda r: requests.append(r.url))
        response = page.goto((result.run_dir / "index.html").as_uri())
        assert response is not None and response.ok
        page.screenshot(path=str(ARTIFACTS / "report-index.png"), full_page=True)
        assert page.locator("svg").count() >= 2  # both heatmaps render inline

        # Follow the verdict table's link, as a reader would.
        page.get_by_role("link", name="sine", exact=True).first.click()
        page.wait_for_load_state("load")
        assert page.url.endswith("/targets/sine.html")
        assert page.locator("h1").inner_text() == "sine"
        assert page.locator("svg").count() >= 2  # predictions and learning curves
        page.screenshot(path=str(ARTIFACTS / "report-target-sine.png"), full_page=True)
        browser.close()

    assert problems == []
    # The pages and nothing else: no CDN, no font, no image fetched from anywhere.
    assert all(url.startswith("file://") for url in requests), requests
    assert (ARTIFACTS / "report-index.png").stat().st_size > 10_000


#: Every text of every inline figure, as the browser lays it out, against the figure's own box.
CUT_TEXT = """() => {
  const cut = [];
  for (const [index, svg] of [...document.querySelectorAll('svg')].entries()) {
    const box = svg.getBoundingClientRect();
    for (const text of svg.querySelectorAll('text')) {
      const r = text.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;
      if (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 || r.bottom > box.bottom + 1)
        cut.push(`figure ${index}: '${text.textContent}'`);
    }
  }
  return cut;
}"""


def test_a_full_single_layer_grid_reads_whole_in_chromium(bench):
    """The 216 cells of the single-layer benchmark's first six units: no label cut, nothing wider than the page."""
    executable = chromium()
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    result = bench("run", "--suite", "arithmetic-single-layer", "--models", "linear,nac,nac_mul,nalu,nau,nmu",
                   "--steps", "20", "--eval-every", "5", "--seeds", "2", "--eval-samples", "64")
    assert result.exit_code == 0, result.stderr
    assert "Warning" not in result.stderr  # no matplotlib or pandas warning reaches the terminal
    assert result.meta()["counts"]["cells"] == 216
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto((result.run_dir / "index.html").as_uri())
        page.screenshot(path=str(ARTIFACTS / "report-single-layer-top.png"))
        assert page.locator("h2").first.inner_text() == "Success on the published criterion"
        assert page.evaluate(CUT_TEXT) == []
        # Wide figures and tables scroll in their own boxes; the page itself never scrolls sideways.
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
        assert page.locator("details summary").first.inner_text() == "36 targets (show the selection)"
        page.locator("h2", has_text="Error of every model").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "report-single-layer-heatmap.png"))
        # Every target page is one click from the index's list by family.
        links = page.locator("ul.families a")
        assert links.count() == 36
        links.nth(7).click()
        page.wait_for_load_state("load")
        assert page.evaluate(CUT_TEXT) == []
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
        browser.close()
