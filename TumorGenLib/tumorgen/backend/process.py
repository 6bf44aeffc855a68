"""Start a process with its output in files, read that output without blocking, kill its whole tree.

:func:`start_process` starts a command whose stdout and stderr go to files
(never pipes: the child can never block on a full one), and
:class:`FileProcess` reads the complete lines appended since its last
:meth:`~FileProcess.read`. That works from any GUI timer on every OS: Python
threads may starve inside 3D Slicer, where PythonQt runs without thread
support. No Qt, no threads.

Killing reaches every process the child started: with psutil the remembered
descendants; without it (3D Slicer's GUI process has none) the child's own
process group on POSIX and ``taskkill /F /T`` on Windows.

The job runner (:mod:`tumorgen.backend.runner`) follows backend jobs with it;
the scene logic runs its interpreter checks and package installs with it.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any, Mapping, Sequence

from tumorgen.backend.line_reader import LineReader

#: Whether this is Windows. A module attribute, not a call, so that tests can simulate Windows here.
IS_WINDOWS = os.name == "nt"

# Windows process-creation constants (as slicer.util.launchConsoleProcess hides the console); the fallbacks are
# their documented values, so that the Windows branch can be exercised on other systems.
_CREATE_NO_WINDOW = getattr(subprocess, "CREATE_NO_WINDOW", 0x08000000)
_CREATE_NEW_PROCESS_GROUP = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0x00000200)
_STARTF_USESHOWWINDOW = getattr(subprocess, "STARTF_USESHOWWINDOW", 0x00000001)
_SW_HIDE = getattr(subprocess, "SW_HIDE", 0)


def _import_psutil() -> ModuleType | None:
    """psutil when it is importable (not in 3D Slicer's GUI process), else None."""
    try:
        import psutil
    except ImportError:
        return None
    return psutil


def _hidden_window_kwargs() -> dict[str, Any]:
    """Popen arguments that open no console window on Windows and put the child in its own group/session."""
    if IS_WINDOWS:
        info = subprocess.STARTUPINFO()
        info.dwFlags |= _STARTF_USESHOWWINDOW
        info.wShowWindow = _SW_HIDE
        return {"creationflags": _CREATE_NO_WINDOW | _CREATE_NEW_PROCESS_GROUP, "startupinfo": info}
    # Own session, hence own process group: a kill can reach every process the child started.
    return {"start_new_session": True}


class FileProcess:
    """A child process whose stdout and stderr go to files, followed by polling.

    Made by :func:`start_process`. :meth:`read` never waits; :meth:`kill_tree`
    ends the child and every process it started.
    """

    def __init__(self, popen: subprocess.Popen, stdout_path: Path, stderr_path: Path) -> None:
        self._popen = popen
        self.stdout_path = stdout_path
        self.stderr_path = stderr_path
        self._stdout = LineReader(stdout_path)
        self._stderr = LineReader(stderr_path)
        # Descendants seen while the child ran (psutil only): they outlive a dead parent, so they are remembered.
        self._tree: list[Any] = []
        self._killer: subprocess.Popen | None = None
        self.killed = False

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        """The exit code, None while the child runs (reaps it without waiting)."""
        return self._popen.poll()

    @property
    def tree_pids(self) -> set[int]:
        """The child's pid and those of the descendants seen so far."""
        return {self.pid, *(proc.pid for proc in self._tree)}

    def read(self) -> tuple[list[str], list[str], bool]:
        """Lines written to stdout and stderr since the last call, and whether the child has exited.

        Once it has exited, every line it wrote is in this (or an earlier) answer.
        """
        # The exit is checked before reading: what a dead child wrote is all on disk by then.
        ended = self._popen.poll() is not None
        self._follow_up_kill(ended)
        return self._stdout.read(final=ended), self._stderr.read(final=ended), ended

    def terminate(self) -> None:
        """Ask the child to stop: SIGTERM on POSIX. Nothing on Windows, where terminating is killing."""
        if IS_WINDOWS or self._popen.poll() is not None:
            return
        try:
            self._popen.send_signal(signal.SIGTERM)
        except OSError:
            pass

    def remember_tree(self) -> None:
        """Note the child's current descendants, so that they can be killed after the child is gone."""
        psutil = _import_psutil()
        if psutil is None or self._popen.poll() is not None:
            return
        try:
            children = psutil.Process(self.pid).children(recursive=True)
        except psutil.Error:
            return
        known = {proc.pid for proc in self._tree}
        self._tree += [proc for proc in children if proc.pid not in known]

    def kill_tree(self) -> None:
        """Kill the child and every process it started; returns at once (:meth:`read` tells when it has gone)."""
        self.killed = True
        self.remember_tree()
        psutil = _import_psutil()
        if psutil is not None:
            if self._popen.poll() is None:
                self._popen.kill()
            self._kill_remembered(psutil)
        elif IS_WINDOWS:
            self._start_taskkill()
        if not IS_WINDOWS:
            self._kill_group()
            kill = getattr(signal, "SIGKILL", None)
            if kill is not None and self._popen.poll() is None:
                self._popen.send_signal(kill)

    def kill_leftovers(self) -> None:
        """After the child exited: kill what it started that still runs (remembered descendants, its process group)."""
        psutil = _import_psutil()
        if psutil is not None:
            self._kill_remembered(psutil)
        if not IS_WINDOWS:
            self._kill_group()

    def group_alive(self) -> bool:
        """POSIX: whether any process of the child's process group is left (False where that cannot be asked)."""
        killpg = getattr(os, "killpg", None)
        if IS_WINDOWS or killpg is None:
            return False
        try:
            killpg(self.pid, 0)
        except OSError:
            return False
        psutil = _import_psutil()
        if psutil is None:
            return True
        # A zombie still counts as a group member until its new parent reaps it, which a container's init
        # may never do; with psutil, only a remembered process that really runs keeps the group alive.
        for proc in self._tree:
            try:
                if proc.status() != psutil.STATUS_ZOMBIE:
                    return True
            except psutil.Error:
                pass
        return False

    def _kill_remembered(self, psutil: ModuleType) -> None:
        for proc in self._tree:
            try:
                proc.kill()  # psutil refuses a pid that was reused by another process
            except psutil.Error:
                pass

    def _kill_group(self) -> None:
        killpg, kill = getattr(os, "killpg", None), getattr(signal, "SIGKILL", None)
        if killpg is None or kill is None:
            return
        try:
            killpg(self.pid, kill)  # start_new_session made the child the leader of its own group
        except (ProcessLookupError, PermissionError, OSError):
            pass

    def _start_taskkill(self) -> None:
        """Windows without psutil: ``taskkill /F /T`` ends the tree (it needs the parent alive to find the children)."""
        if self._popen.poll() is not None:
            return
        try:
            self._killer = subprocess.Popen(
                ["taskkill", "/F", "/T", "/PID", str(self.pid)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                creationflags=_CREATE_NO_WINDOW,
            )
        except OSError:
            self._killer = None
            self._popen.kill()  # no taskkill: at least the child itself

    def _follow_up_kill(self, ended: bool) -> None:
        """Reap a finished taskkill; if the child outlived it, kill the child directly."""
        if self._killer is None or self._killer.poll() is None:
            return
        self._killer = None
        if not ended and self._popen.poll() is None:
            self._popen.kill()


def start_process(
    args: Sequence[str | os.PathLike],
    *,
    log_dir: str | os.PathLike,
    stdout_name: str = "stdout.log",
    stderr_name: str = "stderr.log",
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
) -> FileProcess:
    """Start ``args`` with its stdout and stderr written to files in ``log_dir``; returns at once.

    No console window opens on Windows, and the child runs in its own process
    group (its own session on POSIX), so that :meth:`FileProcess.kill_tree`
    reaches everything it starts.

    Raises:
        OSError: if the program cannot be started (e.g. it does not exist).
    """
    folder = Path(log_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stdout_path, stderr_path = folder / stdout_name, folder / stderr_name
    with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
        popen = subprocess.Popen(
            [str(arg) for arg in args],
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            env=None if env is None else dict(env),
            cwd=None if cwd is None else str(cwd),
            **_hidden_window_kwargs(),
        )
    return FileProcess(popen, stdout_path, stderr_path)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (a zombie counts; when in doubt, yes)."""
    psutil = _import_psutil()
    if psutil is not None:
        return bool(psutil.pid_exists(pid))
    if IS_WINDOWS:
        return _windows_pid_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _windows_pid_alive(pid: int) -> bool:
    """Windows without psutil (os.kill there would terminate the process): ask the kernel for its exit code."""
    import ctypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return ctypes.get_last_error() != 87  # ERROR_INVALID_PARAMETER: no such process; else (access denied) alive
    try:
        code = ctypes.c_ulong()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
            return True
        return code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)
