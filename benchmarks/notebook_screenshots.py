"""Screenshots of the notebooks as a student sees them: JupyterLab in a real (headless) Chromium.

    apt-get install chromium fonts-nanum          # Debian/Ubuntu; any Korean font will do
    .venv/bin/python -m pip install playwright    # drives the browser; no browser download needed
    .venv/bin/python benchmarks/notebook_screenshots.py [--out runs/screenshots]

It executes the getting-started notebook and the week-1 softmax notebook (in
SMOKE mode) into the output folder, starts JupyterLab the way `make
notebook` does (`python -m dlcourse.jupyter`), opens both in Chromium and
saves PNGs: the top of each notebook (Hangul and rendered equations), a
cell's figure output, and the graded-exercise section.  Not part of `make
test`: it needs a browser.
"""
import argparse
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import nbformat
from nbclient import NotebookClient

REPO = pathlib.Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def executed_copy(name, out_dir, smoke):
    """The notebook run top to bottom (its outputs kept), written under ``out_dir``."""
    notebook = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
    if smoke:
        parameters = next(cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", []))
        parameters.source = parameters.source.replace("SMOKE = False", "SMOKE = True")
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
    path = out_dir / f"{name}.ipynb"
    nbformat.write(notebook, path)
    return path


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_jupyterlab(port, token, settings_dir):
    environment = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings_dir)}
    server = subprocess.Popen([sys.executable, "-m", "dlcourse.jupyter", "--no-browser", f"--port={port}",
                               "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}"],
                              cwd=REPO, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=5)
            return server
        except OSError:
            time.sleep(1)
    os.killpg(server.pid, signal.SIGTERM)
    raise SystemExit("JupyterLab did not answer within 120 s")


def shoot(page, url, out_dir, name, sections, equations):
    """Open ``url`` and save one PNG per ``(label, CSS selector to scroll to)``."""
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    if equations:
        page.wait_for_selector("mjx-container", timeout=60_000)  # typeset by MathJax
    page.wait_for_timeout(3000)
    saved = []
    for label, selector in sections:
        if selector:
            page.locator(selector).first.evaluate("element => element.scrollIntoView({block: 'start'})")
            page.wait_for_timeout(1000)
        path = out_dir / f"{name}-{label}.png"
        page.screenshot(path=str(path))
        saved.append(path)
    return saved


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "runs" / "screenshots")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    options = parser.parse_args(argv)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        parser.exit(1, "playwright is not installed: .venv/bin/python -m pip install playwright\n")
    if not pathlib.Path(options.chromium).is_file():
        parser.exit(1, f"no Chromium at {options.chromium}: apt-get install chromium fonts-nanum\n")
    out_dir = options.out.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    if REPO not in out_dir.parents:
        parser.exit(2, "--out must be inside the repository (JupyterLab serves the repository)\n")
    copies = [executed_copy("00_시작하기", out_dir, smoke=False),
              executed_copy("week1_softmax_mnist", out_dir, smoke=True)]
    port, token = free_port(), "screenshots"
    with tempfile.TemporaryDirectory() as settings:
        tracker = pathlib.Path(settings) / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
        tracker.parent.mkdir(parents=True)
        tracker.write_text(json.dumps({"windowingMode": "none"}))  # every cell in the page, to scroll to
        news = pathlib.Path(settings) / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
        news.parent.mkdir(parents=True)
        news.write_text(json.dumps({"fetchNews": "false"}))  # no "official Jupyter news?" pop-up
        server = start_jupyterlab(port, token, settings)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=options.chromium, args=CHROMIUM_FLAGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="ko-KR")
                saved = []
                figure = ("figure", ".jp-RenderedImage img")
                for copy, equations, sections in zip(copies, [False, True], [
                        [("top", None), figure, ("grading", ".jp-RenderedMarkdown h2:has-text('연습 문제와 채점')")],
                        [("top", None), figure, ("exercise", ".jp-RenderedMarkdown h3:has-text('연습 1')")]]):
                    relative = urllib.parse.quote(str(copy.relative_to(REPO)))
                    saved += shoot(page, f"http://127.0.0.1:{port}/lab/tree/{relative}?token={token}",
                                   out_dir, copy.stem, sections, equations)
                browser.close()
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    for path in saved:
        print(path.relative_to(REPO))
    return 0


if __name__ == "__main__":
    sys.exit(main())
