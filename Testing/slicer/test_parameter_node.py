"""(b) The module's parameter node class, built by Slicer's own parameterNodeWrapper on a real
vtkMRMLScriptedModuleNode, binds to the .ui's widgets with ``connectGui``, and every field's type is
one that the connector Slicer picks for its widget accepts.
"""

from __future__ import annotations

import pytest
from slicer_stand_in.testing import bound_widgets, module_paths

MODULE, UI = module_paths()
BOUND = bound_widgets(UI)

#: What Slicer 5.10's guiConnectors.py accepts per widget class (canRepresent), for the failure messages.
ACCEPTS = {
    "QCheckBox": "bool", "ctkCheckBox": "bool", "QPushButton": "bool (made checkable)",
    "QSpinBox": "int", "QSlider": "int with WithinRange or Minimum+Maximum",
    "QDoubleSpinBox": "float or int", "ctkDoubleSpinBox": "float or int",
    "ctkSliderWidget": "float or int with WithinRange or Minimum+Maximum",
    "QComboBox": "int/float/str/bool annotated with Choice, or an enum.Enum", "ctkComboBox": "same as QComboBox",
    "QLineEdit": "str", "QLabel": "str (read only)", "QTextEdit": "str",
    "ctkPathLineEdit": "pathlib.Path, PosixPath, WindowsPath, PurePath, PurePosixPath or PureWindowsPath (not str)",
    "ctkDirectoryButton": "a pathlib type (not str)",
    "qMRMLNodeComboBox": "a vtkMRMLNode subclass, or a Union/Optional of them",
    "ctkRangeWidget": "FloatRange with RangeBounds",
}


def test_connectGui_binds_the_whole_panel(parameter_node, panel):
    tag = parameter_node.connectGui(panel)
    bound = parameter_node._parameterGUIs[tag]
    assert set(bound) == {w.parameter for w in BOUND}


def test_every_field_has_one_widget_and_every_widget_a_field(wrapper):
    names = [w.parameter for w in BOUND]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    assert not duplicated, f"several widgets bound to {duplicated}"
    fields = set(wrapper.allParameters)
    assert set(names) == fields, f"fields without a widget: {sorted(fields - set(names))}; " \
                                 f"widgets naming no field: {sorted(set(names) - fields)}"


@pytest.mark.parametrize("spec", BOUND, ids=str)
def test_slicer_has_a_connector_for_the_field_type_on_its_widget(spec, wrapper, panel):
    from slicer.parameterNodeWrapper import Choice, findFirstAnnotation, getNodeTypes, isNodeOrUnionOfNodes, splitAnnotations
    from slicer.parameterNodeWrapper.guiConnectors import _registeredGuiConnectors

    if spec.parameter not in wrapper.allParameters:
        pytest.fail(f"{spec.name} names {spec.parameter!r}, which is no field of {wrapper.__name__}")
    widget = getattr(panel, spec.name)
    datatype = wrapper.dataType(spec.parameter)
    able = [c.__name__ for c in _registeredGuiConnectors if c.canRepresent(widget, datatype)]
    assert able, (f"{spec.parameter}: {datatype} bound to {spec.name} ({spec.cls}): none of Slicer's GUI connectors takes it; "
                  f"a {spec.cls} takes {ACCEPTS.get(spec.cls, '?')}")

    if isNodeOrUnionOfNodes(datatype):  # the connector replaces the combo box's nodeTypes with the field's
        assert list(getNodeTypes(datatype)) == list(spec.properties.get("nodeTypes") or []), \
            f"{spec.parameter}: the field allows {list(getNodeTypes(datatype))}, the .ui's {spec.name} lists {spec.properties.get('nodeTypes')}"
    choice = findFirstAnnotation(splitAnnotations(datatype)[1], Choice)
    if choice is not None and spec.items:  # the connector replaces the combo box's items with the choices
        assert [str(c) for c in choice.choices] == spec.items, \
            f"{spec.parameter}: Choice{list(choice.choices)} but the .ui's {spec.name} lists {spec.items}"
