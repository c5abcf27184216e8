"""Look at a page the way its reader does: Debian's headless Chromium lays it out, and a script run in
the page reports what a reader would see cut off or empty."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

# run in the page after layout; the verdict replaces the body so --dump-dom prints it
_PROBE = """<script>
window.addEventListener("load", () => {
  const out = {problems: [], images: 0, sections: 0, width: document.documentElement.scrollWidth, viewport: window.innerWidth};
  if (document.documentElement.scrollWidth > window.innerWidth + 1) out.problems.push("the page is wider than the window");
  for (const img of document.images) {
    out.images += 1;
    if (!img.complete || img.naturalWidth < 50 || img.getBoundingClientRect().width < 50) out.problems.push("image not shown: " + img.alt);
    if (img.getBoundingClientRect().right > window.innerWidth + 1) out.problems.push("image cut off: " + img.alt);
  }
  for (const s of document.querySelectorAll("section")) {
    out.sections += 1;
    const title = (s.querySelector("h2") || {}).textContent || "(untitled)";
    if (s.innerText.trim().length <= title.length + 10) out.problems.push("empty section: " + title);
    for (const table of s.querySelectorAll("table")) if (table.rows.length < 2) out.problems.push("empty table in: " + title);
  }
  for (const cell of document.querySelectorAll("td, th, h1, h2, p, small, b")) {
    if (cell.scrollWidth > cell.clientWidth + 1 && getComputedStyle(cell).overflow !== "visible") out.problems.push("text cut off: " + cell.textContent.slice(0, 60));
    const r = cell.getBoundingClientRect();
    if (r.right > window.innerWidth + 1) out.problems.push("text beyond the window: " + cell.textContent.slice(0, 60));
  }
  document.body.innerHTML = '<pre id="verdict">' + JSON.stringify(out).replace(/</g, "&lt;") + "</pre>";
});
</script>"""


def chromium() -> str:
    """The browser, or a skip where none is installed (``make test`` installs it and sets CHURNMODEL_BROWSER=required)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CHURNMODEL_BROWSER") == "required":
            pytest.fail("chromium is required (make test installs Debian's chromium when run as root)")
        pytest.skip("no chromium on this machine")
    return found


def look(page: Path, tmp: Path, *, width: int = 1280) -> dict:
    """The page laid out at ``width`` px: {problems, images, sections, ...}, and a screenshot next to it."""
    browser = chromium()
    probe = tmp / f"probe-{page.name}"
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp / 'chromium-profile'}",
              f"--window-size={width},2000", "--hide-scrollbars", "--virtual-time-budget=10000"]
    done = subprocess.run([*common, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
    verdict = re.search(r'<pre id="verdict">(.*?)</pre>', done.stdout, flags=re.S)
    assert verdict, f"the page did not finish loading in chromium: {done.stderr[-1500:]}"
    shot = tmp / f"{page.stem}.png"
    subprocess.run([*common, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120, check=True)
    result = json.loads(verdict.group(1).replace("&lt;", "<").replace("&amp;", "&"))
    result["screenshot"] = shot
    return result
