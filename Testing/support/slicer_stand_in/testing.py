"""Helpers for tests of a scripted module on the stand-in (module-agnostic).

The module and its .ui default to this repository's TumorGen; set ``SLICER_STAND_IN_MODULE`` (a module
.py file) and ``SLICER_STAND_IN_UI`` (its .ui; default ``<module dir>/Resources/UI/<Name>.ui``) to test
another one.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[3]

NUMERIC_CLASSES = {"QSpinBox", "QDoubleSpinBox", "QSlider", "ctkSliderWidget", "ctkDoubleSpinBox", "ctkDoubleSlider",
                   "qMRMLSliderWidget", "qMRMLSpinBox"}
INTEGER_CLASSES = {"QSpinBox", "QSlider"}
#: Qt's and CTK's defaults for a numeric widget whose .ui sets no bound.
DEFAULT_RANGES = {"QSpinBox": (0, 99), "QSlider": (0, 99), "QDoubleSpinBox": (0.0, 99.99), "ctkDoubleSpinBox": (0.0, 99.99),
                  "ctkSliderWidget": (0.0, 99.99), "qMRMLSliderWidget": (0.0, 99.99), "qMRMLSpinBox": (0.0, 99.99),
                  "ctkDoubleSlider": (0.0, 100.0)}


def module_paths() -> tuple[Path, Path]:
    module = Path(os.environ.get("SLICER_STAND_IN_MODULE") or REPOSITORY / "TumorGen" / "TumorGen.py").resolve()
    ui = os.environ.get("SLICER_STAND_IN_UI")
    return module, (Path(ui).resolve() if ui else module.parent / "Resources" / "UI" / f"{module.stem}.ui")


@dataclass
class UiWidget:
    """A widget as the .ui file declares it (read without the stand-in, for parametrizing tests)."""

    name: str
    cls: str
    parameter: str | None
    properties: dict = field(default_factory=dict)
    items: list = field(default_factory=list)

    def __str__(self):
        return self.name


def _text(prop):
    for child in prop:
        if child.tag == "stringlist":
            return [s.text or "" for s in child.findall("string")]
        return child.text or ""
    return None


def ui_widgets(ui_path) -> list[UiWidget]:
    out = []
    for w in ET.parse(ui_path).getroot().iter("widget"):
        props = {p.get("name"): _text(p) for p in w.findall("property")}
        items = [_text(p) for item in w.findall("item") for p in item.findall("property") if p.get("name") == "text"]
        out.append(UiWidget(w.get("name"), w.get("class"), props.pop("SlicerParameterName", None), props, items))
    return out


def bound_widgets(ui_path) -> list[UiWidget]:
    """The widgets carrying a ``SlicerParameterName``: what ``connectGui`` binds."""
    return [w for w in ui_widgets(ui_path) if w.parameter]


def ui_range(spec: UiWidget) -> tuple[float, float]:
    """The minimum and maximum the .ui gives a numeric widget (Qt's default where it sets none)."""
    low, high = DEFAULT_RANGES[spec.cls]
    convert = int if spec.cls in INTEGER_CLASSES else float
    return (convert(spec.properties.get("minimum", low)), convert(spec.properties.get("maximum", high)))


def wrapper_class(python_module):
    """The module's ``@parameterNodeWrapper`` class (exactly one is expected)."""
    from slicer.parameterNodeWrapper import isParameterNodeWrapper

    found = {id(v): v for v in vars(python_module).values() if isinstance(v, type) and isParameterNodeWrapper(v)}
    if len(found) != 1:
        raise AssertionError(f"{python_module.__name__} defines {len(found)} parameterNodeWrapper classes, expected 1")
    return next(iter(found.values()))


def annotated_range(datatype):
    """``(minimum, maximum, annotation text)`` from WithinRange / Minimum / Maximum, None where unbounded."""
    from slicer.parameterNodeWrapper import Maximum, Minimum, WithinRange, findFirstAnnotation, splitAnnotations

    annotations = splitAnnotations(datatype)[1]
    within = findFirstAnnotation(annotations, WithinRange)
    if within is not None:
        return within.minimum, within.maximum, repr(within)
    low, high = findFirstAnnotation(annotations, Minimum), findFirstAnnotation(annotations, Maximum)
    return (low.minimum if low else None, high.maximum if high else None,
            " ".join(repr(a) for a in (low, high) if a is not None))


def rounded(value, widget):
    """A bound as the widget stores it (QDoubleSpinBox rounds to its decimals)."""
    decimals = getattr(widget, "decimals", None)
    if isinstance(decimals, int) and isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.{decimals}f}")
    return value


# -------------------------------------------------------------------------------- what a user does
def read_widget(widget):
    """What the widget shows, as the value a user sees."""
    name = type(widget).__name__
    if name == "qMRMLNodeComboBox":
        return widget.currentNode()
    if name in ("ctkPathLineEdit",):
        return widget.currentPath
    if name == "ctkDirectoryButton":
        return widget.directory
    if name in ("QComboBox", "ctkComboBox"):
        return widget.currentText
    if name in ("QLineEdit", "QLabel"):
        return widget.text
    if hasattr(widget, "checked") and name not in ("ctkCollapsibleButton",):
        return widget.checked
    if hasattr(widget, "value"):
        return widget.value
    raise TypeError(f"no user-level reading for {name}")


def write_widget(widget, value) -> None:
    """Change the widget as a user would (pick, type, tick, step)."""
    name = type(widget).__name__
    if name == "qMRMLNodeComboBox":
        widget.setCurrentNode(value)
    elif name == "ctkPathLineEdit":
        widget.currentPath = str(value)
    elif name == "ctkDirectoryButton":
        widget.directory = str(value)
    elif name in ("QComboBox", "ctkComboBox"):
        index = widget.findText(str(value))
        assert index >= 0, f"{widget.objectName} has no item {value!r} (items: {[widget.itemText(i) for i in range(widget.count)]})"
        widget.currentIndex = index
    elif name == "QLineEdit":
        widget.text = str(value)
    elif hasattr(widget, "checked"):
        widget.checked = bool(value)
    else:
        widget.value = value


def run_in_fresh_interpreter(module: Path, ui: Path, steps: str, workdir: Path) -> dict:
    """``python -m slicer_stand_in.run_module`` in a new interpreter (import blocker on); its JSON report."""
    out = Path(workdir) / "report.json"
    support = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (support, os.environ.get("PYTHONPATH", "")) if p))
    proc = subprocess.run([sys.executable, "-m", "slicer_stand_in.run_module", str(module), "--ui", str(ui),
                           "--steps", steps, "--json", str(out)], cwd=workdir, env=env, capture_output=True,
                          text=True, timeout=300)
    if not out.is_file():
        raise AssertionError(f"the stand-in run crashed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    report = json.loads(out.read_text())
    report["stderr"] = proc.stderr
    return report
