"""Run control: one backend job at a time, polled from the front end's timer, cancelled without waiting.

:class:`RunControl` starts a :class:`~tumorgen_slicer.runs.RunSpec` through an
injected :class:`JobStarter` (tests hand in a fake that runs the same contract
tests as the real one), forwards the job's progress and log lines into the
presenter's state, and when the job ends loads its outputs as nodes, one per
poll, and calls the action's ``on_done``. Before a task's first job a
:class:`BackendGate` may have to make sure the backend's Python has what the
task needs; that work is polled the same way, and a question it has for the
user is handed to the front end (``"question"``), never asked inside a poll.

Nothing here blocks and nothing runs inside itself: a poll that a dialog's
event loop would re-enter returns at once. Cancel asks the job to stop and a
later poll sees it gone. Each finished run's time is kept
(:class:`~tumorgen_slicer.run_history.RunHistory`) to say how long the next
one of its kind should take, and old run folders are removed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Iterator

from tumorgen.backend.events import ErrorEvent, LogEvent, ProgressEvent
from tumorgen.errors import InputError, TumorGenError
from tumorgen_slicer.run_history import RunHistory, describe_expected, prune_run_folders
from tumorgen_slicer.run_protocols import BackendGate, JobStarter
from tumorgen_slicer.runs import Run, RunSpec
from tumorgen_slicer.state import PresenterState

OnDone = Callable[[Run], None]


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
        #: How many run folders to keep (None: all); set from the panel's setting.
        self.keep_runs: int | None = None
        self.run: Run | None = None
        #: A job waiting for the backend gate (spec None: only the gate's checks were asked for).
        self._pending: tuple[RunSpec | None, OnDone | None, str] | None = None
        self._on_done: OnDone | None = None
        #: The finished run whose outputs are being loaded, one per poll.
        self._loading: Iterator[Any] | None = None
        self._polling = False
        self._asked = ""
        self._device = "auto"

    @property
    def history(self) -> RunHistory:
        """The times of the last runs, kept in the work folder (wherever that is now)."""
        return RunHistory.in_folder(self.work_dir)

    @property
    def busy(self) -> bool:
        return self.run is not None or self._pending is not None

    def check_idle(self) -> None:
        if self.run is not None:
            raise InputError(f"{self.run.name} is still running; wait for it or cancel it")
        if self._pending is not None:
            raise InputError("the backend's Python is being prepared; wait for it or cancel it")

    def start(self, spec: RunSpec | None, on_done: OnDone | None, device: str) -> None:
        """Start ``spec`` (after the backend gate, if it is not ready for its task; ``spec`` None: only the gate's checks).

        Raises InputError when busy or the job cannot start.
        """
        self.check_idle()
        self.state.error = ""
        task = spec.task if spec is not None else ""
        if self.gate is not None and (spec is None or not self.gate.ready_for(task)):
            self._pending = (spec, on_done, device)
            self._asked = ""
            self._set_running(spec.name if spec is not None else "Backend check", "checking the backend's Python")
            self.gate.begin(task)
            return
        if spec is not None:
            self._launch(spec, on_done, device)

    def answer(self, yes: bool) -> None:
        """The user's reply to the gate's question (``state.question``); the next polls go on from it."""
        if self.gate is None or not self.gate.question:
            raise InputError("no question about the backend is waiting for an answer")
        self.gate.answer(yes)
        self.state.question = ""
        self.state.message = "installing what the backend needs" if yes else "not installing"
        self.notify("state")

    def _launch(self, spec: RunSpec, on_done: OnDone | None, device: str) -> None:
        try:
            self.run = self.starter(spec, self.work_dir, device)
        except (TumorGenError, ValueError, OSError) as exc:
            raise InputError(f"{spec.name}: {exc}") from None
        self._on_done, self._device = on_done, device
        expected = describe_expected(self.history.expected_seconds(spec.task, spec.voxels, device))
        self._set_running(spec.name, f"starting; expected {expected} (the last run of its kind here)" if expected else "starting")
        self.state.expected = expected
        self.state.log.append(f"{spec.name}: started in {self.run.folder}" + (f", expected {expected}" if expected else ""))

    def _set_running(self, name: str, message: str) -> None:
        self.state.running, self.state.progress, self.state.message = name, 0.0, message
        self.notify("state")

    def poll(self) -> bool:
        """Forward events; finish a job that ended. Returns whether work is still going on.

        Re-entered (a dialog or ``processEvents`` inside a listener lets the timer fire again) it returns at once.
        """
        if self._polling:
            return self.busy
        self._polling = True
        try:
            if self._pending is not None:
                return self._poll_gate()
            if self._loading is not None:
                return self._load_next()
            return self._poll_run()
        finally:
            self._polling = False

    def _poll_run(self) -> bool:
        run = self.run
        if run is None:
            return False
        for event in run.poll():
            if isinstance(event, ProgressEvent):
                self.state.progress, self.state.message = float(event.fraction), event.message or event.stage
                self.notify("progress")
            elif isinstance(event, LogEvent):
                if event.level != "debug":
                    self.state.log.append(event.message, event.level)
                    self.notify("log")
            elif isinstance(event, ErrorEvent):
                self.state.log.append(f"{event.kind}: {event.message}", "error")
                self.notify("log")
        if not run.done:
            return True
        if not run.outcome.ok:
            self._finish(run)
            return False
        self.state.message = f"loading the results of {run.name}"
        self.notify("progress")
        self._loading = run.loading(self.ctx)
        return self._load_next()

    def _load_next(self) -> bool:
        """Load one output of the finished run (a poll each, so no poll holds the GUI long); finish after the last."""
        run = self.run
        assert run is not None and self._loading is not None
        try:
            next(self._loading)
            return True
        except StopIteration:
            self._loading = None
        except (TumorGenError, ValueError, OSError) as exc:
            self._loading = None
            self.run, self._on_done = None, None
            self._loading_failed(run, exc)
            return False
        self._finish(run)
        return False

    def _poll_gate(self) -> bool:
        assert self._pending is not None and self.gate is not None
        verdict = self.gate.poll()
        if verdict is None:
            question, activity = self.gate.question, self.gate.activity
            if question and question != self._asked:
                self._asked = self.state.question = question
                self.state.message = "waiting for your answer"
                self.notify("question")
            elif activity and activity != self.state.message:
                self.state.message = activity
                self.state.log.append(activity)
                self.notify("progress")
            return True
        spec, on_done, device = self._pending
        self._pending = None
        self.state.running = self.state.question = ""
        self.state.gpu = self.gate.gpu_summary or self.state.gpu
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
                if on_done is not None:
                    on_done(run)
            except (TumorGenError, ValueError, OSError) as exc:
                self._loading_failed(run, exc)
                return
            self.history.record(run.spec.task, run.seconds, run.spec.voxels, self._device)
            summary = run.summary
            self._end(run.spec.task, outcome.status, progress=1.0,
                      message=f"{run.name} done in {run.seconds:.1f} s" + (f": {summary}" if summary else ""))
        elif outcome.status == "cancelled":
            self._end(run.spec.task, outcome.status, message=f"{run.name} cancelled")
        else:
            self._end(run.spec.task, outcome.status, error=f"{run.name} failed: {outcome.message}")
        self.prune()

    def _loading_failed(self, run: Run, exc: Exception) -> None:
        self._end(run.spec.task, "failed", error=f"{run.name}: loading the results failed: {exc}")

    def prune(self, keep: int | None = None) -> list[Path]:
        """Remove all but the newest ``keep`` run folders (default: :attr:`keep_runs`), never the running job's."""
        keep = self.keep_runs if keep is None else keep
        if keep is None or not self.work_dir.is_dir():
            return []
        protect = [self.run.folder] if self.run is not None else []
        removed = prune_run_folders(self.work_dir, keep, protect)
        if removed:
            self.state.log.append(f"removed {len(removed)} old run folder{'s' if len(removed) > 1 else ''} from {self.work_dir}")
        return removed

    def _end(self, task: str, status: str, *, message: str = "", error: str = "", progress: float = 0.0) -> None:
        state = self.state
        state.running = state.expected = ""
        state.last_task, state.last_status = task, status
        state.progress, state.message, state.error = progress, message or state.message, error
        state.log.append(error if error else message, "error" if error else "info")
        if error:
            self.notify("error")
        self.notify("state")
        self.notify("finished")

    def cancel(self) -> bool:
        """Ask the running job (or the backend checks) to stop; returns at once. A later poll ends the run."""
        if self._pending is not None:
            spec = self._pending[0]
            self._pending = None
            self.state.question = ""
            if self.gate is not None:
                self.gate.cancel()
            self._end(spec.task if spec else "check", "cancelled", message=f"{spec.name if spec else 'Backend check'} cancelled")
            return True
        if self.run is None or self._loading is not None:
            return False
        self.run.request_cancel()
        self.state.message = f"cancelling {self.run.name}"
        self.notify("state")
        return True

    def shutdown(self) -> None:
        """The front end goes away: kill the running job or install now and return at once (nothing waits)."""
        if self._pending is not None and self.gate is not None:
            self.gate.cancel()
        if self.run is not None:
            self.run.kill()
        self._pending, self.run, self._loading, self._on_done = None, None, None, None
        self.state.running = self.state.question = ""

    def wait(self, timeout: float = 600.0, interval: float = 0.1, pump: Callable[[], Any] | None = None,
             answer: bool = False) -> str:
        """Poll until the work ends (for scripts, tests and the self-test); returns the last run's status.

        A question of the backend gate gets ``answer`` (default no: a script has nobody to ask).
        """
        deadline = time.monotonic() + timeout
        cancelled_at = None
        while self.poll():
            if self.state.question:
                self.answer(answer)
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

