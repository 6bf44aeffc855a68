"""TumorGen: generate brain-tumor MRI under biophysical and clinical control.

The desktop front end. It only binds: the panels (Resources/UI/TumorGen.ui)
feed a parameter node, the parameter node feeds the presenter
(``tumorgen_slicer.presenter.TumorGenPresenter``), buttons call one presenter
method each, and presenter notifications update the progress bar, the Apply /
Cancel button, the status line and the log. The presenter and the engine
(``tumorgen``) live in TumorGenLib; the engine runs in its own process, so this
GUI process imports only what 3D Slicer ships.

The parameter node's fields, their ranges, steps and choices come from the
engine's settings schemas (``tumorgen.settings``), so a spin box can never hold
a value the engine would refuse. Needs 3D Slicer 5.10 or newer (Python ≥ 3.10).
"""

from __future__ import annotations

import os
import pathlib
import sys
from typing import Annotated, Optional

import qt
import slicer
import vtk
from slicer import vtkMRMLLabelMapVolumeNode, vtkMRMLMarkupsFiducialNode, vtkMRMLMarkupsROINode, vtkMRMLScalarVolumeNode
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

MODULE_DIR = os.path.dirname(os.path.abspath(__file__))
MINIMUM_PYTHON = (3, 10)
MINIMUM_SLICER = (5, 10)


def _engine_dir() -> str:
    """Where the ``tumorgen`` and ``tumorgen_slicer`` packages are: beside this file once installed, TumorGenLib in a source tree."""
    for candidate in (MODULE_DIR, os.path.normpath(os.path.join(MODULE_DIR, "..", "TumorGenLib"))):
        if os.path.isdir(os.path.join(candidate, "tumorgen_slicer")):
            return candidate
    return os.path.normpath(os.path.join(MODULE_DIR, "..", "TumorGenLib"))


def unsupported_reason() -> str:
    """Why this Slicer cannot run TumorGen ("" when it can): the engine needs Python 3.10+, which Slicer 5.10 ships."""
    if sys.version_info[:2] < MINIMUM_PYTHON:
        return (f"TumorGen needs 3D Slicer {MINIMUM_SLICER[0]}.{MINIMUM_SLICER[1]} or newer (Python "
                f"{MINIMUM_PYTHON[0]}.{MINIMUM_PYTHON[1]}+); this Slicer runs Python {sys.version.split()[0]}.")
    version = (int(slicer.app.majorVersion), int(slicer.app.minorVersion))
    if version < MINIMUM_SLICER:
        return f"TumorGen needs 3D Slicer {MINIMUM_SLICER[0]}.{MINIMUM_SLICER[1]} or newer; this is {version[0]}.{version[1]}."
    return ""


ENGINE_DIR = _engine_dir()
if ENGINE_DIR not in sys.path:
    sys.path.insert(0, ENGINE_DIR)
UNSUPPORTED = unsupported_reason()


class TumorGen(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "TumorGen"
        self.parent.categories = ["Segmentation"]
        self.parent.dependencies = []
        self.parent.contributors = ["TumorGen developers"]
        self.parent.helpText = (
            "Grow and edit tumor concentration fields, draw a resection box and inpaint healthy or tumor tissue in it, or "
            "predict the scan after resecting it, guided by similar cases from a case library, or predict the follow-up scan at "
            "a day from a tumor-size series (its time points browse as a sequence, its forecast shows in a plot), or "
            "synthesize the four MR contrasts (t1n, t1c, t2w, t2f) of the current labels in the t1n: a labelled scan. "
            "The engine runs in a separate process; input volumes are never modified. Needs 3D Slicer 5.10 or newer; "
            "the first run of each task offers to install what it needs into TumorGen's own Python environment (made from "
            "Slicer's Python; Slicer's own packages are never touched), or uses a Python you choose."
        )
        self.parent.acknowledgementText = "TumorGen is built on PyTorch, MONAI, SimpleITK and 3D Slicer."


#: The parameter node's node fields (a key of ``TumorGenPresenter.configure`` each).
NODE_FIELDS = {
    **{role: Optional[vtkMRMLScalarVolumeNode] for role in ("t1n", "t1c", "t2w", "t2f", "csf", "gm", "wm")},
    "seg": Optional[vtkMRMLLabelMapVolumeNode | slicer.vtkMRMLSegmentationNode],  # a segmentation: labels by segment name
    "box": Optional[vtkMRMLMarkupsROINode],
    "concentration": Optional[vtkMRMLScalarVolumeNode],
    "seed_points": Optional[vtkMRMLMarkupsFiducialNode],
}


def _annotated(setting):
    """The parameter-node type of a schema setting: its range (binding a spin box sets the widget's range from it;
    without one Slicer's connector opens it to ±2³¹ or ±inf), or its choices.

    Steps and decimals are the .ui's (the same as the schema's; a test compares them): as annotations they would
    be applied too, but Slicer's wrapper logs them as unused on every load.
    """
    if setting.choices is not None:
        return Annotated[str, Choice(list(setting.choices))]
    if setting.type is bool:
        return bool
    return Annotated[setting.type, WithinRange(setting.minimum, setting.maximum)]


def build_parameter_node_class():
    """The ``@parameterNodeWrapper`` class of the panels, built from the engine's settings schemas.

    Optional settings (grow for a number of days, another weights folder) have no control in the panels and
    keep their defaults; the backend's Python is a path (the path line edit's connector takes ``pathlib`` types).
    """
    from tumorgen_slicer.panel_settings import PANEL_FIELDS

    annotations, defaults = dict(NODE_FIELDS), {}
    for field in PANEL_FIELDS:
        if not field.setting.optional:
            annotations[field.key] = _annotated(field.setting)
            defaults[field.key] = field.setting.default
    annotations.update(use_slicer_python=bool, python=pathlib.Path)
    defaults.update(use_slicer_python=True, python=pathlib.Path())
    namespace = {"__annotations__": annotations, "__module__": __name__, **defaults,
                 "__doc__": "What the panels show; every field is a key of ``TumorGenPresenter.configure``."}
    return parameterNodeWrapper(type("TumorGenParameterNode", (), namespace))


TumorGenParameterNode = None if UNSUPPORTED else build_parameter_node_class()
#: The parameter node's field names, in panel order.
PARAMETERS = () if UNSUPPORTED else tuple(TumorGenParameterNode.allParameters)


def presenter_value(name: str, value):
    """A parameter-node value as the presenter takes it (an empty path means no interpreter chosen)."""
    if name == "python":
        return "" if value is None or str(value) in ("", ".") else str(value)
    return value


class TumorGenLogic(ScriptedLoadableModuleLogic):
    """Creates the presenter on Slicer's scene; all behaviour is in ``tumorgen_slicer``."""

    def getParameterNode(self):
        return TumorGenParameterNode(super().getParameterNode())

    def presenter(self):
        from tumorgen_slicer.context import SceneContext
        from tumorgen_slicer.presenter import TumorGenPresenter

        return TumorGenPresenter(SceneContext.from_slicer(), work_dir=os.path.join(slicer.app.temporaryPath, "TumorGen"))

    def engineStatus(self) -> str:
        try:
            import tumorgen
        except ImportError as exc:
            return f"engine not importable from {ENGINE_DIR}: {exc}"
        return f"tumorgen {tumorgen.__version__} at {os.path.dirname(tumorgen.__file__)}"


class TumorGenWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self._parameterNode = None
        self._guiConnections = None
        self._syncing = False
        self._logShown = 0
        self.presenter = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        if UNSUPPORTED:
            self.layout.addWidget(qt.QLabel(UNSUPPORTED))
            return
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/TumorGen.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.logic = TumorGenLogic()
        self.presenter = self.logic.presenter()
        # inside Slicer a task's first run checks the backend's Python and asks before installing (onBackendQuestion)
        self.presenter.add_listener(self.onPresenterChanged)
        self.timer = qt.QTimer()
        self.timer.setInterval(100)
        self.timer.connect("timeout()", self.presenter.poll)

        p = self.presenter
        for button, action in (
            (self.ui.loadSampleButton, p.load_sample),
            (self.ui.createBoxButton, p.create_box),
            (self.ui.fitBoxButton, p.fit_box_to_tumor),
            (self.ui.growButton, p.grow),
            (self.ui.newConcentrationButton, p.new_concentration),
            (self.ui.addBlobButton, p.add_blob),
            (self.ui.eraseBlobButton, p.erase_blob),
            (self.ui.scaleInBoxButton, p.scale_in_box),
            (self.ui.smoothButton, p.smooth),
            (self.ui.zeroInBoxButton, p.zero_in_box),
            (self.ui.undoButton, p.undo),
            (self.ui.checkBackendButton, p.check_backend),
        ):
            button.connect("clicked()", lambda action=action: action())
        self.ui.applyButton.connect("clicked()", self.onApply)
        self.ui.predictButton.connect("clicked()", self.onPredict)
        self.ui.sideBySideButton.connect("clicked()", lambda: p.show_retrieved(self.ui.retrievedComboBox.currentIndex + 1))
        self.ui.showPredictionButton.connect("clicked()", lambda: p.show_result(True))
        self.ui.beforeAfterButton.connect("toggled(bool)", lambda before: p.show_result(not before))
        self.ui.followupPredictButton.connect("clicked()", self.onPredictFollowup)
        self.ui.synthesizeButton.connect("clicked()", self.onSynthesize)
        self.ui.addSeriesRowButton.connect(
            "clicked()", lambda: p.add_series_row(self.ui.followupRowDaySpinBox.value, self.ui.followupRowSizeSpinBox.value))
        self.ui.addCurrentButton.connect("clicked()", lambda: p.add_current_to_series(self.ui.followupRowDaySpinBox.value))
        self.ui.removeSeriesRowButton.connect("clicked()", lambda: p.remove_series_row(self.ui.followupSeriesTable.currentRow()))
        self.ui.loadSeriesButton.connect("clicked()", self.onLoadSeries)
        self.ui.followupDefaultDayButton.connect("clicked()", lambda: p.configure({"followup_day": None}))
        self.ui.followupPlotButton.connect("clicked()", lambda: p.show_forecast_plot())
        # the day and the radiotherapy start may be unset (None): bound here, not through the parameter node
        self.ui.followupDaySlider.connect("valueChanged(double)", self.onFollowupDay)
        self.ui.followupRtCheckBox.connect("toggled(bool)", self.onRtStart)
        self.ui.followupRtSpinBox.connect("valueChanged(double)", self.onRtStart)
        self.ui.statusLabel.text = self.logic.engineStatus()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.initializeParameterNode()

    def cleanup(self) -> None:
        if self.presenter is None:
            return
        self.timer.stop()
        self.presenter.shutdown()  # the module goes away: kill a running job now, without waiting for it
        self.removeObservers()

    def enter(self) -> None:
        if self.presenter is not None:
            self.initializeParameterNode()

    def exit(self) -> None:
        self.setParameterNode(None)

    def onSceneStartClose(self, caller, event) -> None:
        self.presenter.scene_closed()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        # the place widget's buttons work only with a point list to place into
        self.ui.seedPlaceWidget.setCurrentNode(self.presenter.seed_points())

    def setParameterNode(self, parameterNode) -> None:
        if self._parameterNode and self._guiConnections is not None:
            self._parameterNode.disconnectGui(self._guiConnections)
            self._guiConnections = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)
        self._parameterNode = parameterNode
        if self._parameterNode:
            self._guiConnections = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)
            self.onParameterNodeModified()

    # -- binding ----------------------------------------------------------------------------------------
    def onParameterNodeModified(self, caller=None, event=None) -> None:
        """Panels -> presenter."""
        if self._syncing or not self._parameterNode:
            return
        self.presenter.configure({name: presenter_value(name, getattr(self._parameterNode, name)) for name in PARAMETERS})

    def onPresenterChanged(self, kind, presenter) -> None:
        """Presenter -> panels."""
        state = presenter.state
        for line in state.log.since(self._logShown):  # every message, with its level, however many came at once
            self.ui.logTextEdit.appendPlainText(line.labelled)
        self._logShown = state.log.count
        if kind == "question":
            # never inside the poll that brought it: a modal dialog there would let the timer run the poll inside itself
            qt.QTimer.singleShot(0, self.onBackendQuestion)
            return
        self.ui.progressBar.value = round(100 * state.progress)
        self.ui.statusLabel.text = state.error or state.message
        if kind in ("progress", "log"):  # during a run: nothing else changed
            return
        self.ui.applyButton.text = "Cancel" if presenter.busy else "Apply"
        self.ui.predictButton.text = "Cancel" if presenter.busy else "Predict"
        self.ui.beforeAfterButton.enabled = bool(state.results)
        self.ui.checkLabel.text = state.check
        self.ui.checkLabel.styleSheet = "color: #c62828;" if state.check_doubtful else ""
        self.ui.undoButton.enabled = state.undo_depth > 0
        self.ui.postopLabel.text = state.postop_summary
        cases = [case["label"] for case in state.retrieved]
        if [self.ui.retrievedComboBox.itemText(i) for i in range(self.ui.retrievedComboBox.count)] != cases:
            self.ui.retrievedComboBox.clear()
            self.ui.retrievedComboBox.addItems(cases)
        self.ui.sideBySideButton.enabled = self.ui.showPredictionButton.enabled = bool(cases)
        self.ui.followupPredictButton.text = "Cancel" if presenter.busy else "Predict follow-up"
        self.ui.followupLabel.text = state.followup_text
        self.ui.followupPlotButton.enabled = bool(state.forecast_rows)
        self.ui.synthesizeButton.text = "Cancel" if presenter.busy else "Synthesize"
        self.ui.synthesizeButton.enabled = presenter.busy or bool(presenter.input_node("t1n") is not None and state.synthesis_labels)
        self.ui.synthesisLabelsLabel.text = state.synthesis_labels or "none: choose a segmentation (seg), or grow or paint a tumor"
        self.ui.synthesisLabel.text = state.synthesis_text
        self.ui.gpuLabel.text = f"GPU: {state.gpu}" if state.gpu else "GPU: not checked yet (Check packages)"
        if presenter.busy:
            self.timer.start()
        else:
            self.timer.stop()
        if kind in ("state", "finished") and self._parameterNode:
            self._syncing = True
            try:
                for name, node in presenter.bound_nodes().items():
                    if getattr(self._parameterNode, name) is not node:
                        setattr(self._parameterNode, name, node)
                self._showFollowupPanel(presenter)
            finally:
                self._syncing = False
            seeds = presenter.bound_nodes()["seed_points"]
            if seeds is not None and self.ui.seedPlaceWidget.currentNode() is not seeds:
                self.ui.seedPlaceWidget.setCurrentNode(seeds)

    def onBackendQuestion(self) -> None:
        """Ask the backend's question (what to install, how big) in a dialog, outside any poll, and pass on the answer."""
        question = self.presenter.state.question
        if question:
            self.presenter.answer_backend(slicer.util.confirmOkCancelDisplay(question, windowTitle="TumorGen: install the backend"))

    def onApply(self) -> None:
        if self.presenter.busy:
            self.presenter.cancel()
        else:
            self.presenter.apply()

    def onPredict(self) -> None:
        if self.presenter.busy:
            self.presenter.cancel()
        else:
            self.presenter.predict_postop()

    def onPredictFollowup(self) -> None:
        if self.presenter.busy:
            self.presenter.cancel()
        else:
            self.presenter.predict_followup()

    def onSynthesize(self) -> None:
        if self.presenter.busy:
            self.presenter.cancel()
        else:
            self.presenter.synthesize()

    def onLoadSeries(self) -> None:
        path = qt.QFileDialog.getOpenFileName(slicer.util.mainWindow(), "Load a tumor-size series", "", "CSV files (*.csv);;All files (*)")
        if path:
            self.presenter.load_series(path)

    def onFollowupDay(self, value) -> None:
        if not self._syncing:
            self.presenter.configure({"followup_day": value})

    def onRtStart(self, *_) -> None:
        if not self._syncing:
            self.presenter.configure({"rt_start": self.ui.followupRtSpinBox.value if self.ui.followupRtCheckBox.checked else None})

    def _showFollowupPanel(self, presenter) -> None:
        """The series table, the day (the default until one is chosen) and the radiotherapy start, from the presenter
        (called with ``_syncing`` set: these widgets feed the presenter only when the user moves them)."""
        state, settings = presenter.state, presenter.settings
        table = self.ui.followupSeriesTable
        shown = [(table.item(r, 0).text(), table.item(r, 1).text()) for r in range(table.rowCount) if table.item(r, 1)]
        rows = [(f"{row['day']:g}", f"{row['size']:g}") for row in state.series]
        if shown != rows:
            table.setRowCount(len(rows))
            for r, cells in enumerate(rows):
                for c, text in enumerate(cells):
                    table.setItem(r, c, qt.QTableWidgetItem(text))
        day, default = settings["followup_day"], state.followup_default_day
        self.ui.followupDaySlider.setRange(*presenter.followup_day_range())  # around the latest scan and the day
        if day is not None or default is not None:
            self.ui.followupDaySlider.value = day if day is not None else default
        default_text = f"latest + 90 = day {default:g}" if default is not None else "latest + 90 (add the series first)"
        self.ui.followupDayLabel.text = default_text if day is None else f"day {day:g} ({default_text})"
        self.ui.followupDefaultDayButton.enabled = day is not None
        rt_start = settings["rt_start"]
        self.ui.followupRtCheckBox.checked = rt_start is not None
        self.ui.followupRtSpinBox.enabled = rt_start is not None
        if rt_start is not None:
            self.ui.followupRtSpinBox.value = rt_start


class TumorGenTest(ScriptedLoadableModuleTest):
    """Run inside 3D Slicer (Reload and Test): drives the presenter through a healthy inpainting of the sample, a
    post-operative prediction for a box around a tumor grown in it, a follow-up of a grown tumor, and the four contrasts
    synthesized from a grown tumor's labels."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_engine_is_found()
        self.setUp()
        self.test_healthy_inpainting_of_the_sample()
        self.setUp()
        self.test_postop_prediction_of_a_grown_tumor()
        self.setUp()
        self.test_followup_of_a_grown_tumor()
        self.setUp()
        self.test_synthesis_of_a_grown_tumor()

    def _presenter_with_sample(self, spacing_mm: float):
        """A presenter on the scene with the sample loaded (a backend run), and the event pump to wait with."""
        presenter = TumorGenLogic().presenter()
        pump = slicer.app.processEvents
        self.assertTrue(presenter.load_sample(spacing_mm=spacing_mm), presenter.state.error)
        # the first run of each task makes TumorGen's environment and installs what the task needs, if it must (yes)
        self.assertEqual(presenter.wait(timeout=1800, pump=pump, answer=True), "done", presenter.state.error)
        return presenter, pump

    def _sample_with_grown_tumor(self, volume_cm3: float):
        """The 1 mm sample with a tumor grown in the left frontal white matter: presenter, event pump, t1n node and its voxels."""
        presenter, pump = self._presenter_with_sample(spacing_mm=1.0)
        t1n = presenter.input_node("t1n")
        before = slicer.util.arrayFromVolume(t1n).copy()
        self.assertTrue(presenter.set_seed((-26.0, 14.0, 26.0)), presenter.state.error)
        self.assertTrue(presenter.configure({"target_volume_cm3": volume_cm3}), presenter.state.error)
        self.assertTrue(presenter.grow(), presenter.state.error)
        self.assertEqual(presenter.wait(timeout=1800, pump=pump, answer=True), "done", presenter.state.error)
        return presenter, pump, t1n, before

    def test_engine_is_found(self):
        self.assertEqual(UNSUPPORTED, "")
        status = TumorGenLogic().engineStatus()
        self.assertTrue(status.startswith("tumorgen "), status)

    def test_healthy_inpainting_of_the_sample(self):
        self.delayDisplay("Loading the sample")
        presenter, pump = self._presenter_with_sample(spacing_mm=2.0)
        t1n = presenter.input_node("t1n")
        before = slicer.util.arrayFromVolume(t1n).copy()

        self.delayDisplay("Inpainting healthy tissue in a box")
        self.assertTrue(presenter.create_box(), presenter.state.error)
        self.assertTrue(presenter.configure({"mode": "healthy", "steps": 5, "jump": 5, "resample": 2, "samples": 2}), presenter.state.error)
        self.assertTrue(presenter.apply(), presenter.state.error)
        self.assertEqual(presenter.wait(timeout=1800, pump=pump, answer=True), "done", presenter.state.error)

        result = presenter.node(presenter.state.results["inpainted"])
        self.assertIsNotNone(result)
        self.assertEqual(result.GetImageData().GetDimensions(), t1n.GetImageData().GetDimensions())
        resultMatrix, inputMatrix = vtk.vtkMatrix4x4(), vtk.vtkMatrix4x4()
        result.GetIJKToRASMatrix(resultMatrix)
        t1n.GetIJKToRASMatrix(inputMatrix)
        for r in range(4):
            for c in range(4):
                self.assertAlmostEqual(resultMatrix.GetElement(r, c), inputMatrix.GetElement(r, c), places=4)
        mask = presenter.node(presenter.state.results["mask"])
        self.assertTrue(mask.IsA("vtkMRMLLabelMapVolumeNode"))
        inside = slicer.util.arrayFromVolume(mask) > 0
        after = slicer.util.arrayFromVolume(result)
        self.assertTrue((after[~inside] == before[~inside]).all(), "voxels outside the box changed")
        self.assertTrue((slicer.util.arrayFromVolume(t1n) == before).all(), "the input was modified")
        self.delayDisplay("Healthy inpainting of the sample passed")

    def test_postop_prediction_of_a_grown_tumor(self):
        self.delayDisplay("Growing a tumor in the sample (1 mm, the post-operative model's grid)")
        presenter, pump, t1n, before = self._sample_with_grown_tumor(12.0)

        self.delayDisplay("Predicting the post-operative scan for a box around it")
        self.assertTrue(presenter.fit_box_to_tumor(), presenter.state.error)
        self.assertTrue(presenter.configure({"postop_steps": 8, "postop_samples": 2}), presenter.state.error)
        self.assertTrue(presenter.predict_postop(), presenter.state.error)
        self.assertEqual(presenter.wait(timeout=1800, pump=pump, answer=True), "done", presenter.state.error)
        result = presenter.node(presenter.state.results["postop"])
        region = presenter.node(presenter.state.results["region"])
        cavity = presenter.node(presenter.state.results["cavity"])
        self.assertEqual(result.GetImageData().GetDimensions(), t1n.GetImageData().GetDimensions())
        self.assertTrue(region.IsA("vtkMRMLLabelMapVolumeNode") and cavity.IsA("vtkMRMLLabelMapVolumeNode"))
        inside = slicer.util.arrayFromVolume(region) > 0
        self.assertTrue((slicer.util.arrayFromVolume(result)[~inside] == before[~inside]).all(), "voxels beyond the region changed")
        labels = slicer.util.arrayFromVolume(cavity)
        self.assertTrue(((labels == 0) | (labels == 4)).all(), "the cavity map holds labels other than 4")
        self.assertTrue((slicer.util.arrayFromVolume(t1n) == before).all(), "the input was modified")
        self.assertTrue(presenter.state.retrieved, "no retrieved case listed")
        self.assertTrue(presenter.show_retrieved(1), presenter.state.error)
        self.delayDisplay("Post-operative prediction passed")

    def test_followup_of_a_grown_tumor(self):
        self.delayDisplay("Growing a tumor in the sample")
        presenter, pump, t1n, before = self._sample_with_grown_tumor(8.0)

        self.delayDisplay("Predicting the follow-up at day 150 from two scans (day 0 and today, day 60)")
        self.assertTrue(presenter.add_series_row(0, 5.0), presenter.state.error)
        self.assertTrue(presenter.add_current_to_series(60), presenter.state.error)
        self.assertTrue(presenter.configure({"followup_day": 150, "followup_samples": 2, "followup_steps": 8, "n_boot": 50}),
                        presenter.state.error)
        self.assertTrue(presenter.predict_followup(), presenter.state.error)
        self.assertEqual(presenter.wait(timeout=1800, pump=pump, answer=True), "done", presenter.state.error)
        followup = presenter.node(presenter.state.results["followup"])
        labels = presenter.node(presenter.state.results["labels"])
        self.assertEqual(followup.GetImageData().GetDimensions(), t1n.GetImageData().GetDimensions())
        self.assertTrue(labels.IsA("vtkMRMLLabelMapVolumeNode"))
        self.assertEqual(presenter.state.followup_summary["day"], 150.0)
        self.assertTrue(presenter.state.forecast_rows, "no forecast curve read")

        browser = presenter.node(presenter.state.followup_browser_id)
        self.assertIsNotNone(browser)
        master = browser.GetMasterSequenceNode()
        self.assertEqual(master.GetNumberOfDataNodes(), 2)
        self.assertEqual([master.GetNthIndexValue(n) for n in range(2)], ["60", "150"])
        self.assertEqual(master.GetIndexName(), "day")
        browser.SetSelectedItemNumber(0)  # back to the latest scan, as the sequence toolbar would
        slicer.app.processEvents()
        self.assertTrue((slicer.util.arrayFromVolume(browser.GetProxyNode(master)) == before).all(), "day 60 is not the latest scan")
        self.assertTrue((slicer.util.arrayFromVolume(t1n) == before).all(), "the input was modified")
        self.delayDisplay("Follow-up passed")

    def test_synthesis_of_a_grown_tumor(self):
        self.delayDisplay("Growing a tumor in the sample")
        presenter, pump, t1n, before = self._sample_with_grown_tumor(8.0)

        self.delayDisplay("Synthesizing t1n, t1c, t2w and t2f from the tumor's labels")
        self.assertEqual(presenter.state.synthesis_labels, f"concentration: {presenter.concentration.GetName()}")
        self.assertTrue(presenter.configure({"synthesis_steps": 5}), presenter.state.error)
        self.assertTrue(presenter.synthesize(), presenter.state.error)
        self.assertEqual(presenter.wait(timeout=1800, pump=pump, answer=True), "done", presenter.state.error)
        results = {key: presenter.node(node_id) for key, node_id in presenter.state.results.items()}
        self.assertEqual(set(results), {"t1n", "t1c", "t2w", "t2f", "seg"})
        inputMatrix = vtk.vtkMatrix4x4()
        t1n.GetIJKToRASMatrix(inputMatrix)
        for key, node in results.items():
            self.assertEqual(node.GetName(), f"{t1n.GetName()} synthetic {key}")
            self.assertEqual(node.IsA("vtkMRMLLabelMapVolumeNode"), key == "seg")
            self.assertEqual(node.GetImageData().GetDimensions(), t1n.GetImageData().GetDimensions())
            matrix = vtk.vtkMatrix4x4()
            node.GetIJKToRASMatrix(matrix)
            for r in range(4):
                for c in range(4):
                    self.assertAlmostEqual(matrix.GetElement(r, c), inputMatrix.GetElement(r, c), places=4)
        labels = slicer.util.arrayFromVolume(results["seg"])
        self.assertTrue((labels > 0).any() and (labels <= 3).all(), "the labels are empty or not BraTS labels")
        changed = slicer.util.arrayFromVolume(results["t1n"]) != before
        self.assertGreater(changed[labels > 0].mean(), 0.5, "the synthetic t1n kept the scan inside the tumor")
        self.assertLess(changed.mean(), 0.1, "the synthetic t1n changed the scan far from the tumor")
        for key in ("t1c", "t2w", "t2f"):
            image = slicer.util.arrayFromVolume(results[key])
            self.assertTrue(image.min() >= 0.0 and image.max() <= 1.0, f"{key} is not in [0, 1]")
        composite = slicer.app.layoutManager().sliceWidget("Red").sliceLogic().GetSliceCompositeNode()
        self.assertEqual(composite.GetBackgroundVolumeID(), results["t1c"].GetID())
        self.assertEqual(composite.GetLabelVolumeID(), results["seg"].GetID())
        self.assertTrue((slicer.util.arrayFromVolume(t1n) == before).all(), "the input was modified")
        self.delayDisplay("Synthesis passed")
