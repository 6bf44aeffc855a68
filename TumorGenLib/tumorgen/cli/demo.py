"""``tumorgen demo``: the main job on the bundled sample.

No generative task exists in the engine yet, so for now the demo runs the
backend ``smoke`` job on a head phantom and says so. Later work turns it into
grow → tumor inpainting → healthy inpainting on the MNI152 sample.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tumorgen.backend.job import Job
from tumorgen.backend.runner import JobRunner
from tumorgen.cli.follow import follow_job
from tumorgen.phantom import head_phantom
from tumorgen.volume_io import check_writable_dir, write_volume


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="run the main job on the bundled sample",
        description="Run the demo on the bundled sample and write every volume to --out.",
    )
    p.add_argument("--out", default="tumorgen-demo", help="output folder (default: ./tumorgen-demo)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="compute device")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = check_writable_dir(Path(args.out)).resolve()
    print("tumorgen demo: no generative task is built yet; running the backend smoke job on a head phantom.")
    started = time.perf_counter()
    sample = write_volume(head_phantom(), out / "inputs" / "phantom-t1n.nii.gz")
    job_file = Job(
        task="smoke",
        inputs={"image": sample},
        params={"passes": 4},
        device=args.device,
        output_dir=out / "outputs",
    ).write(out / "job.json")
    outcome = follow_job(JobRunner().start(job_file), quiet=args.quiet)
    if not outcome.ok:
        print(f"tumorgen demo: {outcome.status}: {outcome.message}", file=sys.stderr)
        return outcome.returncode
    print(f"input      {sample}")
    for name, path in outcome.outputs.items():
        print(f"{name:<10} {path}")
    print(f"done in {time.perf_counter() - started:.1f} s; job file: {job_file}")
    return 0
