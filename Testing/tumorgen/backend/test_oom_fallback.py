"""When CUDA runs out of memory, the job runs its task once more on the CPU, from a clean staging folder.

The GPU is faked (Testing/support/tumorgen_oom_task.py): the device resolves to ``cuda:0`` and the task raises an
out-of-memory error there, as PyTorch would. The protocol runs in this process (``run_job``, events into a string)
and, once, as ``python -m tumorgen.backend`` in a subprocess without PyTorch.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from tumorgen_testing import backend_env

from tumorgen import device as device_module
from tumorgen import threads as threads_module
from tumorgen.backend import registry
from tumorgen.backend.context import CancelRequest
from tumorgen.backend.events import EventWriter
from tumorgen.backend.job import Job
from tumorgen.backend.protocol import EXIT_DONE, EXIT_INTERNAL, is_cuda_out_of_memory, run_job
from tumorgen.errors import InputError

WARNING = "CUDA ran out of memory on cuda:0; running again on the CPU (slower)"
#: The modules of the test-only tasks run here (test_oom; test_crash).
TASK_MODULES = ("tumorgen_oom_task", "tumorgen_test_tasks")


@pytest.fixture
def oom_task(monkeypatch) -> ModuleType:
    """The test-only tasks, registered for this test only: the registry the other tests see stays as it was."""
    registry.load_tasks()
    monkeypatch.setattr(registry, "_REGISTRY", {name: spec for name, spec in registry._REGISTRY.items()
                                                if getattr(spec.run, "__module__", None) not in TASK_MODULES})
    for name in TASK_MODULES:
        monkeypatch.delitem(sys.modules, name, raising=False)
    return [importlib.import_module(name) for name in TASK_MODULES][0]


@pytest.fixture
def fake_gpu(monkeypatch, oom_task) -> list[str]:
    """A machine with one (fake) GPU; returns the list that records each ``torch.cuda.empty_cache()`` call."""
    import torch

    flushed: list[str] = []
    monkeypatch.setattr(device_module, "resolve_device", oom_task.fake_resolve_device)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: flushed.append("empty_cache"))
    monkeypatch.setattr(threads_module, "configure_threads", lambda *a, **k: None)  # leave this process's threads alone
    return flushed


def _run(tmp_path: Path, task: str = "test_oom", device: str = "auto", output_dir: Path | None = None,
         **params) -> tuple[int, list[dict]]:
    """Run a job in this process; return its exit code and events."""
    stream = io.StringIO()
    job = Job(task=task, output_dir=output_dir or tmp_path / "out", params=params, device=device)
    code = run_job(job, EventWriter(stream), CancelRequest())
    return code, [json.loads(line) for line in stream.getvalue().splitlines()]


def _logs(events: list[dict], level: str) -> list[str]:
    return [e["message"] for e in events if e["type"] == "log" and e["level"] == level]


@pytest.mark.parametrize("error", ["class", "message"])
@pytest.mark.parametrize("device", ["auto", "cuda"])
def test_out_of_memory_on_cuda_runs_again_on_the_cpu(tmp_path, fake_gpu, device, error):
    code, events = _run(tmp_path, device=device, error=error)
    assert code == EXIT_DONE, events[-1]
    assert _logs(events, "warning") == [WARNING]
    assert _logs(events, "info") == ["running on cuda:0; torch loaded: True", "running on cpu; torch loaded: True"]
    warning = next(i for i, e in enumerate(events) if e["type"] == "log" and e["level"] == "warning")
    assert [e["stage"] for e in events[warning + 1:] if e["type"] == "progress"] == ["start", "work", "done"]
    out = tmp_path / "out"
    assert events[-1] == {"type": "result", "outputs": {"result": str((out / "result.json").resolve())}}
    assert json.loads((out / "result.json").read_text()) == {"device": "cpu"}
    # the first attempt's output, scratch file and staging folder are gone
    assert sorted(p.name for p in out.iterdir()) == ["result.json"]
    assert fake_gpu == ["empty_cache"]


def test_a_second_failure_on_the_cpu_is_reported_as_any_failure(tmp_path, fake_gpu, oom_task):
    code, events = _run(tmp_path, fail_on_cpu=True)
    assert code == EXIT_INTERNAL
    assert _logs(events, "warning") == [WARNING]
    assert events[-1] == {"type": "error", "kind": "internal", "message": f"OutOfMemoryError: {oom_task.OOM_MESSAGE}"}
    assert not (tmp_path / "out").exists()  # the job created it (twice) and took it away again
    assert fake_gpu == ["empty_cache"]


def test_the_fallback_leaves_an_existing_output_folder_with_only_the_new_result(tmp_path, fake_gpu):
    out = tmp_path / "runs" / "out"
    out.mkdir(parents=True)
    (out / "earlier.nii.gz").write_bytes(b"an earlier result")
    code, events = _run(tmp_path, output_dir=out)
    assert code == EXIT_DONE and _logs(events, "warning") == [WARNING]
    assert sorted(p.name for p in out.iterdir()) == ["earlier.nii.gz", "result.json"]
    assert (out / "earlier.nii.gz").read_bytes() == b"an earlier result"


def test_a_cpu_job_is_not_run_again(tmp_path, fake_gpu, oom_task):
    code, events = _run(tmp_path, device="cpu", fail_on_cpu=True)
    assert code == EXIT_INTERNAL and _logs(events, "warning") == []
    assert _logs(events, "info") == ["running on cpu; torch loaded: True"]
    assert events[-1]["message"] == f"OutOfMemoryError: {oom_task.OOM_MESSAGE}" and fake_gpu == []


def test_an_error_other_than_out_of_memory_on_cuda_is_not_run_again(tmp_path, fake_gpu):
    code, events = _run(tmp_path, task="test_crash")
    assert code == EXIT_INTERNAL and _logs(events, "warning") == []
    assert events[-1] == {"type": "error", "kind": "internal", "message": "RuntimeError: the solver diverged at step 17"}
    assert fake_gpu == []


def test_out_of_memory_on_a_device_that_resolved_to_the_cpu_is_not_run_again(tmp_path, monkeypatch, oom_task):
    monkeypatch.setattr(device_module, "resolve_device", lambda requested="auto": "cpu")  # auto on a machine without a GPU
    monkeypatch.setattr(threads_module, "configure_threads", lambda *a, **k: None)
    code, events = _run(tmp_path, fail_on_cpu=True)
    assert code == EXIT_INTERNAL and _logs(events, "warning") == []
    assert sum(e["type"] == "progress" and e["stage"] == "start" for e in events) == 1


def test_is_cuda_out_of_memory(oom_task):
    import torch

    OutOfMemoryError, OOM_MESSAGE = oom_task.OutOfMemoryError, oom_task.OOM_MESSAGE
    assert is_cuda_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB"))
    assert is_cuda_out_of_memory(OutOfMemoryError("anything"))  # by name, as when PyTorch is not loaded
    assert is_cuda_out_of_memory(RuntimeError(f"CUDA error: {OOM_MESSAGE}"))
    assert not is_cuda_out_of_memory(RuntimeError("the solver diverged at step 17"))
    assert not is_cuda_out_of_memory(MemoryError("out of memory"))
    assert not is_cuda_out_of_memory(ValueError("CUDA out of memory"))
    assert not is_cuda_out_of_memory(InputError("CUDA out of memory: use a smaller crop"))


def test_the_backend_process_falls_back_without_pytorch(tmp_path):
    """The whole protocol in its own process: the out-of-memory error is recognised with PyTorch never imported."""
    env = backend_env()
    env.update({"TUMORGEN_TASK_MODULES": "tumorgen_oom_task", "TUMORGEN_TEST_FAKE_CUDA": "1"})
    job_file = Job(task="test_oom", output_dir=tmp_path / "out", device="cuda").write(tmp_path / "job.json")
    proc = subprocess.run([sys.executable, "-m", "tumorgen.backend", str(job_file)], capture_output=True, text=True,
                          timeout=120, env=env)
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 0, proc.stderr
    assert _logs(events, "info") == ["running on cuda:0; torch loaded: False", "running on cpu; torch loaded: False"]
    assert _logs(events, "warning") == [WARNING]
    assert events[-1]["type"] == "result" and list(events[-1]["outputs"]) == ["result"]
    assert json.loads(Path(events[-1]["outputs"]["result"]).read_text()) == {"device": "cpu"}
    assert os.listdir(tmp_path / "out") == ["result.json"]
    assert "OutOfMemoryError: CUDA out of memory" in proc.stderr  # the first attempt's traceback, for the record
