"""The harness itself: the vendored files are Slicer's, unmodified; the stand-in widgets behave as the
Qt/CTK/Slicer rules they claim (README.md); the import blocker refuses what Slicer lacks; uninstalling
leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys
from pathlib import Path

import pytest
from slicer_stand_in import VENDOR, SlicerStandIn, pinned
from slicer_stand_in.testing import module_paths, ui_widgets

MODULE, UI = module_paths()


def _blob_id(path: Path) -> str:
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def test_the_vendored_files_are_slicer_s_own_at_the_pinned_commit():
    assert pinned()["commit"] == "a2b6d082be04274a849884fbb1e85634a9df90fb" and pinned()["tag"] == "v5.10.0"
    rows = [line.split() for line in (VENDOR / "MANIFEST").read_text().splitlines() if line and not line.startswith("#")]
    assert {r[1] for r in rows} >= {"License.txt", "Base/Python/slicer/parameterNodeWrapper/guiConnectors.py",
                                    "Base/Python/slicer/ScriptedLoadableModule.py", "Base/Python/slicer/util.py"}
    changed = [target for blob, _, target in rows if _blob_id(VENDOR / target) != blob]
    assert not changed, f"edited vendored files (re-run update.py instead): {changed}"


# ------------------------------------------------------------------------------------------- Qt rules
def test_spin_boxes_clamp_like_qt(stand_in):
    import qt

    spin = qt.QSpinBox()
    seen = []
    spin.connect("valueChanged(int)", seen.append)
    assert (spin.minimum, spin.maximum, spin.value) == (0, 99, 0)
    spin.value = 150
    spin.value = 150
    assert spin.value == 99 and seen == [99]
    spin.setMinimum(200)
    assert (spin.minimum, spin.maximum, spin.value) == (200, 200, 200)
    spin.setRange(5, 1)
    assert (spin.minimum, spin.maximum) == (5, 5)

    double = qt.QDoubleSpinBox()
    assert (double.minimum, double.maximum, double.decimals, double.singleStep) == (0.0, 99.99, 2, 1.0)
    double.minimum = 0.001
    assert double.minimum == 0.0  # rounded to 2 decimals ...
    double.decimals = 3
    assert double.minimum == 0.001  # ... and re-rounded from the requested bound
    double.value = 0.12345
    assert double.value == 0.123
    double.minimum, double.maximum = float("-inf"), float("inf")
    assert math.isinf(double.minimum) and math.isinf(double.maximum)


def test_signals_reach_slots_as_in_pythonqt(stand_in):
    import qt

    button = qt.QPushButton()
    got = []
    button.connect("clicked()", lambda *args: got.append(("clicked()", args)))
    button.clicked.connect(lambda checked=None: got.append(("clicked", checked)))  # first overload: clicked(bool)
    button.connect("clicked(bool)", lambda: got.append(("no args",)))
    assert not button.connect("clickd()", print), "an unknown signal does not connect"
    button.click()
    assert got == [("clicked()", ()), ("clicked", False), ("no args",)]
    assert stand_in.errors() and "clickd()" in stand_in.errors()[0]
    stand_in.clear_errors()

    button.connect("pressed()", lambda: 1 / 0)
    button.click()  # the slot's exception is printed and recorded, not raised
    assert "ZeroDivisionError" in stand_in.errors()[0]
    stand_in.clear_errors()

    button.checked = True
    assert not button.checked, "setChecked does nothing on a button that is not checkable"


def test_combo_boxes_pick_the_first_item_and_forget_on_clear(stand_in):
    import qt

    combo = qt.QComboBox()
    seen = []
    combo.connect("currentIndexChanged(int)", seen.append)
    combo.connect("currentIndexChanged(QString)", seen.append)
    combo.addItem("a")
    combo.addItem("b")
    combo.clear()
    assert seen == [0, "a", -1, ""] and combo.currentIndex == -1


def test_properties_dynamic_and_qt(stand_in):
    import qt

    box = qt.QCheckBox()
    assert box.setProperty("checked", True) and box.checked
    assert not box.setProperty("SlicerParameterName", "x") and box.property("SlicerParameterName") == "x"
    assert box.property("nothing") is None


def test_the_ui_is_loaded_with_every_widget_named_and_connected(stand_in):
    root, ui = stand_in.load_ui(UI)
    declared = {w.name: w.cls for w in ui_widgets(UI)}
    missing = [n for n in declared if not hasattr(ui, n)]
    assert not missing
    assert {n: type(getattr(ui, n)).__name__ for n in declared} == declared
    selectors = [getattr(ui, n) for n, c in declared.items() if c == "qMRMLNodeComboBox"]
    assert selectors and all(s.mrmlScene() is stand_in.scene and s.enabled for s in selectors), \
        "the .ui's mrmlSceneChanged -> setMRMLScene connections were not made"
    assert not stand_in.errors()


def test_node_combo_boxes_follow_slicer_s_rules(stand_in):
    import slicer

    combo = slicer.qMRMLNodeComboBox()
    combo.nodeTypes = ["vtkMRMLScalarVolumeNode"]
    assert not combo.enabled, "disabled until it has a scene"
    volume = stand_in.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "v")
    combo.setCurrentNode(volume)  # remembered until the scene is set
    combo.setMRMLScene(stand_in.scene)
    assert combo.currentNode() is volume and combo.enabled
    combo.setCurrentNode(stand_in.scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode"))
    assert combo.currentNode() is None, "a node of another type selects nothing"
    combo.noneEnabled = True
    created = combo.addNode()
    assert created is not None and combo.currentNode() is created and created.IsA("vtkMRMLScalarVolumeNode")
    stand_in.scene.RemoveNode(created)
    assert combo.currentNode() is volume


def test_uninstall_leaves_nothing_behind():
    import slicer

    before = set(sys.modules)
    with SlicerStandIn() as env:
        env.load_module(MODULE)
        assert "qt" in sys.modules and hasattr(slicer, "app")
    assert "qt" not in sys.modules and "ctk" not in sys.modules and MODULE.stem not in sys.modules
    assert not hasattr(slicer, "app") and not hasattr(slicer, "parameterNodeWrapper")
    assert not {m for m in set(sys.modules) - before if m.startswith("slicer.")}


def test_the_blocker_refuses_what_slicer_does_not_ship(tmp_path):
    code = (
        "from slicer_stand_in.blocker import SlicerImportBlocker\n"
        "b = SlicerImportBlocker().install()\n"
        "ok, refused = [], []\n"
        "for m in ('numpy', 'scipy', 'SimpleITK', 'vtk', 'slicer', 'requests', 'tumorgen', 'json',"
        " 'psutil', 'torch', 'monai', 'tqdm', 'matplotlib', 'pandas', 'trame'):\n"
        "    try:\n        __import__(m); ok.append(m)\n"
        "    except ModuleNotFoundError:\n        refused.append(m)\n"
        "print(repr((ok, refused)))\n")
    support = str(Path(__file__).resolve().parents[1] / "support")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": support, "PATH": ""},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    ok, refused = eval(out.stdout.strip().splitlines()[-1])  # noqa: S307 - our own two lists
    assert ok == ["numpy", "scipy", "SimpleITK", "vtk", "slicer", "requests", "tumorgen", "json"]
    assert set(refused) >= {"psutil", "torch", "tqdm", "matplotlib", "pandas"}, refused


@pytest.mark.parametrize("name", ["psutil", "torch", "monai"])
def test_the_blocker_names_the_reason(name, tmp_path):
    support = str(Path(__file__).resolve().parents[1] / "support")
    code = f"from slicer_stand_in.blocker import SlicerImportBlocker\nSlicerImportBlocker().install()\nimport {name}\n"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": support, "PATH": ""},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "3D Slicer 5.10 does not ship it" in out.stderr
