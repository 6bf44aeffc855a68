"""Run a 3D Slicer scripted module's Python without Slicer: Slicer's own Python code, vendored, on
stand-in Qt widgets and the real MRML scene of the ``slicer-core`` wheel. See README.md.

    from slicer_stand_in import SlicerStandIn

    with SlicerStandIn() as env:                      # qt, ctk, slicer.* installed; undone on exit
        module = env.load_module("TumorGen/TumorGen.py")
        module.create_widget(); module.setup(); module.enter()
        root, ui = env.load_ui("TumorGen/Resources/UI/TumorGen.ui")
        assert not env.errors()                      # exceptions raised in slots, failed connections
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import types
from pathlib import Path

from . import _qobject

HERE = Path(__file__).resolve().parent
VENDOR = HERE / "vendor"
_MISSING = object()


def pinned() -> dict[str, str]:
    """The Slicer commit the vendored files come from (vendor/PINNED)."""
    return dict(line.split("=", 1) for line in (VENDOR / "PINNED").read_text().splitlines() if "=" in line)


class SlicerStandIn:
    """Installs the stand-in ``qt``/``ctk`` modules and extends the real ``slicer`` package; undone by uninstall().

    ``slicer`` keeps everything slicer-core has (MRML classes, logics) and gets: ``parameterNodeWrapper``,
    ``ScriptedLoadableModule``, ``i18n`` and ``util`` from Slicer's source at the pinned commit (vendor/slicer),
    the Qt widget classes on MRML (qMRMLNodeComboBox, ...), ``app``, ``mrmlScene``, ``modules``, ``moduleNames``.
    """

    def __init__(self):
        self._saved_modules: dict[str, object] = {}
        self._saved_attrs: dict[str, object] = {}
        self._saved_sys_path: list[str] = []
        self._slicer_path: list[str] = []
        self._tmp = None
        self.installed = False

    # ------------------------------------------------------------------ install / uninstall
    def install(self) -> "SlicerStandIn":
        from . import app, ctk, mrml_widgets, qt

        import slicer  # slicer-core, imported before the snapshot: its own modules are never dropped

        _qobject.clear_errors()
        qt.QSettings._store.clear()
        self._saved_sys_path = list(sys.path)
        self._saved_modules = {name: module for name, module in sys.modules.items()}
        sys.modules["qt"] = qt
        sys.modules["ctk"] = ctk
        self.slicer = slicer
        self._slicer_path = list(slicer.__path__)
        slicer.__path__.append(str(VENDOR / "slicer"))  # slicer.parameterNodeWrapper, .ScriptedLoadableModule, .i18n
        spec = importlib.util.spec_from_file_location("slicer.util", VENDOR / "slicer" / "util.py")
        util = importlib.util.module_from_spec(spec)
        sys.modules["slicer.util"] = util
        spec.loader.exec_module(util)

        self.scene, self.app_logic, self.logics = app.build_scene()
        self._tmp = app.temporary_path()
        self.app = app.Application(self.scene, self.app_logic, self._tmp)
        attrs = dict(mrml_widgets.SLICER_WIDGETS, util=util, app=self.app, mrmlScene=self.scene,
                     modules=app.make_modules(self.logics), moduleNames=types.SimpleNamespace())
        for name in ("selfTests", "parameterNodeWrapper", "ScriptedLoadableModule", "i18n"):  # set later by imports
            self._saved_attrs[name] = getattr(slicer, name, _MISSING)
        for name, value in attrs.items():
            self._saved_attrs[name] = getattr(slicer, name, _MISSING)
            setattr(slicer, name, value)
        self.loaded_modules: list[str] = []
        self.installed = True
        return self

    def uninstall(self) -> None:
        """Restore ``slicer``'s attributes and path, and drop the modules the stand-in put in sys.modules."""
        if not self.installed:
            return
        slicer = self.slicer
        for name, value in self._saved_attrs.items():
            if value is _MISSING:
                if name in vars(slicer):
                    delattr(slicer, name)
            else:
                setattr(slicer, name, value)
        slicer.__path__[:] = self._slicer_path
        ours = {"qt", "ctk", *self.loaded_modules}
        for name in list(sys.modules):
            if name not in self._saved_modules and (name in ours or name.startswith("slicer.")):
                del sys.modules[name]
        for name in ("qt", "ctk", "slicer.util", *self.loaded_modules):
            if name in self._saved_modules:
                sys.modules[name] = self._saved_modules[name]
            else:
                sys.modules.pop(name, None)
        sys.path[:] = self._saved_sys_path
        # Slicer's scene lives as long as the application. This one goes away with the objects observing it,
        # in whatever order the garbage collector picks: detach every observer and logic first, so that no
        # callback runs on a half-collected Python object while the scene is destroyed.
        self.scene.RemoveAllObservers()
        for logic in self.logics.values():
            logic.SetMRMLScene(None)
        self.app_logic.SetMRMLScene(None)
        self.scene.Clear(1)
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
        self.installed = False

    def __enter__(self) -> "SlicerStandIn":
        return self.install()

    def __exit__(self, *exc) -> None:
        self.uninstall()

    # ------------------------------------------------------------------ helpers
    def load_module(self, path):
        """Load a scripted module file as Slicer does (see app.ScriptedModule)."""
        from .app import ScriptedModule

        self.loaded_modules.append(Path(path).stem)
        return ScriptedModule(path, self.scene)

    def load_ui(self, path, scene=True):
        """``slicer.util.loadUI(path)`` and ``slicer.util.childWidgetVariables`` of it; the root gets the scene."""
        root = self.slicer.util.loadUI(str(path))
        if scene:
            root.setMRMLScene(self.scene)
        return root, self.slicer.util.childWidgetVariables(root)

    @staticmethod
    def errors() -> list[str]:
        """Exceptions raised in slots (PythonQt prints and swallows them) and failed connections."""
        return _qobject.errors()

    @staticmethod
    def clear_errors() -> None:
        _qobject.clear_errors()


def capture_vtk_callback_errors():
    """Context manager collecting exceptions raised in VTK observer callbacks (VTK prints and swallows them)."""
    import contextlib

    @contextlib.contextmanager
    def manager():
        caught: list[str] = []
        old = sys.excepthook

        def hook(kind, value, tb):
            import traceback

            caught.append("".join(traceback.format_exception(kind, value, tb)))
            old(kind, value, tb)

        sys.excepthook = hook
        try:
            yield caught
        finally:
            sys.excepthook = old

    return manager()
