"""End to end in a real browser: `python -m nfx app` (Streamlit + worker), driven by chromium.

Uploads a content and a style image, queues a 1×1 batch sweeping two seeds at a tiny size,
waits for the worker's results in the gallery, opens one by clicking its thumbnail, pages to the
other in the result dialog, downloads the batch as a ZIP from Compare, and saves a 1280×800
screenshot of every page to artifacts/screenshots/. Needs Debian's chromium at /usr/bin/chromium: the test fails, never
skips, without it (CI installs it; never `playwright install`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from conftest import make_image
from nfx.store import open_store

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 800}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(base: str, process: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"nfx app exited early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"nfx app not healthy after {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def app_server(tmp_path):
    """The app and its worker in their own process group, killed as a group at the end."""
    port, log = free_port(), tmp_path / "app.log"
    url = f"sqlite:///{tmp_path / 'e2e.db'}"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "nfx", "app", "--db", url, "--port", str(port),
             "--device", "cpu"], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, process, log)
        yield base
    finally:
        for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(timeout=grace)
                time.sleep(0.5)  # let the workers in the group go too
            except subprocess.TimeoutExpired:
                continue
        try:
            os.killpg(process.pid, signal.SIGKILL)  # anything left in the group
        except ProcessLookupError:
            pass
        stop_leftover_workers(url)


def stop_leftover_workers(url: str) -> None:
    """Workers run in their own session (see nfx.cli.app_cmd); the app stops them, and this
    makes sure of it, by the pids they registered in this test's database."""
    for worker in open_store(url).list_workers():
        for _ in range(20):
            try:
                os.kill(worker.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.5)
        else:
            os.kill(worker.pid, signal.SIGKILL)
            pytest.fail(f"worker {worker.pid} outlived the app")


def settle(page: Page) -> None:
    """Wait until Streamlit has finished running the script (its status widget is gone)."""
    page.wait_for_timeout(500)
    page.wait_for_selector("[data-testid=stStatusWidget]", state="detached", timeout=60_000)
    page.wait_for_timeout(700)


def visit(page: Page, base: str, path: str, marker: str) -> None:
    page.goto(f"{base}/{path}")
    expect(page.get_by_text(marker).first).to_be_visible(timeout=60_000)
    settle(page)


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def set_number(page: Page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    settle(page)


def test_upload_queue_run_and_open_in_a_browser(app_server, tmp_path):
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install chromium"
    SHOTS.mkdir(parents=True, exist_ok=True)
    content, style = tmp_path / "e2e-content.png", tmp_path / "e2e-style.png"
    make_image(64, 48, seed=21).save(content)
    make_image(48, 48, seed=22).save(style)
    base = app_server

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            visit(page, base, "", "Add sample images")  # drawn after the sample previews
            expect(page.get_by_test_id("stImage")).to_have_count(6)
            shot(page, "home-empty")

            visit(page, base, "new_batch", "Style images")
            uploads = page.locator("input[type=file]")
            uploads.nth(0).set_input_files(content)
            expect(page.get_by_text("e2e-content.png").first).to_be_visible(timeout=30_000)
            settle(page)
            page.locator("input[type=file]").nth(1).set_input_files(style)
            expect(page.get_by_text("e2e-style.png").first).to_be_visible(timeout=30_000)
            settle(page)
            set_number(page, "Size", 32)
            set_number(page, "Scales", 1)
            sweep = page.get_by_role("combobox", name="Sweep these settings")
            sweep.click()
            sweep.fill("Seed")
            sweep.press("Enter")
            settle(page)
            page.keyboard.press("Escape")
            page.get_by_role("tab", name="Optimiser").click()
            set_number(page, "Steps", 2)
            seeds = page.get_by_label("Seed (sweep)", exact=True)
            seeds.fill("0, 1")
            seeds.press("Enter")
            settle(page)
            expect(page.get_by_test_id("stMetricValue").first).to_have_text("2")
            page.evaluate("window.scrollTo(0, 0)")
            shot(page, "new-batch")
            page.get_by_role("button", name="Queue batch").click()
            expect(page.get_by_text("Queued batch B1")).to_be_visible(timeout=30_000)
            page.get_by_text("Queued batch B1").scroll_into_view_if_needed()
            shot(page, "new-batch-queued")

            visit(page, base, "queue", "Workers")
            shot(page, "queue")

            deadline = time.monotonic() + 150
            while True:  # the worker loads VGG-19, then runs each job in a second or two
                visit(page, base, "gallery", "Filters")
                if page.get_by_text("2 results", exact=True).count():
                    break
                assert time.monotonic() < deadline, "no results in the gallery after 150 s"
                page.wait_for_timeout(2000)
            shot(page, "gallery")
            page.get_by_role("button", name="R2", exact=True).click()  # the thumbnail itself
            dialog = page.get_by_role("dialog")
            expect(dialog.get_by_role("button", name="Download PNG")).to_be_visible(timeout=30_000)
            expect(dialog.get_by_test_id("stVegaLiteChart").first).to_be_visible(timeout=30_000)
            expect(dialog.get_by_text("R2 · e2e-content × e2e-style · Seed 1")).to_be_visible()
            settle(page)
            shot(page, "result-dialog")
            dialog.get_by_role("button", name="Next").click()  # page to the next result
            expect(dialog.get_by_text("R1 · e2e-content × e2e-style · Seed 0")).to_be_visible(
                timeout=30_000)
            settle(page)
            dialog.get_by_text("Re-run with changes").click()
            expect(dialog.get_by_role("button", name="Queue re-run")).to_be_visible()
            dialog.get_by_text("Re-run with changes").scroll_into_view_if_needed()
            settle(page)
            shot(page, "result-dialog-rerun")
            page.keyboard.press("Escape")

            visit(page, base, "queue", "Workers")
            done = page.get_by_test_id("stMetric").filter(has_text="Done")
            expect(done.get_by_test_id("stMetricValue")).to_have_text("2")
            shot(page, "queue-done")

            visit(page, base, "compare", "Side by side")
            shot(page, "compare")
            page.get_by_role("tab", name="Batch grid").click()
            expect(page.get_by_text("Download grid (PNG)")).to_be_visible(timeout=30_000)
            settle(page)
            shot(page, "compare-grid")
            with page.expect_download() as download:
                page.get_by_role("button", name="Download batch (ZIP)").click()
            archive = zipfile.ZipFile(download.value.path())
            pngs = sorted(n for n in archive.namelist() if n.endswith(".png"))
            assert len(pngs) == 2 and [n.rsplit("_", 1)[1] for n in pngs] == [
                "seed-0.png", "seed-1.png"], pngs
            assert "settings.csv" in archive.namelist()

            visit(page, base, "png_info", "NFX PNG")
            shot(page, "png-info")

            visit(page, base, "", "First steps")
            shot(page, "home")
        finally:
            browser.close()
