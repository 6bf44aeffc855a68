"""The desktop module on the Slicer stand-in (Testing/support/slicer_stand_in): Slicer's own
parameterNodeWrapper, ScriptedLoadableModule and slicer.util at the pinned 5.10 commit, stand-in Qt
widgets built from the real .ui, and a real MRML scene from slicer-core.

The module and .ui tested are TumorGen's unless SLICER_STAND_IN_MODULE / SLICER_STAND_IN_UI say otherwise.
"""

from __future__ import annotations

import pytest

pytest.importorskip("slicer", reason="the Slicer stand-in needs slicer-core (pip extra 'scene')")

from slicer_stand_in import SlicerStandIn  # noqa: E402
from slicer_stand_in.testing import module_paths, wrapper_class  # noqa: E402

MODULE, UI = module_paths()


@pytest.fixture
def stand_in():
    """``qt``, ``ctk`` and the ``slicer`` extensions installed for one test, then removed."""
    with SlicerStandIn() as env:
        yield env


@pytest.fixture
def module(stand_in):
    """The module file loaded as Slicer loads it (``<Name>(parent)`` created, no widget yet)."""
    return stand_in.load_module(MODULE)


@pytest.fixture
def wrapper(module):
    """The module's ``@parameterNodeWrapper`` class, built by Slicer's own parameterNodeWrapper."""
    return wrapper_class(module.python_module)


@pytest.fixture
def panel(stand_in):
    """``slicer.util.childWidgetVariables(slicer.util.loadUI(ui))`` with the scene set, as a module's setup() does."""
    return stand_in.load_ui(UI)[1]


@pytest.fixture
def parameter_node(stand_in, wrapper):
    """The wrapper on a real vtkMRMLScriptedModuleNode in the scene."""
    node = stand_in.scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode")
    node.SetAttribute("ModuleName", MODULE.stem)
    return wrapper(node)
