"""Contract tests: every fake that stands in for one of our classes answers as the real class does.

Each contract runs twice, against the real class and against its fake (Testing/support/backend_fakes.py), through
a small harness that knows how to let each one finish its work (the real one runs processes and is waited for; the
fake is told to finish). A fake that drifts from the real class fails here, before it can hide a defect elsewhere
(the fake environment once answered ``ok=True`` for an interpreter lacking packages, the real one ``ok=False``).

- environment: :class:`~tumorgen_slicer.environment.BackendEnvironment` (a bare virtual environment, pip against a
  local wheel folder made here) and ``FakeEnvironment``;
- job starter and runs: :func:`~tumorgen_slicer.runs.start_run` on the real backend (a test task) and ``FakeStarter``;
- process starter: :func:`~tumorgen.backend.process.start_process` and ``RecordingStarter``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from backend_fakes import FakeEnvironment, FakeStarter, RecordingStarter
from first_use import make_wheel, make_venv
from tumorgen.backend.process import start_process
from tumorgen.backend.runner import JobRunner
from tumorgen_slicer.backend_install import WHEELS_ENV
from tumorgen_slicer.environment import BackendEnvironment, EnvironmentReport
from tumorgen_slicer.runs import RunSpec, start_run

#: A module every Python has, one the contract installs, and one nobody installs.
PRESENT, MISSING, ABSENT = "json", "tgcontract_probe", "tgcontract_absent"


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory):
    """A bare virtual environment (pip and nothing else), shared by this module's real-environment contracts: only the
    first contract installs into it, and only ``MISSING``."""
    return make_venv(tmp_path_factory.mktemp("bare") / "venv")


# -- the environment ---------------------------------------------------------------------------------------------
class RealEnvironmentHarness:
    """A bare virtual environment (pip, nothing else) as the backend Python, installing from a local wheel folder."""

    def __init__(self, tmp_path: Path, monkeypatch, python: str) -> None:
        wheels = tmp_path / "wheels"
        make_wheel(wheels, MISSING, "1.0")
        monkeypatch.setenv(WHEELS_ENV, str(wheels))
        self.env = BackendEnvironment(in_slicer=False, work_dir=tmp_path / "work", cuda_driver=False)
        self.python = python
        self.env.set_python(self.python)

    def settle(self) -> EnvironmentReport:
        return self.env.wait(timeout=180)


class FakeEnvironmentHarness:
    def __init__(self, tmp_path: Path, monkeypatch) -> None:
        self.env = FakeEnvironment(missing=(MISSING, ABSENT), python=str(tmp_path / "venv" / "bin" / "python"))
        self.python = self.env.executable

    def settle(self) -> EnvironmentReport:
        self.env.finish()
        return self.env.poll()


@pytest.fixture(params=["real", "fake"])
def environment(request, tmp_path, monkeypatch):
    if request.param == "real":
        return RealEnvironmentHarness(tmp_path, monkeypatch, request.getfixturevalue("bare_python"))
    return FakeEnvironmentHarness(tmp_path, monkeypatch)


def test_environment_contract_check_install_check(environment):
    env = environment.env
    assert not env.busy and env.poll() is None and env.activity == ""
    env.start_check([PRESENT, MISSING])
    assert env.busy and env.poll() is None  # nothing waits for the check
    report = environment.settle()
    # an interpreter that lacks a module is not ready: ok is False and the module is named
    assert report.kind == "check" and report.ok is False and report.missing == (MISSING,)
    assert MISSING in report.message and "\n" not in report.message
    assert not env.busy and env.poll() is None  # reported once

    plan = env.install_plan([MISSING])
    assert plan.modules == (MISSING,) and MISSING in plan.describe()
    env.start_install([MISSING])
    assert env.busy
    report = environment.settle()
    assert report.kind == "install" and report.ok is True and not env.busy

    env.start_check([PRESENT, MISSING])
    report = environment.settle()
    assert report.kind == "check" and report.ok is True and report.missing == ()


def test_environment_contract_cancel_drops_the_check(environment):
    env = environment.env
    env.start_check([ABSENT])
    env.cancel()
    assert not env.busy and env.poll() is None
    env.start_check([ABSENT])  # a new check may start at once
    assert environment.settle().missing == (ABSENT,)


def test_environment_contract_choosing_another_python_drops_a_running_check(environment):
    env = environment.env
    env.start_check([ABSENT])
    env.set_python(sys.executable)
    assert not env.busy and env.poll() is None and env.python == sys.executable


# -- the job starter and its runs ------------------------------------------------------------------------------
class RealStarterHarness:
    def __init__(self, tmp_path: Path) -> None:
        from tumorgen_testing import backend_env

        runner = JobRunner(env=backend_env())
        self.starter = lambda spec, work_dir, device: start_run(spec, work_dir, runner, device)

    def settle(self, run, timeout: float = 60.0) -> list:
        events, deadline = [], time.monotonic() + timeout
        while not run.done and time.monotonic() < deadline:
            events += run.poll()
            time.sleep(0.05)
        return events


class FakeStarterHarness:
    def __init__(self, tmp_path: Path) -> None:
        self.starter = FakeStarter()

    def settle(self, run, timeout: float = 60.0) -> list:
        events = run.poll()
        if run.outcome is None:
            run.finish("cancelled" if run.cancel_requested else "done")
        return events + run.poll()


@pytest.fixture(params=["real", "fake"])
def starter(request, tmp_path):
    return (RealStarterHarness if request.param == "real" else FakeStarterHarness)(tmp_path)


def test_starter_contract_a_run_starts_reports_and_ends(starter, tmp_path, ctx):
    spec = RunSpec("test_print", "Print 1")  # writes one volume, "ones"
    run = starter.starter(spec, tmp_path / "runs", "cpu")
    assert run.spec is spec and run.name == "Print 1" and Path(run.folder).is_dir() and not run.done
    assert isinstance(run.poll(), list)
    events = starter.settle(run)
    assert run.done and run.outcome.ok and run.outcome.status == "done"
    assert all(hasattr(e, "type") for e in events)
    assert run.seconds >= 0 and run.poll() == [] and run.summary == ""
    steps = list(run.loading(ctx))  # one step per node loaded, each named
    assert all(isinstance(s, str) for s in steps) and set(steps) == set(run.nodes)
    assert all(node.GetScene() is ctx.scene for node in run.nodes.values())


def test_starter_contract_a_cancelled_run_ends_cancelled_with_nothing_to_load(starter, tmp_path, ctx):
    run = starter.starter(RunSpec("test_slow", "Slow 1", params={"steps": 400, "step_seconds": 0.05}), tmp_path / "runs", "cpu")
    run.request_cancel()
    starter.settle(run)
    assert run.done and run.outcome.status == "cancelled" and not run.outcome.ok
    with pytest.raises(Exception, match="no outputs to load"):
        run.load_outputs(ctx)


# -- the process starter ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["real", "fake"])
def test_process_starter_contract(kind, tmp_path):
    start = start_process if kind == "real" else RecordingStarter(returncode=3)
    process = start([sys.executable, "-c", "import sys; sys.exit(3)"], log_dir=tmp_path, env=dict(__import__("os").environ))
    deadline, ended = time.monotonic() + 30, False
    while not ended and time.monotonic() < deadline:
        stdout, stderr, ended = process.read()
        assert isinstance(stdout, list) and isinstance(stderr, list)
        time.sleep(0.02)
    assert ended and process.returncode == 3
    process.kill_tree()  # harmless once it has ended


# -- no fake without a contract ---------------------------------------------------------------------------------
#: Each fake of backend_fakes, the real thing whose contract it runs above, and what their callers use of it
#: (BackendSetup of the environment, RunControl of a run, PolledSteps of a process).
CONTRACTS = {
    "FakeEnvironment": ("BackendEnvironment", ("python", "executable", "busy", "activity", "set_python", "start_check",
                                               "install_plan", "start_install", "poll", "cancel")),
    "FakeStarter": ("start_run", ()),
    "FakeRun": ("Run", ("spec", "folder", "name", "done", "outcome", "nodes", "segmentations", "summary", "seconds", "poll",
                        "request_cancel", "kill", "loading", "load_outputs")),
    "RecordingStarter": ("start_process", ()),
    "FinishedProcess": ("FileProcess", ("read", "returncode", "kill_tree")),
}


def test_every_fake_runs_a_contract_and_offers_what_the_callers_use():
    import inspect
    import re

    import backend_fakes
    from tumorgen.backend.process import FileProcess
    from tumorgen_slicer.runs import Run

    fakes = {name: value for name, value in vars(backend_fakes).items()
             if isinstance(value, type) and value.__module__ == backend_fakes.__name__}
    assert set(fakes) == set(CONTRACTS), "a fake without a contract test here (or a contract for a fake that is gone)"
    real = {"BackendEnvironment": BackendEnvironment, "Run": Run, "FileProcess": FileProcess}

    def offers(cls, name):  # a method or property, or an attribute its methods assign
        return hasattr(cls, name) or re.search(rf"self\.{name}\b[^=\n]*=", inspect.getsource(cls)) is not None

    for fake, (name, used) in CONTRACTS.items():
        for attribute in used:
            assert offers(real[name], attribute), f"{name} has no {attribute}"
            assert offers(fakes[fake], attribute), f"{fake} lacks {attribute}, which callers of {name} use"
