"""``tumorgen run JOB.json``: run a backend job file in a subprocess with a progress bar."""

from __future__ import annotations

import argparse
import sys

from tumorgen.backend.runner import JobRunner
from tumorgen.cli.follow import follow_job


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run",
        help="run a backend job file (JSON) with a progress bar",
        description="Run a job file as the front ends do: in its own process, streaming events. "
        "Exit code 0 done, 2 bad input, 1 internal error, 143 cancelled.",
    )
    p.add_argument("job", help="the job file (task, inputs, params, device, output_dir)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--verbose", action="store_true", help="also show the backend's stderr")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    outcome = follow_job(JobRunner().start(args.job), quiet=args.quiet, verbose=args.verbose)
    if outcome.ok:
        for name, path in outcome.outputs.items():
            print(f"{name}\t{path}")
    else:
        print(f"tumorgen run: {outcome.status}: {outcome.message}", file=sys.stderr)
    return outcome.returncode
