"""Which Python runs the backend, its environment, and (without blocking) whether it is ready.

The backend runs as ``<python> -m tumorgen.backend job.json`` with the folder
that holds the ``tumorgen`` package on ``PYTHONPATH``. The Python is either
Slicer's own (``PythonSlicer``; outside Slicer, this interpreter) or one the
user chooses (:mod:`~tumorgen_slicer.interpreter`).

:class:`BackendEnvironment` is what a front end holds: choosing an interpreter
does only cheap checks (no process), and the check for missing packages and
their install (:mod:`~tumorgen_slicer.backend_install`) run as processes that
are polled from a timer, like a job (see :mod:`tumorgen.backend.process`), so
the GUI never waits on a child process. No Qt here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from tumorgen.backend.process import FileProcess, start_process
from tumorgen.backend.runner import GRACE_PERIOD_S, JobRunner
from tumorgen.errors import InputError
from tumorgen_slicer.backend_install import for_slicer_python, install_torch_through_extension, pip_error, pip_install
from tumorgen_slicer.interpreter import REQUIRED_MODULES, check_executable, default_python, engine_root, probe_command, read_probe

# REQUIRED_MODULES and engine_root are part of this module's interface (the presenter side imports them from here).
__all__ = ["REQUIRED_MODULES", "BackendEnvironment", "EnvironmentReport", "engine_root"]

#: Variables of Slicer's launcher that would point another interpreter at Slicer's Python.
_SLICER_PYTHON_VARIABLES = ("PYTHONHOME", "PYTHONPATH", "PYTHONNOUSERSITE")


@dataclass(frozen=True)
class EnvironmentReport:
    """What a finished check or install found.

    ``kind`` is ``check`` or ``install``; ``message`` is one line for the status bar.
    """

    kind: str
    ok: bool
    python: str
    python_version: str = ""
    missing: tuple[str, ...] = ()
    message: str = ""


@dataclass
class _Task:
    """A running check or install: its process, its folder, and how to read what it wrote."""

    kind: str
    process: FileProcess
    folder: Path
    requirements: list[str] = field(default_factory=list)
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)


Starter = Callable[..., FileProcess]


class BackendEnvironment:
    """The backend's interpreter: which one, its environment, and (without blocking) whether it is ready.

    Args:
        in_slicer: whether this runs inside 3D Slicer's GUI process (then ``slicer`` is importable).
        start: starts a process with its output in files (:func:`~tumorgen.backend.process.start_process`;
            tests hand in a recording one).
        work_dir: where the check and install processes write their output (default: a new temporary folder each).
    """

    def __init__(self, in_slicer: bool = False, *, start: Starter = start_process, work_dir: str | os.PathLike | None = None) -> None:
        self.in_slicer = in_slicer
        self._start = start
        self._work_dir = None if work_dir is None else Path(work_dir)
        self._python = ""
        self._task: _Task | None = None
        self._report: EnvironmentReport | None = None

    # -- which interpreter -----------------------------------------------------------------------------
    @property
    def python(self) -> str:
        """The chosen interpreter; "" means Slicer's own (outside Slicer: this one)."""
        return self._python

    @property
    def executable(self) -> str:
        """The interpreter that runs the backend."""
        return self._python or default_python()

    @property
    def uses_slicer_python(self) -> bool:
        """Whether the backend runs on Slicer's own Python (whose packages must be left alone)."""
        if not self.in_slicer:
            return False
        if not self._python:
            return True
        try:  # PythonSlicer chosen by its path is still Slicer's own
            return os.path.samefile(self._python, default_python())
        except OSError:
            return False

    def set_python(self, python: str | os.PathLike | None) -> None:
        """Choose the backend's interpreter ("" or None: Slicer's own). Only cheap checks: no process starts.

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

        On Slicer's own Python: this process's environment, as Slicer runs pip. On another interpreter inside
        Slicer: the environment Slicer started with, without Slicer's PYTHONHOME, PYTHONPATH and
        PYTHONNOUSERSITE, which would make it load Slicer's standard library. Either way the engine's folder
        is on PYTHONPATH.
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

    # -- checking and installing, without blocking ----------------------------------------------------------
    @property
    def busy(self) -> bool:
        """Whether a check or install is running."""
        return self._task is not None

    def start_check(self) -> None:
        """Start finding the interpreter's version and missing packages; :meth:`poll` gives the report."""
        self._ensure_idle()
        self._begin("check", probe_command(self.executable))

    def start_install(self, modules: Sequence[str]) -> None:
        """Start installing ``modules`` (import names) into the interpreter; call only after the user agreed.

        On Slicer's own Python, PyTorch is installed first through the PyTorch extension, by its own call
        (which shows its progress in Slicer's log as it goes); the rest then installs in the background.
        """
        self._ensure_idle()
        slicer_python = self.uses_slicer_python
        wanted = list(dict.fromkeys(modules))
        if slicer_python:
            wanted, torch_wanted = for_slicer_python(wanted)
            failure = install_torch_through_extension() if torch_wanted else ""
            if failure:
                self._report = EnvironmentReport("install", False, self.executable, message=failure)
                return
        if not wanted:
            self._report = EnvironmentReport("install", True, self.executable, message="nothing to install")
            return
        folder = self._new_folder()
        install = pip_install(wanted, slicer_python=slicer_python, folder=folder)
        self._begin("install", [self.executable, "-m", "pip", "install", *install.args], folder=folder,
                    requirements=install.requirements)

    def poll(self) -> EnvironmentReport | None:
        """None while a check or install runs (never waits); its report once it has ended (then not again)."""
        if self._report is not None:
            report, self._report = self._report, None
            return report
        task = self._task
        if task is None:
            return None
        stdout, stderr, ended = task.process.read()
        task.stdout += stdout
        task.stderr += stderr
        if not ended:
            return None
        self._task = None
        shutil.rmtree(task.folder, ignore_errors=True)
        returncode = task.process.returncode
        assert returncode is not None
        if task.kind == "check":
            return self._check_report(task, returncode)
        return self._install_report(task, returncode)

    def cancel(self) -> None:
        """Stop a running check or install (returns at once; nothing is reported for it)."""
        task, self._task = self._task, None
        self._report = None
        if task is not None:
            task.process.kill_tree()
            shutil.rmtree(task.folder, ignore_errors=True)

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

    def _begin(self, kind: str, args: list[str], *, folder: Path | None = None, requirements: list[str] | None = None) -> None:
        folder = folder or self._new_folder()
        try:
            process = self._start(args, log_dir=folder, env=self.child_env())
        except OSError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            self._report = EnvironmentReport(kind, False, self.executable,
                                             message=str(InputError(f"backend Python {self.executable} does not start: {exc}")))
            return
        self._task = _Task(kind, process, folder, list(requirements or []))

    def _check_report(self, task: _Task, returncode: int) -> EnvironmentReport:
        python = self.executable
        answer = read_probe(python, returncode, task.stdout, task.stderr)
        if answer.problem:
            return EnvironmentReport("check", False, python, answer.version, message=answer.problem)
        if answer.missing:
            return EnvironmentReport("check", False, python, answer.version, answer.missing,
                                     f"backend Python {python} ({answer.version}) lacks {', '.join(answer.missing)}")
        return EnvironmentReport("check", True, python, answer.version, message=f"backend Python {python} ({answer.version}) is ready")

    def _install_report(self, task: _Task, returncode: int) -> EnvironmentReport:
        python = self.executable
        what = " ".join(task.requirements)
        if returncode != 0:
            detail = pip_error(task.stderr + task.stdout) or f"exit code {returncode}"
            return EnvironmentReport("install", False, python, message=str(InputError(f"pip could not install {what} into {python}: {detail}")))
        return EnvironmentReport("install", True, python, message=f"installed {what} into {python}")
