"""Run control: one backend job at a time, polled from the front end's timer, cancelled without waiting.

:class:`RunControl` starts a :class:`~tumorgen_slicer.runs.RunSpec` through an
injected :class:`JobStarter` (tests hand in a fake), forwards the job's progress
and log lines into the presenter's state, and when the job ends loads its
outputs as nodes and calls the action's ``on_done``. Before the first job a
:class:`BackendGate` may have to make sure the backend's Python has what the
engine needs; that work is polled the same way. Nothing here blocks: Cancel
asks the job to stop and a later poll sees it gone.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Optional, Protocol

from tumorgen.backend.events import ErrorEvent, LogEvent, ProgressEvent
from tumorgen.errors import InputError, TumorGenError
from tumorgen_slicer.runs import Run, RunSpec
from tumorgen_slicer.state import PresenterState

OnDone = Callable[[Run], None]


class JobStarter(Protocol):
    """Writes a run's inputs and job file under ``work_dir`` and starts the backend (see :func:`~tumorgen_slicer.runs.start_run`)."""

    def __call__(self, spec: RunSpec, work_dir: Path, device: str) -> Run: ...


class BackendGate(Protocol):
    """Makes sure the backend can run before the first job (check its Python, install what it lacks)."""

    @property
    def ready(self) -> bool: ...

    def begin(self) -> None:
        """Start the checks (they run in other processes)."""

    def poll(self) -> Optional[str]:
        """None while working, "" once ready, else a one-line reason why the backend cannot run."""

    def cancel(self) -> None: ...


class RunControl:
    """The running job (at most one) of a presenter."""

    def __init__(self, ctx, state: PresenterState, notify: Callable[[str], None], starter: JobStarter, work_dir: Path,
                 gate: BackendGate | None = None) -> None:
        self.ctx = ctx
        self.state = state
        self.notify = notify
        self.starter = starter
        self.work_dir = Path(work_dir)
        self.gate = gate
        self.run: Run | None = None
        #: A job waiting for the backend gate (spec None: only the checks were asked for).
        self._pending: tuple[RunSpec | None, OnDone | None, str] | None = None
        self._on_done: OnDone | None = None

    @property
    def busy(self) -> bool:
        return self.run is not None or self._pending is not None

    def check_idle(self) -> None:
        if self.run is not None:
            raise InputError(f"{self.run.name} is still running; wait for it or cancel it")
        if self._pending is not None:
            raise InputError("the backend's Python is being checked; wait for it or cancel it")

    def start(self, spec: RunSpec | None, on_done: OnDone | None, device: str) -> None:
        """Start ``spec`` (after the backend gate, if it is not ready yet; ``spec`` None: only the gate's checks).

        Raises InputError when busy or the job cannot start.
        """
        self.check_idle()
        self.state.error = ""
        if self.gate is not None and (spec is None or not self.gate.ready):
            self._pending = (spec, on_done, device)
            self._set_running(spec.name if spec is not None else "Backend check", "checking the backend's Python")
            self.gate.begin()
            return
        if spec is not None:
            self._launch(spec, on_done, device)

    def _launch(self, spec: RunSpec, on_done: OnDone | None, device: str) -> None:
        try:
            self.run = self.starter(spec, self.work_dir, device)
        except (TumorGenError, ValueError, OSError) as exc:
            raise InputError(f"{spec.name}: {exc}") from None
        self._on_done = on_done
        self._set_running(spec.name, "starting")
        self.state.log.append(f"{spec.name}: started in {self.run.folder}")

    def _set_running(self, name: str, message: str) -> None:
        self.state.running, self.state.progress, self.state.message = name, 0.0, message
        self.notify("state")

    def poll(self) -> bool:
        """Forward events; finish a job that ended. Returns whether work is still going on."""
        if self._pending is not None:
            return self._poll_gate()
        run = self.run
        if run is None:
            return False
        for event in run.poll():
            if isinstance(event, ProgressEvent):
                self.state.progress, self.state.message = float(event.fraction), event.message or event.stage
                self.notify("progress")
            elif isinstance(event, LogEvent):
                if event.level != "debug":
                    self.state.log.append(event.message)
                    self.notify("log")
            elif isinstance(event, ErrorEvent):
                self.state.log.append(f"{event.kind}: {event.message}")
                self.notify("log")
        if not run.done:
            return True
        self._finish(run)
        return False

    def _poll_gate(self) -> bool:
        assert self._pending is not None and self.gate is not None
        verdict = self.gate.poll()
        if verdict is None:
            return True
        spec, on_done, device = self._pending
        self._pending = None
        self.state.running = ""
        task = spec.task if spec is not None else "check"
        if verdict:
            self._end(task, "failed", error=verdict)
            return False
        if spec is None:
            self._end(task, "done", message="the backend's Python has what TumorGen needs", progress=1.0)
            return False
        try:
            self._launch(spec, on_done, device)
        except InputError as exc:
            self._end(spec.task, "failed", error=str(exc))
            return False
        return True

    def _finish(self, run: Run) -> None:
        self.run = None
        on_done, self._on_done = self._on_done, None
        outcome = run.outcome
        if outcome.ok:
            try:
                run.load_outputs(self.ctx)
                if on_done is not None:
                    on_done(run)
            except (TumorGenError, ValueError, OSError) as exc:
                self._end(run.spec.task, outcome.status, error=f"{run.name}: loading the results failed: {exc}")
                return
            self._end(run.spec.task, outcome.status, message=f"{run.name} done in {run.seconds:.1f} s", progress=1.0)
        elif outcome.status == "cancelled":
            self._end(run.spec.task, outcome.status, message=f"{run.name} cancelled")
        else:
            self._end(run.spec.task, outcome.status, error=f"{run.name} failed: {outcome.message}")

    def _end(self, task: str, status: str, *, message: str = "", error: str = "", progress: float = 0.0) -> None:
        state = self.state
        state.running = ""
        state.last_task, state.last_status = task, status
        state.progress, state.message, state.error = progress, message or state.message, error
        state.log.append(f"error: {error}" if error else message)
        if error:
            self.notify("error")
        self.notify("state")
        self.notify("finished")

    def cancel(self) -> bool:
        """Ask the running job (or the backend checks) to stop; returns at once. A later poll ends the run."""
        if self._pending is not None:
            spec = self._pending[0]
            self._pending = None
            if self.gate is not None:
                self.gate.cancel()
            self._end(spec.task if spec else "check", "cancelled", message=f"{spec.name if spec else 'Backend check'} cancelled")
            return True
        if self.run is None:
            return False
        self.run.request_cancel()
        self.state.message = f"cancelling {self.run.name}"
        self.notify("state")
        return True

    def wait(self, timeout: float = 600.0, interval: float = 0.1, pump: Callable[[], Any] | None = None) -> str:
        """Poll until the work ends (for scripts, tests and the self-test); returns the last run's status."""
        deadline = time.monotonic() + timeout
        cancelled_at = None
        while self.poll():
            if cancelled_at is None and time.monotonic() > deadline:
                self.cancel()
                cancelled_at = time.monotonic()
            if pump is not None:
                pump()
            time.sleep(interval)
        if cancelled_at is not None:
            self.state.error = f"gave up after {timeout:g} s"
            self.notify("error")
        return self.state.last_status
