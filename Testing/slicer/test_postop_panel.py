"""(g) The Post-operative prediction panel on the module's own widget: Predict starts the presenter's prediction, the
retrieved cases fill the list with their scores, Side by side and Show prediction change the views.

The prediction runs as the test task ``test_postop`` (Testing/support/tumorgen_test_tasks.py) on a small synthetic T1.
"""

from __future__ import annotations

import numpy as np
import pytest
from scene_testing import add_slice_views, fake_postop_starter, view_layers
from slicer_stand_in.testing import module_paths

from tumorgen.volume import Grid, Volume

MODULE, UI = module_paths()


@pytest.fixture
def widget(stand_in, tmp_path):
    from tumorgen_slicer.context import SceneContext
    from tumorgen_slicer.nodes import add_volume

    module = stand_in.load_module(MODULE)
    module.create_widget()
    module.setup()
    module.enter()
    widget = module.widget
    widget.presenter.runs.starter = fake_postop_starter
    widget.presenter.checks_backend = False  # the stand-in tasks run on this interpreter: nothing to check
    widget.presenter.runs.work_dir = tmp_path / "runs"
    ctx = SceneContext.from_slicer()
    add_slice_views(ctx)
    grid = Grid(size=(24, 24, 24), spacing=(2.0, 2.0, 2.0), origin=(-23.0, -23.0, -23.0), direction=(1, 0, 0, 0, 1, 0, 0, 0, 1))
    radius = np.linalg.norm(np.indices(grid.size) - 11.5, axis=0)
    t1n = add_volume(ctx, Volume(np.where(radius < 10, 600.0, 0.0).astype(np.float32), grid), "t1n")
    assert widget.presenter.set_input("t1n", t1n)
    yield widget
    module.exit()


def test_predict_fills_the_retrieved_cases_and_side_by_side_shows_them(widget, stand_in):
    p, ui = widget.presenter, widget.ui
    assert p.new_concentration() and p.configure({"blob_amplitude": 1.0, "blob_sigma_mm": 4.0}) and p.add_blob((0.0, 0.0, 0.0))
    assert p.create_box(), p.state.error
    assert not ui.sideBySideButton.enabled and ui.retrievedComboBox.count == 0
    ui.postopKSpinBox.value = 2  # through the parameter node into the presenter
    assert p.settings["postop_k"] == 2

    ui.predictButton.click()
    assert p.busy, p.state.error
    assert ui.predictButton.text == "Cancel" and ui.applyButton.text == "Cancel"
    assert p.wait(timeout=120) == "done", p.state.error
    assert ui.predictButton.text == "Predict"
    assert [ui.retrievedComboBox.itemText(i) for i in range(ui.retrievedComboBox.count)] == ["1. sim-001 (IoU 0.50)",
                                                                                             "2. sim-002 (IoU 0.25)"]
    assert ui.postopLabel.text == p.state.postop_summary and ui.postopLabel.text.startswith("cavity ")
    assert ui.sideBySideButton.enabled and ui.showPredictionButton.enabled

    ui.retrievedComboBox.currentIndex = 1
    ui.sideBySideButton.click()
    results = p.state.results
    assert p.state.side_by_side == 2, p.state.error
    layers = view_layers(p.ctx)
    assert [layers[name][0] for name in ("Red", "Yellow", "Green")] == [results["postop"], results["retrieved-2-post"],
                                                                         results["retrieved-2-pre"]]
    ui.showPredictionButton.click()
    assert p.state.side_by_side == 0 and {layer[0] for layer in view_layers(p.ctx).values()} == {results["postop"]}
    assert not stand_in.errors(), stand_in.errors()
