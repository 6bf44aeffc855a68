"""The follow-up benchmark's own instruments: the independent tumor reader's data path and the resampled reliability."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_followup  # noqa: E402
import fit_forecast_calibration  # noqa: E402
import fit_guided_aim  # noqa: E402
import tumor_reader  # noqa: E402


def test_the_reader_s_target_keeps_the_tumor_s_volume_at_2_mm():
    tumor = np.zeros((41, 40, 39), np.float32)
    tumor[5:18, 7:20, 3:12] = 1.0  # odd edges: blocks partly inside
    coarse = tumor_reader.downsample(tumor)
    assert coarse.shape == (21, 20, 20)
    assert coarse.sum() * tumor_reader.FACTOR ** 3 == pytest.approx(tumor.sum())
    assert coarse.max() == 1.0 and coarse.min() == 0.0
    assert set(np.unique(coarse)) <= {0.0, 0.125, 0.25, 0.5, 1.0}


def test_the_reader_s_crops_hold_the_tumor_and_have_the_training_size():
    rng = np.random.default_rng(0)
    image = np.zeros((90, 100, 80), np.float32)
    image[10:80, 10:90, 10:70] = 0.5
    target = np.zeros_like(image)
    target[60:70, 20:30, 50:60] = 1.0
    held = 0
    for _ in range(40):
        x, y = tumor_reader.crop(image, target, rng)
        assert x.shape == y.shape == (tumor_reader.CROP,) * 3
        held += y.sum() == target.sum()
    assert held >= 20  # four in five are centred (jittered) on the tumor, which then fits whole


def test_the_reader_normalises_by_the_brain_s_percentiles_and_names_an_empty_image():
    image = np.zeros((30, 30, 30), np.float32)
    image[5:25, 5:25, 5:25] = np.linspace(100, 300, 8000).reshape(20, 20, 20)
    out = tumor_reader.normalised(image)
    assert out[0, 0, 0] == 0.0
    assert np.percentile(out[image > 0], 50) == pytest.approx(0.5, abs=0.01)
    with pytest.raises(ValueError, match="only 0 nonzero voxels"):
        tumor_reader.normalised(np.zeros((20, 20, 20), np.float32))


def _row(p_sums, y_sums, n):
    return {"bins": {"n": list(n), "sum_p": list(p_sums), "sum_y": list(y_sums)}}


def test_the_resampled_reliability_is_exact_for_calibrated_series_and_wide_for_opposite_ones():
    n = np.full(bench_followup.BINS, 100.0)
    p = n * (np.arange(bench_followup.BINS) + 0.5) / bench_followup.BINS
    calibrated = bench_followup._reliability_interval([_row(p, p, n) for _ in range(6)], resamples=200)
    assert calibrated["largest_gap_median"] == 0.0 and calibrated["fraction_within_0_1"] == 1.0
    # half the series see tumor 0.3 more often than predicted, half 0.3 less: pooled they cancel, resampled they do not
    high, low = _row(p, np.minimum(p + 30, n), n), _row(p, np.maximum(p - 30, 0), n)
    mixed = bench_followup._reliability_interval([high, low] * 3, resamples=500)
    lo, hi = mixed["gap_5_95"][5]
    assert lo < -0.05 and hi > 0.05
    assert mixed["fraction_within_0_1"] < 0.5


def test_the_reader_counts_tumor_like_blobs_and_their_rim_but_not_scattered_fractions():
    reader = object.__new__(tumor_reader.Reader)
    p = np.zeros((40, 40, 40), np.float32)
    p[10:20, 10:20, 10:20] = 0.9  # a blob of 1000 voxels of 8 mm³: 8 cm³ × 0.9
    p[9, 10:20, 10:20] = 0.3  # its rim (within 2 voxels): counted
    p[30:33, 30:33, 30:33] = 0.8  # 27 voxels = 0.216 cm³ < MIN_BLOB_CM3: not a tumor
    p[0, :, :] = 0.1  # scattered low fractions far away: not counted
    reader.fractions_of = lambda image: p
    volume, kept = reader.read_prepared(np.ones_like(p), voxel_mm3=1.0)
    assert volume == pytest.approx((1000 * 0.9 + 100 * 0.3) * 8 / 1000, rel=1e-5)
    assert kept[31, 31, 31] == 0.0 and kept[0, 5, 5] == 0.0 and kept[15, 15, 15] == pytest.approx(0.9)


def test_the_calibration_fit_s_probability_is_the_share_of_draws_that_reach_a_voxel_s_growth_factor():
    fit = fit_forecast_calibration
    levels = len(fit.FACTORS) + 1
    case = fit.Case("TGTU-00000-004", 75.0, np.log(np.linspace(1.5, 2.5, 200)), np.ones(levels), np.zeros(levels), np.log(2.0))
    p = fit.probabilities(case, None, 16)
    assert p.shape == (levels,) and p[-1] == 0.0  # the last level is never reached
    assert np.all(np.diff(p) <= 0)  # a voxel reached later is tumor in fewer draws
    assert p[np.searchsorted(fit.FACTORS, 1.2)] == 1.0 and p[np.searchsorted(fit.FACTORS, 3.0)] == 0.0
    assert p[np.searchsorted(fit.FACTORS, 2.0)] == pytest.approx(0.5, abs=1 / 16)
    rows, brier = fit.reliability([case], [p])
    assert sum(r["voxels"] for r in rows) == levels
    assert brier == pytest.approx(float(np.mean(p ** 2)))  # no voxel is tumor in this truth


def test_the_calibration_fit_keeps_a_folder_s_forecasts_and_reads_them_back(tmp_path, monkeypatch):
    made = []

    def build(folder, rt, log=print):
        made.append((folder.name, rt))
        return [fit_forecast_calibration.Case(f"{folder.name}-003", 75.0, np.array([0.1, 0.2, 0.3]), np.arange(4.0),
                                              np.array([3.0, 1.0, 0.0, 0.0]), 0.25)]

    monkeypatch.setattr(fit_forecast_calibration, "build_cases", build)
    cache = tmp_path / "cache"
    first = fit_forecast_calibration.cached_cases(tmp_path / "tune-rt", 20.0, cache)
    again = fit_forecast_calibration.cached_cases(tmp_path / "tune-rt", 20.0, cache)
    untreated = fit_forecast_calibration.cached_cases(tmp_path / "tune-rt", None, cache)  # another regime: its own file
    assert made == [("tune-rt", 20.0), ("tune-rt", None)]
    assert sorted(p.name for p in cache.iterdir()) == ["tune-rt-20.pkl", "tune-rt-none.pkl"]  # nothing half-written left
    (a,), (b,) = first, again
    assert b.name == a.name and b.horizon == 75.0 and b.truth_log_growth == 0.25
    assert all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ("log_growth", "total", "tumor"))
    assert len(untreated) == 1
    assert fit_forecast_calibration.cached_cases(tmp_path / "tune-rt", 20.0, None)[0].name == "tune-rt-003"  # no cache: built
    assert made[-1] == ("tune-rt", 20.0)


def test_a_cache_kept_before_the_shrink_term_gets_each_case_s_shrink_depth_from_its_series(tmp_path):
    import dataclasses
    import json
    import pickle

    fit = fit_forecast_calibration
    folder = tmp_path / "tune-rt"
    folder.mkdir()
    volumes = {"TGTR-00000": (30.0, 40.0, 10.0, 25.0), "TGTR-00001": (10.0, 12.0, 15.0, 30.0)}  # days 0, 30, 60, 135
    cases = [{"case": f"{subject}-{k:03d}", "day": day, "regions_cm3": {"necrotic": 0.0, "edema": v / 2, "enhancing": v / 2}}
             for subject, sizes in volumes.items() for k, (day, v) in enumerate(zip((0.0, 30.0, 60.0, 135.0), sizes))]
    (folder / "cases.json").write_text(json.dumps({"cases": cases}))
    assert fit.shrink_depths(folder) == pytest.approx({"TGTR-00000-003": np.log(4.0), "TGTR-00001-003": 0.0})
    cache = tmp_path / "cache"
    cache.mkdir()
    old = []
    for name in ("TGTR-00000-003", "TGTR-00001-003"):
        fields = dataclasses.asdict(fit.Case(name, 75.0, np.array([0.1, 0.2]), np.ones(2), np.zeros(2), 0.5))
        del fields["shrink_depth"]  # as kept before
        old.append(fields)
    (cache / "tune-rt-20.pkl").write_bytes(pickle.dumps(old))
    read = fit.cached_cases(folder, 20.0, cache)
    assert [c.shrink_depth for c in read] == pytest.approx([np.log(4.0), 0.0])
    # the probability of a case follows its corrected distribution: a negative shrink term lowers the shrunk case's
    from tumorgen.followup.calibration import ModelError

    shrunk = dataclasses.replace(read[0], log_growth=np.log(np.linspace(1.5, 2.5, 200)))
    p_plain = fit.probabilities(shrunk, ModelError(0.0, 0.5), 16)
    p_shrink = fit.probabilities(shrunk, ModelError(0.0, 0.5, shrink=-1.0), 16)
    assert np.all(p_shrink <= p_plain) and p_shrink.sum() < p_plain.sum()
    assert np.array_equal(fit.probabilities(dataclasses.replace(shrunk, shrink_depth=0.0), ModelError(0.0, 0.5, shrink=-1.0), 16),
                          p_plain)


def test_the_benchmark_s_series_share_no_seed_prefix_or_folder_with_the_tuning_series():
    held = [spec for specs in bench_followup.SETS.values() for spec in specs]
    tuning = [spec for specs in fit_forecast_calibration.SETS.values() for spec in specs]
    for key in ("seed", "prefix", "folder"):
        values = [spec[key] for spec in held + tuning]
        assert len(set(values)) == len(values) == 16, key
    first = bench_followup.chosen_sets(2)
    assert {name: [spec["seed"] for spec in specs] for name, specs in first.items()} == {
        "untreated": [7400, 7406], "radiotherapy": [7401, 7407]}
    assert all(spec["extra"] == ["--rt-start", "20"] for spec in bench_followup.SETS["radiotherapy"])
    assert all(spec["extra"] == [] for spec in bench_followup.SETS["untreated"])


def _blob_case(shift: int) -> "fit_forecast_calibration.Case":
    """A forecast whose voxels arrive by distance from a ball's centre, the truth a ball of the median's size ``shift`` voxels off."""
    fit = fit_forecast_calibration
    grid = np.indices((40, 40, 40)).astype(float)
    distance = np.sqrt(((grid - 20) ** 2).sum(0))
    # a voxel at distance r arrives at the growth factor that makes the ball (r/8)³ times the latest one
    level = np.minimum(np.searchsorted(fit.FACTORS, (np.maximum(distance, 0.5) / 8.0) ** 3), len(fit.FACTORS)).astype(np.int16)
    truth = np.sqrt(((grid - np.array([20 + shift, 20, 20])[:, None, None, None]) ** 2).sum(0)) <= 8.0 * 2 ** (1 / 3)
    region = np.zeros(truth.shape, bool)
    region[8:32, 8:32, 8:32] = True
    levels = len(fit.FACTORS) + 1
    return fit.Case("TGTU-00000-004", 75.0, np.log(np.linspace(1.8, 2.2, 200)), np.bincount(level[region], minlength=levels).astype(float),
                    np.bincount(level[region & truth], minlength=levels).astype(float), np.log(2.0), level, truth,
                    np.ones(truth.shape, bool), region)


def test_the_calibration_fit_s_blurred_map_is_scored_voxel_by_voxel_and_helps_where_the_tumor_is_elsewhere():
    fit = fit_forecast_calibration
    case = _blob_case(shift=3)
    p = fit.probabilities(case, None, 16)
    rows, brier = fit.reliability([case], [p])
    # a blur too small to move anything: the voxel path gives the arrival levels' numbers
    rows_voxels, brier_voxels = fit.reliability([case], [p], blur_mm=0.01)
    assert brier_voxels == pytest.approx(brier, rel=1e-6)
    assert [r["voxels"] for r in rows_voxels] == [r["voxels"] for r in rows]
    # the truth lies 3 mm off the forecast: a blur of about that size scores better than none, and a huge one worse
    scores = {blur: fit.reliability([case], [p], blur_mm=blur)[1] for blur in (1.0, 2.0, 3.0, 8.0)}
    assert scores[2.0] < brier and scores[3.0] < brier and scores[8.0] > min(scores.values())
    centred = _blob_case(shift=0)  # where the truth is where the forecast puts it, any blur only loses
    assert fit.reliability([centred], [p], blur_mm=2.0)[1] > fit.reliability([centred], [p])[1]
    fitted = fit.fit([case], 16, blurs=(0.0, 3.0), log=lambda *a, **k: None)
    assert fitted["blur_mm"] == 3.0 and fitted["brier_by_blur"]["3"]["brier"] < fitted["brier_by_blur"]["0"]["brier"]


def test_the_guided_aim_is_fitted_to_the_median_case_and_scored_per_case_and_per_sample():
    rows = [{"requested_cm3": 100.0, "reader_cm3": [80.0, 90.0], "truth_cm3": 50.0, "truth_read_cm3": 52.0},  # 15 % short
            {"requested_cm3": 40.0, "reader_cm3": [40.0, 40.0], "truth_cm3": 30.0, "truth_read_cm3": 30.0},  # on target
            {"requested_cm3": 200.0, "reader_cm3": [150.0, 150.0], "truth_cm3": 180.0, "truth_read_cm3": 171.0}]  # 25 % short
    # request / drawn: 100/85, 1, 200/150: the median case's 100/85
    assert fit_guided_aim.fitted_aim(rows, 1.0) == pytest.approx(100 / 85)
    assert fit_guided_aim.fitted_aim(rows, 1.1) == pytest.approx(1.1 * 100 / 85)
    scored = fit_guided_aim.summary(rows)
    assert scored["cases"] == 3 and scored["cases_within_20_percent"] == 2
    assert scored["case_median_error"] == pytest.approx(-0.15) and scored["case_error_range"] == [-0.25, 0.0]
    assert scored["samples"] == 6 and scored["samples_within_20_percent"] == 4  # only the two 150s, 25 % short, are not
    assert scored["reader_on_truth_median_abs_error"] == pytest.approx(0.04) and "mean_psnr" not in scored
    images = [{**r, "image": {"psnr": psnr, "ssim": ssim}} for r, psnr, ssim in zip(rows, (16.0, 18.0, 20.0), (0.5, 0.6, 0.61))]
    scored = fit_guided_aim.summary(images)  # with the follow-up images scored: their means
    assert scored["mean_psnr"] == pytest.approx(18.0) and scored["mean_ssim"] == pytest.approx(0.57)
    with pytest.raises(ValueError, match="no case drew any tumor"):
        fit_guided_aim.fitted_aim([{"requested_cm3": 10.0, "reader_cm3": [0.0]}], 1.0)
