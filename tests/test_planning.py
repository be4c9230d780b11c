"""Planning, free of torch: batches, the pyramid, the memory plan and its tiles, time
estimates."""

from __future__ import annotations

import pytest
import torch

from conftest import TINY
from nfx.app.estimates import JOB_OVERHEAD, job_seconds
from nfx.errors import InputError
from nfx.layers import layer as vgg_layer
from nfx.planning import budget
from nfx.planning.batch import PlannedJob, plan_batch
from nfx.planning.pyramid import scale_sizes
from nfx.planning.tile_grid import blocks, grid
from nfx.planning.work import WorkModel
from nfx.settings import Settings

GIB = 2**30


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


def test_a_budget_below_the_process_itself_says_so_rather_than_naming_a_size():
    settings = Settings(size=512, memory_budget=0.5)
    with pytest.raises(InputError, match="fits no image: NFX itself needs about 0.59 GiB"):
        budget.plan_run([(512, 384)], settings, "bf16", None)


def test_receptive_reach_and_grid_by_hand():
    # relu1_1: one 3x3 conv reaches 1 px; relu5_1 (4 pools, 13 convs): 70 px beyond its
    # 16 px cell, so blocks start on multiples of 16 with a margin of 80.
    assert vgg_layer("relu1_1").reach == 1 and vgg_layer("relu1_1").stride == 1
    assert vgg_layer("relu2_1").reach == 4 and vgg_layer("relu2_1").stride == 2
    assert vgg_layer("relu5_1").reach == 70 and vgg_layer("relu5_1").stride == 16
    assert grid(["relu1_1", "relu4_2", "relu5_1"]) == (16, 80)
    assert grid(["relu1_1", "relu2_1"]) == (2, 4)


@pytest.mark.parametrize("layer", ["relu1_1", "relu3_1", "relu5_1"])
def test_block_interiors_partition_every_layer(layer):
    """Interiors cover each layer once and start on the pooling grid (so that interior
    features are the untiled ones)."""
    width, height, stride = 227, 101, vgg_layer(layer).stride
    covered = torch.zeros(-(-height // stride), -(-width // stride), dtype=torch.int32)
    for block in blocks(height, width, 48, ["relu5_1"]):
        rows, cols = block.world(stride)
        covered[rows, cols] += 1
        assert block.interior[0].start % 16 == 0 and block.interior[1].start % 16 == 0
        assert block.region[0].start % 16 == 0 and block.region[1].start % 16 == 0
        local = block.local(stride)
        assert all(lo.stop - lo.start == w.stop - w.start for lo, w in zip(local, (rows, cols)))
    assert bool((covered == 1).all())


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


def test_scale_sizes_double_up_to_the_final_size():
    assert scale_sizes((512, 384), 3) == [(128, 96), (256, 192), (512, 384)]
    assert scale_sizes((64, 48), 4) == [(32, 24), (64, 48)]  # nothing under 32 px
    model = WorkModel(per_megapixel_iteration=2.0, per_iteration=0.01, per_scale=0.5)
    seconds = model.seconds((64, 48), Settings(size=64, scales=4, steps=10))
    # the estimate follows suit: two scales of 10 steps each
    assert seconds == pytest.approx(2.0 * (32 * 24 + 64 * 48) / 1e6 * 10 + 2 * (10 * 0.01 + 0.5))
