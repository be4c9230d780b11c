"""Real worker processes (`python -m nfx worker`) on real databases: draining, crashes,
signals, cancel and engine errors."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image as PILImage
from conftest import image_bytes, make_image
from postgres_fixture import postgres_server, postgres_url  # noqa: F401
from sqlalchemy import func, select

from nfx.settings import Settings
from nfx.store import open_store
from nfx.queue import Queue
from nfx.store.models import Result

ROOT = Path(__file__).resolve().parent.parent
TINY = Settings(size=32, scales=1, steps=2, precision="fp32")
LEASE = "1.5"  # short, so that a killed worker's job comes back quickly
# Draining: a lease no healthy worker loses on a loaded CI machine, and jobs long enough that
# one worker starting seconds before the others cannot take them all.
DRAIN_LEASE = "15"
DRAIN_JOB = TINY.with_changes(size=48, steps=5)


def start_worker(url: str, *args: str, lease: str = LEASE) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    # --no-calibrate: the speed measurement has its own test; here it would only cost time
    return subprocess.Popen([sys.executable, "-m", "nfx", "worker", "--db", url, "--device",
                             "cpu", "--poll", "0.2", "--lease", lease, "--no-calibrate", *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def wait_exit(process: subprocess.Popen, timeout: float) -> str:
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"worker did not finish in {timeout}s:\n{output}")
    assert process.returncode == 0, output
    return output


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def add_pair(store, seed: int = 1) -> tuple[int, int]:
    content = store.add_image(image_bytes(make_image(48, 32, seed)), "c.png", "content").id
    style = store.add_image(image_bytes(make_image(40, 40, seed + 1)), "s.png", "style").id
    return content, style


def result_count(store) -> int:
    with store.read() as session:
        return session.scalar(select(func.count()).select_from(Result))


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


def test_three_workers_drain_30_jobs_sqlite(sqlite_url):
    drain_with_three_workers(sqlite_url)


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
