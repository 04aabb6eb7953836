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
