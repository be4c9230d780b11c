"""End to end in a real browser: `python -m nfx app` (Streamlit + worker), driven by chromium.

Uploads a content and a style image, queues a 1×1 batch sweeping two seeds at a tiny size
(with a double click: one batch), waits for the worker's results in the gallery, queues the
same plan again (its jobs re-use the results) and checks Home and Gallery show each result
once, opens one by clicking its thumbnail, pages with the arrow keys and closes with Esc,
wipes between two results on Compare, opens a result from the batch grid and downloads the
batch and the grid, reads a downloaded PNG on PNG info, and sees the browser notification of a
batch that finished while the user was on another page, and queues a cell of the New batch
page's feed-forward preview grid. Saves a 1280×800 screenshot of every
page to artifacts/screenshots/. Needs Debian's chromium at /usr/bin/chromium: the test fails, never
skips, without it (CI installs it; never `playwright install`).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from PIL import Image

from conftest import image_bytes, make_image, start_worker, wait_exit, write_auth_file
from nfx.queue import open_queue
from nfx.store import open_store

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(900)]

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
    yield from serve_app(tmp_path, free_port())


def serve_app(tmp_path: Path, port: int, *options: str):
    """`python -m nfx app` with `options` on `port`: yields (base URL, database URL)."""
    log = tmp_path / "app.log"
    url = f"sqlite:///{tmp_path / 'e2e.db'}"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "nfx", "app", "--db", url, "--port", str(port),
             "--device", "cpu", *options], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, process, log)
        yield base, url
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
    for worker in open_queue(url).list_workers():
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


def plan_tiny_seeds(page: Page, base: str, content: Path, style: Path, seeds: str) -> None:
    """On New batch: upload a content and a style picture, and plan them at 32 px, one scale
    of 2 steps, sweeping the seed over `seeds` (the sweep's box sits right under it)."""
    visit(page, base, "new_batch", "Style images")
    for index, picture in enumerate((content, style)):
        page.locator("input[type=file]").nth(index).set_input_files(picture)
        expect(page.get_by_text(picture.name).first).to_be_visible(timeout=30_000)
        settle(page)
    set_number(page, "Size", 32)
    set_number(page, "Scales", 1)
    sweep = page.get_by_role("combobox", name="Sweep these settings")
    sweep.click()
    sweep.fill("Seed")
    sweep.press("Enter")
    settle(page)
    page.keyboard.press("Escape")
    box = page.get_by_label("Seed (sweep)", exact=True)
    box.fill(seeds)
    box.press("Enter")
    settle(page)
    page.get_by_role("tab", name="Optimiser").click()
    set_number(page, "Steps", 2)


NOTIFICATIONS = """
window.__nfxNotifications = [];
window.Notification = class {
  static permission = "granted";
  static requestPermission() { return Promise.resolve("granted"); }
  constructor(title, options) { window.__nfxNotifications.push(options.body); }
};
"""  # the browser's API as a user who allowed notifications has it, recording what is shown


def no_exception(page: Page) -> None:
    """No traceback, no duplicate-key error: the page drew all it had to."""
    expect(page.get_by_test_id("stException")).to_have_count(0)


def go(page: Page, title: str, marker: str) -> None:
    """To another page through the app's own navigation: the same session (page.goto opens
    a new one)."""
    page.get_by_role("link", name=title, exact=True).click()
    expect(page.get_by_text(marker).first).to_be_visible(timeout=60_000)
    settle(page)


def close_dialog(page: Page) -> None:
    """Esc closes the result dialog, and it stays closed on the next page."""
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0, timeout=10_000)
    settle(page)


def scroll_to(page: Page, locator) -> None:
    locator.scroll_into_view_if_needed()
    page.wait_for_timeout(300)


def pictures(folder: Path, prefix: str, seed: int) -> tuple[Path, Path]:
    """A content (64×48) and a style (48×48) picture to upload, made in code."""
    content, style = folder / f"{prefix}-content.png", folder / f"{prefix}-style.png"
    make_image(64, 48, seed=seed).save(content)
    make_image(48, 48, seed=seed + 1).save(style)
    return content, style


def chromium(playwright):
    """Debian's Chromium, headless; screenshots go to SHOTS."""
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install chromium"
    SHOTS.mkdir(parents=True, exist_ok=True)
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def test_upload_queue_run_and_open_in_a_browser(app_server, tmp_path):
    content, style = pictures(tmp_path, "e2e", 21)
    base, url = app_server

    with sync_playwright() as playwright:
        browser = chromium(playwright)
        try:
            context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
            context.add_init_script(NOTIFICATIONS)
            page = context.new_page()
            page.goto(f"{base}/gallery", wait_until="commit")  # a first load on a sub-page
            for _ in range(10):  # no raw list of page files before the navigation takes over
                expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)
                page.wait_for_timeout(200)
            expect(page.get_by_role("link", name="Gallery", exact=True)).to_be_visible(
                timeout=60_000)
            visit(page, base, "", "Add sample images")  # drawn after the sample previews
            expect(page.get_by_test_id("stImage")).to_have_count(6)
            expect(page.get_by_role("img", name="sample-landscape (content)")).to_be_visible()
            expect(page.get_by_text("Deploy")).to_have_count(0)  # a viewer's toolbar
            shot(page, "home-empty")

            plan_tiny_seeds(page, base, content, style, "0 1")  # spaces separate values too
            expect(page.get_by_test_id("stMetricValue").first).to_have_text("2")
            cell = page.get_by_test_id("stImage").filter(has_text="e2e-content × e2e-style")
            expect(cell).to_have_count(1)  # the pair's feed-forward preview, drawn at once
            expect(cell.locator("img")).to_have_js_property("complete", True)
            assert cell.locator("img").evaluate("e => e.naturalWidth") > 100
            scroll_to(page, cell)
            shot(page, "new-batch-previews")
            page.evaluate("window.scrollTo(0, 0)")
            shot(page, "new-batch")
            page.get_by_role("button", name="Queue batch").dblclick()  # a double click
            expect(page.get_by_text("Queued batch B1")).to_be_visible(timeout=30_000)
            settle(page)
            assert len(open_queue(url).list_batches()) == 1, "one batch for one submission"
            # the click's second half may land in a run of its own: "already queued as B1"
            scroll_to(page, page.get_by_text(re.compile("Queued batch B1|already queued as B1")))
            shot(page, "new-batch-queued")

            go(page, "Queue", "Workers")
            no_exception(page)
            shot(page, "queue")

            go(page, "Gallery", "Filters")  # it refreshes itself as the results arrive
            expect(page.get_by_text("2 results", exact=True)).to_be_visible(timeout=150_000)
            settle(page)
            shot(page, "gallery")

            # The same plan again from the kept form (another name: another submission):
            # its jobs re-use the results, and every page still shows each result once.
            go(page, "New batch", "Style images")
            expect(page.get_by_test_id("stMetricValue").first).to_have_text("2")
            name = page.get_by_label("Batch name", exact=True)
            name.fill("the same again")
            name.press("Enter")
            settle(page)
            page.get_by_role("button", name="Queue batch").click()
            expect(page.get_by_text("2 already done")).to_be_visible(timeout=30_000)
            go(page, "Home", "First steps")
            no_exception(page)
            results = page.get_by_test_id("stMetric").filter(has_text="Results")
            expect(results.get_by_test_id("stMetricValue")).to_have_text("2")
            shot(page, "home")
            go(page, "Gallery", "Filters")
            no_exception(page)
            expect(page.get_by_text("2 results", exact=True)).to_be_visible()

            page.get_by_role("button", name="R2 · e2e-content × e2e-style · Seed 1").click()
            dialog = page.get_by_role("dialog")
            expect(dialog.get_by_role("button", name="Download PNG")).to_be_visible(timeout=30_000)
            expect(dialog.get_by_test_id("stVegaLiteChart").first).to_be_visible(timeout=30_000)
            expect(dialog.get_by_text("R2 · e2e-content × e2e-style · Seed 1")).to_be_visible()
            settle(page)
            shot(page, "result-dialog")
            page.keyboard.press("ArrowRight")  # ← and → page through the results
            expect(dialog.get_by_text("R1 · e2e-content × e2e-style · Seed 0")).to_be_visible(
                timeout=30_000)
            settle(page)
            page.keyboard.press("ArrowLeft")
            expect(dialog.get_by_text("R2 · e2e-content × e2e-style · Seed 1")).to_be_visible(
                timeout=30_000)
            settle(page)
            with page.expect_download() as download:
                dialog.get_by_role("button", name="Download PNG").click()
            assert download.value.suggested_filename.startswith("nfx-R2_")
            png = tmp_path / "R2.png"
            download.value.save_as(png)
            dialog.get_by_text("Re-run with changes").click()
            expect(dialog.get_by_role("button", name="Queue re-run")).to_be_visible()
            dialog.get_by_text("Re-run with changes").scroll_into_view_if_needed()
            settle(page)
            shot(page, "result-dialog-rerun")
            close_dialog(page)  # Esc closes

            go(page, "Queue", "Workers")
            done = page.get_by_test_id("stMetric").filter(has_text="Done")
            expect(done.get_by_test_id("stMetricValue")).to_have_text("4")
            expect(page.get_by_text("B1 batch")).to_be_visible()
            scroll_to(page, page.get_by_text("Recently finished"))
            shot(page, "queue-done")
            page.get_by_role("button", name="R1 · e2e-content × e2e-style · Seed 0").click()
            expect(page.get_by_role("dialog").get_by_role("button", name="Download PNG")
                   ).to_be_visible(timeout=30_000)
            settle(page)
            close_dialog(page)

            go(page, "Compare", "Side by side")
            shot(page, "compare")
            for button in page.get_by_role("button", name="Add").all()[:2]:
                button.click()
                settle(page)
            wipe = page.locator("input.nfx-wipe-range")
            scroll_to(page, wipe)
            wipe.focus()
            for _ in range(10):
                wipe.press("ArrowLeft")
            clip = page.locator("img.nfx-wipe-a").evaluate("e => e.style.clipPath")
            assert clip != "inset(0px 50% 0px 0px)" and "inset" in clip, clip
            shot(page, "compare-wipe")
            page.get_by_role("tab", name="Batch grid").click()
            expect(page.get_by_role("button", name="Download grid (PNG)")).to_be_visible(
                timeout=30_000)
            settle(page)
            shot(page, "compare-grid")
            with page.expect_download() as download:
                page.get_by_role("button", name="Download batch (ZIP)").click()
            archive = zipfile.ZipFile(download.value.path())
            pngs = sorted(n for n in archive.namelist() if n.endswith(".png"))
            assert len(pngs) == 2 and [n.rsplit("_", 1)[1] for n in pngs] == [
                "seed-0.png", "seed-1.png"], pngs
            assert all(n.startswith("R") for n in pngs), "named by the result"
            assert "settings.csv" in archive.namelist()
            with page.expect_download() as download:
                page.get_by_role("button", name="Download grid (PNG)").click()
            assert download.value.suggested_filename == "nfx-B2-grid.png"  # the newest batch
            page.get_by_role("button", name="R1 · e2e-content × e2e-style · Seed 0").click()
            expect(page.get_by_role("dialog").get_by_role("button", name="Download PNG")
                   ).to_be_visible(timeout=30_000)  # a grid cell opens its result
            settle(page)
            close_dialog(page)

            go(page, "PNG info", "NFX PNG")
            page.locator("input[type=file]").set_input_files(png)
            expect(page.get_by_text("This run is in the gallery as R2")).to_be_visible(
                timeout=30_000)
            expect(page.get_by_text("Made by J2 in")).to_be_visible()
            settle(page)
            shot(page, "png-info")

            # A batch that finishes while the user is elsewhere: a toast, and a browser
            # notification (this browser's user allowed them).
            go(page, "New batch", "Style images")
            set_number(page, "Size", 40)
            page.get_by_role("button", name="Queue batch").click()
            expect(page.get_by_text("Queued batch B3")).to_be_visible(timeout=30_000)
            go(page, "Gallery", "Filters")
            page.wait_for_function(
                "window.__nfxNotifications.some(text => text.startsWith('B3 '))",
                timeout=120_000)
            shown = page.evaluate("window.__nfxNotifications")
            assert any(text.startswith("B3 ") and "finished: 2 done" in text
                       for text in shown), shown
            expect(page.get_by_text("4 results", exact=True)).to_be_visible(timeout=30_000)
            no_exception(page)

            # A preview cell's button queues that cell's full optimisation
            go(page, "New batch", "Previews")
            page.get_by_role("button", name="Optimise").first.click()
            expect(page.get_by_text("Queued batch B4")).to_be_visible(timeout=30_000)
            batch = open_queue(url).list_batches()[0]  # the cell, for each swept seed
            assert (batch.id, batch.job_count) == (4, 2)
            no_exception(page)
        finally:
            browser.close()


def paint_stroke(page: Page, canvas, points) -> None:
    """A brush stroke through `points` (canvas pixels), as a mouse drag."""
    box = canvas.bounding_box()
    assert box is not None, "the canvas is on screen"
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=4)
    page.mouse.up()
    settle(page)


def test_regions_painted_and_uploaded_in_a_browser(app_server, tmp_path):
    """Issue #23 in a real browser: a mask painted over one photo on the canvas, another
    photo's mask uploaded, each colour given a style or "Keep photo"; both masked jobs run
    and their results show their masks."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    base, url = app_server
    store = open_store(url)
    photos = [store.add_image(image_bytes(make_image(96, 64, seed=s)), f"photo{s}.png",
                              "content") for s in (31, 32)]
    for s in (33, 34):
        store.add_image(image_bytes(make_image(48, 48, seed=s)), f"paint{s}.png", "style")
    mask = tmp_path / "uploaded-mask.png"
    picture = Image.new("RGB", (96, 64), "#ff0000")
    picture.paste("#0000ff", (48, 0, 96, 64))
    picture.save(mask)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport=VIEWPORT).new_page()
            visit(page, base, "new_batch", "Style images")
            for label, names in (("Content images from the library", ["photo31", "photo32"]),
                                 ("Style images from the library", ["paint33", "paint34"])):
                for name in names:
                    page.get_by_label(label).click()
                    page.get_by_role("option").filter(has_text=name).first.click()
                    settle(page)
                    page.keyboard.press("Escape")
            set_number(page, "Size", 32)
            set_number(page, "Scales", 1)
            page.get_by_role("tab", name="Optimiser").click()
            set_number(page, "Steps", 2)

            page.get_by_text("Regions: a mask per photo").click()
            settle(page)
            photo = page.get_by_role("combobox", name="Photo", exact=True)
            photo.click()
            page.get_by_role("option", name="photo31.png").click()
            settle(page)
            use = page.get_by_role("button", name="Use this painting as the mask")
            expect(use).to_be_disabled()  # nothing painted yet
            canvas = page.locator("canvas").last
            canvas.evaluate("e => e.scrollIntoView({block: 'center'})")  # clear of the header
            page.wait_for_timeout(1000)
            paint_stroke(page, canvas, [(20 + (i % 2) * 200, 60 + i * 12) for i in range(20)])
            expect(use).to_be_enabled()  # the stroke reached the app
            page.get_by_text("Blue", exact=True).click()
            settle(page)
            paint_stroke(page, canvas, [(290 + (i % 2) * 200, 60 + i * 12) for i in range(20)])
            shot(page, "new-batch-regions-painting")
            use.click()
            settle(page)
            expect(page.get_by_text("photo31-mask.png over photo31.png")).to_be_visible()
            scroll_to(page, page.get_by_role("button", name="Remove mask"))
            shot(page, "new-batch-regions-assigned")

            photo.evaluate("e => e.scrollIntoView({block: 'center'})")
            photo.click()
            page.get_by_role("option", name="photo32.png").click()
            settle(page)
            page.get_by_role("tab", name="Upload a mask").click()
            page.locator("input[type=file]").last.set_input_files(mask)
            expect(page.get_by_text("uploaded-mask.png over photo32.png")).to_be_visible(
                timeout=30_000)
            settle(page)
            expect(page.get_by_text("2 jobs").or_(page.get_by_test_id("stMetricValue")
                                                  .filter(has_text="2"))).to_have_count(1)
            page.get_by_role("button", name="Queue batch").click()
            expect(page.get_by_text("Queued batch B1")).to_be_visible(timeout=30_000)
            no_exception(page)
            jobs = open_queue(url).list_jobs()
            assert len(jobs) == 2 and all(j.regions is not None for j in jobs), jobs
            painted = next(j for j in jobs if j.content_id == photos[0].id)
            assert painted.mask_name == "photo31-mask.png"
            colours = {r.colour: r.styles for r in painted.regions.regions}
            assert colours.pop("#ffffff") == (), "the unpainted area keeps the photo"
            assert sorted(colours.values()) == [(1,), (2,)], colours

            wait = time.monotonic() + 300
            while time.monotonic() < wait and any(
                    j.status != "done" for j in open_queue(url).list_jobs()):
                time.sleep(1)
            assert all(j.status == "done" for j in open_queue(url).list_jobs())
            go(page, "Gallery", "Filters")
            expect(page.get_by_text("(regions)").first).to_be_visible(timeout=30_000)
            page.get_by_role("button", name=re.compile("photo31")).first.click()
            expect(page.get_by_role("img", name="mask: photo31-mask.png")).to_be_visible(
                timeout=30_000)
            settle(page)
            shot(page, "gallery-result-with-regions")
            no_exception(page)
        finally:
            browser.close()


# --- sign-in (#24): a real OpenID Connect provider, people and what each may do ---------------

ALICE, BOB, CAROL = "alice@example.org", "bob@example.org", "carol@example.org"  # carol: admin


@pytest.fixture
def provider():
    """A real OpenID Connect provider on a loopback port (oidc-provider-mock: a server made
    for tests, whose sign-in page offers these three people): its port."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port", str(port),
         *[arg for person in (ALICE, BOB, CAROL) for arg in ("--user", person)]],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metadata = f"http://127.0.0.1:{port}/.well-known/openid-configuration"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(metadata, timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("the OpenID Connect provider did not start")
                time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def shared_app(tmp_path, provider):
    """The app with sign-in by that provider (carol an admin), no worker of its own: the
    test runs one when it wants jobs done, so that jobs wait to be canceled first."""
    port = free_port()
    auth = write_auth_file(tmp_path / "auth.toml", port, provider, admins=(CAROL,))
    yield from serve_app(tmp_path, port, "--auth", str(auth), "--workers", "0")


def sign_in(browser, base: str, email: str) -> Page:
    """A person of their own (a browser context: their own cookies) through the provider's
    sign-in page, back on the app's Home page."""
    page = browser.new_context(viewport=VIEWPORT).new_page()
    page.goto(base)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name=email, exact=True).click()  # the provider's own form
    expect(page.get_by_text(f"Signed in as {email}")).to_be_visible(timeout=60_000)
    settle(page)
    return page


PICTURES = [r"data:image/(png|jpeg)", r"(?<!static)/media/"]  # thumbnails, Streamlit's media


def only_the_sign_in_page(page: Page, base: str, path: str, secrets: list[str]) -> None:
    """The page at `path` is the sign-in page, and its HTML holds no picture and none of
    `secrets` (patterns)."""
    page.goto(f"{base}/{path}")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=60_000)
    settle(page)
    expect(page.get_by_role("link", name="Gallery", exact=True)).to_have_count(0)
    expect(page.get_by_test_id("stMetric")).to_have_count(0)
    html = page.content()
    leaked = [s for s in secrets + PICTURES if re.search(s, html)]
    assert not leaked, f"/{path} shows {leaked} to a signed-out visitor"


def open_page_as(page: Page, url: str) -> int:
    """The HTTP status of `url` fetched with this person's cookies."""
    return page.context.request.get(url).status


def toast(page: Page, text: str) -> None:
    expect(page.get_by_test_id("stToast").filter(has_text=text)).to_be_visible(timeout=30_000)


def test_people_sign_in_and_may_change_only_their_own_work(shared_app, tmp_path):
    content, style = pictures(tmp_path, "alices", 31)
    base, url = shared_app

    with sync_playwright() as playwright:
        browser = chromium(playwright)
        try:
            visitor = browser.new_context(viewport=VIEWPORT).new_page()
            only_the_sign_in_page(visitor, base, "", [])
            shot(visitor, "sign-in")

            # alice queues a batch of three seeds; with no worker yet they wait
            alice = sign_in(browser, base, ALICE)
            shot(alice, "signed-in-home")
            plan_tiny_seeds(alice, base, content, style, "0 1 2")
            alice.get_by_role("button", name="Queue batch").click()
            expect(alice.get_by_text("Queued batch B1: 3 jobs")).to_be_visible(timeout=30_000)
            settle(alice)
            shot(alice, "new-batch-signed-in")
            assert {j.owner for j in open_queue(url).list_jobs()} == {ALICE}

            # bob sees her jobs with her name; his cancel is refused in one line
            bob = sign_in(browser, base, BOB)
            go(bob, "Queue", "Workers")
            expect(bob.get_by_text(f"queued by {ALICE}").first).to_be_visible()
            shot(bob, "queue-signed-in")
            bob.locator(".st-key-q-cancel-1 button").click()
            toast(bob, f"J1 belongs to {ALICE}; only they or an admin can cancel it")
            bob.locator(".st-key-q-front-3 button").click()
            toast(bob, f"J3 belongs to {ALICE}; only they or an admin can reorder it")
            assert [j.status for j in open_queue(url).list_jobs()] == ["queued"] * 3

            # carol, an admin, may
            carol = sign_in(browser, base, CAROL)
            expect(carol.get_by_text(f"Signed in as {CAROL} · admin")).to_be_visible()
            go(carol, "Queue", "Workers")
            carol.locator(".st-key-q-cancel-3 button").click()
            canceled = carol.get_by_test_id("stMetric").filter(has_text="Canceled")
            expect(canceled.get_by_test_id("stMetricValue")).to_have_text("1", timeout=30_000)
            scroll_to(carol, carol.get_by_text("Canceled", exact=True).last)
            shot(carol, "queue-admin-canceled")
            assert open_queue(url).get_job(3).status == "canceled"

            wait_exit(start_worker(url, "--once"), 300)  # J1 and J2 run: R1, R2

            # bob sees alice's results under her name, stars one for himself, and his
            # delete of her result is refused in one line
            go(bob, "Gallery", "Filters")
            expect(bob.get_by_text("2 results", exact=True)).to_be_visible(timeout=60_000)
            expect(bob.get_by_text(f"queued by {ALICE}")).to_have_count(2)
            shot(bob, "gallery-signed-in")
            bob.get_by_role("button", name=re.compile(r"^R1 · alices-content")).click()
            dialog = bob.get_by_role("dialog")
            expect(dialog.get_by_text(f"queued by {ALICE}")).to_be_visible(timeout=30_000)
            settle(bob)
            media = dialog.get_by_test_id("stImage").first.locator("img").get_attribute("src")
            dialog.get_by_text("Favourite").click()
            settle(bob)
            shot(bob, "result-dialog-signed-in")
            dialog.get_by_role("button", name="Delete result…").click()
            settle(bob)
            dialog.get_by_role("button", name="Delete for good").click()
            expect(dialog.get_by_text(f"R1 belongs to {ALICE}; only they or an admin can "
                                      "delete it")).to_be_visible(timeout=30_000)
            settle(bob)
            shot(bob, "delete-refused")
            store = open_queue(url).store
            assert store.get_result(1).owner == ALICE
            assert store.get_result(1, viewer=BOB).favourite  # his star, not hers
            assert not store.get_result(1, viewer=ALICE).favourite

            # carol deletes it
            go(carol, "Gallery", "Filters")
            expect(carol.get_by_text("2 results", exact=True)).to_be_visible(timeout=60_000)
            carol.get_by_role("button", name=re.compile(r"^R1 · alices-content")).click()
            dialog = carol.get_by_role("dialog")
            dialog.get_by_role("button", name="Delete result…").click()
            settle(carol)
            dialog.get_by_role("button", name="Delete for good").click()
            toast(carol, "Result deleted.")
            assert store.count_results() == 1
            for title, marker, name in (("Compare", "Side by side", "compare-signed-in"),
                                        ("PNG info", "NFX PNG", "png-info-signed-in")):
                go(carol, title, marker)
                no_exception(carol)
                shot(carol, name)

            # signed out: every page is the sign-in page, and none shows the gallery's data
            secrets = ["alices-content", "alices-style", ALICE, "R2 ·", "B1", "queued by",
                       "Results"]
            for path in ("", "gallery", "queue", "new_batch", "compare", "png_info"):
                only_the_sign_in_page(visitor, base, path, secrets)
            assert media and media.startswith(f"{base}/media/"), media
            with pytest.raises(urllib.error.HTTPError) as refused:  # no cookie: no picture
                urllib.request.urlopen(media)
            assert refused.value.code == 403
            assert open_page_as(bob, media) == 200  # his own cookie: the same URL serves
            alice.get_by_role("button", name="Sign out").click()
            alice.get_by_role("button", name="End session").click()  # the provider's too
            expect(alice.get_by_role("button", name="Sign in")).to_be_visible(timeout=60_000)
            only_the_sign_in_page(alice, base, "gallery", secrets)
        finally:
            browser.close()
