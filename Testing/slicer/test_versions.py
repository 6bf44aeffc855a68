"""The module says which Slicer it needs: Slicer 5.10+ (Python 3.10+, what the engine needs), and binds nothing on older ones."""

from __future__ import annotations

import sys

import slicer_stand_in.app as stand_in_app
from slicer_stand_in.testing import module_paths

MODULE, UI = module_paths()


def test_slicer_5_10_is_supported(stand_in):
    module = stand_in.load_module(MODULE)
    assert module.python_module.UNSUPPORTED == ""
    assert "Needs 3D Slicer 5.10 or newer" in module.instance.parent.helpText


def test_an_older_slicer_gets_a_message_and_no_bindings(stand_in, monkeypatch):
    monkeypatch.setattr(stand_in_app, "SLICER_VERSION", (5, 8, 1))
    module = stand_in.load_module(MODULE)
    assert module.python_module.UNSUPPORTED == "TumorGen needs 3D Slicer 5.10 or newer; this is 5.8."
    assert module.python_module.TumorGenParameterNode is None
    widget = module.create_widget()
    module.setup()
    labels = [w for w in module.panel.findChildren(object) if type(w).__name__ == "QLabel"]
    assert [label.text for label in labels] == [module.python_module.UNSUPPORTED]
    assert widget.presenter is None
    module.enter()
    module.exit()
    module.unload()


def test_python_3_9_is_named(stand_in, monkeypatch):
    module = stand_in.load_module(MODULE)
    monkeypatch.setattr(sys, "version_info", (3, 9, 18, "final", 0))
    monkeypatch.setattr(sys, "version", "3.9.18 (main)")
    assert module.python_module.unsupported_reason() == (
        "TumorGen needs 3D Slicer 5.10 or newer (Python 3.10+); this Slicer runs Python 3.9.18.")
