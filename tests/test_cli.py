"""`python -m nfx`, as a user runs it: run and rerun, the queue's commands, bad input in
one line."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, PngImagePlugin

from conftest import (TINY, add_pair, make_image, queue_one, run_nfx, start_worker,
                      synthetic_run, wait_exit, write_auth_file)
from nfx.images import INFO_KEY, SETTINGS_KEY, read_png_info, read_png_settings
from nfx.queue import Queue
from nfx.run_record import read_run_png
from nfx.settings import FIELDS, Settings
from nfx.status import JobStatus
from nfx.store import open_store


def input_files(folder: Path, style_name: str = "s.png") -> tuple[Path, Path]:
    """A content (c.png, 60×40) and a style picture written to `folder`."""
    content, style = folder / "c.png", folder / style_name
    make_image(60, 40, seed=1).save(content)
    make_image(50, 50, seed=2).save(style)
    return content, style


def test_help_shows_every_setting_with_default_and_range():
    out = run_nfx("run", "--help").stdout
    assert "--style-weight" in out and "(default: 10; range [0, 1e+09])" in out
    assert f"range [16, {FIELDS['size'].maximum}]" in out and "{lbfgs,adam}" in out


@pytest.mark.slow
def test_run_then_rerun_from_the_png_alone(tmp_path):
    content, style = input_files(tmp_path, style_name="s.jpg")
    out = tmp_path / "out.png"
    done = run_nfx("run", str(content), str(style), "-o", str(out), "--size", "48", "--steps", "3",
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
    done = run_nfx("rerun", str(out), "-o", str(again), "--steps", "2", "--quiet", "--db", empty_db)
    assert done.returncode == 0, done.stderr
    rerun = read_png_settings(again)
    assert rerun == settings.with_changes(steps=2)
    assert not (tmp_path / "none.db").exists()  # a lookup creates no database

    content.write_bytes(b"changed")  # the recorded file is no longer that picture
    done = run_nfx("rerun", str(out), "-o", str(tmp_path / "x.png"), "--db", empty_db)
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


@pytest.mark.slow
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
    assert stored == Settings(size=48, scales=2, steps=3, style_weight=5e3, ghost_weight=0.0)
    assert stored.style_loss == "gram"

    again = tmp_path / "again.png"
    done = run_nfx("rerun", str(old), "-o", str(again), "--quiet")
    assert done.returncode == 0, done.stderr
    assert read_png_settings(again) == stored
    assert Image.open(again).size == (48, 32)


@pytest.mark.slow
def test_run_with_the_wasserstein_style_loss(tmp_path):
    content, style = input_files(tmp_path)
    out = tmp_path / "w2.png"
    done = run_nfx("run", str(content), str(style), "-o", str(out), "--size", "48", "--steps", "3",
               "--scales", "2", "--style-loss", "wasserstein", "--quiet")
    assert done.returncode == 0, done.stderr
    assert read_png_settings(out).style_loss == "wasserstein"
    assert read_png_info(out)["losses"]["style"] > 0
    done = run_nfx("run", str(content), str(style), "-o", str(out), "--style-loss", "sliced")
    assert done.returncode == 2 and "'sliced' is not one of gram, wasserstein" in done.stderr


@pytest.mark.slow
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
        done = run_nfx(*args)
        assert done.returncode == 2, (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, done.stderr)
        assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_a_photo_with_a_colour_profile_says_so_in_the_png(tmp_path):
    from conftest import icc_profile
    _, style = input_files(tmp_path)
    content = tmp_path / "phone.png"
    make_image(60, 40, seed=1).save(content, icc_profile=icc_profile("Display P3 (test)"))
    out = tmp_path / "out.png"
    done = run_nfx("run", str(content), str(style), "-o", str(out), "--size", "32", "--steps", "1",
               "--scales", "1", "--quiet")
    assert done.returncode == 0, done.stderr
    assert read_run_png(out).content.profile == "Display P3 (test)"
    assert read_run_png(out).styles[0].profile is None


def test_cli_batch_list_export(tmp_path, sqlite_url, capsys):
    import io as _io
    import json
    
    
    from nfx.cli import main

    for name, seed in (("a.png", 1), ("b.jpg", 2), ("s.png", 3)):
        make_image(40, 30, seed).save(tmp_path / name)
    (tmp_path / "bad.jpg").write_bytes(b"GIF89a but not really")
    common = ["--db", sqlite_url, "--size", "32", "--scales", "1", "--steps", "2"]

    assert main(["batch", "--content", str(tmp_path / "a.png"), str(tmp_path / "bad.jpg"),
                 "--style", str(tmp_path / "s.png"), *common]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nfx: error: bad.jpg") and err.count("\n") == 1
    assert main(["batch", "--content", str(tmp_path / "a.png"), "--style",
                 str(tmp_path / "s.png"), "--sweep", "steps=1,x", *common]) == 2
    assert "steps" in capsys.readouterr().err
    store = open_store(sqlite_url)
    queue = Queue(store)
    assert store.list_images() == [] and queue.list_batches() == []  # nothing half-written

    assert main(["batch", "--content", str(tmp_path / "a.png"), str(tmp_path / "b.jpg"),
                 "--style", str(tmp_path / "s.png"), "--sweep", "style_weight=1e4,1e5",
                 "--name", "cli", *common]) == 0
    assert capsys.readouterr().out.strip() == "batch 1: 4 jobs queued"
    claim = queue.claim_next("w")
    queue.finish(claim, *synthetic_run(claim))

    assert main(["list", "--db", sqlite_url, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 4 and {r["status"] for r in rows} == {"done", "queued"}
    assert {r["style_weight"] for r in rows} == {1e4, 1e5}
    assert main(["list", "--db", sqlite_url, "--status", "done", "--format", "csv"]) == 0
    table = pd.read_csv(_io.StringIO(capsys.readouterr().out))
    assert len(table) == 1 and {"status", "seconds", "loss_total", "style_weight",
                                "style_layers"} <= set(table.columns)

    out = tmp_path / "out.zip"
    assert main(["export", "1", "-o", str(out), "--db", sqlite_url]) == 0
    assert len([n for n in zipfile.ZipFile(out).namelist() if n.endswith(".png")]) == 1
    assert main(["export", "7", "-o", str(tmp_path / "none.zip"), "--db", sqlite_url]) == 2
    assert not (tmp_path / "none.zip").exists()


@pytest.mark.slow
def test_rerun_a_png_from_the_gallery_finds_its_inputs_by_hash(sqlite_url, tmp_path):
    store = open_store(sqlite_url)
    queue = Queue(store)
    job_id = queue_one(store, TINY)
    wait_exit(start_worker(sqlite_url, "--once"), timeout=180)
    png = tmp_path / "downloaded.png"
    png.write_bytes(store.result_png(queue.get_job(job_id).result_id))  # what the app serves

    done = run_nfx("rerun", str(png), "-o", str(tmp_path / "again.png"), "--steps", "1",
               "--quiet", "--db", sqlite_url)
    assert done.returncode == 0, done.stderr
    again = read_run_png(tmp_path / "again.png")
    assert again.settings == TINY.with_changes(steps=1)
    assert again.content == read_run_png(png).content

    elsewhere = f"sqlite:///{tmp_path / 'other.db'}"
    done = run_nfx("rerun", str(png), "-o", str(tmp_path / "x.png"), "--db", elsewhere)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("nfx: error: content image c.png (sha256 ")
    assert "not in the gallery" in line and "--content" in line


def test_cli_cancel_and_retry(sqlite_url):
    store = open_store(sqlite_url)
    queue = Queue(store)
    job_id = queue_one(store, TINY)
    done = run_nfx("cancel", str(job_id), "--db", sqlite_url)
    assert (done.returncode, done.stdout.strip()) == (0, f"job {job_id}: canceled")
    done = run_nfx("retry", str(job_id), "999", "--db", sqlite_url)
    assert done.returncode == 2
    assert done.stdout.strip() == f"job {job_id}: queued"
    assert done.stderr.strip() == "nfx: error: no job with id 999"
    assert queue.get_job(job_id).status == JobStatus.QUEUED


@pytest.mark.slow
def test_a_feedforward_run_reruns_from_its_png_and_a_sheet_has_every_pair(tmp_path):
    content, style = input_files(tmp_path)
    out = tmp_path / "ff.png"
    done = run_nfx("run", str(content), str(style), "-o", str(out), "--method", "feedforward",
                   "--size", "90", "--strength", "0.7")
    assert done.returncode == 0, done.stderr
    assert "onnxruntime" in done.stdout and Image.open(out).size == (90, 60)
    stored = read_png_settings(out)
    assert (stored.method, stored.strength) == ("feedforward", 0.7)
    done = run_nfx("rerun", str(out), "-o", str(tmp_path / "again.png"), "--size", "45",
                   "--quiet")
    assert done.returncode == 0, done.stderr
    assert Image.open(tmp_path / "again.png").size == (45, 30)

    second = tmp_path / "t.png"
    make_image(30, 50, seed=5).save(second)
    sheet = tmp_path / "sheet.png"
    done = run_nfx("sheet", "--content", str(content), str(second), "--style", str(style),
                   str(content), "-o", str(sheet), "--size", "64", "--cell", "64")
    assert done.returncode == 0, done.stderr
    assert "4 cells" in done.stdout
    grid = np.asarray(Image.open(sheet).convert("L"))
    assert grid.shape[0] > 2 * 64 and grid.shape[1] > 2 * 64, "two rows, two columns"
    done = run_nfx("sheet", "--content", str(content), "--style", str(style), "-o",
                   str(tmp_path / "sheet.gif"))
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    done = run_nfx("sheet", "--content", str(content), "--style", str(style), "-o",
                   str(sheet), "--steps", "3")
    assert done.returncode == 2, "a sheet offers only the settings the network reads"


@pytest.mark.slow
def test_init_preview_runs_from_the_command_line(tmp_path):
    content, style = input_files(tmp_path)
    out = tmp_path / "warm.png"
    done = run_nfx("run", str(content), str(style), "-o", str(out), "--init", "preview",
                   "--size", "48", "--scales", "1", "--steps", "2", "--quiet")
    assert done.returncode == 0, done.stderr
    assert read_png_settings(out).init == "preview"


def test_the_app_is_never_exposed_by_accident(tmp_path, sqlite_url):
    """A non-loopback --host without sign-in is one line and exit code 2, before anything
    starts; so is an auth file that is missing, not TOML, or lacks what st.login needs."""
    good = write_auth_file(tmp_path / "auth.toml")
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("[auth\nredirect_uri = 1\n")
    cases = [
        (["--host", "0.0.0.0"], "--host 0.0.0.0 would open the app to anyone who can reach "
                                "it: configure sign-in with --auth FILE"),
        (["--host", "192.0.2.7", "--workers", "0"], "or pass --insecure-no-auth"),
        (["--auth", str(tmp_path / "missing.toml")], "missing.toml: not found"),
        (["--auth", str(bad_toml)], "bad.toml: not valid TOML"),
        (["--auth", str(write_auth_file(tmp_path / "a.toml", cookie_secret=None))],
         "[auth] lacks cookie_secret"),
        (["--auth", str(write_auth_file(tmp_path / "b.toml", client_secret=None))],
         "[auth] lacks client_secret"),
        (["--auth", str(write_auth_file(tmp_path / "c.toml", redirect_uri="http://x/"))],
         "redirect_uri must end with /oauth2callback"),
        (["--auth", str(good), "--max-upload-mb", "0"], "--max-upload-mb must be at least 1"),
    ]
    for args, message in cases:
        done = run_nfx("app", "--db", sqlite_url, *args, timeout=60)
        assert done.returncode == 2, (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, done.stderr)
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists(), "nothing was started"


def test_loopback_addresses_need_no_sign_in():
    from nfx.cli.app_cmd import is_loopback

    assert all(map(is_loopback, ("127.0.0.1", "127.3.2.1", "localhost", "::1", "[::1]")))
    assert not any(map(is_loopback, ("0.0.0.0", "::", "192.168.1.4", "nfx.example.org")))


def test_the_cli_acts_as_local_who_may_cancel_anyones_job(sqlite_url):
    """The command line is `local`, an admin: whoever holds the database URL can change
    any row anyway. `nfx list` says who queued each job."""
    from nfx.people import signed_in

    store = open_store(sqlite_url)
    content, style = add_pair(store)
    Queue(store).create_batch([content], [style], TINY, person=signed_in("alice@example.org"))
    store.close()
    listed = json.loads(run_nfx("list", "--db", sqlite_url).stdout)
    assert [job["owner"] for job in listed] == ["alice@example.org"]
    done = run_nfx("cancel", str(listed[0]["job_id"]), "--db", sqlite_url)
    assert done.returncode == 0 and "canceled" in done.stdout, done.stderr
