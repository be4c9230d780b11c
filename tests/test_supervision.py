"""A queue that heals itself, with real processes on real databases: supervised workers
restarted after SIGKILL, jobs resumed from their last finished scale, a job that kills its
worker every time failed with that reason, and `nfx rerun` on a PNG from the gallery."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from conftest import image_bytes, make_image
from postgres_fixture import db_url, free_port, postgres_server, postgres_url  # noqa: F401
from test_worker import ROOT, TINY, start_worker, wait_exit, wait_for

from nfx.run_record import read_run_png
from nfx.status import JobStatus
from nfx.store import open_store
from nfx.queue import Queue
from nfx.store.models import Job

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def queue_one(store, settings, seed: int = 1) -> int:
    queue = Queue(store)
    content = store.add_image(image_bytes(make_image(48, 32, seed)), "c.png", "content").id
    style = store.add_image(image_bytes(make_image(40, 40, seed + 1)), "s.png", "style").id
    queue.create_batch([content], [style], settings)
    return queue.list_jobs()[0].id


def nfx(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nfx", *args], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=600)


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


def test_a_job_that_kills_its_worker_every_time_fails_with_that_reason(sqlite_url):
    store = open_store(sqlite_url)
    queue = Queue(store)
    job_id = queue_one(store, TINY.with_changes(size=64, steps=2000))
    for attempt in (1, 2, 3):
        worker = start_worker(sqlite_url, "--name", f"w{attempt}")
        wait_for(lambda: (j := queue.get_job(job_id)).attempts == attempt and j.iteration > 0,
                 120, f"attempt {attempt} to run")
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        # what a supervisor does when it sees the exit
        queue.worker_exited(os.uname().nodename, worker.pid, "was killed by SIGKILL")
        job = queue.get_job(job_id)
        if attempt < 3:
            assert job.status == JobStatus.QUEUED
            assert "worker lost at iteration" in job.error and "SIGKILL" in job.error
    assert job.status == JobStatus.FAILED
    assert job.error.startswith("worker died 3 times on this job")


def test_rerun_a_png_from_the_gallery_finds_its_inputs_by_hash(sqlite_url, tmp_path):
    store = open_store(sqlite_url)
    queue = Queue(store)
    job_id = queue_one(store, TINY)
    wait_exit(start_worker(sqlite_url, "--once"), timeout=180)
    png = tmp_path / "downloaded.png"
    png.write_bytes(store.result_png(queue.get_job(job_id).result_id))  # what the app serves

    done = nfx("rerun", str(png), "-o", str(tmp_path / "again.png"), "--steps", "1",
               "--quiet", "--db", sqlite_url)
    assert done.returncode == 0, done.stderr
    again = read_run_png(tmp_path / "again.png")
    assert again.settings == TINY.with_changes(steps=1)
    assert again.content == read_run_png(png).content

    elsewhere = f"sqlite:///{tmp_path / 'other.db'}"
    done = nfx("rerun", str(png), "-o", str(tmp_path / "x.png"), "--db", elsewhere)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("nfx: error: content image c.png (sha256 ")
    assert "not in the gallery" in line and "--content" in line


def test_cli_cancel_and_retry(sqlite_url):
    store = open_store(sqlite_url)
    queue = Queue(store)
    job_id = queue_one(store, TINY)
    done = nfx("cancel", str(job_id), "--db", sqlite_url)
    assert (done.returncode, done.stdout.strip()) == (0, f"job {job_id}: canceled")
    done = nfx("retry", str(job_id), "999", "--db", sqlite_url)
    assert done.returncode == 2
    assert done.stdout.strip() == f"job {job_id}: queued"
    assert done.stderr.strip() == "nfx: error: no job with id 999"
    assert queue.get_job(job_id).status == JobStatus.QUEUED


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
