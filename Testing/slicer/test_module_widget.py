"""(e) The seed place widget and (f) the module panel's life cycle, on the module's own widget class
(setup, enter, exit, scene close, unload as Slicer calls them; in this process, without the import blocker).

When setup() or enter() raises, Slicer prints the error and the panel stays usable: the user can still
enter and leave the module. These tests do the same: a step that raised is remembered and reported with
the failure of the check that follows (the life-cycle tests fail on it).
"""

from __future__ import annotations

import pytest
from slicer_stand_in import capture_vtk_callback_errors
from slicer_stand_in.testing import module_paths, wrapper_class

MODULE, UI = module_paths()
#: Place widgets of the panel -> the parameter whose point list they place into.
PLACE_WIDGETS = {"seedPlaceWidget": "seed_points"}


class Shown:
    def __init__(self, env):
        self.env = env
        self.module = env.load_module(MODULE)
        self.module.create_widget()
        self.raised: list[str] = []
        self.tolerate("setup")

    def tolerate(self, step: str) -> None:
        """Run a life-cycle step; if it raises, remember it and go on (Slicer prints it and goes on)."""
        try:
            getattr(self.module, step)()
        except Exception as exc:  # noqa: BLE001
            self.raised.append(f"{step}() had raised {type(exc).__name__}: {exc}")

    @property
    def widget(self):
        return self.module.widget

    @property
    def ui(self):
        return self.widget.ui

    def parameter_node(self):
        """The module's parameter node (the scene's scripted module node of this module), wrapped."""
        scene = self.env.scene
        for i in range(scene.GetNumberOfNodesByClass("vtkMRMLScriptedModuleNode")):
            node = scene.GetNthNodeByClass(i, "vtkMRMLScriptedModuleNode")
            if node.GetAttribute("ModuleName") == self.module.name:
                return wrapper_class(self.module.python_module)(node)
        return None

    def context(self) -> str:
        return f" ({'; '.join(self.raised)})" if self.raised else ""


@pytest.fixture
def shown(stand_in):
    return Shown(stand_in)


# ------------------------------------------------------------------------------------------ (e)
@pytest.mark.parametrize("place_name", sorted(PLACE_WIDGETS))
def test_the_place_widget_gets_the_seed_list_the_presenter_creates(place_name, shown):
    shown.tolerate("enter")
    assert shown.widget.presenter.place_seed(), shown.widget.presenter.state.error
    parameter = shown.parameter_node()
    seeds = getattr(parameter, PLACE_WIDGETS[place_name]) if parameter is not None else None
    place = getattr(shown.ui, place_name)
    assert seeds is not None, f"the presenter made a point list but the parameter node's {PLACE_WIDGETS[place_name]} is None" + shown.context()
    assert place.currentNode() is seeds, (f"{place_name}.currentNode() is {place.currentNode()!r}, not the seed list "
                                          f"{seeds.GetName()!r}: its buttons stay disabled" + shown.context())
    assert place.placeButton().enabled, f"{place_name}'s place button is disabled" + shown.context()


@pytest.mark.parametrize("place_name", sorted(PLACE_WIDGETS))
def test_the_place_widget_follows_the_point_list_picked_in_the_panel(place_name, shown):
    shown.tolerate("enter")
    selector = next(w for w in vars(shown.ui).values()
                    if type(w).__name__ == "qMRMLNodeComboBox" and w.property("SlicerParameterName") == PLACE_WIDGETS[place_name])
    created = selector.addNode()  # the user picks "Create new point list" in the selector
    assert created is not None, f"{selector.objectName}.addNode() created nothing (nodeTypes {selector.nodeTypes})"
    place = getattr(shown.ui, place_name)
    assert place.currentNode() is created, (f"after creating {created.GetName()!r} in {selector.objectName}, "
                                            f"{place_name}.currentNode() is {place.currentNode()!r}" + shown.context())
    assert place.placeButton().enabled, f"{place_name}'s place button is disabled" + shown.context()


@pytest.mark.parametrize("place_name", sorted(PLACE_WIDGETS))
def test_the_place_widget_never_holds_a_node_that_left_the_scene(place_name, stand_in, shown):
    shown.tolerate("enter")
    shown.widget.presenter.place_seed()
    stand_in.scene.Clear(0)
    node = getattr(shown.ui, place_name).currentNode()
    assert node is None or node.GetScene() is stand_in.scene, f"{place_name} still holds {node.GetName()!r} after the scene was closed"


# ------------------------------------------------------------------------------------------ (f)
def test_enter_exit_enter_raises_nothing(shown):
    failures = []
    for step in ("enter", "exit", "enter"):
        try:
            getattr(shown.module, step)()
        except Exception as exc:  # noqa: BLE001
            failures.append(f"{step}(): {type(exc).__name__}: {exc}")
    failures += shown.env.errors()
    assert not failures, "; ".join(failures) + shown.context()


def test_closing_the_scene_while_entered_raises_nothing(stand_in, shown):
    failures = []
    with capture_vtk_callback_errors() as swallowed:
        try:
            shown.module.enter()
            stand_in.scene.Clear(0)  # StartCloseEvent / EndCloseEvent, as File > Close Scene
            shown.module.exit()
            shown.module.enter()
        except Exception as exc:  # noqa: BLE001
            failures.append(f"{type(exc).__name__}: {exc}")
    failures += [s.strip().splitlines()[-1] for s in swallowed] + shown.env.errors()
    assert not failures, "; ".join(failures) + shown.context()


def test_unloading_the_module_cleans_up_without_error(shown):
    shown.tolerate("enter")
    shown.tolerate("exit")
    shown.module.unload()  # moduleAboutToBeUnloaded -> cleanup()
    assert not shown.env.errors(), "; ".join(shown.env.errors()) + shown.context()
