"""Every app page through Streamlit's AppTest, on a real SQLite gallery with real results.

The results come from the real worker and engine (VGG-19 weights included) on tiny jobs, made
once per module; each test works on its own copy of that database."""

from __future__ import annotations

import io
import json
import zipfile
import shutil
import time
from datetime import timedelta
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from conftest import TINY, image_bytes, make_image, run_nfx
from PIL import Image
from nfx.errors import InputError
from nfx.run_record import read_run_png
from nfx.images import size_for_long_edge
from nfx.planning.pyramid import scale_sizes
from nfx.settings import FIELDS
from nfx.queue import Queue, open_queue
from nfx.store import open_store
from nfx.store.models import Job, utcnow
from nfx.queue.worker import WorkerOptions, run_worker
from sqlalchemy import update


APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")




SWEPT = [1e2, 1e4]  # style_weight values of the tiny batch


@pytest.fixture(scope="module")
def finished_gallery(tmp_path_factory) -> Path:
    """2 contents × 1 style × 2 style weights, run to completion by a real worker."""
    path = tmp_path_factory.mktemp("gallery") / "nfx.db"
    url = f"sqlite:///{path}"
    store = open_store(url)
    queue = Queue(store)
    contents = [store.add_image(image_bytes(make_image(48, 32, seed=s)), f"content{s}.png",
                                "content").id for s in (1, 2)]
    style = store.add_image(image_bytes(make_image(40, 40, seed=3)), "style3.png", "style").id
    queue.create_batch(contents, [style], TINY, sweep={"style_weight": SWEPT}, name="tiny")
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


@pytest.mark.slow
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
    assert len(set(colours)) == len(colours) == 5, "one colour per loss term and the total"


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
    queue = Queue(store)
    original = store.get_result(result_id).settings
    (queued,) = queue.list_jobs(status="queued")
    assert queued.settings.differences(original) == {"steps": (3, original.steps)}


def test_gallery_dialog_tags_and_favourite(monkeypatch, gallery_url):
    at = open_page(monkeypatch, gallery_url, "pages/gallery.py")
    result_id = open_first_result(at)
    at.toggle(key=f"fav:{result_id}").set_value(True).run()
    at.multiselect(key=f"tags:{result_id}").set_value(["keeper"]).run()
    store = open_store(gallery_url)
    assert store.get_result(result_id).favourite
    assert store.get_result(result_id).tags == ("keeper",)


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

    jobs = open_queue(gallery_url).list_jobs(status="queued")
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
    done = [j for j in open_queue(gallery_url).list_jobs(status="done")
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
    assert error.value == "Enter one or more values, separated by commas or spaces."
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
    at.button(key="nbb:mix:add").click().run()
    assert any(m.value == "Mix: **style3 0.7 + style5 0.3**" for m in at.markdown)
    plan = at.dataframe[0].value
    assert list(plan["style"]) == ["style3", "style3 0.7 + style5 0.3"]
    click(at, "Queue batch")
    jobs = sorted(open_queue(gallery_url).list_jobs(status=["queued", "done"], limit=None),
                  key=lambda j: j.id)[-2:]
    mix = next(j for j in jobs if len(j.style_ids) == 2)
    assert mix.style_ids == (first_style, extra) and mix.settings.style_blend == (0.7, 0.3)


def test_new_batch_refuses_a_mix_with_the_wrong_number_of_weights(monkeypatch, gallery_url):
    store = open_store(gallery_url)
    extra = store.add_image(image_bytes(make_image(40, 40, seed=5)), "style5.png", "style").id
    at = open_page(monkeypatch, gallery_url, "pages/new_batch.py")
    at.multiselect(key="nb:mix:styles").set_value([store.list_images("style")[-1].id, extra])
    at.text_input(key="nb:mix:weights").input("1, 2, 3").run()
    at.button(key="nbb:mix:add").click().run()
    assert at.error[0].value == "Give one weight per style: 2 styles, 3 weights."


def test_queue_page_lists_reorders_and_cancels(monkeypatch, gallery_url):
    store = open_store(gallery_url)
    queue = Queue(store)
    contents = [r.id for r in store.list_images("content")]
    styles = [r.id for r in store.list_images("style")]
    queue.create_batch(contents, styles, TINY.with_changes(steps=5))
    first, last = queue.list_jobs(status="queued")[0], queue.list_jobs(status="queued")[-1]

    at = open_page(monkeypatch, gallery_url, "pages/queue.py")
    assert {m.label: m.value for m in at.metric}["Queued"] == "2"
    assert {m.label: m.value for m in at.metric}["Done"] == "4"
    at.button(key=f"q:front:{last.id}").click().run()
    assert queue.list_jobs(status="queued")[0].id == last.id
    at.button(key=f"q:cancel:{first.id}").click().run()
    assert queue.get_job(first.id).status == "canceled"
    assert {m.label: m.value for m in at.metric}["Canceled"] == "1"
    assert at.dataframe[0].value["worker"].size == 1, "the worker that ran the results"


def test_queue_page_warns_when_no_worker_is_alive(monkeypatch, gallery_url):
    store = open_store(gallery_url)
    queue = Queue(store)
    at = open_page(monkeypatch, gallery_url, "pages/queue.py")
    assert not at.warning  # nothing waits
    queue.create_batch([store.list_images("content")[0].id], [store.list_images("style")[0].id],
                       TINY.with_changes(seed=7))
    at = open_page(monkeypatch, gallery_url, "pages/queue.py")
    (warning,) = at.warning
    assert "No worker is running" in warning.value and "nfx app" in warning.value
    queue.register_worker("fresh", "host", 1, "cpu", 60.0)
    at = open_page(monkeypatch, gallery_url, "pages/queue.py")
    assert not at.warning


def test_queue_page_requeues_a_lost_workers_job_and_says_so(monkeypatch, gallery_url):
    store = open_store(gallery_url)
    queue = Queue(store)
    image_ids = ([store.list_images("content")[0].id], [store.list_images("style")[0].id])
    queue.create_batch(*image_ids, TINY.with_changes(seed=8))
    lost = queue.claim_next("ghost", lease=0.5)
    queue.create_batch(*image_ids, TINY.with_changes(seed=9))
    silent = queue.claim_next("quiet", lease=60)
    with store.write() as session:  # its last heartbeat was 40 s ago: 20 s of lease left
        session.execute(update(Job).where(Job.id == silent.job_id).values(
            heartbeat_at=utcnow() - timedelta(seconds=40),
            lease_until=utcnow() + timedelta(seconds=20)))
    time.sleep(0.6)
    at = open_page(monkeypatch, gallery_url, "pages/queue.py")
    # the page itself noticed the expired lease: no other worker was needed
    assert queue.get_job(lost.job_id).status == "queued"
    queued = next(m.value for m in at.markdown if m.value.startswith(f"J{lost.job_id} "))
    assert ("worker lost at iteration 0 (its worker stopped responding: killed from outside"
            in queued and "requeued, not counted against it" in queued)
    (warning,) = [w.value for w in at.warning if "not responding" in w.value]
    seconds = int(warning.removeprefix("worker not responding: requeued in ").split()[0])
    assert 10 < seconds <= 20 and warning.endswith("unless it comes back")


def test_queue_page_shows_a_running_jobs_scale_and_time_left(monkeypatch, gallery_url):
    store = open_store(gallery_url)
    queue = Queue(store)
    content = store.list_images("content")[0]
    settings = TINY.with_changes(seed=11, size=128, scales=3, steps=10)
    queue.create_batch([content.id], [store.list_images("style")[0].id], settings)
    claim = queue.claim_next("busy", lease=60)
    queue.heartbeat(claim, 60, progress=0.4, iteration=23, total_iterations=30,
                          seconds_left=150.0)
    at = open_page(monkeypatch, gallery_url, "pages/queue.py")
    sizes = scale_sizes(size_for_long_edge((content.width, content.height), 128), 3)
    width, height = sizes[2]
    text = f"scale 3 of 3 ({width}×{height}) · iteration 23 of 30 · about 2 min 30 s left"
    assert text in [p.text for p in at.get("progress")]


def test_queue_page_lists_canceled_jobs_with_retry(monkeypatch, gallery_url):
    store = open_store(gallery_url)
    queue = Queue(store)
    queue.create_batch([store.list_images("content")[0].id], [store.list_images("style")[0].id],
                       TINY.with_changes(seed=10))
    (job,) = queue.list_jobs(status="queued")
    queue.cancel_job(job.id)
    at = open_page(monkeypatch, gallery_url, "pages/queue.py")
    assert "Canceled" in [h.value for h in at.subheader]
    at.button(key=f"q:retry:{job.id}").click().run()
    assert queue.get_job(job.id).status == "queued"


def test_queue_labels_tell_sweep_jobs_apart_and_count_the_scales_that_run(monkeypatch,
                                                                         gallery_url):
    store = open_store(gallery_url)
    queue = Queue(store)
    content = next(i for i in store.list_images("content") if i.name == "content1.png")  # 48×32
    style = store.list_images("style")[0].id
    # at 64 px the 3rd scale (16×11) is below the engine's minimum: 2 scales run
    batch = queue.create_batch([content.id], [style], TINY.with_changes(size=64, scales=3),
                               sweep={"style_weight": [1e3, 1e4]})
    jobs = queue.list_jobs(batch_id=batch.id)
    at = open_page(monkeypatch, gallery_url, "pages/queue.py")
    rows = [m.value for m in at.markdown if m.value.startswith("J")]
    assert rows == [f"J{jobs[0].id} · content1 × style3 · Style weight 1000  \n"
                    ":gray[64 px, 2 scales × 2 steps]",
                    f"J{jobs[1].id} · content1 × style3 · Style weight 10000  \n"
                    ":gray[64 px, 2 scales × 2 steps]"]


def test_queue_action_on_a_finished_job_is_one_line(gallery_url, monkeypatch):
    from nfx.app import queue as view
    monkeypatch.setenv("NFX_DATABASE_URL", gallery_url)
    done = open_queue(gallery_url).list_jobs(status="done")[0]
    assert view.cancel_job(done.id) == (f"J{done.id} is done; only queued or running jobs can "
                                        "be canceled")


def test_compare_highlights_the_differing_setting(monkeypatch, gallery_url):
    at = open_page(monkeypatch, gallery_url, "pages/compare.py")
    store = open_store(gallery_url)
    cards = store.query_gallery()
    picker = at.multiselect(key="c:results")
    assert len(picker.options) == len(cards) == 4
    assert len(set(picker.options)) == 4, "no two entries read alike"
    assert all(" · Style weight " in o for o in picker.options)
    assert len([b for b in at.button if (b.key or "").startswith("cb:pick:")]) == 4
    same_content = [c.result_id for c in cards if c.content_name == "content1.png"]
    at.button(key=f"cb:pick:{same_content[0]}").click().run()  # from the thumbnails
    at.button(key=f"cb:pick:{same_content[1]}").click().run()
    assert at.multiselect(key="c:results").value == same_content
    assert any(m.value == "**Differs:** Style weight" for m in at.markdown)
    assert any(c.startswith("Style weight 100") for c in captions(at))
    at.toggle(key="c:only").set_value(True).run()
    assert list(at.dataframe[0].value.index) == ["Style weight"]


def test_compare_batch_grid_opens_on_the_axes_that_vary(monkeypatch, gallery_url):
    at = open_page(monkeypatch, gallery_url, "pages/compare.py")
    batch_id = at.selectbox(key="c:batch").value
    rows, columns = (at.selectbox(key=f"c:rows:{batch_id}"),
                     at.selectbox(key=f"c:columns:{batch_id}"))
    assert rows.options == ["Content", "Style", "Style weight"]
    assert (rows.value, columns.value) == ("content", "style_weight"), "the sweep on an axis"
    assert any(c.endswith(": 4 results") for c in captions(at)), captions(at)
    cells = thumbs(at, "c-")
    assert len(cells) == 4, "every cell is a result's thumbnail"
    cells[0].click().run()
    assert at.download_button and any(m.value.startswith("**R") for m in at.markdown), \
        "a cell opens its result"

    at = open_page(monkeypatch, gallery_url, "pages/compare.py")
    at.selectbox(key=f"c:columns:{batch_id}").set_value("content").run()
    assert not at.error, "an axis in use swaps instead of failing"
    assert (at.selectbox(key=f"c:rows:{batch_id}").value,
            at.selectbox(key=f"c:columns:{batch_id}").value) == ("style_weight", "content")
    at.selectbox(key=f"c:columns:{batch_id}").set_value("").run()
    at.selectbox(key=f"c:split:{batch_id}").set_value("content").run()
    grids = [c for c in captions(at) if " · Content " in c and c.endswith("2 results")]
    assert len(grids) == 2, "one grid per value of the third axis"
    assert [b.label for b in at.get("download_button")] == ["Download batch (ZIP)",
                                                            "Download grid (PNG)"]


def test_grid_png_is_one_labelled_image_of_every_part(monkeypatch, gallery_url):
    from nfx.app import compare
    from nfx.images import load_image
    monkeypatch.setenv("NFX_DATABASE_URL", gallery_url)
    batch_id = open_queue(gallery_url).list_batches()[0].id
    whole = load_image(compare.grid_png(batch_id, "content", "style_weight", cell_size=128))
    split = load_image(compare.grid_png(batch_id, "style_weight", "", "content",
                                        cell_size=128))
    assert split.height > whole.height, "the split's two grids stand one under the other"


def test_swap_axes_moves_the_other_axis_to_the_old_place():
    from nfx.app.compare import swap_axes
    before = {"rows": "content", "columns": "style_weight", "split": ""}
    after = swap_axes({**before, "columns": "content"}, "columns", "content", before)
    assert after == {"rows": "style_weight", "columns": "content", "split": ""}
    after = swap_axes({**before, "rows": "style_weight"}, "rows", "style_weight", before)
    assert after == {"rows": "style_weight", "columns": "content", "split": ""}
    after = swap_axes({**before, "split": "style_weight"}, "split", "style_weight", before)
    assert after == {"rows": "content", "columns": "", "split": "style_weight"}


def test_batch_grid_splits_on_a_third_axis_when_three_vary(monkeypatch, gallery_url):
    from nfx.app import compare
    store = open_store(gallery_url)
    queue = Queue(store)
    contents = [r.id for r in store.list_images("content")]
    styles = [store.list_images("style")[0].id,
              store.add_image(image_bytes(make_image(40, 40, seed=5)), "style5.png", "style").id]
    batch = queue.create_batch(contents, styles, TINY, sweep={"style_weight": [1e2, 1e3]})
    monkeypatch.setenv("NFX_DATABASE_URL", gallery_url)
    axes = compare.batch_axes(batch.id)
    assert (axes.rows, axes.columns, axes.split) == ("content", "style_weight", "style"), \
        "the swept setting is on an axis, not a split"


def test_batch_grid_notes_canceled_cells(monkeypatch, gallery_url):
    from nfx.app import compare
    store = open_store(gallery_url)
    queue = Queue(store)
    content = store.list_images("content")[0].id
    style = store.list_images("style")[0].id
    batch = queue.create_batch([content], [style], TINY, sweep={"style_weight": [1e2, 1e3]})
    queued = queue.list_jobs(batch_id=batch.id, status="queued")
    assert len(queued) == 1, "1e2 is re-used from the finished batch"
    queue.cancel_job(queued[0].id)
    monkeypatch.setenv("NFX_DATABASE_URL", gallery_url)
    (sheet,) = compare.batch_grids(batch.id, "style_weight")
    assert (sheet.shown, sheet.empty) == (1, 1)


def test_grid_labels_are_never_cut():
    from nfx import sheets
    long = "tubingen_neckarfront_evening"
    sheet = sheets.contact_sheet({(0, 0): Image.new("RGB", (8, 8))}, [long], [long],
                               cell_size=128)
    assert sheet.width > 128 * 2, "the row label gets the room it needs"
    title = "B12 a batch with a long, long name (48 jobs) · Style weight 1e+04"
    titled = sheets.contact_sheet({(0, 0): Image.new("RGB", (8, 8))}, ["a"], ["b"],
                                cell_size=128, title=title)
    assert titled.width > 128 * 4, "a narrow grid widens to its title"


def test_batch_zip_names_carry_the_varying_settings(monkeypatch, gallery_url):
    from nfx.app import compare, gallery
    monkeypatch.setenv("NFX_DATABASE_URL", gallery_url)
    batch_id = open_queue(gallery_url).list_batches()[0].id
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
    queue = Queue(store)
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
    (job,) = queue.list_jobs(status="queued")
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
    queue = Queue(store)
    contents = [r.id for r in store.list_images("content")]
    style = store.list_images("style")[0].id
    queue.create_batch(contents, [style], TINY, sweep={"seed": list(range(1, 16))})  # 30 jobs

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


def finish_synthetic(store, count: int = 1) -> list[int]:
    """Claim and finish `count` queued jobs with made-up pictures (the store's own calls,
    without the engine); the result ids."""
    queue = Queue(store)
    from conftest import synthetic_run
    ids = []
    for _ in range(count):
        claim = queue.claim_next("synthetic", lease=60)
        ids.append(queue.finish(claim, *synthetic_run(claim)))
    return ids


PAGES = ["pages/home.py", "pages/gallery.py", "pages/new_batch.py", "pages/queue.py",
         "pages/compare.py", "pages/png_info.py"]


def test_an_identical_job_is_one_result_on_every_page(monkeypatch, gallery_url):
    store = open_store(gallery_url)
    queue = Queue(store)
    done = store.query_gallery()[0]
    again = queue.create_batch([done.content_id], list(done.style_ids), done.settings,
                               name="the same again")
    assert again.reused_count == 1, "the identical job re-uses the finished result"
    for page in PAGES:
        at = open_page(monkeypatch, gallery_url, page)  # no duplicate keys, no traceback
        if page == "pages/home.py":
            assert {m.label: m.value for m in at.metric}["Results"] == "4"
            assert len(thumbs(at, "home-")) == 4
        if page == "pages/gallery.py":
            assert "4 results" in captions(at)
            assert len(thumbs(at, "g-")) == 4
    at = open_page(monkeypatch, gallery_url, "pages/gallery.py")
    at.multiselect(key="g:batch").set_value([again.id]).run()
    assert "1 result" in captions(at), "a batch of re-used jobs shows the result they re-use"


def new_batch_with_first_images(monkeypatch, url: str) -> AppTest:
    """The New batch page with the library's first content and first style picked."""
    store = open_store(url)
    at = open_page(monkeypatch, url, "pages/new_batch.py")
    at.multiselect(key="nb:content").select(store.list_images("content")[0].id).run()
    at.multiselect(key="nb:style").select(store.list_images("style")[0].id).run()
    return at


def test_queue_batch_twice_from_one_submission_queues_it_once(monkeypatch, gallery_url):
    store = open_store(gallery_url)
    queue = Queue(store)
    at = new_batch_with_first_images(monkeypatch, gallery_url)
    at.number_input(key="nb:seed").set_value(5).run()
    batches = len(queue.list_batches())
    at.button(key="nbb:queue").click().run()
    assert at.success[0].value.startswith("Queued batch B")
    at.button(key="nbb:queue").click().run()  # the double click's second half
    assert at.info[0].value.startswith("This batch is already queued as B")
    assert len(queue.list_batches()) == batches + 1
    assert queue.list_batches()[0].job_count == 1


def test_the_same_submission_in_two_transactions_is_one_batch(gallery_url):
    from nfx.settings import Settings
    store = open_store(gallery_url)
    queue = Queue(store)
    content, style = store.list_images("content")[0].id, store.list_images("style")[0].id
    first = queue.create_batch([content], [style], Settings(seed=3), submission="s1")
    second = queue.create_batch([content], [style], Settings(seed=3), submission="s1")
    assert second.id == first.id and second.resubmitted and not first.resubmitted
    assert len(queue.list_jobs(batch_id=first.id)) == 1


def test_the_new_batch_form_keeps_its_state_across_pages(monkeypatch, gallery_url):
    store = open_store(gallery_url)
    styles = [r.id for r in store.list_images("style")]
    extra = store.add_image(image_bytes(make_image(40, 40, seed=5)), "style5.png", "style").id
    at = open_page(monkeypatch, gallery_url, "pages/new_batch.py")
    content = store.list_images("content")[0].id
    at.multiselect(key="nb:content").select(content).run()
    at.number_input(key="nb:size").set_value(96).run()
    at.multiselect(key="nb:sweep").select("style_weight").run()
    at.text_input(key="nb:style_weight:values").input("10 20").run()  # spaces are fine
    at.multiselect(key="nb:mix:styles").set_value([styles[0], extra]).run()
    at.button(key="nbb:mix:add").click().run()
    at.switch_page("pages/queue.py").run()
    at.switch_page("pages/new_batch.py").run()
    assert not at.exception
    assert at.multiselect(key="nb:content").value == [content]
    assert at.number_input(key="nb:size").value == 96
    assert at.multiselect(key="nb:sweep").value == ["style_weight"]
    assert at.text_input(key="nb:style_weight:values").value == "10 20"
    assert any(m.value.startswith("Mix: **style3") for m in at.markdown), \
        "a mix of the plan is in view, not hidden in the collapsed expander"
    assert {m.label: m.value for m in at.metric}["Jobs"] == "2"


def test_an_upload_error_goes_when_its_picker_is_used_again(monkeypatch, gallery_url):
    at = open_page(monkeypatch, gallery_url, "pages/new_batch.py")
    bad = ("broken.png", b"not a picture", "image/png")
    at.file_uploader(key="nb:content:upload:0").set_value([bad]).run()
    assert len(at.error) == 1
    at.multiselect(key="nb:content").select(
        open_store(gallery_url).list_images("content")[0].id).run()
    assert not at.error, "a stale error goes once its cause is gone"


def test_use_these_settings_fills_the_new_batch_form(monkeypatch, gallery_url):
    at = open_page(monkeypatch, gallery_url, "pages/gallery.py")
    result_id = open_first_result(at)
    record = open_store(gallery_url).get_result(result_id)
    at.button(key="dlg:use").click().run()
    assert not at.exception
    assert at.title[0].value == "New batch"
    assert at.multiselect(key="nb:content").value == [record.content.id]
    assert at.multiselect(key="nb:style").value == [s.id for s in record.styles]
    assert at.number_input(key="nb:size").value == record.settings.size
    assert at.number_input(key="nb:style_weight").value == record.settings.style_weight


def test_duplicate_batch_fills_the_form_with_its_sweep(monkeypatch, gallery_url):
    at = open_page(monkeypatch, gallery_url, "pages/queue.py")
    batch = open_queue(gallery_url).list_batches()[0]
    at.button(key=f"q:dup:{batch.id}").click().run()
    assert at.title[0].value == "New batch"
    assert at.multiselect(key="nb:sweep").value == ["style_weight"]
    assert at.text_input(key="nb:style_weight:values").value == ", ".join(
        f"{v:g}" for v in SWEPT)
    assert len(at.multiselect(key="nb:content").value) == 2
    assert {m.label: m.value for m in at.metric}["Jobs"] == "4"


def test_queue_page_shows_recent_results_batches_and_a_finished_notice(monkeypatch,
                                                                       gallery_url):
    store = open_store(gallery_url)
    queue = Queue(store)
    at = open_page(monkeypatch, gallery_url, "pages/queue.py")
    recent = thumbs(at, "q-")
    assert len(recent) == 4, "recently finished results, as thumbnails"
    bars = [p.text for p in at.get("progress")]
    assert any(text.endswith("· 4 done") for text in bars), bars
    batch = queue.create_batch([store.list_images("content")[0].id],
                               [store.list_images("style")[0].id], TINY.with_changes(seed=42),
                               name="watched")
    at.run()  # the watch sees the batch with work left
    assert any("watched" in text and "1 queued" in text
               for text in [p.text for p in at.get("progress")])
    finish_synthetic(store)
    at.run()
    assert any(f"B{batch.id} watched finished: 1 done" in t.value for t in at.toast)
    recent[0].click().run()
    assert at.download_button, "a recent result opens in the result dialog"


def test_queue_page_says_a_worker_is_starting_not_that_none_runs(monkeypatch, gallery_url):
    from nfx.status import WorkerState
    store = open_store(gallery_url)
    queue = Queue(store)
    queue.create_batch([store.list_images("content")[0].id], [store.list_images("style")[0].id],
                       TINY.with_changes(seed=12))
    queue.register_worker("new", "host", 99, "auto", 60.0, state=WorkerState.STARTING)
    at = open_page(monkeypatch, gallery_url, "pages/queue.py")
    assert not at.warning and "starting" in at.info[0].value
    queue.worker_exited("host", 99, "was killed by SIGKILL")
    at = open_page(monkeypatch, gallery_url, "pages/queue.py")
    assert not at.warning, "a worker that just died is being restarted: no alarm"
    assert "was killed by SIGKILL" in at.info[0].value and "restarts it" in at.info[0].value
    frame = at.dataframe[0].value
    assert list(frame["state"])[:1] == ["stopped"]


def test_an_idle_worker_reads_idle_and_a_first_try_no_attempt(monkeypatch, gallery_url):
    store = open_store(gallery_url)
    queue = Queue(store)
    queue.register_worker("idle-one", "host", 7, "cpu", 60.0)
    queue.create_batch([store.list_images("content")[0].id], [store.list_images("style")[0].id],
                       TINY.with_changes(seed=13, steps=5))
    queue.register_worker("busy-one", "host", 8, "cpu", 60.0)
    claim = queue.claim_next("busy-one", lease=60)
    at = open_page(monkeypatch, gallery_url, "pages/queue.py")
    frame = at.dataframe[0].value.set_index("worker")
    assert frame.loc["idle-one", "state"] == "idle" and frame.loc["idle-one", "current job"] == ""
    assert frame.loc["busy-one", "state"] == "working"
    assert frame.loc["busy-one", "current job"] == f"J{claim.job_id}"
    assert not any("attempt" in c for c in captions(at)), "a first try has no attempt number"


def test_a_resumed_job_starts_at_its_checkpoint_not_at_zero(gallery_url):
    store = open_store(gallery_url)
    queue = Queue(store)
    queue.create_batch([store.list_images("content")[0].id], [store.list_images("style")[0].id],
                       TINY.with_changes(seed=14, scales=2, size=48))
    claim = queue.claim_next("first", lease=60)
    history = [{"iteration": i, "scale": 0, "total": 1.0 / i, "style": 0.5, "content": 0.2,
                "tv": 0.1} for i in (1, 2)]
    queue.save_checkpoint(claim, 1, image_bytes(make_image(24, 16)), history)
    queue.heartbeat(claim, 60, losses={"total": 99.0})
    with store.write() as session:  # what the supervisor does when it sees the worker die
        from nfx.queue import jobs
        jobs.requeue_worker_jobs(session, "first", "was killed by SIGKILL")
    again = queue.claim_next("second", lease=60)
    job = queue.get_job(again.job_id)
    assert job.iteration == 2 and job.losses["total"] == 0.5, "the checkpoint's, not 0 and 99"
    from nfx.app import queue as view
    (row,) = view.job_rows([job])
    assert "attempt 2" in row.runs and "blamed" not in row.runs  # an outside kill: not its fault


def test_queue_page_says_why_a_worker_paused(monkeypatch, gallery_url):
    from nfx.status import WorkerState
    queue = Queue(open_store(gallery_url))
    queue.register_worker("full", "host", 5, "cpu", 60.0)
    problem = "the database's disk is full: database or disk is full"
    queue.worker_seen("full", state=WorkerState.PAUSED, problem=problem)
    at = open_page(monkeypatch, gallery_url, "pages/queue.py")
    assert not at.exception
    assert f"Worker full has paused: {problem}" in at.warning[0].value
    frame = at.dataframe[0].value.set_index("worker")
    assert frame.loc["full", "state"] == "paused" and frame.loc["full", "problem"] == problem


def test_downloads_and_zips_are_named_by_the_result(monkeypatch, gallery_url):
    from nfx.app import compare, result as view
    monkeypatch.setenv("NFX_DATABASE_URL", gallery_url)
    store = open_store(gallery_url)
    card = store.query_gallery()[0]
    assert view.png_file_name(view.result(card.result_id)).startswith(
        f"nfx-R{card.result_id}_")
    names = zipfile.ZipFile(io.BytesIO(compare.batch_zip(card.batch_id))).namelist()
    results = {c.result_id for c in store.query_gallery()}
    assert sorted(n.split("_", 1)[0] for n in names if n.endswith(".png")) == sorted(
        f"R{i}" for i in results)


def test_png_info_says_in_words_what_made_it_and_links_the_result(monkeypatch, gallery_url):
    store = open_store(gallery_url)
    card = store.query_gallery()[0]
    data = store.result_png(card.result_id)  # as downloaded from the app
    at = open_page(monkeypatch, gallery_url, "pages/png_info.py")
    at.file_uploader(key="pi:file").set_value([("run.png", data, "image/png")]).run()
    text = " ".join(m.value for m in at.markdown)
    record = store.get_result(card.result_id)
    assert f"Made by J{card.job_id} in " in text and f"on cpu ({record.precision})" in text
    assert "job_id" not in text and "resumed_from_scale" not in text
    assert at.info[0].value.startswith(f"This run is in the gallery as R{card.result_id}")
    at.button(key="pib:open").click().run()
    assert at.download_button, "the result opens in its dialog"


def test_a_rerun_label_says_what_changed(monkeypatch, gallery_url):
    store = open_store(gallery_url)
    queue = Queue(store)
    card = store.query_gallery()[0]
    job = queue.rerun(card.result_id, {"style_weight": 30.0})
    (new,) = finish_synthetic(store)
    at = open_page(monkeypatch, gallery_url, "pages/gallery.py")
    before = f"{card.settings.style_weight:g}"
    assert any(c.startswith(f"R{new} · ") and c.endswith(f"Style weight {before} → 30")
               for c in captions(at)), captions(at)
    assert job.source_result_id == card.result_id


def test_the_dialog_pages_across_gallery_pages(monkeypatch, gallery_url):
    store = open_store(gallery_url)
    queue = Queue(store)
    queue.create_batch([store.list_images("content")[0].id], [store.list_images("style")[0].id],
                       TINY, sweep={"seed": list(range(20, 30))})
    finish_synthetic(store, 10)  # 14 results: two pages of 12
    at = open_page(monkeypatch, gallery_url, "pages/gallery.py")
    at.selectbox(key="g:size").set_value(12).run()
    last = thumbs(at, "g-")[-1]
    last.click().run()
    assert not at.button(key="dlg:next").disabled, "the next result is on page 2"
    assert at.button(key="dlg:next").proto.shortcut.lower() in ("right", "arrowright")
    assert at.button(key="dlg:prev").proto.shortcut.lower() in ("left", "arrowleft")
    at.button(key="dlg:next").click().run()
    ids = [int(b.key.rsplit("-", 1)[1]) for b in thumbs(at, "g-")]
    shown = next(m.value for m in at.markdown if m.value.startswith("**R"))
    assert int(shown[3:].split(" ", 1)[0]) not in ids, "page 2's first result"


def test_compare_offers_an_ab_wipe_of_two_results(monkeypatch, gallery_url):
    at = open_page(monkeypatch, gallery_url, "pages/compare.py")
    picks = [b for b in at.button if (b.key or "").startswith("cb:pick:")][:2]
    for button in picks:
        button.click().run()
    html = [h for h in at.get("html") if "nfx-wipe" in h.proto.body]
    assert len(html) == 1 and 'type="range"' in html[0].proto.body


def test_a_deleted_results_cell_says_deleted(monkeypatch, gallery_url):
    from nfx.app import compare
    store = open_store(gallery_url)
    card = store.query_gallery()[0]
    store.delete_result(card.result_id)
    monkeypatch.setenv("NFX_DATABASE_URL", gallery_url)
    (part,) = compare.batch_parts(card.batch_id, "content", "style_weight")
    assert list(part.notes.values()) == ["deleted"] and part.shown == 3


def test_an_impossible_memory_budget_is_refused_when_planned(monkeypatch, gallery_url):
    store = open_store(gallery_url)
    queue = Queue(store)
    at = new_batch_with_first_images(monkeypatch, gallery_url)
    at.number_input(key="nb:size").set_value(4096).run()
    at.number_input(key="nb:memory_budget").set_value(0.05).run()
    (warning,) = at.warning
    assert "memory budget of 0.05 GiB" in warning.value and "\n" not in warning.value
    assert at.button(key="nbb:queue").disabled
    with pytest.raises(Exception, match="0.05 GiB"):
        queue.create_batch([store.list_images("content")[0].id],
                           [store.list_images("style")[0].id],
                           TINY.with_changes(size=4096, memory_budget=0.05))


def test_a_failed_row_shows_its_settings_and_retries_with_changes(monkeypatch, gallery_url):
    store = open_store(gallery_url)
    queue = Queue(store)
    queue.create_batch([store.list_images("content")[0].id], [store.list_images("style")[0].id],
                       TINY.with_changes(seed=15, steps=4))
    claim = queue.claim_next("w", lease=60)
    queue.fail(claim, "out of memory: too big")
    at = open_page(monkeypatch, gallery_url, "pages/queue.py")
    row = next(m.value for m in at.markdown if m.value.startswith(f"J{claim.job_id} "))
    assert "Steps 4" in row and "out of memory" in row
    at.button(key=f"q:change:{claim.job_id}").click().run()
    at.number_input(key=f"q:again:{claim.job_id}:steps").set_value(3).run()
    next(b for b in at.button if b.label == "Retry with these settings").click().run()
    job = queue.get_job(claim.job_id)
    assert job.status == "queued" and job.settings.steps == 3 and job.attempts == 0


def test_picked_results_are_what_the_zip_takes(monkeypatch, gallery_url):
    from nfx.app import gallery
    at = open_page(monkeypatch, gallery_url, "pages/gallery.py")
    boxes = [c for c in at.checkbox if (c.key or "").startswith("gb:pick:")]
    assert len(boxes) == 4
    boxes[0].check().run()
    (download,) = [b for b in at.get("download_button")]
    assert download.proto.label == "Download 1 picked result (ZIP)"
    monkeypatch.setenv("NFX_DATABASE_URL", gallery_url)
    picked = int(boxes[0].key.rsplit(":", 1)[1])
    names = zipfile.ZipFile(io.BytesIO(gallery.export_zip(gallery.gallery_filter(),
                                                          [picked]))).namelist()
    assert [n.split("_", 1)[0] for n in names if n.endswith(".png")] == [f"R{picked}"]


def test_thumbnails_are_named_for_screen_readers(monkeypatch, gallery_url):
    at = open_page(monkeypatch, gallery_url, "pages/gallery.py")
    for button in thumbs(at, "g-"):
        assert button.label.startswith("![R") and " × " in button.label.split("](", 1)[0]


def test_the_gallery_sorts_by_when_a_result_was_made(gallery_url):
    store = open_store(gallery_url)
    queue = Queue(store)
    content, style = store.list_images("content")[0].id, store.list_images("style")[0].id
    queue.create_batch([content], [style], TINY.with_changes(seed=16))
    queue.create_batch([content], [style], TINY.with_changes(seed=17))
    older, newer = queue.list_jobs(status="queued")  # queued in this order
    queue.move_to_front(newer.id)
    (first,) = finish_synthetic(store)  # the moved job runs first
    (second,) = finish_synthetic(store)
    assert [c.result_id for c in store.query_gallery()][:2] == [second, first]


def test_the_estimate_waits_for_the_machines_measured_speed(monkeypatch, empty_url):
    from nfx.planning.work import WorkModel
    from nfx.status import WorkerState
    store = open_store(empty_url)
    queue = Queue(store)
    content = store.add_image(image_bytes(make_image(64, 48, seed=1)), "c.png", "content").id
    style = store.add_image(image_bytes(make_image(40, 40, seed=2)), "s.png", "style").id
    queue.register_worker("fresh", "host", 1, "auto", 60.0, state=WorkerState.CALIBRATING)
    at = open_page(monkeypatch, empty_url, "pages/new_batch.py")
    at.multiselect(key="nb:content").select(content).run()
    at.multiselect(key="nb:style").select(style).run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Jobs"] == "1" and metrics["Estimated time"] == "measuring…", \
        "no guess while the worker measures"
    queue.worker_ready("fresh", "cpu", WorkModel(per_megapixel_iteration=2.0,
                                                       per_iteration=0.01, per_scale=0.1))
    at.run()
    shown = {m.label: m.value for m in at.metric}["Estimated time"]
    assert shown.endswith((" s", " min")) and shown[0].isdigit(), shown


# --- feed-forward previews (issue #21) ----------------------------------------------------------

def test_new_batch_previews_every_cell_and_a_click_queues_its_optimisation(monkeypatch,
                                                                           gallery_url):
    store = open_store(gallery_url)
    queue = Queue(store)
    at = open_page(monkeypatch, gallery_url, "pages/new_batch.py")
    picked = store.list_images("content")[:2]
    at.multiselect(key="nb:content").select(picked[0].id).select(picked[1].id).run()
    at.multiselect(key="nb:style").select(store.list_images("style")[0].id).run()
    assert "Previews" in [h.value for h in at.subheader]
    cells = [b for b in at.button if b.key and b.key.startswith("nbb:cell:")]
    assert len(cells) == 2, "one cell per content × style"
    shown = [img for element in at.image for img in element.proto.imgs if " × " in img.caption]
    assert [img.caption for img in shown] == [f"{Path(p.name).stem} × style3" for p in picked]
    assert all(img.url for img in shown), "each cell shows its picture"
    before = len(queue.list_batches())
    at.button(key="nbb:cell:1:0").click().run()
    assert not at.exception, [e.value for e in at.exception]
    batches = queue.list_batches()
    assert len(batches) == before + 1
    jobs = queue.list_jobs(batch_id=batches[0].id)
    assert [j.content_name for j in jobs] == [picked[1].name]
    assert jobs[0].settings.method == "gatys"
    at.button(key="nbb:cell:1:0").click().run()  # the same cell again: one submission
    assert len(queue.list_batches()) == before + 1


def test_a_feedforward_batch_runs_through_a_worker_and_reruns(monkeypatch, gallery_url,
                                                             tmp_path):
    at = new_batch_with_first_images(monkeypatch, gallery_url)
    at.selectbox(key="nb:method").set_value("feedforward").run()
    at.number_input(key="nb:size").set_value(64).run()
    at.number_input(key="nb:strength").set_value(0.8).run()
    click(at, "Queue batch")
    assert at.success[0].value.startswith("Queued batch B")
    outcomes = run_worker(gallery_url, WorkerOptions(device="cpu", once=True, calibrate=False),
                          log=lambda *_: None)
    assert outcomes == {"done": 1}
    queue = open_queue(gallery_url)
    job = next(j for j in queue.list_jobs(status="done") if j.settings.method == "feedforward")
    result = queue.store.get_result(job.result_id)
    png = tmp_path / "ff.png"
    png.write_bytes(queue.store.blob(result.image_sha256))
    stored = read_run_png(png)
    assert stored.settings.method == "feedforward" and stored.settings.strength == 0.8
    assert Image.open(png).size == size_for_long_edge((48, 32), 64)
    done = run_nfx("rerun", str(png), "-o", str(tmp_path / "again.png"), "--db", gallery_url,
                   "--quiet")
    assert done.returncode == 0, done.stderr
    assert read_run_png(tmp_path / "again.png").settings.method == "feedforward"


# --- regions (issue #23): a mask per photo on New batch -------------------------------------------

MASK_COLOURS = ("#ff0000", "#0000ff", "#000000")


def three_colour_mask(size=(96, 64)) -> bytes:
    """Left red, right blue, a black square in the middle (anti-aliased by a downscale)."""
    big = Image.new("RGB", (size[0] * 4, size[1] * 4), MASK_COLOURS[0])
    big.paste(MASK_COLOURS[1], (size[0] * 2, 0, size[0] * 4, size[1] * 4))
    big.paste(MASK_COLOURS[2], (size[0], size[1], size[0] * 3, size[1] * 3))
    return image_bytes(big.resize(size, Image.Resampling.LANCZOS))


def masked_form(monkeypatch, gallery_url):
    """New batch with the first content photo (48×32) and two styles chosen."""
    store = open_store(gallery_url)
    extra = store.add_image(image_bytes(make_image(40, 40, seed=5)), "style5.png", "style").id
    styles = [next(i.id for i in store.list_images("style") if i.id != extra), extra]
    photo = store.list_images("content")[0]
    at = open_page(monkeypatch, gallery_url, "pages/new_batch.py")
    at.multiselect(key="nb:content").select(photo.id).run()
    at.multiselect(key="nb:style").set_value(styles).run()
    at.number_input(key="nb:size").set_value(32).run()
    at.number_input(key="nb:scales").set_value(1).run()
    return at, photo, styles


def upload_mask(at, photo, data: bytes, name: str = "mask.png"):
    at.file_uploader(key=f"nb:mask:{photo.id}:upload").set_value(
        [(name, data, "image/png")]).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_new_batch_queues_a_photo_with_an_uploaded_mask(monkeypatch, gallery_url):
    at, photo, styles = masked_form(monkeypatch, gallery_url)
    upload_mask(at, photo, three_colour_mask())
    boxes = {b.key.rsplit(":", 1)[-1]: b for b in at.selectbox if b.key.startswith("nbb:mask:")}
    assert set(boxes) == set(MASK_COLOURS), "one assignment per colour after snapping"
    boxes["#ff0000"].set_value(1).run()
    boxes = {b.key.rsplit(":", 1)[-1]: b for b in at.selectbox if b.key.startswith("nbb:mask:")}
    boxes["#0000ff"].set_value(2).run()
    boxes = {b.key.rsplit(":", 1)[-1]: b for b in at.selectbox if b.key.startswith("nbb:mask:")}
    boxes["#000000"].set_value("photo").run()
    plan = at.dataframe[0].value
    assert len(plan) == 1 and "photo kept" in plan["style"][0], "one job for the masked photo"
    click(at, "Queue batch")
    assert at.success[0].value.startswith("Queued batch B")
    (job,) = open_queue(gallery_url).list_jobs(status="queued")
    assert job.style_ids == tuple(styles) and job.mask_name == "mask.png"
    assert {r.colour: r.styles for r in job.regions.regions} == {
        "#ff0000": (1,), "#0000ff": (2,), "#000000": ()}


@pytest.mark.parametrize("case, data, message", [
    ("not an image", b"not a picture", "not an image"),
    ("aspect", None, "aspect ratios differ"),
    ("nine colours", None, "9 colours after snapping"),
])
def test_new_batch_refuses_a_bad_mask_in_one_line(monkeypatch, gallery_url, case, data,
                                                  message):
    if case == "aspect":
        data = three_colour_mask((96, 96))
    elif case == "nine colours":
        stripes = Image.new("RGB", (96, 64))
        for i in range(9):
            stripes.paste((i * 28, 255 - i * 28, 90), (0, i * 7, 96, i * 7 + 7))
        data = image_bytes(stripes)
    at, photo, _ = masked_form(monkeypatch, gallery_url)
    upload_mask(at, photo, data, "bad.png")
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and message in errors[0] and "\n" not in errors[0], errors
    assert not open_store(gallery_url).list_images("mask"), "nothing stored"


def test_new_batch_says_which_colour_has_no_style_and_queues_nothing(monkeypatch, gallery_url):
    at, photo, _ = masked_form(monkeypatch, gallery_url)
    upload_mask(at, photo, three_colour_mask())
    box = next(b for b in at.selectbox if b.key.endswith(":#000000"))
    box.set_value(None).run()
    warning = at.warning[0].value
    assert "#000000" in warning and "no assignment" in warning
    assert next(b for b in at.button if b.label == "Queue batch").disabled


# --- people and limits (#24) ----------------------------------------------------------------


def test_an_app_open_on_purpose_says_so_on_every_page(monkeypatch, gallery_url):
    monkeypatch.setenv("NFX_INSECURE_NO_AUTH", "1")
    at = open_page(monkeypatch, gallery_url)
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert any("--insecure-no-auth" in w.value for w in at.warning), page


def test_without_sign_in_everything_is_locals_and_names_no_one(monkeypatch, gallery_url):
    at = open_page(monkeypatch, gallery_url, "pages/gallery.py")
    assert not any("queued by" in c.value for c in at.caption)  # one person: no names
    assert {j.owner for j in open_queue(gallery_url).list_jobs()} == {"local"}
    at.multiselect(key="g:people").select("local").run()
    assert "4 results" in captions(at)


def test_an_upload_over_the_cap_is_refused_in_one_line(monkeypatch, gallery_url):
    monkeypatch.setenv("NFX_MAX_UPLOAD_MB", "1")
    at = open_page(monkeypatch, gallery_url, "pages/new_batch.py")
    big = image_bytes(make_image(1000, 800, seed=4), "BMP")  # 2.4 MB of real picture
    small = ("small.png", image_bytes(make_image(30, 30, seed=9)), "image/png")
    at.file_uploader(key="nb:content:upload:0").set_value(
        [("big.bmp", big, "image/bmp"), small]).run()
    (error,) = at.error
    assert error.value == "big.bmp: 2.3 MB, over the 1 MB a file this app takes"
    names = [i.name for i in open_store(gallery_url).list_images("content")]
    assert "small.png" in names and "big.bmp" not in names
    from nfx.app import masks, png_info  # a mask and a PNG to read are uploads too
    photo = open_store(gallery_url).list_images("content")[0]
    for refused in (lambda: masks.add_mask("big.bmp", big, photo),
                    lambda: png_info.inspect(big, "big.bmp")):
        with pytest.raises(InputError, match="^big.bmp: 2.3 MB, over the 1 MB a file"):
            refused()


def test_the_queued_jobs_cap_is_one_line_on_the_new_batch_page(monkeypatch, gallery_url):
    monkeypatch.setenv("NFX_MAX_QUEUED_JOBS", "1")
    at = open_page(monkeypatch, gallery_url, "pages/new_batch.py")
    store = open_store(gallery_url)
    at.multiselect(key="nb:content").select(store.list_images("content")[0].id).run()
    at.multiselect(key="nb:style").select(store.list_images("style")[0].id).run()
    at.multiselect(key="nb:sweep").select("seed").run()
    at.text_input(key="nb:seed:values").input("5 6").run()
    click(at, "Queue batch")
    assert [e.value for e in at.error] == [
        "local has 0 jobs queued and may have at most 1: this would queue 2 more. Wait for "
        "some to run, or cancel some."]
    assert open_queue(gallery_url).queue_counts()["queued"] == 0
