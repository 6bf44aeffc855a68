"""TumorGen: generate brain-tumor MRI under biophysical and clinical control.

The desktop front end. It stays thin: the engine (`tumorgen`, in
TumorGenLib/) does the work in its own process, and the scene logic turns
nodes into job files and results back into nodes. For now the module shows
where the engine is and whether it can be imported; the panels arrive with
the tasks they drive.
"""

from __future__ import annotations

import os
import sys

import slicer
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)

MODULE_DIR = os.path.dirname(os.path.abspath(__file__))
ENGINE_DIR = os.path.normpath(os.path.join(MODULE_DIR, "..", "TumorGenLib"))


class TumorGen(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "TumorGen"
        self.parent.categories = ["Segmentation"]
        self.parent.dependencies = []
        self.parent.contributors = ["TumorGen developers"]
        self.parent.helpText = (
            "Grow and edit tumor concentration fields, inpaint healthy or tumor tissue, "
            "predict post-operative and follow-up scans, and synthesise images from label maps. "
            "The engine runs in a separate process; inputs are never modified."
        )
        self.parent.acknowledgementText = "TumorGen is built on PyTorch, MONAI, SimpleITK and 3D Slicer."


class TumorGenLogic(ScriptedLoadableModuleLogic):
    """Finds the engine. Everything else lives in the scene logic."""

    def engineDirectory(self) -> str:
        return ENGINE_DIR

    def engineStatus(self) -> str:
        if ENGINE_DIR not in sys.path and os.path.isdir(ENGINE_DIR):
            sys.path.insert(0, ENGINE_DIR)
        try:
            import tumorgen
        except ImportError as exc:
            return f"engine not importable from {ENGINE_DIR}: {exc}"
        return f"tumorgen {tumorgen.__version__} at {os.path.dirname(tumorgen.__file__)}"


class TumorGenWidget(ScriptedLoadableModuleWidget):
    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        import qt

        self.logic = TumorGenLogic()
        self.statusLabel = qt.QLabel(self.logic.engineStatus())
        self.statusLabel.wordWrap = True
        self.layout.addWidget(self.statusLabel)
        self.layout.addStretch(1)


class TumorGenTest(ScriptedLoadableModuleTest):
    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_engine_is_found()

    def test_engine_is_found(self):
        status = TumorGenLogic().engineStatus()
        self.assertTrue(status.startswith("tumorgen "), status)
