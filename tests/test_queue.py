"""The queue on real databases: planning, order, atomic claims, leases, cancel, retry."""

from __future__ import annotations

import threading
import time

import pytest
from conftest import image_bytes, make_image, synthetic_run
from postgres_fixture import db_url, postgres_server, postgres_url, queue, store  # noqa: F401
from sqlalchemy import func, select

from nfx.errors import InputError
from nfx.planning.batch import PlannedJob, plan_batch
from nfx.planning.work import WorkModel
from nfx.queue.jobs import Ownership
from nfx.store import open_store
from nfx.queue import Queue
from nfx.settings import Settings

from nfx.store.models import Result

TINY = Settings(size=32, scales=1, steps=2, precision="fp32")
SHORT_LEASE = 0.5  # seconds: long enough that a busy CI machine cannot expire it mid-test


def finished(claim):
    return synthetic_run(claim)


@pytest.fixture
def images(store):
    content = store.add_image(image_bytes(make_image(40, 30, 1)), "c.png", "content").id
    style = store.add_image(image_bytes(make_image(30, 30, 2)), "s.png", "style").id
    return content, style


# --- planning ----------------------------------------------------------------------------


def test_plan_batch_is_the_product():
    plan = plan_batch([1, 2], [3, 4, 5], TINY, {"style_weight": [1e4, 1e5], "size": [32, 64]})
    assert len(plan) == 2 * 3 * 2 * 2
    assert len({(p.content_id, p.style_ids, p.settings) for p in plan}) == 24
    assert {p.settings.size for p in plan} == {32, 64}
    assert all(p.settings.steps == 2 and len(p.style_ids) == 1 for p in plan)
    assert plan_batch([1], [2], TINY) == [PlannedJob(1, (2,), TINY)]


@pytest.mark.parametrize("contents, styles, sweep, message", [
    ([], [1], {}, "content image"),
    ([1], [], {}, "style image"),
    ([1], [2], {"colour": [1]}, "unknown setting"),
    ([1], [2], {"style_layers": [("relu1_1",)]}, "cannot be swept"),
    ([1], [2], {"size": []}, "no values"),
    ([1], [2], {"size": [8]}, "size"),
])
def test_plan_batch_refuses_bad_input(contents, styles, sweep, message):
    with pytest.raises(InputError, match=message):
        plan_batch(contents, styles, TINY, sweep)


# --- order -------------------------------------------------------------------------------


def test_claim_order_is_priority_then_age_and_move_to_front(store, queue, images):
    content, style = images
    queue.create_batch([content], [style], TINY, {"seed": [1, 2, 3]})
    urgent = queue.create_batch([content], [style], TINY, {"seed": [4]}, priority=5)
    jobs = queue.list_jobs(status="queued")
    assert [j.settings.seed for j in jobs] == [4, 1, 2, 3]
    last = next(j for j in jobs if j.settings.seed == 3)
    assert queue.move_to_front(last.id).priority == 6
    order = []
    while (claim := queue.claim_next("w")) is not None:
        order.append(claim.settings.seed)
        assert queue.finish(claim, *finished(claim)) is not None
    assert order == [3, 4, 1, 2]
    assert queue.get_batch(urgent.id).counts == {"done": 1}
    with pytest.raises(InputError, match="only queued"):
        queue.move_to_front(last.id)


def test_concurrent_claims_take_each_job_once(store, queue, db_url, images):  # noqa: F811
    content, style = images
    queue.create_batch([content], [style], TINY, {"seed": list(range(24))})
    claimed: list[int] = []
    errors: list[BaseException] = []

    def drain(name: str) -> None:
        own = open_store(db_url)
        try:
            while (claim := Queue(own).claim_next(name)) is not None:
                claimed.append(claim.job_id)
                Queue(own).finish(claim, *finished(claim))
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=drain, args=(f"t{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(claimed) == sorted(set(claimed)) and len(claimed) == 24
    assert queue.queue_counts()["done"] == 24
    assert all(j.attempts == 1 for j in queue.list_jobs())


# --- leases, cancel, retry ---------------------------------------------------------------


def test_expired_lease_requeues_then_fails_after_max_attempts(store, queue, images):
    content, style = images
    queue.create_batch([content], [style], TINY)
    first = queue.claim_next("dead", lease=SHORT_LEASE)
    assert queue.claim_next("other", lease=SHORT_LEASE) is None  # still leased
    time.sleep(SHORT_LEASE + 0.1)
    second = queue.claim_next("other", lease=SHORT_LEASE)
    assert second.job_id == first.job_id and second.attempt == 2
    # the first worker comes back: everything it tries is refused
    assert queue.heartbeat(first, 60) is Ownership.LOST
    assert queue.finish(first, *finished(first)) is None
    assert not queue.fail(first, "late")
    time.sleep(SHORT_LEASE + 0.1)
    third = queue.claim_next("third", lease=SHORT_LEASE)
    assert third.attempt == 3
    time.sleep(SHORT_LEASE + 0.1)
    assert queue.claim_next("fourth") is None
    job = queue.get_job(first.job_id)
    assert job.status == "failed" and "stopped responding" in job.error
    assert job.attempts == 3
    with store.read() as session:
        assert session.scalar(select(func.count()).select_from(Result)) == 0


def test_heartbeat_keeps_the_lease(store, queue, images):
    queue.create_batch(*[[i] for i in images], TINY)
    claim = queue.claim_next("alive", lease=1.0)
    for _ in range(4):
        time.sleep(0.3)
        assert queue.heartbeat(claim, 1.0, iteration=1, progress=0.5) is Ownership.OWNED
    assert queue.claim_next("thief", lease=1.0) is None
    job = queue.get_job(claim.job_id)
    assert (job.status, job.worker, job.iteration, job.progress) == ("running", "alive", 1, 0.5)


def test_cancel_queued_and_running(store, queue, images):
    content, style = images
    batch = queue.create_batch([content], [style], TINY, {"seed": [1, 2]})
    queued, running = queue.list_jobs(batch_id=batch.id)
    claim = queue.claim_next("w")
    running, queued = (queued, running) if claim.job_id == queued.id else (running, queued)
    assert queue.cancel_job(queued.id).status == "canceled"
    assert queue.cancel_job(running.id).cancel_requested
    assert queue.heartbeat(claim, 60) is Ownership.CANCEL
    assert queue.canceled(claim)
    assert queue.get_job(running.id).status == "canceled"
    with pytest.raises(InputError, match="only queued or running"):
        queue.cancel_job(running.id)


def test_retry_failed_and_canceled(store, queue, images):
    content, style = images
    queue.create_batch([content], [style], TINY, {"seed": [1, 2]})
    claim = queue.claim_next("w")
    assert queue.fail(claim, "RuntimeError: CUDA out of memory")
    failed = queue.get_job(claim.job_id)
    assert (failed.status, failed.error) == ("failed", "RuntimeError: CUDA out of memory")
    other = next(j for j in queue.list_jobs() if j.id != claim.job_id)
    queue.cancel_job(other.id)
    for job_id in (claim.job_id, other.id):
        retried = queue.retry_job(job_id)
        assert (retried.status, retried.attempts, retried.error) == ("queued", 0, None)
    assert queue.queue_counts() == {"queued": 2, "running": 0, "done": 0, "failed": 0,
                                    "canceled": 0, "deleted": 0}
    with pytest.raises(InputError, match="only failed or canceled"):
        queue.retry_job(claim.job_id)


def test_release_puts_job_back_without_using_an_attempt(store, queue, images):
    queue.create_batch(*[[i] for i in images], TINY)
    claim = queue.claim_next("w")
    assert queue.release(claim)
    job = queue.get_job(claim.job_id)
    assert (job.status, job.attempts, job.worker) == ("queued", 0, None)


def test_identical_job_finished_meanwhile_is_reused_at_claim(store, queue, images):
    content, style = images
    queue.create_batch([content], [style], TINY)
    twin = queue.create_batch([content], [style], TINY)  # nothing finished yet: queued
    assert twin.reused_count == 0
    claim = queue.claim_next("w")
    result_id = queue.finish(claim, *finished(claim))
    assert queue.claim_next("w") is None  # the twin took the result instead
    job = queue.list_jobs(batch_id=twin.id)[0]
    assert (job.status, job.reused, job.result_id, job.attempts) == ("done", True, result_id, 0)


def test_workers_table(store, queue, images):
    queue.register_worker("w1", "host", 123, "cpu", lease=SHORT_LEASE)
    queue.create_batch(*[[i] for i in images], TINY)
    claim = queue.claim_next("w1", lease=SHORT_LEASE)
    (worker,) = queue.list_workers()
    assert (worker.name, worker.host, worker.pid, worker.device) == ("w1", "host", 123, "cpu")
    assert worker.alive and worker.current_job_id == claim.job_id and worker.jobs_done == 0
    queue.finish(claim, *finished(claim))
    (worker,) = queue.list_workers()
    assert worker.jobs_done == 1 and worker.current_job_id is None
    time.sleep(SHORT_LEASE + 0.1)
    assert not queue.list_workers()[0].alive  # silent longer than its lease
    queue.worker_seen("w1")
    assert queue.list_workers()[0].alive
    queue.worker_seen("w1", stopped=True)
    assert not queue.list_workers()[0].alive


def test_work_model_from_calibration_corrected_by_results(store, queue, images):
    assert queue.work_model() is None
    queue.create_batch(*[[i] for i in images], TINY)
    claim = queue.claim_next("w")
    queue.finish(claim, *finished(claim))
    # results alone: 0.5 s for 32×24 pixels × 2 steps at one scale
    assert queue.work_model().per_megapixel_iteration == pytest.approx(0.5 / (32 * 24 / 1e6 * 2))
    measured = WorkModel(per_megapixel_iteration=100.0, per_iteration=0.1, per_scale=0.05)
    queue.register_worker("w", "host", 1, "cpu", 60.0, measured)
    assert queue.calibrated("host", "cpu") == measured
    assert queue.calibrated("elsewhere", "cpu") is None
    # the worker's model, scaled so that it predicts the finished run exactly
    predicted = measured.seconds((32, 24), TINY)
    assert queue.work_model().seconds((32, 24), TINY) == pytest.approx(0.5)
    assert queue.work_model().per_scale == pytest.approx(0.05 * 0.5 / predicted)


# --- command line ------------------------------------------------------------------------


def test_cli_batch_list_export(tmp_path, sqlite_url, capsys):
    import io as _io
    import json
    import zipfile

    import pandas as pd

    from nfx.cli import main

    for name, seed in (("a.png", 1), ("b.jpg", 2), ("s.png", 3)):
        make_image(40, 30, seed).save(tmp_path / name)
    (tmp_path / "bad.jpg").write_bytes(b"GIF89a but not really")
    common = ["--db", sqlite_url, "--size", "32", "--scales", "1", "--steps", "2"]

    assert main(["batch", "--content", str(tmp_path / "a.png"), str(tmp_path / "bad.jpg"),
                 "--style", str(tmp_path / "s.png"), *common]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nfx: error: bad.jpg") and err.count("\n") == 1
    assert main(["batch", "--content", str(tmp_path / "a.png"), "--style",
                 str(tmp_path / "s.png"), "--sweep", "steps=1,x", *common]) == 2
    assert "steps" in capsys.readouterr().err
    store = open_store(sqlite_url)
    queue = Queue(store)
    assert store.list_images() == [] and queue.list_batches() == []  # nothing half-written

    assert main(["batch", "--content", str(tmp_path / "a.png"), str(tmp_path / "b.jpg"),
                 "--style", str(tmp_path / "s.png"), "--sweep", "style_weight=1e4,1e5",
                 "--name", "cli", *common]) == 0
    assert capsys.readouterr().out.strip() == "batch 1: 4 jobs queued"
    claim = queue.claim_next("w")
    queue.finish(claim, *finished(claim))

    assert main(["list", "--db", sqlite_url, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 4 and {r["status"] for r in rows} == {"done", "queued"}
    assert {r["style_weight"] for r in rows} == {1e4, 1e5}
    assert main(["list", "--db", sqlite_url, "--status", "done", "--format", "csv"]) == 0
    table = pd.read_csv(_io.StringIO(capsys.readouterr().out))
    assert len(table) == 1 and {"status", "seconds", "loss_total", "style_weight",
                                "style_layers"} <= set(table.columns)

    out = tmp_path / "out.zip"
    assert main(["export", "1", "-o", str(out), "--db", sqlite_url]) == 0
    assert len([n for n in zipfile.ZipFile(out).namelist() if n.endswith(".png")]) == 1
    assert main(["export", "7", "-o", str(tmp_path / "none.zip"), "--db", sqlite_url]) == 2
    assert not (tmp_path / "none.zip").exists()
