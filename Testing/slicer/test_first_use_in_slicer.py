"""The first use of the module as a neurosurgeon meets it, in the Slicer stand-in, with nothing installed yet.

The module's own widget, its timer and its dialog (``slicer.util.confirmOkCancelDisplay``, answered as the user
would): the user picks a scan and its tissue maps, places a seed and clicks
*Grow*. The backend's Python is TumorGen's own environment, not made yet; its packages come from a local folder
of wheels instead of the network. Yes ends with a tumor in the scene (a label map and a segmentation with named
segments); Cancel in the dialog ends with one clear line and nothing installed.
"""

from __future__ import annotations

import subprocess
import time

import pytest
from slicer_stand_in.testing import module_paths

from tumorgen_slicer.backend_install import WHEELS_ENV
from tumorgen_slicer.managed_env import LOCATION_ENV

MODULE, UI = module_paths()
SEED_RAS = (-26.0, 14.0, 26.0)
ROLES = ("t1n", "csf", "gm", "wm")


@pytest.fixture(scope="session")
def sample_files(tmp_path_factory):
    """The bundled sample at 2 mm, written by the engine (the files a user would open)."""
    from tumorgen_testing import run_backend

    folder = tmp_path_factory.mktemp("sample")
    code, events, stderr = run_backend({"task": "simulate", "params": {"spacing_mm": 2.0, "tumor": False}, "device": "cpu",
                                        "output_dir": str(folder / "out")}, folder, timeout=300)
    assert code == 0, stderr
    outputs = next(e for e in events if e["type"] == "result")["outputs"]
    return {role: outputs[role if role == "t1n" else f"tissue-{role}"] for role in ROLES}


def _open_module(stand_in, tmp_path, monkeypatch, wheels, sample_files):
    monkeypatch.setenv(LOCATION_ENV, str(tmp_path / "TumorGen-env"))
    monkeypatch.setenv(WHEELS_ENV, str(wheels))
    from tumorgen_slicer.exchange import load_node
    from tumorgen_slicer.context import SceneContext

    module = stand_in.load_module(MODULE)
    module.create_widget()
    module.setup()
    module.enter()
    widget = module.widget
    ctx = SceneContext.from_slicer()
    parameters = widget._parameterNode
    for role, path in sample_files.items():  # the user opens the files and picks them in the selectors
        setattr(parameters, role, load_node(ctx, path, f"sample {role}"))
    assert widget.presenter.set_seed(SEED_RAS), widget.presenter.state.error  # placed in a view
    parameters.target_volume_cm3 = 4.0
    return module, widget


def _pump(stand_in, widget, timeout: float = 600.0) -> None:
    """Slicer's event loop: timers fire, until the run is over."""
    deadline = time.monotonic() + timeout
    stand_in.app.processEvents()
    while (widget.presenter.busy or widget.presenter.state.question) and time.monotonic() < deadline:
        time.sleep(0.05)
        stand_in.app.processEvents()


def test_yes_installs_what_growth_needs_and_the_grow_click_ends_with_a_tumor(stand_in, tmp_path, monkeypatch, growth_wheels,
                                                                             sample_files):
    module, widget = _open_module(stand_in, tmp_path, monkeypatch, growth_wheels, sample_files)
    asked = []
    # the user presses OK (in testing mode Slicer 5.10's own confirmOkCancelDisplay answers False: it compares its
    # testing answer True with QMessageBox.Ok)
    monkeypatch.setattr(stand_in.slicer.util, "confirmOkCancelDisplay", lambda text, **kw: asked.append(text) or True)
    widget.ui.growButton.click()
    _pump(stand_in, widget)
    presenter = widget.presenter
    assert len(asked) == 1 and asked[0].startswith("TumorGen's grow task needs numpy, SimpleITK, scipy, nilearn")
    assert "torch" not in asked[0] and "MB to download" in asked[0]
    assert presenter.state.last_status == "done", presenter.state.error
    assert (tmp_path / "TumorGen-env").is_dir()
    labels = presenter.node(presenter.state.results["labels"])
    assert labels is not None and labels.IsA("vtkMRMLLabelMapVolumeNode")
    log = widget.ui.logTextEdit.toPlainText()
    assert "[info] installed numpy SimpleITK scipy nilearn" in log and "[info] Growth 1 done in" in log
    assert widget.ui.statusLabel.text.startswith("Growth 1 done in")
    # the environment has what growth needs and nothing more of the engine's
    python = tmp_path / "TumorGen-env" / "bin" / "python"
    probe = subprocess.run([str(python), "-c", "import importlib.util as u; print([m for m in "
                            "('numpy', 'scipy', 'SimpleITK', 'torch', 'monai', 'ray', 'pandas') if u.find_spec(m)])"],
                           capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip() == "['numpy', 'scipy', 'SimpleITK']"
    # the next grow goes straight to the job
    assert presenter.grow() and presenter.state.question == "" and presenter.runs.run is not None
    assert not stand_in.errors(), stand_in.errors()
    module.exit()
    module.unload()


def test_cancel_in_the_dialog_installs_nothing_and_says_so_in_one_line(stand_in, tmp_path, monkeypatch, growth_wheels,
                                                                      sample_files):
    module, widget = _open_module(stand_in, tmp_path, monkeypatch, growth_wheels, sample_files)
    monkeypatch.setattr(stand_in.slicer.util, "confirmOkCancelDisplay", lambda text, **kw: False)
    widget.ui.growButton.click()
    _pump(stand_in, widget, timeout=120)
    presenter = widget.presenter
    line = "nothing installed: the grow task needs numpy, SimpleITK, scipy, nilearn in the backend's Python"
    assert presenter.state.last_status == "failed" and widget.ui.statusLabel.text == line
    assert f"[error] {line}" in widget.ui.logTextEdit.toPlainText()
    assert not (tmp_path / "TumorGen-env").exists()
    assert widget.ui.growButton.enabled and not presenter.busy
    assert not stand_in.errors(), stand_in.errors()
    module.exit()
    module.unload()
