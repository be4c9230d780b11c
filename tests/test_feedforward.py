"""The feed-forward method (nfx.feedforward, Ghiasi et al. 2017) with its real models on small
images, and the numpy colour-preservation functions it shares with the engine (nfx.color)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nfx import color
from nfx.app import samples
from nfx.errors import InputError
from nfx.feedforward import check_models, render, style_vector, stylize
from nfx.feedforward.network import forget_style_vectors
from nfx.feedforward.models import MODELS_ENV, PACKAGE, SHA256, TRANSFORMER_FILE, model_directory
from nfx.images import resize, size_for_long_edge

ROOT = Path(__file__).resolve().parent.parent
# The app's procedural samples: tests need no picture outside the repository
PICTURES = {"landscape": lambda: samples.landscape(160, 120),
            "still_life": lambda: samples.still_life(150, 100),
            "swirls": lambda: samples.swirls(256), "mosaic": lambda: samples.mosaic(200),
            "brushstrokes": lambda: samples.brushstrokes(200), "waves": lambda: samples.waves(200)}
SIZE = 96


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return PICTURES["landscape"]()


@pytest.fixture(scope="module")
def painting() -> Image.Image:
    return resize(PICTURES["swirls"](), (256, 160))


@pytest.fixture(scope="module")
def other_painting() -> Image.Image:
    return resize(PICTURES["mosaic"](), (160, 204))


def pixels(image: Image.Image) -> color.Pixels:
    return np.asarray(image, dtype=np.float32)


@pytest.mark.parametrize("width, height, size", [(97, 61, 101), (61, 97, 101), (200, 37, 77),
                                                  (33, 150, 63), (50, 50, 17)])
def test_output_has_exactly_the_asked_size_for_odd_sizes_and_aspects(photo, painting, width,
                                                                    height, size):
    content = resize(photo, (width, height))
    result = stylize(content, [painting], size=size)
    assert result.size == size_for_long_edge((width, height), size)
    assert max(result.size) == size and result.mode == "RGB"


def colour_distance(first: Image.Image, second: Image.Image) -> float:
    """Distance between the Gaussian fits of two images' colours (the 2-Wasserstein distance
    for commuting covariances): mean and covariance, what colour statistics are here."""
    def fit(image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
        values = pixels(image).reshape(-1, 3).astype(np.float64)
        eigenvalues, vectors = np.linalg.eigh(np.cov(values.T))
        root = vectors @ np.diag(np.sqrt(np.clip(eigenvalues, 0, None))) @ vectors.T
        return values.mean(axis=0), root
    (mean_a, root_a), (mean_b, root_b) = fit(first), fit(second)
    return float(np.sqrt(((mean_a - mean_b) ** 2).sum() + ((root_a - root_b) ** 2).sum()))


@pytest.mark.parametrize("photo_name, painting_name", [("still_life", "brushstrokes"),
                                                       ("landscape", "waves")])
def test_result_moves_from_the_content_towards_the_paintings_colours(photo_name,
                                                                     painting_name):
    content = resize(PICTURES[photo_name](), (150, 100))
    painting = resize(PICTURES[painting_name](), (200, 160))
    result = stylize(content, [painting], size=SIZE)
    content = resize(content, result.size)
    assert np.abs(pixels(result) - pixels(content)).mean() > 20
    assert colour_distance(result, painting) < 0.75 * colour_distance(content, painting)


def test_a_blend_of_one_and_zero_is_the_single_style(photo, painting, other_painting):
    single = stylize(photo, [painting], size=SIZE)
    mixed = stylize(photo, [painting, other_painting], size=SIZE, blend=(1.0, 0.0))
    assert np.array_equal(pixels(single), pixels(mixed))
    even = stylize(photo, [painting, other_painting], size=SIZE)
    assert np.abs(pixels(even) - pixels(single)).mean() > 5


def test_strength_zero_is_the_contents_own_style_and_one_is_the_paintings(photo, painting):
    content = resize(photo, size_for_long_edge(photo.size, SIZE))
    own = render(content, style_vector(content))
    weakest = stylize(photo, [painting], size=SIZE, strength=0.0)
    full = stylize(photo, [painting], size=SIZE, strength=1.0)
    half = stylize(photo, [painting], size=SIZE, strength=0.5)
    assert np.abs(pixels(weakest) - own).mean() < 1.0
    assert np.abs(pixels(full) - own).mean() > 10
    between = np.abs(pixels(half) - own).mean()
    assert 1.0 < between < np.abs(pixels(full) - own).mean()


def test_luminance_preservation_keeps_the_contents_chroma(photo, painting):
    kept = stylize(photo, [painting], size=SIZE, preserve_color="luminance")
    plain = stylize(photo, [painting], size=SIZE)
    content_iq = color.rgb_to_yiq(pixels(resize(photo, kept.size)))[..., 1:]
    kept_error = np.abs(color.rgb_to_yiq(pixels(kept))[..., 1:] - content_iq).mean()
    plain_error = np.abs(color.rgb_to_yiq(pixels(plain))[..., 1:] - content_iq).mean()
    assert kept_error < 2.0  # rounding and clipping to 0-255
    assert plain_error > 3 * kept_error
    # and it is still stylised: the luminance is the rendering's, not the content's
    assert np.abs(color.luminance(pixels(kept)) - color.luminance(pixels(plain))).mean() < 3


def test_histogram_preservation_brings_the_output_to_the_contents_colours(painting):
    coffee = PICTURES["still_life"]()
    kept = stylize(coffee, [painting], size=SIZE, preserve_color="histogram")
    plain = stylize(coffee, [painting], size=SIZE)
    content = resize(coffee, kept.size)
    assert colour_distance(kept, content) < 0.5 * colour_distance(plain, content)


@pytest.mark.parametrize("arguments, words", [
    (dict(blend=(1.0,)), "blend has 1 weights for 2"),
    (dict(blend=(0.0, 0.0)), "not all zero"),
    (dict(strength=1.5), "strength"),
    (dict(preserve_color="sepia"), "preserve_color"),
    (dict(style_scale=0.0), "style_scale"),
])
def test_invalid_arguments_are_refused_in_one_line(photo, painting, arguments, words):
    with pytest.raises(InputError, match=words) as refused:
        stylize(photo, [painting, painting], size=SIZE, **arguments)
    assert "\n" not in str(refused.value)


def _copied_models(folder: Path) -> Path:
    folder.mkdir()
    for name in SHA256:
        shutil.copy(model_directory() / name, folder / name)
    return folder


def test_installed_models_pass_the_check():
    check_models()


def test_a_changed_model_file_is_refused_in_one_line(tmp_path, monkeypatch, photo, painting):
    folder = _copied_models(tmp_path / "models")
    check_models(folder)
    data = bytearray((folder / TRANSFORMER_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / TRANSFORMER_FILE).write_bytes(bytes(data))
    monkeypatch.setenv(MODELS_ENV, str(folder))
    with pytest.raises(InputError) as refused:
        stylize(photo, [painting], size=SIZE)
    message = str(refused.value)
    assert "\n" not in message and TRANSFORMER_FILE in message and "changed" in message
    assert PACKAGE in message and "reinstall" in message


def test_a_missing_model_file_is_refused_in_one_line(tmp_path, monkeypatch, photo, painting):
    folder = _copied_models(tmp_path / "models")
    (folder / TRANSFORMER_FILE).unlink()
    with pytest.raises(InputError) as checked:
        check_models(folder)
    monkeypatch.setenv(MODELS_ENV, str(folder))
    with pytest.raises(InputError) as refused:
        stylize(photo, [painting], size=SIZE)
    for message in (str(checked.value), str(refused.value)):
        assert "\n" not in message and TRANSFORMER_FILE in message and "missing" in message
        assert PACKAGE in message


def test_stylize_never_loads_torch():
    script = (
        "import sys\n"
        "from PIL import Image\n"
        "from nfx.feedforward import device, stylize\n"
        "content = Image.new('RGB', (40, 30), (200, 120, 40))\n"
        "painting = Image.effect_noise((64, 64), 60).convert('RGB')\n"
        "out = stylize(content, [painting], size=37, preserve_color='luminance')\n"
        "assert out.size == (37, 28), out.size\n"
        "assert device() in ('cpu', 'cuda')\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('ok')\n")
    env = {key: value for key, value in os.environ.items() if key != MODELS_ENV}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


# nfx.color: the numpy colour functions (the engine's nfx.engine.color adapts them to tensors)

def _random_image(seed: int, tint: tuple[float, float, float]) -> color.Pixels:
    generator = np.random.default_rng(seed)
    base = generator.uniform(0, 255, (24, 32, 3)) * np.array(tint)
    mixed = base @ generator.uniform(0.2, 1.0, (3, 3)) / 1.8  # correlated channels
    return np.clip(mixed, 0, 255).astype(np.float32)


def test_colour_statistics_match_gives_the_references_mean_and_covariance():
    source, reference = _random_image(1, (1.0, 0.3, 0.2)), _random_image(2, (0.3, 0.6, 1.0))
    matched = color.match_color_statistics(source, reference)
    assert matched.shape == source.shape and matched.dtype == np.float32
    flat, wanted = matched.reshape(-1, 3), reference.reshape(-1, 3)
    assert np.allclose(flat.mean(axis=0), wanted.mean(axis=0), atol=1.0)
    assert np.allclose(np.cov(flat.T), np.cov(wanted.T), rtol=0.05, atol=5.0)


def test_recombined_chroma_keeps_the_first_images_luminance_and_the_seconds_chroma():
    stylised, content = _random_image(3, (1.0, 0.9, 0.5)), _random_image(4, (0.4, 0.8, 1.0))
    recombined = color.rgb_to_yiq(color.recombine_chroma(stylised, content))
    assert np.allclose(recombined[..., 0], color.rgb_to_yiq(stylised)[..., 0], atol=1e-3)
    assert np.allclose(recombined[..., 1:], color.rgb_to_yiq(content)[..., 1:], atol=1e-3)


def test_yiq_round_trip_and_grey_luminance():
    image = _random_image(5, (1.0, 1.0, 1.0))
    assert np.allclose(color.yiq_to_rgb(color.rgb_to_yiq(image)), image, atol=1e-3)
    grey = color.luminance(image)
    assert grey.shape == image.shape
    assert np.array_equal(grey[..., 0], grey[..., 2])
    assert np.allclose(grey[..., 0], image @ np.array([0.299, 0.587, 0.114]), atol=1e-3)


def test_matched_luminance_takes_the_contents_mean_and_spread():
    style = color.luminance(_random_image(6, (0.2, 0.2, 0.2)))
    content = color.luminance(_random_image(7, (1.0, 1.0, 1.0)))
    matched = color.match_luminance(style, content)
    assert np.isclose(matched.mean(), content.mean(), atol=0.1)
    assert np.isclose(matched.std(), content.std(), rtol=1e-3)


def test_style_vectors_are_kept_by_picture_and_a_changed_picture_gets_its_own(painting):
    """The preview grid renders each painting with several photos: its vector is computed
    once; a painting that differs by one pixel is another painting."""
    first = style_vector(painting)
    assert style_vector(painting.copy()) is first  # same pixels: the kept vector
    changed = painting.copy()
    changed.putpixel((0, 0), tuple(255 - v for v in changed.getpixel((0, 0))))
    other = style_vector(changed)
    assert other is not first
    forget_style_vectors()
    again = style_vector(painting)
    assert again is not first and np.allclose(again, first)  # computed afresh, the same
