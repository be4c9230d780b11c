"""Every app page through Streamlit's AppTest, on a real SQLite gallery with real results.

The results come from the real worker and engine (VGG-19 weights included) on tiny jobs, made
once per module; each test works on its own copy of that database.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from conftest import image_bytes, make_image
from nfx.settings import Settings
from nfx.store import open_store
from nfx.worker import WorkerOptions, run_worker

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")
TINY = Settings(size=32, scales=1, steps=2)
SWEPT = [1e2, 1e4]  # style_weight values of the tiny batch


@pytest.fixture(scope="module")
def finished_gallery(tmp_path_factory) -> Path:
    """2 contents × 1 style × 2 style weights, run to completion by a real worker."""
    path = tmp_path_factory.mktemp("gallery") / "nfx.db"
    url = f"sqlite:///{path}"
    store = open_store(url)
    contents = [store.add_image(image_bytes(make_image(48, 32, seed=s)), f"content{s}.png",
                                "content").id for s in (1, 2)]
    style = store.add_image(image_bytes(make_image(40, 40, seed=3)), "style3.png", "style").id
    store.create_batch(contents, [style], TINY, sweep={"style_weight": SWEPT}, name="tiny")
    store.close()
    outcomes = run_worker(url, WorkerOptions(device="cpu", once=True), log=lambda *_: None)
    assert outcomes == {"done": 4}
    return path


def _copy_db(source: Path, target: Path) -> str:
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{source}{suffix}").exists():
            shutil.copy(f"{source}{suffix}", f"{target}{suffix}")
    return f"sqlite:///{target}"


@pytest.fixture
def gallery_url(finished_gallery, tmp_path) -> str:
    return _copy_db(finished_gallery, tmp_path / "nfx.db")


@pytest.fixture
def empty_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'empty.db'}"


def open_page(monkeypatch, url: str, page: str | None = None) -> AppTest:
    """The app on `url`, showing `page`; caches cleared so no store leaks between tests."""
    monkeypatch.setenv("NFX_DATABASE_URL", url)
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(APP, default_timeout=60).run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def click(at: AppTest, label: str) -> AppTest:
    next(b for b in at.button if b.label == label).click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


# --- home ---------------------------------------------------------------------------------


def test_home_adds_sample_images_on_a_fresh_install(monkeypatch, empty_url):
    at = open_page(monkeypatch, empty_url)
    assert at.title[0].value.startswith("NFX")
    assert at.metric[0].label == "Results" and at.metric[0].value == "0"
    click(at, "Add sample images")
    assert at.success[0].value == "Added 6 sample images."
    store = open_store(empty_url)
    assert len(store.list_images("content")) == 2 and len(store.list_images("style")) == 4
    click(at, "Add sample images")  # idempotent: content-addressed
    assert "already" in at.success[0].value


def test_home_shows_recent_results_and_counts(monkeypatch, gallery_url):
    at = open_page(monkeypatch, gallery_url)
    assert {m.label: m.value for m in at.metric}["Results"] == "4"
    assert len(at.image) == 4


# --- gallery ------------------------------------------------------------------------------


def test_gallery_filters_narrow_results(monkeypatch, gallery_url):
    at = open_page(monkeypatch, gallery_url, "pages/gallery.py")
    assert "4 results" in captions(at)
    details = [b for b in at.button if b.label == "Details"]
    assert len(details) == 4

    first_content = open_store(gallery_url).list_images("content")[0].id
    at.multiselect(key="g:content").select(first_content).run()
    assert "2 results" in captions(at)

    at.number_input(key="g:style_weight:lo").set_value(1e3).run()  # generated range filter
    assert "1 result" in captions(at)

    at.multiselect(key="g:status").set_value(["queued"]).run()
    assert "0 results" in captions(at)


def test_gallery_dialog_reruns_with_a_changed_setting(monkeypatch, gallery_url):
    at = open_page(monkeypatch, gallery_url, "pages/gallery.py")
    result_id = int(next(b.key for b in at.button if b.label == "Details").rsplit(":", 1)[1])
    at.button(key=f"g:open:{result_id}").click().run()
    assert at.download_button, "the dialog offers the PNG"
    assert any("Final losses" in c for c in captions(at))

    at.number_input(key=f"rerun:{result_id}:steps").set_value(3).run()
    click(at, "Queue re-run")
    assert at.success[0].value.startswith("Queued job #")

    store = open_store(gallery_url)
    original = store.get_result(result_id).settings
    (queued,) = store.list_jobs(status="queued")
    assert queued.settings.differences(original) == {"steps": (3, original.steps)}


def test_gallery_dialog_tags_and_favourite(monkeypatch, gallery_url):
    at = open_page(monkeypatch, gallery_url, "pages/gallery.py")
    result_id = int(next(b.key for b in at.button if b.label == "Details").rsplit(":", 1)[1])
    at.button(key=f"g:open:{result_id}").click().run()
    at.toggle(key=f"fav:{result_id}").set_value(True).run()
    at.multiselect(key=f"tags:{result_id}").set_value(["keeper"]).run()
    store = open_store(gallery_url)
    assert store.get_result(result_id).favourite
    assert store.get_result(result_id).tags == ("keeper",)


# --- new batch ----------------------------------------------------------------------------


def test_new_batch_queues_the_planned_jobs(monkeypatch, gallery_url):
    at = open_page(monkeypatch, gallery_url, "pages/new_batch.py")
    uploads = [(f"new{s}.png", image_bytes(make_image(40, 30, seed=s)), "image/png")
               for s in (7, 8)]
    at.file_uploader(key="nb:content:upload:0").set_value(uploads).run()
    assert len(at.multiselect(key="nb:content").value) == 2, "uploads are selected"
    style = open_store(gallery_url).list_images("style")[0].id
    at.multiselect(key="nb:style").select(style).run()
    at.number_input(key="nb:size").set_value(32).run()
    at.number_input(key="nb:scales").set_value(1).run()
    at.multiselect(key="nb:sweep").select("steps").run()
    at.text_input(key="nb:steps:values").input("2, 3").run()

    plan = at.dataframe[0].value
    assert len(plan) == 4 and sorted(plan["Steps"]) == ["2", "2", "3", "3"]
    assert {m.label: m.value for m in at.metric}["Jobs"] == "4"
    click(at, "Queue batch")
    assert at.success[0].value.startswith("Queued batch #")

    jobs = open_store(gallery_url).list_jobs(status="queued")
    assert len(jobs) == 4
    assert sorted(j.settings.steps for j in jobs) == [2, 2, 3, 3]
    assert {j.settings.size for j in jobs} == {32}
    assert {j.content_name for j in jobs} == {"new7.png", "new8.png"}


def test_new_batch_sweeps_the_style_loss_and_a_worker_runs_it(monkeypatch, gallery_url):
    """style_loss is a plain choice of Settings, so the page offers it (and its sweep) by
    itself; a worker runs the wasserstein job like any other."""
    at = open_page(monkeypatch, gallery_url, "pages/new_batch.py")
    store = open_store(gallery_url)
    at.multiselect(key="nb:content").select(store.list_images("content")[0].id).run()
    at.multiselect(key="nb:style").select(store.list_images("style")[0].id).run()
    at.number_input(key="nb:size").set_value(32).run()
    at.number_input(key="nb:scales").set_value(1).run()
    at.number_input(key="nb:steps").set_value(3).run()  # the gallery's own jobs have 2
    assert at.selectbox(key="nb:style_loss").options == ["gram", "wasserstein"]
    at.multiselect(key="nb:sweep").select("style_loss").run()
    at.text_input(key="nb:style_loss:values").input("gram, wasserstein").run()
    assert {m.label: m.value for m in at.metric}["Jobs"] == "2"
    click(at, "Queue batch")
    assert at.success[0].value.startswith("Queued batch #")

    outcomes = run_worker(gallery_url, WorkerOptions(device="cpu", once=True),
                          log=lambda *_: None)
    assert outcomes == {"done": 2}
    done = [j for j in open_store(gallery_url).list_jobs(status="done")
            if j.settings.steps == 3]
    assert sorted(j.settings.style_loss for j in done) == ["gram", "wasserstein"]


def test_new_batch_refuses_a_bad_upload_and_keeps_the_page(monkeypatch, gallery_url):
    at = open_page(monkeypatch, gallery_url, "pages/new_batch.py")
    style = open_store(gallery_url).list_images("style")[0].id
    at.multiselect(key="nb:style").select(style).run()
    at.number_input(key="nb:size").set_value(64).run()
    good = ("fine.png", image_bytes(make_image(30, 30, seed=9)), "image/png")
    bad = ("broken.png", b"this is not a picture", "image/png")
    at.file_uploader(key="nb:content:upload:0").set_value([bad, good]).run()
    assert not at.exception
    (error,) = at.error
    assert "broken.png" in error.value and "\n" not in error.value
    assert at.multiselect(key="nb:style").value == [style], "other choices survive"
    assert at.number_input(key="nb:size").value == 64
    names = [n for n in at.multiselect(key="nb:content").value]
    assert len(names) == 1, "the good file of the same upload is kept"


def test_new_batch_reports_a_bad_sweep_in_one_line(monkeypatch, gallery_url):
    at = open_page(monkeypatch, gallery_url, "pages/new_batch.py")
    at.multiselect(key="nb:sweep").select("style_weight").run()
    at.text_input(key="nb:style_weight:values").input("1e3, lots").run()
    assert "style_weight" in at.error[0].value
    assert not [b for b in at.button if b.label == "Queue batch"]


# --- queue --------------------------------------------------------------------------------


def test_queue_page_lists_reorders_and_cancels(monkeypatch, gallery_url):
    store = open_store(gallery_url)
    contents = [r.id for r in store.list_images("content")]
    styles = [r.id for r in store.list_images("style")]
    store.create_batch(contents, styles, TINY.with_changes(steps=5))
    first, last = store.list_jobs(status="queued")[0], store.list_jobs(status="queued")[-1]

    at = open_page(monkeypatch, gallery_url, "pages/queue.py")
    assert {m.label: m.value for m in at.metric}["Queued"] == "2"
    assert {m.label: m.value for m in at.metric}["Done"] == "4"
    at.button(key=f"q:front:{last.id}").click().run()
    assert store.list_jobs(status="queued")[0].id == last.id
    at.button(key=f"q:cancel:{first.id}").click().run()
    assert store.get_job(first.id).status == "canceled"
    assert {m.label: m.value for m in at.metric}["Canceled"] == "1"
    assert at.dataframe[0].value["worker"].size == 1, "the worker that ran the results"


# --- compare ------------------------------------------------------------------------------


def test_compare_highlights_the_differing_setting(monkeypatch, gallery_url):
    at = open_page(monkeypatch, gallery_url, "pages/compare.py")
    store = open_store(gallery_url)
    cards = store.query_gallery()
    assert len(at.multiselect(key="c:results").options) == len(cards) == 4
    same_content = [c.result_id for c in cards if c.content_name == "content1.png"]
    at.multiselect(key="c:results").set_value(same_content).run()
    assert any(m.value == "**Differs:** Style weight" for m in at.markdown)
    assert any(c.startswith("Style weight 100") for c in captions(at))
    at.toggle(key="c:only").set_value(True).run()
    assert list(at.dataframe[0].value.index) == ["Style weight"]


def test_compare_batch_grid_by_a_swept_setting(monkeypatch, gallery_url):
    at = open_page(monkeypatch, gallery_url, "pages/compare.py")
    batch_id = at.selectbox(key="c:batch").value
    rows = at.selectbox(key=f"c:rows:{batch_id}")
    assert rows.options == ["Content", "Style", "Style weight"]
    rows.set_value("style_weight").run()
    assert any(c.startswith("2 results") for c in captions(at)), "one cell per weight × style"
    at.selectbox(key=f"c:cols:{batch_id}").set_value("content").run()
    assert any(c.startswith("4 results") for c in captions(at)), captions(at)
    assert at.download_button


def test_gallery_pages_through_many_jobs_one_page_at_a_time(monkeypatch, gallery_url):
    store = open_store(gallery_url)
    contents = [r.id for r in store.list_images("content")]
    style = store.list_images("style")[0].id
    store.create_batch(contents, [style], TINY, sweep={"seed": list(range(1, 16))})  # 30 jobs

    at = open_page(monkeypatch, gallery_url, "pages/gallery.py")
    at.multiselect(key="g:status").set_value(["queued"]).run()
    at.selectbox(key="g:size").set_value(12).run()
    assert "30 results" in captions(at)
    assert len(at.progress) == 12, "only the page shown is fetched and drawn"
    at.pagination(key="g:page").set_value(3).run()
    assert len(at.progress) == 6
    at.multiselect(key="g:content").select(contents[0]).run()  # 15 left: page 3 is gone, 2 shown
    assert "15 results" in captions(at)
    assert len(at.progress) == 3



def test_the_app_and_the_store_never_load_torch():
    """The app only queues and shows work; workers run it. Loading torch in the app's process
    would cost seconds at start and hundreds of MB per server for nothing."""
    check = ("import sys, nfx.services, nfx.store, nfx.queue, nfx.grid, nfx.samples; "
             "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                          check=True, cwd=Path(APP).parent)
    assert done.stdout.strip() == "False"


def test_pages_import_only_streamlit_and_nfx_services():
    """Pages are layout: no SQL, no torch, no store internals."""
    allowed = {"streamlit", "nfx", "nfx.services", "nfx.settings", "pages._widgets",
               "__future__", "math", "runpy", "pathlib", "typing"}
    pages = sorted((Path(APP).parent / "pages").glob("*.py"))
    assert len(pages) >= 5
    for page in pages + [Path(APP)]:
        for node in ast.walk(ast.parse(page.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module]
            else:
                continue
            assert set(names) <= allowed | {"sys"}, f"{page.name} imports {names}"
