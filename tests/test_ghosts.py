"""The ghost term (nfx.engine.ghosts, issue #20): its value on constructed features, its
gradient, its tiled evaluation, a real run that it keeps from copying the painting, and the
setting's identity for runs stored before it existed."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from conftest import make_image
from nfx.app import samples
from nfx.engine.devices import autocast
from nfx.engine.ghosts import MAX_PAINTING_POSITIONS, GhostLoss, painting_rows
from nfx.engine.scores import COPY_LAYER, copy_score
from nfx.engine.tiling import TiledObjective
from nfx.images import resize
from nfx.settings import FIELDS, Settings

PAINTING = torch.eye(4).reshape(1, 4, 2, 2)  # four positions with one-hot features


def one_column(rows: list[list[float]]) -> torch.Tensor:
    """(1, C, N, 1) features from rows of channel values."""
    return torch.tensor(rows).T.reshape(1, len(rows[0]), len(rows), 1)


def test_the_penalty_counts_only_near_copies_by_how_far_past_the_threshold():
    ghost = GhostLoss(COPY_LAYER, painting_rows(PAINTING, torch.float32))
    # cosines to the nearest painting position: 1.0, 0.8, 0.5 (an even mix of all), 0 (dead)
    output = one_column([[2.0, 0, 0, 0], [0.6, 0.8, 0, 0], [1.0, 1.0, 1.0, 1.0], [0, 0, 0, 0]])
    total, count = ghost.penalty(output)
    assert count == 4
    assert float(total) == pytest.approx(0.5 ** 2 + 0.3 ** 2, rel=1e-5)
    assert float(ghost({COPY_LAYER: output})) == pytest.approx((0.25 + 0.09) / 4, rel=1e-5)


def test_its_gradient_moves_a_copy_away_from_the_painting_and_leaves_the_rest():
    ghost = GhostLoss(COPY_LAYER, painting_rows(PAINTING, torch.float32))
    output = one_column([[1.0, 0.1, 0, 0], [0.2, 0.2, 0.2, 0.2]])  # a copy; a mix (cos 0.5)
    gradient = ghost.feature_gradient(output, 1.0)
    assert float(gradient[..., 1, :].abs().sum()) == 0.0  # no push at or below the threshold
    stepped = output - 0.5 * gradient
    assert float(ghost({COPY_LAYER: stepped})) < float(ghost({COPY_LAYER: output}))
    similarity = lambda f: torch.nn.functional.cosine_similarity(f[0, :, 0, 0], PAINTING[0, :, 0, 0], 0)
    assert float(similarity(stepped)) < float(similarity(output))


def test_a_large_painting_is_searched_through_a_fixed_subset_of_its_positions():
    big = torch.rand(1, 8, 200, 100)  # 20000 positions
    rows = painting_rows(big, torch.bfloat16)
    assert rows.shape == (MAX_PAINTING_POSITIONS, 8) and rows.dtype == torch.bfloat16
    assert torch.equal(rows, painting_rows(big, torch.bfloat16))  # the same every time
    assert torch.allclose(rows.float().norm(dim=1), torch.ones(MAX_PAINTING_POSITIONS), atol=1e-2)


@pytest.mark.slow
def test_the_ghost_term_alone_tiles_exactly(engine):
    """Pixels that are the painting (noised) copy it everywhere: the term is large, and the
    tiled evaluation gives its untiled value and gradient."""
    width, height = 224, 160
    painting = make_image(width, height, seed=2)
    s = Settings(size=width, precision="fp32", content_weight=0.0, style_weight=0.0,
                 tv_weight=0.0, ghost_weight=1.0)
    objective = engine.targets.objective(make_image(width, height, seed=1), [painting],
                                         ("c", ["s"]), (width, height), s, "fp32")
    pixels = (engine.targets.pixels(painting, (width, height))
              + torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(0))
              * 10).clamp(0, 255)

    def evaluate(evaluated):
        image = pixels.clone().requires_grad_(True)
        with autocast(engine.device, "fp32"):
            total, terms = evaluated(image)
        total.backward()
        return float(terms["ghost"].detach()), image.grad

    value, grad = evaluate(objective)
    tiled_value, tiled_grad = evaluate(TiledObjective(objective, 64))
    assert value > 0.01
    assert tiled_value == pytest.approx(value, rel=1e-5)
    assert float((tiled_grad - grad).norm() / grad.norm()) < 1e-4


@pytest.mark.slow
def test_a_run_started_from_the_painting_stops_copying_it(engine):
    """init: style starts as a copy of the painting everywhere (copy score ~1); the content
    term alone barely moves the deep features off it in 30 steps, the ghost term does."""
    photo, painting = samples.landscape(128, 96), samples.swirls(128)
    scores = {}
    for weight in (0.0, 10.0):
        s = Settings(size=128, scales=1, steps=30, init="style", ghost_weight=weight)
        run = engine.stylize(photo, [painting], s)
        out = engine.features(run.image, [COPY_LAYER])[COPY_LAYER]
        ref = engine.features(resize(painting, run.image.size), [COPY_LAYER])[COPY_LAYER]
        scores[weight] = copy_score(out, ref)
        assert (run.losses["ghost"] > 0) == (weight > 0)
    assert scores[0.0] > 0.8
    assert scores[10.0] < 0.4


def test_settings_stored_before_the_ghost_term_read_as_without_it_and_keep_their_identity():
    stored = Settings(ghost_weight=0.0).model_dump(mode="json")
    stored.pop("ghost_weight")  # a run stored by NFX 0.2
    old = Settings.from_json(json.dumps(stored))
    assert old.ghost_weight == FIELDS["ghost_weight"].legacy == 0.0
    for name in ("method", "strength", "region_feather"):  # what an unmasked optimisation's
        stored.pop(name)                                     # digest always left out
    assert old.digest() == hashlib.sha256(json.dumps(stored, sort_keys=True).encode()).hexdigest()
    assert Settings().ghost_weight > 0 and Settings().digest() != old.digest()
    with_it = Settings().with_changes(ghost_weight=3.0)
    assert Settings.from_json(with_it.to_json()) == with_it  # a stored value wins
