"""Start a backend job in its own process, follow its events, cancel it.

The backend's stdout (the JSON-lines events) and stderr go to files named
after the job file, beside it (for ``job.json``: ``job.events.jsonl`` and
``job.stderr.log``; see :func:`events_file`, :func:`stderr_file`), so that job
files sharing a folder keep their own logs. :meth:`JobProcess.poll` reads the
complete lines appended since its last call and never waits, so any GUI timer
can drive it (:mod:`tumorgen.backend.process` does the process handling). A
command line iterates :meth:`JobProcess.events`.

Cancelling never blocks the caller: :meth:`JobProcess.request_cancel` writes
the job's cancel-request file (:func:`~tumorgen.backend.context.cancel_file`,
``job.cancel``) that the backend checks between steps, and on POSIX also sends
SIGTERM; once the grace period has passed, :meth:`JobProcess.poll` kills the
whole process tree. When the process is gone, ``poll`` removes any staging
folder it left and sets the outcome.

One job file runs one job at a time: its log and cancel files are reused.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections import deque
from pathlib import Path
from typing import Iterator, Mapping

from tumorgen.atomic import STAGING_PREFIX
from tumorgen.backend.context import cancel_file
from tumorgen.backend.events import ErrorEvent, Event, LogEvent, ResultEvent, parse_event
from tumorgen.backend.job import Job
from tumorgen.backend.job_outcome import JobOutcome, decide_outcome
from tumorgen.backend.process import FileProcess, pid_alive, start_process

__all__ = ["GRACE_PERIOD_S", "JobOutcome", "JobProcess", "JobRunner", "events_file", "stderr_file"]

#: Suffix of the backend's events file (its stdout, one JSON object per line), beside the job file.
EVENTS_SUFFIX = ".events.jsonl"
#: Suffix of the backend's stderr file (tracebacks, library chatter), beside the job file.
STDERR_SUFFIX = ".stderr.log"
#: Seconds between a cancel request and killing the process tree.
GRACE_PERIOD_S = 3.0
#: How long a blocking helper sleeps between polls.
_POLL_INTERVAL_S = 0.02
#: After a cancelled backend exited, how long to wait for the rest of its process group to go.
_GROUP_EXIT_S = 5.0


def events_file(job_file: str | os.PathLike) -> Path:
    """Where the backend's events for ``job_file`` go (``job.json`` -> ``job.events.jsonl``)."""
    path = Path(job_file)
    return path.with_name(path.stem + EVENTS_SUFFIX)


def stderr_file(job_file: str | os.PathLike) -> Path:
    """Where the backend's stderr for ``job_file`` goes (``job.json`` -> ``job.stderr.log``)."""
    path = Path(job_file)
    return path.with_name(path.stem + STDERR_SUFFIX)


class JobProcess:
    """One running (or finished) backend job, followed by :meth:`poll`.

    Args:
        process: the backend process (its stdout is the event stream).
        cancel_path: the job's cancel-request file (:func:`~tumorgen.backend.context.cancel_file`).
        output_dir: the job's output folder (holds the staging folder while it runs).
        grace_period: seconds from a cancel request to killing the process tree.
    """

    def __init__(self, process: FileProcess, *, cancel_path: Path, output_dir: Path,
                 grace_period: float = GRACE_PERIOD_S, stderr_lines: int = 200) -> None:
        self._process = process
        self.cancel_path = cancel_path
        self.output_dir = output_dir
        self.grace_period = float(grace_period)
        #: Set once the process has exited, every line was read and its staging folder removed.
        self.outcome: JobOutcome | None = None
        self._stderr_tail: deque[str] = deque(maxlen=stderr_lines)
        self._result: ResultEvent | None = None
        self._error: ErrorEvent | None = None
        self._cancel_deadline: float | None = None
        self._ended_at: float | None = None

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def running(self) -> bool:
        """Whether the outcome is still to come."""
        return self.outcome is None

    @property
    def cancel_requested(self) -> bool:
        return self._cancel_deadline is not None

    # -- following -----------------------------------------------------------------------------------
    def poll(self) -> list[Event]:
        """Events written since the last call; never waits. Sets :attr:`outcome` once the job has ended.

        After a cancel request it also kills the process tree when the grace period is over.
        """
        if self.outcome is not None:
            return []
        if (self._cancel_deadline is not None and not self._process.killed
                and time.monotonic() >= self._cancel_deadline):
            self._process.kill_tree()
        stdout, stderr, ended = self._process.read()
        events: list[Event] = []
        for line in stdout:
            if line.strip():
                events.append(self._note(parse_event(line)))
        for line in stderr:
            self._stderr_tail.append(line)
            if line.strip():
                events.append(LogEvent(line, "stderr"))
        if ended:
            self._finish()
        return events

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """Yield events as they come until the job has ended (for a command line).

        Raises:
            TimeoutError: if ``timeout`` seconds pass without the job ending.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            batch = self.poll()
            yield from batch
            if self.outcome is not None:
                return
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {self.pid} still running after {timeout:g} s")
            if not batch:
                time.sleep(_POLL_INTERVAL_S)

    def wait(self, timeout: float | None = None) -> JobOutcome:
        """Wait for the job to end (reading its remaining events) and return its outcome.

        Raises:
            TimeoutError: if ``timeout`` seconds pass first; the job keeps running.
        """
        for _ in self.events(timeout=timeout):
            pass
        assert self.outcome is not None
        return self.outcome

    # -- cancelling ----------------------------------------------------------------------------------
    def request_cancel(self, grace_period: float | None = None) -> None:
        """Ask the job to stop and return at once; :meth:`poll` kills it if it has not stopped after the grace period.

        Writes the cancel-request file the backend checks between steps and, on POSIX, sends it SIGTERM.
        """
        if self.outcome is not None or self._cancel_deadline is not None:
            return
        grace = self.grace_period if grace_period is None else float(grace_period)
        self._cancel_deadline = time.monotonic() + grace
        try:
            self.cancel_path.write_text("cancel requested\n", encoding="utf-8")
        except OSError:
            pass  # SIGTERM and, in the end, the kill still stop it
        self._process.remember_tree()
        self._process.terminate()

    def cancel(self, timeout: float = 10.0, grace_period: float | None = None) -> JobOutcome:
        """Cancel and wait until the job is gone (for scripts and the command line; a GUI uses :meth:`request_cancel`).

        Raises:
            TimeoutError: if the job's processes are still there after ``timeout`` seconds.
        """
        self.request_cancel(grace_period)
        return self.wait(timeout=timeout)

    def kill(self) -> None:
        """Kill the job's whole process tree now and return at once (for a front end going away: nobody polls after)."""
        if self.outcome is None:
            self._process.kill_tree()

    # -- ending ----------------------------------------------------------------------------------------
    def _note(self, event: Event) -> Event:
        if isinstance(event, ResultEvent):
            self._result = event
        elif isinstance(event, ErrorEvent):
            self._error = event
        return event

    def _finish(self) -> None:
        """The backend has exited: end what it left running (after a cancel), remove its staging, set the outcome."""
        now = time.monotonic()
        if self._ended_at is None:
            self._ended_at = now
        if self.cancel_requested:
            # The started process may be a launcher (Slicer's PythonSlicer) that is gone while the Python it
            # started still stops by itself after the cancel request: that one gets the rest of the grace period.
            assert self._cancel_deadline is not None
            if not self._process.killed and now < self._cancel_deadline and self._process.group_alive():
                return
            self._process.kill_leftovers()
            # Its processes may need a moment to die; the outcome waits for them (a bounded time) so that
            # no staging folder is removed while a process can still write into it.
            if self._process.group_alive() and now - self._ended_at < _GROUP_EXIT_S:
                return
        self._remove_staging()
        returncode = self._process.returncode
        assert returncode is not None
        self.outcome = decide_outcome(returncode, self._result, self._error, cancel_requested=self.cancel_requested,
                                      killed=self._process.killed, stderr_tail=self._stderr_tail)
        if self.cancel_requested:
            try:
                self.cancel_path.unlink()  # a stale request would cancel the next run at once
            except OSError:
                pass

    def _remove_staging(self) -> None:
        """Remove the staging folders of this job's dead processes (a killed backend cannot clean up after itself).

        The staging folder is named after the backend's pid, which is not the started process when that is a
        launcher (Slicer's ``PythonSlicer``); a staging folder of any process that no longer runs is garbage.
        """
        try:
            folders = [p for p in self.output_dir.iterdir() if p.is_dir() and p.name.startswith(STAGING_PREFIX)]
        except OSError:
            return
        ours = self._process.tree_pids
        for folder in folders:
            try:
                pid = int(folder.name[len(STAGING_PREFIX):])
            except ValueError:
                continue
            if pid in ours or not pid_alive(pid):
                shutil.rmtree(folder, ignore_errors=True)


class JobRunner:
    """Starts backend jobs with a given Python interpreter and environment.

    Args:
        python: the interpreter that runs ``-m tumorgen.backend`` (default: this one).
            The desktop module passes Slicer's Python or a user-chosen one.
        env: environment variables for the job: added to this process's environment, or, with
            ``replace_env``, the job's whole environment (as the scene logic builds it from Slicer's
            startup environment, so that a user-chosen Python does not inherit Slicer's PYTHONHOME).
        replace_env: whether ``env`` replaces the environment instead of adding to it.
        grace_period: seconds from a cancel request to killing the job's process tree.
    """

    def __init__(self, python: str | os.PathLike | None = None, env: Mapping[str, str] | None = None, *,
                 replace_env: bool = False, grace_period: float = GRACE_PERIOD_S) -> None:
        self.python = str(python or sys.executable)
        self.env = dict(env or {})
        self.replace_env = replace_env
        self.grace_period = grace_period

    def child_env(self) -> dict[str, str]:
        """The complete environment a job starts with."""
        from tumorgen.threads import prepare_environment

        base = {} if self.replace_env else dict(os.environ)
        env = {**base, **self.env, "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8"}
        prepare_environment(env)  # the numerical libraries' thread settings for a shared machine, unless set already
        return env

    def start(self, job_file: str | os.PathLike) -> JobProcess:
        """Start the job described by ``job_file`` and return at once.

        Raises:
            InputError: if the job file is missing or malformed.
            OSError: if the interpreter cannot be started.
        """
        job_file = Path(job_file).resolve()
        job = Job.load(job_file)
        folder = job_file.parent
        try:
            cancel_file(job_file).unlink()  # left by an earlier, cancelled run of this job file
        except FileNotFoundError:
            pass
        process = start_process(
            [self.python, "-m", "tumorgen.backend", str(job_file)],
            log_dir=folder,
            stdout_name=events_file(job_file).name,
            stderr_name=stderr_file(job_file).name,
            env=self.child_env(),
            cwd=folder,
        )
        return JobProcess(process, cancel_path=cancel_file(job_file), output_dir=job.output_dir,
                          grace_period=self.grace_period)

    def run(self, job_file: str | os.PathLike, timeout: float | None = None) -> JobOutcome:
        """Start a job and wait for it.

        Raises:
            TimeoutError: if it runs longer than ``timeout`` seconds (it is cancelled first).
        """
        job = self.start(job_file)
        try:
            return job.wait(timeout=timeout)
        except TimeoutError:
            job.cancel(timeout=max(10.0, 3 * job.grace_period))
            raise
