"""An HTML report opened in headless Chromium: uncaught errors, console errors and each image's
decoded size, as the page saw them once it loaded."""

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


def flags(tmp_path: Path) -> list[str]:
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]


def probe(browser: str, page: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The page (its HTML) loaded with the probe first in its head; --dump-dom's output."""
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("<head>", "<head>" + PROBE, 1))
    return subprocess.run(
        [browser, *flags(tmp_path), "--dump-dom", probed.as_uri()], capture_output=True, text=True, timeout=120
    )
