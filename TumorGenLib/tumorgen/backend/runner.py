"""Start a backend job in its own process, follow its events, cancel it.

No Qt here: the scene logic and the web app poll :meth:`JobProcess.poll_events`
from their own timers, a command line iterates :meth:`JobProcess.events`.

Two reader threads drain the child's stdout (events) and stderr (forwarded as
``log`` events with level ``stderr``) into one queue, so the child never
blocks on a full pipe and the caller never blocks on the child.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import psutil

from tumorgen.backend.context import STAGING_PREFIX
from tumorgen.backend.events import ErrorEvent, Event, LogEvent, ResultEvent, parse_event
from tumorgen.backend.job import Job
from tumorgen.backend.protocol import EXIT_BAD_INPUT, EXIT_CANCELLED, EXIT_DONE

_END = object()


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


class JobProcess:
    """One running (or finished) backend job."""

    def __init__(self, popen: subprocess.Popen, output_dir: Path, stderr_lines: int = 200) -> None:
        self._popen = popen
        self.output_dir = output_dir
        self._queue: queue.Queue = queue.Queue()
        self._stderr_tail: deque[str] = deque(maxlen=stderr_lines)
        self._result: ResultEvent | None = None
        self._error: ErrorEvent | None = None
        self._cancel_requested = False
        self._open_streams = 2
        self._outcome: JobOutcome | None = None
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def running(self) -> bool:
        return self._popen.poll() is None

    @property
    def streams_closed(self) -> bool:
        """Whether every event has been read (true once :meth:`poll_events` has drained an ended job)."""
        return self._open_streams == 0

    # -- reading -------------------------------------------------------------
    def _read_stdout(self) -> None:
        assert self._popen.stdout is not None
        for line in self._popen.stdout:
            if line.strip():
                self._queue.put(parse_event(line))
        self._queue.put(_END)

    def _read_stderr(self) -> None:
        assert self._popen.stderr is not None
        for line in self._popen.stderr:
            line = line.rstrip("\n")
            self._stderr_tail.append(line)
            if line.strip():
                self._queue.put(LogEvent(line, "stderr"))
        self._queue.put(_END)

    def _take(self, item) -> Event | None:
        if item is _END:
            self._open_streams -= 1
            return None
        if isinstance(item, ResultEvent):
            self._result = item
        elif isinstance(item, ErrorEvent):
            self._error = item
        return item

    def poll_events(self) -> list[Event]:
        """Events that arrived since the last call, without waiting (for GUI timers)."""
        out = []
        while True:
            try:
                event = self._take(self._queue.get_nowait())
            except queue.Empty:
                return out
            if event is not None:
                out.append(event)

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """Yield events as they come until the job's output streams close.

        Raises:
            TimeoutError: if ``timeout`` seconds pass without the job ending.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._open_streams > 0:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                raise TimeoutError(f"job {self.pid} still running after {timeout} s") from None
            event = self._take(item)
            if event is not None:
                yield event

    # -- ending ----------------------------------------------------------------
    def wait(self, timeout: float | None = None) -> JobOutcome:
        """Wait for the job to end (consuming remaining events) and return its outcome."""
        for _ in self.events(timeout=timeout):
            pass
        returncode = self._popen.wait(timeout=timeout)
        return self._make_outcome(returncode)

    def _make_outcome(self, returncode: int) -> JobOutcome:
        if self._outcome is not None:
            return self._outcome
        outputs = {k: Path(v) for k, v in (self._result.outputs if self._result else {}).items()}
        error = self._error
        if returncode == EXIT_DONE and self._result is not None:
            status = "done"
        elif (error is not None and error.kind == "cancelled") or (
            self._cancel_requested and returncode in (EXIT_CANCELLED, -signal.SIGTERM, -signal.SIGKILL)
        ):
            status = "cancelled"
            error = error or ErrorEvent("cancelled", "the job was cancelled; no output was written")
        elif returncode == EXIT_BAD_INPUT:
            status = "bad_input"
        else:
            status = "failed"
            if error is None:
                tail = " | ".join(line for line in list(self._stderr_tail)[-5:] if line.strip())
                error = ErrorEvent("internal", f"the backend exited with code {returncode}" + (f": {tail}" if tail else ""))
        self._outcome = JobOutcome(status, returncode, outputs, error)
        return self._outcome

    def cancel(self, grace_period: float = 2.0) -> None:
        """Ask the job to stop (SIGTERM), then kill its whole process tree after ``grace_period``.

        Returns once every process of the tree is gone and any staged output is removed.
        """
        self._cancel_requested = True
        deadline = time.monotonic() + grace_period
        try:
            children = psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        if self._popen.poll() is None:
            self._popen.send_signal(signal.SIGTERM)
        for proc in children:
            _signal_quietly(proc, signal.SIGTERM)
        # The backend is our child: reap it through Popen so its exit code is kept
        # (psutil would reap it first and Popen would then report 0).
        try:
            self._popen.wait(timeout=grace_period)
        except subprocess.TimeoutExpired:
            pass
        _, alive = psutil.wait_procs(children, timeout=max(0.0, deadline - time.monotonic()))
        if self._popen.poll() is None:
            self._popen.kill()
        # Children a task started may outlive a backend that exited cleanly; they go too.
        for proc in alive + _children_left(children):
            _signal_quietly(proc, signal.SIGKILL)
        if hasattr(os, "killpg"):
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self._popen.wait(timeout=grace_period)
        except subprocess.TimeoutExpired:
            pass
        _wait_gone(alive, timeout=grace_period)
        shutil.rmtree(self.output_dir / f"{STAGING_PREFIX}{self.pid}", ignore_errors=True)


def _signal_quietly(proc: psutil.Process, sig: int) -> None:
    try:
        proc.send_signal(sig)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        pass


def _wait_gone(procs: Sequence[psutil.Process], timeout: float) -> None:
    """Wait until ``procs`` have exited (zombies count: an orphan's reaper may be slow)."""
    deadline = time.monotonic() + timeout
    while _children_left(procs) and time.monotonic() < deadline:
        time.sleep(0.02)


def _children_left(tree: Sequence[psutil.Process]) -> list[psutil.Process]:
    left = []
    for proc in tree:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                left.append(proc)
        except psutil.NoSuchProcess:
            pass
    return left


class JobRunner:
    """Starts backend jobs with a given Python interpreter.

    Args:
        python: the interpreter that runs ``-m tumorgen.backend`` (default: this one).
            The desktop module passes Slicer's Python or a user-chosen one.
        env: extra environment variables for the job (e.g. ``PYTHONPATH``).
    """

    def __init__(self, python: str | os.PathLike | None = None, env: Mapping[str, str] | None = None) -> None:
        self.python = str(python or sys.executable)
        self.env = dict(env or {})

    def start(self, job_file: str | os.PathLike) -> JobProcess:
        """Start the job described by ``job_file`` and return at once."""
        job_file = Path(job_file).resolve()
        job = Job.load(job_file)
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8"}
        popen = subprocess.Popen(
            [self.python, "-m", "tumorgen.backend", str(job_file)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            env=env,
            cwd=str(job_file.parent),
            # Own process group: cancel can reach every process the job started.
            start_new_session=hasattr(os, "setsid"),
        )
        return JobProcess(popen, job.output_dir)

    def run(self, job_file: str | os.PathLike, timeout: float | None = None) -> JobOutcome:
        """Start a job and wait for it."""
        return self.start(job_file).wait(timeout=timeout)
