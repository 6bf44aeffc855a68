"""``tumorgen grow``: a Fisher–Kolmogorov tumor → concentration and BraTS label NIfTI."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from tumorgen.cli.progress import StageBar
from tumorgen.device import add_device_argument
from tumorgen.errors import InputError
from tumorgen.settings import GROWTH


def _triple(kind):
    def parse(text: str):
        parts = text.replace(" ", "").split(",")
        try:
            values = tuple(kind(p) for p in parts)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected 3 comma-separated {kind.__name__}s, got {text!r}") from None
        if len(values) != 3:
            raise argparse.ArgumentTypeError(f"expected 3 comma-separated values, got {text!r}")
        return values

    return parse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "grow",
        help="grow a Fisher–Kolmogorov tumor: concentration and label NIfTI",
        description="Grow a tumor from a seed (or regrow an edited field) with the Fisher–Kolmogorov model "
        "dc/dt = div(D grad c) + rho c (1 - c) on tissue maps, and write <case>-concentration.nii.gz and "
        "<case>-seg.nii.gz (BraTS labels 1 NCR, 2 ED, 3 ET) on the tissue maps' grid. Without tissue inputs "
        "it grows on the bundled MNI152 sample.",
        epilog="example: tumorgen grow --seed-ras=-38,-4,28 --volume 40 --out grown (negative coordinates need the = form)",
    )
    src = p.add_argument_group("tissue maps (default: the bundled MNI152 sample)")
    src.add_argument("--csf", help="CSF probability map (with --gm and --wm)")
    src.add_argument("--gm", help="grey-matter probability map")
    src.add_argument("--wm", help="white-matter probability map")
    src.add_argument("--tissue-labels", help="tissue label map: 1 CSF, 2 GM, 3 WM")
    src.add_argument("--t1n", help="the subject's T1: carry the template's maps across by registration")
    src.add_argument("--exclude", help="with --t1n: a mask (tumor, resection) the registration ignores")
    start = p.add_argument_group("start (one of)")
    start.add_argument("--seed-ras", type=_triple(float), metavar="R,A,S", help="seed point in RAS mm")
    start.add_argument("--seed-voxel", type=_triple(int), metavar="I,J,K", help="seed voxel index")
    start.add_argument("--initial", help="an existing concentration field to regrow")
    stop = p.add_argument_group("stop (one of; default: the target volume)")
    GROWTH["days"].add_argument(stop)
    # None here tells "not given" from the default, which applies when neither stop is given
    GROWTH["target_volume_cm3"].add_argument(stop, default=None)
    GROWTH.add_arguments(p.add_argument_group("model"), ("d_white", "rho", "gm_ratio", "threshold"))
    GROWTH.add_arguments(p.add_argument_group("labels"), ("edema_threshold", "core_threshold", "necrosis_threshold"))
    out = p.add_argument_group("output")
    out.add_argument("--out", required=True, help="output folder")
    out.add_argument("--case", default="tumorgen", help="case name used in the file names (default: tumorgen)")
    GROWTH["solver"].add_argument(out)
    add_device_argument(out, help="device for the torch solver")
    out.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tumorgen.tasks.grow import GrowTaskParams, run_growth, tissues_from_inputs
    from tumorgen.atomic import check_output_folder, staged_into
    from tumorgen.volume_io import read_volume, write_volume

    starts = [x is not None for x in (args.seed_ras, args.seed_voxel, args.initial)]
    if sum(starts) != 1:
        raise InputError("give exactly one start: --seed-ras, --seed-voxel or --initial")
    if args.days is not None and args.target_volume_cm3 is not None:
        raise InputError("give one stop: --days or --volume, not both")
    if args.target_volume_cm3 is None:
        args.target_volume_cm3 = GROWTH.default("target_volume_cm3")
    if "/" in args.case or args.case.startswith("."):
        raise InputError(f"--case must be a plain name, got {args.case!r}")
    params = GrowTaskParams(seed_ras=args.seed_ras, seed_voxel=args.seed_voxel, **{name: getattr(args, name) for name in GROWTH.names()})
    out = check_output_folder(args.out)  # created only with the outputs, so a failure leaves none
    inputs = {"csf": args.csf, "gm": args.gm, "wm": args.wm, "tissue_labels": args.tissue_labels, "t1n": args.t1n, "exclude": args.exclude}
    if args.exclude and not args.t1n:
        raise InputError("--exclude only applies with --t1n")
    started = time.perf_counter()
    with StageBar(args.quiet) as progress:
        tissues, source = tissues_from_inputs({k: (Path(v) if v else None) for k, v in inputs.items()}, progress=progress)
        initial = read_volume(args.initial, role="initial") if args.initial else None
        if initial is not None and not initial.grid.matches(tissues.grid):
            raise InputError(f"--initial and the tissue maps have different geometry: {'; '.join(tissues.grid.differences(initial.grid))}")
        result, labels = run_growth(tissues, params, initial, args.device, progress=progress)
    files = {"concentration": out / f"{args.case}-concentration.nii.gz", "labels": out / f"{args.case}-seg.nii.gz"}
    with staged_into(out) as staging:
        write_volume(result.concentration, staging / files["concentration"].name)
        write_volume(labels, staging / files["labels"].name)
    from tumorgen.biophysics.labels import region_volumes_cm3

    summary = {
        "tissues": source,
        "days": round(result.days, 3),
        "steps": result.steps,
        "dt_days": round(result.dt, 5),
        f"volume_cm3_c>={result.threshold:g}": round(result.volume_cm3, 3),
        "regions_cm3": {k: round(v, 3) for k, v in region_volumes_cm3(labels).items()},
        "seconds": round(time.perf_counter() - started, 2),
        "outputs": {k: str(v) for k, v in files.items()},
    }
    print(json.dumps(summary, indent=2))
    return 0
