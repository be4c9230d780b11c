"""The queue under harsher faults, all real: `kill -9` of workers at random moments under
`nfx workers`, a PostgreSQL server restarted mid-batch, a worker OOM-killed by the kernel in a
memory-limited cgroup, a SQLite write lock held by another process, a full disk (a small tmpfs)
and the app's page while the database is away."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import (ENV, ROOT, TINY, add_pair, image_bytes, make_image, queue_one,
                      result_count, start_worker, wait_exit, wait_for)
from nfx.errors import StorageRefused
from nfx.queue import Queue
from nfx.queue.supervisor import Supervisor
from nfx.run_record import read_run_png
from nfx.settings import Settings
from nfx.store import open_store

sys.path.insert(0, str(ROOT / "bench"))
from bench_chaos import drain_under_fire, stop_supervised, supervised  # noqa: E402

CHAOS_JOB = TINY.with_changes(size=64, scales=2, steps=60)  # seconds a job, with 2 workers
HEAL_SECONDS = 10.0


def chaos(url: str, tmp_path: Path, kills: int, restart=None):
    return drain_under_fire(url, CHAOS_JOB, jobs=12, kills=kills, pause=(1.0, 4.0),
                            log_path=tmp_path / "workers.log", restart=restart)


def assert_survived(outcome, kills: int) -> None:
    jobs = outcome.jobs
    assert [j.status for j in jobs] == ["done"] * 12, [(j.status, j.error) for j in jobs]
    assert outcome.results == outcome.distinct == 12  # each job done exactly once
    assert len({j.result_id for j in jobs}) == 12
    assert len(outcome.heals) >= kills - 2  # (a kill finds no worker only while starting)
    assert max(outcome.heals) <= HEAL_SECONDS, outcome.heals
    assert all(j.blamed_deaths == 0 for j in jobs)  # outside kills: never held against a job
    assert max(outcome.scales_redone(), default=0) <= 1.0  # the scale under way, no more
    assert "restarting in" not in outcome.log, "a worker killed while working backed off"
    deaths = re.findall(r"nfx: worker \d+ \(pid \d+\) (.*?);", outcome.log)
    assert deaths == ["was killed by SIGKILL"] * len(outcome.heals)  # no other worker died


@pytest.mark.slow
def test_chaos_sqlite(sqlite_url, tmp_path):
    outcome = chaos(sqlite_url, tmp_path, kills=8)
    assert_survived(outcome, 8)


@pytest.mark.slow
def test_chaos_postgres_with_a_server_restart(own_postgres, tmp_path):
    url = own_postgres.create_database("chaos")
    outcome = chaos(url, tmp_path, kills=8, restart=lambda: own_postgres.restart(3.0))
    assert_survived(outcome, 8)


@pytest.mark.slow
def test_a_worker_killed_while_working_is_replaced_at_once_a_crash_loop_backs_off(sqlite_url):
    store = open_store(sqlite_url)
    queue = Queue(store)
    job_id = queue_one(store, TINY.with_changes(size=64, steps=3000))
    worker = [sys.executable, "-m", "nfx", "worker", "--db", sqlite_url, "--device", "cpu",
              "--lease", "60", "--no-calibrate"]
    supervisor = Supervisor(1, lambda: subprocess.Popen(worker, cwd=ROOT, env=ENV,
                                                        stdout=subprocess.DEVNULL,
                                                        stderr=subprocess.DEVNULL),
                            queue, log=lambda line: None)
    supervisor.start()
    try:
        for kill in range(5):
            wait_for(lambda: (supervisor.poll() or True)
                     and queue.get_job(job_id).iteration > 0
                     and queue.get_job(job_id).status == "running", 120, "the job to run")
            victim = supervisor.slots[0].process
            victim.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            while supervisor.slots[0].process is victim:
                victim.wait()
                supervisor.poll()
            assert time.monotonic() - killed_at <= 1.0  # restarted at once, every time
            job = queue.get_job(job_id)
            assert job.status == "queued" and "not counted against it" in job.error
    finally:
        supervisor.stop()
    job = queue.get_job(job_id)
    assert job.blamed_deaths == 0 and len(job.deaths) == 5
    assert [d["signal"] for d in job.deaths] == ["SIGKILL"] * 5

    # a worker that dies before it has got going, again and again: backed off
    starts = []

    def broken():
        starts.append(time.monotonic())
        return subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])

    loop = Supervisor(1, broken, queue, log=lambda line: None)
    loop.start()
    deadline = time.monotonic() + 6.5
    while time.monotonic() < deadline:
        loop.poll()
        time.sleep(0.05)
    loop.stop()
    gaps = [later - earlier for earlier, later in zip(starts, starts[1:])]
    assert 2 <= len(gaps) <= 3 and gaps[0] >= 0.9 and gaps[1] >= 1.9, gaps  # 1 s, 2 s, 4 s


# --- memory -------------------------------------------------------------------------------------

MEMORY_LIMIT = 2 * 2**30


@pytest.fixture
def memory_cgroup():
    """A memory cgroup limited to MEMORY_LIMIT (v2 where the kernel has it, else v1)."""
    root = Path("/sys/fs/cgroup")
    if "memory" in (root / "cgroup.controllers").read_text(errors="ignore").split() \
            if (root / "cgroup.controllers").is_file() else False:
        folder, limit_file = root / f"nfx-test-{os.getpid()}", "memory.max"
    else:
        folder, limit_file = root / "memory" / f"nfx-test-{os.getpid()}", \
            "memory.limit_in_bytes"
    try:
        folder.mkdir()
        (folder / limit_file).write_text(str(MEMORY_LIMIT))
    except OSError as exc:
        pytest.fail(f"cannot make a memory cgroup at {folder} ({exc}): the test needs root "
                    "and a cgroup filesystem", pytrace=False)
    yield folder
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            folder.rmdir()
            break
        except OSError:
            time.sleep(0.5)


@pytest.mark.slow
def test_a_job_too_big_for_its_worker_finishes_tiled_after_one_death(sqlite_url, tmp_path,
                                                                     memory_cgroup):
    store = open_store(sqlite_url)
    queue = Queue(store)
    content = store.add_image(image_bytes(make_image(1200, 800, 1)), "big.png", "content").id
    style = store.add_image(image_bytes(make_image(300, 300, 2)), "s.png", "style").id
    # planned for 8 GiB on a worker that has 2: the usual poison job
    too_big = Settings(size=1024, scales=1, steps=1, precision="fp32", memory_budget=8.0)
    big = queue.create_batch([content], [style], too_big, priority=2)
    small = queue.create_batch(*[[i] for i in add_pair(store)], TINY, priority=1)
    into_cgroup = f"echo $$ > {memory_cgroup}/cgroup.procs && exec \"$@\""
    workers = supervised(sqlite_url, 1, tmp_path / "workers.log", "sh", "-c", into_cgroup,
                         "sh")
    try:
        wait_for(lambda: not queue.work_remaining(), 400, "both jobs to finish")
    finally:
        stop_supervised(workers)
    log = (tmp_path / "workers.log").read_text()
    (job,) = queue.list_jobs(batch_id=big.id)
    assert job.status == "done", (job.error, log)
    assert job.blamed_deaths == 1 and len(job.deaths) == 1
    (death,) = job.deaths
    assert death["out_of_memory"] and death["signal"] == "SIGKILL" and death["oom_kills"] == 1
    assert "the kernel's OOM killer killed it" in death["reason"]
    assert death["limit"] == MEMORY_LIMIT and death["changes"] == {"memory_budget": 1.4}
    assert job.settings.memory_budget == 1.4  # 70% of what the worker had
    result = store.get_result(job.result_id)
    assert (result.width, result.height) == (1024, 683)
    assert read_run_png(store.result_png(result.id)).settings.memory_budget == 1.4
    assert "(the kernel's OOM killer)" in log
    (other,) = queue.list_jobs(batch_id=small.id)
    assert other.status == "done"


# --- the database away, locked or full ----------------------------------------------------------


@pytest.mark.slow
def test_a_sqlite_write_lock_held_elsewhere_is_waited_for(sqlite_url, tmp_path):
    store = open_store(sqlite_url)
    queue = Queue(store)
    job_id = queue_one(store, TINY.with_changes(size=64, steps=60))
    worker = start_worker(sqlite_url, "--once", "--name", "w")
    wait_for(lambda: queue.get_job(job_id).iteration > 0, 120, "the job to run")
    holder = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's long write
    time.sleep(8)
    holder.execute("ROLLBACK")
    holder.close()
    wait_exit(worker, timeout=120)
    job = queue.get_job(job_id)
    assert job.status == "done" and job.attempts == 1


@pytest.fixture
def small_disk(tmp_path):
    """A 24 MiB tmpfs: a disk that can be filled."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs ({done.stderr.strip()}): the test needs root",
                    pytrace=False)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.mark.slow
def test_a_full_disk_pauses_the_worker_keeps_the_gallery_whole_and_heals(small_disk,
                                                                        monkeypatch):
    from streamlit.testing.v1 import AppTest

    url = f"sqlite:///{small_disk / 'nfx.db'}"
    store = open_store(url)
    queue = Queue(store)
    job_id = queue_one(store, TINY.with_changes(size=64, steps=60))
    log = small_disk.parent / "worker.log"
    worker = subprocess.Popen([sys.executable, "-m", "nfx", "worker", "--db", url, "--device",
                               "cpu", "--poll", "0.2", "--lease", "1.5", "--no-calibrate",
                               "--once", "--name", "w"], cwd=ROOT, env=ENV,
                              stdout=open(log, "w"), stderr=subprocess.STDOUT)
    wait_for(lambda: queue.get_job(job_id).iteration > 0, 120, "the job to run")
    filler = small_disk / "filler"
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M", "count=64"],
                   capture_output=True)  # stops when the disk is full
    with pytest.raises(StorageRefused, match="the database's disk is full"):
        store.add_image(image_bytes(make_image(300, 200, 9)), "new.png", "content")
    time.sleep(2)  # the job's lease runs out (its heartbeats cannot be written either)
    monkeypatch.setenv("NFX_DATABASE_URL", url)
    app = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    app.switch_page("pages/queue.py").run()
    assert not app.exception
    assert any("refuses to store anything: the database's disk is full" in w.value
               for w in app.warning)
    wait_for(lambda: "paused" in log.read_text(), 120, "the worker to pause")
    assert "the database would not store job 1's result (the database's disk is full" \
        in log.read_text()
    assert result_count(store) == 0 and queue.get_job(job_id).status != "done"
    filler.unlink()
    assert worker.wait(timeout=180) == 0
    job = queue.get_job(job_id)
    assert job.status == "done" and result_count(store) == 1 and job.blamed_deaths == 0
    with store.read() as session:
        assert session.connection().exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    assert queue.list_workers()[0].problem is None


@pytest.mark.slow
def test_a_running_job_outlives_a_postgres_restart(own_postgres):
    url = own_postgres.create_database("restart")
    store = open_store(url)
    queue = Queue(store)
    job_id = queue_one(store, TINY.with_changes(size=64, steps=200))
    worker = start_worker(url, "--once", "--name", "w", lease="60")
    wait_for(lambda: queue.get_job(job_id).iteration > 0, 120, "the job to run")
    own_postgres.restart(6.0)
    output = wait_exit(worker, timeout=180)
    assert "database unreachable" in output and "the database is back after" in output
    job = queue.get_job(job_id)
    assert job.status == "done" and job.attempts == 1 and result_count(store) == 1


def test_the_queue_page_says_the_database_is_unreachable(own_postgres, monkeypatch):
    from streamlit.testing.v1 import AppTest

    url = own_postgres.create_database("app")
    open_store(url).close()
    monkeypatch.setenv("NFX_DATABASE_URL", url)
    app = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    app.switch_page("pages/queue.py").run()
    assert not app.exception and not app.warning
    own_postgres._halt()  # the server goes away under a page that is open
    app.run()
    assert not app.exception
    warnings = " ".join(w.value for w in app.warning)
    assert "Database unreachable, retrying" in warnings, warnings


def read_only(server, on: bool) -> None:
    """The whole server read-only (or writable again), for sessions already open too."""
    import psycopg

    with psycopg.connect(f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres",
                         autocommit=True) as connection:
        connection.execute("SET default_transaction_read_only = off")
        connection.execute("ALTER SYSTEM SET default_transaction_read_only = "
                           + ("on" if on else "off"))
        connection.execute("SELECT pg_reload_conf()")


@pytest.mark.slow
def test_a_read_only_database_releases_the_job_and_heals(own_postgres, tmp_path):
    url = own_postgres.create_database("readonly")
    store = open_store(url)
    queue = Queue(store)
    job_id = queue_one(store, TINY.with_changes(size=64, steps=60))
    log = tmp_path / "worker.log"
    worker = subprocess.Popen([sys.executable, "-m", "nfx", "worker", "--db", url, "--device",
                               "cpu", "--poll", "0.2", "--lease", "1.5", "--no-calibrate",
                               "--once", "--name", "w"], cwd=ROOT, env=ENV,
                              stdout=open(log, "w"), stderr=subprocess.STDOUT)
    wait_for(lambda: queue.get_job(job_id).iteration > 0, 120, "the job to run")
    read_only(own_postgres, True)
    try:
        with pytest.raises(StorageRefused, match="the database is read-only"):
            store.add_image(image_bytes(make_image(300, 200, 9)), "new.png", "content")
        wait_for(lambda: "paused" in log.read_text(), 120, "the worker to pause")
        assert result_count(store) == 0 and queue.get_job(job_id).status != "done"
    finally:
        read_only(own_postgres, False)
    assert worker.wait(timeout=180) == 0, log.read_text()
    assert "the database is read-only" in log.read_text()
    job = queue.get_job(job_id)
    assert job.status == "done" and result_count(store) == 1 and job.blamed_deaths == 0
