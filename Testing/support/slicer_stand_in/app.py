"""Stand-ins for the application side of Slicer (not Slicer source): ``slicer.app``, ``slicer.modules``
and what Slicer's module factory does to load a scripted module and show its panel.

The scene and logics are the real ones from slicer-core, wired as Slicer's application wires them: a
vtkMRMLScene, a vtkSlicerApplicationLogic on it (which adds the selection and interaction singletons),
the default colour nodes, and the Colors, Markups, Segmentations, SubjectHierarchy and Volumes module logics registered
with the application logic and reachable as ``slicer.modules.<name>.logic()``.

Loading and showing a module follows Base/QTGUI/qSlicerScriptedLoadableModule.cxx,
qSlicerScriptedLoadableModuleWidget.cxx and qSlicerAbstractCoreModule::createNewWidgetRepresentation at
the pinned commit: the module folder goes on ``sys.path``; the file is executed as a module registered
in ``sys.modules`` under its base name; ``<Name>(parent)`` gets the core module object (``parent.path`` is
the file); the widget class gets a panel with a QVBoxLayout; ``setup()`` runs, then the panel gets the
scene; ``enter()``/``exit()`` set ``parent.isEntered`` before calling the Python method;
``slicer.modules.<name>``, ``<Name>Instance`` and ``<Name>Widget`` are set as Slicer sets them.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import types
from pathlib import Path

from . import qt
from ._qobject import QObject, qproperty, signal
from .mrml_widgets import qSlicerScriptedLoadableModuleWidget

SLICER_VERSION = (5, 10, 0)


class CoreModule(QObject):
    """``slicer.modules.<name>``: a qSlicerAbstractCoreModule (for scripted ones, also the ``parent`` of ``<Name>(parent)``)."""

    def __init__(self, name: str, path: str = "", logic=None):
        super().__init__(None)
        self.setObjectName(name)
        self.__dict__.update(_name=name, _path=path, _logic=logic, _widget=None)
        self.title, self.categories, self.dependencies, self.contributors = name, [], [], []
        self.helpText = self.acknowledgementText = ""
        self.icon, self.hidden = qt.QIcon(), False

    name = qproperty(lambda self: self._name, None)
    path = qproperty(lambda self: self._path, None)

    def logic(self):
        return self._logic

    def widgetRepresentation(self):
        return self._widget


class ModuleManager(QObject):
    moduleAboutToBeUnloaded = signal("QString")
    moduleLoaded = signal("QString")


class _ProcessEnvironment:
    """QProcessEnvironment's reading side, as ``slicer.util.startupEnvironment`` uses it."""

    def __init__(self, values: dict) -> None:
        self._values = dict(values)

    def keys(self) -> list:
        return list(self._values)

    def value(self, name, default: str = "") -> str:
        return self._values.get(name, default)


class Application(QObject):
    """``slicer.app`` (qSlicerApplication): versions, paths, the scene, logics, settings, event processing."""

    def __init__(self, scene, app_logic, temporary_path: str):
        super().__init__(None)
        self.setObjectName("qSlicerApplication")
        self.__dict__.update(_scene=scene, _app_logic=app_logic, _tmp=temporary_path, _manager=ModuleManager(),
                             _startup=dict(os.environ))

    applicationName = qproperty(lambda self: "Slicer", None)
    applicationVersion = qproperty(lambda self: "%d.%d.%d" % SLICER_VERSION, None)
    majorVersion = qproperty(lambda self: SLICER_VERSION[0], None)
    minorVersion = qproperty(lambda self: SLICER_VERSION[1], None)
    patchVersion = qproperty(lambda self: SLICER_VERSION[2], None)
    releaseType = qproperty(lambda self: "Stable", None)
    temporaryPath = qproperty(lambda self: self._tmp, None)
    cachePath = qproperty(lambda self: os.path.join(self._tmp, "cache"), None)
    slicerHome = qproperty(lambda self: "", None)
    documentationBaseUrl = qproperty(lambda self: "https://slicer.readthedocs.io/en/5.10", None)

    def startupEnvironment(self):
        """The environment the application started with (a QProcessEnvironment: ``keys()``, ``value(key)``); here the
        process's environment when the stand-in was installed (no launcher settings to remove)."""
        return _ProcessEnvironment(self._startup)

    def moduleDocumentationUrl(self, moduleName) -> str:
        return f"{self.documentationBaseUrl}/user_guide/modules/{str(moduleName).lower()}.html"

    def mrmlScene(self):
        return self._scene

    def applicationLogic(self):
        return self._app_logic

    def moduleManager(self):
        return self._manager

    def testingEnabled(self) -> bool:
        """True, as with ``Slicer --testing``: slicer.util's dialogs return their testing answer."""
        return True

    def processEvents(self, *args) -> None:
        qt.process_timers()

    def translate(self, context, text) -> str:
        return text

    def settings(self):
        return qt.QSettings()

    userSettings = settings

    def pauseRender(self) -> None:
        pass

    def resumeRender(self) -> None:
        pass

    def layoutManager(self):
        return None


def build_scene():
    """A scene and its logics, as the Slicer application sets them up (slicer-core classes)."""
    import slicer

    scene = slicer.vtkMRMLScene()
    crosshair = slicer.vtkMRMLCrosshairNode()
    crosshair.SetCrosshairName("default")
    scene.AddNode(crosshair)
    app_logic = slicer.vtkSlicerApplicationLogic()
    app_logic.SetMRMLScene(scene)
    app_logic.GetColorLogic().SetMRMLScene(scene)
    app_logic.GetColorLogic().AddDefaultColorNodes()
    logics = {}
    for name, cls in (("Colors", slicer.vtkMRMLColorLogic), ("Markups", slicer.vtkSlicerMarkupsLogic),
                      ("Segmentations", slicer.vtkSlicerSegmentationsModuleLogic),
                      ("SubjectHierarchy", slicer.vtkSlicerSubjectHierarchyModuleLogic),
                      ("Volumes", slicer.vtkSlicerVolumesLogic)):
        logic = cls()
        logic.SetMRMLScene(scene)
        logic.SetMRMLApplicationLogic(app_logic)
        app_logic.SetModuleLogic(name, logic)
        logics[name] = logic
    return scene, app_logic, logics


class ScriptedModule:
    """One scripted module, loaded and shown the way Slicer's module factory and module panel do it."""

    def __init__(self, path, scene):
        import slicer

        self.path = str(Path(path).resolve())
        self.name = Path(self.path).stem
        self.scene = scene
        module_dir = os.path.dirname(self.path)
        if module_dir not in sys.path:  # qSlicerScriptedLoadableModuleFactory: appendPythonPaths(module dir)
            sys.path.append(module_dir)
        spec = importlib.util.spec_from_file_location(self.name, self.path)  # qSlicerScriptedUtils::loadSourceAsModule
        self.python_module = importlib.util.module_from_spec(spec)
        sys.modules[self.name] = self.python_module
        spec.loader.exec_module(self.python_module)
        self.core = CoreModule(self.name, self.path)
        self.instance = getattr(self.python_module, self.name)(self.core)
        setattr(slicer.modules, self.name.lower(), self.core)
        setattr(slicer.modules, f"{self.name}Instance", self.instance)
        setattr(slicer.moduleNames, self.name, self.name)
        self.panel = None
        self.widget = None

    def create_widget(self):
        """The panel and ``<Name>Widget(panel)`` (qSlicerScriptedLoadableModuleWidget::setPythonSource)."""
        import slicer

        self.panel = qSlicerScriptedLoadableModuleWidget()
        self.panel.setObjectName(f"{self.name}ModuleWidget")
        self.core._widget = self.panel
        self.widget = getattr(self.python_module, f"{self.name}Widget")(self.panel)
        setattr(slicer.modules, f"{self.name}Widget", self.widget)
        return self.widget

    def setup(self) -> None:
        """setModule -> setup(); then the panel gets the scene (createNewWidgetRepresentation)."""
        try:
            self.widget.setup()
        finally:
            self.panel.setMRMLScene(self.scene)

    def enter(self) -> None:
        self.panel._entered = True
        self.widget.enter()

    def exit(self) -> None:
        self.panel._entered = False
        self.widget.exit()

    def unload(self) -> None:
        """qSlicerModuleManager emits moduleAboutToBeUnloaded (ScriptedLoadableModuleWidget calls cleanup())."""
        import slicer

        slicer.app.moduleManager().moduleAboutToBeUnloaded.emit(self.name)


def make_modules(logics) -> types.SimpleNamespace:
    modules = types.SimpleNamespace()
    for name, logic in logics.items():
        setattr(modules, name.lower(), CoreModule(name, logic=logic))
    return modules


def temporary_path() -> str:
    return tempfile.mkdtemp(prefix="SlicerStandIn-")
