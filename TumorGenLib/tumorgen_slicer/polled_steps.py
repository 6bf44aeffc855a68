"""Commands run one after the other as polled processes: a backend check (one command) or an install (a few).

Each command writes its output to files in a folder of its own
(:func:`~tumorgen.backend.process.start_process`); :meth:`PolledSteps.poll`
reads what came, starts the next command when one has succeeded, and says when
all are done or one has failed. Nothing here waits; no Qt.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Callable, Mapping, Protocol, Sequence

from tumorgen.backend.process import FileProcess


class Step(Protocol):
    """One command and what it does, in words for the panel (:class:`~tumorgen_slicer.backend_install.InstallStep`)."""

    command: list[str]
    what: str


class PolledSteps:
    """``steps`` run in order with ``start``; the first starts at once (OSError if it cannot).

    Args:
        kind: ``check`` or ``install``.
        steps: the commands.
        start: starts a process with its output in files (``start(args, log_dir=..., env=...)``).
        env: the complete environment of every command.
        folder: where each command's output files go (removed by :meth:`close`).
        modules: what the steps check or install (import names), for the report.
        creates: a folder the steps make, removed again by :meth:`close` when they failed or were stopped.
    """

    def __init__(self, kind: str, steps: Sequence[Step], start: Callable[..., FileProcess], env: Mapping[str, str],
                 folder: Path, *, modules: tuple[str, ...] = (), creates: str = "") -> None:
        self.kind, self.modules, self.creates, self.folder = kind, modules, creates, folder
        self._start, self._env, self._todo = start, dict(env), list(steps)
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.what = ""
        self.process = self._next()

    def _next(self) -> FileProcess:
        step = self._todo.pop(0)
        self.what, self.stdout, self.stderr = step.what, [], []  # what the panel shows, and errors, are this step's
        return self._start(step.command, log_dir=Path(tempfile.mkdtemp(prefix="step-", dir=self.folder)), env=self._env)

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    @property
    def activity(self) -> str:
        """The running step and its latest line of output."""
        latest = next((line.strip() for line in reversed(self.stdout) if line.strip()), "")
        return f"{self.what}: {latest[:120]}" if latest else self.what

    def poll(self) -> bool:
        """Read what the running command wrote; True once every command has succeeded or one has failed (see
        :attr:`returncode`). Raises OSError if the next command cannot start."""
        stdout, stderr, ended = self.process.read()
        self.stdout += stdout
        self.stderr += stderr
        if not ended:
            return False
        if self.process.returncode == 0 and self._todo:
            self.process = self._next()
            return False
        return True

    def close(self, *, failed: bool) -> None:
        """Remove the output folder and, when the steps failed or were stopped, the folder they were making."""
        shutil.rmtree(self.folder, ignore_errors=True)
        if failed and self.creates:
            shutil.rmtree(self.creates, ignore_errors=True)

    def kill(self) -> None:
        """Stop now (returns at once) and remove what the steps left."""
        self.process.kill_tree()
        self.close(failed=True)
