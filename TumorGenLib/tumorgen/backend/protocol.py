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

When CUDA runs out of memory (:func:`is_cuda_out_of_memory`) in a task running
on a CUDA device, and the job's device is not ``cpu``, the job frees PyTorch's
cached CUDA memory, logs a warning and runs the task once more from the start
on the CPU, with a fresh staging folder: the first attempt's partial outputs
are discarded with its own. A failure of that second run is reported as any
failure is.
"""

from __future__ import annotations

import gc
import os
import shutil
import signal
import sys
import traceback
from pathlib import Path
from typing import IO, Any, Sequence

from tumorgen.atomic import STAGING_PREFIX, check_output_folder, staged_into
from tumorgen.backend.context import CancelRequest, CancelSignal, TaskContext, cancel_file
from tumorgen.backend.events import ErrorEvent, EventWriter, LogEvent, ProgressEvent, ResultEvent
from tumorgen.backend.job import Job
from tumorgen.backend.registry import TaskSpec, get_task
from tumorgen.errors import CancelledError, InputError, TumorGenError

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
        ran_out_on = None
        try:
            ctx = _run_attempt(job, spec, params, job.device, output_dir, events, cancel_event)
        except _CudaRanOutOfMemory as exc:
            ran_out_on = exc.device
        if ran_out_on is not None:
            # Out of the except block: the failed attempt's frames (and the tensors they hold) can go before the cache is emptied.
            _free_cuda_memory()
            events.emit(LogEvent(f"CUDA ran out of memory on {ran_out_on}; running again on the CPU (slower)", "warning"))
            ctx = _run_attempt(job, spec, params, "cpu", output_dir, events, cancel_event)
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


class _CudaRanOutOfMemory(Exception):
    """The task ran out of CUDA memory on ``device``.

    Raised in place of the original error (whose traceback goes to stderr), so that the job runs the task again on the CPU.
    """

    def __init__(self, device: str) -> None:
        super().__init__(f"CUDA ran out of memory on {device}")
        self.device = device


def _run_attempt(job: Job, spec: TaskSpec, params: Any, device: str, output_dir: Path, events: EventWriter,
                 cancel_event: CancelSignal) -> TaskContext:
    """Run the task once on ``device`` (``auto``, ``cpu`` or ``cuda``), staging its outputs; return its context.

    Args:
        job: the job being run.
        spec: its task.
        params: its checked parameters.
        device: the device the task's context resolves.
        output_dir: where the outputs go when the task has finished.
        events: where progress and log events go.
        cancel_event: set when the job is asked to stop.

    Returns:
        The context, with the outputs the task registered, all of them now in ``output_dir``.

    Raises:
        _CudaRanOutOfMemory: the task, running on a CUDA device with ``device`` other than ``cpu``, ran out of CUDA
            memory; its staging folder (and an output folder this attempt created) is gone.
    """
    # The staging folder's name is the one the runner removes after killing this process.
    with staged_into(output_dir, staging_name=f"{STAGING_PREFIX}{os.getpid()}") as staging:
        ctx = TaskContext(
            task=job.task,
            inputs=dict(job.inputs),
            params=params,
            device=device,
            output_format=job.output_format,
            output_dir=output_dir,
            staging_dir=staging,
            events=events,
            cancel_event=cancel_event,
        )
        try:
            ctx.progress("start", 0.0, f"task {job.task}")
            spec.run(ctx)
            ctx.check_cancelled()
            _keep_only_outputs(ctx)
        except Exception as exc:
            if device == "cpu" or not is_cuda_out_of_memory(exc):
                raise
            ran_on = _cuda_device_of(ctx)
            if ran_on is None:
                raise
            # The warning event says what happens next; the original traceback goes to stderr, for the record.
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
            raise _CudaRanOutOfMemory(ran_on) from None
    return ctx


def is_cuda_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is PyTorch's CUDA out-of-memory error, found without importing PyTorch.

    Args:
        exc: an error a task raised.

    Returns:
        True for ``torch.cuda.OutOfMemoryError`` (when PyTorch is loaded), any error class named
        ``OutOfMemoryError``, and a RuntimeError whose message says ``CUDA out of memory`` (older PyTorch);
        False for TumorGen's own errors, which say what went wrong already.
    """
    if isinstance(exc, TumorGenError):
        return False
    torch = sys.modules.get("torch")  # loaded, if the task used CUDA: never imported here
    oom_type = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)
    if isinstance(oom_type, type) and isinstance(exc, oom_type):
        return True
    if type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and "CUDA out of memory" in str(exc)


def _cuda_device_of(ctx: TaskContext) -> str | None:
    """The CUDA device ``ctx`` resolved (``cuda``, ``cuda:0``), or None when it is not a CUDA device or cannot be resolved."""
    try:
        device = ctx.device
    except Exception:  # noqa: BLE001 - no device to name: then not a CUDA one
        return None
    kind = getattr(device, "type", None) or str(device).partition(":")[0]
    return str(device) if kind == "cuda" else None


def _free_cuda_memory() -> None:
    """Give the memory PyTorch holds in its CUDA cache back to the driver (nothing to do when PyTorch is not loaded)."""
    gc.collect()  # tensors held by the failed attempt's frames and reference cycles
    torch = sys.modules.get("torch")
    if torch is None:
        return
    try:
        torch.cuda.empty_cache()
    except Exception as exc:  # noqa: BLE001 - a failing cache flush must not turn a fallback into a failure
        print(f"torch.cuda.empty_cache() failed: {exc}", file=sys.stderr)


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
