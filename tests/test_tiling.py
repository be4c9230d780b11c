"""Exact tiled optimisation (nfx.engine.tiling): block by block, the same loss and gradient as the
untiled objective, with the real VGG-19 weights on small images and 64-128 px tiles."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nfx.engine.devices import autocast
from nfx.engine import Engine
from nfx.settings import Settings
from nfx.layers import layer as vgg_layer
from nfx.planning.tile_grid import blocks, grid
from nfx.engine.tiling import TiledObjective
from nfx.engine.tiling import features as tiled_features
from nfx.engine.tiling import raw_moments as tiled_raw_moments
from nfx.engine.losses import raw_moments, vgg_features

from conftest import make_image

WIDTH, HEIGHT = 224, 160  # tile 64: 10 blocks of 80 x 48 px; tile 128: 3 of 160 x 80


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(device="cpu")


def gradient(objective, pixels: torch.Tensor, engine: Engine, precision: str):
    pixels = pixels.clone().requires_grad_(True)
    with autocast(engine.device, precision):
        total, terms = objective(pixels)
    total.backward()
    return float(total.detach()), {k: float(v) for k, v in terms.items()}, pixels.grad


def objectives(engine: Engine, tile: int, precision: str = "fp32", **settings):
    s = Settings(size=WIDTH, precision=precision, **settings)
    content, style = make_image(WIDTH, HEIGHT, seed=1), make_image(96, 80, seed=2)
    objective = engine.targets.objective(content, [style], ("c", ["s"]), (WIDTH, HEIGHT), s, precision)
    pixels = (engine.targets.pixels(content, (WIDTH, HEIGHT))
              + torch.randn(1, 3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(0))
              * 20).clamp(0, 255)
    return objective, TiledObjective(objective, tile), pixels


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


@pytest.mark.parametrize("style_loss", ["gram", "wasserstein"])
@pytest.mark.parametrize("pooling, tile", [("max", 64), ("avg", 128)])
def test_tiled_gradient_equals_untiled_in_fp32(engine, style_loss, pooling, tile):
    """Every term at once: content, style (both losses), total variation (weight raised so it
    counts), both poolings, 10 and 3 blocks."""
    objective, tiled, pixels = objectives(engine, tile, style_loss=style_loss, pooling=pooling,
                                          tv_weight=1e-2)
    total, terms, grad = gradient(objective, pixels, engine, "fp32")
    tiled_total, tiled_terms, tiled_grad = gradient(tiled, pixels, engine, "fp32")
    assert tiled_total == pytest.approx(total, rel=1e-5)
    assert tiled_terms == pytest.approx(terms, rel=1e-5)
    assert float((tiled_grad - grad).norm() / grad.norm()) < 1e-4


@pytest.mark.parametrize("term", ["content", "style", "tv"])
def test_each_term_alone_tiles_exactly(engine, term):
    weights = {"content_weight": 0.0, "style_weight": 0.0, "tv_weight": 0.0}
    weights[f"{term}_weight"] = 1.0
    objective, tiled, pixels = objectives(engine, 128, **weights)
    _, _, grad = gradient(objective, pixels, engine, "fp32")
    _, _, tiled_grad = gradient(tiled, pixels, engine, "fp32")
    assert float(grad.norm()) > 0
    assert float((tiled_grad - grad).norm() / grad.norm()) < 1e-4


@pytest.mark.parametrize("style_loss", ["gram", "wasserstein"])
def test_tiled_bf16_objective_within_one_percent(engine, style_loss):
    objective, tiled, pixels = objectives(engine, 128, "bf16", style_loss=style_loss)
    total, _, grad = gradient(objective, pixels, engine, "bf16")
    tiled_total, _, tiled_grad = gradient(tiled, pixels, engine, "bf16")
    assert tiled_total == pytest.approx(total, rel=0.01)
    assert float(torch.nn.functional.cosine_similarity(
        tiled_grad.flatten(), grad.flatten(), dim=0)) > 0.98


def test_targets_computed_by_blocks_equal_whole_image_ones(engine):
    pixels = engine.targets.pixels(make_image(WIDTH, HEIGHT, seed=3), (WIDTH, HEIGHT))
    layers = ["relu1_1", "relu3_1", "relu5_1"]
    with torch.no_grad():
        found = vgg_features(engine.model, pixels, [*layers, "relu4_2"], "max")
    stats = tiled_raw_moments(engine.model, pixels, layers, "max", 64)
    for layer in layers:
        expected = raw_moments(found[layer])
        # Sums over other block orders round differently: near-zero entries of a Gram whose
        # largest is ~1e6 (relu5_1) differ by ~0.2, so the absolute tolerance follows the
        # matrix's scale (2e-7 of it was measured; a block missing or counted twice is 1e-2).
        scale = float(expected.second.abs().max())
        assert torch.allclose(stats[layer].second, expected.second, rtol=1e-4, atol=1e-5 * scale)
        assert torch.allclose(stats[layer].mean, expected.mean, rtol=1e-4, atol=1e-4)
    content = tiled_features(engine.model, pixels, "relu4_2", "max", 64)
    scale = float(found["relu4_2"].abs().max())
    assert torch.allclose(content, found["relu4_2"], rtol=1e-4, atol=1e-5 * scale)


def test_no_gradient_asked_gives_the_objective_only(engine):
    objective, tiled, pixels = objectives(engine, 128)
    with torch.no_grad():
        total, _ = objective(pixels)
        tiled_total, _ = tiled(pixels)
    assert float(tiled_total) == pytest.approx(float(total), rel=1e-5)


def test_a_run_forced_to_tile_gives_the_untiled_image(engine):
    content, style = make_image(160, 112, seed=1), make_image(64, 64, seed=2)
    # Two steps: L-BFGS amplifies rounding-level differences of the sums as it goes (the same
    # run differs by up to 3 levels on 15 values after 4 steps, 0 after 1, as measured).
    settings = Settings(size=160, scales=1, steps=2, precision="fp32")
    untiled = engine.stylize(content, [style], settings)
    tiled = engine.stylize(content, [style], settings.with_changes(tile=128))  # 2 blocks
    a = np.asarray(untiled.image, dtype=np.float64)
    b = np.asarray(tiled.image, dtype=np.float64)
    assert tiled.losses["total"] == pytest.approx(untiled.losses["total"], rel=1e-4)
    assert np.abs(a - b).max() <= 1  # 8-bit rounding of values within ~1e-4 of each other
    assert np.abs(a - b).mean() < 0.01
