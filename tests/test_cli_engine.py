"""`python -m nfx run/rerun` end to end, as a user runs them."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from PIL import Image, PngImagePlugin

from nfx.images import INFO_KEY, SETTINGS_KEY, read_png_info, read_png_settings
from nfx.run_record import read_run_png
from nfx.settings import FIELDS, Settings

from conftest import make_image

ROOT = Path(__file__).resolve().parent.parent


def nfx(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nfx", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def input_files(folder: Path, style_name: str = "s.png") -> tuple[Path, Path]:
    """A content (c.png, 60×40) and a style picture written to `folder`."""
    content, style = folder / "c.png", folder / style_name
    make_image(60, 40, seed=1).save(content)
    make_image(50, 50, seed=2).save(style)
    return content, style


def test_help_shows_every_setting_with_default_and_range():
    out = nfx("run", "--help").stdout
    assert "--style-weight" in out and "(default: 10; range [0, 1e+09])" in out
    assert f"range [16, {FIELDS['size'].maximum}]" in out and "{lbfgs,adam}" in out


def test_run_then_rerun_from_the_png_alone(tmp_path):
    content, style = input_files(tmp_path, style_name="s.jpg")
    out = tmp_path / "out.png"
    done = nfx("run", str(content), str(style), "-o", str(out), "--size", "48", "--steps", "3",
               "--scales", "2", "--style-weight", "5e3")
    assert done.returncode == 0, done.stderr
    assert "iteration 3/3" in done.stderr and "100%" in done.stderr  # the tqdm bar, by work
    assert Image.open(out).size == (48, 32)
    settings = read_png_settings(out)
    assert (settings.size, settings.steps, settings.style_weight) == (48, 3, 5e3)
    recorded = read_run_png(out).content
    assert (recorded.name, recorded.path) == ("c.png", str(content))
    assert recorded.sha256 == hashlib.sha256(content.read_bytes()).hexdigest()

    again = tmp_path / "again.png"
    empty_db = f"sqlite:///{tmp_path / 'none.db'}"  # no gallery: the recorded files serve
    done = nfx("rerun", str(out), "-o", str(again), "--steps", "2", "--quiet", "--db", empty_db)
    assert done.returncode == 0, done.stderr
    rerun = read_png_settings(again)
    assert rerun == settings.with_changes(steps=2)
    assert not (tmp_path / "none.db").exists()  # a lookup creates no database

    content.write_bytes(b"changed")  # the recorded file is no longer that picture
    done = nfx("rerun", str(out), "-o", str(tmp_path / "x.png"), "--db", empty_db)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "content image c.png (sha256" in done.stderr and "--content" in done.stderr


# Written by NFX 0.1 (before the losses were normalised and style_loss existed), copied
# verbatim from `Settings(size=48, scales=2, steps=3, style_weight=5e3).to_json()`.
OLD_SETTINGS_JSON = (
    '{"content_layer": "relu4_2", "content_weight": 1.0, "init": "content", '
    '"learning_rate": 2.0, "optimizer": "lbfgs", "pooling": "max", "precision": "auto", '
    '"preserve_color": "none", "scales": 2, "seed": 0, "size": 48, "steps": 3, '
    '"style_blend": [], "style_layer_weights": [1.0, 1.0, 1.0, 1.0, 1.0], '
    '"style_layers": ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"], '
    '"style_scale": 1.0, "style_weight": 5000.0, "tv_weight": 0.0001}')


def test_a_png_made_before_normalised_losses_still_reruns(tmp_path):
    """Old settings keep their numbers (the style weight's scale changed, as its help says)
    and take the new fields' defaults."""
    content, style = input_files(tmp_path)
    old = tmp_path / "old.png"
    meta = PngImagePlugin.PngInfo()
    meta.add_text(SETTINGS_KEY, OLD_SETTINGS_JSON)
    meta.add_text(INFO_KEY, json.dumps({"content": str(content), "styles": [str(style)]}))
    make_image(48, 32, seed=3).save(old, pnginfo=meta)
    stored = read_png_settings(old)
    assert stored == Settings(size=48, scales=2, steps=3, style_weight=5e3)
    assert stored.style_loss == "gram"

    again = tmp_path / "again.png"
    done = nfx("rerun", str(old), "-o", str(again), "--quiet")
    assert done.returncode == 0, done.stderr
    assert read_png_settings(again) == stored
    assert Image.open(again).size == (48, 32)


def test_run_with_the_wasserstein_style_loss(tmp_path):
    content, style = input_files(tmp_path)
    out = tmp_path / "w2.png"
    done = nfx("run", str(content), str(style), "-o", str(out), "--size", "48", "--steps", "3",
               "--scales", "2", "--style-loss", "wasserstein", "--quiet")
    assert done.returncode == 0, done.stderr
    assert read_png_settings(out).style_loss == "wasserstein"
    assert read_png_info(out)["losses"]["style"] > 0
    done = nfx("run", str(content), str(style), "-o", str(out), "--style-loss", "sliced")
    assert done.returncode == 2 and "'sliced' is not one of gram, wasserstein" in done.stderr


def test_bad_input_is_one_line_and_exit_code_2(tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    good = tmp_path / "good.png"
    make_image(20, 20).save(good)
    cases = [
        (["run", str(text), str(good), "-o", str(tmp_path / "o.png")], "notes.jpg: not an image"),
        (["run", str(good), str(tmp_path / "missing.png"), "-o", str(tmp_path / "o.png")],
         "missing.png: file not found"),
        (["run", str(good), str(good), "-o", str(tmp_path / "o.png"), "--size", "5"],
         "size: Input should be greater than or equal to 16"),
        (["run", str(good), str(good), "-o", str(tmp_path / "o.png"), "--optimizer", "sgd"],
         "'sgd' is not one of lbfgs, adam"),
        (["run", str(good), str(good), "-o", str(tmp_path / "o.jpg")], "must be a .png"),
        (["rerun", str(good), "-o", str(tmp_path / "o.png")], "no NFX settings embedded"),
    ]
    for args, message in cases:
        done = nfx(*args)
        assert done.returncode == 2, (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, done.stderr)
        assert "Traceback" not in done.stderr


def test_a_photo_with_a_colour_profile_says_so_in_the_png(tmp_path):
    from conftest import icc_profile
    _, style = input_files(tmp_path)
    content = tmp_path / "phone.png"
    make_image(60, 40, seed=1).save(content, icc_profile=icc_profile("Display P3 (test)"))
    out = tmp_path / "out.png"
    done = nfx("run", str(content), str(style), "-o", str(out), "--size", "32", "--steps", "1",
               "--scales", "1", "--quiet")
    assert done.returncode == 0, done.stderr
    assert read_run_png(out).content.profile == "Display P3 (test)"
    assert read_run_png(out).styles[0].profile is None
