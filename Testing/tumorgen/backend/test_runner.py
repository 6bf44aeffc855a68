"""JobRunner: following a job from files, cancelling it without blocking, surfacing failures, on POSIX and (simulated) Windows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from tumorgen_testing import SUPPORT, backend_env

from tumorgen.backend import process as process_module
from tumorgen.atomic import STAGING_PREFIX
from tumorgen.backend.context import cancel_file
from tumorgen.backend.events import LogEvent, ProgressEvent
from tumorgen.backend.job import Job
from tumorgen.backend.process import start_process
from tumorgen.backend.runner import JobRunner, events_file, stderr_file
from tumorgen.phantom import head_phantom
from tumorgen.volume_io import write_volume

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def runner() -> JobRunner:
    return JobRunner(env=backend_env())


def _slow_job(tmp_path, **params) -> Path:
    return Job(task="test_slow", params=params, output_dir=tmp_path / "out").write(tmp_path / "job.json")


def _cancel_request(tmp_path) -> Path:
    """The cancel-request file of :func:`_slow_job`'s job file."""
    return cancel_file(tmp_path / "job.json")


def _poll_until(job, predicate, timeout=60.0, seen=None):
    """Poll (as a GUI timer does) until an event satisfies ``predicate``; return it.

    Every event polled is appended to ``seen`` (when given), so events that
    arrived in the same batch are not lost to the caller.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in job.poll():
            if seen is not None:
                seen.append(event)
            if predicate(event):
                return event
        assert job.outcome is None, f"the job ended first: {job.outcome}"
        time.sleep(0.02)
    raise AssertionError("event never came")


def _poll_to_the_end(job, timeout=60.0, seen=None):
    deadline = time.monotonic() + timeout
    while job.outcome is None:
        batch = job.poll()
        if seen is not None:
            seen += batch
        assert time.monotonic() < deadline, "the job never ended"
        time.sleep(0.02)
    return job.outcome


def _working(event) -> bool:
    return isinstance(event, ProgressEvent) and event.stage == "work" and event.fraction > 0.02


def _leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


def _tree_gone(pids) -> bool:
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            pass
    return True


def test_runner_round_trip_with_progress(tmp_path, runner):
    image = write_volume(head_phantom(size=(24, 28, 22)), tmp_path / "t1n.nii.gz")
    job_file = Job(task="smoke", inputs={"image": image}, params={"passes": 3}, device="cpu", output_dir=tmp_path / "out").write(tmp_path / "job.json")
    job = runner.start(job_file)
    events = list(job.events(timeout=60))
    outcome = job.wait()
    assert outcome.ok and outcome.status == "done" and outcome.returncode == 0
    smooth_steps = [e.message for e in events if isinstance(e, ProgressEvent) and e.stage == "smooth"]
    assert smooth_steps == ["smooth 1/3", "smooth 2/3", "smooth 3/3", "smooth done"]
    assert sorted(outcome.outputs) == ["head_mask", "smoothed"]
    assert all(p.is_file() and p.parent == tmp_path / "out" for p in outcome.outputs.values())
    # the events went through a file beside the job file, named after it, one JSON object per line, every one read
    assert events_file(job_file) == tmp_path / "job.events.jsonl" and stderr_file(job_file) == tmp_path / "job.stderr.log"
    lines = (tmp_path / "job.events.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["type"] for line in lines] == [e.type for e in events if not (isinstance(e, LogEvent) and e.level == "stderr")]
    assert (tmp_path / "job.stderr.log").is_file()


def test_two_jobs_in_one_folder_keep_their_own_logs_and_cancel_requests(tmp_path, runner):
    # as `tumorgen demo` does: several job files in one folder, here running at the same time
    stopped = Job(task="test_slow", params={"steps": 400, "step_seconds": 0.05}, output_dir=tmp_path / "stopped").write(tmp_path / "stopped.json")
    finished = Job(task="test_slow", params={"steps": 60, "step_seconds": 0.05}, output_dir=tmp_path / "finished").write(tmp_path / "finished.json")
    stopped_job, finished_job = runner.start(stopped), runner.start(finished)
    _poll_until(stopped_job, _working)
    _poll_until(finished_job, _working)
    cancel_file(stopped).write_text("cancel\n")  # no signal: only the file tells the backend
    assert cancel_file(stopped) == tmp_path / "stopped.cancel"
    assert _poll_to_the_end(stopped_job).status == "cancelled"
    outcome = _poll_to_the_end(finished_job)
    assert outcome.ok, "the other job's cancel request cancelled this one"
    assert sorted(outcome.outputs) == ["first", "second"]

    def types(job_file):
        return [json.loads(line)["type"] for line in events_file(job_file).read_text(encoding="utf-8").splitlines()]

    assert types(stopped)[-1] == "error" and types(finished)[-2:] == ["progress", "result"]
    assert stderr_file(stopped).is_file() and stderr_file(finished).is_file()
    assert sorted(p.name for p in tmp_path.glob("*.*.*")) == [
        "finished.events.jsonl", "finished.stderr.log", "stopped.events.jsonl", "stopped.stderr.log"]


def test_poll_from_the_main_thread_reads_files_and_starts_no_thread(tmp_path, runner):
    threads_before = threading.active_count()
    job = runner.start(_slow_job(tmp_path, steps=20, step_seconds=0.02))
    seen: list = []
    most_threads = threading.active_count()
    deadline = time.monotonic() + 60
    while job.outcome is None:
        seen += job.poll()
        most_threads = max(most_threads, threading.active_count())
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert most_threads == threads_before, "the runner started a thread"
    assert job.outcome.ok and job.poll() == []
    fractions = [e.fraction for e in seen if isinstance(e, ProgressEvent)]
    assert np.all(np.diff(fractions) >= 0) and fractions[-1] == 1.0
    assert [e.message for e in seen if isinstance(e, ProgressEvent) and e.stage == "work"][-1] == "work done"


def test_a_partial_last_line_waits_for_the_next_poll(tmp_path):
    # The child writes half an event, waits for the test's go-ahead, then writes the rest.
    script = textwrap.dedent(f"""
        import os, sys, time
        sys.stdout.write('{{"type": "log", "level": "info", "mess'); sys.stdout.flush()
        while not os.path.exists({str(tmp_path / "go")!r}):
            time.sleep(0.01)
        sys.stdout.write('age": "whole"}}\\n'); sys.stdout.write('{{"type": "log", "message": "no newline"}}'); sys.stdout.flush()
    """)
    process = start_process([sys.executable, "-c", script], log_dir=tmp_path, stdout_name="stdout.jsonl")
    deadline = time.monotonic() + 60
    while (tmp_path / "stdout.jsonl").stat().st_size == 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    stdout, stderr, ended = process.read()
    assert (stdout, stderr, ended) == ([], [], False)
    (tmp_path / "go").touch()
    lines: list[str] = []
    while True:
        stdout, _, ended = process.read()
        lines += stdout
        if ended:
            break
        assert time.monotonic() < deadline
        time.sleep(0.01)
    # the unterminated last line comes once the child has exited
    assert lines == ['{"type": "log", "level": "info", "message": "whole"}', '{"type": "log", "message": "no newline"}']
    assert process.returncode == 0


def test_cancel_between_steps_removes_partial_outputs(tmp_path, runner):
    job = runner.start(_slow_job(tmp_path, steps=400, step_seconds=0.05))
    _poll_until(job, _working)
    staging = list((tmp_path / "out").glob(f"{STAGING_PREFIX}*"))
    assert len(staging) == 1 and {p.name for p in staging[0].iterdir()} == {"first.nii.gz", "second.nii.gz"}
    outcome = job.cancel(timeout=60)
    assert outcome.status == "cancelled" and outcome.returncode == 143
    assert outcome.error.kind == "cancelled" and "no output was written" in outcome.message
    assert _leftovers(tmp_path / "out") == []
    assert not _cancel_request(tmp_path).exists(), "a stale cancel request would cancel the next run of this job file"


def test_request_cancel_returns_at_once_and_a_later_poll_kills_the_tree(tmp_path, runner):
    job = runner.start(_slow_job(tmp_path, ignore_cancel=True, spawn_child=True))
    seen: list = []
    _poll_until(job, lambda e: isinstance(e, LogEvent) and "without checking" in e.message, seen=seen)
    child = next(e for e in seen if isinstance(e, LogEvent) and e.message.startswith("child pid"))
    pids = [job.pid, int(child.message.split()[-1])]
    started = time.monotonic()
    job.request_cancel(grace_period=0.5)
    returned_after = time.monotonic() - started
    # it returned while the job (which ignores the request and would sleep for two minutes) still runs
    assert returned_after < 1.0 and job.outcome is None and not _tree_gone(pids)
    assert _cancel_request(tmp_path).is_file()
    outcome = _poll_to_the_end(job)
    assert outcome.status == "cancelled" and outcome.returncode == -signal.SIGKILL
    assert _tree_gone(pids), "a process of the job's tree survived the cancel"
    assert _leftovers(tmp_path / "out") == [], "the killed job's staging folder was left behind"
    assert not _cancel_request(tmp_path).exists()


def test_a_job_killed_by_someone_else_leaves_no_staging_folder(tmp_path, runner):
    job = runner.start(_slow_job(tmp_path, steps=400, step_seconds=0.05))
    _poll_until(job, _working)
    assert [p.name for p in (tmp_path / "out").iterdir()] == [f"{STAGING_PREFIX}{job.pid}"]
    os.kill(job.pid, signal.SIGKILL)  # as the out-of-memory killer would
    outcome = _poll_to_the_end(job)
    assert outcome.status == "failed" and outcome.returncode == -signal.SIGKILL
    assert outcome.message.startswith(f"the backend exited with code {-signal.SIGKILL}")
    assert _leftovers(tmp_path / "out") == []


def test_the_cancel_file_alone_stops_the_backend(tmp_path, runner):
    job = runner.start(_slow_job(tmp_path, steps=400, step_seconds=0.05))
    _poll_until(job, _working)
    _cancel_request(tmp_path).write_text("cancel\n")  # no signal at all: the way a cancel reaches it on Windows
    outcome = _poll_to_the_end(job)
    assert outcome.status == "cancelled" and outcome.returncode == 143 and outcome.error.kind == "cancelled"
    assert _leftovers(tmp_path / "out") == []


def test_a_stale_cancel_file_does_not_cancel_the_next_run(tmp_path, runner):
    _cancel_request(tmp_path).write_text("left by an earlier run\n")
    outcome = runner.run(_slow_job(tmp_path, steps=2, step_seconds=0.0), timeout=60)
    assert outcome.ok, outcome


def test_a_crashing_task_surfaces_its_message(tmp_path, runner):
    job_file = Job(task="test_crash", output_dir=tmp_path / "out").write(tmp_path / "job.json")
    outcome = runner.run(job_file, timeout=60)
    assert outcome.status == "failed" and outcome.returncode == 1
    assert outcome.message == "RuntimeError: the solver diverged at step 17"


def test_bad_input_surfaces_as_bad_input(tmp_path, runner):
    job_file = Job(task="smoke", inputs={"image": tmp_path / "none.nii.gz"}, output_dir=tmp_path / "out").write(tmp_path / "job.json")
    outcome = runner.run(job_file, timeout=60)
    assert outcome.status == "bad_input" and outcome.returncode == 2
    assert "input 'image' file not found" in outcome.message


def test_a_backend_that_dies_without_an_event_reports_its_stderr(tmp_path):
    job_file = Job(task="smoke", output_dir=tmp_path / "out").write(tmp_path / "job.json")
    broken_python = tmp_path / "python"
    broken_python.write_text("#!/bin/sh\necho 'Fatal Python error: cannot import torch' >&2\nexit 9\n")
    broken_python.chmod(0o755)
    outcome = JobRunner(python=broken_python).run(job_file, timeout=30)
    assert outcome.status == "failed" and outcome.returncode == 9
    assert outcome.message == "the backend exited with code 9: Fatal Python error: cannot import torch"


def test_the_job_gets_exactly_the_environment_it_is_given(tmp_path):
    probe = tmp_path / "python"
    probe.write_text(f"#!/bin/sh\nenv > {tmp_path / 'env.txt'}\n")
    probe.chmod(0o755)
    job_file = Job(task="smoke", output_dir=tmp_path / "out").write(tmp_path / "job.json")
    JobRunner(python=probe, env={"PATH": os.environ["PATH"], "ONLY_THIS": "1"}, replace_env=True).run(job_file, timeout=30)
    env = dict(line.split("=", 1) for line in (tmp_path / "env.txt").read_text().splitlines() if "=" in line)
    assert env["ONLY_THIS"] == "1" and env["PYTHONUNBUFFERED"] == "1" and env["PYTHONIOENCODING"] == "utf-8"
    assert "HOME" not in env and "PYTHONPATH" not in env


# -- Windows, simulated: no SIGKILL, no os.killpg, no psutil, no console window ------------------------------------
def _simulate_windows(monkeypatch) -> None:
    monkeypatch.setattr(process_module, "IS_WINDOWS", True)
    monkeypatch.delattr(signal, "SIGKILL")
    monkeypatch.delattr(os, "killpg")
    monkeypatch.setattr(process_module, "_import_psutil", lambda: None)


def test_a_real_cancel_without_sigkill_or_killpg_ends_the_job_cancelled(tmp_path, runner, monkeypatch):
    job = runner.start(_slow_job(tmp_path, steps=400, step_seconds=0.05))
    _poll_until(job, _working)
    _simulate_windows(monkeypatch)
    signals: list[int] = []
    monkeypatch.setattr(subprocess.Popen, "send_signal", lambda self, sig: signals.append(sig))
    job.request_cancel()
    outcome = _poll_to_the_end(job)
    assert signals == [], "on Windows a cancel sends no signal (terminating is killing there)"
    assert outcome.status == "cancelled" and outcome.returncode == 143 and outcome.error.kind == "cancelled"
    assert _leftovers(tmp_path / "out") == [] and not _cancel_request(tmp_path).exists()


class _FakeStartupInfo:
    def __init__(self) -> None:
        self.dwFlags = 0
        self.wShowWindow = 1


class _RecordingPopen:
    """Stands in for subprocess.Popen: records every start; the job runs until the recorded taskkill ends it."""

    calls: list[tuple[list[str], dict]] = []
    job: _RecordingPopen | None = None

    def __init__(self, args, **kwargs) -> None:
        type(self).calls.append((list(args), kwargs))
        self.args = list(args)
        self.pid = 4_000_000 + len(type(self).calls)
        self.returncode: int | None = None
        self.signals: list[int] = []
        if self.args[0] == "taskkill":
            self.returncode = 0
            type(self).job.returncode = 1  # what taskkill /F leaves as the exit code
        else:
            type(self).job = self

    def poll(self):
        return self.returncode

    def send_signal(self, sig):
        self.signals.append(sig)

    def kill(self):
        self.returncode = 1


def test_windows_starts_hidden_in_a_new_group_and_kills_the_tree_with_taskkill(tmp_path, monkeypatch):
    _simulate_windows(monkeypatch)
    monkeypatch.setattr(subprocess, "STARTUPINFO", _FakeStartupInfo, raising=False)
    monkeypatch.setattr(_RecordingPopen, "calls", [])
    monkeypatch.setattr(process_module.subprocess, "Popen", _RecordingPopen)
    job = JobRunner(python="C:/Python312/python.exe", grace_period=0.0).start(_slow_job(tmp_path))

    (args, kwargs), = _RecordingPopen.calls
    assert args == ["C:/Python312/python.exe", "-m", "tumorgen.backend", str(tmp_path / "job.json")]
    assert kwargs["creationflags"] == 0x08000000 | 0x00000200  # CREATE_NO_WINDOW | CREATE_NEW_PROCESS_GROUP
    assert kwargs["startupinfo"].dwFlags & 0x1 and kwargs["startupinfo"].wShowWindow == 0  # STARTF_USESHOWWINDOW, SW_HIDE
    assert "start_new_session" not in kwargs and kwargs["stdin"] == subprocess.DEVNULL
    assert Path(kwargs["stdout"].name) == tmp_path / "job.events.jsonl" and Path(kwargs["stderr"].name) == tmp_path / "job.stderr.log"
    assert kwargs["cwd"] == str(tmp_path) and kwargs["env"]["PYTHONUNBUFFERED"] == "1"

    staging = tmp_path / "out" / f"{STAGING_PREFIX}{job.pid}"
    staging.mkdir(parents=True)
    (staging / "half.nii.gz").write_bytes(b"half-written")
    assert job.poll() == [] and job.outcome is None
    job.request_cancel()
    assert _cancel_request(tmp_path).is_file() and _RecordingPopen.job.signals == []
    _poll_to_the_end(job, timeout=10)

    (kill_args, kill_kwargs) = _RecordingPopen.calls[1]
    assert kill_args == ["taskkill", "/F", "/T", "/PID", str(job.pid)]
    assert kill_kwargs["creationflags"] == 0x08000000
    assert job.outcome.status == "cancelled" and job.outcome.returncode == 1
    assert not staging.exists() and not _cancel_request(tmp_path).exists()


def test_posix_starts_the_child_in_its_own_session(tmp_path, monkeypatch):
    monkeypatch.setattr(process_module, "IS_WINDOWS", False)
    monkeypatch.setattr(_RecordingPopen, "calls", [])
    monkeypatch.setattr(process_module.subprocess, "Popen", _RecordingPopen)
    JobRunner().start(_slow_job(tmp_path))
    (_, kwargs), = _RecordingPopen.calls
    assert kwargs["start_new_session"] is True and "creationflags" not in kwargs and "startupinfo" not in kwargs


# -- inside 3D Slicer's GUI process: no psutil, torch, monai, tqdm ----------------------------------------------
BLOCKER = """
import importlib.abc, sys
BLOCKED = {"psutil", "torch", "monai", "tqdm"}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked: Slicer does not ship it)")
        return None
sys.meta_path.insert(0, Block())
"""


def test_the_runner_imports_and_kills_a_tree_without_psutil(tmp_path):
    job_file = _slow_job(tmp_path, ignore_cancel=True, spawn_child=True)
    script = BLOCKER + textwrap.dedent(f"""
        import json, threading, time
        import tumorgen.backend.runner as runner
        import tumorgen_slicer.environment
        from tumorgen.backend.events import LogEvent
        job = runner.JobRunner(env=json.loads({json.dumps(json.dumps(backend_env()))})).start({str(job_file)!r})
        threads = threading.active_count()
        seen = []
        deadline = time.monotonic() + 60
        while not any(isinstance(e, LogEvent) and "without checking" in e.message for e in seen):
            assert time.monotonic() < deadline and job.outcome is None
            seen += job.poll()
            time.sleep(0.02)
        job.request_cancel(grace_period=0.3)
        while job.outcome is None:
            assert time.monotonic() < deadline
            job.poll()
            time.sleep(0.02)
        child = next(e for e in seen if isinstance(e, LogEvent) and e.message.startswith("child pid"))
        print(json.dumps({{"status": job.outcome.status, "child": int(child.message.split()[-1]),
                          "threads": threading.active_count() - threads,
                          "loaded": sorted(m for m in ("psutil", "torch", "monai", "tqdm") if m in sys.modules)}}))
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "TumorGenLib"), str(SUPPORT)])}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["status"] == "cancelled" and report["threads"] == 0 and report["loaded"] == []
    assert _tree_gone([report["child"]]), "the process group kill missed the job's child"
    assert _leftovers(tmp_path / "out") == []


@pytest.mark.parametrize("with_psutil", [True, False], ids=["psutil", "no-psutil"])
def test_through_a_launcher_the_backend_still_stops_by_itself(tmp_path, runner, monkeypatch, with_psutil):
    # Like Slicer's PythonSlicer: a launcher that starts the real Python as its child and dies of SIGTERM at once.
    launcher = tmp_path / "PythonSlicer"
    launcher.write_text(f'#!/bin/sh\n"{sys.executable}" "$@"\nexit $?\n')
    launcher.chmod(0o755)
    if not with_psutil:
        monkeypatch.setattr(process_module, "_import_psutil", lambda: None)
    job = JobRunner(python=launcher, env=backend_env()).start(_slow_job(tmp_path, steps=400, step_seconds=0.05))
    _poll_until(job, _working)
    (staging,) = (tmp_path / "out").iterdir()
    assert staging.name != f"{STAGING_PREFIX}{job.pid}"  # named after the real Python, not the launcher
    job.request_cancel(grace_period=30.0)
    outcome = _poll_to_the_end(job)
    # the real Python saw the cancel request and stopped by itself (its own message), and left nothing behind
    assert outcome.status == "cancelled" and outcome.message == "task test_slow was cancelled; no output was written"
    assert _leftovers(tmp_path / "out") == []
