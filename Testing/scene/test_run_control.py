"""Run control with fakes: the job starter and the backend's environment are injected, so no process runs here.

The fakes (Testing/support/backend_fakes.py) run the same contract tests as the real classes (test_contracts.py).
"""

from __future__ import annotations

from pathlib import Path

from backend_fakes import FakeEnvironment, FakeStarter
from tumorgen.backend.runner import JobOutcome
from tumorgen_slicer.backend_setup import BackendSetup
from tumorgen_slicer.context import SceneContext
from tumorgen_slicer.presenter import TumorGenPresenter


def _presenter(tmp_path, environment=None, ask=False):
    starter = FakeStarter()
    backend = BackendSetup(environment=environment or FakeEnvironment(missing=()), ask=ask)
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
    environment = FakeEnvironment(missing=("scipy", "nilearn", "monai"))
    presenter, starter = _presenter(tmp_path, environment, ask=True)
    kinds = []
    presenter.add_listener(lambda kind, p: kinds.append(kind))
    assert presenter.load_sample()  # the simulate task: numpy, SimpleITK, scipy, nilearn, PIL
    assert environment.started == ["check"] and not starter.runs and presenter.busy
    assert presenter.poll()  # the check runs in its own process: nothing waits for it
    environment.finish()
    # the poll that saw what is missing asks nothing itself: the question waits for the front end
    assert presenter.poll() and "question" in kinds and environment.started == ["check"]
    question = presenter.state.question
    assert question.startswith("TumorGen's simulate task needs scipy, nilearn, which the backend's Python lacks.")
    assert "monai" not in question and "torch" not in question  # only what this task needs
    assert "about" in question and "to download" in question
    assert presenter.poll() and kinds.count("question") == 1  # asked once, however often it is polled
    assert presenter.answer_backend(True) and presenter.state.question == ""
    assert environment.started == ["check", "install scipy nilearn"]
    environment.finish()
    assert presenter.poll() and environment.started[-1] == "check"
    environment.finish()
    assert presenter.poll() and len(starter.runs) == 1  # ready: the job starts
    # the next run of the same task does not check again; another task is checked for what it needs
    starter.runs[0].outcome = JobOutcome("done", 0)
    presenter.poll()
    assert presenter.load_sample() and len(starter.runs) == 2 and environment.started.count("check") == 2


def test_declining_the_install_fails_the_run_with_what_is_missing_and_installs_nothing(tmp_path):
    environment = FakeEnvironment(missing=("nilearn",))
    presenter, starter = _presenter(tmp_path, environment, ask=True)
    assert presenter.load_sample()
    environment.finish()
    assert presenter.poll() and presenter.state.question
    assert presenter.answer_backend(False)
    assert not presenter.poll() and not starter.runs
    assert presenter.state.error == "nothing installed: the simulate task needs nilearn in the backend's Python"
    assert presenter.state.last_status == "failed" and not presenter.busy
    assert environment.started == ["check"]  # nothing installed
    assert presenter.load_sample()  # the panel stays usable: the next click asks again
    environment.finish()
    assert presenter.poll() and presenter.state.question


def test_answering_without_a_question_is_a_clear_error(tmp_path):
    presenter, _ = _presenter(tmp_path, FakeEnvironment(missing=()), ask=True)
    assert not presenter.answer_backend(True)
    assert presenter.state.error == "no question about the backend is waiting for an answer"


def test_check_backend_runs_only_the_checks_and_can_be_cancelled(tmp_path):
    environment = FakeEnvironment(missing=())
    presenter, starter = _presenter(tmp_path, environment, ask=True)
    assert presenter.check_backend() and presenter.busy
    assert presenter.cancel() and environment.started == ["check", "cancel"] and not presenter.busy
    assert presenter.state.last_status == "cancelled"
    assert presenter.check_backend()
    environment.finish()
    assert not presenter.poll() and presenter.state.message == "the backend's Python has what TumorGen needs"
    assert not starter.runs


def test_a_poll_inside_a_poll_returns_at_once(tmp_path):
    """A dialog or processEvents inside a listener lets the timer fire again: that poll must do nothing."""
    environment = FakeEnvironment(missing=("nilearn",))
    presenter, starter = _presenter(tmp_path, environment, ask=True)
    inner = []

    def listener(kind, p):
        if kind == "question":  # what a modal dialog's event loop would do: the timer polls again
            inner.append(p.poll())

    presenter.add_listener(listener)
    assert presenter.load_sample()
    environment.finish()
    assert presenter.poll()
    assert inner == [True] and presenter.state.question and presenter.state.error == ""
    assert presenter.busy and presenter.state.last_status == ""  # not failed "without a report"


def test_one_configure_notifies_the_panels_once(tmp_path):
    presenter, _ = _presenter(tmp_path)
    kinds = []
    presenter.add_listener(lambda kind, p: kinds.append(kind))
    values = dict(presenter.settings.as_dict())
    assert presenter.configure(values) and kinds == []  # nothing changed: nothing to refresh
    values["steps"] = values["steps"] + 1
    assert presenter.configure(values) and kinds == ["state"]


def test_every_message_is_in_the_log_with_its_level(tmp_path):
    presenter, starter = _presenter(tmp_path)
    assert presenter.load_sample()
    run = starter.runs[0]
    from tumorgen.backend.events import LogEvent

    run.events += [LogEvent("first"), LogEvent("second", "warning"), LogEvent("third")]
    seen = presenter.state.log.count
    presenter.poll()
    lines = presenter.state.log.since(seen)
    assert [(line.level, line.text) for line in lines][-3:] == [("info", "first"), ("warning", "second"), ("info", "third")]
    assert lines[-2].labelled == "[warning] second"
    run.outcome = JobOutcome("done", 0)
    while presenter.poll():
        pass
    assert list(presenter.state.log)[-1] == "Sample done in 1.5 s"


def test_the_expected_time_comes_from_the_last_run_of_its_kind(tmp_path):
    presenter, starter = _presenter(tmp_path)
    assert presenter.load_sample()
    assert presenter.state.expected == ""
    starter.runs[0].outcome = JobOutcome("done", 0)
    while presenter.poll():
        pass
    assert presenter.load_sample()
    assert presenter.state.expected == "about 2 s" and "expected about 2 s" in presenter.state.message


def test_old_run_folders_go_and_the_running_one_stays(tmp_path):
    presenter, starter = _presenter(tmp_path)
    assert presenter.configure({"keep_runs": 1})
    for n in range(3):
        assert presenter.load_sample()
        (starter.runs[-1].folder / "job.json").write_text("{}")
        starter.runs[-1].outcome = JobOutcome("done", 0)
        while presenter.poll():
            pass
    kept = sorted(p.name for p in tmp_path.iterdir() if (p / "job.json").exists())
    assert kept == ["run-2"]
    assert presenter.scene_closed() and not any((p / "job.json").exists() for p in tmp_path.iterdir())


def test_the_check_shows_the_gpus_it_saw(tmp_path):
    from tumorgen.gpu_info import GpuInfo

    gpu = GpuInfo(0, "NVIDIA H100 80GB HBM3", 81559, 80983, "580.65")
    environment = FakeEnvironment(missing=(), gpus=(gpu,))
    presenter, _ = _presenter(tmp_path, environment, ask=True)
    assert presenter.state.gpu == ""
    assert presenter.check_backend()
    environment.finish()
    assert not presenter.poll()
    assert presenter.state.gpu == "NVIDIA H100 80GB HBM3, 79.1 GiB free of 79.6 GiB"
