"""The queue on a real SQLite file and a real PostgreSQL server: claims, leases, retries,
workers (real `python -m nfx worker` processes, killed with real signals), supervision and
resume."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
from PIL import Image as PILImage
from sqlalchemy import func, select

from conftest import (ENV, ROOT, TINY, add_pair, image_bytes, make_image, queue_one,
                      result_count, run_nfx, start_worker, synthetic_run, wait_exit, wait_for)
from postgres_fixture import free_port
from nfx.errors import InputError, NotPermitted
from nfx.people import LOCAL, signed_in
from nfx.planning.work import WorkModel
from nfx.queue import Queue
from nfx.queue.jobs import Ownership
from nfx.run_record import read_run_png
from nfx.settings import Settings
from nfx.status import JobStatus
from nfx.store import db as store_db
from nfx.store import open_store
from nfx.store.models import Job, Result

SHORT_LEASE = 0.5  # seconds: long enough that a busy CI machine cannot expire it mid-test


def finished(claim):
    return synthetic_run(claim)


@pytest.fixture
def images(store):
    content = store.add_image(image_bytes(make_image(40, 30, 1)), "c.png", "content").id
    style = store.add_image(image_bytes(make_image(30, 30, 2)), "s.png", "style").id
    return content, style


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


def test_expired_leases_requeue_and_only_evidence_against_the_job_fails_it(store, queue,
                                                                            images):
    content, style = images
    queue.create_batch([content], [style], TINY.with_changes(size=64))
    first = queue.claim_next("dead", lease=SHORT_LEASE)
    assert queue.claim_next("other", lease=SHORT_LEASE) is None  # still leased
    time.sleep(SHORT_LEASE + 0.1)
    claim = queue.claim_next("other", lease=SHORT_LEASE)
    assert claim.job_id == first.job_id and claim.attempt == 2
    # the first worker comes back: everything it tries is refused
    assert queue.heartbeat(first, 60) is Ownership.LOST
    assert queue.finish(first, *finished(first)) is None
    assert not queue.fail(first, "late")
    # workers that vanish with no sign of trouble in the job: bad luck, however often
    for attempt in range(3, 7):
        time.sleep(SHORT_LEASE + 0.1)
        claim = queue.claim_next(f"w{attempt}", lease=SHORT_LEASE)
        assert claim.attempt == attempt
    job = queue.get_job(first.job_id)
    assert job.blamed_deaths == 0 and len(job.deaths) == 5
    assert all(not death["blames_job"] and "no sign that the job ran out of memory"
               in death["reason"] for death in job.deaths)
    # workers that vanish with the job's memory at their limit: counted, and each next
    # attempt gets a smaller memory budget
    gib = 2**30
    budgets = []
    for attempt in range(7, 10):
        queue.heartbeat(claim, SHORT_LEASE, rss_bytes=int(0.95 * gib), memory_limit_bytes=gib)
        time.sleep(SHORT_LEASE + 0.1)
        queue.requeue_expired()
        job = queue.get_job(first.job_id)
        budgets.append(job.settings.memory_budget)
        if attempt < 9:
            assert job.status == "queued" and "near its memory limit" in job.error
            assert "retrying with a memory budget" in job.error
            claim = queue.claim_next(f"w{attempt}", lease=SHORT_LEASE)
            assert claim.settings.memory_budget == budgets[-1]
    assert budgets == [0.7, 0.49, 0.49]  # 70% of the limit, then of that budget
    assert job.status == "failed" and job.blamed_deaths == 3
    assert job.error.startswith("its worker died 3 times on this job, each time with the "
                                "evidence against the job")
    assert "RSS 0.95 GiB of a 1.0 GiB limit" in job.error
    assert job.deaths[-1]["rss"] == int(0.95 * gib) and job.deaths[-1]["blames_job"]
    with store.read() as session:
        assert session.scalar(select(func.count()).select_from(Result)) == 0
    retried = queue.retry_job(job.id)  # the user tries again: a fresh count
    assert retried.status == "queued" and retried.blamed_deaths == 0


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


# Draining: a lease no healthy worker loses on a loaded CI machine, and jobs long enough that
# one worker starting seconds before the others cannot take them all.
DRAIN_LEASE = "15"


DRAIN_JOB = TINY.with_changes(size=48, steps=5)


def drain_with_three_workers(url: str) -> None:
    store = open_store(url)
    queue = Queue(store)
    contents = [store.add_image(image_bytes(make_image(48, 32, s)), f"c{s}.png", "content").id
                for s in (1, 2)]
    styles = [store.add_image(image_bytes(make_image(40, 40, s)), f"s{s}.png", "style").id
              for s in (3, 4, 5)]
    batch = queue.create_batch(contents, styles, DRAIN_JOB, {"seed": [1, 2, 3, 4, 5]})
    assert batch.job_count == 30
    workers = [start_worker(url, "--once", "--name", f"w{i}", lease=DRAIN_LEASE)
               for i in range(3)]
    for worker in workers:
        wait_exit(worker, timeout=240)
    jobs = queue.list_jobs(batch_id=batch.id)
    assert [j.status for j in jobs] == ["done"] * 30
    assert all(j.attempts == 1 for j in jobs)  # every job ran exactly once
    assert len({j.result_id for j in jobs}) == 30 and result_count(store) == 30
    with store.read() as session:
        assert session.scalar(select(func.count(func.distinct(Result.job_id)))) == 30
    done = {w.name: w.jobs_done for w in queue.list_workers()}
    assert sum(done.values()) == 30 and set(done) == {"w0", "w1", "w2"}
    assert sum(1 for n in done.values() if n > 0) >= 2  # they really shared the queue
    assert not any(w.alive for w in queue.list_workers())  # all stopped cleanly


@pytest.mark.slow
def test_three_workers_drain_30_jobs_sqlite(sqlite_url):
    drain_with_three_workers(sqlite_url)


@pytest.mark.slow
def test_three_workers_drain_30_jobs_postgres(postgres_url):  # noqa: F811
    drain_with_three_workers(postgres_url)


def worker_mid_job(url: str, name: str, steps: int):
    """One queued job and a worker that has started iterating on it."""
    store = open_store(url)
    queue = Queue(store)
    queue.create_batch(*[[i] for i in add_pair(store)], TINY.with_changes(size=64, steps=steps))
    (job,) = queue.list_jobs()
    worker = start_worker(url, "--name", name)
    wait_for(lambda: queue.get_job(job.id).iteration > 0, 120, "the job to make progress")
    return store, job, worker


@pytest.mark.slow
def test_sigkill_mid_job_is_requeued_and_finished_by_another_worker(sqlite_url):
    store, job, victim = worker_mid_job(sqlite_url, "victim", steps=60)
    queue = Queue(store)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    running = queue.get_job(job.id)
    assert (running.status, running.worker, running.attempts) == ("running", "victim", 1)
    rescuer = start_worker(sqlite_url, "--once", "--name", "rescuer")
    wait_exit(rescuer, timeout=180)
    done = queue.get_job(job.id)
    assert (done.status, done.worker, done.attempts) == ("done", "rescuer", 2)
    assert result_count(store) == 1 and store.get_result(done.result_id).job_id == job.id
    workers = {w.name: w for w in queue.list_workers()}
    assert workers["victim"].jobs_done == 0 and not workers["victim"].alive
    assert workers["rescuer"].jobs_done == 1


@pytest.mark.slow
def test_sigterm_puts_the_running_job_back(sqlite_url):
    store, job, worker = worker_mid_job(sqlite_url, "polite", steps=500)
    queue = Queue(store)
    worker.send_signal(signal.SIGTERM)
    output = wait_exit(worker, timeout=60)
    assert '"queued": 1' in output, "back in the queue"
    back = queue.get_job(job.id)
    assert (back.status, back.attempts, back.worker, back.result_id) == ("queued", 0, None,
                                                                         None)
    assert not queue.list_workers()[0].alive


@pytest.mark.slow
def test_engine_error_and_cancel_touch_only_their_job(sqlite_url):
    store = open_store(sqlite_url)
    queue = Queue(store)
    content, style = add_pair(store)
    # two blend weights for one style: valid settings the engine refuses
    broken = queue.create_batch([content], [style], TINY.with_changes(style_blend=(1.0, 2.0)),
                                priority=3)
    slow = queue.create_batch([content], [style], TINY.with_changes(size=64, steps=2000),
                              priority=2)
    good = queue.create_batch([content], [style], TINY, priority=1)
    worker = start_worker(sqlite_url, "--once", "--name", "w")
    (slow_job,) = queue.list_jobs(batch_id=slow.id)
    running = wait_for(lambda: (job := queue.get_job(slow_job.id)).preview_png and job, 120,
                       "a preview of the slow job")
    with PILImage.open(io.BytesIO(running.preview_png)) as preview:
        assert preview.size == (64, 43)
    assert running.status == "running" and 0 < running.progress < 1
    queue.cancel_job(slow_job.id)
    wait_exit(worker, timeout=120)
    (failed,) = queue.list_jobs(batch_id=broken.id)
    assert failed.status == "failed" and "style_blend" in failed.error
    canceled = queue.get_job(slow_job.id)
    assert canceled.status == "canceled" and canceled.iteration < 2000
    (done,) = queue.list_jobs(batch_id=good.id)
    assert done.status == "done" and done.losses["total"] > 0 and done.seconds > 0
    assert queue.list_workers()[0].jobs_done == 1


@pytest.mark.slow
def test_nfx_app_restarts_a_killed_worker_and_the_job_finishes(sqlite_url, tmp_path):
    store = open_store(sqlite_url)
    queue = Queue(store)
    job_id = queue_one(store, TINY.with_changes(size=64, steps=400))
    log = open(tmp_path / "app.log", "w+")
    app = subprocess.Popen([sys.executable, "-m", "nfx", "app", "--db", sqlite_url, "--port",
                            str(free_port()), "--device", "cpu"], cwd=ROOT, env=ENV,
                           stdout=log, stderr=subprocess.STDOUT)
    try:
        running = wait_for(lambda: (job := queue.get_job(job_id)).iteration > 0 and job, 180,
                           "the app's worker to start the job")
        (victim,) = [w for w in queue.list_workers() if w.name == running.worker]
        os.kill(victim.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        replacement = wait_for(lambda: [w for w in queue.list_workers()
                                        if w.alive and w.pid != victim.pid], 30,
                               "a new worker")
        assert time.monotonic() - killed_at < 10, "the new worker took over 10 s to start"
        dead = next(w for w in queue.list_workers() if w.pid == victim.pid)
        assert not dead.alive and dead.exit_cause == "was killed by SIGKILL"
        assert dead.current_job_id is None
        done = wait_for(lambda: (job := queue.get_job(job_id)).status == JobStatus.DONE and job,
                        180, "the job to finish")
        assert done.attempts == 2 and done.worker == replacement[0].name
    finally:
        app.send_signal(signal.SIGTERM)
        app.wait(timeout=60)
        log.seek(0)
        output = log.read()
    assert f"(pid {victim.pid}) was killed by SIGKILL; job {job_id} back in the queue" in output
    assert not any(w.alive for w in queue.list_workers())  # stopping the app stopped them


@pytest.mark.slow
def test_a_job_killed_after_its_first_scale_resumes_at_the_second(db_url):  # noqa: F811
    store = open_store(db_url)
    queue = Queue(store)
    settings = TINY.with_changes(size=96, scales=2, steps=300)
    job_id = queue_one(store, settings)
    victim = start_worker(db_url, "--name", "victim")
    wait_for(lambda: queue.get_job(job_id).checkpoint_scales == 1, 180,
             "the first scale to be kept")
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert queue.get_job(job_id).status == JobStatus.RUNNING  # nobody noticed yet
    rescuer = start_worker(db_url, "--once", "--name", "rescuer")
    output = wait_exit(rescuer, timeout=300)
    assert f"job {job_id} attempt 2 (resuming after scale 1)" in output
    job = queue.get_job(job_id)
    assert (job.status, job.attempts, job.checkpoint_scales) == (JobStatus.DONE, 2, 0)
    result = store.get_result(job.result_id)
    assert result.resumed_from_scale == 1
    assert result.iterations_run == settings.steps  # only the second scale ran again
    assert [h["scale"] for h in result.history] == [0] * 300 + [1] * 300  # one whole curve
    assert (result.width, result.height) == (96, 64)
    png = read_run_png(store.result_png(result.id))
    assert png.settings == settings and png.content.name == "c.png"
    with store.read() as session:  # the checkpoint's picture went with the run
        assert session.get(Job, job_id).checkpoint_sha256 is None


@pytest.mark.slow
def test_canceling_discards_the_checkpoint(sqlite_url):
    store = open_store(sqlite_url)
    queue = Queue(store)
    job_id = queue_one(store, TINY.with_changes(size=96, scales=2, steps=400))
    worker = start_worker(sqlite_url, "--name", "w")
    wait_for(lambda: queue.get_job(job_id).checkpoint_scales == 1, 180, "a kept scale")
    worker.send_signal(signal.SIGTERM)  # released: back in the queue, checkpoint kept
    wait_exit(worker, timeout=60)
    assert queue.get_job(job_id).checkpoint_scales == 1
    assert queue.cancel_job(job_id).status == JobStatus.CANCELED
    assert queue.get_job(job_id).checkpoint_scales == 0
    retried = queue.retry_job(job_id)
    assert (retried.status, retried.checkpoint_scales) == (JobStatus.QUEUED, 0)


@pytest.mark.slow
def test_outside_kills_never_fail_a_job_crashes_of_its_own_do(sqlite_url):
    store = open_store(sqlite_url)
    queue = Queue(store)
    job_id = queue_one(store, TINY.with_changes(size=64, steps=2000))
    # SIGKILL with no sign of memory trouble, then SIGSEGV (a native crash) three times
    for attempt, kill in enumerate([signal.SIGKILL] + [signal.SIGSEGV] * 3, start=1):
        worker = start_worker(sqlite_url, "--name", f"w{attempt}")
        wait_for(lambda: (j := queue.get_job(job_id)).attempts == attempt and j.iteration > 0,
                 120, f"attempt {attempt} to run")
        worker.send_signal(kill)
        worker.wait()
        # what a supervisor does when it sees the exit
        queue.worker_exited(os.uname().nodename, worker.pid,
                            f"was killed by {kill.name}", kill.name, 0)
        job = queue.get_job(job_id)
        if attempt < 4:
            assert job.status == JobStatus.QUEUED
            assert "worker lost at iteration" in job.error and kill.name in job.error
            assert job.deaths[-1]["rss"] > 100 * 2**20  # the worker's memory, from heartbeats
    assert [d["blames_job"] for d in job.deaths] == [False, True, True, True]
    assert job.status == JobStatus.FAILED and job.blamed_deaths == 3
    assert job.error.startswith("its worker died 3 times on this job, each time with the "
                                "evidence against the job")
    assert "it crashed with SIGSEGV" in job.error


@pytest.mark.slow
def test_a_worker_measures_its_device_once_per_host(sqlite_url):
    store = open_store(sqlite_url)
    queue = Queue(store)
    first = subprocess.Popen([sys.executable, "-m", "nfx", "worker", "--db", sqlite_url,
                              "--device", "cpu", "--once", "--name", "first"], cwd=ROOT,
                             env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert "measuring this device's speed" in wait_exit(first, timeout=180)
    model = queue.calibrated()
    assert model.per_megapixel_iteration > 0 and model.per_iteration >= 0
    second = subprocess.Popen([sys.executable, "-m", "nfx", "worker", "--db", sqlite_url,
                               "--device", "cpu", "--once", "--name", "second"], cwd=ROOT,
                              env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    assert "measuring" not in wait_exit(second, timeout=180)
    assert queue.work_model() == model  # no results yet: the measured model as it is


@pytest.mark.slow
def test_a_queued_job_over_budget_fails_with_the_message_and_the_worker_goes_on(sqlite_url):
    store = open_store(sqlite_url)
    queue = Queue(store)
    content, style = add_pair(store)
    tiny = Settings(size=32, scales=1, steps=2, precision="fp32")
    too_big = tiny.with_changes(size=4096, memory_budget=1.0)
    with pytest.raises(InputError, match="memory budget of 1.0 GiB"):
        queue.create_batch([content], [style], too_big)  # refused when planned
    with store.write() as session:  # queued all the same (by an older NFX, say)
        from nfx.queue import jobs
        from nfx.store.models import Image
        huge = jobs.add_job(session, content=session.get(Image, content),
                            styles=[session.get(Image, style)], settings=too_big, priority=2)
        session.flush()
        huge_id = huge.id
    good = queue.create_batch([content], [style], tiny, priority=1)
    wait_exit(start_worker(sqlite_url, "--once", "--name", "w"), timeout=120)
    failed = queue.get_job(huge_id)
    assert failed.status == "failed" and "memory budget" in failed.error
    (done,) = queue.list_jobs(batch_id=good.id)
    assert done.status == "done"


# --- people (#24): who queued what, and who may change it ------------------------------------

ALICE, BOB = signed_in("alice@example.org"), signed_in("Bob@Example.org")
CAROL = signed_in("carol@example.org", frozenset({"carol@example.org"}))  # an admin


def test_each_batch_and_job_records_who_queued_it(store, queue, images):
    content, style = images
    mine = queue.create_batch([content], [style], TINY, {"seed": [1, 2]}, person=ALICE)
    local = queue.create_batch([content], [style], TINY, {"seed": [3]})
    assert (mine.owner, queue.get_batch(mine.id).owner, local.owner) == (
        "alice@example.org", "alice@example.org", "local")
    assert {j.owner for j in queue.list_jobs(batch_id=mine.id)} == {"alice@example.org"}
    claim = queue.claim_next("w")
    assert queue.finish(claim, *finished(claim)) is not None
    rerun = queue.rerun(queue.get_job(claim.job_id).result_id, {"seed": 9}, person=BOB)
    assert rerun.owner == "bob@example.org"  # a re-run of anyone's result is the re-runner's


def test_only_the_owner_or_an_admin_cancels_reorders_retries_and_deletes(store, queue, images):
    content, style = images
    queue.create_batch([content], [style], TINY, {"seed": [1, 2, 3]}, person=ALICE)
    first, second, third = queue.list_jobs(status="queued")
    for action in (queue.cancel_job, queue.move_to_front, queue.retry_job):
        with pytest.raises(NotPermitted) as refused:
            action(first.id, person=BOB)
        assert "\n" not in str(refused.value)
        assert str(refused.value).startswith(f"job {first.id} belongs to alice@example.org; "
                                             "only they or an admin can ")
    assert queue.get_job(first.id).status == "queued"  # nothing written
    assert queue.move_to_front(third.id, person=ALICE).priority == 1
    assert queue.cancel_job(first.id, person=ALICE).status == "canceled"
    assert queue.cancel_job(second.id, person=CAROL).status == "canceled"  # an admin
    assert queue.retry_job(second.id, person=CAROL).status == "queued"
    claim = queue.claim_next("w")
    result_id = queue.finish(claim, *finished(claim))
    with pytest.raises(NotPermitted, match=f"R{result_id} belongs to alice@example.org"):
        store.delete_result(result_id, BOB)
    assert store.get_result(result_id).owner == "alice@example.org"
    store.delete_result(result_id, CAROL)
    with pytest.raises(InputError, match="no result"):
        store.get_result(result_id)
    assert queue.cancel_job(second.id, person=LOCAL).status == "canceled"  # the command line


def test_a_person_over_the_queued_jobs_cap_is_refused_in_one_line(store, images):
    content, style = images
    capped = Queue(store, max_queued_per_person=3)
    capped.create_batch([content], [style], TINY, {"seed": [1, 2]}, person=ALICE)
    with pytest.raises(InputError) as refused:
        capped.create_batch([content], [style], TINY, {"seed": [3, 4]}, person=ALICE)
    assert str(refused.value) == ("alice@example.org has 2 jobs queued and may have at most "
                                  "3: this would queue 2 more. Wait for some to run, or "
                                  "cancel some.")
    assert len(capped.list_jobs()) == 2  # nothing of the refused batch was written
    capped.create_batch([content], [style], TINY, {"seed": [3, 4, 5]}, person=BOB)  # his own
    capped.create_batch([content], [style], TINY, {"seed": [3]}, person=ALICE)  # to the cap
    first = next(j for j in capped.list_jobs(status="queued") if j.owner == ALICE.name)
    capped.cancel_job(first.id, person=CAROL)
    capped.create_batch([content], [style], TINY, {"seed": [6]}, person=ALICE)
    with pytest.raises(InputError, match="has 3 jobs queued and may have at most 3"):
        capped.retry_job(first.id, person=CAROL)  # a retry queues it again, for its owner
    # an identical finished run queues nothing, so it never counts
    claim = capped.claim_next("w")
    capped.finish(claim, *finished(claim))
    done = capped.get_job(claim.job_id)
    again = capped.create_batch([content], [style], done.settings,
                                person=signed_in(done.owner))
    assert again.reused_count == 1
    assert Queue(store).create_batch([content], [style], TINY, {"seed": [7, 8]},
                                     person=ALICE).job_count == 2  # no cap: the CLI's queue


def readme_worker_grants(database: str, password: str) -> list[str]:
    """The README's SQL for the workers' role ("Sharing NFX with a team"), one statement a
    line, for this database: the test runs exactly what the README tells people to run."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```sql\n(.*?)```", text, re.S)
    assert block, "the README gives the workers' GRANT statements"
    lines = (line.split("--")[0].strip() for line in block.group(1).splitlines())
    return [line.replace("'choose one'", f"'{password}'")
            .replace("DATABASE nfx ", f'DATABASE "{database}" ') for line in lines if line]


def test_a_worker_needs_only_the_queues_rights(own_postgres):
    """A worker whose role has only the README's grants runs the queue (claims, heartbeats,
    results); it cannot upgrade the schema (one line: the app, the owner, upgrades first) nor
    delete results or change batches."""
    import psycopg

    owner_url = own_postgres.create_database("nfx")
    old = store_db.create_db_engine(owner_url)
    store_db.migrate(old, "0007")  # a gallery made by the NFX before this one
    old.dispose()
    with psycopg.connect(f"host=127.0.0.1 port={own_postgres.port} user=postgres dbname=nfx",
                         autocommit=True) as connection:
        for statement in readme_worker_grants("nfx", "worker-pw"):
            connection.execute(statement)
    worker_url = owner_url.replace("postgres@", "nfx_worker:worker-pw@")

    refused = run_nfx("worker", "--db", worker_url, "--once", "--no-calibrate",
                      "--device", "cpu")
    assert refused.returncode == 2, refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "the database role lacks a privilege" in lines[0], lines

    store = open_store(owner_url)  # the app starts first and upgrades
    job_id = queue_one(store, TINY)
    wait_exit(start_worker(worker_url, "--once"), 300)
    assert Queue(store).get_job(job_id).status == "done"
    assert result_count(store) == 1
    with psycopg.connect(f"host=127.0.0.1 port={own_postgres.port} user=nfx_worker "
                         "password=worker-pw dbname=nfx", autocommit=True) as worker:
        for statement in ("DELETE FROM results", "UPDATE batches SET name = 'x'",
                          "DROP TABLE jobs", "DELETE FROM jobs"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                worker.execute(statement)
    store.close()

