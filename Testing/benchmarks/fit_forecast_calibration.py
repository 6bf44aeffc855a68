#!/usr/bin/env python3
"""Fit the forecast's model error (tumorgen.followup.calibration) on simulated tuning series.

The tuning series are simulated here (``--simulate DIR``) unless they exist, with seeds that no benchmark
scores: 7402, 7404, 7408 and 7410 (untreated), 7403, 7405, 7409 and 7411 (radiotherapy from day 20), six subjects
each, scanned on days 0, 30 and 60 (observed) and 120, 135 and 150 (60, 75 and 90 days ahead: the truths), with the slow tumors of
``bench_followup.py``; a subject with no visible tumor on an observed scan is skipped. For each subject the latest
tumor's field is regrown once through growth factors 0.2–4 (Fisher–Kolmogorov, as the follow-up does), keeping
for each voxel the smallest factor at which it is tumor; a forecast's probability map is then the fraction of its
draws whose factor reaches the voxel's, blurred inside the brain by a Gaussian of ``blur_mm`` as the follow-up
blurs it. The bias and spread (in units of the bootstrap's spread), the growth term, the shrink term and the blur
(:class:`tumorgen.followup.calibration.ModelError`) are chosen to minimise the map's Brier score over all the tuning
forecasts (brain voxels within 10 mm of the predicted or true tumor): for no blur on the whole grid of bias and
spread, then by a walk on the grid of all four terms from there (each step to the best of the 80 neighbours); for
each blur of BLUR_GRID by a walk of bias and spread with the growth and shrink terms kept. The reliability
(predicted probability in ten bins vs the observed tumor frequency, voxels pooled) is reported for each set and
for all, with the fitted blur, without it, and for the bootstrap alone.

``--evaluate DIR:RT ...`` scores the bundled calibration (or ``--calibration FILE``) the same way on other series
(e.g. the benchmark's held-out ones; RT the radiotherapy start day or ``none``) without fitting.

``--cache DIR`` keeps each folder's forecasts (the regrowth is the slow part: about 2.5 min per folder of six
subjects) and reads them back on the next run.

    .venv/bin/python Testing/benchmarks/fit_forecast_calibration.py --simulate /tmp/forecast-tune --cache /tmp/forecast-cache \
        --report tune.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SETS = {"untreated": [dict(seed=7402, prefix="TGTU", extra=[], rt=None, folder="tune-nort"),
                      dict(seed=7404, prefix="TGTV", extra=[], rt=None, folder="tune-nort-b"),
                      dict(seed=7408, prefix="TGTW", extra=[], rt=None, folder="tune-nort-c"),
                      dict(seed=7410, prefix="TGTX", extra=[], rt=None, folder="tune-nort-d")],
        "treated": [dict(seed=7403, prefix="TGTR", extra=["--rt-start", "20"], rt=20.0, folder="tune-rt"),
                    dict(seed=7405, prefix="TGTS", extra=["--rt-start", "20"], rt=20.0, folder="tune-rt-b"),
                    dict(seed=7409, prefix="TGTP", extra=["--rt-start", "20"], rt=20.0, folder="tune-rt-c"),
                    dict(seed=7411, prefix="TGTQ", extra=["--rt-start", "20"], rt=20.0, folder="tune-rt-d")]}
SUBJECTS = 6  # per seed
OBSERVED_DAYS = (0.0, 30.0, 60.0)
TRUTH_DAYS = (120.0, 135.0, 150.0)
FACTORS = np.exp(np.arange(np.log(0.2), np.log(4.0) + 1e-9, np.log(1.02)))
REACH_MM = 10.0
#: How far beyond the evaluation region a case keeps its arrival levels: more than three of the largest blur's sigmas.
BOX_MM = 12.0
BLUR_GRID = (0.0, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0)
BINS = 10
MIN_BIN_VOXELS = 2000
BIAS_GRID = np.round(np.arange(-3.0, 3.0001, 0.1), 2)
SPREAD_GRID = np.round(np.arange(0.2, 4.0001, 0.1), 2)
GROWTH_GRID = np.round(np.arange(-0.5, 0.2001, 0.025), 3)
SHRINK_GRID = np.round(np.arange(-2.0, 1.0001, 0.1), 2)


def simulate(root: Path, n: int) -> dict[str, list[Path]]:
    from bench_followup import simulate_series  # the benchmarks' folder is on the path when a script runs

    return simulate_series(root, SETS, n, (*OBSERVED_DAYS[1:], *TRUTH_DAYS))


@dataclass
class Case:
    """One forecast: the bootstrap's log growth factors at the day, and the voxels' counts by arrival level."""

    name: str
    horizon: float
    log_growth: np.ndarray  # bootstrap samples of log(V_day / V_latest)
    total: np.ndarray       # voxels of the evaluation region at each arrival level (len(FACTORS) + 1: never)
    tumor: np.ndarray       # of which tumor in the truth
    truth_log_growth: float  # log(true volume at the day / latest volume)
    # for the map's blur: a box around the evaluation region (BOX_MM beyond it) of the arrival levels, the truth, the
    # blur's domain (the brain) and the evaluation region; spacing in mm
    level: np.ndarray | None = None
    truth: np.ndarray | None = None
    domain: np.ndarray | None = None
    region: np.ndarray | None = None
    spacing: tuple = (1.0, 1.0, 1.0)
    shrink_depth: float = 0.0  # log(largest observed volume / latest): how far the tumor had shrunk by the latest scan


def series_of(folder: Path) -> dict[str, list[tuple[float, float, str]]]:
    cases = json.loads((folder / "cases.json").read_text())["cases"]
    by: dict[str, list] = {}
    for c in cases:
        regions = c["regions_cm3"]
        by.setdefault(c["case"].rsplit("-", 1)[0], []).append((float(c["day"]), regions["necrotic"] + regions["edema"]
                                                               + regions["enhancing"], c["case"]))
    return {k: sorted(v) for k, v in sorted(by.items())}


def arrival_levels(folder: Path, latest: str):
    """The latest tumor's field regrown through FACTORS: per voxel the index of the first factor at which it is tumor."""
    from tumorgen.anatomy.registration import tissues_for_subject
    from tumorgen.biophysics.fk import GrowthParams
    from tumorgen.followup.field import fields_at_volumes, labels_to_concentration, tumor_volume
    from tumorgen.followup.settings import FollowupSettings
    from tumorgen.volume_io import read_volume

    settings = FollowupSettings()
    t1n = read_volume(folder / latest / f"{latest}-t1n.nii.gz")
    seg = read_volume(folder / latest / f"{latest}-seg.nii.gz")
    tumor = np.isin(np.rint(seg.array).astype(int), (1, 2, 3))
    tissues = tissues_for_subject(t1n, t1n.with_array(tumor.astype(np.uint8)))
    domain = (np.asarray(tissues.gm.array) + np.asarray(tissues.wm.array)) > np.asarray(tissues.csf.array)
    field = labels_to_concentration(seg, d_white=settings.d_white, rho=settings.rho, domain=domain)
    voxel_cm3 = seg.grid.voxel_volume_mm3 / 1000
    now = tumor_volume(np.asarray(field.array), voxel_cm3, 0.25)
    level = np.full(seg.shape, len(FACTORS), np.int16)

    def visit(i, array):
        hit = (array >= 0.25) & (level > i)
        level[hit] = i

    fields_at_volumes(field, tissues, list(FACTORS * now), params=GrowthParams(d_white=settings.d_white, rho=settings.rho),
                      visit=visit)
    brain = np.asarray(t1n.array) > 0
    return level, brain, seg.spacing


def build_cases(folder: Path, rt: float | None, log=print) -> list[Case]:
    from scipy.ndimage import distance_transform_edt

    from tumorgen.biophysics.growth_ode import bootstrap_forecast
    from tumorgen.followup.calibration import shrink_depth
    from tumorgen.followup.settings import FollowupSettings
    from tumorgen.inpainting.core import crop_box
    from tumorgen.volume_io import read_volume

    settings = FollowupSettings()
    out = []
    for subject, points in series_of(folder).items():
        observed = [p for p in points if p[0] in OBSERVED_DAYS]
        later = [p for p in points if p[0] > OBSERVED_DAYS[-1]]
        if min(p[1] for p in observed) <= 0:  # no visible tumor on a scan: no series to forecast from (a user gets an error)
            log(f"  {subject}: skipped, no visible tumor on day {min(observed, key=lambda p: p[1])[0]:g}", flush=True)
            continue
        clock = time.perf_counter()
        level, brain, spacing = arrival_levels(folder, observed[-1][2])
        days = np.array([p[0] for p in observed])
        sizes = np.array([p[1] for p in observed])
        forecast = bootstrap_forecast(days, sizes, rt, np.array([p[0] for p in later]), n_boot=settings.n_boot, seed=settings.seed,
                                      interval=settings.interval, law=settings.growth_law)
        for j, (day, size, name) in enumerate(later):
            log_growth = np.log(np.asarray(forecast.samples, float)[:, j] / sizes[-1])
            truth = np.isin(np.rint(read_volume(folder / name / f"{name}-seg.nii.gz").array).astype(int), (1, 2, 3))
            predicted = level <= np.searchsorted(np.log(FACTORS), float(np.median(log_growth)))
            region = (distance_transform_edt(~(predicted | truth), sampling=spacing) <= REACH_MM) & (brain | truth)
            total = np.bincount(level[region], minlength=len(FACTORS) + 1).astype(np.float64)
            tumor = np.bincount(level[region & truth], minlength=len(FACTORS) + 1).astype(np.float64)
            box = crop_box(region, [int(np.ceil(BOX_MM / s)) for s in spacing], 1, region.shape)  # the blur's reach beyond it
            out.append(Case(name, day - days[-1], log_growth, total, tumor, float(np.log(size / sizes[-1])), level[box], truth[box],
                            (brain | truth)[box], region[box], tuple(float(s) for s in spacing), shrink_depth(sizes)))
        log(f"  {subject}: {len(later)} forecasts, {time.perf_counter() - clock:.0f} s", flush=True)
    return out


def cached_cases(folder: Path, rt: float | None, cache: Path | None) -> list[Case]:
    """:func:`build_cases`, kept in ``cache`` (one file per series folder, named after it) when given."""
    import dataclasses
    import pickle

    if cache is None:
        return build_cases(folder, rt)
    path = cache / f"{folder.name}-{'none' if rt is None else f'{rt:g}'}.pkl"
    if path.is_file():
        with open(path, "rb") as handle:
            stored = pickle.load(handle)
        if stored and "shrink_depth" not in stored[0]:  # kept before the shrink term: its depth from the series
            depths = shrink_depths(folder)
            stored = [{**fields, "shrink_depth": depths[fields["name"]]} for fields in stored]
        return [Case(**fields) for fields in stored]
    cases = build_cases(folder, rt)
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    with open(partial, "wb") as handle:
        pickle.dump([dataclasses.asdict(case) for case in cases], handle)
    partial.replace(path)  # a run cut short leaves no half-written cache
    return cases


def shrink_depths(folder: Path) -> dict[str, float]:
    """Each later scan's case name → the shrink depth of its subject's observed series."""
    from tumorgen.followup.calibration import shrink_depth

    out = {}
    for points in series_of(folder).values():
        sizes = np.array([p[1] for p in points if p[0] in OBSERVED_DAYS])
        for p in points:
            if p[0] > OBSERVED_DAYS[-1] and sizes.min() > 0:
                out[p[2]] = shrink_depth(sizes)
    return out


def corrected(case: Case, error, quantiles) -> np.ndarray:
    """Growth factors at ``quantiles`` of the case's corrected distribution (its log growth is from the latest scan)."""
    from tumorgen.followup.calibration import recalibrated

    return recalibrated(case.log_growth, error, quantiles, latest=1.0, depth=case.shrink_depth)


def probabilities(case: Case, error, draws: int) -> np.ndarray:
    """Predicted tumor probability at each arrival level, for draws of the corrected distribution (``error`` a
    :class:`~tumorgen.followup.calibration.ModelError`) or of the bootstrap alone (``error`` None)."""
    quantiles = (np.arange(draws) + 0.5) / draws
    growth = np.exp(np.quantile(case.log_growth, quantiles)) if error is None else corrected(case, error, quantiles)
    # a voxel of level l is tumor in a draw whose factor reaches FACTORS[l]; the last level is never reached
    return np.append((draws - np.searchsorted(np.sort(growth), FACTORS, side="left")) / draws, 0.0)


def voxel_probabilities(case: Case, p: np.ndarray, blur_mm: float) -> np.ndarray:
    """The map's probability on the case's evaluation region: ``p`` (per arrival level) blurred by ``blur_mm`` as the
    follow-up blurs its map (:func:`tumorgen.followup.calibration.spread_map`)."""
    from tumorgen.followup.calibration import spread_map

    return spread_map(p.astype(np.float32)[case.level], case.domain, blur_mm, case.spacing)[case.region]


def reliability(cases: list[Case], probs: list[np.ndarray], blur_mm: float = 0.0) -> tuple[list[dict], float]:
    """Reliability rows and Brier score of the maps whose probability per arrival level is ``probs``, blurred by ``blur_mm``."""
    sum_p, sum_y, n = np.zeros(BINS), np.zeros(BINS), np.zeros(BINS)
    brier_sum = count = 0.0
    for case, p in zip(cases, probs):
        if blur_mm > 0:  # voxel by voxel: each voxel counts once and is tumor or not
            p = voxel_probabilities(case, p, blur_mm).astype(np.float64)
            voxels, tumor = np.ones_like(p), case.truth[case.region].astype(np.float64)
        else:  # by arrival level: every voxel of a level has its probability
            voxels, tumor = case.total, case.tumor
        index = np.minimum((p * BINS).astype(int), BINS - 1)
        sum_p += np.bincount(index, weights=p * voxels, minlength=BINS)
        sum_y += np.bincount(index, weights=tumor, minlength=BINS)
        n += np.bincount(index, weights=voxels, minlength=BINS)
        brier_sum += float(np.sum(voxels * p**2 - 2 * p * tumor + tumor))
        count += float(voxels.sum())
    from bench_followup import reliability_rows  # the benchmarks' folder is on the path when a script runs

    return reliability_rows({"sum_p": sum_p, "sum_y": sum_y, "n": n}), brier_sum / max(count, 1.0)


def worst_gap(rows: list[dict]) -> float:
    return max((abs(r["gap"]) for r in rows if r["voxels"] >= MIN_BIN_VOXELS), default=0.0)


def fit(cases: list[Case], draws: int, blurs=BLUR_GRID, log=print) -> dict:
    """The model error and blur with the lowest Brier score over ``cases``: for no blur the whole grid of bias and
    spread, then a walk on the grid of bias, spread, growth and shrink from its best (each step to the best of the 80
    neighbours); for each blur a walk of bias and spread (growth and shrink kept) from the previous blur's best."""
    import itertools

    from tumorgen.followup.calibration import ModelError

    grids = (BIAS_GRID, SPREAD_GRID, GROWTH_GRID, SHRINK_GRID)
    zero = (0, 0, int(np.flatnonzero(GROWTH_GRID == 0)[0]), int(np.flatnonzero(SHRINK_GRID == 0)[0]))

    def error_at(index) -> ModelError:
        return ModelError(*(float(grid[i]) for grid, i in zip(grids, index)))

    def brier(index, blur):
        error = error_at(index)
        return reliability(cases, [probabilities(c, error, draws) for c in cases], blur)[1]

    def walk(start, blur, free):
        seen = {}

        def at(index):
            if index not in seen:
                seen[index] = brier(index, blur)
            return seen[index]

        index = start
        while True:
            moves = []
            for step in itertools.product((-1, 0, 1), repeat=len(free)):
                moved = list(index)
                for axis, d in zip(free, step):
                    moved[axis] += d
                if all(0 <= i < len(grid) for i, grid in zip(moved, grids)):
                    moves.append((at(tuple(moved)), tuple(moved)))
            value, best = min(moves)
            if best == index:
                return value, index, len(seen)
            index = best

    def describe(index):
        error = error_at(index)
        return f"bias {error.bias} spread {error.spread} growth {error.growth} shrink {error.shrink}"

    value, i, j = min((brier((i, j, *zero[2:]), 0.0), i, j) for i in range(len(BIAS_GRID)) for j in range(len(SPREAD_GRID)))
    log(f"  blur 0 mm, bias and spread: {describe((i, j, *zero[2:]))} Brier {value:.5f}", flush=True)
    value, index, evaluated = walk((i, j, *zero[2:]), 0.0, (0, 1, 2, 3))
    by_blur = {0.0: (value, index)}
    log(f"  blur 0 mm, all four: {describe(index)} Brier {value:.5f} ({evaluated} evaluated)", flush=True)
    start = index
    for blur in (b for b in blurs if b > 0):
        value, index, evaluated = walk(start, float(blur), (0, 1))
        by_blur[float(blur)] = (value, index)
        start = index
        log(f"  blur {blur:g} mm: {describe(index)} Brier {value:.5f} ({evaluated} evaluated)", flush=True)
    blur, (value, index) = min(by_blur.items(), key=lambda item: item[1][0])
    return {**error_at(index).as_dict(), "blur_mm": blur,
            "brier_by_blur": {f"{b:g}": {**error_at(v[1]).as_dict(), "brier": round(v[0], 6)} for b, v in by_blur.items()}}


def score(cases: list[Case], draws: int, error, blur_mm: float = 0.0) -> dict:
    rows, brier = reliability(cases, [probabilities(c, error, draws) for c in cases], blur_mm)
    return {"worst_gap": round(worst_gap(rows), 4), "brier": round(brier, 5), "median_volume_error": volume_error(cases, error),
            "reliability": rows}


def volume_error(cases: list[Case], error) -> float:
    """Median relative error of the forecast's median volume (the bootstrap's, or the corrected one)."""
    errors = []
    for case in cases:
        if error is None:
            median = float(np.median(case.log_growth))
        else:
            median = float(np.log(corrected(case, error, [0.5])[0]))
        errors.append(abs(np.exp(median - case.truth_log_growth) - 1.0))
    return round(float(np.median(errors)), 4)


def main(argv=None) -> int:
    from tumorgen.followup.calibration import BUNDLED, FORMAT, VERSION, ModelError, read_calibration
    from tumorgen.followup.settings import FollowupSettings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--simulate", metavar="DIR", help="simulate the tuning series into DIR (kept for the next run) and fit")
    parser.add_argument("--out", default=str(BUNDLED), help=f"where to write the fitted calibration (default {BUNDLED})")
    parser.add_argument("--evaluate", nargs="*", default=[], metavar="DIR:RT",
                        help="score the calibration on other series folders instead of fitting (RT: radiotherapy start day or none)")
    parser.add_argument("--calibration", help="with --evaluate: the calibration file (default: the bundled one)")
    parser.add_argument("--report", help="write the scores as JSON")
    parser.add_argument("--cache", metavar="DIR", help="keep each series folder's forecasts here and reuse them on the next run")
    args = parser.parse_args(argv)
    cache = Path(args.cache) if args.cache else None
    draws = FollowupSettings().draws
    report: dict = {"draws": draws, "sets": {}}
    sets: dict[str, list[Case]] = {}
    if args.evaluate:
        calibration = read_calibration(args.calibration or BUNDLED)
        error, blur = calibration.error, calibration.blur_mm
        for item in args.evaluate:
            folder, rt = item.rsplit(":", 1)
            print(f"{folder}", flush=True)
            sets[folder] = cached_cases(Path(folder), None if rt == "none" else float(rt), cache)
    else:
        if not args.simulate:
            parser.error("give --simulate DIR (the tuning series) or --evaluate DIR:RT ...")
        folders = simulate(Path(args.simulate), SUBJECTS)
        for name in SETS:
            for folder, spec in zip(folders[name], SETS[name]):
                print(f"{name}: {folder}", flush=True)
                sets[f"{name}:{spec['seed']}"] = cached_cases(folder, spec["rt"], cache)
        everything = [c for cases in sets.values() for c in cases]
        fitted = fit(everything, draws)
        error, blur = ModelError(fitted["bias"], fitted["spread"], fitted["growth"], fitted["shrink"]), fitted["blur_mm"]
        report["fitted"] = fitted
    by_regime: dict[str, list[Case]] = {}
    for name, cases in sets.items():
        by_regime.setdefault(name.split(":")[0] if not args.evaluate else name, []).extend(cases)
    groups = {**by_regime, "all": [c for cases in sets.values() for c in cases]}
    for name, cases in groups.items():
        report["sets"][name] = {"cases": len(cases), "corrected": score(cases, draws, error, blur),
                                "unblurred": score(cases, draws, error), "bootstrap": score(cases, draws, None)}
        part = report["sets"][name]
        print(f"{name} ({len(cases)} forecasts): worst gap {part['corrected']['worst_gap']} (unblurred "
              f"{part['unblurred']['worst_gap']}, bootstrap alone {part['bootstrap']['worst_gap']}), Brier "
              f"{part['corrected']['brier']} ({part['bootstrap']['brier']}), median volume error "
              f"{part['corrected']['median_volume_error']} ({part['bootstrap']['median_volume_error']})", flush=True)
    if not args.evaluate:
        print(f"bias {error.bias} spread {error.spread} growth {error.growth} shrink {error.shrink} blur {blur:g} mm", flush=True)
        source = {"fitted_by": "Testing/benchmarks/fit_forecast_calibration.py", "objective": "Brier score of the probability map",
                  "series": {name: {"seeds": [spec["seed"] for spec in SETS[name]], "subjects": SUBJECTS * len(SETS[name]),
                                    "forecasts": report["sets"][name]["cases"], "observed_days": list(OBSERVED_DAYS),
                                    "truth_days": list(TRUTH_DAYS), "rt_start": SETS[name][0]["rt"]} for name in SETS},
                  "tuning_scores": {name: {k: report["sets"][name]["corrected"][k] for k in ("worst_gap", "brier", "median_volume_error")}
                                    | {"worst_gap_unblurred": report["sets"][name]["unblurred"]["worst_gap"],
                                       "worst_gap_bootstrap": report["sets"][name]["bootstrap"]["worst_gap"]} for name in groups},
                  "brier_by_blur": fitted["brier_by_blur"], "draws": draws}
        Path(args.out).write_text(json.dumps({"format": FORMAT, "version": VERSION, **error.as_dict(), "blur_mm": blur,
                                              "source": source}, indent=2) + "\n")
        read_calibration(args.out)  # what was written reads back
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
