"""The records every layer shares: settings (the one parameter list), image I/O and PNG
metadata, colour profiles."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import image_bytes, make_image
from nfx.errors import InputError
from nfx.images import load_image, png_bytes, read_png_info, read_png_settings
from nfx.settings import FIELDS, INDEXED_FIELDS, Settings, field, parse_sweep
from nfx.labels import run_text, settings_summary, varying_fields


def test_every_field_has_help_and_a_range_or_choices():
    for spec in FIELDS.values():
        assert spec.help, spec.name
        assert spec.kind == "list" or spec.choices or (
            spec.minimum is not None and spec.maximum is not None), spec.name
    assert FIELDS["optimizer"].choices == ("lbfgs", "adam")
    assert FIELDS["size"].minimum == 16 and FIELDS["size"].maximum == 8192
    assert "relu4_2" in FIELDS["style_layers"].item_choices


def test_indexed_fields_are_the_ones_users_filter_on():
    assert {"size", "style_weight", "steps", "content_weight"} <= set(INDEXED_FIELDS)
    assert "style_layers" not in INDEXED_FIELDS


def test_parse_sweep_validates_names_values_and_ranges():
    assert parse_sweep("style_weight=1e4, 1e5") == ("style_weight", [1e4, 1e5])
    assert parse_sweep("size=256,512") == ("size", [256, 512])
    with pytest.raises(InputError, match="unknown setting 'colour'"):
        parse_sweep("colour=1,2")
    with pytest.raises(InputError, match="size: '12.5' is not a whole number"):
        parse_sweep("size=12.5")
    with pytest.raises(InputError, match="less than or equal to 8192"):
        parse_sweep("size=9000")
    with pytest.raises(InputError, match="cannot be swept"):
        parse_sweep("style_layers=relu1_1")
    with pytest.raises(InputError, match="must look like"):
        parse_sweep("steps")


def test_size_goes_up_to_8192_and_no_further():
    assert Settings(size=8192).size == 8192
    with pytest.raises(InputError) as info:
        Settings.from_dict({"size": 8193})
    assert str(info.value) == "invalid settings: size: Input should be less than or equal to 8192"


def test_settings_are_validated_with_one_line_errors():
    with pytest.raises(InputError) as info:
        Settings.from_dict({"steps": 0, "optimizer": "sgd"})
    message = str(info.value)
    assert "\n" not in message and "steps" in message and "optimizer" in message
    with pytest.raises(InputError, match="style_layer_weights has 5 values"):
        Settings().with_changes(style_layers=("relu1_1",))


def test_digest_and_differences():
    a, b = Settings(), Settings(style_weight=1e5)
    assert a.digest() == Settings().digest() != b.digest()
    assert a.differences(b) == {"style_weight": (10.0, 1e5)}
    assert Settings.from_json(b.to_json()) == b


def test_field_parse_and_format_are_inverse():
    for name, value in [("style_weight", 1e5), ("size", 256), ("pooling", "avg"),
                        ("style_layers", ("relu1_1", "relu2_1")),
                        ("style_layer_weights", (1.0, 0.5))]:
        spec = field(name)
        assert spec.parse(spec.format(value)) == value


def test_the_readme_settings_table_shows_the_real_defaults():
    """The README's table is for reading; the settings object is the truth it must match."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    rows = re.findall(r"^\| (`[a-z_]+`(?:, `[a-z_]+`)*) \| ([^|]+) \|", readme, re.MULTILINE)
    assert len(rows) >= 6
    for names, defaults in rows:
        names = re.findall(r"`([a-z_]+)`", names)
        values = [v.strip() for v in defaults.split(",")]
        assert len(names) == len(values), names
        for name, value in zip(names, values):
            assert field(name).parse(value) == FIELDS[name].default, name


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


# --- methods (issue #21): what a feed-forward run reads ------------------------------------------

def test_a_runs_identity_ignores_what_its_method_does_not_read():
    preview = Settings(method="feedforward")
    assert preview.with_changes(steps=5, seed=3).digest() == preview.digest()
    assert preview.with_changes(strength=0.5).digest() != preview.digest()
    assert Settings(steps=5).digest() != Settings().digest()
    assert Settings(strength=0.5).digest() == Settings().digest(), "gatys reads no strength"
    # optimisations keep the identity they had before methods existed (stored galleries match)
    # (and before the ghost term existed: its legacy value 0 leaves the digest as it was)
    assert Settings(size=48, scales=2, steps=3, style_weight=5e3, init="style",
                    ghost_weight=0.0).digest() == \
        "54dec58c2890a3fb644b4a01b20130f98b28a1d5f2762e5d82634dd96a0a1450"


def test_labels_and_differences_show_only_what_a_method_reads():
    preview = Settings(method="feedforward", steps=5, strength=0.5)
    assert set(preview.differences(Settings(method="feedforward"))) == {"strength"}
    assert set(preview.differences(Settings())) == {"method", "steps", "strength"}
    assert varying_fields([preview, preview.with_changes(steps=9)]) == []
    assert settings_summary(preview, ["steps", "strength", "size"]) == "Strength 0.5 · Size 512"
    assert run_text(preview) == "512 px, feed-forward"
    assert [n for n, spec in FIELDS.items() if "feedforward" in spec.methods] == \
        ["method", "size", "style_scale", "style_blend", "preserve_color", "strength"]


# --- people and the auth file (#24) ---------------------------------------------------------


def test_a_person_may_change_their_own_and_an_admin_anyones():
    from nfx.errors import NotPermitted
    from nfx.people import LOCAL, signed_in

    alice = signed_in(" Alice@Example.org ")
    admin = signed_in("carol@example.org", frozenset({"carol@example.org"}))
    assert (alice.name, alice.admin, admin.admin) == ("alice@example.org", False, True)
    assert alice.may_change("alice@example.org") and not alice.may_change("local")
    assert admin.may_change("alice@example.org") and LOCAL.may_change("alice@example.org")
    with pytest.raises(NotPermitted, match="^J3 belongs to bob@x.org; only they or an admin "
                                           "can cancel it$"):
        alice.check("bob@x.org", "J3", "cancel")


def test_the_auth_file_names_its_providers_and_admins(tmp_path):
    from conftest import write_auth_file
    from nfx.auth_file import read_auth_file

    one = read_auth_file(write_auth_file(tmp_path / "one.toml", admins=("Carol@Example.org",)))
    assert (one.providers, one.admins) == (("",), frozenset({"carol@example.org"}))
    assert one.provider_label("") == "Sign in"
    named = tmp_path / "named.toml"
    named.write_text('[auth]\nredirect_uri = "https://nfx.example.org/oauth2callback"\n'
                     'cookie_secret = "s3cret-s3cret-s3cret"\n'
                     '[auth.google]\nclient_id = "a"\nclient_secret = "b"\n'
                     'server_metadata_url = "https://accounts.google.com/.well-known/'
                     'openid-configuration"\n')
    found = read_auth_file(named)
    assert (found.providers, found.admins) == (("google",), frozenset())
    assert found.provider_label("google") == "Sign in with Google"
    named.write_text(named.read_text() + '[nfx]\nadmins = "carol@example.org"\n')
    with pytest.raises(InputError, match=r"\[nfx\] admins must be a list of emails"):
        read_auth_file(named)
