"""How a backend job ended: from its exit code, the events it sent, and whether it was asked to stop."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from tumorgen.backend.events import ErrorEvent, ResultEvent
from tumorgen.backend.protocol import EXIT_BAD_INPUT, EXIT_DONE


@dataclass
class JobOutcome:
    """How a job ended.

    ``status`` is ``done``, ``bad_input``, ``failed`` or ``cancelled``.
    """

    status: str
    returncode: int
    outputs: dict[str, Path] = field(default_factory=dict)
    error: ErrorEvent | None = None

    @property
    def ok(self) -> bool:
        return self.status == "done"

    @property
    def message(self) -> str:
        return self.error.message if self.error else ""


def decide_outcome(returncode: int, result: ResultEvent | None, error: ErrorEvent | None, *,
                   cancel_requested: bool, killed: bool, stderr_tail: Sequence[str]) -> JobOutcome:
    """The outcome of a job that exited with ``returncode`` after sending ``result`` and/or ``error``.

    Args:
        cancel_requested: whether the job was asked to stop.
        killed: whether its process tree was killed (the grace period ran out).
        stderr_tail: the last lines of its stderr, for a job that died without saying why.
    """
    outputs = {k: Path(v) for k, v in (result.outputs if result else {}).items()}
    if returncode == EXIT_DONE and result is not None:
        return JobOutcome("done", returncode, outputs, error)
    if (error is not None and error.kind == "cancelled") or (
            cancel_requested and (killed or returncode != EXIT_BAD_INPUT)):
        # Asked to stop, a job may also end by an error its stopping caused (a killed worker process):
        # that is a cancel too. Only bad input, found before the request took effect, says more.
        if error is None or error.kind != "cancelled":
            error = ErrorEvent("cancelled", "the job was cancelled; no output was written")
        return JobOutcome("cancelled", returncode, outputs, error)
    if returncode == EXIT_BAD_INPUT:
        return JobOutcome("bad_input", returncode, outputs, error)
    if error is None:
        tail = " | ".join(line for line in list(stderr_tail)[-5:] if line.strip())
        error = ErrorEvent("internal", f"the backend exited with code {returncode}" + (f": {tail}" if tail else ""))
    return JobOutcome("failed", returncode, outputs, error)
