"""Every app page through Streamlit's AppTest, on a real SQLite gallery with real results.

The results come from the real worker and engine (VGG-19 weights included) on tiny jobs, made
once per module; each test works on its own copy of that database.
"""

from __future__ import annotations

import ast
import io
import json
import zipfile
import shutil
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from conftest import image_bytes, make_image
from nfx.images import size_for_long_edge
from nfx.scales import scale_sizes
from nfx.settings import FIELDS, Settings
from nfx.store import open_store
from nfx.store.models import Job, utcnow
from nfx.worker import WorkerOptions, run_worker
from sqlalchemy import update

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
    outcomes = run_worker(url, WorkerOptions(device="cpu", once=True, calibrate=False),
                          log=lambda *_: None)
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


def thumbs(at: AppTest, prefix: str) -> list:
    """The clickable thumbnails (buttons whose label is the picture) on a page."""
    return [b for b in at.button if (b.key or "").startswith(f"thumb-{prefix}")]


def test_home_shows_recent_results_and_counts(monkeypatch, gallery_url):
    at = open_page(monkeypatch, gallery_url)
    assert {m.label: m.value for m in at.metric}["Results"] == "4"
    recent = thumbs(at, "home-")
    assert len(recent) == 4
    recent[0].click().run()
    assert at.download_button, "a recent result opens in the result dialog"


def test_fresh_install_previews_the_samples(monkeypatch, empty_url):
    at = open_page(monkeypatch, empty_url)
    assert len(at.image) == 6
    assert sum("(style)" in i.proto.imgs[0].caption for i in at.image) == 4


# --- gallery ------------------------------------------------------------------------------


def test_gallery_filters_narrow_results(monkeypatch, gallery_url):
    at = open_page(monkeypatch, gallery_url, "pages/gallery.py")
    assert "4 results" in captions(at)
    assert len(thumbs(at, "g-")) == 4

    first_content = open_store(gallery_url).list_images("content")[0].id
    at.multiselect(key="g:content").select(first_content).run()
    assert "2 results" in captions(at)

    weight = at.select_slider(key="g:set:style_weight")  # generated from FIELDS: one per setting
    assert weight.value == (0.0, 1e9), "the whole range, 1e9 included"
    weight.set_value((1e3, 1e9)).run()
    assert "1 result" in captions(at)
    assert at.slider(key="g:set:size").value == (16, FIELDS["size"].maximum)
    assert not [n for n in at.number_input if (n.key or "").startswith("g:")], "no number boxes"

    at.multiselect(key="g:status").set_value(["queued"]).run()
    assert "0 results" in captions(at)


def open_first_result(at: AppTest) -> int:
    """Click the first gallery thumbnail; the id of the result it opened."""
    button = thumbs(at, "g-")[0]
    button.click().run()
    assert not at.exception, [e.value for e in at.exception]
    return int(button.key.rsplit("-", 1)[1])


def test_gallery_thumbnail_opens_the_result_and_pages_through(monkeypatch, gallery_url):
    at = open_page(monkeypatch, gallery_url, "pages/gallery.py")
    order = [int(b.key.rsplit("-", 1)[1]) for b in thumbs(at, "g-")]
    result_id = open_first_result(at)
    assert result_id == order[0]
    assert at.download_button, "the dialog offers the PNG"
    assert any(m.value.startswith(f"**R{result_id} · ") for m in at.markdown)
    assert at.button(key="dlg:prev").disabled and not at.button(key="dlg:next").disabled
    at.button(key="dlg:next").click().run()
    assert any(m.value.startswith(f"**R{order[1]} · ") for m in at.markdown)
    at.button(key="dlg:prev").click().run()
    assert any(m.value.startswith(f"**R{order[0]} · ") for m in at.markdown)


def test_result_dialog_loss_chart_is_log_scaled_per_term(monkeypatch, gallery_url):
    at = open_page(monkeypatch, gallery_url, "pages/gallery.py")
    open_first_result(at)
    chart = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    lines = next(layer for layer in chart["layer"] if layer["mark"]["type"] == "line")
    assert lines["encoding"]["y"]["scale"]["type"] == "log"
    colours = lines["encoding"]["color"]["scale"]["range"]
    assert len(set(colours)) == len(colours) == 4, "one colour per loss term"


def test_a_line_search_spike_does_not_flatten_the_loss_curve():
    from nfx.app.charts import loss_chart, loss_frame
    history = [{"iteration": i, "scale": 0 if i <= 5 else 1, "total": 1e7 / i,
                "content": 1e5 / i, "style": 1e6 / i, "tv": 1e2} for i in range(1, 11)]
    history[3]["total"] = 1e12  # one L-BFGS line-search spike
    chart = loss_chart(history)
    assert chart.clipped == 1 and chart.scale_starts == [6]
    spec = chart.chart.to_dict()
    top = spec["layer"][0]["encoding"]["y"]["scale"]["domain"][1]
    assert top < 1e9, "the axis follows the bulk of the values, not the spike"
    assert set(loss_frame(history)["term"]) == {"total", "content", "style", "tv"}


def test_gallery_dialog_reruns_with_a_changed_setting(monkeypatch, gallery_url):
    at = open_page(monkeypatch, gallery_url, "pages/gallery.py")
    result_id = open_first_result(at)
    assert any("Final losses" in c for c in captions(at))

    at.number_input(key=f"rerun:{result_id}:steps").set_value(3).run()
    click(at, "Queue re-run")
    assert at.success[0].value.startswith("Queued J")

    store = open_store(gallery_url)
    original = store.get_result(result_id).settings
    (queued,) = store.list_jobs(status="queued")
    assert queued.settings.differences(original) == {"steps": (3, original.steps)}


def test_gallery_dialog_tags_and_favourite(monkeypatch, gallery_url):
    at = open_page(monkeypatch, gallery_url, "pages/gallery.py")
    result_id = open_first_result(at)
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
    assert at.success[0].value.startswith("Queued batch B")

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
    assert at.success[0].value.startswith("Queued batch B")

    outcomes = run_worker(gallery_url, WorkerOptions(device="cpu", once=True, calibrate=False),
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


def test_new_batch_reports_a_bad_sweep_in_the_apps_words(monkeypatch, gallery_url):
    at = open_page(monkeypatch, gallery_url, "pages/new_batch.py")
    at.multiselect(key="nb:sweep").select("style_weight").run()
    at.text_input(key="nb:style_weight:values").input("1e3, lots").run()
    (error,) = at.error
    assert error.value == "“lots” is not a number." and "=" not in error.value
    at.text_input(key="nb:style_weight:values").input("").run()
    (error,) = at.error
    assert error.value == "Enter one or more values, separated by commas."
    at.text_input(key="nb:style_weight:values").input("1e12").run()
    assert "1e+12 is outside the allowed range, 0 to 1e+09" in at.error[0].value
    # the Jobs section stays, greyed, and says which field to fix
    assert {m.label: m.value for m in at.metric}["Jobs"] == "—"
    queue = next(b for b in at.button if b.label == "Queue batch")
    assert queue.disabled
    assert at.warning[0].value == "Fix Style weight above to see and queue the jobs."


def test_new_batch_queues_a_style_mix_as_one_style_entry(monkeypatch, gallery_url):
    store = open_store(gallery_url)
    extra = store.add_image(image_bytes(make_image(40, 40, seed=5)), "style5.png", "style").id
    first_style = store.list_images("style")[-1].id
    content = store.list_images("content")[0].id
    at = open_page(monkeypatch, gallery_url, "pages/new_batch.py")
    at.multiselect(key="nb:content").select(content).run()
    at.multiselect(key="nb:style").select(first_style).run()
    at.multiselect(key="nb:mix:styles").set_value([first_style, extra]).run()
    at.text_input(key="nb:mix:weights").input("0.7, 0.3").run()
    at.button(key="nb:mix:add").click().run()
    assert any(m.value == "Mix: **style3 0.7 + style5 0.3**" for m in at.markdown)
    plan = at.dataframe[0].value
    assert list(plan["style"]) == ["style3", "style3 0.7 + style5 0.3"]
    click(at, "Queue batch")
    jobs = sorted(open_store(gallery_url).list_jobs(status=["queued", "done"], limit=None),
                  key=lambda j: j.id)[-2:]
    mix = next(j for j in jobs if len(j.style_ids) == 2)
    assert mix.style_ids == (first_style, extra) and mix.settings.style_blend == (0.7, 0.3)


def test_new_batch_refuses_a_mix_with_the_wrong_number_of_weights(monkeypatch, gallery_url):
    store = open_store(gallery_url)
    extra = store.add_image(image_bytes(make_image(40, 40, seed=5)), "style5.png", "style").id
    at = open_page(monkeypatch, gallery_url, "pages/new_batch.py")
    at.multiselect(key="nb:mix:styles").set_value([store.list_images("style")[-1].id, extra])
    at.text_input(key="nb:mix:weights").input("1, 2, 3").run()
    at.button(key="nb:mix:add").click().run()
    assert at.error[0].value == "Give one weight per style: 2 styles, 3 weights."


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


def test_queue_page_warns_when_no_worker_is_alive(monkeypatch, gallery_url):
    store = open_store(gallery_url)
    at = open_page(monkeypatch, gallery_url, "pages/queue.py")
    assert not at.warning  # nothing waits
    store.create_batch([store.list_images("content")[0].id], [store.list_images("style")[0].id],
                       TINY.with_changes(seed=7))
    at = open_page(monkeypatch, gallery_url, "pages/queue.py")
    (warning,) = at.warning
    assert "No worker is running" in warning.value and "nfx app" in warning.value
    store.queue.register_worker("fresh", "host", 1, "cpu", 60.0)
    at = open_page(monkeypatch, gallery_url, "pages/queue.py")
    assert not at.warning


def test_queue_page_requeues_a_lost_workers_job_and_says_so(monkeypatch, gallery_url):
    store = open_store(gallery_url)
    image_ids = ([store.list_images("content")[0].id], [store.list_images("style")[0].id])
    store.create_batch(*image_ids, TINY.with_changes(seed=8))
    lost = store.queue.claim_next("ghost", lease=0.5)
    store.create_batch(*image_ids, TINY.with_changes(seed=9))
    silent = store.queue.claim_next("quiet", lease=60)
    with store.write() as session:  # its last heartbeat was 40 s ago: 20 s of lease left
        session.execute(update(Job).where(Job.id == silent.job_id).values(
            heartbeat_at=utcnow() - timedelta(seconds=40),
            lease_until=utcnow() + timedelta(seconds=20)))
    time.sleep(0.6)
    at = open_page(monkeypatch, gallery_url, "pages/queue.py")
    # the page itself noticed the expired lease: no other worker was needed
    assert store.get_job(lost.job_id).status == "queued"
    queued = next(m.value for m in at.markdown if m.value.startswith(f"J{lost.job_id} "))
    assert "worker lost at iteration 0 (its worker stopped responding); requeued" in queued
    (warning,) = [w.value for w in at.warning if "not responding" in w.value]
    seconds = int(warning.removeprefix("worker not responding: requeued in ").split()[0])
    assert 10 < seconds <= 20 and warning.endswith("unless it comes back")


def test_queue_page_shows_a_running_jobs_scale_and_time_left(monkeypatch, gallery_url):
    store = open_store(gallery_url)
    content = store.list_images("content")[0]
    settings = TINY.with_changes(seed=11, size=128, scales=3, steps=10)
    store.create_batch([content.id], [store.list_images("style")[0].id], settings)
    claim = store.queue.claim_next("busy", lease=60)
    store.queue.heartbeat(claim, 60, progress=0.4, iteration=23, total_iterations=30,
                          seconds_left=150.0)
    at = open_page(monkeypatch, gallery_url, "pages/queue.py")
    sizes = scale_sizes(size_for_long_edge((content.width, content.height), 128), 3)
    width, height = sizes[2]
    text = f"scale 3 of 3 ({width}×{height}) · iteration 23 of 30 · about 2 min 30 s left"
    assert [p.text for p in at.get("progress")] == [text]


def test_queue_page_lists_canceled_jobs_with_retry(monkeypatch, gallery_url):
    store = open_store(gallery_url)
    store.create_batch([store.list_images("content")[0].id], [store.list_images("style")[0].id],
                       TINY.with_changes(seed=10))
    (job,) = store.list_jobs(status="queued")
    store.cancel_job(job.id)
    at = open_page(monkeypatch, gallery_url, "pages/queue.py")
    assert "Canceled" in [h.value for h in at.subheader]
    at.button(key=f"q:retry:{job.id}").click().run()
    assert store.get_job(job.id).status == "queued"


def test_queue_labels_tell_sweep_jobs_apart_and_count_the_scales_that_run(monkeypatch,
                                                                         gallery_url):
    store = open_store(gallery_url)
    content = next(i for i in store.list_images("content") if i.name == "content1.png")  # 48×32
    style = store.list_images("style")[0].id
    # at 64 px the 3rd scale (16×11) is below the engine's minimum: 2 scales run
    batch = store.create_batch([content.id], [style], TINY.with_changes(size=64, scales=3),
                               sweep={"style_weight": [1e3, 1e4]})
    jobs = store.list_jobs(batch_id=batch.id)
    at = open_page(monkeypatch, gallery_url, "pages/queue.py")
    rows = [m.value for m in at.markdown if m.value.startswith("J")]
    assert rows == [f"J{jobs[0].id} · content1 × style3 · Style weight 1000  \n"
                    ":gray[64 px, 2 scales × 2 steps]",
                    f"J{jobs[1].id} · content1 × style3 · Style weight 10000  \n"
                    ":gray[64 px, 2 scales × 2 steps]"]


def test_queue_action_on_a_finished_job_is_one_line(gallery_url, monkeypatch):
    from nfx.app import queue as view
    monkeypatch.setenv("NFX_DATABASE_URL", gallery_url)
    done = open_store(gallery_url).list_jobs(status="done")[0]
    assert view.cancel_job(done.id) == (f"J{done.id} is done; only queued or running jobs can "
                                        "be canceled")


# --- compare ------------------------------------------------------------------------------


def test_compare_highlights_the_differing_setting(monkeypatch, gallery_url):
    at = open_page(monkeypatch, gallery_url, "pages/compare.py")
    store = open_store(gallery_url)
    cards = store.query_gallery()
    picker = at.multiselect(key="c:results")
    assert len(picker.options) == len(cards) == 4
    assert len(set(picker.options)) == 4, "no two entries read alike"
    assert all(" · Style weight " in o for o in picker.options)
    assert len([b for b in at.button if (b.key or "").startswith("c:pick:")]) == 4
    same_content = [c.result_id for c in cards if c.content_name == "content1.png"]
    at.button(key=f"c:pick:{same_content[0]}").click().run()  # from the thumbnails
    at.button(key=f"c:pick:{same_content[1]}").click().run()
    assert at.multiselect(key="c:results").value == same_content
    assert any(m.value == "**Differs:** Style weight" for m in at.markdown)
    assert any(c.startswith("Style weight 100") for c in captions(at))
    at.toggle(key="c:only").set_value(True).run()
    assert list(at.dataframe[0].value.index) == ["Style weight"]


def test_compare_batch_grid_opens_on_the_axes_that_vary(monkeypatch, gallery_url):
    at = open_page(monkeypatch, gallery_url, "pages/compare.py")
    batch_id = at.selectbox(key="c:batch").value
    rows, columns = at.selectbox(key=f"c:rows:{batch_id}"), at.selectbox(key=f"c:cols:{batch_id}")
    assert rows.options == ["Content", "Style", "Style weight"]
    assert (rows.value, columns.value) == ("content", "style_weight"), "what varies"
    assert any(c.endswith(": 4 results") for c in captions(at)), captions(at)
    at.selectbox(key=f"c:cols:{batch_id}").set_value("content").run()
    assert at.error[0].value.startswith("Content is on two axes")
    at.selectbox(key=f"c:cols:{batch_id}").set_value("").run()
    at.selectbox(key=f"c:split:{batch_id}").set_value("style_weight").run()
    grids = [c for c in captions(at) if "Style weight" in c and c.endswith("2 results")]
    assert len(grids) == 2, "one grid per value of the third axis"
    assert at.download_button


def test_batch_grid_splits_on_a_third_axis_when_three_vary(monkeypatch, gallery_url):
    from nfx.app import compare
    store = open_store(gallery_url)
    contents = [r.id for r in store.list_images("content")]
    styles = [store.list_images("style")[0].id,
              store.add_image(image_bytes(make_image(40, 40, seed=5)), "style5.png", "style").id]
    batch = store.create_batch(contents, styles, TINY, sweep={"style_weight": [1e2, 1e3]})
    monkeypatch.setenv("NFX_DATABASE_URL", gallery_url)
    axes = compare.batch_axes(batch.id)
    assert (axes.rows, axes.columns, axes.split) == ("content", "style", "style_weight")


def test_batch_grid_notes_canceled_cells(monkeypatch, gallery_url):
    from nfx.app import compare
    store = open_store(gallery_url)
    content = store.list_images("content")[0].id
    style = store.list_images("style")[0].id
    batch = store.create_batch([content], [style], TINY, sweep={"style_weight": [1e2, 1e3]})
    queued = store.list_jobs(batch_id=batch.id, status="queued")
    assert len(queued) == 1, "1e2 is re-used from the finished batch"
    store.cancel_job(queued[0].id)
    monkeypatch.setenv("NFX_DATABASE_URL", gallery_url)
    (sheet,) = compare.batch_grids(batch.id, "style_weight")
    assert (sheet.shown, sheet.empty) == (1, 1)


def test_grid_labels_are_never_cut():
    from nfx import grid
    from PIL import Image
    long = "tubingen_neckarfront_evening"
    sheet = grid.contact_sheet({(0, 0): Image.new("RGB", (8, 8))}, [long], [long],
                               cell_size=128)
    assert sheet.width > 128 * 2, "the row label gets the room it needs"
    title = "B12 a batch with a long, long name (48 jobs) · Style weight 1e+04"
    titled = grid.contact_sheet({(0, 0): Image.new("RGB", (8, 8))}, ["a"], ["b"],
                                cell_size=128, title=title)
    assert titled.width > 128 * 4, "a narrow grid widens to its title"


# --- export, delete, PNG info ----------------------------------------------------------------


def test_batch_zip_names_carry_the_varying_settings(monkeypatch, gallery_url):
    from nfx.app import compare, gallery
    monkeypatch.setenv("NFX_DATABASE_URL", gallery_url)
    batch_id = open_store(gallery_url).list_batches()[0].id
    names = zipfile.ZipFile(io.BytesIO(compare.batch_zip(batch_id))).namelist()
    pngs = sorted(n for n in names if n.endswith(".png"))
    assert len(pngs) == 4 and all("_style_weight-" in n for n in pngs), pngs
    assert len({n.split("_", 1)[1] for n in pngs}) == 4, "no two names alike but for the job"
    selection = gallery.export_zip(gallery.gallery_filter())
    assert len([n for n in zipfile.ZipFile(io.BytesIO(selection)).namelist()
                if n.endswith(".png")]) == 4


def test_gallery_refuses_an_inverted_range_in_one_line(monkeypatch, gallery_url):
    from nfx.app import gallery
    with pytest.raises(gallery.InputError, match="Style weight: “from” 1e\\+06 is above “to”"):
        gallery.gallery_filter(ranges={"style_weight": (1e6, 1e3)})


def test_delete_asks_first_and_says_what_goes(monkeypatch, gallery_url):
    at = open_page(monkeypatch, gallery_url, "pages/gallery.py")
    result_id = open_first_result(at)
    at.button(key=f"dlg:delete:{result_id}").click().run()
    (warning,) = at.warning
    assert warning.value.startswith(f"Delete R{result_id}: its PNG")
    assert "The content and style images stay in the library" in warning.value
    assert open_store(gallery_url).get_result(result_id), "nothing deleted yet"
    at.button(key=f"dlg:delete-no:{result_id}").click().run()
    assert not at.warning and open_store(gallery_url).get_result(result_id)
    at.button(key=f"dlg:delete:{result_id}").click().run()
    at.button(key=f"dlg:delete-yes:{result_id}").click().run()
    assert "3 results" in captions(at)


def nfx_png(store, result_id: int, *, with_inputs: bool = True) -> bytes:
    """A result's picture saved as the worker's PNG run record (settings + inputs)."""
    from nfx.images import load_image, png_bytes
    record = store.get_result(result_id)
    extra = {"seconds": record.seconds}
    if with_inputs:
        extra.update(content={"sha256": record.content.sha256, "name": record.content.name},
                     styles=[{"sha256": s.sha256, "name": s.name} for s in record.styles])
    return png_bytes(load_image(store.blob(record.image_sha256)), record.settings, extra=extra)


def test_png_info_shows_the_inputs_and_queues_it_again(monkeypatch, gallery_url):
    store = open_store(gallery_url)
    record = store.get_result(store.query_gallery()[0].result_id)
    data = nfx_png(store, record.id)
    at = open_page(monkeypatch, gallery_url, "pages/png_info.py")
    at.file_uploader(key="pi:file").set_value([("run.png", data, "image/png")]).run()
    assert not at.exception
    assert at.subheader[0].value == f"content{record.content.name[7]} × style3"
    assert not at.warning, "both inputs are in the gallery"
    at.number_input(key="pi:steps").set_value(4).run()
    click(at, "Queue again")
    assert at.success[0].value.startswith("Queued J")
    (job,) = store.list_jobs(status="queued")
    assert job.settings.differences(record.settings) == {"steps": (4, record.settings.steps)}
    assert job.content_id == record.content.id


def test_png_info_says_which_input_is_missing(monkeypatch, gallery_url, tmp_path):
    store = open_store(gallery_url)
    record = store.get_result(store.query_gallery()[0].result_id)
    data = nfx_png(store, record.id)
    at = open_page(monkeypatch, f"sqlite:///{tmp_path / 'fresh.db'}", "pages/png_info.py")
    at.file_uploader(key="pi:file").set_value([("run.png", data, "image/png")]).run()
    assert [w.value for w in at.warning] == [
        f"Content “{record.content.name}” is not in the gallery: add it on New batch first.",
        "Style “style3.png” is not in the gallery: add it on New batch first."]
    assert not [b for b in at.button if b.label == "Queue again"]
    assert at.dataframe, "the settings are shown all the same"
    older = nfx_png(store, record.id, with_inputs=False)
    at.file_uploader(key="pi:file").set_value([("old.png", older, "image/png")]).run()
    assert "does not record its inputs" in at.warning[0].value
    at.file_uploader(key="pi:file").set_value([("photo.png", image_bytes(make_image(8, 8)),
                                                "image/png")]).run()
    assert at.error[0].value == ("photo.png: no NFX settings in this file; PNG info reads "
                                 "PNGs that NFX made.")


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


# --- layering -----------------------------------------------------------------------------


def test_the_app_and_the_store_never_load_torch():
    """The app only queues and shows work; workers run it. Loading torch in the app's process
    would cost seconds at start and hundreds of MB per server for nothing."""
    views = sorted(p.stem for p in (Path(APP).parent / "nfx" / "app").glob("*.py"))
    check = ("import sys, nfx.store, nfx.planner, nfx.run_record, nfx.grid, nfx.samples, "
             "nfx.labels, nfx.supervisor, nfx.cli.app_cmd, nfx.cli.queue_cmds; "
             + "".join(f"import nfx.app.{v}; " for v in views if v != "__init__")
             + "print('torch' in sys.modules, 'streamlit' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                          check=True, cwd=Path(APP).parent)
    assert done.stdout.split() == ["False", "False"], "views need neither torch nor streamlit"


EXACT = ("streamlit", "sys", "math", "runpy")  # whole modules a page may import
ALLOWED = ("streamlit.", "nfx.app.", "nfx.labels.", "pages._widgets.", "__future__.",
           "math.", "runpy.", "pathlib.", "typing.", "sys.")


def imported_names(source: str) -> list[str]:
    """Every name a file imports, in full: `from nfx import engine` is 'nfx.engine'."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def test_pages_import_only_streamlit_and_their_views():
    """Pages are layout: no SQL, no torch, no store internals; only nfx.app's views."""
    pages = sorted((Path(APP).parent / "pages").glob("*.py"))
    assert len(pages) >= 6
    for page in pages + [Path(APP)]:
        for name in imported_names(page.read_text()):
            assert name in EXACT or name.startswith(ALLOWED), \
                f"{page.name} imports {name}"


def test_the_import_guard_checks_names_not_only_modules():
    for sneaky in ("from nfx import engine", "from nfx import store",
                   "from nfx.settings import FIELDS", "import nfx"):
        assert not all(n in EXACT or n.startswith(ALLOWED)
                       for n in imported_names(sneaky)), sneaky


def test_no_streamlit_calls_outside_pages():
    root = Path(APP).parent / "nfx"
    for module in root.rglob("*.py"):
        assert not any(n.startswith("streamlit") for n in imported_names(module.read_text())), \
            module
