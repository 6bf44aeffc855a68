"""(i) The Synthesize panel on the module's own widget: its controls take their ranges from the schema, the button waits for
a t1n and labels and says which labels it will use, Synthesize starts the presenter's synthesis with the panel's settings,
turns into Cancel while it runs and fills the summary, and Cancel stops it.

The synthesis runs as the test task ``test_synthesize`` (Testing/support/tumorgen_test_tasks.py) on a small synthetic T1.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from scene_testing import add_slice_views, fake_starter, view_layers
from slicer_stand_in.testing import module_paths

from tumorgen.volume import Grid, Volume

MODULE, UI = module_paths()
#: The panel's controls of the synthesis settings, by panel key (the weights folder, optional, has none).
BOUND = {"synthesis_steps": "synthesisStepsSpinBox", "synthesis_seed": "synthesisSeedSpinBox", "synthesis_samples": "synthesisSamplesSpinBox",
         "blend_mm": "blendSpinBox"}
GRID = Grid(size=(24, 24, 24), spacing=(2.0, 2.0, 2.0), origin=(-23.0, -23.0, -23.0), direction=(1, 0, 0, 0, 1, 0, 0, 0, 1))


@pytest.fixture
def widget(stand_in, tmp_path):
    from tumorgen_slicer.context import SceneContext
    from tumorgen_slicer.nodes import add_volume

    module = stand_in.load_module(MODULE)
    module.create_widget()
    module.setup()
    module.enter()
    widget = module.widget
    widget.presenter.runs.starter = fake_starter
    widget.presenter.checks_backend = False  # the stand-in tasks run on this interpreter: nothing to check
    widget.presenter.runs.work_dir = tmp_path / "runs"
    ctx = SceneContext.from_slicer()
    add_slice_views(ctx)
    index = np.indices(GRID.size)
    brain = np.linalg.norm(index - 11.5, axis=0) < 10
    t1n = add_volume(ctx, Volume(np.where(brain, 500.0 + 10.0 * index[2], 0.0).astype(np.float32), GRID), "t1n")
    assert widget.presenter.set_input("t1n", t1n)
    yield widget
    module.exit()


def _job(widget) -> dict:
    folder = sorted(p for p in widget.presenter.runs.work_dir.iterdir() if p.is_dir())[-1]
    return json.loads((folder / "job.json").read_text())


def test_the_panel_shows_the_schema_s_ranges_and_waits_for_labels(widget):
    from tumorgen_slicer.panel_settings import FIELDS_BY_KEY

    ui, p = widget.ui, widget.presenter
    assert ui.synthesisCollapsibleButton.text == "Synthesize" and not ui.synthesisCollapsibleButton.collapsed
    for key, name in BOUND.items():
        control, setting = getattr(ui, name), FIELDS_BY_KEY[key].setting
        assert control.property("SlicerParameterName") == key
        assert (control.minimum, control.maximum, control.value) == (setting.minimum, setting.maximum, setting.default), key
    blend = FIELDS_BY_KEY["blend_mm"].setting
    assert (ui.blendSpinBox.singleStep, ui.blendSpinBox.decimals, ui.blendSpinBox.suffix) == (blend.step, blend.decimals, " mm")

    # a t1n but no labels: the button waits and the panel says what it needs
    assert not ui.synthesizeButton.enabled and ui.synthesizeButton.text == "Synthesize"
    assert ui.synthesisLabelsLabel.text == "none: choose a segmentation (seg), or grow or paint a tumor"
    ui.synthesizeButton.click()  # a disabled button does nothing
    assert not p.busy and p.state.error == ""
    assert p.new_concentration() and p.configure({"blob_amplitude": 1.0, "blob_sigma_mm": 4.0}) and p.add_blob((0.0, 0.0, 0.0))
    assert ui.synthesizeButton.enabled and ui.synthesisLabelsLabel.text == f"concentration: {p.concentration.GetName()}"
    assert p.set_input("t1n", None)
    assert not ui.synthesizeButton.enabled


def test_synthesize_through_the_panel_loads_the_contrasts_and_fills_the_summary(widget, stand_in):
    p, ui = widget.presenter, widget.ui
    assert p.new_concentration() and p.configure({"blob_amplitude": 1.0, "blob_sigma_mm": 4.0}) and p.add_blob((0.0, 0.0, 0.0))
    ui.synthesisStepsSpinBox.value = 4  # through the parameter node into the presenter
    ui.synthesisSeedSpinBox.value = 11
    ui.blendSpinBox.value = 3.0
    assert (p.settings["synthesis_steps"], p.settings["synthesis_seed"], p.settings["blend_mm"]) == (4, 11, 3.0)

    ui.synthesizeButton.click()
    assert p.busy, p.state.error
    assert ui.synthesizeButton.text == "Cancel" and ui.synthesizeButton.enabled and ui.applyButton.text == "Cancel"
    assert p.wait(timeout=120) == "done", p.state.error
    assert ui.synthesizeButton.text == "Synthesize" and ui.synthesizeButton.enabled
    job = _job(widget)
    assert set(job["inputs"]) == {"t1n", "concentration"} and job["params"] == {"steps": 4, "seed": 11, "samples": 2, "blend_mm": 3.0}
    assert ui.synthesisLabel.text == p.state.synthesis_text
    assert ui.synthesisLabel.text.startswith(f"t1n, t1c, t2w, t2f from concentration {p.concentration.GetName()!r}: ")
    assert ui.synthesisLabel.text.endswith("cm³ (4 steps, seed 11)")
    results = {k: p.node(v) for k, v in p.state.results.items()}
    assert {k: n.GetName() for k, n in results.items()} == {k: f"t1n synthetic {k}" for k in ("t1n", "t1c", "t2w", "t2f", "seg")}
    assert {layers[0] for layers in view_layers(p.ctx).values()} == {results["t1c"].GetID()}
    assert ui.beforeAfterButton.enabled and ui.statusLabel.text.startswith("Synthesis 1 done in ")
    assert not stand_in.errors(), stand_in.errors()


def test_a_label_map_chosen_as_seg_is_the_labels_and_cancel_stops_the_run(widget, stand_in):
    from tumorgen_slicer.context import SceneContext
    from tumorgen_slicer.nodes import add_volume

    p, ui = widget.presenter, widget.ui
    labels = np.zeros(GRID.size, np.uint8)
    labels[8:16, 8:16, 8:16], labels[10:14, 10:14, 10:14] = 2, 3
    seg = add_volume(SceneContext.from_slicer(), Volume(labels, GRID), "case-seg", labelmap=True)
    ui.segSelector.setCurrentNode(seg)  # chosen in the Inputs panel
    assert p.input_node("seg") is seg and ui.synthesisLabelsLabel.text == "seg: case-seg" and ui.synthesizeButton.enabled

    ui.synthesisStepsSpinBox.value = 1000  # 30 s of stand-in sampling
    nodes = p.ctx.scene.GetNumberOfNodesByClass("vtkMRMLVolumeNode")
    ui.synthesizeButton.click()
    assert p.busy and ui.synthesizeButton.text == "Cancel", p.state.error
    while p.poll() and p.state.progress == 0.0:  # until the job is sampling
        time.sleep(0.05)
    ui.synthesizeButton.click()  # Cancel
    assert p.wait(timeout=60) == "cancelled"
    assert set(_job(widget)["inputs"]) == {"t1n", "seg"}
    assert ui.synthesizeButton.text == "Synthesize" and ui.statusLabel.text == "Synthesis 1 cancelled" and ui.synthesisLabel.text == ""
    assert p.state.results == {} and p.ctx.scene.GetNumberOfNodesByClass("vtkMRMLVolumeNode") == nodes
    assert not stand_in.errors(), stand_in.errors()
