"""The forecast's model error: the calibration file, the corrected distribution and how the forecast applies it;
and the radial law's radiotherapy response (the survivors' front keeps the untreated speed)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import norm

from tumorgen.biophysics.growth_ode import growth_curve
from tumorgen.errors import InputError
from tumorgen.followup.calibration import Calibration, ModelError, bundled, read_calibration, recalibrated, shrink_depth, spread_map
from tumorgen.followup.predict import forecast_day
from tumorgen.followup.series import check_series
from tumorgen.followup.settings import FollowupSettings

FAST = dict(draws=8, n_boot=40)


def test_the_bundled_calibration_says_where_it_comes_from():
    calibration = bundled()
    assert math.isfinite(calibration.error.bias) and calibration.error.spread > 0
    assert calibration.source["fitted_by"].endswith("fit_forecast_calibration.py")
    assert set(calibration.source["series"]) == {"untreated", "treated"}


def test_a_bad_calibration_file_gets_one_line_naming_the_problem(tmp_path):
    good = bundled().as_dict()
    cases = {
        "missing.json": None,
        "garbled.json": "{not json",
        "other.json": json.dumps({"format": "something-else"}),
        "version.json": json.dumps({**good, "version": 99}),
        "missing-spread.json": json.dumps({k: v for k, v in good.items() if k != "spread"}),
        "missing-growth.json": json.dumps({k: v for k, v in good.items() if k != "growth"}),
        "growth.json": json.dumps({**good, "growth": -1.0}),
        "shrink.json": json.dumps({**good, "shrink": float("nan")}),
        "numbers.json": json.dumps({**good, "bias": "a"}),
        "spread.json": json.dumps({**good, "spread": 0}),
        "blur.json": json.dumps({**good, "blur_mm": -1}),
        "missing-blur.json": json.dumps({k: v for k, v in good.items() if k != "blur_mm"}),
    }
    messages = {"missing.json": "does not exist", "garbled.json": "cannot be read", "other.json": "is not a forecast calibration",
                "version.json": "version 99", "missing-spread.json": "numeric bias, spread, growth, shrink and blur_mm",
                "missing-growth.json": "numeric bias, spread, growth, shrink and blur_mm", "growth.json": "growth term must be above -1",
                "shrink.json": "finite bias, growth and shrink", "numbers.json": "numeric bias, spread, growth, shrink and blur_mm",
                "spread.json": "positive spread", "blur.json": "blur must be 0-20 mm",
                "missing-blur.json": "numeric bias, spread, growth, shrink and blur_mm"}
    for name, text in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        with pytest.raises(InputError, match=messages[name]) as error:
            read_calibration(path)
        assert "\n" not in str(error.value)
    written = tmp_path / "roundtrip.json"
    written.write_text(json.dumps(good))
    assert read_calibration(written).error == bundled().error and read_calibration(written).blur_mm == bundled().blur_mm
    older = ModelError(good["bias"], good["spread"])  # versions 1 and 2 had no growth or shrink term: they read as 0
    first = tmp_path / "version1.json"  # the first version had no blur either
    first.write_text(json.dumps({k: v for k, v in {**good, "version": 1}.items() if k not in ("blur_mm", "growth", "shrink")}))
    assert read_calibration(first) == Calibration(older, good["source"], 0.0)
    second = tmp_path / "version2.json"
    second.write_text(json.dumps({k: v for k, v in {**good, "version": 2}.items() if k not in ("growth", "shrink")}))
    assert read_calibration(second) == Calibration(older, good["source"], good["blur_mm"])
    with pytest.raises(InputError, match="numeric bias, spread and blur_mm"):
        (tmp_path / "bad2.json").write_text(json.dumps({**good, "version": 2, "bias": None}))
        read_calibration(tmp_path / "bad2.json")


def test_the_map_s_blur_keeps_its_mass_inside_the_brain_and_nothing_outside():
    brain = np.zeros((60, 60, 60), bool)
    brain[5:55, 5:55, 5:55] = True
    p = np.zeros(brain.shape, np.float32)
    p[20:40, 20:40, 22:40] = 1.0
    edge = np.zeros(brain.shape, np.float32)
    edge[28:32, 28:32, 5:8] = 0.5  # at the brain's edge
    before = (p + edge).copy()
    out = spread_map(p + edge, brain, 2.0, (1.0, 1.0, 1.0))
    assert np.array_equal(p + edge, before) and out.dtype == np.float32
    assert out[~brain].max() == 0 and 0 <= out.min() and out.max() <= 1 and out[30, 30, 5] > 0
    away = spread_map(p, brain, 2.0, (1.0, 1.0, 1.0))  # away from the brain's edge the blur only moves probability
    assert away.sum() == pytest.approx(p.sum(), rel=1e-4)
    assert away[30, 30, 30] == pytest.approx(1.0, abs=1e-4)  # deep inside: still certain
    assert 0 < away[30, 30, 41] < 0.5 < away[30, 30, 38] < 1  # the boundary (at 39.5) is soft now: 1.5 mm out and in
    # anisotropic voxels: sigma is in mm (2 mm voxels along the last axis: half as many voxels of blur)
    assert spread_map(p, brain, 2.0, (1.0, 1.0, 2.0))[30, 30, 41] < away[30, 30, 41]
    # a uniform map in the brain stays uniform, up to its edge (normalised convolution)
    assert np.allclose(spread_map(np.where(brain, 0.3, 0.0), brain, 3.0, (1, 1, 1))[brain], 0.3, atol=1e-5)
    assert np.array_equal(spread_map(p + edge, brain, 0.0, (1, 1, 1)), np.where(brain, p + edge, 0))
    # the blur works on a box around the map: the same values as on the whole grid, with the domain's edges near the map
    from scipy.ndimage import gaussian_filter

    folded = brain.copy()
    folded[41:43, 10:50, 10:50] = False  # a sulcus 1.5 mm beyond the map
    weight = gaussian_filter(folded.astype(np.float32), 2.0, truncate=3.0)
    whole = np.where(folded, gaussian_filter(np.where(folded, p, 0), 2.0, truncate=3.0) / np.maximum(weight, 1e-6), 0)
    assert np.allclose(spread_map(p, folded, 2.0, (1, 1, 1)), whole, atol=1e-6)


def test_the_corrected_distribution_shifts_and_scales_by_the_bootstrap_s_spread():
    rng = np.random.default_rng(4)
    logs = rng.normal(3.0, 0.2, size=400)
    m, s = np.median(logs), np.std(logs)
    p = np.array([0.05, 0.5, 0.95])
    got = recalibrated(logs, ModelError(bias=-0.5, spread=2.0), p)
    assert got == pytest.approx(np.exp(m + s * (-0.5 + 2.0 * norm.ppf(p))), rel=1e-12)
    assert recalibrated(logs, ModelError(), [0.5])[0] == pytest.approx(math.exp(m))  # bias 0: the bootstrap's median
    # an overflowed refit is left out rather than poisoning the spread
    assert recalibrated(np.append(logs, np.inf), ModelError(), [0.5])[0] == pytest.approx(math.exp(m), rel=0.01)
    with pytest.raises(InputError, match="no finite volume"):
        recalibrated(np.array([np.inf, np.inf]), ModelError(), [0.5])
    # the growth term scales the growth from the latest scan's volume; the shrink term adds per unit of log shrink
    latest, sizes = 12.0, [20.0, 15.0, 12.0]
    depth = math.log(20.0 / 12.0)
    error = ModelError(bias=-0.3, spread=0.5, growth=-0.1, shrink=-0.4)
    expected = np.exp(math.log(latest) + 0.9 * (m - math.log(latest)) + s * (-0.3 - 0.4 * depth + 0.5 * norm.ppf(p)))
    assert recalibrated(logs, error, p, latest=latest, depth=shrink_depth(sizes)) == pytest.approx(expected, rel=1e-12)
    assert shrink_depth(sizes) == pytest.approx(depth) and shrink_depth([5.0, 9.0, 12.0]) == 0.0  # growing: 0
    # without a depth the tumor has not shrunk; with growth 0 the latest volume does not matter
    assert recalibrated(logs, ModelError(-0.3, 0.5, 0.0, -0.4), p, latest=latest) == pytest.approx(
        recalibrated(logs, ModelError(-0.3, 0.5), p), rel=1e-12)
    for bad, message in (({"growth": -1.5}, "above -1"), ({"shrink": math.inf}, "finite"), ({"spread": 0.0}, "positive spread")):
        with pytest.raises(InputError, match=message):
            ModelError(**bad)


def test_the_forecast_applies_the_correction_after_the_latest_scan_only():
    series = check_series([0, 30, 60], [10.0, 13.5, 17.6])
    raw = forecast_day(series, 120, FollowupSettings(recalibrate=False, **FAST))
    corrected = forecast_day(series, 120, FollowupSettings(**FAST))
    error = bundled().error
    assert raw.correction is None and corrected.correction == {"bias": error.bias, "spread": error.spread, "growth": error.growth,
                                                               "shrink": error.shrink}
    for a, b in zip(raw.curve, corrected.curve):
        if a["day"] <= 60:
            assert a == b  # the fit over the series is the bootstrap's
    # at the day, the same bootstrap with the correction: the median moves by bias·s, the band scales by spread
    from tumorgen.biophysics.growth_ode import bootstrap_forecast

    settings = FollowupSettings(**FAST)
    boot = bootstrap_forecast(series.days, series.sizes_cm3, None, np.array([120.0]), n_boot=settings.n_boot, seed=settings.seed,
                              interval=settings.interval, law=settings.growth_law)
    logs = np.log(np.asarray(boot.samples)[:, 0])
    m, s = np.median(logs), np.std(logs)
    base = math.log(17.6)  # growing: no shrink; the growth from the latest scan scaled by 1 + growth
    assert corrected.median == pytest.approx(math.exp(base + (1 + error.growth) * (m - base) + s * error.bias), rel=1e-9)
    z = norm.ppf(0.95)
    assert math.log(corrected.high / corrected.low) == pytest.approx(2 * z * s * error.spread, rel=1e-9)
    assert len(corrected.draws) == 8 and np.all(np.diff(corrected.draws) > 0)
    assert corrected.low < corrected.median < corrected.high
    # with a radiotherapy seen in the series, or planned after it, the same correction applies after the latest scan
    for rt, sizes in ((20.0, [10.0, 12.0, 9.0]), (70.0, [10.0, 13.5, 17.6])):
        series = check_series([0, 30, 60], sizes, rt_start=rt)
        treated = forecast_day(series, 120, settings)
        assert treated.correction == corrected.correction
        assert treated.median != forecast_day(series, 120, FollowupSettings(recalibrate=False, **FAST)).median
    # the series that shrank after its radiotherapy: the shrink term, per unit of log(12 / 9)
    series = check_series([0, 30, 60], [10.0, 12.0, 9.0], rt_start=20.0)
    boot = bootstrap_forecast(series.days, series.sizes_cm3, 20.0, np.array([120.0]), n_boot=settings.n_boot, seed=settings.seed,
                              interval=settings.interval, law=settings.growth_law)
    logs = np.log(np.asarray(boot.samples)[:, 0])
    m, s, base = np.median(logs), np.std(logs), math.log(9.0)
    expected = base + (1 + error.growth) * (m - base) + s * (error.bias + error.shrink * math.log(12.0 / 9.0))
    assert forecast_day(series, 120, settings).median == pytest.approx(math.exp(expected), rel=1e-9)


def test_the_radial_law_s_survivors_keep_the_untreated_front_s_speed():
    s0, lam, alpha, rt = 30.0, 0.004, 0.7, 20.0
    days = np.array([0.0, 10.0, 300.0, 310.0])
    untreated = growth_curve(days, s0, lam, law="radial")
    treated = growth_curve(days, s0, lam, alpha, tau=0.0, k=1.0, rt_start=rt, law="radial")  # the dying cleared within days
    radius = lambda size: np.cbrt(size)  # noqa: E731 - in units where the radius is the cube root of the size
    before = radius(untreated[1]) - radius(untreated[0])
    after = radius(treated[3]) - radius(treated[2])
    assert after == pytest.approx(before, rel=1e-6)  # the same speed, long after the radiotherapy
    assert treated[0] == pytest.approx(untreated[0]) and treated[1] == pytest.approx(untreated[1])
    # set back: the survivors' radius starts at (1-α)^(1/3) of the tumor's at the RT start
    at_rt = radius(growth_curve(rt, s0, lam, law="radial"))
    expected = at_rt * (1 - alpha) ** (1 / 3) + (radius(untreated[1]) - radius(untreated[0])) / 10 * (300 - rt)
    assert radius(treated[2]) == pytest.approx(expected, rel=1e-6)
