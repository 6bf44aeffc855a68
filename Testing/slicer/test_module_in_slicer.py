"""(a) In a fresh interpreter where only what 3D Slicer 5.10 ships can be imported, the module loads,
its widget's setup() runs to the end with every button connected, and entering, leaving, closing the
scene and unloading raise nothing (not even inside slots or VTK observers, where Slicer only prints).
"""

from __future__ import annotations

import pytest
from slicer_stand_in.testing import module_paths, run_in_fresh_interpreter

STEPS = "import,widget,setup,enter,exit,enter,close-scene,exit,unload"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return run_in_fresh_interpreter(*module_paths(), STEPS, tmp_path_factory.mktemp("fresh-slicer"))


def _explain(step: dict) -> str:
    via = " -> ".join(step.get("chain") or [])
    return f"{step['step']}: {step.get('error')}" + (f" (via {via})" if via else "")


def _steps(report, name):
    return [s for s in report["steps"] if s["step"] == name]


def test_the_module_imports_with_only_what_slicer_ships(report):
    step = _steps(report, "import")[0]
    assert step["ok"], _explain(step)


def test_setup_runs_to_the_end(report):
    step = _steps(report, "setup")[0]
    assert step["ok"], _explain(step) + f"; imports refused: {report['blocked_imports']}"


def test_every_button_of_the_panel_is_connected(report):
    setup = _steps(report, "setup")[0]
    assert setup["ok"], "setup() did not finish, so not every button was connected: " + _explain(setup)
    assert not report["unconnected_buttons"], f"no slot listens to: {report['unconnected_buttons']}"


def test_entering_leaving_closing_the_scene_and_unloading_raise_nothing(report):
    failed = [_explain(s) for s in report["steps"] if s["step"] not in ("import", "widget", "setup") and not s["ok"]]
    assert not failed, "; ".join(failed)


def test_no_exception_is_swallowed_by_a_slot_or_an_observer(report):
    swallowed = report["slot_errors"] + report["vtk_callback_errors"]
    assert not swallowed, "\n".join(swallowed)


def test_the_blocker_saw_every_import(report):
    """Harness check: nothing Slicer lacks was imported before the blocker was in place."""
    assert report["loaded_before_blocker"] == [], report["loaded_before_blocker"]
