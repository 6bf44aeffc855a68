"""Synthetic follow-ups: the series, the field from labels, regrowth to forecast volumes, the prediction's contract, task and command.

A phantom brain with a spherical tumor and small untrained models: these tests
check the arithmetic and the contract (geometry, voxels beyond the region
untouched, outputs, errors, nothing written on failure);
``Testing/benchmarks/bench_followup.py`` measures the quality on held-out
simulated series with the bundled models.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from tumorgen_testing import brain_phantom, phantom_t1, run_backend, small_models

from tumorgen.biophysics.fk import GrowthParams, grow
from tumorgen.biophysics.labels import concentration_to_labels
from tumorgen.cli.main import main
from tumorgen.errors import InputError
from tumorgen.followup.calibration import bundled
from tumorgen.followup.field import fields_at_volumes, labels_to_concentration, shrunk_to, tumor_volume
from tumorgen.followup.predict import PLANNED_RT_ALPHA, forecast_day, predict_followup
from tumorgen.followup.series import check_series, read_series
from tumorgen.followup.settings import FollowupSettings
from tumorgen.models.sampling import LatentDiffusion
from tumorgen.volume_io import read_volume, write_volume

SIZE = (40, 44, 40)
SEED_VOXEL = (14, 22, 20)
FAST = dict(steps=3, guided_steps=3, samples=2, draws=6, n_boot=20)


@pytest.fixture(scope="module")
def tissues():
    return brain_phantom(SIZE)


@pytest.fixture(scope="module")
def tumor(tissues):
    """A Fisher–Kolmogorov tumor of 2 cm³ on the phantom and its labels."""
    grown = grow(tissues, GrowthParams(d_white=0.5, rho=0.2), seed_voxel=SEED_VOXEL, target_volume_cm3=2.0).concentration
    return grown, concentration_to_labels(grown)


@pytest.fixture(scope="module")
def case(tmp_path_factory, tissues, tumor):
    """The latest scan, its labels, a series CSV and the phantom's tissue maps as files."""
    root = tmp_path_factory.mktemp("followup-case")
    t1 = phantom_t1(tissues, seed=3)
    image = t1.array.astype(np.float32)
    image[tumor[1].array == 2] *= 1.15
    image[tumor[1].array == 3] *= 0.7
    files = {"t1n": root / "t1n.nii.gz", "seg": root / "seg.nii.gz", "series": root / "series.csv"}
    write_volume(t1.with_array(image), files["t1n"])
    write_volume(tumor[1], files["seg"], dtype=np.uint8)
    volume = tumor_volume(tumor[0].array, 0.001, 0.25)
    files["series"].write_text(f"day,size\n0,{volume / 1.6:.4f}\n20,{volume / 1.25:.4f}\n40,{volume:.4f}\n")
    files.update(tissues.write(root / "tissues"))
    return files


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return LatentDiffusion(small_models(tmp_path_factory.mktemp("followup-models"), spacing_mm=1.0, postop=True))


# ----------------------------------------------------------------------------- the series


def test_a_series_reads_sizes_or_scans_and_names_each_problem(tmp_path, case, tumor):
    volume = tumor_volume(tumor[0].array, 0.001, 0.25)
    series = read_series(case["series"])
    assert list(series.days) == [0, 20, 40] and series.rt_start is None and series.sizes_cm3[-1] == pytest.approx(volume, abs=1e-4)
    # sizes from label maps, listed relative to the CSV
    resected = read_volume(case["seg"])
    resected.array[:3, :3, :3] = 4  # a cavity is not tumor
    write_volume(resected, tmp_path / "resected-seg.nii.gz")
    (tmp_path / "scans.csv").write_text(f"day,seg,rt_start\n10,{case['seg']}\n30,resected-seg.nii.gz,15\n")
    scanned = read_series(tmp_path / "scans.csv", reference=read_volume(case["t1n"]))
    assert scanned.sizes_cm3 == pytest.approx([volume, volume], abs=1e-6) and scanned.rt_start == 15 and len(scanned.scans) == 2
    problems = {
        "day,size\n10,3\n": "at least two time points, got 1",
        "day,size\n10,3\n5,4\n": "dates out of order: day 5 comes after day 10",
        "day,size\n10,3\n20,-4\n": "the volume at day 20 is negative",
        "day,size\n10,3\n10,4\n": "day 10 appears twice",
        "day,volume\n10,3\n20,4\n": "must name the columns day and size",
        "day,size\n10,3\n20,\n": "line 3: the size cell is empty",
        "day,size\n10,3\n20,x\n": "line 3: size 'x' is not a number",
        "day,size,rt_start\n10,3,12\n20,4,13\n": "must hold one day",
    }
    for text, message in problems.items():
        (tmp_path / "bad.csv").write_text(text)
        with pytest.raises(InputError, match=message):
            read_series(tmp_path / "bad.csv")
    from tumorgen.volume import Volume

    other = read_volume(case["seg"])
    write_volume(Volume(np.ascontiguousarray(other.array[:-2])), tmp_path / "small-seg.nii.gz")
    (tmp_path / "geometry.csv").write_text(f"day,seg\n10,{case['seg']}\n30,small-seg.nii.gz\n")
    with pytest.raises(InputError, match="line 3: small-seg.nii.gz has a different geometry from the latest scan"):
        read_series(tmp_path / "geometry.csv", reference=read_volume(case["t1n"]))
    with pytest.raises(InputError, match="disagrees with the series' rt_start column"):
        read_series(tmp_path / "scans.csv", rt_start=16)
    with pytest.raises(InputError, match="before the first time point"):
        check_series([10, 20], [1, 2], rt_start=5)


# ----------------------------------------------------------------------------- the field


def test_a_field_from_labels_has_the_same_labels_and_an_infiltration_tail(tissues, tumor):
    labels = tumor[1]
    field = labels_to_concentration(labels)
    assert np.array_equal(concentration_to_labels(field).array, labels.array)
    c = field.array
    outside = labels.array == 0
    assert 0 < c[outside].max() < 0.25 and c.min() == 0.0  # a tail below the visible edge, nothing far away
    # necrosis ⊂ core ⊂ whole tumor, with the concentration rising inwards
    nested = labels.array.copy()
    nested[tuple(slice(s - 1, s + 2) for s in SEED_VOXEL)] = 1
    rising = labels_to_concentration(labels.with_array(nested)).array
    assert np.array_equal(concentration_to_labels(labels.with_array(rising)).array, nested)
    assert rising[SEED_VOXEL] >= 0.95
    with pytest.raises(InputError, match="the segmentation is empty"):
        labels_to_concentration(labels.with_array(np.zeros(SIZE, np.uint8)))


def test_fields_reach_each_forecast_volume_growing_or_shrinking(tissues, tumor):
    field = tumor[0]
    voxel = 0.001
    now = tumor_volume(field.array, voxel, 0.25)
    targets = [now * 1.8, now * 0.5, now * 1.3, 0.0]
    fields = fields_at_volumes(field, tissues, targets, params=GrowthParams(d_white=0.5, rho=0.2))
    volumes = [tumor_volume(f, voxel, 0.25) for f in fields]
    # growth stops at the first step past the target: on this small phantom a step adds up to 5 %
    assert targets[0] <= volumes[0] <= 1.06 * targets[0] and targets[2] <= volumes[2] <= 1.06 * targets[2]
    assert volumes[1] == pytest.approx(targets[1], abs=2 * voxel) and volumes[3] == 0.0
    assert np.all((fields[0] >= 0.25) >= (fields[2] >= 0.25))  # growth is nested: the larger contains the smaller
    assert fields[1].max() < field.array.max()  # shrinking scales the concentration down
    shrunk = shrunk_to(field.array, now / 4, voxel, 0.25)
    assert tumor_volume(shrunk, voxel, 0.25) == pytest.approx(now / 4, abs=voxel)
    assert field.array.max() <= 1.0 and tumor_volume(field.array, voxel, 0.25) == pytest.approx(now)  # the input is unchanged


# ----------------------------------------------------------------------------- the forecast


def test_the_forecast_follows_the_curve_and_a_planned_radiotherapy_shrinks_it():
    series = check_series([0, 30, 60], [10.0, 20.0, 40.0])
    settings = FollowupSettings(day=90, growth_law="exponential", recalibrate=False,
                                **{k: v for k, v in FAST.items() if k in ("draws", "n_boot")})
    forecast = forecast_day(series, 90, settings)
    assert forecast.median == pytest.approx(80.0, rel=0.05) and forecast.low <= forecast.median <= forecast.high
    assert len(forecast.draws) == 6 and np.all(np.diff(forecast.draws) >= 0)
    assert forecast.curve[0]["day"] == 0 and forecast.curve[-1]["day"] >= 90
    assert [row["observed"] for row in forecast.curve if row["observed"] is not None] == [10.0, 20.0, 40.0]
    planned = forecast_day(check_series([0, 30, 60], [10.0, 20.0, 40.0], rt_start=60), 90, settings)
    lam = math.log(2) / 30
    expected = 80.0 * ((1 - PLANNED_RT_ALPHA) + PLANNED_RT_ALPHA * math.exp(-math.log(2) / 14 * (30 - 7) - lam * 30))
    assert planned.planned_rt and planned.median == pytest.approx(expected, rel=0.05)
    # the radial law: a radius growing by 1 mm every 10 days from 20 mm (the default law)
    radius = lambda day: 20.0 + day / 10.0  # noqa: E731
    volume = lambda day: 4 / 3 * math.pi * radius(day) ** 3 / 1000  # noqa: E731
    radial = forecast_day(check_series([0, 30, 60], [volume(0), volume(30), volume(60)]), 150,
                          FollowupSettings(recalibrate=False, **{k: v for k, v in FAST.items() if k in ("draws", "n_boot")}))
    assert radial.fit["law"] == "radial" and radial.median == pytest.approx(volume(150), rel=0.02)


# ----------------------------------------------------------------------------- the prediction


def test_a_followup_grows_the_tumor_and_keeps_everything_beyond_the_region(model, tissues, tumor, case):
    image = read_volume(case["t1n"])
    before = image.array.copy()
    series = read_series(case["series"])
    settings = FollowupSettings(day=70, recalibrate=False, **FAST)  # the bootstrap's forecast: its arithmetic is checked below
    result = predict_followup(model, image, series, settings, field_now=labels_to_concentration(tumor[1]), tissues=tissues)
    assert np.array_equal(image.array, before)  # the input is not modified
    region = result.region.array.astype(bool)
    assert np.array_equal(result.mean.array[~region], image.array[~region])
    assert np.isfinite(result.mean.array).all() and np.isfinite(result.std.array).all()  # only what is kept was decoded
    assert result.mean.grid.matches(image.grid) and result.probability.grid.matches(image.grid)
    p = result.probability.array
    assert p.min() >= 0 and p.max() <= 1 and set(np.unique(p * 6).round(3)) <= set(float(k) for k in range(7))
    assert result.info["map_blur_mm"] == 0.0  # no correction: the fraction of draws as it is
    grown = result.labels.array > 0
    assert region[grown].all() and (p[grown] > 0).mean() > 0.99
    # the region is the tumor now and at the day grown by the margin inside the brain, as on the whole grid
    from scipy.ndimage import binary_dilation, generate_binary_structure, iterate_structure

    tumor_any = (labels_to_concentration(tumor[1]).array >= 0.25) | (result.concentration.array >= 0.25)
    steps = int(round(settings.margin_mm / min(image.spacing)))
    whole = binary_dilation(tumor_any, iterate_structure(generate_binary_structure(3, 1), steps)) & (image.array > 0)
    assert steps >= 1 and whole.sum() > (tumor_any & (image.array > 0)).sum() and np.array_equal(region, whole)
    # the day is 30 days past the latest scan at a 60-day doubling → about 1.4 times the volume
    assert result.info["forecast_cm3"]["median"] == pytest.approx(series.sizes_cm3[-1] * 1.25 ** (30 / 20), rel=0.05)
    assert result.info["predicted_cm3"] == pytest.approx(result.info["forecast_cm3"]["median"], rel=0.1)
    assert result.std.array[~region].max() == 0 and result.std.array[region].max() > 0
    with pytest.raises(InputError, match="day 30 is before the latest scan"):
        predict_followup(model, image, series, FollowupSettings(day=30, **FAST), field_now=tumor[0], tissues=tissues)
    with pytest.raises(InputError, match="needs the size regressor"):
        predict_followup(model, image, series, FollowupSettings(day=70, route="guided", **FAST), field_now=tumor[0], tissues=tissues)


def test_a_resection_leaves_the_residual_to_regrow_and_keeps_the_cavity(model, tissues, tumor, case):
    image = read_volume(case["t1n"])
    series = read_series(case["series"])
    cavity = np.zeros(SIZE, bool)
    cavity[tuple(slice(s - 3, s + 4) for s in SEED_VOXEL)] = True
    removed = np.zeros(SIZE, bool)
    removed[tuple(slice(s - 5, s + 6) for s in SEED_VOXEL)] = True
    result = predict_followup(model, image, series, FollowupSettings(day=70, **FAST), field_now=tumor[0], tissues=tissues,
                              cavity=cavity, removed=removed)
    assert np.all(result.labels.array[cavity] == 4) and result.probability.array[cavity].max() == 0
    assert result.info["map_blur_mm"] == bundled().blur_mm > 0  # the correction blurs the map, not into the cavity
    assert result.residual.array[removed].max() == 0 and result.residual.array.max() > 0
    assert not (result.region.array.astype(bool) & cavity).any()
    left = result.info["residual_fraction"]
    assert 0 < left < 1
    # the residual follows the whole tumor's growth curve scaled by the cells left
    assert result.info["predicted_cm3"] < result.info["forecast_cm3"]["median"]
    with pytest.raises(InputError, match="removes the whole tumor"):
        predict_followup(model, image, series, FollowupSettings(day=70, **FAST), field_now=tumor[0], tissues=tissues,
                         cavity=cavity, removed=np.ones(SIZE, bool))


@pytest.fixture(scope="module")
def guided_model(model, tmp_path_factory):
    """The small models with a (randomly initialised, responsive) size regressor."""
    import shutil

    from tumorgen.models import networks as N
    from tumorgen.models.weights import save_weights
    from tumorgen_testing import _wake

    folder = tmp_path_factory.mktemp("followup-guided") / "with-regressor"
    shutil.copytree(model.folder, folder)
    save_weights(_wake(N.build_regressor(model.config)), folder / "regressor.safetensors", {"config": str(folder / "small.json")})
    return LatentDiffusion(folder)


def test_the_guided_crop_and_its_reading_windows():
    from tumorgen.followup.guided import reading_windows, work_box

    tumor = np.zeros((40, 44, 40), bool)
    tumor[10:20, 12:18, 30:34] = True
    assert work_box(tumor, (16, 16, 16), 8) == (slice(7, 23), slice(7, 23), slice(24, 40))  # the window, centred, inside the image
    tumor[3:33, 20:30, 20:38] = True  # 30, 18 and 18 voxels long: rounded up to 32, 24 and 24, the last kept in the image
    assert work_box(tumor, (16, 16, 16), 8) == (slice(2, 34), slice(9, 33), slice(16, 40))
    assert reading_windows((4, 4, 4), (4, 4, 4)) == [(slice(0, 4),) * 3]
    windows = reading_windows((8, 5, 4), (4, 4, 4))
    assert [(w[0].start, w[1].start, w[2].start) for w in windows] == [(0, 0, 0), (0, 1, 0), (2, 0, 0), (2, 1, 0), (4, 0, 0), (4, 1, 0)]
    assert all(b.stop - b.start == 4 for w in windows for b in w)


def test_a_growing_tumor_keeps_its_core_deeper_than_the_margin():
    from tumorgen.followup.guided import KEEP_CORE_MM, kept_core

    field = np.zeros((20, 20, 20), np.float32)
    field[5:15, 5:15, 5:15] = 0.8
    field[5, 5, 5] = 0.2  # below the threshold: not tumor
    assert KEEP_CORE_MM == 2.0
    core = np.argwhere(kept_core(field, 0.25, (1.0, 1.0, 1.0)))  # voxels 3 mm or more from the nearest healthy one
    assert core.min(0).tolist() == [7, 7, 7] and core.max(0).tolist() == [12, 12, 12] and len(core) == 6 ** 3
    core = np.argwhere(kept_core(field, 0.25, (0.5, 1.0, 1.0)))  # half-millimetre voxels along the first axis
    assert core.min(0).tolist() == [9, 7, 7] and core.max(0).tolist() == [10, 12, 12] and len(core) == 2 * 6 * 6
    assert not kept_core(np.zeros((5, 5, 5)), 0.25, (1.0, 1.0, 1.0)).any()


def test_the_growth_is_painted_as_the_latest_tumors_rim_before_it_is_noised():
    from tumorgen.followup.guided import RIM_MM, painted_growth

    work = np.full((24, 24, 24), 0.6, np.float32)  # healthy tissue
    start = np.zeros(work.shape, np.float32)
    start[6:18, 6:18, 6:18] = 0.9  # the latest tumor: a 12 mm cube
    work[6:18, 6:18, 6:18] = 0.3   # its rim (the outer 3 mm) ...
    work[9:15, 9:15, 9:15] = 0.1   # ... around a darker centre
    median = np.zeros(work.shape, np.float32)
    median[4:20, 4:20, 6:18] = 0.5  # the forecast grows it by 2 mm along the first two axes
    region = np.ones(work.shape, bool)
    before = work.copy()
    painted = painted_growth(work, start, median, region, (1.0, 1.0, 1.0))
    assert RIM_MM == 3.0
    assert np.array_equal(work, before)  # the crop itself is not changed
    growth = (median >= 0.25) & (start < 0.25)
    assert np.allclose(painted[growth], 0.3)  # the rim's median, not the centre's intensity
    assert np.array_equal(painted[start >= 0.25], work[start >= 0.25])  # the latest tumor as the scan shows it
    edge = painted[2, 10, 10]  # 2 voxels beyond the growth: faded (σ 0.75 mm), between the rim and the tissue
    assert 0.3 < painted[3, 10, 10] < edge <= 0.6 and painted[0, 10, 10] == pytest.approx(0.6, abs=1e-3)
    limited = painted_growth(work, start, median, region & (np.arange(24) < 12)[:, None, None], (1.0, 1.0, 1.0))
    assert np.array_equal(limited[12:], work[12:]) and np.allclose(limited[4:6, 6:18, 6:18], 0.3)  # only inside the region
    assert painted_growth(work, start, start, region, (1.0, 1.0, 1.0)) is work  # no growth: nothing painted
    assert painted_growth(work, np.zeros_like(start), median, region, (1.0, 1.0, 1.0)) is work  # no latest tumor


def test_a_tumor_longer_than_the_regressor_window_is_guided_on_overlapping_windows(guided_model, tissues, case, monkeypatch):
    from tumorgen.followup.guided import guided_followup

    image = read_volume(case["t1n"])
    start = np.zeros(SIZE, np.float32)
    start[6:30, 16:28, 14:26] = 1.0  # 24 voxels along the first axis: longer than the test models' 16-voxel window
    median = np.zeros(SIZE, np.float32)
    median[5:31, 15:29, 13:27] = 1.0
    region = (median > 0) & (np.asarray(image.array) > 0)
    seen = []
    regressor = guided_model.regressor
    monkeypatch.setattr(guided_model, "regressor", lambda x, t: seen.append(tuple(x.shape)) or regressor(x, t))
    settings = FollowupSettings(day=70, route="guided", guidance=100.0, strength=0.6, **FAST)
    result = guided_followup(guided_model, image, region, median, settings, 10.0, start_field=start, tissues=tissues)
    assert [w.stop - w.start for w in result.window] == [32, 16, 16]  # 26 voxels of tumor, rounded up to the latents' multiple
    assert result.windows == 3  # 8 latent voxels tiled by windows of 4 at 0, 2 and 4
    assert seen and all(shape[0] == 3 * settings.samples and shape[2:] == (4, 4, 4) for shape in seen)
    assert result.requested_cm3 == pytest.approx(10.0 * median[result.window].sum() / median.sum())
    changed = result.mean.array != image.array
    assert changed.any() and not changed[~result.region].any()
    outside = np.ones(SIZE, bool)
    outside[result.window] = False
    assert not result.region[outside].any() and result.region.sum() == region[result.window].sum()


def test_the_guidance_aims_above_the_request_by_the_regressors_bias_and_reads_back_without_it(guided_model, tissues, case,
                                                                                                  monkeypatch):
    import torch

    import tumorgen.followup.guided as guided
    from tumorgen.models.train import VOLUME_SCALE_CM3

    image = read_volume(case["t1n"])
    start = np.zeros(SIZE, np.float32)
    start[10:20, 16:26, 14:24] = 1.0
    median = np.zeros(SIZE, np.float32)
    median[9:21, 15:27, 13:25] = 1.0
    region = (median > 0) & (np.asarray(image.array) > 0)
    reading, targets = 2.0, []  # the stand-in regressor reads 20 cm³ in every window; its gradient gives the target away

    def regressor(x, t):
        out = x.sum(dim=(1, 2, 3, 4), keepdim=False)[:, None] * 0.0 + reading
        if out.requires_grad:
            out.register_hook(lambda grad: targets.append(reading - grad.detach().clone()))  # ∂(r − y)²/2 / ∂r = r − y
        return out

    monkeypatch.setattr(guided_model, "regressor", regressor)
    monkeypatch.setattr(guided, "AIM", 1.25)
    settings = FollowupSettings(day=70, route="guided", guidance=10.0, strength=0.6, **{**FAST, "samples": 1})
    result = guided.guided_followup(guided_model, image, region, median, settings, 10.0, start_field=start, tissues=tissues)
    assert result.windows == 1 and result.requested_cm3 == pytest.approx(10.0)  # the whole tumor in one window
    assert targets and all(torch.allclose(y, torch.tensor(1.25 * 10.0 / VOLUME_SCALE_CM3)) for y in targets)
    assert result.read_cm3 == pytest.approx(reading * VOLUME_SCALE_CM3 / 1.25)  # the reading with the known bias taken out


def test_the_guided_route_steers_the_regressor_and_changes_only_its_window(guided_model, tissues, tumor, case, monkeypatch):
    image = read_volume(case["t1n"])
    series = read_series(case["series"])
    conditions = []
    predict_noise = guided_model.predict_noise

    def spy(x, t, condition, cache=None):
        conditions.append(condition)
        return predict_noise(x, t, condition, cache)

    monkeypatch.setattr(guided_model, "predict_noise", spy)
    encoded = []
    encode = guided_model.encode
    monkeypatch.setattr(guided_model, "encode", lambda crop: encoded.append(np.array(crop)) or encode(crop))
    runs = {}
    for guidance in (0.0, 1000.0):
        settings = FollowupSettings(day=70, route="guided", guidance=guidance, strength=0.6, **FAST)
        runs[guidance] = predict_followup(guided_model, image, series, settings, field_now=tumor[0], tissues=tissues)
    result = runs[1000.0]
    # every noise estimate is the ControlNet's, under the window's tissue maps and the regrown median field
    box = tuple(slice(a, b) for a, b in result.info["guided"]["window"])
    expected = np.stack([np.asarray(a, np.float32)[box] for a in tissues.arrays()] + [result.concentration.array[box]])
    assert conditions and all(c is not None for c in conditions)
    assert np.allclose(conditions[-1][0].cpu().numpy(), np.clip(expected, 0.0, 1.0))
    assert result.concentration.array[box].max() > 0.25  # the field it is given holds the tumor
    region = result.region.array.astype(bool)
    assert np.array_equal(result.mean.array[~region], image.array[~region])
    window = result.info["guided"]["window"]
    tumor_now = tumor[0].array >= 0.25
    grown = result.concentration.array >= 0.25
    lengths = [int(np.ptp(np.flatnonzero((tumor_now | grown).any(axis=tuple(a for a in range(3) if a != k))))) + 1 for k in range(3)]
    assert all(n > 16 for n in lengths)  # longer than the test models' 16-voxel regressor window: the crop covers it all
    step = guided_model.down * guided_model.latent_multiple
    assert [b - a for a, b in window] == [-(-n // step) * step for n in lengths] and result.info["guided"]["windows"] > 1
    assert (tumor_now | grown)[box].sum() == (tumor_now | grown).sum()
    outside = np.ones(SIZE, bool)
    outside[tuple(slice(a, b) for a, b in window)] = False
    assert not region[outside].any()
    # the regressor's gradient moves its reading towards the request
    requested = result.info["guided"]["requested_cm3_in_window"]
    assert abs(result.info["guided"]["regressor_read_cm3"] - requested) < abs(runs[0.0].info["guided"]["regressor_read_cm3"] - requested)
    assert result.probability.array.max() > 0 and result.labels.array.max() > 0  # the forecast's maps, as in the fk route
    # the tumor grows: its core is kept as the latest scan shows it, and only the rest is drawn
    from tumorgen.followup.guided import kept_core

    core = kept_core(tumor[0].array, 0.25, image.spacing)
    assert result.info["predicted_cm3"] > result.info["tumor_now_cm3"] and core.sum() > 200
    assert not region[core].any() and np.array_equal(result.mean.array[core], image.array[core])
    assert result.info["guided"]["kept_core_cm3"] == pytest.approx(core.sum() * image.grid.voxel_volume_mm3 / 1000, abs=1e-3)
    assert region[(tumor[0].array >= 0.25) & ~core].mean() > 0.9  # the latest tumor's rim is redrawn
    # sampling starts from the latest scan with the growth painted as its tumor's rim; the known latents are the scan's
    from tumorgen.followup.guided import painted_growth

    assert len(encoded) == 4  # per run: the scan's crop (known), then the painted one (the SDEdit start)
    work, start = encoded[2], encoded[3]
    growth = (result.concentration.array[box] >= 0.25) & (tumor[0].array[box] < 0.25) & region[box]
    assert growth.sum() > 100 and np.array_equal(start, painted_growth(work, tumor[0].array[box], result.concentration.array[box],
                                                                       region[box], image.spacing))
    assert np.ptp(start[growth]) < 1e-6 and not np.allclose(start[growth], work[growth])  # one value: the rim's
    assert np.array_equal(start[~region[box]], work[~region[box]])


# ----------------------------------------------------------------------------- command and task


def _args(case, out, *extra):
    return ["followup", "--series", str(case["series"]), "--t1n", str(case["t1n"]), "--seg", str(case["seg"]), "--out", str(out),
            "--csf", str(case["csf"]), "--gm", str(case["gm"]), "--wm", str(case["wm"]), "--day", "70", "--steps", "3",
            "--samples", "2", "--draws", "6", "--n-boot", "20", "--quiet", *extra]


def test_the_command_writes_every_output_and_bad_input_writes_nothing(model, case, tmp_path, capsys):
    with pytest.raises(SystemExit) as help_exit:  # every setting's help formats (a % in a help text once broke it)
        main(["followup", "--help"])
    assert help_exit.value.code == 0 and "--growth-law {radial,exponential}" in capsys.readouterr().out
    out = tmp_path / "out"
    assert main(_args(case, out, "--weights", str(model.folder))) == 0
    summary = json.loads(capsys.readouterr().out)
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["followup-t1n.nii.gz", "followup-std.nii.gz", "followup-probability.nii.gz", "followup-seg.nii.gz",
                            "followup-concentration.nii.gz", "region.nii.gz", "forecast.csv", "followup.json"])
    assert summary["day"] == 70 and summary["last_day"] == 40 and set(summary["outputs"]) >= {"followup", "probability", "forecast"}
    rows = (out / "forecast.csv").read_text().splitlines()
    assert rows[0] == "day,median,low,high,observed" and sum(1 for r in rows[1:] if not r.endswith(",")) == 3
    assert read_volume(out / "followup-seg.nii.gz").grid.matches(read_volume(case["t1n"]).grid)
    bad = tmp_path / "bad.csv"
    bad.write_text("day,size\n40,2\n")
    for extra, message in (([], "at least two time points"), (["--day", "10"], "day 10 is before the latest scan"),
                           (["--resect-box", "1,2,3"], "--resect-box must be six numbers")):
        series = bad if not extra else case["series"]
        args = _args({**case, "series": series}, tmp_path / "never", "--weights", str(model.folder), *extra)
        assert main(args) == 2
        assert message in capsys.readouterr().err and not (tmp_path / "never").exists()
    # weights without a ControlNet fail at once, while the model would still be loading
    import shutil

    bare = tmp_path / "bare"
    shutil.copytree(model.folder, bare)
    (bare / "controlnet.safetensors").unlink()
    assert main(_args(case, tmp_path / "never", "--weights", str(bare))) == 2
    assert "have no ControlNet (controlnet.safetensors)" in capsys.readouterr().err and not (tmp_path / "never").exists()


def test_the_backend_task_runs_a_composed_whatif(model, case, tmp_path, monkeypatch):
    """One end-to-end job: resect (the post-operative prediction with the bundled library), then the follow-up."""
    box = read_volume(case["seg"]).with_array(np.zeros(SIZE, np.uint8))
    box.array[tuple(slice(s - 4, s + 5) for s in SEED_VOXEL)] = 1
    write_volume(box, tmp_path / "box.nii.gz")
    out = tmp_path / "job-out"
    job = {"task": "followup", "inputs": {**{k: str(case[k]) for k in ("t1n", "series", "seg", "csf", "gm", "wm")},
                                          "resect": str(tmp_path / "box.nii.gz")},
           "params": {"day": 70, "steps": 3, "samples": 1, "draws": 4, "n_boot": 20, "weights": str(model.folder)},
           "output_dir": str(out)}
    code, events, stderr = run_backend(job, tmp_path, timeout=600)
    assert code == 0, stderr
    outputs = [e for e in events if e["type"] == "result"][-1]["outputs"]
    assert {"postop", "residual", "followup", "probability", "labels", "forecast", "summary"} <= set(outputs)
    labels = read_volume(outputs["labels"]).array
    residual = read_volume(outputs["residual"]).array
    assert residual[box.array > 0].max() == 0 and (labels == 4).any()
    assert json.loads(Path(outputs["summary"]).read_text())["residual_fraction"] < 1
