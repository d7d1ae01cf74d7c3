"""An HTML report opened in headless Chromium (the audit and stress reports): it loads with no
error and no console message, its plot decodes, and a screenshot of it is taken."""

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


def shows_in_chromium(report: Path, tmp_path: Path) -> None:
    """`report` (a page with no script of its own and an image with id `plot`) in a real browser."""
    found = chromium()
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
    shown = subprocess.run([found, *flags, "--dump-dom", probed.as_uri()], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    root = shown.stdout[shown.stdout.index("<html") :].split(">", 1)[0]
    assert 'data-errors="[]"' in root, root
    width, height = root.split('data-images="plot:')[1].split('"')[0].split("x")
    assert int(width) > 0 and int(height) > 0  # the plot decoded
    # Chromium logs every console message of the page as CONSOLE; the report should cause none.
    assert [line for line in shown.stderr.splitlines() if "CONSOLE" in line] == []
    # The page as a reader sees it (kept for a look: the screenshot lands next to the report).
    screenshot = report.with_suffix(".png")
    subprocess.run(
        [found, *flags, "--window-size=1300,2600", f"--screenshot={screenshot}", report.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert screenshot.stat().st_size > 10_000
