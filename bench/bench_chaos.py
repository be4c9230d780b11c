"""Soak the queue: `nfx workers 2` drains a batch while random workers are `kill -9`ed at
random moments (issue #22). Prints the kills, the heal times (from a kill until the victim's
job runs again elsewhere, or a new worker is alive if it held none), jobs failed and
duplicated, and the scales redone (work lost per kill: the scale under way at the kill; a
kept checkpoint means at most one).

    python bench/bench_chaos.py                     # 100 kills, SQLite in a temp folder
    python bench/bench_chaos.py --kills 10 --db postgresql+psycopg://…/empty_db

`drain_under_fire` is also the chaos test's driver (tests/test_chaos.py), so the test and the
soak measure the same thing.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from nfx.queue import JobRecord, Queue  # noqa: E402
from nfx.settings import Settings  # noqa: E402
from nfx.status import JobStatus, WorkerState  # noqa: E402
from nfx.store import open_store  # noqa: E402
from nfx.store.models import Result  # noqa: E402

SOAK_JOB = Settings(size=96, scales=2, steps=100, precision="fp32")


@dataclass
class Outcome:
    jobs: list[JobRecord]
    heals: list[float]  # seconds, one per kill that found a worker
    results: int  # result rows
    distinct: int  # distinct jobs among them
    log: str  # what `nfx workers` printed

    @property
    def failed(self) -> int:
        return sum(j.status == JobStatus.FAILED for j in self.jobs)

    def scales_redone(self) -> list[float]:
        """Per worker death while running: the scales' worth of work it lost."""
        lost = []
        for job in self.jobs:
            steps = max(job.settings.steps, 1)
            for death in job.deaths:
                lost.append(max(death["iteration"] / steps - death.get("scales_kept", 0), 0.0))
        return lost


def supervised(url: str, count: int, log_path: Path, *prefix: str) -> subprocess.Popen:
    """`nfx workers COUNT` as a user starts it (after `prefix`, a wrapper command)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [*prefix, sys.executable, "-m", "nfx", "workers", str(count), "--db", url,
               "--device", "cpu"]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=open(log_path, "w"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop_supervised(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.1)


def healed(queue: Queue, victim_pid: int, job_id: int | None) -> bool:
    """The victim's job runs again on another worker (or is done); if it held none, a new
    worker is alive."""
    workers = [w for w in queue.list_workers() if w.alive]
    if job_id is not None:
        job = queue.get_job(job_id)
        return job.status == JobStatus.DONE or (
            job.status == JobStatus.RUNNING
            and any(w.pid != victim_pid and w.current_job_id == job_id for w in workers))
    return any(w.pid != victim_pid for w in workers)


def add_inputs(queue: Queue) -> tuple[int, int]:
    """A photo and a painting of the soak's own (smooth random pictures)."""
    import io

    import numpy as np

    ids = []
    for role, seed, size in (("content", 1, (48, 32)), ("style", 2, (40, 40))):
        rng = np.random.default_rng(seed)
        pixels = rng.uniform(0, 255, size=(size[1] // 4, size[0] // 4, 3)).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).resize(size, Image.BICUBIC).save(buffer, format="PNG")
        ids.append(queue.store.add_image(buffer.getvalue(), f"{role}.png", role).id)
    return ids[0], ids[1]


def drain_under_fire(url: str, settings: Settings, jobs: int, kills: int,
                     pause: tuple[float, float], log_path: Path,
                     restart: Callable[[], None] | None = None, seed: int = 20261202
                     ) -> Outcome:
    """`jobs` jobs (seeds 1..jobs) drain under `nfx workers 2`; `kills` times, after a pause
    drawn from `pause`, a random live worker is SIGKILLed and the heal timed. `restart`, if
    given, runs once halfway (a database server restart)."""
    store = open_store(url)
    queue = Queue(store)
    content, style = add_inputs(queue)
    batch = queue.create_batch([content], [style], settings,
                               {"seed": list(range(1, jobs + 1))})
    workers = supervised(url, 2, log_path)
    rng = random.Random(seed)
    heals: list[float] = []
    try:
        wait_until(lambda: any(j.iteration > 0 for j in queue.list_jobs(status="running")),
                   120, "the first job to run")
        for kill in range(kills):
            time.sleep(rng.uniform(*pause))
            if restart is not None and kill == kills // 2:
                restart()
            alive = [w for w in queue.list_workers()
                     if w.alive and w.state != WorkerState.STARTING]
            if not alive or not queue.work_remaining():
                continue
            victim = rng.choice(alive)
            job_id = victim.current_job_id
            os.kill(victim.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            wait_until(lambda: healed(queue, victim.pid, job_id), 120, "the queue to heal")
            heals.append(time.monotonic() - killed_at)
        wait_until(lambda: not queue.work_remaining(), 1800, "the batch to drain")
    finally:
        stop_supervised(workers)
    with store.read() as session:
        results = session.scalar(select(func.count()).select_from(Result)) or 0
        distinct = session.scalar(select(func.count(func.distinct(Result.job_id)))) or 0
    outcome = Outcome(queue.list_jobs(batch_id=batch.id, limit=None), heals, results,
                      distinct, log_path.read_text())
    store.close()
    return outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=150)
    parser.add_argument("--pause", type=float, nargs=2, default=(2.0, 6.0),
                        metavar=("MIN", "MAX"), help="seconds between kills (uniform)")
    parser.add_argument("--db", help="an empty database (default: SQLite in a temp folder)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="nfx-chaos-"))
    url = args.db or f"sqlite:///{folder / 'nfx.db'}"
    started = time.monotonic()
    outcome = drain_under_fire(url, SOAK_JOB, args.jobs, args.kills, tuple(args.pause),
                               folder / "workers.log")
    heals, redone = outcome.heals, outcome.scales_redone()
    done = sum(j.status == JobStatus.DONE for j in outcome.jobs)
    print(f"# NFX chaos soak: {args.jobs} jobs ({SOAK_JOB.size} px, {SOAK_JOB.scales} scales × "
          f"{SOAK_JOB.steps} steps) under `nfx workers 2` on "
          f"{url.split(':')[0]}, kill -9 every {args.pause[0]:g}–{args.pause[1]:g} s; "
          f"{time.monotonic() - started:.0f} s in all")
    print(f"kills: {len(heals)} ({len(redone)} while a job ran)")
    print(f"heal seconds: median {statistics.median(heals):.1f}, max {max(heals):.1f} "
          "(target <= 10)")
    print(f"jobs: {done} done, {outcome.failed} failed; results {outcome.results} for "
          f"{len(outcome.jobs)} jobs, {outcome.results - outcome.distinct} duplicated; "
          f"blamed deaths {sum(j.blamed_deaths for j in outcome.jobs)}")
    print(f"scales redone: {sum(redone):.1f} in all, most in one kill {max(redone, default=0):.2f} "
          "(target <= 1)")
    backoffs = outcome.log.count("restarting in")
    print(f"restarts that backed off: {backoffs} (a worker killed while starting)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
