#!/usr/bin/env python3
"""Synthetic follow-ups on held-out simulated series: forecast volume, tumor Dice, calibration, image fidelity, speed.

The held-out series are simulated here (``--simulate DIR``) unless they exist;
no MNI152 subject of these seeds is used anywhere else. Each subject is
scanned on days 0, 30 and 60 (observed) and 135 (the truth: 75 days ahead),
its tumor growing by the simulator's Fisher–Kolmogorov model with mass effect,
with slow tumors (ρ 0.01–0.03 /day, D_w 0.05–0.2 mm²/day) so that months of
growth stay inside the brain:

* ``untreated``: seeds 7400, 7406, 7412 and 7414, six subjects each, no
  radiotherapy;
* ``radiotherapy``: seeds 7401, 7407, 7413 and 7415, six subjects each,
  radiotherapy from day 20 (70 % of the cells lethally hit, cleared at 5 %/day
  after 10 days: the simulator's response).

``--seeds 2`` keeps the first two seeds of each set (24 series, as the first
release measured them).

The series given to ``tumorgen followup`` is the whole-tumor volume of the
three observed label maps; the latest scan's t1n and labels are the inputs, the
tissue maps come from registering the template (as for a user), and the growth
parameters of the regrown field are the defaults — the simulator's own D and ρ
are not passed.

Scores per case: the forecast's volume error (median vs the true whole-tumor
volume at day 135) and whether the interval holds the truth, with the default
settings (the radial law and the model-error correction of
``tumorgen.followup.calibration``, fitted on other series by
``fit_forecast_calibration.py``) and, forecast alone, the radial law's bootstrap
without the correction and the exponential law; Dice of the
predicted whole tumor (labels of the median draw) vs the truth; the tumor
probability map's Brier score and reliability (predicted probability in ten
bins vs the observed tumor frequency in each bin, pooled over the cases) over
the evaluation region (brain voxels within 10 mm of the predicted or the true
tumor); PSNR and SSIM of the follow-up t1n vs the simulated one (and its
noise-free version) inside the same region. Baselines: ``unchanged`` (the
latest scan and its labels as the forecast: no growth).

The reliability is also resampled over the series (2000 bootstrap sets of
as many series): per bin the 5th–95th percentile of observed − predicted, and
how often the largest gap stays within 0.1 — how much of a gap sets of this
size show by chance.

``--reader FILE`` (a reader trained by ``tumor_reader.py``) reads the tumor
volume of each generated sample with a network that takes no part in sampling:
the guided route's samples vs the volume requested, and, as checks of the
reader, the biophysical route's samples (whose tumor is the regrown field) and
the simulated truth.

``--timing`` runs one follow-up end to end as a command (1 mm brain, 4 samples,
registration cached) and reports its seconds.

    .venv/bin/python Testing/benchmarks/bench_followup.py --simulate /tmp/followup-held --guided --reader reader.pt \
        --reader-inputs /tmp/reader-inputs --out followup.json --figure followup.png --timing
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_postop import _parse  # noqa: E402 - the benchmarks' folder is on the path when a script runs

#: Each set: four seeds of six subjects (the second of each was added to halve the sampling error of the reliability, the
#: third and fourth to halve it again; ``--seeds 2`` runs the first two).
SETS = {"untreated": [dict(seed=7400, prefix="TGFU", folder="fu-nort", extra=[]),
                      dict(seed=7406, prefix="TGFV", folder="fu-nort-b", extra=[]),
                      dict(seed=7412, prefix="TGFW", folder="fu-nort-c", extra=[]),
                      dict(seed=7414, prefix="TGFX", folder="fu-nort-d", extra=[])],
        "radiotherapy": [dict(seed=7401, prefix="TGFR", folder="fu-rt", extra=["--rt-start", "20"]),
                         dict(seed=7407, prefix="TGFS", folder="fu-rt-b", extra=["--rt-start", "20"]),
                         dict(seed=7413, prefix="TGFT", folder="fu-rt-c", extra=["--rt-start", "20"]),
                         dict(seed=7415, prefix="TGFQ", folder="fu-rt-d", extra=["--rt-start", "20"])]}
DAYS = (0.0, 30.0, 60.0, 135.0)
RT_START = {"untreated": None, "radiotherapy": 20.0}
REACH_MM = 10.0
#: The forecasts compared on each case: the radial law with the model-error correction (the default), the radial law's
#: bootstrap alone, and the exponential law's (papers 001/002).
LAWS = {"radial": True, "radial-bootstrap": False, "exponential": False}
BINS = 10


def simulate_series(root: Path, sets: dict[str, list[dict]], n: int, days, flags=()) -> dict[str, list[Path]]:
    """Each set's folders of simulated series (slow tumors scanned on ``days``), simulated into ``root`` unless there."""
    folders: dict[str, list[Path]] = {}
    for name, specs in sets.items():
        for spec in specs:
            folder = root / spec["folder"]
            if not folder.is_dir():
                subprocess.run([sys.executable, "-m", "tumorgen.cli.main", "simulate", "--n", str(n), "--seed", str(spec["seed"]),
                                "--prefix", spec["prefix"], "--out", str(folder), "--series", ",".join(f"{d:g}" for d in days),
                                "--rho", "0.01,0.03", "--d-white", "0.05,0.2", "--quiet", *flags, *spec["extra"]],
                               check=True, stdout=subprocess.DEVNULL)
            folders.setdefault(name, []).append(folder)
    return folders


def chosen_sets(seeds: int) -> dict[str, list[dict]]:
    """The first ``seeds`` seeds of each set."""
    return {name: specs[:seeds] for name, specs in SETS.items()}


def subjects(folder: Path) -> list[str]:
    return sorted({p.name[:-4] for p in folder.iterdir() if p.is_dir() and p.name.endswith("-000")})


def case_file(folder: Path, subject: str, n: int, kind: str) -> Path:
    return folder / f"{subject}-{n:03d}" / f"{subject}-{n:03d}-{kind}.nii.gz"


def whole_tumor(labels: np.ndarray) -> np.ndarray:
    return np.isin(np.rint(labels).astype(int), (1, 2, 3))


def observed_case(folder: Path, subject: str, tmp: Path) -> tuple[list, list[float], dict]:
    """A subject's four label maps, their whole-tumor volumes (cm³), and the follow-up's inputs: the series of the three
    observed scans (a CSV written into ``tmp``), the latest scan's t1n and labels."""
    from tumorgen.volume_io import read_volume

    labels = [read_volume(case_file(folder, subject, n, "seg")) for n in range(4)]
    volumes = [float(whole_tumor(v.array).sum()) * v.grid.voxel_volume_mm3 / 1000 for v in labels]
    series = Path(tmp) / f"{subject}.csv"
    series.write_text("day,size\n" + "".join(f"{d:g},{v:.4f}\n" for d, v in zip(DAYS[:3], volumes[:3])))
    return labels, volumes, {"t1n": case_file(folder, subject, 2, "t1n"), "series": series, "seg": case_file(folder, subject, 2, "seg")}


def evaluation_region(predicted: np.ndarray, truth: np.ndarray, latest: np.ndarray, truth_image: np.ndarray, spacing) -> np.ndarray:
    """Where the follow-up is scored: within REACH_MM of the predicted or the true tumor, inside the brain either scan shows."""
    from scipy.ndimage import distance_transform_edt

    near = distance_transform_edt(~(predicted | truth), sampling=spacing) <= REACH_MM
    return near & ((np.asarray(latest) > 0) | (np.asarray(truth_image) > 0))


def run(args) -> dict:
    from tumorgen.postop.metrics import dice, region_scores
    from tumorgen.tasks.followup import FollowupTaskParams, run_followup
    from tumorgen.volume_io import read_volume

    chosen = chosen_sets(args.seeds)
    folders = (simulate_series(Path(args.simulate), chosen, args.cases, DAYS[1:], ("--noise-free-reference",)) if args.simulate
               else {name: [Path(args.data) / spec["folder"] for spec in specs] for name, specs in chosen.items()})
    folders = {name: folder for name, folder in folders.items() if name in args.sets.split(",")}
    missing = [str(f) for fs in folders.values() for f in fs if not f.is_dir()]
    if missing:
        raise SystemExit(f"bench_followup: series folder not found: {', '.join(missing)} (simulate them with --simulate DIR)")
    overrides = {k: _parse(v) for k, v in (item.split("=", 1) for item in args.set)}
    results: dict = {"days_observed": list(DAYS[:3]), "day": DAYS[3], "settings": overrides,
                     "seeds": {name: [spec["seed"] for spec in chosen[name]] for name in folders}, "sets": {}}
    figure_data = None
    inputs_dir, scratch = None, None
    if args.reader or args.reader_inputs:
        if not args.reader_inputs:
            scratch = tempfile.TemporaryDirectory(prefix="reader-inputs-")  # removed once read
        inputs_dir = Path(args.reader_inputs or scratch.name)
        inputs_dir.mkdir(parents=True, exist_ok=True)

    def keep(name: str, array: np.ndarray) -> str:  # what the reader reads, saved so another reader can read it later
        from tumor_reader import prepared

        np.save(inputs_dir / f"{name}.npy", prepared(array).astype(np.float16))
        return f"{name}.npy"
    reliability = {"sum_p": np.zeros(BINS), "sum_y": np.zeros(BINS), "n": np.zeros(BINS)}
    with tempfile.TemporaryDirectory() as tmp:
        for set_name in folders:
            rows = []
            set_bins = {k: np.zeros(BINS) for k in reliability}
            for folder, subject in ((f, s) for f in folders[set_name] for s in subjects(f)[: args.cases]):
                labels, volumes, inputs = observed_case(folder, subject, Path(tmp))
                series = inputs["series"]
                params = FollowupTaskParams(day=DAYS[3], rt_start=RT_START[set_name], **overrides)
                clock = time.perf_counter()
                result, _ = run_followup(inputs, params, "cpu")
                seconds = time.perf_counter() - clock
                truth_labels = whole_tumor(labels[3].array)
                truth_image = read_volume(case_file(folder, subject, 3, "t1n")).array
                clean_image = read_volume(case_file(folder, subject, 3, "t1n-noisefree")).array
                latest = read_volume(case_file(folder, subject, 2, "t1n"))
                predicted = result.labels.array > 0
                region = evaluation_region(predicted, truth_labels, latest.array, truth_image, latest.spacing)
                p = result.probability.array[region].astype(np.float64)
                y = truth_labels[region].astype(np.float64)
                index = np.minimum((p * BINS).astype(int), BINS - 1)
                case_bins = {key: np.bincount(index, weights=values, minlength=BINS)
                             for key, values in (("sum_p", p), ("sum_y", y), ("n", np.ones_like(p)))}
                for key in set_bins:
                    set_bins[key] += case_bins[key]
                forecast = result.info["forecast_cm3"]
                laws = {}
                for law, corrected in LAWS.items():  # the forecast alone under each growth law (cheap: no image)
                    from tumorgen.followup.predict import forecast_day
                    from tumorgen.followup.series import read_series

                    alone = forecast_day(read_series(series, rt_start=RT_START[set_name]), DAYS[3],
                                         FollowupTaskParams(day=DAYS[3], growth_law=law.split("-")[0], recalibrate=corrected,
                                                            **{k: v for k, v in overrides.items()
                                                               if k not in ("growth_law", "recalibrate")}).settings)
                    laws[law] = {"median": round(alone.median, 3), "low": round(alone.low, 3), "high": round(alone.high, 3),
                                 "error": round(abs(alone.median - volumes[3]) / volumes[3], 4),
                                 "in_interval": bool(alone.low <= volumes[3] <= alone.high)}
                row = {
                    "case": subject, "observed_cm3": [round(v, 2) for v in volumes[:3]], "truth_cm3": round(volumes[3], 2),
                    "forecast_cm3": forecast, "volume_error": round(abs(forecast["median"] - volumes[3]) / volumes[3], 4),
                    "in_interval": bool(forecast["low"] <= volumes[3] <= forecast["high"]), "laws": laws,
                    "predicted_cm3": result.info["predicted_cm3"],
                    "dice": round(dice(predicted, truth_labels), 4),
                    "brier": round(float(np.mean((p - y) ** 2)), 5),
                    "image": {k: round(v, 4) for k, v in region_scores(result.mean.array, truth_image, region).items()},
                    "image_clean": {k: round(v, 4) for k, v in region_scores(result.mean.array, clean_image, region).items()},
                    "unchanged": {
                        "volume_error": round(abs(volumes[2] - volumes[3]) / volumes[3], 4),
                        "dice": round(dice(whole_tumor(labels[2].array), truth_labels), 4),
                        "brier": round(float(np.mean((whole_tumor(labels[2].array)[region] - y) ** 2)), 5),
                        "image": {k: round(v, 4) for k, v in region_scores(latest.array, truth_image, region).items()},
                    },
                    "seconds": round(seconds, 1), "timings": {k: round(v, 2) for k, v in result.timings.items()},
                    "bins": {key: np.round(values, 3).tolist() for key, values in case_bins.items()},
                }
                if inputs_dir is not None:  # for the independent reader: the simulated truth and the biophysical samples
                    row["reader_inputs"] = {"voxel_mm3": float(latest.grid.voxel_volume_mm3), "truth": keep(f"{subject}-truth", truth_image),
                                            "fk": [keep(f"{subject}-fk-{k}", s.array) for k, s in enumerate(result.samples)]}
                if args.guided:  # the guided route on the same case: the same forecast, the image by regressor guidance
                    clock = time.perf_counter()
                    guided, _ = run_followup(inputs, FollowupTaskParams(day=DAYS[3], rt_start=RT_START[set_name],
                                                                        **{**overrides, "route": "guided"}), "cpu")
                    info = guided.info["guided"]
                    row["guided"] = {**info, "read_error": round(abs(info["regressor_read_cm3"] - info["requested_cm3_in_window"])
                                                                 / info["requested_cm3_in_window"], 4),
                                     "image": {k: round(v, 4) for k, v in region_scores(guided.mean.array, truth_image, region).items()},
                                     "seconds": round(time.perf_counter() - clock, 1)}
                    if inputs_dir is not None:
                        row["guided"]["requested_cm3"] = guided.info["predicted_cm3"]  # the median draw's volume: the guidance's aim
                        row["reader_inputs"]["guided"] = [keep(f"{subject}-guided-{k}", s.array) for k, s in enumerate(guided.samples)]
                    print(f"  guided: requested {info['requested_cm3_in_window']} read {info['regressor_read_cm3']} "
                          f"psnr {row['guided']['image']['psnr']} ssim {row['guided']['image']['ssim']}", flush=True)
                rows.append(row)
                print(f"{set_name} {subject} truth {row['truth_cm3']} forecast {forecast['median']} ({forecast['low']}–{forecast['high']}) "
                      f"error {row['volume_error']:.3f} dice {row['dice']} brier {row['brier']} psnr {row['image']['psnr']} "
                      f"ssim {row['image']['ssim']} | unchanged dice {row['unchanged']['dice']} {seconds:.0f} s", flush=True)
                if figure_data is None:
                    figure_data = (latest.array, result, truth_image, truth_labels, subject)
            for key in reliability:
                reliability[key] += set_bins[key]
            results["sets"][set_name] = {"cases": rows, "summary": _summary(rows), "reliability": reliability_rows(set_bins),
                                         "reliability_interval": _reliability_interval(rows)}
    results["reliability"] = reliability_rows(reliability)
    results["reliability_interval"] = _reliability_interval([r for s in results["sets"].values() for r in s["cases"]])
    if args.reader:
        read_generated(results, args.reader, inputs_dir)
    if scratch is not None:
        scratch.cleanup()
    results["summary"] = _summary([r for s in results["sets"].values() for r in s["cases"]])
    if args.timing:
        results["timing"] = timing(folders, args)
    if args.figure and figure_data is not None:
        curves = {"all": results["reliability"], **{name: part["reliability"] for name, part in results["sets"].items()}}
        figure(*figure_data, curves, args.figure)
    return results


def _summary(rows: list[dict]) -> dict:
    def median(values):
        return round(float(np.median(values)), 4)

    def mean(values):
        return round(float(np.mean(values)), 4)

    return {
        "cases": len(rows),
        "median_volume_error": median([r["volume_error"] for r in rows]),
        "interval_coverage": mean([r["in_interval"] for r in rows]),
        "by_law": {law: {"median_volume_error": median([r["laws"][law]["error"] for r in rows]),
                         "interval_coverage": mean([r["laws"][law]["in_interval"] for r in rows])} for law in LAWS},
        "mean_dice": mean([r["dice"] for r in rows]), "median_dice": median([r["dice"] for r in rows]),
        "mean_brier": mean([r["brier"] for r in rows]),
        "mean_psnr": mean([r["image"]["psnr"] for r in rows]), "mean_ssim": mean([r["image"]["ssim"] for r in rows]),
        "mean_psnr_clean": mean([r["image_clean"]["psnr"] for r in rows]), "mean_ssim_clean": mean([r["image_clean"]["ssim"] for r in rows]),
        "unchanged": {
            "median_volume_error": median([r["unchanged"]["volume_error"] for r in rows]),
            "mean_dice": mean([r["unchanged"]["dice"] for r in rows]),
            "mean_brier": mean([r["unchanged"]["brier"] for r in rows]),
            "mean_psnr": mean([r["unchanged"]["image"]["psnr"] for r in rows]),
            "mean_ssim": mean([r["unchanged"]["image"]["ssim"] for r in rows]),
        },
        "mean_seconds": mean([r["seconds"] for r in rows]),
        **({"guided": {"median_read_error": median([r["guided"]["read_error"] for r in rows]),
                       "within_20_percent": mean([r["guided"]["read_error"] <= 0.2 for r in rows]),
                       "mean_psnr": mean([r["guided"]["image"]["psnr"] for r in rows]),
                       "mean_ssim": mean([r["guided"]["image"]["ssim"] for r in rows])}} if rows and "guided" in rows[0] else {}),
        **({"reader": _reader_summary(rows)} if rows and "reader" in rows[0] else {}),
    }


def read_generated(results: dict, reader_file: str, inputs_dir: Path) -> None:
    """The independent reader on the saved inputs of every case: the simulated truth, the biophysical samples (tumor: the
    regrown median field) and the guided samples (vs the volume requested); each set's summary redone."""
    from tumor_reader import Reader

    reader = Reader(reader_file)
    results["reader"] = {"file": str(reader_file), **{k: reader.card[k] for k in ("steps", "data", "background", "init") if k in reader.card}}
    for part in results["sets"].values():
        for row in part["cases"]:
            saved = row["reader_inputs"]

            def read(name: str) -> float:
                return reader.read_prepared(np.load(inputs_dir / name).astype(np.float32), saved["voxel_mm3"])[0]

            truth = read(saved["truth"])
            fk = [read(n) for n in saved["fk"]]
            row["reader"] = {"truth_cm3": round(truth, 3), "truth_error": round(truth / row["truth_cm3"] - 1, 4),
                             "fk_samples_cm3": [round(v, 3) for v in fk],
                             "fk_error": round(float(np.mean(fk)) / row["predicted_cm3"] - 1, 4)}
            if "guided" in saved:
                requested = row["guided"]["requested_cm3"]
                reads = [read(n) for n in saved["guided"]]
                row["guided"]["reader"] = {"requested_cm3": requested, "samples_cm3": [round(v, 3) for v in reads],
                                           "errors": [round(v / requested - 1, 4) for v in reads]}
            print(f"{row['case']}: reader truth {truth:.1f} for {row['truth_cm3']}; biophysical {[round(v, 1) for v in fk]} for "
                  f"{row['predicted_cm3']}" + (f"; guided {row['guided']['reader']['samples_cm3']}" if "guided" in saved else ""), flush=True)
        part["summary"] = _summary(part["cases"])


def _reader_summary(rows: list[dict]) -> dict:
    """The independent reader: its error on the simulated truth and on the biophysical samples (whose tumor is known), and
    the guided samples' volume as it reads them vs the requested volume."""
    out = {"truth": {"median_abs_error": round(float(np.median([abs(r["reader"]["truth_error"]) for r in rows])), 4),
                     "mean_error": round(float(np.mean([r["reader"]["truth_error"] for r in rows])), 4)},
           "fk_samples": {"median_abs_error": round(float(np.median([abs(r["reader"]["fk_error"]) for r in rows])), 4),
                          "mean_error": round(float(np.mean([r["reader"]["fk_error"] for r in rows])), 4)}}
    if "reader" in rows[0].get("guided", {}):
        errors = np.array([e for r in rows for e in r["guided"]["reader"]["errors"]])
        per_case = np.array([np.mean(r["guided"]["reader"]["samples_cm3"]) / r["guided"]["reader"]["requested_cm3"] - 1 for r in rows])
        out["guided"] = {"samples": int(errors.size), "samples_within_20_percent": round(float(np.mean(np.abs(errors) <= 0.2)), 4),
                         "median_abs_error": round(float(np.median(np.abs(errors))), 4), "mean_error": round(float(errors.mean()), 4),
                         "cases_within_20_percent": round(float(np.mean(np.abs(per_case) <= 0.2)), 4),
                         "case_median_abs_error": round(float(np.median(np.abs(per_case))), 4)}
        # against the biophysical samples of the same case (drawn for the same volume by the same decoder): how much tumor the
        # guidance draws compared with the ControlNet given the regrown field, as the reader sees both
        relative = np.array([np.mean(r["guided"]["reader"]["samples_cm3"]) / np.mean(r["reader"]["fk_samples_cm3"]) - 1 for r in rows])
        out["guided"]["vs_fk_samples"] = {"median": round(float(np.median(relative)), 4),
                                          "cases_within_20_percent": round(float(np.mean(np.abs(relative) <= 0.2)), 4)}
    return out


def reliability_rows(bins: dict) -> list[dict]:
    """Per bin of predicted probability with voxels: their count, mean predicted, observed frequency and the gap."""
    out = []
    for k in range(BINS):
        n = bins["n"][k]
        if n == 0:
            continue
        predicted, observed = bins["sum_p"][k] / n, bins["sum_y"][k] / n
        out.append({"bin": f"{k / BINS:.1f}–{(k + 1) / BINS:.1f}", "voxels": int(n), "predicted": round(float(predicted), 4),
                    "observed": round(float(observed), 4), "gap": round(float(observed - predicted), 4)})
    return out


def _reliability_interval(rows: list[dict], resamples: int = 2000, seed: int = 0) -> dict:
    """How far the reliability moves between sets of series like these: the series resampled with replacement; per bin the
    5th–95th percentile of observed − predicted, and the distribution of the largest |gap| over bins."""
    rng = np.random.default_rng(seed)
    stacked = {k: np.array([r["bins"][k] for r in rows], np.float64) for k in ("n", "sum_p", "sum_y")}
    gaps, largest = [], []
    for _ in range(resamples):
        pick = rng.integers(len(rows), size=len(rows))
        n, sp, sy = (stacked[k][pick].sum(0) for k in ("n", "sum_p", "sum_y"))
        gap = np.where(n > 0, (sy - sp) / np.maximum(n, 1), np.nan)
        gaps.append(gap)
        largest.append(np.nanmax(np.abs(gap)))
    gaps = np.array(gaps)
    return {"resamples": resamples,
            "gap_5_95": [[round(float(np.nanpercentile(gaps[:, k], 5)), 4), round(float(np.nanpercentile(gaps[:, k], 95)), 4)]
                         for k in range(BINS)],
            "largest_gap_median": round(float(np.median(largest)), 4),
            "largest_gap_5_95": [round(float(np.percentile(largest, 5)), 4), round(float(np.percentile(largest, 95)), 4)],
            "fraction_within_0_1": round(float(np.mean(np.array(largest) <= 0.1)), 4)}


def timing(folders: dict, args) -> dict:
    """One follow-up as a command, end to end (1 mm brain, default settings: 4 samples), registration cached by the benchmark run."""
    folder = next(iter(folders.values()))[0]
    subject = subjects(folder)[0]
    with tempfile.TemporaryDirectory() as tmp:
        _, _, inputs = observed_case(folder, subject, Path(tmp))
        command = [sys.executable, "-m", "tumorgen.cli.main", "followup", "--series", str(inputs["series"]), "--t1n",
                   str(inputs["t1n"]), "--seg", str(inputs["seg"]), "--day", f"{DAYS[3]:g}",
                   "--out", str(Path(tmp) / "out"), "--device", "cpu", "--quiet"]
        clock = time.perf_counter()
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        wall = time.perf_counter() - clock
    summary = json.loads(done.stdout)
    return {"case": subject, "command_s": round(wall, 1), "seconds": summary["seconds"], "samples": summary["settings"]["samples"],
            "region_cm3": summary["region_cm3"]}


def figure(latest: np.ndarray, result, truth_image: np.ndarray, truth_labels: np.ndarray, subject: str, curves: dict[str, list[dict]],
           path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    z = int(np.argmax(truth_labels.sum(axis=(0, 1))))
    fig, axes = plt.subplots(1, 6, figsize=(21, 3.8))
    rotate = lambda a: np.rot90(a[:, :, z])  # noqa: E731
    panels = [(latest, "latest scan (day 60)", "gray"), (result.mean.array, "follow-up, day 135 (predicted)", "gray"),
              (truth_image, "day 135 (simulated truth)", "gray")]
    for ax, (image, title, cmap) in zip(axes, panels):
        ax.imshow(rotate(image), cmap=cmap)
        ax.set_title(title, fontsize=9)
    axes[3].imshow(rotate(result.probability.array), cmap="magma", vmin=0, vmax=1)
    axes[3].contour(rotate(truth_labels.astype(float)), levels=[0.5], colors="cyan", linewidths=0.8)
    axes[3].set_title("tumor probability (cyan: true tumor)", fontsize=9)
    axes[4].imshow(rotate(result.labels.array), cmap="viridis", vmin=0, vmax=4)
    axes[4].set_title("predicted labels (median draw)", fontsize=9)
    for ax in axes[:5]:
        ax.axis("off")
    ax = axes[5]
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=0.8)
    for (name, reliability), style in zip(curves.items(), ("o-", "s--", "^--")):
        ax.plot([r["predicted"] for r in reliability], [r["observed"] for r in reliability], style, label=name, markersize=4)
    ax.fill_between([0, 1], [-0.1, 0.9], [0.1, 1.1], color="C0", alpha=0.12, label="±0.1")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("predicted tumor probability")
    ax.set_ylabel("observed tumor frequency")
    ax.set_title("reliability of the probability map", fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(f"{subject}: follow-up 75 days after the latest scan (biophysical route)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--simulate", metavar="DIR", help="simulate the held-out series into DIR (kept for the next run)")
    parser.add_argument("--data", metavar="DIR", help="a folder holding the sets' folders (fu-nort/, fu-nort-b/, …, fu-rt-d/) "
                        "instead of --simulate")
    parser.add_argument("--cases", type=int, default=6, help="series per seed (default 6)")
    parser.add_argument("--seeds", type=int, default=len(SETS["untreated"]), choices=range(1, len(SETS["untreated"]) + 1),
                        metavar="K", help=f"seeds per set (default {len(SETS['untreated'])}; 2: the first release's 24 series)")
    parser.add_argument("--sets", default=",".join(SETS), help=f"which sets (default {','.join(SETS)})")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a follow-up setting (e.g. samples=2)")
    parser.add_argument("--timing", action="store_true", help="also time one follow-up command end to end")
    parser.add_argument("--guided", action="store_true", help="also run the guided route on every case (needs the size regressor)")
    parser.add_argument("--reader", help="a tumor reader (tumor_reader.py train) to read the generated tumors' volume with")
    parser.add_argument("--reader-inputs", metavar="DIR", help="keep what the reader reads here (2 mm, float16; about 2 MB an image)")
    parser.add_argument("--reread", metavar="JSON", help="no run: read the inputs kept by an earlier run (--reader-inputs) with "
                        "--reader and rewrite that run's results")
    parser.add_argument("--figure", help="write a PNG of the first case and the reliability plot")
    parser.add_argument("--out", help="write the results as JSON")
    args = parser.parse_args(argv)
    if args.reread:
        if not (args.reader and args.reader_inputs):
            parser.error("--reread needs --reader and --reader-inputs")
        results = json.loads(Path(args.reread).read_text())
        read_generated(results, args.reader, Path(args.reader_inputs))
        results["summary"] = _summary([r for s in results["sets"].values() for r in s["cases"]])
        args.out = args.out or args.reread
    elif not args.simulate and not args.data:
        parser.error("give --simulate DIR or --data DIR")
    else:
        results = run(args)
    text = json.dumps(results, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(json.dumps({"summary": results["summary"], "reliability": results["reliability"],
                      **({"timing": results["timing"]} if "timing" in results else {})}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
