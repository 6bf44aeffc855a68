"""``tumorgen demo``: the main job on the bundled sample.

Two backend jobs, run as the front ends run them: ``simulate`` makes the
bundled sample (a simulated MNI152 subject with a tumor, four contrasts and
labels), then ``grow`` lets its tumor grow on for 30 days on the sample's
tissue maps. Later work extends it with tumor and healthy inpainting.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tumorgen.backend.job import Job
from tumorgen.backend.runner import JobRunner
from tumorgen.cli.follow import follow_job
from tumorgen.volume_io import check_writable_dir

DEMO_DAYS = 30.0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="run the main job on the bundled sample",
        description="Simulate the bundled sample (an MNI152 subject with a tumor) and grow its tumor for 30 more days; "
        "every volume goes to --out.",
    )
    p.add_argument("--out", default="tumorgen-demo", help="output folder (default: ./tumorgen-demo)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="compute device")
    p.add_argument("--spacing", type=float, default=1.0, metavar="MM", help="voxel size of the sample, mm (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _run(job_file: Path, quiet: bool) -> dict | None:
    outcome = follow_job(JobRunner().start(job_file), quiet=quiet)
    if not outcome.ok:
        print(f"tumorgen demo: {outcome.status}: {outcome.message}", file=sys.stderr)
        return None
    return outcome.outputs


def run(args: argparse.Namespace) -> int:
    from tumorgen.tasks.simulate import SAMPLE_CASE

    out = check_writable_dir(Path(args.out)).resolve()
    started = time.perf_counter()
    print("tumorgen demo: simulating the bundled sample, then growing its tumor for 30 days")
    sample_job = Job(task="simulate", params={"spacing_mm": args.spacing}, device=args.device, output_dir=out / "sample").write(out / "simulate.json")
    sample = _run(sample_job, args.quiet)
    if sample is None:
        return 1
    grow_job = Job(
        task="grow",
        inputs={"csf": sample["tissue-csf"], "gm": sample["tissue-gm"], "wm": sample["tissue-wm"], "initial": sample["concentration"]},
        params={"days": DEMO_DAYS},
        device=args.device,
        output_dir=out / "grown",
    ).write(out / "grow.json")
    grown = _run(grow_job, args.quiet)
    if grown is None:
        return 1
    print(f"sample     {out / 'sample'} ({SAMPLE_CASE}-t1n/t1c/t2w/t2f/seg/concentration/tissue-*.nii.gz)")
    for name, path in grown.items():
        print(f"{name:<14} {path}")
    print(f"done in {time.perf_counter() - started:.1f} s; job files: {sample_job}, {grow_job}")
    return 0
