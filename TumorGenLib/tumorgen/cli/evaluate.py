"""``tumorgen evaluate``: the BraTS inpainting metrics of a prediction against its ground truth inside a mask."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tumorgen.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="BraTS inpainting metrics (SSIM, PSNR, MSE) inside a mask",
        description="Compute the BraTS inpainting challenge's metrics with its own code (the 'inpainting' package): "
        "both images normalised by the voided image's 0.5th-99.5th percentiles, then SSIM, PSNR and MSE inside the mask. "
        "Prints them and saves them as JSON.",
        epilog="example: tumorgen evaluate --pred out.nii.gz --gt case-t1n.nii.gz --mask case-mask-healthy.nii.gz",
    )
    p.add_argument("--pred", required=True, help="the inpainted image")
    p.add_argument("--gt", required=True, help="the ground truth image")
    p.add_argument("--mask", required=True, help="the inpainted region (0/1)")
    p.add_argument("--voided", help="the image the method was given (default: the ground truth with the mask set to 0)")
    p.add_argument("--out", help="JSON file to write (default: <pred>-metrics.json beside the prediction)")
    p.set_defaults(func=run)


def _default_out(pred: Path) -> Path:
    name = pred.name
    for suffix in (".nii.gz", ".nii", ".nrrd", ".mha"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return pred.with_name(f"{name}-metrics.json")


def run(args: argparse.Namespace) -> int:
    from tumorgen.atomic import write_text
    from tumorgen.inpainting.metrics import HEADLINE, evaluate_files

    pred = Path(args.pred)
    out = Path(args.out) if args.out else _default_out(pred)
    if not out.parent.is_dir():
        raise InputError(f"folder for --out does not exist: {out.parent}")
    metrics = evaluate_files(pred, args.gt, args.mask, args.voided)
    for key in HEADLINE:
        print(f"{key:<8} {metrics[key]:.6g}")
    record = {"prediction": str(pred), "ground_truth": str(args.gt), "mask": str(args.mask), "voided": args.voided, "metrics": metrics}
    write_text(out, json.dumps(record, indent=2) + "\n")
    print(f"saved {out}")
    return 0
