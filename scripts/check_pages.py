"""Open every chapter of the built book in headless Chromium and check what a reader sees.

For each page: every image loaded (naturalWidth > 0) and at least the chapter's minimum number of
loaded images in the article (MIN_IMAGES: a page whose figures went missing fails), math rendered
by MathJax where the page has math, no figure printed as text ("<Figure size ..."), no Markdown
table printed as a paragraph (pipes and dashes instead of a table), no error
output or traceback shown, no failed request. A screenshot of each page is saved in
_build/screenshots/. Uses Playwright with the system Chromium (Debian's package), never a
downloaded browser. Prints one line per page and a closing 'N passed, N failed' line.

The live page (LIVE_PAGE: the reference generator run with onnxruntime-web) is also used: it must
exist with its model and runtime files, load the model, draw a grid, draw a new one when its
button is clicked and a new interpolation frame when its slider moves, without a console error.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
ERROR_MARKERS = ("Traceback (most recent call last)", "Error in callback", "CellExecutionError",
                 "<Figure size")
# The least number of loaded images (figures, grids, GIFs) each chapter must show; the same
# numbers are asserted on the executed notebooks (tests/book/test_book_outputs.py).
# 03 and 04: +4 each for their reference-run sections (samples, curves, GIF, latent walk);
# 06: the toy panels of the stabilisers and the per-step cost chart;
# 07: the z walk, the arithmetic rows, the nearest-neighbour pairs and their distances
MIN_IMAGES = {"01": 3, "02": 2, "03": 8, "04": 8, "05": 3, "06": 2, "07": 4}
# Pages other than the numbered chapters that must show figures, by file stem: the diagnose
# appendix draws the curves and shows the sample grid of each of its three runs.
MIN_IMAGES_PAGES = {"appendix_diagnose": 6}
LIVE_PAGE = "book/appendix_live.html"
LIVE_FILES = ("_static/live/dcgan64.onnx", "_static/live/live.js", "_static/ort/ort.wasm.min.js",
              "_static/ort/ort-wasm-simd-threaded.mjs", "_static/ort/ort-wasm-simd-threaded.wasm")
# Console errors that jupyter-book 1.x's theme raises on every page, the live one included
# (sphinx-thebe declares THEBE_JS_URL twice; pydata-sphinx-theme reads an empty stored mode):
# not the live page's, so not counted against it.
THEME_CONSOLE_ERRORS = ("Identifier 'THEBE_JS_URL' has already been declared",
                        "Got invalid theme mode")
LIVE_TIMEOUT_MS = 180_000  # model load + 64 samples on one WebAssembly thread of a busy CI box


def min_images(name: str) -> int:
    """The minimum image count for a chapter file or page name such as ``03_keras_dcgans``."""
    stem = Path(name).stem
    return MIN_IMAGES_PAGES.get(stem, MIN_IMAGES.get(Path(name).name[:2], 0))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep CI output to one line per page
        pass


def pages(html: Path) -> list[Path]:
    found = [html / "book" / "intro.html"]
    found += sorted((html / "book").glob("[0-9][0-9]_*.html"))
    found += sorted((html / "book").glob("appendix*.html"))
    return [p for p in found if p.exists()]


def check_page(page, url: str, shot: Path) -> tuple[list[str], int]:
    problems: list[str] = []
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url))
    response = page.goto(url, wait_until="load")
    if response is None or not response.ok:
        return [f"HTTP {response.status if response else 'no response'}"], 0
    page.wait_for_load_state("networkidle")
    has_math = page.evaluate("document.querySelectorAll('.math, span.math, div.math').length")
    if has_math:
        try:
            page.wait_for_function(
                "window.MathJax && MathJax.startup && MathJax.startup.promise && "
                "document.querySelectorAll('mjx-container').length > 0", timeout=20000)
        except Exception:
            problems.append(f"{has_math} math elements but MathJax rendered none")
    broken = page.evaluate("""Array.from(document.images)
        .filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)""")
    if broken:
        problems.append(f"{len(broken)} images did not load: {broken[:3]}")
    loaded = page.evaluate("""Array.from(document.querySelectorAll('main img, article img'))
        .filter(i => i.complete && i.naturalWidth > 0).length""")
    need = min_images(url.rsplit("/", 1)[-1])
    if loaded < need:
        problems.append(f"{loaded} loaded images in the article, expected at least {need}")
    text = page.inner_text("main") if page.query_selector("main") else page.inner_text("body")
    for marker in ERROR_MARKERS:
        if marker in text:
            problems.append(f"page shows {marker!r}")
    # a Markdown table that was printed as a paragraph (an output rendered without table syntax)
    raw_tables = page.evaluate(r"""Array.from(document.querySelectorAll('main p'))
        .map(p => p.innerText).filter(t => /\|\s*[-\u2013\u2014:]+\s*\|/.test(t))
        .map(t => t.slice(0, 60))""")
    if raw_tables:
        problems.append(f"{len(raw_tables)} Markdown tables shown as text: {raw_tables[:2]}")
    err_outputs = page.evaluate(
        "document.querySelectorAll('.output.error, .output.traceback, .cell_output .traceback').length")
    if err_outputs:
        problems.append(f"{err_outputs} error outputs")
    local_failed = [u for u in failed if u.startswith("http://127.0.0.1")]
    if local_failed:
        problems.append(f"failed requests: {local_failed[:3]}")
    page.screenshot(path=str(shot), full_page=False)
    return problems, loaded


_CANVAS = """id => { const c = document.getElementById(id);
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let sum = 0, sq = 0; for (let i = 0; i < d.length; i += 4) { sum += d[i]; sq += d[i] * d[i]; }
    const n = d.length / 4; return [c.toDataURL(), sq / n - (sum / n) ** 2]; }"""


def _rendered(page, done: int) -> None:
    page.wait_for_function(f"window.dcganLive.renders > {done} || window.dcganLive.state === "
                           f"'error'", timeout=LIVE_TIMEOUT_MS)


def check_live(page, url: str, html: Path) -> tuple[list[str], str]:
    """Problems of the live page, and a note of what it did."""
    missing = [f for f in LIVE_FILES if not (html / f).is_file()]
    if missing:
        return [f"missing from the build: {', '.join(missing)}"], ""
    errors: list[str] = []

    def record(text: str) -> None:
        if not any(known in text for known in THEME_CONSOLE_ERRORS):
            errors.append(text)

    page.on("console", lambda m: record(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: record(str(e)))
    page.goto(url, wait_until="load")
    try:
        page.wait_for_function("window.dcganLive && ['ready', 'error'].includes(dcganLive.state)",
                               timeout=LIVE_TIMEOUT_MS)
    except Exception:
        return [f"the generator was not ready after {LIVE_TIMEOUT_MS // 1000} s", *errors], ""
    state, error, renders = page.evaluate("[dcganLive.state, dcganLive.error, dcganLive.renders]")
    if state != "ready":
        return [f"the generator failed: {error}", *errors], ""
    problems: list[str] = []
    grid0, spread0 = page.evaluate(_CANVAS, "live-grid")
    if spread0 < 1.0:
        problems.append(f"the first grid is blank (pixel variance {spread0:.2f})")
    page.click("#live-button")
    _rendered(page, renders)
    grid1, _ = page.evaluate(_CANVAS, "live-grid")
    if grid1 == grid0:
        problems.append("the grid did not change after a click on 'New z'")
    walk0, _ = page.evaluate(_CANVAS, "live-walk")
    renders = page.evaluate("dcganLive.renders")
    page.evaluate("""() => { const s = document.getElementById('live-slider');
        s.value = '100'; s.dispatchEvent(new Event('input')); }""")
    _rendered(page, renders)
    walk1, _ = page.evaluate(_CANVAS, "live-walk")
    if walk1 == walk0:
        problems.append("the interpolation frame did not change when the slider moved")
    if page.evaluate("dcganLive.state") != "ready":
        problems.append(f"the generator failed: {page.evaluate('dcganLive.error')}")
    problems += [f"console error: {e[:200]}" for e in errors]
    status = page.inner_text("#live-status")
    return problems, status


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--html", type=Path, default=ROOT / "_build" / "html")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = ap.parse_args()
    if not (args.html / "index.html").exists():
        print(f"check_pages: {args.html}/index.html not found: build the book first", file=sys.stderr)
        return 1
    if not Path(args.chromium).exists():
        print(f"check_pages: no Chromium at {args.chromium}: apt-get install -y chromium",
              file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    handler = functools.partial(_QuietHandler, directory=str(args.html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    shots = args.html.parent / "screenshots"
    shots.mkdir(exist_ok=True)
    passed = failed = 0
    found = {path.name[:2] for path in pages(args.html)}
    for chapter in sorted(set(MIN_IMAGES) - found):
        failed += 1
        print(f"FAIL book/{chapter}_*.html: page missing from the build")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_FLAGS)
        for path in pages(args.html):
            rel = path.relative_to(args.html).as_posix()
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            problems, loaded = check_page(page, f"{base}/{rel}", shots / (path.stem + ".png"))
            page.close()
            if problems:
                failed += 1
                print(f"FAIL {rel}: " + "; ".join(problems))
            else:
                passed += 1
                print(f"ok   {rel} ({loaded} images)")
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        if (args.html / LIVE_PAGE).is_file():
            problems, note = check_live(page, f"{base}/{LIVE_PAGE}", args.html)
            page.screenshot(path=str(shots / "appendix_live_clicked.png"), full_page=False)
        else:
            problems, note = ["page missing from the build"], ""
        page.close()
        if problems:
            failed += 1
            print(f"FAIL {LIVE_PAGE} (live generator): "
                  + "; ".join(" ".join(p.split())[:300] for p in problems))
        else:
            passed += 1
            print(f"ok   {LIVE_PAGE} (live generator: button and slider redraw; {note})")
        browser.close()
    server.shutdown()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
