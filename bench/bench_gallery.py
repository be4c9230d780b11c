"""Benchmark: gallery queries over 10,000 results, and the queue's overhead per job.

    python bench/bench_gallery.py [--results 10000] [--size 128]

Targets: first gallery page (with filters) and count under 100 ms each on 10,000 results; the
queue's own work per job (claim, heartbeats and progress, storing the result) under 5% of the
engine time of a 128 px job. Everything is measured in the same run on a temp SQLite file.
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nfx.people import LOCAL_NAME  # noqa: E402
from nfx.queue import Queue, jobs  # noqa: E402
from nfx.settings import Settings  # noqa: E402
from nfx.status import JobStatus  # noqa: E402
from nfx.store import GalleryFilter, open_store  # noqa: E402
from nfx.store.blobs import put_blob  # noqa: E402
from nfx.store.models import Image as ImageRow  # noqa: E402
from nfx.store.models import Result, ResultTag, Star, Tag, utcnow  # noqa: E402


def synthetic_png(rng: np.random.Generator, size: int = 24) -> bytes:
    array = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array, "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def seed_gallery(store, count: int) -> dict:
    """`count` finished jobs with results, spread over settings, images, dates and tags."""
    queue = Queue(store)
    rng = np.random.default_rng(0)
    pick = random.Random(0)
    contents = [store.add_image(synthetic_png(rng, 64), f"content{i}.png", "content")
                for i in range(20)]
    styles = [store.add_image(synthetic_png(rng, 64), f"style{i}.png", "style")
              for i in range(10)]
    batch = queue.create_batch([contents[0].id], [styles[0].id], Settings(), name="bench")
    now = utcnow()
    with store.write() as session:
        content_rows = {c.id: session.get(ImageRow, c.id) for c in contents}
        style_rows = {s.id: session.get(ImageRow, s.id) for s in styles}
        tags = [Tag(name=n) for n in ("best", "blue", "print", "draft")]
        session.add_all(tags)
        for i in range(count):
            settings = Settings(size=pick.choice([128, 256, 512]), seed=i,
                                style_weight=pick.choice([1e3, 1e4, 1e5, 1e6]),
                                tv_weight=pick.choice([0.0, 1e-4, 1e-3]),
                                optimizer=pick.choice(["lbfgs", "adam"]))
            job = jobs.add_job(session, content=content_rows[pick.choice(list(content_rows))],
                               styles=[style_rows[pick.choice(list(style_rows))]],
                               settings=settings, batch_id=batch.id, force=True)
            job.created_at = now - timedelta(minutes=13 * (count - i))
            picture, thumb = synthetic_png(rng), synthetic_png(rng, 12)
            total = float(rng.uniform(1, 1e6))
            result = Result(job_id=0, image_sha256=put_blob(session, picture),
                            thumb_sha256=put_blob(session, thumb), width=24, height=24,
                            losses={"content": 1.0, "style": 2.0, "tv": 0.1, "total": total},
                            loss_total=total, history=[], seconds=float(rng.uniform(5, 60)),
                            device="cpu", precision="fp32", created_at=job.created_at)
            session.add(result)
            session.flush()
            result.job_id = job.id
            if i % 20 == 0:  # local's stars
                session.add(Star(result_id=result.id, person=LOCAL_NAME))
            job.status, job.result_id, job.finished_at = JobStatus.DONE, result.id, job.created_at
            if i % 7 == 0:
                session.add(ResultTag(result_id=result.id, tag_id=tags[i % 4].id))
            if i % 1000 == 999:
                session.flush()
    return {"contents": contents, "styles": styles, "batch": batch}


def timed(function, repeat: int = 15) -> tuple[float, float]:
    """Median and worst milliseconds over `repeat` calls (after one warm-up call)."""
    function()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), max(times)


def bench_gallery(store, seeded: dict) -> list[tuple[str, float, float]]:
    style = seeded["styles"][3].id
    filtered = GalleryFilter(ranges={"style_weight": (1e4, 1e5)}, choices={"size": [256]},
                             style_ids=(style,), sort="newest")
    cases = {
        "first page, no filter": lambda: store.query_gallery(GalleryFilter()),
        "first page, style + style_weight range + size, newest":
            lambda: store.query_gallery(filtered),
        "first page, tag 'best', by loss": lambda: store.query_gallery(
            GalleryFilter(tags=("best",), sort="loss", descending=False)),
        "first page, favourites, last 30 days": lambda: store.query_gallery(
            GalleryFilter(favourites_only=True, date_from=utcnow() - timedelta(days=30))),
        "page 100 (offset 2400), newest": lambda: store.query_gallery(GalleryFilter(),
                                                                       page=100),
        "count, no filter": lambda: store.count_gallery(GalleryFilter()),
        "count, style + style_weight range + size": lambda: store.count_gallery(filtered),
    }
    return [(name, *timed(fn)) for name, fn in cases.items()]


class TimedRun:
    """The worker's own JobRun, with the time spent in its callbacks (progress, and keeping
    each finished scale) recorded: that is queue overhead, though the engine calls it."""

    def __init__(self, queue, engine, claim, options):
        from nfx.queue.worker import JobRun

        self.run = JobRun(queue, engine, claim, options, threading.Event())
        self.callback_seconds = 0.0
        self.run.on_progress = self._timed(self.run.on_progress)
        self.run.on_scale_done = self._timed(self.run.on_scale_done)

    def _timed(self, callback):
        def timed_callback(*args):
            start = time.perf_counter()
            try:
                return callback(*args)
            finally:
                self.callback_seconds += time.perf_counter() - start

        return timed_callback


def bench_queue_overhead(store, size: int) -> dict[str, float]:
    """One real job through the worker's code path, against the engine alone."""
    queue = Queue(store)
    from nfx.engine import Engine
    from nfx.images import load_image
    from nfx.queue.worker import WorkerOptions

    engine = Engine("cpu")
    rng = np.random.default_rng(1)
    content = store.add_image(synthetic_png(rng, 96), "bench-content.png", "content")
    style = store.add_image(synthetic_png(rng, 96), "bench-style.png", "style")
    settings = Settings(size=size)
    warm = Settings(size=32, scales=1, steps=2)
    images = [load_image(store.blob(content.sha256)), load_image(store.blob(style.sha256))]
    engine.stylize(images[0], images[1:], warm)  # load and warm up before timing

    start = time.perf_counter()
    engine.stylize(images[0], images[1:], settings)
    engine_alone = time.perf_counter() - start

    queue.create_batch([content.id], [style.id], settings, force=True, priority=100)
    queue.register_worker("bench", "localhost", 0, "cpu", 60.0)
    start = time.perf_counter()
    claim = queue.claim_next("bench")
    claim_seconds = time.perf_counter() - start
    timed_run = TimedRun(queue, engine, claim, WorkerOptions(device="cpu"))
    start = time.perf_counter()
    outcome = timed_run.run.run()
    run_seconds = time.perf_counter() - start
    assert outcome == "done", outcome
    job = queue.get_job(claim.job_id)
    engine_in_worker = job.seconds - timed_run.callback_seconds
    overhead = claim_seconds + run_seconds - engine_in_worker
    return {"engine_alone": engine_alone, "engine_in_worker": engine_in_worker,
            "claim": claim_seconds, "progress_callbacks": timed_run.callback_seconds,
            "overhead": overhead, "iterations": job.total_iterations}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=128, help="edge of the queue-overhead job")
    parser.add_argument("--skip-engine", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(f"sqlite:///{folder}/bench.db")
        start = time.perf_counter()
        seeded = seed_gallery(store, args.results)
        print(f"seeded {args.results} results in {time.perf_counter() - start:.1f} s "
              f"({Path(folder, 'bench.db').stat().st_size / 1e6:.1f} MB)")
        print(f"gallery over {store.count_gallery(GalleryFilter())} results "
              "(median / worst of 15, target < 100 ms):")
        for name, median, worst in bench_gallery(store, seeded):
            verdict = "ok" if median < 100 else "SLOW"
            print(f"  {name:<58} {median:7.1f} ms / {worst:7.1f} ms  {verdict}")
        if args.skip_engine:
            return
        o = bench_queue_overhead(store, args.size)
        ratio = o["overhead"] / o["engine_in_worker"]
        print(f"queue overhead for one {args.size} px job ({o['iterations']} iterations, "
              "default settings otherwise):")
        print(f"  engine time in the worker      {o['engine_in_worker']:8.2f} s "
              f"(engine alone, same job: {o['engine_alone']:.2f} s)")
        print(f"  claim                          {o['claim'] * 1000:8.1f} ms")
        print(f"  progress/preview/heartbeat     {o['progress_callbacks'] * 1000:8.1f} ms")
        print(f"  total queue overhead           {o['overhead'] * 1000:8.1f} ms "
              f"= {ratio:.2%} of engine time (target < 5%) "
              f"{'ok' if ratio < 0.05 else 'OVER'}")
        store.close()


if __name__ == "__main__":
    main()
