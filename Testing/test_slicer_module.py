"""The desktop module is thin: it compiles, binds every control, and its names match the presenter's."""

from __future__ import annotations

import ast
import py_compile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULE = ROOT / "TumorGen" / "TumorGen.py"
UI = ROOT / "TumorGen" / "Resources" / "UI" / "TumorGen.ui"
CONTROL_CLASSES = {"QPushButton", "QCheckBox", "QComboBox", "QSpinBox", "QDoubleSpinBox", "qMRMLNodeComboBox", "ctkPathLineEdit",
                   "qSlicerMarkupsPlaceWidget", "QProgressBar", "QPlainTextEdit", "ctkCollapsibleButton"}


def _tree():
    return ast.parse(MODULE.read_text())


def _class(tree, name):
    return next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)


def _parameter_fields() -> dict:
    """The parameter node's fields and their defaults, in order.

    From the source when the ``@parameterNodeWrapper`` class is written out as a class statement; otherwise
    (a class built at import time) from the class itself, imported on the Slicer stand-in (Testing/slicer).
    """
    static = next((n for n in _tree().body if isinstance(n, ast.ClassDef) and n.name == "TumorGenParameterNode"), None)
    if static is not None:
        return {n.target.id: ast.literal_eval(n.value) if n.value is not None else None
                for n in static.body if isinstance(n, ast.AnnAssign)}
    pytest.importorskip("slicer")
    from slicer_stand_in import SlicerStandIn
    from slicer_stand_in.testing import wrapper_class

    with SlicerStandIn() as env:
        module = env.load_module(MODULE).python_module
        wrapper = wrapper_class(module)
        convert = getattr(module, "presenter_value", lambda name, value: value)  # the module's own node -> presenter step
        return {name: convert(name, info.default.value) for name, info in wrapper.allParameters.items()}


def _ui_widgets():
    root = ET.parse(UI).getroot()
    return {w.get("name"): w for w in root.iter("widget")}


def _prop(widget, name):
    for p in widget.findall("property"):
        if p.get("name") == name:
            return "".join(p.itertext()).strip()
    return None


def test_module_compiles(tmp_path):
    py_compile.compile(str(MODULE), cfile=str(tmp_path / "TumorGen.pyc"), doraise=True)


def test_module_imports_no_engine_or_numerics():
    imported = set()
    for node in ast.walk(_tree()):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= {"__future__", "os", "pathlib", "sys", "typing", "qt", "slicer", "vtk", "tumorgen", "tumorgen_slicer"}, imported
    widget = _class(_tree(), "TumorGenWidget")
    for node in ast.walk(widget):
        assert not isinstance(node, (ast.Import, ast.ImportFrom)), "the widget imports nothing: it binds"


def test_every_ui_control_has_a_tooltip_and_the_panels_exist():
    widgets = _ui_widgets()
    for name, w in widgets.items():
        if w.get("class") in CONTROL_CLASSES:
            assert _prop(w, "toolTip"), f"{name} has no tooltip"
    titles = {_prop(w, "text") for w in widgets.values() if w.get("class") == "ctkCollapsibleButton"}
    assert {"Inputs", "Resection box", "Tumor concentration", "Inpainting", "Backend"} <= titles
    assert _prop(widgets["applyButton"], "text") == "Apply"
    items = [i.find("property/string").text for i in widgets["deviceComboBox"].findall("item")]
    assert items == ["auto", "cpu", "cuda"]


def test_the_module_and_the_ui_agree():
    widgets = _ui_widgets()
    source = MODULE.read_text()
    used = {n.attr for n in ast.walk(_tree()) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Attribute)
            and isinstance(n.value.value, ast.Name) and n.value.value.id == "self" and n.value.attr == "ui"}
    assert used and used <= set(widgets), used - set(widgets)
    buttons = {name for name, w in widgets.items() if w.get("class") == "QPushButton"}
    assert buttons <= used, f"buttons not bound: {buttons - used}"
    fields = list(_parameter_fields())
    bound = {_prop(w, "SlicerParameterName") for w in widgets.values() if _prop(w, "SlicerParameterName")}
    assert bound == set(fields), set(fields) ^ bound
    assert "self.presenter.configure" in source


def test_the_widget_calls_only_presenter_methods_that_exist():
    pytest.importorskip("slicer")
    from tumorgen_slicer.presenter import TumorGenPresenter

    called = set()
    for node in ast.walk(_class(_tree(), "TumorGenWidget")):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "p":
            called.add(node.attr)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "presenter":
            called.add(node.attr)
    assert {"load_sample", "grow", "apply", "cancel", "configure", "poll"} <= called
    missing = {name for name in called if not hasattr(TumorGenPresenter, name) and name != "state"}
    assert not missing, missing


def test_every_parameter_is_a_presenter_setting(tmp_path):
    pytest.importorskip("slicer")
    from tumorgen_slicer.context import SceneContext
    from tumorgen_slicer.presenter import TumorGenPresenter

    values = _parameter_fields()
    presenter = TumorGenPresenter(SceneContext.headless(), work_dir=tmp_path)
    assert presenter.configure(values), presenter.state.error
    settings = getattr(presenter, "settings", None)
    if settings is not None:  # the panel settings store
        assert settings["steps"] == values["steps"] and settings["d_white"] == values["d_white"]
    else:
        assert presenter.inpaint_settings.steps == values["steps"] and presenter.grow_settings.d_white == values["d_white"]


def _cmake_list(text: str, variable: str) -> list[str]:
    import re

    block = re.search(rf"set\({variable}\s+(.*?)\)", text, re.S)
    assert block, f"{variable} is not set"
    return [line.strip() for line in block.group(1).splitlines() if line.strip() and not line.strip().startswith("#")]


def test_cmake_lists_every_module_and_engine_file():
    text = (ROOT / "TumorGen" / "CMakeLists.txt").read_text()
    module_dir, engine_dir = ROOT / "TumorGen", ROOT / "TumorGenLib"
    scripts = {s.replace("${MODULE_NAME}", "TumorGen") for s in _cmake_list(text, "MODULE_PYTHON_SCRIPTS")}
    resources = {s.replace("${MODULE_NAME}", "TumorGen") for s in _cmake_list(text, "MODULE_PYTHON_RESOURCES")}
    assert scripts == {p.relative_to(module_dir).as_posix() for p in module_dir.rglob("*.py") if "__pycache__" not in p.parts}
    on_disk = {p.relative_to(module_dir).as_posix() for p in (module_dir / "Resources").rglob("*") if p.is_file()}
    assert resources == on_disk, resources ^ on_disk

    engine_scripts = set(_cmake_list(text, "ENGINE_PYTHON_SCRIPTS"))
    engine_resources = set(_cmake_list(text, "ENGINE_PYTHON_RESOURCES"))
    packages = [engine_dir / "tumorgen", engine_dir / "tumorgen_slicer"]
    py_files = {p.relative_to(engine_dir).as_posix() for pkg in packages for p in pkg.rglob("*.py") if "__pycache__" not in p.parts}
    assert engine_scripts == py_files, engine_scripts ^ py_files
    data = {p.relative_to(engine_dir).as_posix() for pkg in packages for p in pkg.rglob("*")
            if p.is_file() and p.suffix in (".json", ".safetensors", ".npz")}
    assert engine_resources == data, engine_resources ^ data
    assert "SOURCE_DIR ${CMAKE_CURRENT_SOURCE_DIR}/../TumorGenLib" in text and (ROOT / "constraints.txt").is_file()


def test_extension_metadata_is_complete():
    text = (ROOT / "CMakeLists.txt").read_text()
    for key in ("HOMEPAGE", "CATEGORY", "CONTRIBUTORS", "DESCRIPTION", "ICONURL", "SCREENSHOTURLS"):
        assert f'set(EXTENSION_{key} "' in text and f'set(EXTENSION_{key} "")' not in text, key
    assert (ROOT / "Resources" / "Icons" / "TumorGen.png").is_file()
    for url in text.split('set(EXTENSION_SCREENSHOTURLS "')[1].split('"')[0].split():
        assert (ROOT / url.split("/main/")[1]).is_file(), url


def test_the_self_test_is_registered_with_ctest():
    import re

    text = (ROOT / "TumorGen" / "CMakeLists.txt").read_text()
    block = re.search(r"if\(BUILD_TESTING\)(.*?)endif\(\)", text, re.S)
    assert block and "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py)" in block.group(1)
    assert "class TumorGenTest(ScriptedLoadableModuleTest)" in MODULE.read_text()


def test_the_scene_logic_is_small_files_with_one_concern_each():
    sizes = {p.name: len(p.read_text().splitlines()) for p in (ROOT / "TumorGenLib" / "tumorgen_slicer").glob("*.py")}
    assert max(sizes.values()) <= 300, {name: n for name, n in sizes.items() if n > 300}
