"""``tumorgen postop``: the post-operative MRI a resection box would likely produce."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from tumorgen.cli.progress import StageBar
from tumorgen.device import add_device_argument
from tumorgen.errors import InputError
from tumorgen.settings import POSTOP


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "postop",
        help="predict the post-operative T1 for a resection box, guided by retrieved similar cases",
        description="Retrieve the library cases whose tumors overlap this one most (in the template's space), paste their "
        "resections into a composite prompt, and generate the box plus a margin with the post-operative ControlNet "
        "(composite, tumor and box as its condition; classifier-free guidance with --cfg), the rest of the scan kept as "
        "it is. Writes into OUT: postop-t1n (the mean of the samples), postop-std (their spread), postop-cavity (label 4), "
        "composite, region, retrieved-<n>-pre/-post (the cases that guided it, on this scan's grid) and postop.json.",
        epilog="example: tumorgen postop --t1n case-t1n.nii.gz --seg case-seg.nii.gz --box 10,-20,5,40,10,35 --out postop",
    )
    p.add_argument("--t1n", required=True, help="the pre-operative T1 (on the model's 1 mm grid)")
    tumor = p.add_mutually_exclusive_group(required=True)
    tumor.add_argument("--seg", help="the tumor's BraTS labels (1 necrotic, 2 oedema, 3 enhancing)")
    tumor.add_argument("--concentration", help="the tumor concentration field in [0, 1] (tumorgen grow writes one)")
    box = p.add_mutually_exclusive_group(required=True)
    box.add_argument("--box", metavar="R,A,S,R,A,S", help="the resection box by two opposite corners in RAS, mm (write --box=-10,... when the first value is negative)")
    box.add_argument("--box-mask", metavar="MASK", help="the resection box as a 0/1 mask on the T1's grid")
    p.add_argument("--out", required=True, help="output folder")
    sampling = p.add_argument_group("retrieval and sampling")
    POSTOP.add_arguments(sampling, ("k", "retrieval", "cfg", "samples", "seed", "steps", "strength", "margin_mm", "composite",
                                    "tumor_prompt", "library", "weights"))
    add_device_argument(sampling)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def parse_box(text: str, option: str = "--box") -> tuple[list[float], list[float]]:
    """``R,A,S,R,A,S`` (two opposite corners) → centre and size, mm."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 6 or not all(v == v and abs(v) < 1e6 for v in values):
        raise InputError(f"{option} must be six numbers R,A,S,R,A,S (two opposite corners, mm), got {text!r}")
    a, b = values[:3], values[3:]
    size = [abs(y - x) for x, y in zip(a, b)]
    if min(size) <= 0:
        raise InputError(f"{option} corners {a} and {b} span no volume: they must differ in R, A and S")
    return [(x + y) / 2 for x, y in zip(a, b)], size


def run(args: argparse.Namespace) -> int:
    from tumorgen.atomic import check_output_folder, staged_into
    from tumorgen.tasks.postop import PostopTaskParams, output_files, output_volumes, run_prediction, summary
    from tumorgen.volume_io import read_volume, write_volume

    try:
        params = PostopTaskParams(**{name: getattr(args, name) for name in POSTOP.names()})
    except ValueError as exc:
        raise InputError(str(exc)) from None
    out = check_output_folder(args.out)  # created only with the outputs, so a failure leaves none
    box = args.box_mask
    if args.box is not None:
        from tumorgen.biophysics.edit import box_mask

        centre, size = parse_box(args.box)
        box = box_mask(read_volume(args.t1n, role="t1n").grid, centre, size)
    started = time.perf_counter()
    with StageBar(args.quiet) as progress:
        result = run_prediction(Path(args.t1n), box, params, seg_path=Path(args.seg) if args.seg else None,
                                concentration_path=Path(args.concentration) if args.concentration else None, device=args.device,
                                progress=progress)
    files = output_files(result)
    info = summary(result, params)
    with staged_into(out) as staging:  # all files or none
        for name, (volume, dtype) in output_volumes(result).items():
            write_volume(volume, staging / files[name], dtype=dtype)
        (staging / "postop.json").write_text(json.dumps(info, indent=2) + "\n")
    info["seconds"]["total"] = round(time.perf_counter() - started, 2)
    info["outputs"] = {name: str(out / f) for name, f in {**files, "summary": "postop.json"}.items()}
    print(json.dumps(info, indent=2))
    return 0
