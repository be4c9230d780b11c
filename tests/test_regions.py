"""Regions (issue #23): masks that map areas of the photo to styles or keep the photo.

Real components throughout: the guided terms against hand-computed values on tiny tensors
and against the unmasked objective, the tiled evaluation against the untiled one (fp32,
both style losses), masks snapped and refused in one line, a masked job through a real
SQLite queue and a real worker, re-run from its PNG with the mask found by hash.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from conftest import TINY, image_bytes, make_image, run_nfx, start_worker, wait_exit
from nfx.engine.guided import GuidedStyleLoss, region_rows, weighted_moments
from nfx.engine.losses import GramStyleLoss, Moments
from nfx.engine.tiling import TiledObjective
from nfx.errors import InputError
from nfx.planning.batch import MaskPlan, input_digest, masked_job, plan_batch
from nfx.queue import open_queue
from nfx.regions import (Region, RegionInput, RegionMap, gaussian_blur, parse_region, snap,
                         weights)
from nfx.run_record import read_run_png
from nfx.settings import Settings
from nfx.store import open_store

RED, BLUE, BLACK = "#ff0000", "#0000ff", "#000000"
THREE = RegionMap.parse([f"{RED}=1", f"{BLUE}=2", f"{BLACK}=photo"])


def three_regions(size: tuple[int, int], antialias: bool = False) -> Image.Image:
    """Left red, right blue, a black ellipse in the middle; drawn large and shrunk (so its
    edges are anti-aliased) when asked."""
    scale = 4 if antialias else 1
    width, height = size[0] * scale, size[1] * scale
    mask = Image.new("RGB", (width, height), RED)
    draw = ImageDraw.Draw(mask)
    draw.rectangle((width // 2, 0, width, height), fill=BLUE)
    draw.ellipse((width * 0.3, height * 0.2, width * 0.7, height * 0.7), fill=BLACK)
    return mask.resize(size, Image.Resampling.LANCZOS) if antialias else mask


def region_input(mask: Image.Image, regions: RegionMap = THREE, photo=(48, 32),
                 styles: int = 2) -> RegionInput:
    return RegionInput.of(mask, image_bytes(mask), regions, photo, styles)


# --- the mask as a record ----------------------------------------------------------------------


def test_anti_aliased_edges_snap_to_the_flat_colours():
    mask = snap(three_regions((96, 64), antialias=True))
    assert sorted(mask.palette) == sorted([RED, BLUE, BLACK])
    assert mask.labels.max() < 3, "every edge pixel has one of the three colours"
    shares = mask.shares()
    assert shares[RED] == pytest.approx(shares[BLUE], abs=0.05)


@pytest.mark.parametrize("text, expected", [
    ("#FF0000=1", Region(RED, (1,))), ("f00=1+2", Region(RED, (1, 2))),
    ("#000000=photo", Region(BLACK, ()))])
def test_region_assignments_parse(text, expected):
    assert parse_region(text) == expected


def test_region_order_does_not_change_a_runs_identity():
    one = RegionMap.parse([f"{RED}=1", f"{BLUE}=2"])
    other = RegionMap.parse([f"{BLUE}=2", f"{RED}=1"])
    assert one == other and one.as_json() == other.as_json()
    assert RegionMap.from_json(one.as_json()) == one


def test_soft_weights_sum_to_one_and_feather_widens_the_edge():
    mask = snap(three_regions((96, 64)))
    hard = weights(mask, THREE, (96, 64), 0.0)
    soft = weights(mask, THREE, (96, 64), 8.0)
    assert np.allclose(hard.sum(0), 1) and np.allclose(soft.sum(0), 1, atol=1e-5)
    row, red = 5, THREE.colours.index(RED)  # above the ellipse: red gives way to blue
    assert set(np.unique(hard[red, row])) == {0.0, 1.0}
    blended = (soft[red, row] > 0.1) & (soft[red, row] < 0.9)
    assert 6 <= blended.sum() <= 13, "from 90% to 10% over about the feather's width"


def test_gaussian_blur_has_the_asked_spread():
    line = np.zeros((3, 101))
    line[:, 50] = 1
    blurred = gaussian_blur(line, 5.0)[1]
    x = np.arange(101)
    assert blurred.sum() == pytest.approx(1)
    assert np.sqrt((blurred * (x - 50) ** 2).sum()) == pytest.approx(5.0, rel=0.15)


# --- guided terms ---------------------------------------------------------------------------------


def test_guided_moments_are_the_weighted_averages_computed_by_hand():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(1, 3, 2, 2))
    weight = np.array([[1.0, 0.5], [0.0, 0.25]])
    tensor = torch.tensor(features).contiguous(memory_format=torch.channels_last)
    gram, _, _ = weighted_moments(tensor, region_rows(torch.tensor(weight)), centred=False)
    cov, mean, _ = weighted_moments(tensor, region_rows(torch.tensor(weight)), centred=True)
    f = features[0].reshape(3, 4)
    m = weight.reshape(4)
    expected_gram = (f * m) @ f.T / m.sum()
    expected_mean = (f * m).sum(1) / m.sum()
    centred = f - expected_mean[:, None]
    expected_cov = (centred * m) @ centred.T / m.sum()
    assert np.allclose(gram.numpy(), expected_gram, atol=1e-6)
    assert np.allclose(mean.numpy(), expected_mean, atol=1e-6)
    assert np.allclose(cov.numpy(), expected_cov, atol=1e-6)


def test_guided_gram_loss_is_each_regions_relative_error_weighted_by_its_share():
    torch.manual_seed(0)
    features = torch.rand(1, 4, 4, 6, dtype=torch.float64)
    left = torch.zeros(4, 6, dtype=torch.float64)
    left[:, :2] = 1  # a third of the picture
    right = 1 - left
    targets = [torch.rand(4, 4, dtype=torch.float64) for _ in range(2)]
    losses = [GramStyleLoss({"relu1_1": Moments(t, torch.zeros(4, dtype=torch.float64))}, [1.0])
              for t in targets]
    guided = GuidedStyleLoss(losses, torch.stack([left, right]))
    value = float(guided({"relu1_1": features}))
    f = features[0].reshape(4, -1)
    expected = 0.0
    for mask, target in zip((left, right), targets):
        m = mask.reshape(-1)
        g = (f * m) @ f.T / m.sum()
        expected += float(m.mean()) * float((g - target).square().sum() / target.square().sum())
    assert value == pytest.approx(expected, rel=1e-6)


def test_guided_moments_gradient_matches_finite_differences():
    """The one backward of every region's moments (nfx.engine.guided._GuidedMoments), for
    raw and centred moments, soft weights and a position outside a region, in fp64."""
    from nfx.engine.guided import _GuidedMoments
    torch.manual_seed(1)
    features = torch.rand(1, 3, 3, 4, dtype=torch.float64, requires_grad=True)
    soft = torch.rand(2, 3, 4, dtype=torch.float64)
    soft[0, 0, 0] = 0.0
    probes = [torch.rand(3, 3, dtype=torch.float64) for _ in range(4)]
    for centred in (False, True):
        def probe(x):
            values = _GuidedMoments.apply(x, centred, *[region_rows(w) for w in soft])
            total = sum((p * v).sum() for p, v in zip(probes, values[0::2]))
            if centred:  # the means too
                total = total + sum((p[0] * v).sum() for p, v in zip(probes, values[1::2]))
            return total
        assert torch.autograd.gradcheck(probe, (features,), eps=1e-6, atol=1e-7), centred


def test_a_one_colour_mask_gives_the_unmasked_objective(engine, content_image, style_image):
    mask = Image.new("RGB", content_image.size, RED)
    one = region_input(mask, RegionMap.parse([f"{RED}=1"]), content_image.size, 1)
    for style_loss in ("gram", "wasserstein"):
        settings = TINY.with_changes(size=48, style_loss=style_loss)
        plain = engine.evaluate(content_image, content_image, [style_image], settings)
        masked = engine.evaluate(content_image, content_image, [style_image], settings, one)
        assert masked == pytest.approx(plain, rel=1e-5), style_loss


@pytest.mark.slow
@pytest.mark.parametrize("style_loss", ["gram", "wasserstein"])
def test_tiled_equals_untiled_with_a_mask_in_fp32(engine, style_loss):
    width, height = 224, 160
    content, styles = make_image(width, height, seed=1), [make_image(96, 80, seed=s)
                                                           for s in (2, 3)]
    regions = region_input(three_regions((width, height), antialias=True), THREE,
                           (width, height), 2)
    settings = Settings(size=width, precision="fp32", style_loss=style_loss, tv_weight=1e-2,
                        region_feather=6)
    objective = engine.targets.objective(content, styles, ("c", ["s2", "s3"]), (width, height),
                                         settings, "fp32", None, regions)
    pixels = (engine.targets.pixels(content, (width, height))
              + torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(0))
              * 20).clamp(0, 255)
    results = []
    for evaluate in (objective, TiledObjective(objective, 64)):
        x = pixels.clone().requires_grad_(True)
        total, terms = evaluate(x)
        total.backward()
        results.append((float(total.detach()), {k: float(v) for k, v in terms.items()},
                        x.grad))
    (total, terms, grad), (tiled_total, tiled_terms, tiled_grad) = results
    assert tiled_total == pytest.approx(total, rel=1e-5)
    assert tiled_terms == pytest.approx(terms, rel=1e-5)
    assert float((tiled_grad - grad).norm() / grad.norm()) < 1e-4


def test_a_kept_region_stays_the_photo_and_styled_regions_change(engine):
    content, style = make_image(64, 48, seed=1), make_image(64, 64, seed=5)
    mask = Image.new("RGB", (64, 48), RED)
    ImageDraw.Draw(mask).rectangle((0, 0, 31, 47), fill=BLACK)
    regions = region_input(mask, RegionMap.parse([f"{RED}=1", f"{BLACK}=photo"]), (64, 48), 1)
    settings = TINY.with_changes(size=64, steps=20, style_weight=1e3, region_feather=0)
    out = np.asarray(engine.stylize(content, [style], settings, regions=regions).image, float)
    photo = np.asarray(content, float)
    kept = np.abs(out[:, 4:24] - photo[:, 4:24]).max()
    styled = np.abs(out[:, 40:] - photo[:, 40:]).mean()
    assert kept <= 1.0, "the kept area is the photo (8-bit rounding aside)"
    assert styled > 3, styled


def test_masked_runs_resume_from_a_checkpoint(engine, content_image, style_image):
    regions = region_input(three_regions(content_image.size), THREE, content_image.size, 2)
    settings = TINY.with_changes(size=96, scales=2, steps=3)
    styles = [style_image, make_image(40, 40, seed=3)]
    kept = []
    whole = engine.stylize(content_image, styles, settings, regions=regions,
                           on_scale_done=kept.append)
    resumed = engine.stylize(content_image, styles, settings, regions=regions, resume=kept[0])
    assert resumed.resumed_from_scale == 1
    assert np.abs(np.asarray(resumed.image, float) - np.asarray(whole.image, float)).mean() < 2


# --- planning and identity -------------------------------------------------------------------------


def test_a_masked_photo_is_one_job_per_sweep_value_with_its_regions_styles():
    plan = MaskPlan(9, RegionMap.parse([f"{RED}=2", f"{BLUE}=1+3", f"{BLACK}=photo"]))
    jobs = plan_batch([1, 2], [10, 11, 12], Settings(), {"seed": [0, 1]}, {2: plan})
    masked = [j for j in jobs if j.content_id == 2]
    assert len(jobs) == 6 + 2 and len(masked) == 2
    job = masked[0]
    assert job.mask_id == 9 and job.style_ids == (10, 11, 12)
    assert {r.colour: r.styles for r in job.regions.regions} == {
        RED: (2,), BLUE: (1, 3), BLACK: ()}
    with pytest.raises(InputError, match="style 3, but the batch has 2"):
        masked_job(2, plan, [((10,), ()), ((11,), ())], Settings())


def test_regions_change_a_runs_identity_and_old_identities_stay():
    settings = Settings()
    plain = input_digest("c", ["s"], settings)
    assert plain == input_digest("c", ["s"], settings.with_changes(region_feather=30)), \
        "a setting only masks read leaves unmasked identities as they were"
    masked = input_digest("c", ["s"], settings, ["m", THREE.as_json()])
    assert masked != plain
    assert masked != input_digest("c", ["s"], settings.with_changes(region_feather=30),
                                  ["m", THREE.as_json()])
    old = json.loads(settings.to_json())
    del old["region_feather"]  # settings stored before regions existed
    assert Settings.from_dict(old) == settings


# --- bad masks: one line each, nothing stored -----------------------------------------------------


@pytest.fixture
def files(tmp_path):
    photo, other = tmp_path / "photo.png", tmp_path / "other.png"
    photo.write_bytes(image_bytes(make_image(48, 32, seed=1)))
    other.write_bytes(image_bytes(make_image(40, 30, seed=4)))
    styles = []
    for seed in (2, 3):
        styles.append(tmp_path / f"style{seed}.png")
        styles[-1].write_bytes(image_bytes(make_image(40, 40, seed=seed)))
    mask = tmp_path / "mask.png"
    three_regions((96, 64), antialias=True).save(mask)
    wrong = tmp_path / "wide.png"
    three_regions((96, 40)).save(wrong)
    many = tmp_path / "nine.png"
    stripes = np.zeros((90, 135, 3), np.uint8)
    for i in range(9):
        stripes[i * 10:(i + 1) * 10] = (i * 28, 255 - i * 28, 60)
    Image.fromarray(stripes).save(many)
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    return {"photo": photo, "other": other, "styles": styles, "mask": mask, "wide": wrong, "nine": many,
            "text": text, "dir": tmp_path}


ALL = ["--region", f"{RED}=1", "--region", f"{BLUE}=2", "--region", f"{BLACK}=photo"]
BAD = {
    "unassigned": (["--region", f"{RED}=1", "--region", f"{BLUE}=2"], "mask",
                   "has no assignment"),
    "absent": ([*ALL, "--region", "#00ff00=1"], "mask", "is not in the mask"),
    "nine": (ALL, "nine", "9 colours after snapping"),
    "aspect": (ALL, "wide", "aspect ratios differ"),
    "range": (["--region", f"{RED}=1", "--region", f"{BLUE}=3", "--region", f"{BLACK}=photo"],
              "mask", "out of range"),
    "not an image": (ALL, "text", "not an image"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_masks_are_refused_in_one_line_by_run_and_batch(files, case):
    regions, mask_key, message = BAD[case]
    out = files["dir"] / "out.png"
    run = run_nfx("run", str(files["photo"]), *map(str, files["styles"]), "-o", str(out),
                  "--mask", str(files[mask_key]), *regions, "--size", "32", "--steps", "1")
    assert run.returncode == 2 and not out.exists()
    assert run.stderr.count("\n") == 1 and message in run.stderr, run.stderr
    url = f"sqlite:///{files['dir'] / 'q.db'}"
    batch = run_nfx("batch", "--db", url, "--content", f"{files['photo']}:{files[mask_key]}",
                    "--style", *map(str, files["styles"]), *regions, "--size", "32")
    assert batch.returncode == 2 and batch.stderr.count("\n") == 1, batch.stderr
    assert message in batch.stderr or case == "range", batch.stderr
    store = open_store(url)
    assert not store.list_images() and not open_queue(url).list_jobs(), "nothing stored"


# --- through the queue, and back from the PNG ------------------------------------------------------


@pytest.mark.slow
def test_a_masked_job_runs_through_the_queue_and_reruns_from_its_png(files):
    url = f"sqlite:///{files['dir'] / 'gallery.db'}"
    queued = run_nfx("batch", "--db", url, "--content", f"{files['photo']}:{files['mask']}",
                     str(files["other"]), "--style", *map(str, files["styles"]), *ALL,
                     "--size", "32", "--scales", "1", "--steps", "2", "--precision", "fp32")
    assert queued.returncode == 0, queued.stderr
    jobs = open_queue(url).list_jobs()
    masked = [j for j in jobs if j.mask_id is not None]
    assert len(jobs) == 3 and len(masked) == 1, "the masked photo is one job, the other two"
    assert masked[0].regions == THREE and masked[0].mask_name == "mask.png"
    wait_exit(start_worker(url, "--once"), 300)
    job = open_queue(url).get_job(masked[0].id)
    assert job.status == "done", job.error
    store = open_store(url)
    record = store.get_result(job.result_id)
    assert record.mask is not None and record.regions == THREE
    png = files["dir"] / "result.png"
    png.write_bytes(store.result_png(job.result_id))
    stored = read_run_png(png)
    assert stored.regions == THREE and stored.mask.sha256 == record.mask.sha256

    files["mask"].rename(files["dir"] / "moved.png")  # found in the gallery by its hash
    again = files["dir"] / "again.png"
    rerun = run_nfx("rerun", str(png), "-o", str(again), "--db", url, "--quiet")
    assert rerun.returncode == 0, rerun.stderr
    assert read_run_png(again).regions == THREE
    assert read_run_png(again).mask.sha256 == record.mask.sha256

    same = open_queue(url).rerun(job.result_id, {"steps": 3})
    assert same.mask_id == job.mask_id and same.regions == THREE, "a gallery re-run keeps it"
