"""What a running task sees: its inputs and parameters, progress, cancellation, outputs."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, TypeVar, Union

from tumorgen.backend.events import EventWriter, LogEvent, ProgressEvent
from tumorgen.backend.job import OUTPUT_FORMATS
from tumorgen.errors import CancelledError, InputError
from tumorgen.volume import Volume
from tumorgen.volume_io import read_mask, read_volume, volume_suffix, write_volume

T = TypeVar("T")


#: Suffix of the cancel-request file the runner writes beside the job file
#: (:func:`cancel_file`). It is how a cancel reaches the backend on Windows (no
#: SIGTERM there) and through a launcher such as Slicer's ``PythonSlicer`` that
#: may not forward signals.
CANCEL_SUFFIX = ".cancel"


def cancel_file(job_file: str | os.PathLike) -> Path:
    """The cancel-request file of ``job_file`` (``job.json`` -> ``job.cancel``).

    Named after the job file, not fixed, so that job files sharing a folder
    (``tumorgen demo`` writes several) cannot cancel one another.
    """
    path = Path(job_file)
    return path.with_name(path.stem + CANCEL_SUFFIX)


class CancelRequest:
    """Whether the job was asked to stop: set by a signal handler, or by the runner's cancel-request file.

    Duck-types :class:`threading.Event` (``set``, ``is_set``). The file is looked
    at no more than every ``interval`` seconds, so that tasks may ask as often as
    they like: a ``stat`` per step of a fast loop would cost more than the step.
    """

    def __init__(self, file: str | os.PathLike | None = None, interval: float = 0.2) -> None:
        self._event = threading.Event()
        self._file = None if file is None else Path(file)
        self._interval = interval
        self._next_look = 0.0

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        if self._event.is_set():
            return True
        if self._file is not None:
            now = time.monotonic()
            if now >= self._next_look:
                self._next_look = now + self._interval
                if self._file.exists():
                    self._event.set()
        return self._event.is_set()


CancelSignal = Union[threading.Event, CancelRequest]


class TaskContext:
    """Handed to every task function.

    Outputs are written into a staging folder through :meth:`output_path` or
    :meth:`write_volume`; the protocol moves them into the output folder only
    when the task returns, so a cancelled or failed job leaves nothing behind.
    """

    def __init__(
        self,
        *,
        task: str,
        inputs: dict[str, Path],
        params: Any,
        device: str,
        output_dir: Path,
        staging_dir: Path,
        events: EventWriter,
        cancel_event: CancelSignal,
        output_format: str = "nii.gz",
    ) -> None:
        self.task = task
        #: The suffix every ``.nii.gz`` volume output is written with instead (the job's ``output_format``).
        self.volume_suffix = OUTPUT_FORMATS[output_format]
        self.inputs = inputs
        self.params = params
        self.requested_device = device
        self.output_dir = output_dir
        self.staging_dir = staging_dir
        self._events = events
        self._cancel = cancel_event
        self._outputs: dict[str, str] = {}
        self._device = None

    # -- device -----------------------------------------------------------
    @property
    def device(self):
        """The torch device to run on (resolved on first use, so torch loads only when needed)."""
        if self._device is None:
            from tumorgen.device import resolve_device

            self._device = resolve_device(self.requested_device)
        return self._device

    # -- progress and cancellation -----------------------------------------
    @property
    def cancelled(self) -> bool:
        """Whether the job was asked to stop (SIGTERM, SIGINT or the runner's cancel-request file)."""
        return self._cancel.is_set()

    def check_cancelled(self) -> None:
        """Raise CancelledError if the job was asked to stop. Call between steps."""
        if self._cancel.is_set():
            raise CancelledError("cancelled")

    def progress(self, stage: str, fraction: float, message: str = "") -> None:
        """Report the job's overall progress (0..1) and stop here if cancelled."""
        self.check_cancelled()
        self._events.emit(ProgressEvent(stage, float(min(max(fraction, 0.0), 1.0)), message))

    def log(self, message: str, level: str = "info") -> None:
        self._events.emit(LogEvent(message, level))

    def steps(self, items: Iterable[T], stage: str, *, start: float = 0.0, end: float = 1.0, total: int | None = None) -> Iterator[T]:
        """Iterate ``items``, reporting progress from ``start`` to ``end`` and checking for cancel."""
        if total is None:
            total = len(items)  # type: ignore[arg-type]
        total = max(int(total), 1)
        for n, item in enumerate(items):
            self.progress(stage, start + (end - start) * n / total, f"{stage} {n + 1}/{total}")
            yield item
        self.progress(stage, end, f"{stage} done")

    # -- inputs -----------------------------------------------------------
    def input_path(self, name: str) -> Path | None:
        return self.inputs.get(name)

    def read_volume(self, name: str) -> Volume:
        return read_volume(self._required_input(name), role=name)

    def read_mask(self, name: str, reference: Volume | None = None, reference_name: str = "image") -> Volume:
        return read_mask(self._required_input(name), reference=reference, reference_name=reference_name, role=name)

    def _required_input(self, name: str) -> Path:
        path = self.inputs.get(name)
        if path is None:
            raise InputError(f"task '{self.task}' needs the input '{name}'")
        return path

    # -- outputs ----------------------------------------------------------
    def output_path(self, name: str, filename: str) -> Path:
        """A staging path for output ``name``; the file moves to the output folder on success."""
        if os.sep in filename or (os.altsep and os.altsep in filename) or filename.startswith("."):
            raise ValueError(f"output file name must be a plain name, got {filename!r}")
        if name in self._outputs:
            raise ValueError(f"output {name!r} was written twice")
        self._outputs[name] = filename
        return self.staging_dir / filename

    def write_volume(self, name: str, volume: Volume, filename: str | None = None, dtype: Any = None) -> Path:
        filename = filename or f"{name}.nii.gz"
        volume_suffix(filename)
        if filename.endswith(".nii.gz"):
            filename = filename[: -len(".nii.gz")] + self.volume_suffix
        return write_volume(volume, self.output_path(name, filename), dtype=dtype)

    @property
    def staged_outputs(self) -> dict[str, str]:
        return dict(self._outputs)
