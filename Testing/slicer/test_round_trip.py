"""(d) Every bound widget round-trips: a change in the widget lands in the parameter node, a change in the
parameter node shows in the widget. Each field is bound on its own (``connectParametersToGui``, what
``connectGui`` calls) so that one broken field hides no other; the last test binds the whole panel.
"""

from __future__ import annotations

import math

import pytest
from slicer_stand_in.testing import (NUMERIC_CLASSES, annotated_range, bound_widgets, module_paths, read_widget, rounded,
                                     ui_range, write_widget)

MODULE, UI = module_paths()
BOUND = bound_widgets(UI)


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if hasattr(a, "GetID") or hasattr(b, "GetID") or a is None or b is None:
        return a is b
    return a == b or str(a) == str(b)


def _two_values(spec, widget, datatype, scene):
    """Two values, different from each other and from the current one, valid for the field and the widget."""
    from slicer.parameterNodeWrapper import getNodeTypes, isNodeOrUnionOfNodes, unannotatedType

    current = read_widget(widget)
    if isNodeOrUnionOfNodes(datatype):
        node_type = getNodeTypes(datatype)[0]
        return (scene.AddNewNodeByClass(node_type, f"{spec.parameter} A"), scene.AddNewNodeByClass(node_type, f"{spec.parameter} B"))
    kind = unannotatedType(datatype)
    if kind is bool:
        return (not current, bool(current))
    if spec.cls in ("QComboBox", "ctkComboBox"):
        texts = [widget.itemText(i) for i in range(widget.count)]
        others = [t for t in texts if t != current]
        assert others, f"{spec.name} offers no other choice than {current!r}"
        return (others[0], current) if current in texts else (others[0], others[-1])
    if spec.cls in NUMERIC_CLASSES:
        low, high, _ = annotated_range(datatype)
        ui_low, ui_high = ui_range(spec)
        low, high = max(low if low is not None else ui_low, ui_low), min(high if high is not None else ui_high, ui_high)
        step = widget.singleStep or 1
        candidates = [current + step, current - step, low, high, (low + high) / 2]
        if kind is int:
            candidates = [int(round(c)) for c in candidates]
        else:
            candidates = [rounded(float(c), widget) for c in candidates]
        valid = [c for c in dict.fromkeys(candidates) if low <= c <= high and not _same(c, current)]
        assert len(valid) >= 2, f"{spec.parameter}: no two test values in {low}..{high}"
        return valid[0], valid[1]
    if spec.cls in ("ctkPathLineEdit", "ctkDirectoryButton"):
        return (kind("/opt/stand-in/bin/python3") if kind is not str else "/opt/stand-in/bin/python3",
                kind("/usr/bin/python3") if kind is not str else "/usr/bin/python3")
    return ("alpha", "beta")


def _round_trip(name, spec, widget, parameter_node, scene) -> list[str]:
    from slicer.parameterNodeWrapper import isNodeOrUnionOfNodes, unannotatedType

    datatype = parameter_node.dataType(name)
    first, second = _two_values(spec, widget, datatype, scene)
    problems = []
    write_widget(widget, first)
    if not _same(getattr(parameter_node, name), first):
        problems.append(f"{spec.name} set to {first!r}, the parameter node holds {getattr(parameter_node, name)!r}")
    setattr(parameter_node, name, second if isNodeOrUnionOfNodes(datatype) or unannotatedType(datatype) is not str
            or spec.cls not in ("QComboBox", "ctkComboBox") else str(second))
    if not _same(read_widget(widget), second):
        problems.append(f"parameter node set to {second!r}, {spec.name} shows {read_widget(widget)!r}")
    if isNodeOrUnionOfNodes(datatype) and type(None) in getattr(unannotatedType(datatype), "__args__", ()):
        setattr(parameter_node, name, None)
        if read_widget(widget) is not None:
            problems.append(f"parameter node set to None, {spec.name} still shows {read_widget(widget)!r}")
    return problems


@pytest.mark.parametrize("spec", BOUND, ids=str)
def test_the_field_round_trips_through_its_widget(spec, stand_in, parameter_node, panel):
    widget = getattr(panel, spec.name)
    parameter_node.connectParametersToGui({spec.parameter: widget})
    problems = _round_trip(spec.parameter, spec, widget, parameter_node, stand_in.scene)
    problems += stand_in.errors()
    assert not problems, f"{spec.parameter}: " + "; ".join(problems)


def test_the_whole_panel_round_trips_through_connectGui(stand_in, parameter_node, panel):
    parameter_node.connectGui(panel)
    problems = []
    for spec in BOUND:
        problems += [f"{spec.parameter}: {p}" for p in _round_trip(spec.parameter, spec, getattr(panel, spec.name),
                                                                    parameter_node, stand_in.scene)]
    problems += stand_in.errors()
    assert not problems, "; ".join(problems)
