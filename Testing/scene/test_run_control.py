"""Run control with fakes: the job starter and the backend's environment are injected, so no process runs here."""

from __future__ import annotations

from pathlib import Path

from tumorgen.backend.events import LogEvent, ProgressEvent
from tumorgen.backend.runner import JobOutcome
from tumorgen_slicer.backend_setup import BackendSetup
from tumorgen_slicer.context import SceneContext
from tumorgen_slicer.environment import EnvironmentReport
from tumorgen_slicer.presenter import TumorGenPresenter


class FakeRun:
    """A run whose events and ending the test scripts."""

    def __init__(self, spec, folder: Path):
        self.spec, self.folder, self.nodes = spec, folder, {}
        self.outcome = None
        self.events = [ProgressEvent("sample", 0.5, "halfway"), LogEvent("crop 16 voxels")]
        self.cancel_requested = False
        self.seconds = 1.5

    name = property(lambda self: self.spec.name)
    done = property(lambda self: self.outcome is not None)

    def poll(self):
        events, self.events = self.events, []
        return events

    def request_cancel(self):
        self.cancel_requested = True

    def load_outputs(self, ctx):
        return self.nodes


class FakeStarter:
    def __init__(self):
        self.runs: list[FakeRun] = []

    def __call__(self, spec, work_dir, device):
        run = FakeRun(spec, Path(work_dir) / f"run-{len(self.runs)}")
        run.device = device
        self.runs.append(run)
        return run


class FakeEnvironment:
    """The backend's Python as BackendSetup sees it: checks and installs that report when the test says so."""

    def __init__(self, missing=("torch", "monai")):
        self.python, self.executable = "", "/opt/python"
        self.missing = tuple(missing)
        self.started: list[str] = []
        self.busy = False
        self._report = None

    def set_python(self, python):
        self.python = python

    def start_check(self):
        self.started.append("check")
        self.busy = True

    def start_install(self, modules):
        self.started.append("install " + " ".join(modules))
        self.busy = True

    def finish(self):
        kind = self.started[-1].split()[0]
        self.busy = False
        if kind == "install":
            self.missing = ()
            self._report = EnvironmentReport("install", True, self.executable)
        else:
            self._report = EnvironmentReport("check", True, self.executable, "3.12.8", self.missing)

    def poll(self):
        report, self._report = self._report, None
        return report

    def cancel(self):
        self.started.append("cancel")
        self.busy = False


def _presenter(tmp_path, environment=None, confirm=None):
    starter = FakeStarter()
    backend = BackendSetup(environment=environment or FakeEnvironment(missing=()), confirm=confirm)
    presenter = TumorGenPresenter(SceneContext.headless(), work_dir=tmp_path, starter=starter, backend=backend)
    return presenter, starter


def test_a_run_reports_progress_and_ends_without_the_presenter_waiting(tmp_path):
    presenter, starter = _presenter(tmp_path)
    events = []
    presenter.add_listener(lambda kind, p: events.append(kind))
    assert presenter.configure({"device": "cpu"})
    assert presenter.load_sample(spacing_mm=4.0)
    run = starter.runs[0]
    assert presenter.busy and run.spec.task == "simulate" and run.device == "cpu"
    assert presenter.poll() and presenter.state.progress == 0.5 and presenter.state.message == "halfway"
    assert "crop 16 voxels" in presenter.state.log
    assert not presenter.load_sample() and presenter.state.error == "Sample is still running; wait for it or cancel it"
    run.outcome = JobOutcome("done", 0)
    assert not presenter.poll()
    assert presenter.state.last_status == "done" and presenter.state.message == "Sample done in 1.5 s" and not presenter.busy
    assert events.count("finished") == 1 and events.index("finished") > events.index("progress")


def test_cancel_asks_and_returns_and_a_later_poll_ends_the_run(tmp_path):
    presenter, starter = _presenter(tmp_path)
    assert presenter.load_sample()
    run = starter.runs[0]
    assert presenter.cancel()
    assert run.cancel_requested and presenter.busy and presenter.state.message == "cancelling Sample"
    run.outcome = JobOutcome("cancelled", -15)
    assert not presenter.poll()
    assert presenter.state.last_status == "cancelled" and presenter.state.message == "Sample cancelled"
    assert not presenter.cancel()


def test_a_failed_run_reports_its_message_in_one_line(tmp_path):
    from tumorgen.backend.events import ErrorEvent

    presenter, starter = _presenter(tmp_path)
    assert presenter.load_sample()
    starter.runs[0].outcome = JobOutcome("bad_input", 2, error=ErrorEvent("input", "no such weights"))
    assert not presenter.poll()
    assert presenter.state.error == "Sample failed: no such weights" and presenter.state.last_status == "bad_input"


def test_the_first_run_checks_the_backend_asks_before_installing_and_then_starts(tmp_path):
    environment = FakeEnvironment(missing=("torch", "monai"))
    questions = []
    presenter, starter = _presenter(tmp_path, environment, confirm=lambda q: questions.append(q) or True)
    assert presenter.load_sample()
    assert environment.started == ["check"] and not starter.runs and presenter.busy
    assert presenter.poll()  # the check runs in its own process: nothing waits for it
    environment.finish()
    assert presenter.poll() and environment.started == ["check", "install torch monai"]
    assert questions == ["The backend Python (/opt/python) lacks torch, monai. Install them now? This downloads packages and "
                         "can take several minutes; TumorGen keeps working while it runs."]
    environment.finish()
    assert presenter.poll() and environment.started[-1] == "check"
    environment.finish()
    assert presenter.poll() and len(starter.runs) == 1  # ready: the job starts
    # the next run does not check again
    starter.runs[0].outcome = JobOutcome("done", 0)
    presenter.poll()
    assert presenter.load_sample() and len(starter.runs) == 2 and environment.started.count("check") == 2


def test_declining_the_install_fails_the_run_with_what_is_missing(tmp_path):
    environment = FakeEnvironment(missing=("monai",))
    presenter, starter = _presenter(tmp_path, environment, confirm=lambda q: False)
    assert presenter.load_sample()
    environment.finish()
    assert not presenter.poll() and not starter.runs
    assert presenter.state.error == "the backend needs monai; install them or choose another Python"
    assert presenter.state.last_status == "failed" and not presenter.busy


def test_check_backend_runs_only_the_checks_and_can_be_cancelled(tmp_path):
    environment = FakeEnvironment(missing=())
    presenter, starter = _presenter(tmp_path, environment, confirm=lambda q: True)
    assert presenter.check_backend() and presenter.busy
    assert presenter.cancel() and environment.started == ["check", "cancel"] and not presenter.busy
    assert presenter.state.last_status == "cancelled"
    assert presenter.check_backend()
    environment.finish()
    assert not presenter.poll() and presenter.state.message == "the backend's Python has what TumorGen needs"
    assert not starter.runs
