"""The backend's environment as the presenter sees it: which Python, whether it has what a task needs, and jobs on it.

:class:`BackendSetup` is the presenter's run gate (see
:class:`~tumorgen_slicer.run_control.BackendGate`). With ``ask`` on (the
desktop module), before the first job of a task, and after the user picks
another Python, it checks that interpreter in another process for what the
task imports. When something is missing it puts a :attr:`~BackendSetup.question`
to the user and waits for :meth:`~BackendSetup.answer`: the front end asks
outside any poll (a dialog inside a timer's poll would let the poll run inside
itself). On yes it installs, again in other processes, and checks once more.
Every step is polled, so the GUI never waits on pip. With ``ask`` off (the web
app, scripts, the tests: the engine's own environment) nothing is checked or
installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from tumorgen.errors import InputError
from tumorgen_slicer.backend_install import distribution
from tumorgen_slicer.environment import BackendEnvironment, EnvironmentReport
from tumorgen_slicer.runs import Run, RunSpec, start_run

#: The task a check without a job stands for: every package the engine's tasks need.
ALL_TASKS = ""


def task_requirements(task: str) -> tuple[str, ...]:
    """The import names a backend task needs (:attr:`~tumorgen.backend.registry.TaskSpec.requirements`); all tasks' for "".

    Read from the tasks' declarations without importing them (this runs on the GUI thread); a task that is not built
    in (a test task, a plugin) needs what the backend itself needs.
    """
    from tumorgen.backend.registry import BACKEND_REQUIRES, declared_requirements

    declared = declared_requirements()
    if task == ALL_TASKS:
        return tuple(dict.fromkeys(m for requires in declared.values() for m in requires))
    return declared.get(task, BACKEND_REQUIRES)


class BackendSetup:
    """Checks and prepares the backend's Python for each task, and starts jobs on it.

    Args:
        in_slicer: whether this runs in 3D Slicer's GUI process (see :class:`BackendEnvironment`).
        log: where one-line messages go (level ``info`` or ``warning``).
        environment: the backend's interpreter (tests hand in another).
        ask: whether to check the backend's Python before a task's first job and ask before installing (default: inside
            Slicer, where the backend runs in TumorGen's own environment, which a first run must make).
    """

    def __init__(self, *, in_slicer: bool = False, log: Callable[..., None] = print,
                 environment: BackendEnvironment | None = None, ask: bool | None = None) -> None:
        self.environment = environment or BackendEnvironment(in_slicer)
        self.log = log
        self.ask = in_slicer if ask is None else ask
        #: Tasks whose packages the current interpreter was found to have ("" stands for all of them).
        self._ready: set[str] = set()
        self._task = ALL_TASKS
        self._installed = False
        self._question = ""
        self._missing: tuple[str, ...] = ()
        self._plan_text = ""
        self._verdict: Optional[str] = None
        #: The GPUs the last check saw, in words ("" before the first check).
        self.gpu_summary = ""

    @property
    def python(self) -> str:
        return self.environment.python

    def set_python(self, python: str) -> None:
        """Choose the backend's interpreter ("" for the default); it is checked before the next job."""
        before = self.environment.python
        self.environment.set_python(python)
        if self.environment.python != before:
            self.reset()
            self.log(f"backend Python: {self.environment.executable}")

    def reset(self) -> None:
        """Check again before the next job of every task."""
        self._ready.clear()
        self._installed = False

    # -- the gate -----------------------------------------------------------------------------------------
    def ready_for(self, task: str) -> bool:
        """Whether a job of ``task`` may start without a check."""
        return not self.ask or task in self._ready or ALL_TASKS in self._ready

    @property
    def question(self) -> str:
        """The question waiting for :meth:`answer` ("" when none does)."""
        return self._question

    @property
    def activity(self) -> str:
        """What the install does now, "" when none runs."""
        return self.environment.activity

    def begin(self, task: str = ALL_TASKS) -> None:
        """Start checking the backend's Python for what ``task`` needs (another process)."""
        self._task, self._installed, self._question, self._verdict = task, False, "", None
        self.environment.start_check(task_requirements(task))

    def poll(self) -> Optional[str]:
        """None while working or waiting for an answer, "" once ready, else one line on why the backend cannot run.

        Never asks and never installs anything itself: a question waits in :attr:`question`.
        """
        if self._verdict is not None:
            verdict, self._verdict = self._verdict, None
            return verdict
        if self._question:
            return None
        report = self.environment.poll()
        if report is None:
            return None if self.environment.busy else "the backend check ended without a report"
        return self._next(report)

    def answer(self, yes: bool) -> None:
        """The user's answer to :attr:`question`: yes installs (in other processes), no ends the wait with a reason."""
        if not self._question:
            raise InputError("no question about the backend is waiting for an answer")
        self._question = ""
        names = ", ".join(map(distribution, self._missing))
        if not yes:
            self._verdict = f"nothing installed: the {self._task or 'backend'} task needs {names} in the backend's Python"
            return
        self.log(f"installing {names} for the backend: {self._plan_text}")
        self.environment.start_install(self._missing)

    def _next(self, report: EnvironmentReport) -> Optional[str]:
        if report.kind == "check":
            from tumorgen.gpu_info import summary

            self.gpu_summary = summary(list(report.gpus))
        if report.kind == "install":
            if not report.ok:
                return report.message
            self.log(report.message)
            self._installed = True
            self.environment.start_check(task_requirements(self._task))
            return None
        if report.ok:
            self._ready.add(self._task)
            self.log(report.message)
            return ""
        if not report.missing:
            return report.message
        names = ", ".join(map(distribution, report.missing))
        if self._installed:
            return f"the backend Python {report.python} still lacks {names} after the install"
        try:
            plan = self.environment.install_plan(report.missing)
        except InputError as exc:
            return f"{report.message}; {exc}"
        self._missing, self._plan_text = report.missing, plan.describe()
        what = f"TumorGen's {self._task} task needs" if self._task else "TumorGen's tasks need"
        self._question = (f"{what} {names}, which the backend's Python lacks. {self._plan_text} Install now? "
                          "TumorGen stays usable while it installs, and Cancel stops it.")
        return None

    def cancel(self) -> None:
        self._question, self._verdict = "", None
        self.environment.cancel()

    # -- jobs ---------------------------------------------------------------------------------------------
    def start_run(self, spec: RunSpec, work_dir: Path, device: str) -> Run:
        """Start a job on this Python with its complete environment (the presenter's job starter)."""
        return start_run(spec, work_dir, self.environment.runner(), device)
