"""Which Python runs the backend, its environment, and (without blocking) whether it has what a task needs.

The backend runs as ``<python> -m tumorgen.backend job.json`` with the folder
that holds the ``tumorgen`` package on ``PYTHONPATH``. The Python is:

- inside 3D Slicer, by default, **TumorGen's own environment**
  (:mod:`~tumorgen_slicer.managed_env`), a virtual environment made on first
  use from Slicer's Python, so Slicer's own packages are never touched;
- or an interpreter the user chooses (:mod:`~tumorgen_slicer.interpreter`);
- outside Slicer (scripts, the web app, the tests), this interpreter.

:class:`BackendEnvironment` is what a front end holds: choosing an interpreter
does only cheap checks (no process). The check for missing packages and their
install (:mod:`~tumorgen_slicer.backend_install`) run as processes that are
polled from a timer, like a job (see :mod:`tumorgen.backend.process`), so the
GUI never waits on a child process. No Qt here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

from tumorgen.backend.process import FileProcess, start_process
from tumorgen.backend.runner import GRACE_PERIOD_S, JobRunner
from tumorgen.errors import InputError
from tumorgen_slicer.backend_install import InstallPlan, InstallStep, plan_install
from tumorgen_slicer.environment_report import EnvironmentReport, check_report, install_report
from tumorgen_slicer.interpreter import REQUIRED_MODULES, check_executable, default_python, engine_root, probe_command
from tumorgen_slicer.managed_env import ManagedEnvironment, default_folder
from tumorgen_slicer.polled_steps import PolledSteps

# REQUIRED_MODULES and engine_root are part of this module's interface (the presenter side imports them from here).
__all__ = ["REQUIRED_MODULES", "BackendEnvironment", "EnvironmentReport", "engine_root"]

#: Variables of Slicer's launcher that would point another interpreter at Slicer's Python.
_SLICER_PYTHON_VARIABLES = ("PYTHONHOME", "PYTHONPATH", "PYTHONNOUSERSITE")


Starter = Callable[..., FileProcess]


class BackendEnvironment:
    """The backend's interpreter: which one, its environment, and (without blocking) whether it is ready.

    Args:
        in_slicer: whether this runs inside 3D Slicer's GUI process (then ``slicer`` is importable, and the backend
            runs in TumorGen's own environment unless another interpreter is chosen).
        start: starts a process with its output in files (:func:`~tumorgen.backend.process.start_process`).
        work_dir: where the check and install processes write their output (default: a new temporary folder each).
        managed: TumorGen's own environment (default inside Slicer: :func:`~tumorgen_slicer.managed_env.default_folder`
            made from Slicer's Python; outside Slicer: none, this interpreter runs the backend).
        cuda_driver: whether an NVIDIA driver is present, which picks PyTorch's build (default: detected).
    """

    def __init__(self, in_slicer: bool = False, *, start: Starter = start_process, work_dir: str | os.PathLike | None = None,
                 managed: ManagedEnvironment | None = None, cuda_driver: bool | None = None) -> None:
        self.in_slicer = in_slicer
        self._start = start
        self._work_dir = None if work_dir is None else Path(work_dir)
        if managed is None and in_slicer:
            managed = ManagedEnvironment(default_folder(), default_python())
        self.managed = managed
        self._cuda_driver = cuda_driver
        self._python = ""
        self._task: PolledSteps | None = None
        self._report: EnvironmentReport | None = None

    # -- which interpreter -----------------------------------------------------------------------------
    @property
    def python(self) -> str:
        """The chosen interpreter; "" means the default (TumorGen's own environment, or outside Slicer this one)."""
        return self._python

    @property
    def uses_managed(self) -> bool:
        """Whether the backend runs in TumorGen's own environment."""
        return not self._python and self.managed is not None

    @property
    def executable(self) -> str:
        """The interpreter that runs the backend."""
        if self._python:
            return self._python
        return str(self.managed.python) if self.managed is not None else default_python()

    @property
    def uses_slicer_python(self) -> bool:
        """Whether the backend would run on Slicer's own Python itself (whose packages TumorGen never changes)."""
        if not self.in_slicer or self.uses_managed:
            return False
        try:  # PythonSlicer chosen by its path is still Slicer's own
            return os.path.samefile(self.executable, default_python())
        except OSError:
            return False

    def set_python(self, python: str | os.PathLike | None) -> None:
        """Choose the backend's interpreter ("" or None: the default). Only cheap checks: no process starts.

        A check of the previous interpreter still running is dropped.

        Raises:
            InputError: if ``python`` is not an executable file, or an install is running.
        """
        value = "" if python is None else str(python).strip()
        if value:
            value = str(check_executable(value))
        if value == self._python:
            return
        if self._task is not None:
            if self._task.kind == "install":
                raise InputError("packages are being installed into the backend Python; wait for that or cancel it")
            self.cancel()
        self._python = value

    # -- its environment ---------------------------------------------------------------------------------
    def child_env(self) -> dict[str, str]:
        """The complete environment of a backend (or check, or install) process.

        On Slicer's own Python: this process's environment, as Slicer runs pip. On any other interpreter inside
        Slicer (TumorGen's environment included): the environment Slicer started with, without Slicer's
        PYTHONHOME, PYTHONPATH and PYTHONNOUSERSITE, which would make it load Slicer's standard library. Either
        way the engine's folder is on PYTHONPATH.
        """
        root = str(engine_root())
        if self.in_slicer and not self.uses_slicer_python:
            import slicer

            env = {str(k): str(v) for k, v in slicer.util.startupEnvironment().items()}
            for name in _SLICER_PYTHON_VARIABLES:
                env.pop(name, None)
            # TumorGen's own settings made in this session (a cache folder, ...) still apply.
            env.update({k: v for k, v in os.environ.items() if k.startswith("TUMORGEN_")})
            env["PYTHONPATH"] = root
            return env
        env = dict(os.environ)
        existing = env.get("PYTHONPATH", "")
        env["PYTHONPATH"] = root + (os.pathsep + existing if existing else "")
        return env

    def runner(self, grace_period: float = GRACE_PERIOD_S) -> JobRunner:
        """A job runner for this interpreter with its complete environment."""
        return JobRunner(python=self.executable, env=self.child_env(), replace_env=True, grace_period=grace_period)

    @property
    def cuda_driver(self) -> bool:
        """Whether an NVIDIA driver is present (detected once: a file test and a PATH lookup, no process)."""
        if self._cuda_driver is None:
            from tumorgen.gpu_info import has_nvidia_driver

            self._cuda_driver = has_nvidia_driver()
        return self._cuda_driver

    # -- checking and installing, without blocking ----------------------------------------------------------
    @property
    def busy(self) -> bool:
        """Whether a check or install is running."""
        return self._task is not None

    @property
    def activity(self) -> str:
        """What the running install does now (its step and pip's latest line), "" when none runs."""
        task = self._task
        return task.activity if task is not None and task.kind == "install" else ""

    def start_check(self, modules: Sequence[str] | None = None) -> None:
        """Start finding the interpreter's version and which of ``modules`` (default: all the engine's) it lacks.

        :meth:`poll` gives the report. TumorGen's environment before it is made: the Python it would be made from
        is asked instead (its version, the GPUs), and every module is missing.
        """
        self._ensure_idle()
        wanted = tuple(sorted(REQUIRED_MODULES)) if modules is None else tuple(dict.fromkeys(modules))
        python = self.executable
        if self.uses_managed and not self.managed.exists:
            python = self.managed.base
        self._begin("check", [InstallStep(probe_command(python, wanted), "checking the backend's Python")], modules=wanted)

    def install_plan(self, modules: Sequence[str]) -> InstallPlan:
        """What installing ``modules`` (import names) would run, and its size (for the question; starts nothing).

        Raises:
            InputError: for Slicer's own Python, which TumorGen leaves alone.
        """
        if self.uses_slicer_python:
            raise InputError("TumorGen does not install packages into Slicer's own Python; use TumorGen's own environment "
                             "(Backend > TumorGen's environment) or choose another interpreter")
        creates = self.uses_managed and not self.managed.exists
        return plan_install(self.executable, modules, create_from=self.managed.base if creates else "",
                            folder=self.managed.folder if creates else "", cuda_driver=self.cuda_driver)

    def start_install(self, modules: Sequence[str]) -> None:
        """Start installing ``modules`` (import names) into the interpreter; call only after the user agreed.

        The plan's commands run one after the other, each a polled process; :attr:`activity` says which.
        """
        self._ensure_idle()
        try:
            plan = self.install_plan(modules)
        except InputError as exc:
            self._report = EnvironmentReport("install", False, self.executable, message=str(exc))
            return
        if not plan.steps:
            self._report = EnvironmentReport("install", True, self.executable, message="nothing to install")
            return
        self._begin("install", plan.steps, modules=plan.modules, creates=plan.creates)

    def poll(self) -> EnvironmentReport | None:
        """None while a check or install runs (never waits); its report once it has ended (then not again)."""
        if self._report is not None:
            report, self._report = self._report, None
            return report
        task = self._task
        if task is None:
            return None
        try:
            if not task.poll():
                return None
        except OSError as exc:
            return self._end(task, install_report(task, self.executable, f"{task.what} does not start: {exc}"))
        if task.kind == "install":
            return self._end(task, install_report(task, self.executable))
        unmade = self.uses_managed and not self.managed.exists
        return self._end(task, check_report(task, self.executable, asked=self.managed.base if unmade else "",
                                            unmade=str(self.managed.folder) if unmade else ""))

    def cancel(self) -> None:
        """Stop a running check or install (returns at once; nothing is reported for it).

        An environment the install was making is removed again, so nothing half-made is left behind.
        """
        task, self._task = self._task, None
        self._report = None
        if task is not None:
            task.kill()

    def wait(self, timeout: float = 600.0, interval: float = 0.05) -> EnvironmentReport:
        """Poll until the running check or install ends (scripts and tests; a GUI polls from a timer).

        Raises:
            TimeoutError: if it is still running after ``timeout`` seconds (it is cancelled).
        """
        deadline = time.monotonic() + timeout
        while True:
            report = self.poll()
            if report is not None:
                return report
            if self._task is None:
                raise InputError("no check or install is running")
            if time.monotonic() > deadline:
                self.cancel()
                raise TimeoutError(f"the backend Python {self.executable} did not answer within {timeout:g} s")
            time.sleep(interval)

    # -- inside ---------------------------------------------------------------------------------------------------
    def _new_folder(self) -> Path:
        if self._work_dir is not None:
            self._work_dir.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="tumorgen-env-", dir=self._work_dir))

    def _ensure_idle(self) -> None:
        if self._task is not None:
            raise InputError(f"a {self._task.kind} of the backend Python is already running; wait for it or cancel it")
        self._report = None

    def _begin(self, kind: str, steps, *, modules: tuple[str, ...] = (), creates: str = "") -> None:
        folder = self._new_folder()
        try:
            self._task = PolledSteps(kind, steps, self._start, self.child_env(), folder, modules=modules, creates=creates)
        except OSError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            python = steps[0].command[0]
            self._report = EnvironmentReport(kind, False, python,
                                             message=str(InputError(f"backend Python {python} does not start: {exc}")))

    def _end(self, task: PolledSteps, report: EnvironmentReport) -> EnvironmentReport:
        self._task = None
        task.close(failed=not report.ok and task.kind == "install")
        return report
