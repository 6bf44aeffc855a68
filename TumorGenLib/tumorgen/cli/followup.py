"""``tumorgen followup``: the synthetic follow-up scan at a day, from a tumor-size series and the latest scan."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from tumorgen.cli.inpaint import add_tissue_map_arguments
from tumorgen.cli.progress import StageBar
from tumorgen.device import add_device_argument
from tumorgen.errors import InputError
from tumorgen.settings import FOLLOWUP


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "followup",
        help="forecast the tumor at a day from a size series and draw the follow-up scan (optionally after a resection)",
        description="Fit the growth ODE with radiotherapy to the series and bootstrap it; regrow the latest tumor's "
        "concentration with Fisher–Kolmogorov to the forecast volume at --day (draws from the forecast's distribution give "
        "the tumor probability map) and draw it into the latest scan by tumor inpainting. With --resect-box the tumor is "
        "first resected (the post-operative prediction of tumorgen postop), the residual outside the cavity regrows, and "
        "the follow-up starts from the post-operative scan. Writes into OUT: followup-t1n (mean of the samples), "
        "followup-std, followup-probability, followup-seg (labels at the day; 4 = cavity), followup-concentration, region, "
        "forecast.csv (the curve for a plot) and followup.json; with a resection also postop-t1n and residual-concentration.",
        epilog="example: tumorgen followup --series series.csv --t1n latest-t1n.nii.gz --seg latest-seg.nii.gz --day 150 --out followup",
    )
    p.add_argument("--series", required=True, metavar="SERIES.csv",
                   help="the measured series: CSV with columns day and size (cm³) or seg (a label map per row), optionally rt_start")
    p.add_argument("--t1n", required=True, help="the latest scan's T1 (on the model's 1 mm grid)")
    tumor = p.add_mutually_exclusive_group(required=True)
    tumor.add_argument("--seg", help="the latest tumor's BraTS labels (1 necrotic, 2 oedema, 3 enhancing)")
    tumor.add_argument("--concentration", help="the latest tumor's concentration field in [0, 1] (e.g. edited)")
    FOLLOWUP.add_arguments(p, ("day", "rt_start", "growth_law", "route"))
    resect = p.add_mutually_exclusive_group()
    resect.add_argument("--resect-box", metavar="R,A,S,R,A,S",
                        help="resect first: the box by two opposite corners in RAS, mm (write --resect-box=-10,... when the first value is negative)")
    resect.add_argument("--resect-mask", metavar="MASK", help="resect first: the box as a 0/1 mask on the T1's grid")
    p.add_argument("--out", required=True, help="output folder")
    add_tissue_map_arguments(p, "tissue maps the tumor regrows on (default: the template registered to the T1, the tumor ignored)")
    sampling = p.add_argument_group("forecast and sampling")
    FOLLOWUP.add_arguments(sampling, ("samples", "seed", "draws", "n_boot", "interval", "recalibrate", "d_white", "rho", "steps", "guided_steps", "guidance",
                                      "strength", "margin_mm", "library", "weights"))
    add_device_argument(sampling)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tumorgen.atomic import check_output_folder, staged_into
    from tumorgen.cli.postop import parse_box
    from tumorgen.followup.predict import write_curve
    from tumorgen.tasks.followup import OUTPUT_FILES, FollowupTaskParams, output_volumes, run_followup, summary
    from tumorgen.volume_io import read_volume, write_volume

    try:
        params = FollowupTaskParams(**{name: getattr(args, name) for name in FOLLOWUP.names()})
    except ValueError as exc:
        raise InputError(str(exc)) from None
    out = check_output_folder(args.out)  # created only with the outputs, so a failure leaves none
    resect = Path(args.resect_mask) if args.resect_mask else None
    if args.resect_box is not None:
        from tumorgen.biophysics.edit import box_mask

        centre, size = parse_box(args.resect_box, "--resect-box")
        resect = box_mask(read_volume(args.t1n, role="t1n").grid, centre, size)
    inputs = {"t1n": Path(args.t1n), "series": Path(args.series), "seg": Path(args.seg) if args.seg else None,
              "concentration": Path(args.concentration) if args.concentration else None, "resect": resect,
              **{k: Path(v) if v else None for k, v in (("csf", args.csf), ("gm", args.gm), ("wm", args.wm),
                                                         ("tissue_labels", args.tissue_labels))}}
    started = time.perf_counter()
    with StageBar(args.quiet) as progress:
        result, postop = run_followup(inputs, params, args.device, progress=progress)
    info = summary(result, params)
    names = {}
    with staged_into(out) as staging:  # all files or none
        for name, (volume, dtype) in output_volumes(result, postop).items():
            write_volume(volume, staging / OUTPUT_FILES[name], dtype=dtype)
            names[name] = OUTPUT_FILES[name]
        write_curve(result.forecast, staging / OUTPUT_FILES["forecast"])
        (staging / OUTPUT_FILES["summary"]).write_text(json.dumps(info, indent=2) + "\n")
    names.update(forecast=OUTPUT_FILES["forecast"], summary=OUTPUT_FILES["summary"])
    info["seconds"]["total"] = round(time.perf_counter() - started, 2)
    info["outputs"] = {name: str(out / f) for name, f in names.items()}
    info.pop("forecast", None)
    print(json.dumps(info, indent=2))
    return 0
