"""`python -m nfx run/rerun` end to end, as a user runs them."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from PIL import Image

from nfx.images import read_png_settings
from nfx.run_record import read_run_png

from conftest import make_image

ROOT = Path(__file__).resolve().parent.parent


def nfx(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nfx", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_help_shows_every_setting_with_default_and_range():
    out = nfx("run", "--help").stdout
    assert "--style-weight" in out and "default: 30" in out
    assert "range [16, 4096]" in out and "{lbfgs,adam}" in out


def test_run_then_rerun_from_the_png_alone(tmp_path):
    content, style = tmp_path / "c.png", tmp_path / "s.jpg"
    make_image(60, 40, seed=1).save(content)
    make_image(50, 50, seed=2).save(style)
    out = tmp_path / "out.png"
    done = nfx("run", str(content), str(style), "-o", str(out), "--size", "48", "--steps", "3",
               "--scales", "2", "--style-weight", "5e3")
    assert done.returncode == 0, done.stderr
    assert "it/s" in done.stderr or "s/it" in done.stderr  # the tqdm bar
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
