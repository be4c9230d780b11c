"""How good is the first time estimate on a fresh machine, as a user meets it?

For each batch below: a fresh gallery and a worker just started (as `nfx app` starts one),
the New batch page's own estimate (nfx.app's view, the code the page calls) from the moment
the page first shows a number (while the worker is still measuring its device the page says
so instead), then the batch is queued at that moment and timed until its last job is done.
Prints estimate / actual per batch; the target is within ±30% (0.7–1.3). Also prints how long
the page said "measuring", and the queue's own time per job (wall time per job minus the
engine's), which is JOB_OVERHEAD in nfx/app/estimates.py.

    python bench/bench_estimate.py [--only NAME ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nfx.app import context, estimates, new_batch  # noqa: E402
from nfx.settings import Settings  # noqa: E402
from nfx.store import open_store  # noqa: E402
from nfx.queue import Queue

IMAGES = ROOT.parent / "shared" / "images"
# name: (contents, styles, settings, sweep) -- the batches of issue #18's report
BATCHES = {
    "sweep-12x128": (("chelsea.png", "tubingen.jpg"), ("the_scream.jpg", "kandinsky.jpg"),
                     Settings(size=128), {"style_weight": [5.0, 10.0, 20.0]}),
    "one-512": (("tubingen.jpg",), ("starry_night.jpg",), Settings(), {}),
    "smallest": (("chelsea.png",), ("shipwreck.jpg",), Settings(size=32, scales=1, steps=2),
                 {}),
}


def run(name: str) -> dict:
    contents, styles, settings, sweep = BATCHES[name]
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'nfx.db'}"
        os.environ["NFX_DATABASE_URL"] = url
        context._open_store.cache_clear()
        store = open_store(url)
        queue = Queue(store)
        content_ids = [store.add_image((IMAGES / n).read_bytes(), n, "content").id
                       for n in contents]
        entries = [new_batch.StyleEntry((store.add_image((IMAGES / n).read_bytes(), n,
                                                         "style").id,)) for n in styles]
        started = time.perf_counter()
        worker = subprocess.Popen([sys.executable, "-m", "nfx", "worker", "--db", url,
                                   "--device", "cpu"], cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while True:  # the page, as a user who opened it at once keeps looking at it
                plan = new_batch.plan_frame(content_ids, entries, settings, sweep)
                shown = estimates.batch_estimate(plan)
                if shown.seconds is not None:
                    break
                time.sleep(0.2)
            measuring = time.perf_counter() - started
            queued = time.perf_counter()
            batch = new_batch.queue_batch(content_ids, entries, settings, sweep)
            while queue.get_batch(batch.id).counts.get("done", 0) < batch.job_count:
                time.sleep(0.1)
            wall = time.perf_counter() - queued
        finally:
            worker.terminate()
            worker.wait()
        engine = [j.seconds for j in queue.list_jobs(batch_id=batch.id, limit=None)]
        store.close()
    return {"jobs": len(engine), "measuring": measuring, "estimate": shown.seconds,
            "wall": wall, "overhead": (wall - sum(engine)) / len(engine)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(BATCHES), default=list(BATCHES))
    args = parser.parse_args()
    print("| batch | jobs | page said 'measuring' for | estimate s | actual s | "
          "estimate / actual | queue s per job |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    ratios = []
    for name in args.only:
        row = run(name)
        ratios.append(row["estimate"] / row["wall"])
        print(f"| {name} | {row['jobs']} | {row['measuring']:.1f} s | {row['estimate']:.1f} | "
              f"{row['wall']:.1f} | {ratios[-1]:.2f} | {row['overhead']:.2f} |", flush=True)
    inside = sum(0.7 <= r <= 1.3 for r in ratios)
    print(f"\nwithin ±30%: {inside}/{len(ratios)} batches (median ratio "
          f"{statistics.median(ratios):.2f})")


if __name__ == "__main__":
    main()
