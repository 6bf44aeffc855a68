"""CancelRequest: a cancel reaches a task by a signal handler or by the runner's cancel-request file, cheaply."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tumorgen.backend.context import CancelRequest, TaskContext, cancel_file
from tumorgen.errors import CancelledError


def _context(tmp_path, cancel) -> TaskContext:
    return TaskContext(task="t", inputs={}, params=None, device="cpu", output_dir=tmp_path, staging_dir=tmp_path,
                       events=None, cancel_event=cancel)


def test_the_cancel_file_is_named_after_the_job_file(tmp_path):
    # job files that share a folder (``tumorgen demo`` writes several) must not share their cancel request
    assert cancel_file(tmp_path / "job.json") == tmp_path / "job.cancel"
    assert cancel_file(tmp_path / "grown.json") == tmp_path / "grown.cancel"
    assert cancel_file("out/sample.json") == Path("out/sample.cancel")


def test_the_cancel_file_is_looked_at_no_more_than_every_interval(tmp_path):
    request = CancelRequest(cancel_file(tmp_path / "job.json"), interval=3600.0)
    assert not request.is_set()  # looks once: no file
    (tmp_path / "job.cancel").write_text("cancel\n")
    assert not request.is_set(), "looked at the file again within the interval"
    eager = CancelRequest(tmp_path / "job.cancel", interval=0.0)
    assert eager.is_set() and eager.is_set()  # and it stays set


def test_a_signal_handler_sets_it_at_once_and_a_task_sees_it(tmp_path):
    request = CancelRequest(cancel_file(tmp_path / "job.json"))
    ctx = _context(tmp_path, request)
    assert not ctx.cancelled
    request.set()
    assert ctx.cancelled
    with pytest.raises(CancelledError):
        ctx.check_cancelled()


def test_a_plain_event_still_works_and_no_file_means_no_look(tmp_path):
    event = threading.Event()
    ctx = _context(tmp_path, event)
    assert not ctx.cancelled
    event.set()
    assert ctx.cancelled
    assert not CancelRequest(None).is_set()
