"""Load a scripted module the way 3D Slicer does, in this (fresh) interpreter, and report as JSON.

    python -m slicer_stand_in.run_module MODULE.py [--ui UI] [--no-block] [--steps import,widget,setup,enter,exit,enter]

With the import blocker on (the default), only what Slicer 5.10 ships can be imported. Each step runs
even when an earlier one raised (as in Slicer, where a failing ``setup()`` is printed and the module can
still be entered), except that nothing runs after a failed import. The report lists, per step, the
exception and the chain of project files it came through, then the slot exceptions PythonQt would have
printed, exceptions in VTK observers, the .ui's buttons that no slot listens to, and blocked imports.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
import xml.etree.ElementTree as ET
from pathlib import Path

BUTTON_CLASSES = {"QPushButton", "QToolButton", "QRadioButton", "QCheckBox", "ctkPushButton", "ctkCheckablePushButton",
                  "ctkCheckBox", "ctkMenuButton"}


def _failure(exc: BaseException) -> dict:
    frames = traceback.extract_tb(exc.__traceback__)
    chain = [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in frames
             if "importlib" not in f.filename and "slicer_stand_in" not in f.filename]
    return {"error": f"{type(exc).__name__}: {exc}", "chain": chain,
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))}


def ui_buttons(ui_path) -> dict[str, str]:
    """The push/tool/radio buttons and check boxes a .ui declares, name -> class; bound ones excluded."""
    out = {}
    for widget in ET.parse(ui_path).getroot().iter("widget"):
        bound = any(p.get("name") == "SlicerParameterName" for p in widget.findall("property"))
        if widget.get("class") in BUTTON_CLASSES and not bound:
            out[widget.get("name")] = widget.get("class")
    return out


def unconnected_buttons(ui, names) -> list[str]:
    out = []
    for name in names:
        button = getattr(ui, name, None)
        if button is None:
            out.append(f"{name} (not in the loaded panel)")
            continue
        signals = ("clicked(bool)", "clicked()", "toggled(bool)", "pressed()", "released()", "stateChanged(int)")
        if not any(button.receivers(s) for s in signals if button._find_signal(s)[0] is not None):
            out.append(name)
    return out


def run(module_path, ui_path=None, block=True, steps=("import", "widget", "setup", "enter", "exit", "enter")) -> dict:
    from .blocker import SlicerImportBlocker

    module_path = Path(module_path).resolve()
    ui_path = Path(ui_path) if ui_path else module_path.parent / "Resources" / "UI" / f"{module_path.stem}.ui"
    report = {"module": str(module_path), "ui": str(ui_path), "blocked_imports": [], "steps": [], "slot_errors": [],
              "vtk_callback_errors": [], "unconnected_buttons": [], "loaded_before_blocker": []}
    blocker = SlicerImportBlocker() if block else None
    if blocker is not None:
        report["loaded_before_blocker"] = blocker.loaded_but_not_allowed()
        blocker.install()
    vtk_errors: list[str] = []
    old_hook = sys.excepthook

    def hook(kind, value, tb):  # VTK prints an observer's exception through sys.excepthook (PyErr_Print)
        vtk_errors.append("".join(traceback.format_exception(kind, value, tb)))

    from . import SlicerStandIn

    env = SlicerStandIn().install()
    sys.excepthook = hook
    module = None
    try:
        for step in steps:
            entry = {"step": step, "ok": True}
            report["steps"].append(entry)
            try:
                if step == "import":
                    module = env.load_module(module_path)
                elif module is None:
                    entry.update(ok=False, error="skipped: the module did not import")
                    continue
                elif step == "widget":
                    module.create_widget()
                elif step == "setup":
                    module.setup()
                    ui = getattr(module.widget, "ui", None)
                    if ui is not None and ui_path.is_file():
                        report["unconnected_buttons"] = unconnected_buttons(ui, ui_buttons(ui_path))
                elif step == "enter":
                    module.enter()
                elif step == "exit":
                    module.exit()
                elif step == "close-scene":
                    env.scene.Clear(0)
                elif step == "unload":
                    module.unload()
                else:
                    raise ValueError(f"unknown step {step!r}")
            except Exception as exc:  # noqa: BLE001 - reported, as Slicer prints it
                entry.update(ok=False, **_failure(exc))
    finally:
        sys.excepthook = old_hook
        report["slot_errors"] = env.errors()
        report["vtk_callback_errors"] = vtk_errors
        if blocker is not None:
            report["blocked_imports"] = sorted(set(blocker.blocked))
            blocker.uninstall()
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("module")
    parser.add_argument("--ui")
    parser.add_argument("--no-block", action="store_true")
    parser.add_argument("--steps", default="import,widget,setup,enter,exit,enter")
    parser.add_argument("--json", help="write the report here (default: stdout)")
    args = parser.parse_args(argv)
    report = run(args.module, args.ui, block=not args.no_block, steps=tuple(args.steps.split(",")))
    text = json.dumps(report, indent=1)
    if args.json:
        Path(args.json).write_text(text)
    else:
        print(text)
    return 0 if all(s["ok"] for s in report["steps"]) else 1


if __name__ == "__main__":
    sys.exit(main())
