"""Feed-forward previews benchmark (issue #21): a cell against an optimisation, a queue of
preview jobs against rendering them in one process, and the New batch page's preview grid in a
real browser. Every ratio is measured in this run.

1. A 512 px feed-forward cell (median of 5 after a warm-up, each with its style vector
   computed afresh) against the default optimisation
   of the same pair (one run): target <= 1/50.
2. 100 preview jobs (5 contents × 4 paintings × 5 strengths, 512 px) through one worker
   against rendering the same 100 in one process: target >= 80% of the in-process rate. The
   worker's time runs from its first claim to its last result (claims, loading, PNG, thumbnail
   and store included; the process start and the torch import before its first claim not).
3. The New batch page with 4 contents × 4 paintings picked (by "Duplicate" on the Queue page):
   seconds from the click until all 16 preview cells are drawn in Chromium, against one
   cell's time: target <= 20×.

    python bench/bench_previews.py [--skip-browser] [--jobs 100]
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nfx.feedforward.network import forget_style_vectors  # noqa: E402
from nfx.feedforward.runs import feedforward_run  # noqa: E402
from nfx.images import load_image  # noqa: E402
from nfx.queue import Queue  # noqa: E402
from nfx.queue.worker import WorkerOptions, run_worker  # noqa: E402
from nfx.settings import Settings  # noqa: E402
from nfx.store import open_store  # noqa: E402

IMAGES = ROOT.parent / "shared" / "images"
PHOTOS = ("tubingen.jpg", "astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")
PAINTINGS = ("starry_night.jpg", "the_scream.jpg", "shipwreck.jpg", "kandinsky.jpg")
STRENGTHS = (1.0, 0.9, 0.8, 0.7, 0.6)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def cell_seconds(content, style, rounds: int = 5) -> float:
    preview = Settings(method="feedforward")
    feedforward_run(content, [style], preview)  # warm-up: sessions load once per process
    times = []
    for _ in range(rounds):
        forget_style_vectors()  # a cell as a new pairing costs it: the predictor included
        started = time.perf_counter()
        feedforward_run(content, [style], preview)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def optimisation_seconds(content, style) -> float:
    from nfx.engine import Engine

    engine = Engine("cpu")
    started = time.perf_counter()
    engine.stylize(content, [style], Settings())
    return time.perf_counter() - started


def preview_jobs(count: int) -> list[tuple[str, str, float]]:
    cells = list(itertools.product(PHOTOS, PAINTINGS, STRENGTHS))
    return cells[:count]


def in_process_seconds(jobs, pictures) -> float:
    started = time.perf_counter()
    for content, style, strength in jobs:
        feedforward_run(pictures[content], [pictures[style]],
                        Settings(method="feedforward", strength=strength))
    return time.perf_counter() - started


def worker_seconds(jobs, folder: Path) -> float:
    """From the first claim to the last result of one worker draining the jobs."""
    url = f"sqlite:///{folder / 'previews.db'}"
    store = open_store(url)
    queue = Queue(store)
    ids = {name: store.add_image((IMAGES / name).read_bytes(), name,
                                 "content" if name in PHOTOS else "style").id
           for name in {*PHOTOS, *PAINTINGS}}
    for content, style, strength in jobs:
        queue.create_batch([ids[content]], [ids[style]],
                           Settings(method="feedforward", strength=strength))
    store.close()
    outcomes = run_worker(url, WorkerOptions(device="cpu", once=True, calibrate=False,
                                             poll=0.05), log=lambda *_: None)
    assert outcomes == {"done": len(jobs)}, outcomes
    finished = Queue(open_store(url)).list_jobs(status="done", limit=None)
    first = min(job.started_at for job in finished)
    last = max(job.finished_at for job in finished)
    return (last - first).total_seconds()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def browser_grid_seconds(folder: Path) -> float:
    """Seconds from "Duplicate" (a 4 × 4 batch) to 16 drawn preview cells on New batch."""
    from playwright.sync_api import expect, sync_playwright

    url = f"sqlite:///{folder / 'grid.db'}"
    store = open_store(url)
    contents = [store.add_image((IMAGES / n).read_bytes(), n, "content").id for n in PHOTOS[:4]]
    styles = [store.add_image((IMAGES / n).read_bytes(), n, "style").id for n in PAINTINGS]
    Queue(store).create_batch(contents, styles, Settings(size=64, scales=1, steps=2),
                              name="grid")
    store.close()
    port = free_port()
    env = {**os.environ, "NFX_DATABASE_URL": url}
    server = subprocess.Popen(  # the app alone: no worker, so the batch stays queued
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"),
         "--server.address", "127.0.0.1", "--server.port", str(port), "--server.headless",
         "true"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{base}/queue")
            duplicate = page.get_by_role("button", name="Duplicate")
            expect(duplicate).to_be_visible(timeout=60_000)
            page.wait_for_timeout(2000)
            started = time.perf_counter()
            duplicate.click()
            cells = page.get_by_test_id("stImage").filter(has_text=" × ")
            expect(cells).to_have_count(16, timeout=120_000)
            page.wait_for_function(
                """() => [...document.querySelectorAll('[data-testid=stImage]')]
                     .filter(e => e.innerText.includes(' × '))
                     .every(e => { const i = e.querySelector('img');
                                   return i && i.complete && i.naturalWidth > 0; })""",
                timeout=120_000)
            seconds = time.perf_counter() - started
            page.screenshot(path=str(folder / "grid.png"), full_page=True)
            print(f"  screenshot: {folder / 'grid.png'}")
            browser.close()
        return seconds
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--skip-browser", action="store_true")
    parser.add_argument("--skip-optimisation", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="nfx_previews_"))
    pictures = {name: load_image(IMAGES / name) for name in (*PHOTOS, *PAINTINGS)}
    content, style = pictures["tubingen.jpg"], pictures["starry_night.jpg"]

    print("# feed-forward previews benchmark")
    cell = cell_seconds(content, style)
    print(f"one 512 px cell (tubingen × starry_night, median of 5): {cell * 1000:.0f} ms")
    if not args.skip_optimisation:
        full = optimisation_seconds(content, style)
        print(f"the default optimisation of the same pair: {full:.1f} s; cell / optimisation: "
              f"1/{full / cell:.0f} (target <= 1/50)")

    jobs = preview_jobs(args.jobs)
    alone = in_process_seconds(jobs, pictures)
    queued = worker_seconds(jobs, folder)
    print(f"{len(jobs)} preview jobs: in one process {alone:.1f} s "
          f"({len(jobs) / alone:.1f}/s), through one worker {queued:.1f} s "
          f"({len(jobs) / queued:.1f}/s): {alone / queued:.0%} of the in-process rate "
          "(target >= 80%)")

    if not args.skip_browser:
        grid = browser_grid_seconds(folder)
        print(f"4 × 4 preview grid in Chromium: {grid:.1f} s from the click = "
              f"{grid / cell:.1f}× one 512 px cell (target <= 20×)")


if __name__ == "__main__":
    main()
