"""Image input (every kind of file users bring) and PNG settings round-trips."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from nfx.errors import InputError
from nfx.images import load_image, png_bytes, read_png_info, read_png_settings
from nfx.settings import Settings

from conftest import image_bytes, make_image


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "L", "1", "CMYK", "I;16", "I", "F"])
def test_every_mode_becomes_rgb(mode):
    source = make_image(20, 10, seed=1)
    if mode == "I;16":
        image = Image.fromarray((np.asarray(source.convert("L"), dtype=np.uint16) * 257))
    elif mode in ("I", "F"):
        image = source.convert("L").convert(mode)
    else:
        image = source.convert(mode)
    fmt = "TIFF" if mode in ("CMYK", "F", "I") else "PNG"
    loaded = load_image(image_bytes(image, fmt))
    assert loaded.mode == "RGB" and loaded.size == (20, 10)


def test_sixteen_bit_keeps_its_range():
    ramp = np.tile(np.linspace(0, 65535, 64, dtype=np.uint16), (4, 1))
    loaded = np.asarray(load_image(image_bytes(Image.fromarray(ramp))))
    assert loaded[..., 0].min() == 0 and loaded[..., 0].max() == 255


def test_transparent_pixels_become_white():
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert load_image(image_bytes(rgba)).getpixel((0, 0)) == (255, 255, 255)


def test_exif_orientation_is_applied():
    wide = make_image(30, 10, seed=2)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = image_bytes(wide, "JPEG", exif=exif.tobytes())
    assert load_image(data).size == (10, 30)


@pytest.mark.parametrize("data,message", [
    (b"this is not an image", "not an image file"),
    (b"", "not an image file"),
])
def test_non_images_are_refused_by_name(data, message):
    with pytest.raises(InputError, match=f"upload.txt: {message}"):
        load_image(data, name="upload.txt")


def test_truncated_image_is_refused():
    data = image_bytes(make_image(64, 64, seed=3), "JPEG")
    with pytest.raises(InputError, match="photo.jpg: cannot read image"):
        load_image(data[: len(data) // 2], name="photo.jpg")


def test_decompression_bomb_is_refused(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("1", (9000, 9000)).save(path)  # tiny file, 81 megapixels
    with pytest.raises(InputError, match="bomb.png: 9000x9000 is too large"):
        load_image(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(InputError, match="nothing.png: file not found"):
        load_image(tmp_path / "nothing.png")


def test_png_settings_round_trip():
    settings = Settings(size=300, style_weight=2.5e4, preserve_color="luminance",
                        style_layers=("relu1_1", "relu3_1"), style_layer_weights=(1.0, 0.5))
    data = png_bytes(make_image(8, 8), settings, {"content": "/a.png", "seconds": 1.5})
    assert read_png_settings(data) == settings
    assert read_png_info(data)["content"] == "/a.png"
    assert Image.open(io.BytesIO(data)).size == (8, 8)


def test_png_without_settings_is_a_clear_error():
    with pytest.raises(InputError, match="no NFX settings embedded"):
        read_png_settings(image_bytes(make_image(8, 8)))


def test_settings_from_a_newer_version_keep_what_they_know():
    text = Settings(steps=7).to_json().replace('"steps": 7', '"steps": 7, "future_knob": 1')
    assert Settings.from_json(text).steps == 7
    with pytest.raises(InputError, match="future_knob"):
        Settings.from_json(text, strict=True)


def test_an_embedded_colour_profile_is_converted_to_srgb():
    from conftest import icc_profile, to_srgb_by_hand
    from nfx.images import color_profile
    pixel = (180, 120, 60)
    tagged = image_bytes(Image.new("RGB", (6, 4), pixel), "PNG",
                         icc_profile=icc_profile("Display P3 (test)"))
    loaded = np.asarray(load_image(tagged))[0, 0]
    expected = to_srgb_by_hand(pixel)
    assert np.abs(loaded - expected).max() <= 2, (loaded, expected)
    assert np.abs(loaded - np.array(pixel)).max() > 8, "read as sRGB it would be off"
    assert color_profile(tagged) == "Display P3 (test)"
    plain = image_bytes(Image.new("RGB", (6, 4), pixel), "PNG")
    assert tuple(np.asarray(load_image(plain))[0, 0]) == pixel and color_profile(plain) is None


def test_a_broken_colour_profile_reads_the_pixels_as_srgb():
    from nfx.images import color_profile
    broken = image_bytes(Image.new("RGB", (6, 4), (10, 20, 30)), "PNG",
                         icc_profile=b"not a profile at all")
    assert tuple(np.asarray(load_image(broken))[0, 0]) == (10, 20, 30)
    assert color_profile(broken) is None
