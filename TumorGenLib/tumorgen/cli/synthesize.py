"""``tumorgen synthesize``: a label map → t1n, t1c, t2w, t2f with that tumor in a healthy scan."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from tumorgen.cli.progress import StageBar
from tumorgen.device import add_device_argument
from tumorgen.errors import InputError
from tumorgen.settings import SYNTHESIS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "synthesize",
        help="draw the four MR contrasts of a tumor label map in a healthy scan",
        description="Draw t1n, t1c, t2w and t2f with the tumor of a BraTS label map (1 necrotic core, 2 oedema, "
        "3 enhancing tumor) or a concentration field, in a healthy skull-stripped t1n (default: the bundled sample). "
        "The synthesis generator (latent diffusion in the shared autoencoder's space, conditioned on the healthy scan, the "
        "labels and the contrast; paper 003) samples the four contrasts together from one initial noise. Writes into OUT, "
        "BraTS names: <case>-t1n (the scan away from the tumor, in its units), -t1c, -t2w, -t2f ([0, 1]), -seg (the labels) "
        "and <case>.json.",
        epilog="example: tumorgen grow --out grown && tumorgen synthesize --seg grown/seg.nii.gz --out case",
    )
    tumor = p.add_mutually_exclusive_group(required=True)
    tumor.add_argument("--seg", help="the tumor's BraTS labels (1 necrotic core, 2 oedema, 3 enhancing) on the scan's grid")
    tumor.add_argument("--concentration", help="a tumor concentration field in [0, 1] on the scan's grid (labels by the default thresholds)")
    p.add_argument("--t1n", help="the healthy, skull-stripped t1n the tumor goes into (default: the bundled sample, simulated)")
    p.add_argument("--out", required=True, help="output folder (the case folder)")
    p.add_argument("--case", help="case name of the files (default: the output folder's name)")
    sampling = p.add_argument_group("sampling")
    SYNTHESIS.add_arguments(sampling)
    add_device_argument(sampling)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from tumorgen.atomic import check_output_folder, staged_into
    from tumorgen.synthesis.recipe import sample_scan
    from tumorgen.synthesis.synthesize import SynthesisModel, synthesize
    from tumorgen.tasks.synthesize import SynthesizeTaskParams, read_labels
    from tumorgen.volume_io import read_volume, write_volume

    try:
        params = SynthesizeTaskParams(**{name: getattr(args, name) for name in SYNTHESIS.names()})
    except ValueError as exc:
        raise InputError(str(exc)) from None
    out = Path(args.out)
    case = args.case or out.resolve().name
    if not case or "/" in case or case.startswith("."):
        raise InputError(f"--case must be a plain name, got {case!r}")
    out = check_output_folder(out)  # created only with the outputs, so a failure leaves none
    for option, path in (("--t1n", args.t1n), ("--seg", args.seg), ("--concentration", args.concentration)):
        if path is not None and not Path(path).is_file():
            raise InputError(f"{option}: file not found: {path}")
    started = time.perf_counter()
    with StageBar(args.quiet) as progress:
        if args.t1n:
            t1n = read_volume(args.t1n, role="t1n")
        else:
            progress("sample", 0.0, "simulating the bundled sample")
            t1n = sample_scan()[0]
        labels = read_labels(Path(args.seg) if args.seg else None, Path(args.concentration) if args.concentration else None, t1n)
        model = SynthesisModel(params.weights, device=args.device)
        result = synthesize(model, t1n, labels, params.settings, progress=progress)
    files = {**{c: f"{case}-{c}.nii.gz" for c in result.images}, "seg": f"{case}-seg.nii.gz", "summary": f"{case}.json"}
    info = {**result.info, "case": case, "t1n": str(Path(args.t1n).resolve()) if args.t1n else "bundled sample",
            "settings": dataclasses.asdict(params.settings)}
    with staged_into(out) as staging:  # all files or none
        for contrast, volume in result.images.items():
            write_volume(volume, staging / files[contrast], dtype=np.float32)
        write_volume(result.seg, staging / files["seg"], dtype=np.uint8)
        (staging / files["summary"]).write_text(json.dumps(info, indent=2) + "\n")
    info["seconds"] = round(time.perf_counter() - started, 2)
    info["outputs"] = {name: str(out / f) for name, f in files.items()}
    print(json.dumps(info, indent=2))
    return 0
