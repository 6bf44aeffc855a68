#!/usr/bin/env python3
"""Inpainting benchmark and ablation on held-out subjects: BraTS metrics and wall time per setting.

For every case (a folder with ``<case>-t1n.nii.gz`` and, when it has them, its
tissue maps ``-tissue-csf/-gm/-wm``; without them the template is registered to
the T1), a 40 mm cube of healthy brain is chosen at least 10 mm away from the
tumor (deterministic per case), the mask is the cube's brain voxels, the input
is the t1n with the mask voided (as the BraTS inpainting challenge builds it)
and the ground truth is the t1n itself. Settings compared:

* ``biharmonic``: :func:`tumorgen.inpainting.baselines.biharmonic_fill` (scikit-image's, on the crop);
* ``default``: what ``tumorgen inpaint`` does without options given the tissue
  maps (from noise, since the maps are given; Poisson blending; the self-check); ``no-check``: the same without the
  self-check (the result is identical, the time is the generation's alone);
  ``registered``: the default without the tissue maps, as a user without them
  runs it: the template registered to the voided T1 (timed with it) and, by
  ``prior=auto``, the chain started from the harmonic fill;
* the start: ``harmonic-prior`` (the harmonic fill noised to strength 0.2)
  against ``default``;
* post-processing: ``raw`` (no Poisson blending), ``histogram`` (histogram
  matching added: the default until the fidelity benchmark);
* RePaint: ``no-resampling`` (injection only) against ``default``;
* schedules: ``default`` (DDIM 25), ``ddim-50``, ``ddim-100`` with the default
  resampling, and ``paper`` (DDPM 1000 steps, 10 × 10 resampling, from noise,
  histogram + Poisson).

Metrics: SSIM, PSNR, MSE inside the mask by the challenge's code
(:mod:`tumorgen.inpainting.metrics`); wall time of the inpainting alone (the
tissue maps given; with ``registered`` the registration too), on this
machine's threads.

    .venv/bin/tumorgen simulate --n 3 --seed 900 --prefix TGHELD --out /tmp/held
    .venv/bin/python Testing/benchmarks/bench_inpaint.py --data /tmp/held --out bench-inpaint.json --plot inpaint-ablation.png
    .venv/bin/python Testing/benchmarks/bench_inpaint.py --data /tmp/held --settings biharmonic,default   # the targets only
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

CUBE_MM = 40.0
TUMOR_CLEARANCE_MM = 10.0

#: name → inpainting settings (changes from the default); None for the biharmonic baseline.
SETTINGS: dict[str, dict | None] = {
    "biharmonic": None,
    "default": {},
    "no-check": {"self_check": False},
    "registered": {},
    "harmonic-prior": {"prior": "harmonic", "self_check": False},
    "raw": {"poisson": False, "self_check": False},
    "histogram": {"histogram": True, "self_check": False},
    "no-resampling": {"resample": 1, "self_check": False},
    "ddim-50": {"steps": 50, "self_check": False},
    "ddim-100": {"steps": 100, "self_check": False},
    "paper": {"scheduler": "ddpm", "steps": 1000, "jump": 10, "resample": 10, "prior": "noise", "histogram": True, "self_check": False},
}


def choose_cube(t1n: np.ndarray, tumor: np.ndarray | None, spacing, seed: int) -> np.ndarray:
    """A mask: the brain voxels of a 40 mm cube of healthy brain, ≥ 10 mm from the tumor, ≥ 85 % brain."""
    from scipy import ndimage

    brain = t1n > 0
    half = [int(round(CUBE_MM / s / 2)) for s in spacing]
    keep_out = np.zeros_like(brain) if tumor is None or not tumor.any() else ndimage.distance_transform_edt(~tumor, sampling=spacing) < TUMOR_CLEARANCE_MM
    inner = ndimage.binary_erosion(brain, iterations=3)
    candidates = np.argwhere(inner)
    rng = np.random.default_rng(seed)
    for centre in candidates[rng.permutation(len(candidates))[:5000]]:
        box = tuple(slice(c - h, c + h) for c, h in zip(centre, half))
        if any(s.start < 0 or s.stop > n for s, n in zip(box, brain.shape)):
            continue
        if brain[box].mean() >= 0.85 and not keep_out[box].any():
            mask = np.zeros_like(brain)
            mask[box] = brain[box]
            return mask
    raise SystemExit("no 40 mm cube of healthy brain found in this case")


def load(folder: Path):
    from tumorgen.volume_io import read_volume

    name = folder.name
    t1n = read_volume(folder / f"{name}-t1n.nii.gz", role="t1n")
    tissues = None
    if all((folder / f"{name}-tissue-{k}.nii.gz").is_file() for k in ("csf", "gm", "wm")):
        tissues = {k: read_volume(folder / f"{name}-tissue-{k}.nii.gz") for k in ("csf", "gm", "wm")}
    tumor = None
    seg = folder / f"{name}-seg.nii.gz"
    if seg.is_file():
        tumor = read_volume(seg).array > 0
    return t1n, tissues, tumor


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="folder of held-out case folders")
    parser.add_argument("--cases", type=int, default=3, help="how many cases (default 3)")
    parser.add_argument("--weights", help="model folder (default: the bundled tiny models)")
    parser.add_argument("--settings", default=",".join(SETTINGS), help=f"comma-separated subset of {', '.join(SETTINGS)}")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--paper-cases", type=int, metavar="N",
                        help="run the paper's configuration (about 12 min per 40 mm cube on 2 cores) on the first N cases only (default: all)")
    parser.add_argument("--out", help="write the results as JSON")
    parser.add_argument("--plot", help="write PSNR against wall time as PNG")
    args = parser.parse_args(argv)
    names = [s.strip() for s in args.settings.split(",") if s.strip()]
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        parser.error(f"unknown setting(s) {', '.join(unknown)} (known: {', '.join(SETTINGS)})")

    import torch

    from tumorgen.inpainting.baselines import biharmonic_fill
    from tumorgen.inpainting.core import InpaintSettings, inpaint
    from tumorgen.inpainting.metrics import inpainting_metrics
    from tumorgen.models.sampling import LatentDiffusion

    model = LatentDiffusion(args.weights, device="cpu")
    folders = sorted(p for p in Path(args.data).iterdir() if p.is_dir() and (p / f"{p.name}-t1n.nii.gz").is_file())[: args.cases]
    if not folders:
        parser.error(f"no case folders in {args.data}")
    rows = []
    for n, folder in enumerate(folders):
        t1n, tissues, tumor = load(folder)
        registered = tissues is None
        if tissues is None:
            from tumorgen.anatomy.registration import tissues_for_subject

            maps = tissues_for_subject(t1n, None)
            tissues = {"csf": maps.csf, "gm": maps.gm, "wm": maps.wm}
        mask = choose_cube(t1n.array, tumor, t1n.spacing, seed=n)
        voided = t1n.with_array(np.where(mask, 0, t1n.array).astype(t1n.dtype))
        print(f"{folder.name}: mask {int(mask.sum())} voxels ({mask.sum() * np.prod(t1n.spacing) / 1000:.1f} cm³)", file=sys.stderr, flush=True)
        for name in names:
            if name == "paper" and args.paper_cases is not None and n >= args.paper_cases:
                continue
            started = time.perf_counter()
            if SETTINGS[name] is None:
                pred = biharmonic_fill(voided, voided.with_array(mask)).array
            elif name == "registered":  # no tissue maps given: the template registered with the mask excluded, timed too
                from tumorgen.anatomy.registration import tissues_for_subject

                maps = tissues_for_subject(voided, voided.with_array(mask), use_cache=False)
                pred = inpaint(model, voided, voided.with_array(mask), {"csf": maps.csf, "gm": maps.gm, "wm": maps.wm},
                               InpaintSettings(seed=args.seed, **SETTINGS[name]), registered_maps=True).mean.array
            else:
                settings = InpaintSettings(seed=args.seed, **SETTINGS[name])
                pred = inpaint(model, voided, voided.with_array(mask), tissues, settings, registered_maps=registered).mean.array
            seconds = time.perf_counter() - started
            metrics = inpainting_metrics(pred, t1n.array, mask, voided.array)
            row = {"case": folder.name, "setting": name, "seconds": round(seconds, 2),
                   **{k: metrics[k] for k in ("psnr", "psnr_01", "ssim", "mse")}}
            rows.append(row)
            print(f"  {name:<14} psnr {row['psnr']:6.2f}  psnr01 {row['psnr_01']:6.2f}  ssim {row['ssim']:.4f}  {seconds:7.1f} s",
                  file=sys.stderr, flush=True)

    summary = {}
    for name in names:
        mine = [r for r in rows if r["setting"] == name]
        summary[name] = {k: float(np.mean([r[k] for r in mine])) for k in ("psnr", "psnr_01", "ssim", "mse", "seconds")}
        summary[name]["cases"] = len(mine)
    if "paper" in summary and "default" in summary:
        shared = [r["case"] for r in rows if r["setting"] == "paper"]
        gap = [next(r["psnr"] for r in rows if r["setting"] == "default" and r["case"] == c) -
               next(r["psnr"] for r in rows if r["setting"] == "paper" and r["case"] == c) for c in shared]
        summary["default"]["psnr_minus_paper_same_cases"] = float(np.mean(gap))
        print(f"default − paper PSNR on the paper's {len(shared)} case(s): {np.mean(gap):+.2f} dB", file=sys.stderr)
    if "biharmonic" in summary and "default" in summary:
        summary["default"]["psnr_minus_biharmonic"] = summary["default"]["psnr"] - summary["biharmonic"]["psnr"]
    print(f"\n| setting | cases | PSNR dB | PSNR [0,1] dB | SSIM | MSE | seconds |\n|---|---|---|---|---|---|---|")
    for name, s in summary.items():
        print(f"| {name} | {s['cases']} | {s['psnr']:.2f} | {s['psnr_01']:.2f} | {s['ssim']:.4f} | {s['mse']:.5f} | {s['seconds']:.1f} |")
    record = {"command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])),
              "data": str(Path(args.data).resolve()), "cases": [f.name for f in folders], "weights": str(model.folder),
              "threads": torch.get_num_threads(), "cube_mm": CUBE_MM, "summary": summary, "rows": rows}
    if args.out:
        Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    if args.plot:
        plot(summary, args.plot)
    return 0


def plot(summary: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for name, s in summary.items():
        ax.scatter(s["seconds"], s["psnr"], color="tab:grey" if name == "biharmonic" else "tab:blue")
        ax.annotate(name, (s["seconds"], s["psnr"]), textcoords="offset points", xytext=(5, 3), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("wall time per 40 mm cube, s (log)")
    ax.set_ylabel("PSNR inside the mask, dB (BraTS)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)


if __name__ == "__main__":
    sys.exit(main())
