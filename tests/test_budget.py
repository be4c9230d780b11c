"""The memory plan (nfx.planning.budget): estimates against measured peaks, tiling chosen by the budget,
and runs over budget refused at once with one line, in the engine and in a worker."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from nfx.planning import budget
from nfx.app.estimates import JOB_OVERHEAD, job_seconds
from nfx.engine import Engine
from nfx.errors import InputError
from nfx.planning.pyramid import scale_sizes
from nfx.planning.work import WorkModel
from nfx.settings import Settings
from nfx.store import open_store
from nfx.queue import Queue

from conftest import make_image
from test_worker import add_pair, start_worker, wait_exit

ROOT = Path(__file__).resolve().parent.parent
GIB = 2**30

PEAK_SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
from conftest import make_image
from nfx.planning import budget
from nfx.engine import Engine, resolve_precision
from nfx.settings import Settings
size, tile, low = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "low"
engine = Engine("cpu")
settings = Settings(size=size, scales=1, steps=2, tile=tile, memory_budget=64)
content = make_image(size, size * 3 // 4, seed=1)
precision = resolve_precision(settings.precision, engine.device)
if low:  # a budget just under L-BFGS's need in the smallest tile: the run falls back to Adam
    need = budget.estimate(*content.size, settings, precision,
                           budget.smallest_tile(*content.size, settings))
    settings = settings.with_changes(memory_budget=(need - 2**20) / budget.GIB)
plan = budget.plan(*content.size, settings, precision, budget.budget_bytes(settings))
result = engine.stylize(content, [make_image(96, 96, seed=2)], settings)
peak = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status")
            if line.startswith("VmHWM"))
print(json.dumps([peak, budget.estimate(*content.size, settings, precision, plan.tile, pairs=1,
                                        optimizer=plan.optimizer), result.optimizers]))
"""


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(device="cpu")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("size, tile, memory", [(384, 0, "roomy"), (768, 0, "roomy"),
                                                (768, 512, "roomy"), (384, 0, "low")])
def test_estimate_is_within_30_percent_of_the_measured_peak(size, tile, memory):
    """Each run in a fresh interpreter, so that its peak RSS is its own. "low": a budget
    that L-BFGS cannot fit even in tiles, so the run goes to Adam in tiles."""
    done = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(Path(__file__).parent),
                           str(size), str(tile), memory], capture_output=True, text=True,
                          cwd=ROOT, check=True)
    peak, guess, optimizers = json.loads(done.stdout.strip().splitlines()[-1])
    assert optimizers == (["adam"] if memory == "low" else ["lbfgs"])
    assert 0.7 * peak <= guess <= 1.3 * peak, (peak / GIB, guess / GIB)


def test_tiles_only_over_the_budget_and_shortens_the_history_only_when_huge():
    s = Settings()
    untiled = budget.estimate(2048, 1536, s, "bf16")
    assert budget.plan(2048, 1536, s, "bf16", untiled).tile is None
    tiled = budget.plan(2048, 1536, s, "bf16", untiled - 1)
    assert tiled.tile is not None and tiled.estimate < untiled
    assert budget.history_pairs(2048, 1536) == budget.LBFGS_HISTORY
    assert budget.MIN_HISTORY <= budget.history_pairs(4096, 3072) < budget.LBFGS_HISTORY
    # At 4096x3072 the history is what stays image-sized: tiles cannot go below it.
    assert budget.estimate(4096, 3072, s, "bf16", 512) < 6 * GIB


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_adam_only_when_lbfgs_cannot_fit_even_in_the_smallest_tile(precision):
    s = Settings(size=768, precision=precision)
    width, height = 768, 576
    smallest = budget.smallest_tile(width, height, s)
    lbfgs_least = budget.estimate(width, height, s, precision, smallest)
    assert budget.plan(width, height, s, precision, 1 << 40).optimizer == "lbfgs"
    at_least = budget.plan(width, height, s, precision, lbfgs_least)
    assert (at_least.optimizer, at_least.tile) == ("lbfgs", smallest)
    fallback = budget.plan(width, height, s, precision, lbfgs_least - 1)
    assert fallback.optimizer == "adam" and fallback.estimate < lbfgs_least
    assert fallback.estimate == budget.estimate(width, height, s, precision, fallback.tile,
                                                optimizer="adam")
    adam_least = budget.estimate(width, height, s, precision, smallest,
                                 optimizer="adam")
    assert budget.plan(width, height, s, precision, adam_least - 1) is None
    # Asked for Adam, it is Adam at any budget; the history is L-BFGS's business only.
    adam = s.with_changes(optimizer="adam")
    assert budget.plan(width, height, adam, precision, 1 << 40).optimizer == "adam"


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_8192_px_at_default_settings_fits_12_gib(precision):
    """Issue #12: an 8192×6144 run in 12 GiB. Its image-sized vectors are 0.56 GiB each;
    five L-BFGS pairs do not fit beside them at any tile, two Adam moments do."""
    s = Settings(size=8192, memory_budget=12, precision=precision)
    sizes = scale_sizes((8192, 6144), s.scales)
    plans = budget.plan_run(sizes, s, precision, torch.device("cpu"))
    top = plans[(8192, 6144)]
    assert top.optimizer == "adam" and top.tile and top.estimate <= 12 * GIB
    assert all(plans[size].optimizer == "lbfgs" for size in sizes[:-1])
    smallest = budget.smallest_tile(8192, 6144, s)
    assert budget.estimate(8192, 6144, s, precision, smallest) > 12 * GIB  # L-BFGS


def test_automatic_tiles_stop_where_they_would_cost_hours():
    """64 px tiles at 2048 px recompute their margins ~15x over: a plan never picks tiles
    that cost over MAX_SLOWDOWN untiled iterations; it goes to Adam or refuses instead.
    Tiles the settings force are used as they are."""
    s = Settings(size=2048)
    for width, height in ((768, 576), (2048, 1536), (4096, 3072), (8192, 6144)):
        allowed = budget.tiles(width, height, s)
        assert allowed and allowed == sorted(allowed, reverse=True)
        assert all(budget.work_factor(width, height, s, t) <= budget.MAX_SLOWDOWN
                   for t in allowed)
        assert 64 not in allowed and 256 in allowed
        for gib in (1.0, 2.0, 4.0, 8.0):
            chosen = budget.plan(width, height, s, "bf16", int(gib * GIB))
            assert chosen is None or chosen.tile is None or chosen.tile in allowed
    assert budget.tiles(2048, 1536, s.with_changes(tile=64)) == [64]
    assert budget.plan(2048, 1536, s.with_changes(tile=64), "bf16", 1 << 40).tile == 64
    assert budget.smallest_tile(2048, 1536, s) == 256


def test_tiles_cost_time_and_time_estimates_count_them():
    s = Settings(size=4096)
    assert budget.work_factor(2048, 1536, s, None) == 1.0
    two, four = (budget.work_factor(2048, 1536, s, tile) for tile in (1536, 1024))
    assert 1.0 < two < four  # more blocks: more margin recomputed, more pass-1 forwards
    model = WorkModel(per_megapixel_iteration=2.0, per_iteration=0.01, per_scale=0.5)
    roomy = model.seconds((4096, 3072), s, budget.work_factors(s, budget=1 << 50))
    assert roomy == pytest.approx(model.seconds((4096, 3072), s))  # nothing tiles
    tight = budget.work_factors(s, budget=5 * GIB)  # the 4096 scale tiles, 1024 does not
    assert tight((1024, 768)) == 1.0 and tight((4096, 3072)) > 1.5
    assert model.seconds((4096, 3072), s, tight) > 1.3 * roomy


def test_the_apps_job_estimate_counts_the_tiles_its_budget_will_need():
    model = WorkModel(per_megapixel_iteration=2.0, per_iteration=0.01, per_scale=0.5)
    roomy = job_seconds((1024, 768), Settings(size=4096, memory_budget=64), model)
    tight = job_seconds((1024, 768), Settings(size=4096, memory_budget=5), model)
    assert tight > 1.3 * roomy
    assert roomy == pytest.approx(model.seconds((4096, 3072), Settings(size=4096))
                                  + JOB_OVERHEAD)


def test_a_run_over_budget_is_refused_with_one_line_before_any_work(engine):
    content, style = make_image(64, 48, seed=1), make_image(40, 40, seed=2)
    # 1 GiB: too little for 2048×1536 even with Adam in 256 px tiles (64 px ones would fit,
    # at ~15x the time of an iteration: hours, so the plan does not go there)
    settings = Settings(size=2048, scales=2, memory_budget=1.0)
    misses, started = engine.cache.misses, time.perf_counter()
    with pytest.raises(InputError) as caught:
        engine.stylize(content, [style], settings)
    message = str(caught.value)
    assert "\n" not in message and "memory budget of 1.0 GiB" in message
    assert "even in 256 px tiles with Adam" in message
    assert engine.cache.misses == misses  # no target computed, nothing allocated
    assert time.perf_counter() - started < 5
    fits = int(message.split("fits is ")[1].split(" px")[0])
    assert 64 <= fits < 2048
    final = (fits, fits * 3 // 4)
    assert budget.plan(*final, settings, "bf16", GIB) is not None
    assert budget.plan(fits + 16, (fits + 16) * 3 // 4, settings, "bf16", GIB) is None


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


def test_a_budget_below_the_process_itself_says_so_rather_than_naming_a_size():
    settings = Settings(size=512, memory_budget=0.5)
    with pytest.raises(InputError, match="fits no image: NFX itself needs about 0.59 GiB"):
        budget.plan_run([(512, 384)], settings, "bf16", None)
