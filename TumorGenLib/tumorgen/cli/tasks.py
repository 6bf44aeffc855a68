"""``tumorgen tasks``: list the backend tasks with their inputs and parameters."""

from __future__ import annotations

import argparse
import dataclasses

from tumorgen.backend.registry import available_tasks


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("tasks", help="list the backend tasks", description="List the tasks a job file can name.")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:  # noqa: ARG001
    for spec in available_tasks():
        print(f"{spec.name}: {spec.summary}")
        inputs = list(spec.inputs) + [f"[{n}]" for n in spec.optional_inputs]
        print(f"    inputs: {', '.join(inputs) or 'none'}")
        if spec.params is not None:
            fields = [f"{f.name}={f.default!r}" for f in dataclasses.fields(spec.params)]
            print(f"    params: {', '.join(fields)}")
    return 0
