"""How good is the first time estimate on a fresh machine?

A fresh gallery, one worker (which measures its device's speed when it starts, as `nfx app`'s
worker does), and a first batch: the estimate the New batch page would show before anything has
run, against the time the jobs then take. Prints the ratio estimate / actual per job and for the
batch; the target is within ±30% (0.7–1.3).

    python bench/bench_estimate.py [--size 128] [--jobs 4]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nfx.images import size_for_long_edge  # noqa: E402
from nfx.settings import Settings  # noqa: E402
from nfx.store import open_store  # noqa: E402

IMAGES = ROOT.parent / "shared" / "images"
CONTENTS, STYLES = ("chelsea.png", "tubingen.jpg"), ("the_scream.jpg", "kandinsky.jpg")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'nfx.db'}"
        store = open_store(url)
        contents = [store.add_image((IMAGES / n).read_bytes(), n, "content") for n in CONTENTS]
        styles = [store.add_image((IMAGES / n).read_bytes(), n, "style") for n in STYLES]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        worker = subprocess.Popen([sys.executable, "-m", "nfx", "worker", "--db", url,
                                   "--device", "cpu", "--poll", "0.2"], env=env, cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while store.queue.calibrated() is None:  # the worker has measured and registered
                time.sleep(0.2)
            model = store.work_model()
            settings = Settings(size=args.size)
            sizes = {c.id: size_for_long_edge((c.width, c.height), args.size) for c in contents}
            batch = store.create_batch([c.id for c in contents], [s.id for s in styles],
                                       settings)
            estimates = {j.id: model.seconds(sizes[j.content_id], j.settings)
                         for j in store.list_jobs(batch_id=batch.id)}
            started = time.perf_counter()
            while store.get_batch(batch.id).counts.get("done", 0) < len(estimates):
                time.sleep(0.2)
            wall = time.perf_counter() - started
        finally:
            worker.terminate()
            worker.wait()
        print(f"measured model: {model}")
        print(f"{'job':>5} {'estimate s':>11} {'actual s':>9} {'ratio':>6}")
        actual_total = 0.0
        for job in store.list_jobs(batch_id=batch.id):
            actual_total += job.seconds
            print(f"{job.id:>5} {estimates[job.id]:>11.1f} {job.seconds:>9.1f} "
                  f"{estimates[job.id] / job.seconds:>6.2f}")
        estimate_total = sum(estimates.values())
        print(f"batch: estimate {estimate_total:.1f} s, jobs {actual_total:.1f} s, wall "
              f"{wall:.1f} s; estimate / jobs = {estimate_total / actual_total:.2f}, "
              f"estimate / wall = {estimate_total / wall:.2f}")


if __name__ == "__main__":
    main()
