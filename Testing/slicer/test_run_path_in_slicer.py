"""The module's run path in the Slicer stand-in: what the panel shows of a run and what it costs the GUI thread.

Each test here failed on the module before the first-use work: one parameter change refreshed the whole panel
about fifty times; the log box showed only the last line of a burst and none of the run's summaries; unloading
the module during a run waited for the job (up to 10 s) instead of ending it; and inputs went to the job folder
as compressed NIfTI (about 1.1 s per 1 mm volume on the GUI thread).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from backend_fakes import FakeStarter
from slicer_stand_in.testing import module_paths

from tumorgen.backend.events import LogEvent, ProgressEvent

MODULE, UI = module_paths()


def _running(pid: int) -> bool:
    """Whether the process still runs (a killed child nobody has reaped yet is a zombie: it no longer runs)."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def shown(stand_in, tmp_path):
    module = stand_in.load_module(MODULE)
    module.create_widget()
    module.setup()
    module.enter()
    module.widget.presenter.runs.work_dir = tmp_path / "runs"
    yield module
    if module.widget.presenter is not None:
        module.widget.presenter.shutdown()


def test_one_parameter_change_refreshes_the_panel_once(shown):
    widget = shown.widget
    kinds = []
    widget.presenter.add_listener(lambda kind, p: kinds.append(kind))
    widget.ui.stepsSpinBox.value = widget.ui.stepsSpinBox.value + 1  # the user changes one setting
    assert kinds == ["state"], kinds
    assert widget.presenter.settings["steps"] == widget.ui.stepsSpinBox.value
    kinds.clear()
    widget._parameterNode.steps = widget._parameterNode.steps  # no change, no refresh
    assert kinds == []


def test_the_log_shows_every_message_with_its_level_and_the_status_keeps_the_summary(shown, stand_in):
    widget = shown.widget
    presenter = widget.presenter
    starter = FakeStarter()
    presenter.runs.starter, presenter.checks_backend = starter, False
    widget.ui.loadSampleButton.click()
    run = starter.runs[0]
    run.events += [LogEvent("first"), LogEvent("second", "warning"), ProgressEvent("work", 0.7, "working"), LogEvent("third")]
    stand_in.app.processEvents()
    time.sleep(0.15)
    stand_in.app.processEvents()  # the poll timer: one poll delivers the whole burst
    log = widget.ui.logTextEdit.toPlainText().splitlines()
    assert log[-4:] == ["[info] crop 16 voxels", "[info] first", "[warning] second", "[info] third"]
    assert widget.ui.progressBar.value == 70
    run.summary = "tumor 12.0 cm³"
    run.finish()
    time.sleep(0.15)
    stand_in.app.processEvents()
    assert widget.ui.statusLabel.text == "Sample done in 1.5 s: tumor 12.0 cm³"
    assert widget.ui.logTextEdit.toPlainText().splitlines()[-1] == "[info] Sample done in 1.5 s: tumor 12.0 cm³"
    assert widget.ui.applyButton.text == "Apply"


def test_unloading_during_a_run_ends_the_job_at_once(shown, stand_in, tmp_path):
    from scene_testing import fake_starter

    widget = shown.widget
    presenter = widget.presenter
    presenter.runs.starter, presenter.checks_backend = fake_starter, False
    from tumorgen_slicer.runs import RunSpec

    # a job that never checks for a cancel: only a kill ends it
    assert presenter._start(RunSpec("test_slow", "Slow", params={"ignore_cancel": True}), lambda run: None)
    run = presenter.runs.run
    deadline = time.monotonic() + 30
    while "sleeping" not in "\n".join(presenter.state.log) and time.monotonic() < deadline:
        presenter.poll()
        time.sleep(0.05)
    pid = run.process.pid
    shown.unload()  # moduleAboutToBeUnloaded -> cleanup(): no waiting for the job
    assert not presenter.busy and presenter.runs.run is None
    deadline = time.monotonic() + 30
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(pid), "the job outlived the module"
    assert not stand_in.errors(), stand_in.errors()


def test_inputs_go_to_the_job_uncompressed_and_outputs_come_back_so(shown, stand_in):
    from scene_testing import fake_starter

    widget = shown.widget
    presenter = widget.presenter
    presenter.runs.starter, presenter.checks_backend = fake_starter, False
    assert presenter.load_sample(spacing_mm=2.0), presenter.state.error
    assert presenter.wait(timeout=300) == "done", presenter.state.error
    presenter.set_seed((-26.0, 14.0, 26.0))
    widget._parameterNode.target_volume_cm3 = 4.0
    widget.ui.growButton.click()
    run = presenter.runs.run
    assert presenter.wait(timeout=300) == "done", presenter.state.error
    job = json.loads((Path(run.folder) / "job.json").read_text())
    assert job["output_format"] == "nrrd"
    for path in job["inputs"].values():
        assert path.endswith(".nrrd") and b"encoding: raw" in Path(path).read_bytes()[:400]
    assert all(str(p).endswith(".nrrd") for p in run.outcome.outputs.values())


def test_check_packages_shows_the_gpu_in_the_backend_section(shown, stand_in):
    from backend_fakes import FakeEnvironment

    widget = shown.widget
    environment = FakeEnvironment(missing=())
    widget.presenter.backend.environment = environment
    assert widget.ui.gpuLabel.text.startswith("GPU: not checked yet")
    widget.ui.checkBackendButton.click()
    environment.finish()
    time.sleep(0.15)
    stand_in.app.processEvents()
    assert widget.ui.gpuLabel.text == "GPU: no NVIDIA GPU found"
    assert widget.ui.statusLabel.text == "the backend's Python has what TumorGen needs"
