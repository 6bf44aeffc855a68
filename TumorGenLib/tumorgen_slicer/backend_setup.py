"""The backend's environment as the presenter sees it: which Python, whether it is ready, and starting jobs on it.

:class:`BackendSetup` is the presenter's run gate (see
:class:`~tumorgen_slicer.run_control.BackendGate`): before the first job, and
after the user picks another Python, it checks that interpreter in another
process; when packages are missing it asks the user (``confirm``) and installs
them, again in another process, then checks once more. Every step is polled,
so the GUI never waits on pip. Without ``confirm`` (the web app, scripts, the
tests: the engine's own environment) nothing is checked or installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from tumorgen_slicer.environment import BackendEnvironment, EnvironmentReport
from tumorgen_slicer.runs import Run, RunSpec, start_run


class BackendSetup:
    """Checks and prepares the backend's Python, and starts jobs on it."""

    def __init__(self, *, in_slicer: bool = False, log: Callable[[str], None] = print,
                 environment: BackendEnvironment | None = None, confirm: Callable[[str], bool] | None = None) -> None:
        self.environment = environment or BackendEnvironment(in_slicer)
        self.log = log
        #: How to ask the user a yes/no question (None: never check, never install).
        self.confirm = confirm
        self._checked = False
        self._installed = False

    @property
    def python(self) -> str:
        return self.environment.python

    def set_python(self, python: str) -> None:
        """Choose the backend's interpreter ("" for Slicer's own); it is checked before the next job."""
        before = self.environment.python
        self.environment.set_python(python)
        if self.environment.python != before:
            self.reset()
            self.log(f"backend Python: {self.environment.executable}")

    def reset(self) -> None:
        """Check again before the next job."""
        self._checked = self._installed = False

    # -- the gate -----------------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.confirm is None or self._checked

    def begin(self) -> None:
        self._installed = False
        self.environment.start_check()

    def poll(self) -> Optional[str]:
        report = self.environment.poll()
        if report is None:
            return None if self.environment.busy else "the backend check ended without a report"
        return self._next(report)

    def _next(self, report: EnvironmentReport) -> Optional[str]:
        if not report.ok:
            return report.message
        if report.kind == "install":
            self.log(f"installed what the backend needs into {report.python}")
            self._installed = True
            self.environment.start_check()
            return None
        if not report.missing:
            self._checked = True
            self.log(f"backend Python {report.python} ({report.python_version}) is ready")
            return ""
        missing = ", ".join(report.missing)
        if self._installed:
            return f"the backend Python {report.python} still lacks {missing} after the install"
        question = (f"The backend Python ({report.python}) lacks {missing}. Install them now? This downloads "
                    "packages and can take several minutes; TumorGen keeps working while it runs.")
        if self.confirm is None or not self.confirm(question):
            return f"the backend needs {missing}; install them or choose another Python"
        self.log(f"installing {missing} into {report.python}")
        self.environment.start_install(report.missing)
        return None

    def cancel(self) -> None:
        self.environment.cancel()

    # -- jobs ---------------------------------------------------------------------------------------------
    def start_run(self, spec: RunSpec, work_dir: Path, device: str) -> Run:
        """Start a job on this Python with its complete environment (the presenter's job starter)."""
        return start_run(spec, work_dir, self.environment.runner(), device)
