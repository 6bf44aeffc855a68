"""Enumeration properties in the .ui read as Qt's form builder (QUiLoader, Qt 5.15) reads them.

An ``<enum>`` is one enumerator (``QMetaEnum::keyToValue``); flags are a ``<set>`` (``keysToValue``, ``|``-separated).
Qt does not split an ``<enum>``: its ``fixEnum`` keeps what follows the last ``:``, so
``<enum>ctkPathLineEdit::Files|ctkPathLineEdit::Executable</enum>`` silently sets ``Executable`` alone, and the path
line edit's browse button (no ``Files`` flag) then opens a directory dialog. The stand-in records such an ``<enum>``
as an error and leaves the property unset.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from slicer_stand_in.testing import REPOSITORY, module_paths

MODULE, UI = module_paths()
#: Every .ui under TumorGen/, and the one the stand-in tests load (SLICER_STAND_IN_UI may name another).
UI_FILES = sorted({*(REPOSITORY / "TumorGen").rglob("*.ui"), UI})

SNIPPET = """<?xml version="1.0" encoding="UTF-8"?>
<ui version="4.0">
 <class>Form</class>
 <widget class="QWidget" name="Form">
  <layout class="QVBoxLayout" name="layout">
   <item>
    <widget class="{cls}" name="{name}">
     <property name="{prop}">
      {value}
     </property>
    </widget>
   </item>
  </layout>
 </widget>
</ui>
"""


def enums_holding_flags(ui_path) -> list[str]:
    """``name: text`` of each ``<property>`` whose ``<enum>`` holds ``|`` (flags belong in a ``<set>``)."""
    out = []
    for widget in ET.parse(ui_path).getroot().iter("widget"):
        for prop in widget.findall("property"):
            for enum in prop.findall("enum"):
                if "|" in (enum.text or ""):
                    out.append(f"{widget.get('name')}.{prop.get('name')}: <enum>{enum.text}</enum>")
    return out


@pytest.mark.parametrize("ui_path", UI_FILES, ids=lambda p: str(p.relative_to(REPOSITORY)) if p.is_relative_to(REPOSITORY) else p.name)
def test_no_enum_in_a_ui_holds_flags(ui_path):
    assert not enums_holding_flags(ui_path), "write flags as <set>A|B</set>: QUiLoader reads an <enum> as one key"


def test_the_python_path_chooser_takes_executable_files(stand_in, panel):
    import ctk

    assert not stand_in.errors()
    edit = panel.pythonPathLineEdit
    assert edit.filters == ctk.ctkPathLineEdit.Files | ctk.ctkPathLineEdit.Executable == 0x042
    assert edit.filters & ctk.ctkPathLineEdit.Files, "without Files, ctkPathLineEdit::browse() asks for a directory"


def _load(stand_in, tmp_path, value, cls="ctkPathLineEdit", prop="filters"):
    """The one widget of a small .ui whose ``prop`` is ``value``, loaded as slicer.util.loadUI loads a module's."""
    path = tmp_path / "form.ui"
    path.write_text(SNIPPET.format(cls=cls, name="edit", prop=prop, value=value), encoding="utf-8")
    return stand_in.load_ui(path, scene=False)[1].edit


@pytest.mark.parametrize("value, expected", [
    ("<set>ctkPathLineEdit::Files|ctkPathLineEdit::Executable</set>", 0x002 | 0x040),
    ("<set>Dirs | Writable</set>", 0x001 | 0x020),                      # unqualified keys, spaces trimmed
    ("<set>ctkPathLineEdit::Files</set>", 0x002),
    ("<enum>ctkPathLineEdit::Dirs</enum>", 0x001),                      # one enumerator of a flags type
    ("<set>ctkPathLineEdit::AllEntries|ctkPathLineEdit::NoDotAndDotDot</set>", 0x007 | 0x1000),
])
def test_the_loader_reads_enums_and_sets_as_qt(stand_in, tmp_path, value, expected):
    assert _load(stand_in, tmp_path, value).filters == expected
    assert not stand_in.errors()


@pytest.mark.parametrize("value, message", [
    ("<enum>ctkPathLineEdit::Files|ctkPathLineEdit::Executable</enum>", "holds several flags"),
    ("<enum>Files|Executable</enum>", "holds several flags"),
    ("<set>ctkPathLineEdit::Files|ctkPathLineEdit::Bogus</set>", "is not a key"),
    ("<set>QDir::Files</set>", "is not a key"),                         # a qualifier names the enum's own class
    ("<enum>ctkPathLineEdit::Bogus</enum>", "is not a key"),
])
def test_the_loader_records_invalid_enums_and_leaves_the_property_unset(stand_in, tmp_path, value, message):
    import ctk

    edit = _load(stand_in, tmp_path, value)
    assert edit.filters == ctk.ctkPathLineEdit().filters == 0x1057  # CTK's default: AllEntries|NoDotAndDotDot|Readable|Executable
    errors = stand_in.errors()
    assert len(errors) == 1 and "'edit'" in errors[0] and "'filters'" in errors[0] and message in errors[0]


def test_an_enum_holding_flags_is_an_error_on_any_property(stand_in, tmp_path):
    """Also where the stand-in does not model the property's enum (its text is kept otherwise)."""
    flags = "QAbstractItemView::DoubleClicked|QAbstractItemView::EditKeyPressed"
    table = _load(stand_in, tmp_path, f"<enum>{flags}</enum>", cls="QTableWidget", prop="editTriggers")
    assert table.editTriggers is None
    assert len(stand_in.errors()) == 1 and "holds several flags" in stand_in.errors()[0]
    stand_in.clear_errors()
    table = _load(stand_in, tmp_path, f"<set>{flags}</set>", cls="QTableWidget", prop="editTriggers")
    assert table.editTriggers == flags and not stand_in.errors()
