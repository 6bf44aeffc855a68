"""(h) The Follow-up panel on the module's own widget: its controls take their ranges and choices from the schema, the
series table follows the presenter's, the day slider shows the default (latest + 90) until it is moved, and Predict
follow-up starts the presenter's prediction, turns into Cancel while it runs and fills the summary.

The prediction runs as the test task ``test_followup`` (Testing/support/tumorgen_test_tasks.py) on a small synthetic T1.
"""

from __future__ import annotations

import numpy as np
import pytest
from scene_testing import add_slice_views, fake_starter
from slicer_stand_in.testing import module_paths

from tumorgen.settings import FOLLOWUP
from tumorgen.volume import Grid, Volume

MODULE, UI = module_paths()
#: The panel's controls of the follow-up settings that the parameter node binds (optional ones are bound by the widget).
BOUND = {"growth_law": "growthLawComboBox", "route": "routeComboBox", "followup_samples": "followupSamplesSpinBox", "followup_seed": "followupSeedSpinBox",
         "draws": "drawsSpinBox", "n_boot": "nBootSpinBox", "interval": "intervalSpinBox", "followup_d_white": "followupDWhiteSpinBox",
         "followup_rho": "followupRhoSpinBox", "followup_steps": "followupStepsSpinBox", "guided_steps": "guidedStepsSpinBox", "guidance": "guidanceSpinBox",
         "followup_strength": "followupStrengthSpinBox", "followup_margin_mm": "followupMarginSpinBox",
         "followup_resect": "followupResectCheckBox", "recalibrate": "recalibrateCheckBox"}


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
    grid = Grid(size=(24, 24, 24), spacing=(2.0, 2.0, 2.0), origin=(-23.0, -23.0, -23.0), direction=(1, 0, 0, 0, 1, 0, 0, 0, 1))
    radius = np.linalg.norm(np.indices(grid.size) - 11.5, axis=0)
    t1n = add_volume(ctx, Volume(np.where(radius < 10, 600.0, 0.0).astype(np.float32), grid), "t1n")
    assert widget.presenter.set_input("t1n", t1n)
    yield widget
    module.exit()


def test_the_panel_shows_the_schema_s_ranges_and_choices(widget):
    from tumorgen_slicer.panel_settings import FIELDS_BY_KEY

    ui = widget.ui
    assert ui.followupCollapsibleButton.text == "Follow-up" and ui.followupAdvancedCollapsibleButton.collapsed
    for key, name in BOUND.items():
        control, setting = getattr(ui, name), FIELDS_BY_KEY[key].setting
        assert control.property("SlicerParameterName") == key
        if setting.choices is not None:
            assert [control.itemText(i) for i in range(control.count)] == list(setting.choices) and control.currentText == setting.default
        elif setting.type is bool:
            assert control.checked == setting.default
        else:
            assert (control.minimum, control.maximum, control.value) == (setting.minimum, setting.maximum, setting.default), key
    day, rt_start = FOLLOWUP["day"], FOLLOWUP["rt_start"]
    slider = ui.followupDaySlider
    assert (slider.minimum, slider.maximum, slider.singleStep, slider.decimals) == (day.minimum, day.maximum, day.step, day.decimals)
    assert (ui.followupRtSpinBox.minimum, ui.followupRtSpinBox.maximum) == (rt_start.minimum, rt_start.maximum)
    assert not ui.followupRtCheckBox.checked and not ui.followupRtSpinBox.enabled
    assert [ui.followupSeriesTable.horizontalHeaderItem(c).text() for c in range(2)] == ["Day", "Size (cm³)"]
    assert ui.followupDayLabel.text == "latest + 90 (add the series first)" and not ui.followupPlotButton.enabled


def test_the_series_the_day_and_a_prediction_through_the_panel(widget, stand_in):
    p, ui = widget.presenter, widget.ui
    assert p.new_concentration() and p.configure({"blob_amplitude": 1.0, "blob_sigma_mm": 4.0}) and p.add_blob((0.0, 0.0, 0.0))
    table = ui.followupSeriesTable
    for day, size in ((60, 3.0), (0, 2.0), (30, 2.2)):
        ui.followupRowDaySpinBox.value, ui.followupRowSizeSpinBox.value = day, size
        ui.addSeriesRowButton.click()
    assert [(table.item(r, 0).text(), table.item(r, 1).text()) for r in range(table.rowCount)] == [("0", "2"), ("30", "2.2"), ("60", "3")]
    table.setCurrentCell(1, 0)
    ui.removeSeriesRowButton.click()
    assert [r["day"] for r in p.state.series] == [0.0, 60.0] and table.rowCount == 2
    ui.removeSeriesRowButton.click()  # the current row went with the removed one: now row 1 of 2, day 60
    assert [r["day"] for r in p.state.series] == [0.0] and table.rowCount == 1
    ui.followupRowDaySpinBox.value = 60
    ui.addCurrentButton.click()
    assert p.state.series[-1] == {"day": 60.0, "size": round(p.state.tumor_cm3, 4)}, p.state.error

    # the day: the default shown until the slider moves, then the chosen day; "Latest + 90" goes back
    assert ui.followupDaySlider.value == 150 and p.settings["followup_day"] is None
    assert ui.followupDayLabel.text == "latest + 90 = day 150" and not ui.followupDefaultDayButton.enabled
    # the slider spans the latest scan (day 60) to a year after it: day 150 a quarter of the way, not at the far left
    assert (ui.followupDaySlider.minimum, ui.followupDaySlider.maximum) == p.followup_day_range() == (60, 420)
    ui.followupDaySlider.value = 200
    assert p.settings["followup_day"] == 200 and ui.followupDayLabel.text == "day 200 (latest + 90 = day 150)"
    assert (ui.followupDaySlider.minimum, ui.followupDaySlider.maximum) == (60, 420)
    ui.followupDefaultDayButton.click()
    assert p.settings["followup_day"] is None and ui.followupDaySlider.value == 150
    ui.followupRtCheckBox.checked = True
    ui.followupRtSpinBox.value = 30
    assert p.settings["rt_start"] == 30 and ui.followupRtSpinBox.enabled
    ui.followupRtCheckBox.checked = False
    assert p.settings["rt_start"] is None
    ui.followupSamplesSpinBox.value = 2  # through the parameter node into the presenter
    assert p.settings["followup_samples"] == 2

    ui.followupPredictButton.click()
    assert p.busy, p.state.error
    assert ui.followupPredictButton.text == "Cancel" and ui.applyButton.text == "Cancel"
    assert p.wait(timeout=120) == "done", p.state.error
    assert ui.followupPredictButton.text == "Predict follow-up"
    assert ui.followupLabel.text == p.state.followup_text and ui.followupLabel.text.startswith("day 150: forecast ")
    assert ui.followupPlotButton.enabled and p.state.followup_days == [60.0, 150.0]
    ui.followupPlotButton.click()
    assert p.state.error == ""
    assert not stand_in.errors(), stand_in.errors()
