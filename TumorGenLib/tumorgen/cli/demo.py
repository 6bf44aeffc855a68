"""``tumorgen demo``: the main job on the bundled sample.

Backend jobs, run as the front ends run them:

1. ``simulate``: the bundled sample without a tumor (a simulated MNI152 subject:
   four contrasts and its tissue maps);
2. ``grow``: a Fisher–Kolmogorov tumor from a seed in the left frontal white
   matter up to :data:`DEMO_VOLUME_CM3`, on the sample's tissue maps;
3. the inpainting mask: the grown tumor's labels, dilated by 2 mm;
4. ``inpaint`` in tumor mode: the tumor generated into the healthy T1;
5. ``inpaint`` in healthy mode: the tumor inpainted away again.

Every volume is written as NIfTI, with ``montage.png`` (rows axial, coronal,
sagittal through the tumor; columns before / with the tumor / restored / the
labels) and ``timings.tsv``, the time each step took.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from tumorgen.backend.job import Job
from tumorgen.backend.runner import JobRunner
from tumorgen.cli.follow import follow_job
from tumorgen.device import add_device_argument

#: Where the demo's tumor starts (RAS mm of the template: left frontal white matter) and how large it grows.
DEMO_SEED_RAS = (-26.0, 14.0, 26.0)
DEMO_VOLUME_CM3 = 12.0
#: The inpainting mask: the tumor's labels dilated by this much.
MASK_DILATION_MM = 2.0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="run the main job on the bundled sample",
        description="Simulate the bundled sample (a healthy MNI152 subject), grow a tumor in it, inpaint the tumor into "
        "its T1 and inpaint it away again. Every volume, a PNG montage and a table of timings go to --out.",
    )
    p.add_argument("--out", default="tumorgen-demo", help="output folder (default: ./tumorgen-demo)")
    add_device_argument(p)
    p.add_argument("--spacing", type=float, default=1.0, metavar="MM", help="voxel size of the sample, mm (default 1)")
    p.add_argument("--steps", type=int, help="inpainting: denoising steps (default: the inpaint default)")
    p.add_argument("--resample", type=int, help="inpainting: RePaint resample count (default: the inpaint default)")
    p.add_argument("--weights", help="model weights folder (default: the bundled tiny models)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


class _StepFailed(Exception):
    """A demo job did not finish (its outcome has been printed)."""


class _Steps:
    """Runs the demo's jobs in order and times every step."""

    def __init__(self, out: Path, device: str, quiet: bool):
        self.out, self.device, self.quiet = out, device, quiet
        self.timings: list[tuple[str, float]] = []
        self.total: float = 0.0

    def job(self, name: str, label: str, task: str, inputs=None, params=None) -> dict[str, Path]:
        """Run one backend job into ``out/name``; its outputs, or :class:`_StepFailed`."""
        print(f"tumorgen demo: {label}")
        started = time.perf_counter()
        # paths relative to the job file: the job files stay valid when the staging folder becomes --out
        inputs = {key: Path(os.path.relpath(path, self.out)) for key, path in (inputs or {}).items()}
        job = Job(task=task, inputs=inputs, params=params or {}, device=self.device, output_dir=Path(name))
        job_file = job.write(self.out / f"{name}.json")
        outcome = follow_job(JobRunner().start(job_file), quiet=self.quiet)
        self.timings.append((label, time.perf_counter() - started))
        if not outcome.ok:
            print(f"tumorgen demo: {name}: {outcome.status}: {outcome.message}", file=sys.stderr)
            raise _StepFailed(name)
        return outcome.outputs

    def local(self, label: str, fn):
        started = time.perf_counter()
        result = fn()
        self.timings.append((label, time.perf_counter() - started))
        return result


def tumor_mask(labels, dilation_mm: float = MASK_DILATION_MM):
    """The tumor's labels (any label > 0) dilated by ``dilation_mm`` as a uint8 mask volume."""
    import numpy as np
    from scipy import ndimage

    radius = [max(1, int(round(dilation_mm / s))) for s in labels.spacing]
    ball = np.ones([2 * r + 1 for r in radius], bool)
    grid = np.stack(np.meshgrid(*[np.arange(-r, r + 1) / max(r, 1) for r in radius], indexing="ij"))
    ball &= (grid**2).sum(0) <= 1.0 + 1e-9
    return labels.with_array(ndimage.binary_dilation(labels.array > 0, structure=ball).astype(np.uint8))


def run(args: argparse.Namespace) -> int:
    from tumorgen.atomic import check_output_folder, staged_into
    from tumorgen.models.sampling import bundled_weights
    from tumorgen.tasks.simulate import SAMPLE_CASE

    out = check_output_folder(Path(args.out).resolve())
    started = time.perf_counter()
    try:
        # every step writes into a staging folder that becomes --out's content only when the demo has finished
        with staged_into(out) as staging:
            steps = _Steps(staging, args.device, args.quiet)
            inpainted = _run_steps(args, steps, started)
    except _StepFailed:
        return 1
    if inpainted is None:
        print(f"tumorgen demo: the bundled models ({bundled_weights()}) have no denoiser and ControlNet yet, so the two "
              "inpainting steps are skipped; give trained ones with --weights DIR")
        print(f"done in {time.perf_counter() - started:.1f} s: {out}")
        return 0
    print(f"sample     {out / 'sample'} ({SAMPLE_CASE}-t1n/t1c/t2w/t2f/tissue-*.nii.gz)")
    print(f"tumor      {out / 'grown'} (concentration, seg, mask)")
    for label, name in (("inpainted", "tumor"), ("restored", "restored")):
        print(f"{label:<10} {out / name / inpainted[name].name}")
    print(f"montage    {out / 'montage.png'}")
    print()
    width = max(len(label) for label, _ in steps.timings)
    for label, seconds in steps.timings:
        print(f"{label:<{width}}  {seconds:7.1f} s")
    print(f"{'total':<{width}}  {steps.total:7.1f} s   (timings.tsv)")
    return 0


def _run_steps(args: argparse.Namespace, steps: _Steps, started: float) -> dict[str, Path] | None:
    """The demo's steps, written into ``steps.out``; the two inpainted images, or None when the models cannot inpaint."""
    from tumorgen.atomic import write_text
    from tumorgen.models.sampling import bundled_weights
    from tumorgen.simulate.preview import write_preview
    from tumorgen.volume_io import read_volume, write_volume

    out = steps.out
    sample = steps.job("sample", "simulate the healthy sample", "simulate", params={"spacing_mm": args.spacing, "tumor": False})
    tissues = {k: sample[f"tissue-{k}"] for k in ("csf", "gm", "wm")}
    grown = steps.job("grown", f"grow a {DEMO_VOLUME_CM3:g} cm³ tumor", "grow", inputs=tissues,
                      params={"seed_ras": list(DEMO_SEED_RAS), "target_volume_cm3": DEMO_VOLUME_CM3})
    labels = read_volume(grown["labels"], role="labels")
    mask_path = steps.local("write the inpainting mask", lambda: write_volume(tumor_mask(labels), out / "grown" / "mask.nii.gz"))
    if args.weights is None and not (bundled_weights() / "controlnet.safetensors").is_file():
        return None
    params = {k: v for k, v in (("steps", args.steps), ("resample", args.resample)) if v is not None}
    if args.weights is not None:  # the jobs run in their own folder: a relative path would not be found from there
        params["weights"] = str(Path(args.weights).resolve())
    if "steps" in params:
        params["jump"] = min(params["steps"], 5)
    tumor = steps.job("tumor", "inpaint the tumor into the T1", "inpaint",
                      inputs={"t1n": sample["t1n"], "mask": str(mask_path), "concentration": grown["concentration"], **tissues},
                      params={"mode": "tumor", **params})
    restored = steps.job("restored", "inpaint it away again", "inpaint",
                         inputs={"t1n": tumor["inpainted"], "mask": str(mask_path), **tissues}, params={"mode": "healthy", **params})

    def pictures():
        images = {"before": read_volume(sample["t1n"]), "tumor": read_volume(tumor["inpainted"]), "restored": read_volume(restored["inpainted"])}
        return write_preview(images, labels, out / "montage.png", size_px=200)

    steps.local("write the montage", pictures)
    steps.total = time.perf_counter() - started
    table = "step\tseconds\n" + "".join(f"{label}\t{seconds:.1f}\n" for label, seconds in steps.timings) + f"total\t{steps.total:.1f}\n"
    write_text(out / "timings.tsv", table)
    return {"tumor": tumor["inpainted"], "restored": restored["inpainted"]}
