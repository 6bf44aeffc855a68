"""What run control needs from its collaborators: a job starter and a backend gate (see :mod:`~tumorgen_slicer.run_control`).

The real ones are :func:`~tumorgen_slicer.runs.start_run` (bound to the backend's runner by
:meth:`~tumorgen_slicer.backend_setup.BackendSetup.start_run`) and :class:`~tumorgen_slicer.backend_setup.BackendSetup`;
the tests' fakes (Testing/support/backend_fakes.py) run the same contract tests as the real ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Protocol

from tumorgen_slicer.runs import Run, RunSpec


class JobStarter(Protocol):
    """Writes a run's inputs and job file under ``work_dir`` and starts the backend (see :func:`~tumorgen_slicer.runs.start_run`)."""

    def __call__(self, spec: RunSpec, work_dir: Path, device: str) -> Run: ...


class BackendGate(Protocol):
    """Makes sure the backend can run a task before its first job (check its Python, install what it lacks)."""

    def ready_for(self, task: str) -> bool: ...

    def begin(self, task: str) -> None:
        """Start the checks for ``task`` ("" for every task; they run in other processes)."""

    def poll(self) -> Optional[str]:
        """None while working or waiting for an answer, "" once ready, else a one-line reason why it cannot run."""

    @property
    def question(self) -> str:
        """A yes/no question for the user ("" when none waits); :meth:`answer` takes the reply."""

    def answer(self, yes: bool) -> None: ...

    @property
    def activity(self) -> str:
        """What the gate's install does now ("" when none runs)."""

    @property
    def gpu_summary(self) -> str:
        """The GPUs the last check saw, in words ("" before the first check)."""

    def cancel(self) -> None: ...
