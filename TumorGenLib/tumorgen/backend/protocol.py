"""The backend entry point: ``python -m tumorgen.backend JOB.json``.

Reads the job, runs its task, streams events (see :mod:`tumorgen.backend.events`)
on stdout, and exits with

* 0 — done; every output is in the output folder and listed in the ``result`` event;
* 2 — bad input (the ``error`` event says which input and why);
* 1 — internal error (a bug; the message and traceback are reported);
* 143 — cancelled at a step boundary: by SIGTERM (or SIGINT), or by the
  cancel-request file that the runner writes beside the job file, named after
  it (:func:`~tumorgen.backend.context.cancel_file`: ``job.json`` ->
  ``job.cancel``; the only way on Windows).

Outputs are staged in a hidden folder inside the output folder and renamed into
place only when the task has finished (:func:`tumorgen.atomic.staged_into`), so
no partial output is ever visible and a failed or cancelled job leaves the
output folder as it found it: an output folder the job had to create is
removed again.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import traceback
from pathlib import Path
from typing import IO, Sequence

from tumorgen.atomic import STAGING_PREFIX, check_output_folder, staged_into
from tumorgen.backend.context import CancelRequest, CancelSignal, TaskContext, cancel_file
from tumorgen.backend.events import ErrorEvent, EventWriter, ProgressEvent, ResultEvent
from tumorgen.backend.job import Job
from tumorgen.backend.registry import get_task
from tumorgen.errors import CancelledError, InputError

EXIT_DONE = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_CANCELLED = 128 + signal.SIGTERM


def run_job(job: Job, events: EventWriter, cancel_event: CancelSignal) -> int:
    """Run ``job`` in this process, emitting events; return the exit code."""
    try:
        spec = get_task(job.task)
        spec.check_inputs(job.inputs)
        for name, path in job.inputs.items():
            if not path.exists():
                raise InputError(f"input '{name}' file not found: {path}")
        params = spec.parse_params(job.params)
        from tumorgen.threads import configure_threads

        configure_threads()  # PyTorch's threads: the cores other processes leave free
        if job.device == "cuda":  # asked for explicitly: fail before any work if there is none
            from tumorgen.device import resolve_device

            resolve_device("cuda")
        output_dir = check_output_folder(job.output_dir)
        # The staging folder's name is the one the runner removes after killing this process.
        with staged_into(output_dir, staging_name=f"{STAGING_PREFIX}{os.getpid()}") as staging:
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
            _keep_only_outputs(ctx)
        outputs = {name: str((output_dir / filename).resolve()) for name, filename in ctx.staged_outputs.items()}
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


def _keep_only_outputs(ctx: TaskContext) -> None:
    """Check that every registered output was written, and drop anything else from the staging folder.

    Only registered outputs are published: scratch files a task leaves beside them are not results.
    """
    registered = set(ctx.staged_outputs.values())
    for name, filename in ctx.staged_outputs.items():
        if not (ctx.staging_dir / filename).is_file():
            raise RuntimeError(f"task {ctx.task} registered output {name!r} but did not write {filename}")
    for entry in ctx.staging_dir.iterdir():
        if entry.name not in registered:
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()


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
    # The runner asks for a cancel through a file beside the job file as well as by SIGTERM.
    cancel_event = CancelRequest(cancel_file(Path(args[0]).resolve()) if len(args) == 1 else None)

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
