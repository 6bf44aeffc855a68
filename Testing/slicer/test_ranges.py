"""(c) After binding, every numeric widget keeps the range the module declares, and nonsense (0 steps,
0 samples, a negative sigma, ...) cannot reach the parameter node.

Slicer's connectors (guiConnectors.py at 5.10) overwrite a widget's range when they bind it: to the
field's WithinRange, or Minimum/Maximum annotation, and where there is none to -2**31..2**31-1
(QSpinBox/QSlider, int) or -inf..inf (QDoubleSpinBox and friends). So the .ui's minimum/maximum survive
only if the field repeats them as an annotation.
"""

from __future__ import annotations

import math

import pytest
from slicer_stand_in.testing import (INTEGER_CLASSES, NUMERIC_CLASSES, annotated_range, bound_widgets, module_paths,
                                     rounded, ui_range, write_widget)

MODULE, UI = module_paths()
NUMERIC = [w for w in bound_widgets(UI) if w.cls in NUMERIC_CLASSES]


def _declared(spec, wrapper):
    """The range the module declares: the field's annotation where it has one, else the .ui's."""
    low, high, text = annotated_range(wrapper.dataType(spec.parameter))
    ui_low, ui_high = ui_range(spec)
    return (ui_low if low is None else low, ui_high if high is None else high), text, (ui_low, ui_high)


@pytest.mark.parametrize("spec", NUMERIC, ids=str)
def test_binding_keeps_the_declared_range(spec, wrapper, parameter_node, panel):
    (low, high), annotation, (ui_low, ui_high) = _declared(spec, wrapper)
    problems = []
    if annotation:
        a_low, a_high, _ = annotated_range(wrapper.dataType(spec.parameter))
        if "minimum" in spec.properties and a_low is not None and not math.isclose(a_low, ui_low):
            problems.append(f"the .ui's minimum {ui_low} differs from the field's {annotation}")
        if "maximum" in spec.properties and a_high is not None and not math.isclose(a_high, ui_high):
            problems.append(f"the .ui's maximum {ui_high} differs from the field's {annotation}")
    widget = getattr(panel, spec.name)
    parameter_node.connectParametersToGui({spec.parameter: widget})
    got = (widget.minimum, widget.maximum)
    if got != (rounded(low, widget), rounded(high, widget)):
        problems.append(f"after binding {spec.name} spans {got[0]}..{got[1]}, the module declares {low}..{high} "
                        f"({annotation or 'in the .ui only: the field has no WithinRange/Minimum/Maximum annotation'})")
    assert not problems, f"{spec.parameter}: " + "; ".join(problems)


def _nonsense(low, high, integer):
    """Values a user could try to type: below the minimum, above the maximum, zero and negatives."""
    step = 1 if integer else max(1.0, abs(low) * 0.5)
    out = [low - step, high + step, 0, -1]
    if integer:
        out = [v for v in out if -(2**31) <= v <= 2**31 - 1]
    return [v for v in dict.fromkeys(out) if not low <= v <= high and math.isfinite(v)]


@pytest.mark.parametrize("spec", NUMERIC, ids=str)
def test_out_of_range_values_entered_in_the_widget_never_reach_the_parameter_node(spec, wrapper, parameter_node, panel):
    (low, high), _, _ = _declared(spec, wrapper)
    widget = getattr(panel, spec.name)
    parameter_node.connectParametersToGui({spec.parameter: widget})
    reached = []
    for value in _nonsense(low, high, spec.cls in INTEGER_CLASSES):
        write_widget(widget, value)
        stored = getattr(parameter_node, spec.parameter)
        if not low <= stored <= high:
            reached.append(f"{value} -> {stored}")
    assert not reached, (f"{spec.parameter}: typed into {spec.name}, these reached the parameter node although the module "
                         f"declares {low}..{high}: {', '.join(reached)}")


@pytest.mark.parametrize("spec", NUMERIC, ids=str)
def test_the_parameter_node_refuses_values_outside_the_range(spec, wrapper, parameter_node):
    from slicer.parameterNodeWrapper import unannotatedType

    (low, high), _, _ = _declared(spec, wrapper)
    integer = unannotatedType(wrapper.dataType(spec.parameter)) is int
    accepted = []
    for value in _nonsense(low, high, integer):
        try:
            setattr(parameter_node, spec.parameter, value)
        except (ValueError, TypeError):
            continue
        accepted.append(repr(value))
    assert not accepted, (f"{spec.parameter}: the parameter node accepted {', '.join(accepted)} (declared {low}..{high}); "
                          "a WithinRange/Minimum/Maximum annotation makes Slicer's serializer refuse them")
