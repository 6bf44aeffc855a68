"""``tumorgen inpaint``: healthy tissue or a tumor generated inside a mask of a T1 image."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from tumorgen.cli.progress import StageBar
from tumorgen.errors import InputError
from tumorgen.inpainting.core import DEFAULT_JUMP, DEFAULT_MARGIN_MM, DEFAULT_RESAMPLE, DEFAULT_SCHEDULER, DEFAULT_STEPS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "inpaint",
        help="healthy or tumor inpainting inside a mask (latent diffusion + ControlNet, RePaint)",
        description="Generate the masked region of a T1 image with the latent diffusion model, conditioned on the "
        "subject's tissue maps and a tumor concentration field (zero in healthy mode), with RePaint resampling; then "
        "histogram matching and Poisson blending. Voxels outside the mask are copied unchanged. Accepts the BraTS "
        "inpainting challenge's inputs (a voided t1n and its mask). With --samples K > 1 also writes the voxelwise "
        "standard deviation (OUT-std) and each sample (OUT-sample-k).",
        epilog="example: tumorgen inpaint --t1n case-t1n-voided.nii.gz --mask case-mask.nii.gz --mode healthy --out case-inpainted.nii.gz",
    )
    p.add_argument("--t1n", required=True, help="the T1 image (the region under the mask may be voided)")
    p.add_argument("--mask", required=True, help="the region to generate (0/1, the T1's grid)")
    p.add_argument("--mode", choices=("healthy", "tumor"), default="healthy", help="healthy tissue, or a tumor from --concentration")
    p.add_argument("--concentration", help="tumor mode: the tumor concentration field in [0, 1] (tumorgen grow writes one)")
    p.add_argument("--out", required=True, help="output image (.nii.gz)")
    tissues = p.add_argument_group("tissue maps (default: the template registered to the T1, ignoring the mask)")
    tissues.add_argument("--csf", help="CSF probability map (with --gm and --wm)")
    tissues.add_argument("--gm", help="grey-matter probability map")
    tissues.add_argument("--wm", help="white-matter probability map")
    tissues.add_argument("--tissue-labels", help="tissue label map: 1 CSF, 2 GM, 3 WM")
    sampling = p.add_argument_group("sampling")
    sampling.add_argument("--scheduler", choices=("ddim", "ddpm"), default=DEFAULT_SCHEDULER, help=f"default {DEFAULT_SCHEDULER}")
    sampling.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"denoising steps (default {DEFAULT_STEPS}; the paper: ddpm 1000)")
    sampling.add_argument("--jump", type=int, default=DEFAULT_JUMP, help=f"RePaint jump length in steps (default {DEFAULT_JUMP}; the paper: 10)")
    sampling.add_argument("--resample", type=int, default=DEFAULT_RESAMPLE,
                          help=f"RePaint resample count, 1 for none (default {DEFAULT_RESAMPLE}; the paper: 10)")
    sampling.add_argument("--samples", type=int, default=1, help="samples with seeds seed, seed+1, …: OUT is their mean (default 1)")
    sampling.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sampling.add_argument("--margin", type=float, default=DEFAULT_MARGIN_MM, metavar="MM", help=f"context around the mask (default {DEFAULT_MARGIN_MM:g})")
    sampling.add_argument("--no-histogram", action="store_true", help="skip histogram matching")
    sampling.add_argument("--no-poisson", action="store_true", help="skip Poisson blending")
    sampling.add_argument("--weights", help="model weights folder (default: the bundled tiny models)")
    sampling.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="compute device")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


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
    from tumorgen.tasks.inpaint import InpaintTaskParams, run_inpainting
    from tumorgen.volume_io import check_writable_dir, write_volume

    try:
        params = InpaintTaskParams(mode=args.mode, scheduler=args.scheduler, steps=args.steps, jump=args.jump, resample=args.resample,
                                   samples=args.samples, seed=args.seed, histogram=not args.no_histogram, poisson=not args.no_poisson,
                                   margin_mm=args.margin, weights=args.weights)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if (args.tissue_labels is not None) and any(v is not None for v in (args.csf, args.gm, args.wm)):
        raise InputError("give either --csf/--gm/--wm or --tissue-labels, not both")
    out = Path(args.out)
    files = output_names(out, args.samples)
    folder = check_writable_dir(out.parent if str(out.parent) else Path("."))
    inputs = {k: (Path(v) if v else None) for k, v in dict(t1n=args.t1n, mask=args.mask, concentration=args.concentration, csf=args.csf,
                                                             gm=args.gm, wm=args.wm, tissue_labels=args.tissue_labels).items()}
    started = time.perf_counter()
    with StageBar(args.quiet) as progress:
        result, source = run_inpainting(inputs, params, args.device, progress=progress)
    volumes = {"inpainted": result.mean, "std": result.std, **{f"sample-{k}": s for k, s in enumerate(result.samples)}}
    # all files or none: write into a staging folder beside them, then move into place
    staging = Path(tempfile.mkdtemp(prefix=".tumorgen-inpaint-", dir=folder))
    try:
        staged = {name: write_volume(volumes[name], staging / path.name) for name, path in files.items()}
        for name, path in staged.items():
            os.replace(path, files[name])
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    summary = {
        "mode": args.mode,
        "tissues": source,
        "schedule": {"scheduler": args.scheduler, "steps": args.steps, "jump": args.jump, "resample": args.resample,
                     "network_evaluations": params.settings.schedule.evaluations},
        "crop_voxels": [s.stop - s.start for s in result.box],
        "seconds": {**{k: round(v, 2) for k, v in result.timings.items()}, "total": round(time.perf_counter() - started, 2)},
        "outputs": {k: str(v) for k, v in files.items()},
    }
    print(json.dumps(summary, indent=2))
    return 0
