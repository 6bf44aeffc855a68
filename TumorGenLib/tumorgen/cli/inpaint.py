"""``tumorgen inpaint``: healthy tissue or a tumor generated inside a mask of a T1 image."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tumorgen.cli.progress import StageBar
from tumorgen.device import add_device_argument
from tumorgen.errors import InputError
from tumorgen.settings import INPAINTING


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "inpaint",
        help="healthy or tumor inpainting inside a mask (latent diffusion + ControlNet, RePaint)",
        description="Generate the masked region of a T1 image with the latent diffusion model, conditioned on the "
        "subject's tissue maps and a tumor concentration field (zero in healthy mode), with RePaint resampling, starting "
        "(healthy mode) from the learned fill of the mask noised part of the way; then Poisson blending and, with registered "
        "tissue maps, a blend toward the learned fill deep inside the mask. --method unet gives the learned fill alone. Voxels outside the "
        "mask are copied unchanged. Accepts the BraTS inpainting challenge's inputs (a voided t1n and its mask). With "
        "--samples K > 1 also writes the voxelwise standard deviation (OUT-std) and each sample (OUT-sample-k). A "
        "self-check inpaints a region of the mask's shape in known tissue and scores it against a classical fill; where "
        "TumorGen scores behind it, the result falls back to the better fill (--fallback off: never).",
        epilog="example: tumorgen inpaint --t1n case-t1n-voided.nii.gz --mask case-mask.nii.gz --mode healthy --out case-inpainted.nii.gz",
    )
    p.add_argument("--t1n", required=True, help="the T1 image (the region under the mask may be voided)")
    p.add_argument("--mask", required=True, help="the region to generate (0/1, the T1's grid)")
    INPAINTING["mode"].add_argument(p)
    p.add_argument("--concentration", help="tumor mode: the tumor concentration field in [0, 1] (tumorgen grow writes one)")
    p.add_argument("--out", required=True, help="output image (.nii.gz)")
    add_tissue_map_arguments(p, "tissue maps (default: the template registered to the T1, ignoring the mask)")
    sampling = p.add_argument_group("sampling")
    INPAINTING.add_arguments(sampling, ("method", "scheduler", "steps", "jump", "resample", "prior", "strength", "confidence_mm",
                                        "samples", "seed", "margin_mm", "histogram", "poisson", "self_check", "fallback"))
    INPAINTING["weights"].add_argument(sampling)
    add_device_argument(sampling)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def add_tissue_map_arguments(parser: argparse.ArgumentParser, title: str) -> None:
    """--csf/--gm/--wm and --tissue-labels, in a group named ``title``."""
    tissues = parser.add_argument_group(title)
    tissues.add_argument("--csf", help="CSF probability map (with --gm and --wm)")
    tissues.add_argument("--gm", help="grey-matter probability map")
    tissues.add_argument("--wm", help="white-matter probability map")
    tissues.add_argument("--tissue-labels", help="tissue label map: 1 CSF, 2 GM, 3 WM")


def output_names(out: Path, samples: int) -> dict[str, Path]:
    """The files ``--out OUT`` produces: OUT, and with several samples OUT-std and OUT-sample-k."""
    name = out.name
    if not name.endswith((".nii.gz", ".nii")):
        raise InputError(f"--out must be a NIfTI file (.nii.gz or .nii), got {out}")
    stem, suffix = (name[:-7], ".nii.gz") if name.endswith(".nii.gz") else (name[:-4], ".nii")
    files = {"inpainted": out}
    if samples > 1:
        files["std"] = out.with_name(f"{stem}-std{suffix}")
        files.update({f"sample-{k}": out.with_name(f"{stem}-sample-{k}{suffix}") for k in range(samples)})
    return files


def run(args: argparse.Namespace) -> int:
    from tumorgen.atomic import check_output_folder, staged_into
    from tumorgen.tasks.inpaint import InpaintTaskParams, run_inpainting
    from tumorgen.tasks.grow import REGISTERED
    from tumorgen.volume_io import write_volume

    try:
        params = InpaintTaskParams(**{name: getattr(args, name) for name in INPAINTING.names()})
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if (args.tissue_labels is not None) and any(v is not None for v in (args.csf, args.gm, args.wm)):
        raise InputError("give either --csf/--gm/--wm or --tissue-labels, not both")
    out = Path(args.out)
    files = output_names(out, args.samples)
    folder = check_output_folder(out.parent)  # created only with the outputs, so a failure leaves none
    inputs = {k: (Path(v) if v else None) for k, v in dict(t1n=args.t1n, mask=args.mask, concentration=args.concentration, csf=args.csf,
                                                             gm=args.gm, wm=args.wm, tissue_labels=args.tissue_labels).items()}
    started = time.perf_counter()
    with StageBar(args.quiet) as progress:
        result, source = run_inpainting(inputs, params, args.device, progress=progress)
    volumes = {"inpainted": result.mean, "std": result.std, **{f"sample-{k}": s for k, s in enumerate(result.samples)}}
    with staged_into(folder) as staging:  # all files or none
        for name, path in files.items():
            write_volume(volumes[name], staging / path.name)
    summary = {
        "mode": args.mode,
        "method": args.method,
        "tissues": source,
        "schedule": {"scheduler": args.scheduler, "steps": args.steps, "jump": args.jump, "resample": args.resample,
                     "prior": args.prior, "strength": args.strength, "confidence_mm": args.confidence_mm,
                     "network_evaluations": params.settings.network_evaluations(registered_maps=source == REGISTERED)},
        "crop_voxels": [s.stop - s.start for s in result.box],
        "seconds": {**{k: round(v, 2) for k, v in result.timings.items()}, "total": round(time.perf_counter() - started, 2)},
        "outputs": {k: str(v) for k, v in files.items()},
        "self_check": result.check.as_dict() if result.check is not None else None,
        "fallback": result.check.fallback if result.check is not None and result.check.fallback else None,
    }
    print(json.dumps(summary, indent=2))
    if result.check is not None:
        print(("warning: " if result.check.doubtful else "") + result.check.summary(), file=sys.stderr)
    elif params.self_check and params.mode == "healthy":
        from tumorgen.tasks.inpaint import NO_PROBE

        print(NO_PROBE, file=sys.stderr)
    return 0
