"""The backend entry point: ``python -m tumorgen.backend JOB.json``.

Reads the job, runs its task, streams events (see :mod:`tumorgen.backend.events`)
on stdout, and exits with

* 0 — done; every output is in the output folder and listed in the ``result`` event;
* 2 — bad input (the ``error`` event says which input and why);
* 1 — internal error (a bug; the message and traceback are reported);
* 143 — cancelled by SIGTERM (or SIGINT) at a step boundary.

Outputs are staged in a hidden folder inside the output folder and renamed into
place only when the task has finished, so no partial output is ever visible and
a failed or cancelled job leaves the output folder as it found it.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import IO, Sequence

from tumorgen.backend.context import STAGING_PREFIX, TaskContext
from tumorgen.backend.events import ErrorEvent, EventWriter, ProgressEvent, ResultEvent
from tumorgen.backend.job import Job
from tumorgen.backend.registry import get_task
from tumorgen.errors import CancelledError, InputError
from tumorgen.volume_io import check_writable_dir

EXIT_DONE = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_CANCELLED = 128 + signal.SIGTERM


def run_job(job: Job, events: EventWriter, cancel_event: threading.Event) -> int:
    """Run ``job`` in this process, emitting events; return the exit code."""
    staging: Path | None = None
    try:
        spec = get_task(job.task)
        spec.check_inputs(job.inputs)
        for name, path in job.inputs.items():
            if not path.exists():
                raise InputError(f"input '{name}' file not found: {path}")
        params = spec.parse_params(job.params)
        if job.device == "cuda":  # asked for explicitly: fail before any work if there is none
            from tumorgen.device import resolve_device

            resolve_device("cuda")
        output_dir = check_writable_dir(job.output_dir)
        staging = output_dir / f"{STAGING_PREFIX}{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        ctx = TaskContext(
            task=job.task,
            inputs=dict(job.inputs),
            params=params,
            device=job.device,
            output_dir=output_dir,
            staging_dir=staging,
            events=events,
            cancel_event=cancel_event,
        )
        ctx.progress("start", 0.0, f"task {job.task}")
        spec.run(ctx)
        ctx.check_cancelled()
        outputs = _commit(ctx)
        events.emit(ProgressEvent("done", 1.0, f"task {job.task} finished"))
        events.emit(ResultEvent(outputs))
        return EXIT_DONE
    except InputError as exc:
        events.emit(ErrorEvent("bad_input", str(exc)))
        return EXIT_BAD_INPUT
    except CancelledError:
        events.emit(ErrorEvent("cancelled", f"task {job.task} was cancelled; no output was written"))
        return EXIT_CANCELLED
    except Exception as exc:  # a bug: report it, with the traceback on stderr
        traceback.print_exc(file=sys.stderr)
        message = " ".join(f"{type(exc).__name__}: {exc}".split())
        events.emit(ErrorEvent("internal", message))
        return EXIT_INTERNAL
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def _commit(ctx: TaskContext) -> dict[str, str]:
    """Move staged outputs into the output folder (each by an atomic rename)."""
    outputs = {}
    for name, filename in ctx.staged_outputs.items():
        source = ctx.staging_dir / filename
        if not source.is_file():
            raise RuntimeError(f"task {ctx.task} registered output {name!r} but did not write {filename}")
        target = ctx.output_dir / filename
        os.replace(source, target)
        outputs[name] = str(target.resolve())
    return outputs


def _event_stream() -> IO[str]:
    """Keep the real stdout for events only; anything else printed goes to stderr."""
    sys.stdout.flush()
    events_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(events_fd, "w", encoding="utf-8", buffering=1)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    events = EventWriter(_event_stream())
    cancel_event = threading.Event()

    def request_cancel(signum, frame):  # noqa: ARG001 - signal handler signature
        cancel_event.set()

    signal.signal(signal.SIGTERM, request_cancel)
    signal.signal(signal.SIGINT, request_cancel)

    if len(args) != 1 or args[0] in ("-h", "--help"):
        if args and args[0] in ("-h", "--help"):
            print(__doc__, file=sys.stderr)
            return EXIT_DONE
        events.emit(ErrorEvent("bad_input", "usage: python -m tumorgen.backend JOB.json"))
        return EXIT_BAD_INPUT
    try:
        job = Job.load(args[0])
    except InputError as exc:
        events.emit(ErrorEvent("bad_input", str(exc)))
        return EXIT_BAD_INPUT
    return run_job(job, events, cancel_event)
