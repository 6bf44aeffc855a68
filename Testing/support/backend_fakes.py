"""Fakes for the scene logic's collaborators: the backend environment, the job starter and its runs, a process.

Each one stands in for a real class of ours, and each runs the same contract tests as that class
(Testing/scene/test_contracts.py): a fake that answers differently from the real thing fails the suite.
The tests drive them by hand: a fake environment's check or install ends when the test calls
:meth:`FakeEnvironment.finish`, a fake run when the test sets its outcome (or calls :meth:`FakeRun.finish`).
"""

from __future__ import annotations

from pathlib import Path

from tumorgen.backend.events import LogEvent, ProgressEvent
from tumorgen.backend.runner import JobOutcome
from tumorgen_slicer.backend_install import plan_install
from tumorgen_slicer.environment import EnvironmentReport


class FakeEnvironment:
    """The backend's Python as BackendSetup sees it (:class:`~tumorgen_slicer.environment.BackendEnvironment`):
    checks and installs that report when the test says so, for an interpreter that lacks ``missing``."""

    def __init__(self, missing=("torch", "monai"), python: str = "/opt/python", gpus: tuple = ()) -> None:
        self.python, self.executable = "", python
        self.missing = tuple(missing)
        self.gpus = tuple(gpus)
        self.started: list[str] = []
        self._running: tuple[str, tuple[str, ...]] | None = None
        self._report = None

    @property
    def busy(self) -> bool:
        return self._running is not None

    @property
    def activity(self) -> str:
        return f"installing {', '.join(self._running[1])}" if self._running and self._running[0] == "install" else ""

    def set_python(self, python) -> None:
        if self._running is not None:
            self.cancel()
        self.python = str(python or "")

    def start_check(self, modules=None) -> None:
        self._start("check", tuple(modules or ()))

    def install_plan(self, modules):
        return plan_install(self.executable, modules)

    def start_install(self, modules) -> None:
        self._start("install", tuple(modules))

    def _start(self, kind: str, modules: tuple[str, ...]) -> None:
        if self._running is not None:
            raise AssertionError(f"a {self._running[0]} is already running")
        self._report = None
        self.started.append(" ".join((kind, *modules)) if kind == "install" else kind)
        self._running = (kind, modules)

    def finish(self) -> None:
        """End the running check or install, as the real one would report it."""
        assert self._running is not None, "nothing is running"
        (kind, modules), self._running = self._running, None
        if kind == "install":
            self.missing = tuple(m for m in self.missing if m not in modules)
            self._report = EnvironmentReport("install", True, self.executable, message=f"installed {' '.join(modules)}")
            return
        missing = tuple(m for m in modules if m in self.missing)
        if missing:
            self._report = EnvironmentReport("check", False, self.executable, "3.12.8", missing,
                                             f"backend Python {self.executable} (3.12.8) lacks {', '.join(missing)}", self.gpus)
        else:
            self._report = EnvironmentReport("check", True, self.executable, "3.12.8",
                                             message=f"backend Python {self.executable} (3.12.8) is ready", gpus=self.gpus)

    def poll(self):
        report, self._report = self._report, None
        return report

    def cancel(self) -> None:
        self.started.append("cancel")
        self._running, self._report = None, None


class FakeRun:
    """A run (:class:`~tumorgen_slicer.runs.Run`) whose events and ending the test scripts."""

    def __init__(self, spec, folder: Path):
        self.spec, self.folder, self.nodes, self.segmentations = spec, folder, {}, {}
        self.outcome = None
        self.events = [ProgressEvent("sample", 0.5, "halfway"), LogEvent("crop 16 voxels")]
        self.cancel_requested = self.killed = False
        self.seconds = 1.5
        self.summary = ""

    name = property(lambda self: self.spec.name)
    done = property(lambda self: self.outcome is not None)

    def finish(self, status: str = "done") -> None:
        self.outcome = JobOutcome(status, 0 if status == "done" else -15)

    def poll(self):
        events, self.events = self.events, []
        return events

    def request_cancel(self):
        self.cancel_requested = True
        if self.outcome is None:
            self.events.append(LogEvent("cancel requested"))

    def kill(self):
        self.killed = True

    def loading(self, ctx):
        if self.outcome is None or not self.outcome.ok:
            from tumorgen.errors import InputError

            raise InputError(f"run {self.name!r} has no outputs to load")
        yield from ()

    def load_outputs(self, ctx):
        for _ in self.loading(ctx):
            pass
        return self.nodes


class FakeStarter:
    """The presenter's job starter (:func:`~tumorgen_slicer.runs.start_run` bound to a runner): fake runs, recorded."""

    def __init__(self):
        self.runs: list[FakeRun] = []

    def __call__(self, spec, work_dir, device):
        folder = Path(work_dir) / f"run-{len(self.runs)}"
        folder.mkdir(parents=True, exist_ok=True)
        run = FakeRun(spec, folder)
        run.device = device
        self.runs.append(run)
        return run


class FinishedProcess:
    """A process (:class:`~tumorgen.backend.process.FileProcess`) that has already exited with ``returncode``."""

    def __init__(self, returncode: int = 0, stdout: list[str] | None = None, stderr: list[str] | None = None) -> None:
        self.returncode = returncode
        self._stdout, self._stderr = list(stdout or []), list(stderr or [])
        self.killed = False

    def read(self):
        out, err, self._stdout, self._stderr = self._stdout, self._stderr, [], []
        return out, err, True

    def kill_tree(self) -> None:
        self.killed = True


class RecordingStarter:
    """A process starter (:func:`~tumorgen.backend.process.start_process`) that records each command and hands back a
    :class:`FinishedProcess` with ``returncode`` (the files in ``log_dir`` at start are recorded too)."""

    def __init__(self, returncode: int = 0) -> None:
        self.calls: list[dict] = []
        self.returncode = returncode

    def __call__(self, args, *, log_dir, env):
        files = {p.name: p.read_text() for p in Path(log_dir).iterdir() if p.is_file()}
        self.calls.append({"args": list(args), "env": dict(env), "files": files})
        return FinishedProcess(self.returncode)
