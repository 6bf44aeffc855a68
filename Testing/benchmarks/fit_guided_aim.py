#!/usr/bin/env python3
"""The guided follow-up route alone, its drawn tumor read by the independent reader: fits the guidance's aim, scores it.

The guided route (``tumorgen followup --route guided``) steers sampling with the
size regressor towards the requested volume. The regressor may read the samples
it steered higher than the tumor they show (the gradient finds what it responds
to), so the guidance aims at ``AIM`` × the request
(:data:`tumorgen.followup.guided.AIM`). This script runs the route, and only
it, on simulated series (observed on days 0, 30 and 60, the request the
forecast's median at day 135, as in ``bench_followup.py``) and reads each
sample with a reader trained by ``tumor_reader.py``:

* ``--tuning``: the tuning series, seeds 7420 (untreated) and 7421
  (radiotherapy from day 20), six subjects each, no held-out series among
  them. The aim that would have brought the median case onto its request is
  printed (``aim × request / drawn``, the drawn volume being the mean of a
  case's samples);
* otherwise the benchmark's held-out series (``bench_followup.py``'s sets,
  ``--seeds K`` of each).

Per case: the request, the regressor's windows and its read-back, the core
kept, the reader's reading of each sample and of the true day-135 scan, and
the follow-up image's PSNR/SSIM against the simulated one (on
``bench_followup.py``'s region); the summary counts the cases (mean of the
samples) and the samples within 20 % of the request.

    .venv/bin/python Testing/benchmarks/fit_guided_aim.py --simulate DIR --tuning --reader reader.pt --aim 1.0 --out aim-tuning.json
    .venv/bin/python Testing/benchmarks/fit_guided_aim.py --data DIR --seeds 2 --reader reader.pt --out aim-held-out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_followup import (DAYS, RT_START, SETS, case_file, evaluation_region, observed_case, simulate_series,  # noqa: E402
                            subjects, whole_tumor)

#: The tuning series: simulated as the held-out ones, with seeds used nowhere else.
TUNING = {"untreated": [dict(seed=7420, prefix="TGGU", folder="gu-nort", extra=[])],
          "radiotherapy": [dict(seed=7421, prefix="TGGR", folder="gu-rt", extra=["--rt-start", "20"])]}


def fitted_aim(rows: list[dict], aim: float) -> float:
    """The aim that would have drawn the median case's request: ``aim`` scaled by the median of request / drawn."""
    ratios = [r["requested_cm3"] / float(np.mean(r["reader_cm3"])) for r in rows if np.mean(r["reader_cm3"]) > 0]
    if not ratios:
        raise ValueError("no case drew any tumor the reader could read")
    return aim * float(np.median(ratios))


def summary(rows: list[dict]) -> dict:
    per_case = np.array([np.mean(r["reader_cm3"]) / r["requested_cm3"] - 1 for r in rows])
    samples = np.array([v / r["requested_cm3"] - 1 for r in rows for v in r["reader_cm3"]])
    truth = np.array([r["truth_read_cm3"] / r["truth_cm3"] - 1 for r in rows])
    images = {"mean_psnr": round(float(np.mean([r["image"]["psnr"] for r in rows])), 3),
              "mean_ssim": round(float(np.mean([r["image"]["ssim"] for r in rows])), 4)} if all("image" in r for r in rows) else {}
    return {**images, "cases": len(rows), "cases_within_20_percent": int(np.sum(np.abs(per_case) <= 0.2)),
            "case_median_error": round(float(np.median(per_case)), 4),
            "case_median_abs_error": round(float(np.median(np.abs(per_case))), 4),
            "case_error_range": [round(float(per_case.min()), 4), round(float(per_case.max()), 4)],
            "samples": int(samples.size), "samples_within_20_percent": int(np.sum(np.abs(samples) <= 0.2)),
            "sample_mean_error": round(float(samples.mean()), 4),
            "reader_on_truth_median_abs_error": round(float(np.median(np.abs(truth))), 4)}


def run(args) -> dict:
    import tumorgen.followup.guided as guided
    from tumor_reader import Reader
    from tumorgen.postop.metrics import region_scores
    from tumorgen.tasks.followup import FollowupTaskParams, run_followup
    from tumorgen.volume_io import read_volume

    if args.aim is not None:
        guided.AIM = args.aim
    chosen = TUNING if args.tuning else {name: specs[: args.seeds] for name, specs in SETS.items()}
    folders = (simulate_series(Path(args.simulate), chosen, args.cases, DAYS[1:], ("--noise-free-reference",)) if args.simulate
               else {name: [Path(args.data) / spec["folder"] for spec in specs] for name, specs in chosen.items()})
    missing = [str(f) for fs in folders.values() for f in fs if not f.is_dir()]
    if missing:
        raise SystemExit(f"fit_guided_aim: series folder not found: {', '.join(missing)} (simulate them with --simulate DIR)")
    reader = Reader(args.reader)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for set_name, set_folders in folders.items():
            for folder, subject in ((f, s) for f in set_folders for s in subjects(f)[: args.cases]):
                labels, volumes, inputs = observed_case(folder, subject, Path(tmp))
                clock = time.perf_counter()
                result, _ = run_followup(inputs, FollowupTaskParams(day=DAYS[3], rt_start=RT_START[set_name], route="guided"), "cpu")
                seconds = time.perf_counter() - clock
                info = result.info["guided"]
                voxel = labels[0].grid.voxel_volume_mm3
                reads = [reader.read(s.array, voxel)[0] for s in result.samples]
                truth_image = read_volume(case_file(folder, subject, 3, "t1n")).array
                truth_read = reader.read(truth_image, voxel)[0]
                # the follow-up image against the simulated one, on bench_followup.py's region (the forecast's labels and the truth's)
                region = evaluation_region(result.labels.array > 0, whole_tumor(labels[3].array), read_volume(inputs["t1n"]).array,
                                           truth_image, labels[0].spacing)
                rows.append({"case": subject, "set": set_name, "truth_cm3": round(volumes[3], 2), "truth_read_cm3": round(truth_read, 2),
                             "requested_cm3": result.info["predicted_cm3"], "windows": info["windows"],
                             "regressor_read_cm3": info["regressor_read_cm3"], "requested_cm3_in_crop": info["requested_cm3_in_window"],
                             "kept_core_cm3": info["kept_core_cm3"],
                             "reader_cm3": [round(v, 2) for v in reads],
                             "error": round(float(np.mean(reads)) / result.info["predicted_cm3"] - 1, 4),
                             "image": {k: round(v, 4) for k, v in region_scores(result.mean.array, truth_image, region).items()},
                             "seconds": round(seconds, 1)})
                print(json.dumps(rows[-1]), flush=True)
    out = {"aim": guided.AIM, "tuning": bool(args.tuning), "reader": str(args.reader),
           "seeds": {name: [spec["seed"] for spec in specs] for name, specs in chosen.items()}, "summary": summary(rows), "cases": rows}
    if args.tuning:
        out["fitted_aim"] = round(fitted_aim(rows, guided.AIM), 3)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--simulate", metavar="DIR", help="simulate the series into DIR (kept for the next run)")
    parser.add_argument("--data", metavar="DIR", help="a folder holding the series' folders instead of --simulate")
    parser.add_argument("--tuning", action="store_true", help="the tuning series (gu-nort/, gu-rt/), and print the fitted aim")
    parser.add_argument("--seeds", type=int, default=2, choices=range(1, len(SETS["untreated"]) + 1), metavar="K",
                        help="held-out seeds per set (default 2: the 24 series the guided route was first scored on)")
    parser.add_argument("--cases", type=int, default=6, help="series per seed (default 6)")
    parser.add_argument("--reader", required=True, help="a tumor reader (tumor_reader.py train)")
    parser.add_argument("--aim", type=float, help="the guidance's aim as a multiple of the request (default: the bundled AIM)")
    parser.add_argument("--out", help="write the rows and the summary here")
    args = parser.parse_args(argv)
    if bool(args.simulate) == bool(args.data):
        parser.error("give --simulate DIR or --data DIR")
    if args.aim is not None and not 0.5 <= args.aim <= 2.0:
        parser.error(f"--aim {args.aim} is outside 0.5–2.0")
    results = run(args)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps({"aim": results["aim"], "summary": results["summary"],
                      **({"fitted_aim": results["fitted_aim"]} if "fitted_aim" in results else {})}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
