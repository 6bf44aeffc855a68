"""JobRunner: following a job, cancelling it, surfacing failures."""

from __future__ import annotations

import time

import numpy as np
import psutil
import pytest
from tumorgen_testing import backend_env

from tumorgen.backend.events import LogEvent, ProgressEvent
from tumorgen.backend.job import Job
from tumorgen.backend.runner import JobRunner
from tumorgen.phantom import head_phantom
from tumorgen.volume_io import write_volume


@pytest.fixture
def runner() -> JobRunner:
    return JobRunner(env=backend_env())


def _slow_job(tmp_path, **params) -> str:
    return Job(task="test_slow", params=params, output_dir=tmp_path / "out").write(tmp_path / "job.json")


def _wait_for(job, predicate, timeout=30.0, seen=None):
    """Consume events until one satisfies ``predicate``; return it.

    Every event consumed is appended to ``seen`` (when given), so events that
    arrived in the same batch are not lost to the caller.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in job.poll_events():
            if seen is not None:
                seen.append(event)
            if predicate(event):
                return event
        time.sleep(0.02)
    raise AssertionError("event never came")


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


def _tree_gone(pids) -> bool:
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            pass
    return True


def test_cancel_between_steps_removes_partial_outputs(tmp_path, runner):
    job = runner.start(_slow_job(tmp_path, steps=200, step_seconds=0.05))
    _wait_for(job, lambda e: isinstance(e, ProgressEvent) and e.stage == "work" and e.fraction > 0.02)
    staging = list((tmp_path / "out").glob(".tumorgen-staging-*"))
    assert len(staging) == 1 and {p.name for p in staging[0].iterdir()} == {"first.nii.gz", "second.nii.gz"}
    started = time.monotonic()
    job.cancel(grace_period=1.5)
    elapsed = time.monotonic() - started
    outcome = job.wait(timeout=5)
    assert outcome.status == "cancelled" and outcome.returncode == 143
    assert outcome.error.kind == "cancelled" and "no output was written" in outcome.message
    assert elapsed < 2.0, f"cancel took {elapsed:.2f} s"
    assert list((tmp_path / "out").iterdir()) == []


def test_cancel_kills_a_task_that_ignores_it_and_its_children(tmp_path, runner):
    job = runner.start(_slow_job(tmp_path, ignore_cancel=True, spawn_child=True))
    seen = []
    _wait_for(job, lambda e: isinstance(e, LogEvent) and "without checking" in e.message, seen=seen)
    child = next(e for e in seen if isinstance(e, LogEvent) and e.message.startswith("child pid"))
    pids = [job.pid, int(child.message.split()[-1])]
    assert all(psutil.pid_exists(pid) for pid in pids)
    started = time.monotonic()
    job.cancel(grace_period=1.0)
    elapsed = time.monotonic() - started
    assert _tree_gone(pids), "a process of the job's tree survived the cancel"
    assert elapsed < 2.0, f"cancel took {elapsed:.2f} s"
    outcome = job.wait(timeout=5)
    assert outcome.status == "cancelled"
    assert list((tmp_path / "out").iterdir()) == []


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


def test_poll_events_never_blocks(tmp_path, runner):
    job = runner.start(_slow_job(tmp_path, steps=20, step_seconds=0.05))
    started = time.monotonic()
    first = job.poll_events()
    assert time.monotonic() - started < 0.5 and isinstance(first, list)
    seen = list(first)
    while job.running:
        seen += job.poll_events()
        time.sleep(0.02)
    outcome = job.wait(timeout=10)
    assert outcome.ok
    fractions = [e.fraction for e in seen if isinstance(e, ProgressEvent)]
    assert np.all(np.diff(fractions) >= 0)
