"""A report in a real browser (headless Chromium): no script error, no failed load, no console
message, every image decoded; a screenshot is taken as a reader would see the page. The audit,
books, backtest and stress reports are all opened this way."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

# Put first in the page's head (the report itself carries no script): records uncaught errors,
# failed loads and console errors, and once the page has loaded writes them and each image's
# decoded size on the root element, which --dump-dom prints.
PROBE = """<script>
var seen = [];
window.addEventListener("error", function (e) {
  seen.push(String(e.message || (e.target && e.target.tagName)));
}, true);
window.addEventListener("unhandledrejection", function (e) { seen.push(String(e.reason)); });
var original = console.error;
console.error = function () {
  seen.push(Array.prototype.join.call(arguments, " "));
  original.apply(console, arguments);
};
window.addEventListener("load", function () {
  var root = document.documentElement;
  root.dataset.errors = JSON.stringify(seen);
  root.dataset.images = Array.prototype.map.call(document.images, function (i) {
    return i.id + ":" + i.naturalWidth + "x" + i.naturalHeight;
  }).join(" ");
});
</script>"""


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        reason = "chromium is not installed (Debian: apt-get install -y chromium; .ci/run installs it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the browser test needs headless Chromium: {reason}", pytrace=False)
        pytest.skip(f"browser test skipped: {reason}")
    return found


def open_in_browser(report: Path, tmp_path: Path) -> dict[str, tuple[int, int]]:
    """Loads the report (which must carry no script of its own) with the probe and returns each
    image's decoded size by id; asserts no error and no console message, and takes a
    screenshot next to the report."""
    browser = chromium()
    page = report.read_text()
    assert "<script" not in page
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("<head>", "<head>" + PROBE, 1))
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    shown = subprocess.run(
        [browser, *flags, "--dump-dom", probed.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert shown.returncode == 0, shown.stderr
    root = shown.stdout[shown.stdout.index("<html") :].split(">", 1)[0]
    assert 'data-errors="[]"' in root, root
    images = {}
    for item in root.split('data-images="')[1].split('"')[0].split():
        ident, size = item.split(":")
        width, height = size.split("x")
        images[ident] = (int(width), int(height))
    # Chromium logs every console message of the page as CONSOLE; a report should cause none.
    assert [line for line in shown.stderr.splitlines() if "CONSOLE" in line] == []
    # The page as a reader sees it (kept for a look: the screenshot lands next to the report).
    screenshot = report.with_suffix(".png")
    subprocess.run(
        [browser, *flags, "--window-size=1300,2600", f"--screenshot={screenshot}", report.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert screenshot.stat().st_size > 10_000
    return images


def shows_in_chromium(report: Path, tmp_path: Path) -> None:
    """`report` (with an image of id `plot`) loads cleanly and its plot decodes."""
    width, height = open_in_browser(report, tmp_path)["plot"]
    assert width > 0 and height > 0
