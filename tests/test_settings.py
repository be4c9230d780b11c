"""The one settings object and what is derived from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nfx.errors import InputError
from nfx.settings import FIELDS, INDEXED_FIELDS, Settings, field, parse_sweep


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
