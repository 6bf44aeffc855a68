"""Draw the desktop module's panels from TumorGen/Resources/UI/TumorGen.ui (a diagram for the documentation).

    .venv/bin/python Testing/tools/panel_diagram.py [--out Resources/Screenshots/desktop-panels.png]

Uses matplotlib, which the engine installs.
"""

from __future__ import annotations

import argparse
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UI = ROOT / "TumorGen" / "Resources" / "UI" / "TumorGen.ui"


def text_of(widget, name):
    for p in widget.findall("property"):
        if p.get("name") == name:
            return "".join(p.itertext()).strip()
    return ""


def describe(widget) -> str:
    cls = widget.get("class")
    if cls == "QPushButton":
        return f"[ {text_of(widget, 'text')} ]"
    if cls == "QCheckBox":
        return "[x]"
    if cls == "QComboBox":
        items = [i.find("property/string").text for i in widget.findall("item")]
        if not items:  # filled in at run time: say with what
            return "< " + text_of(widget, "toolTip").split(",")[0].rstrip(".").lower() + " >"
        return "< " + " | ".join(items) + " >"
    if cls in ("QSpinBox", "QDoubleSpinBox"):
        return "[ 0.0 ^v ]" + (" " + text_of(widget, "suffix") if text_of(widget, "suffix") else "")
    if cls == "qMRMLNodeComboBox":
        return "< " + text_of(widget, "nodeTypes").replace("vtkMRML", "").replace("Node", "") + " node >"
    if cls == "qSlicerMarkupsPlaceWidget":
        return "[ place point ]"
    if cls == "ctkPathLineEdit":
        return "[ /path/to/python ... ]"
    if cls == "ctkSliderWidget":
        return "[----o------------] [ 150 ^v ]" + (" " + text_of(widget, "suffix") if text_of(widget, "suffix") else "")
    if cls == "QTableWidget":
        headers = ["".join(c.itertext()).strip() for c in widget.findall("column")]
        return "| " + " | ".join(headers) + " |  (rows: " + text_of(widget, "toolTip").split(": ")[-1].rstrip(".") + ")"
    if cls == "ctkCollapsibleButton":  # a sub-section: drawn as its own block below
        return "▸ " + text_of(widget, "text") + " (below)"
    if cls == "QWidget":
        return "  ".join(describe(w) for w in widget.iter("widget") if w is not widget)
    if cls == "QLabel" and not text_of(widget, "text"):  # filled in at run time: say by what
        return f"({text_of(widget, 'toolTip').split(':')[0].lower()})"
    return cls


def panels():
    root = ET.parse(UI).getroot()
    sections = {w.get("name"): text_of(w, "text") for w in root.iter("widget") if w.get("class") == "ctkCollapsibleButton"}
    parents = {inner.get("name"): sections[outer.get("name")] for outer in root.iter("widget") if outer.get("name") in sections
               for inner in outer.iter("widget") if inner is not outer and inner.get("name") in sections}
    out = []
    # document order: a sub-section (Follow-up's Advanced) comes right after its section, as the panel shows it
    for button in root.iter("widget"):
        if button.get("class") != "ctkCollapsibleButton":
            continue
        rows = {}
        for item in button.find("layout").findall("item"):
            r = int(item.get("row"))
            w = item.find("widget")
            rows.setdefault(r, []).append((item.get("column"), w))
        lines = []
        for r in sorted(rows):
            cells = sorted(rows[r], key=lambda c: c[0])
            if len(cells) == 1:
                lines.append(describe(cells[0][1]))
            else:
                lines.append(f"{text_of(cells[0][1], 'text'):<26}{describe(cells[1][1])}")
        title = text_of(button, "text")
        out.append((f"{parents[button.get('name')]} › {title}" if button.get("name") in parents else title,
                    text_of(button, "collapsed") == "true", lines))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "Resources" / "Screenshots" / "desktop-panels.png"))
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    blocks = panels()
    n_lines = sum(1 + (0 if collapsed else len(lines)) for _, collapsed, lines in blocks) + 6
    fig = plt.figure(figsize=(7.5, 0.22 * n_lines + 0.6), dpi=110)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, 1)
    ax.set_ylim(n_lines + 1, 0)
    ax.axis("off")
    y = 0.8
    for title, collapsed, lines in blocks:
        height = 1 + (0 if collapsed else len(lines))
        ax.add_patch(FancyBboxPatch((0.02, y - 0.4), 0.96, height + 0.2, boxstyle="round,pad=0.01", fc="#eef2f7", ec="#5b7aa6"))
        ax.text(0.04, y + 0.1, ("▸ " if collapsed else "▾ ") + title, fontsize=9.5, weight="bold", color="#1d3557", va="center")
        for i, line in enumerate([] if collapsed else lines):
            ax.text(0.07, y + 1.1 + i, line, fontsize=7.2, family="monospace", va="center")
        y += height + 0.6
    for i, line in enumerate(["[ Apply ]   (turns into [ Cancel ] while a run is going)", "progress  [##########..........]  52%",
                              "status    Inpainting healthy 1: sampling step 13/25", "log       tissue maps: user tissue maps; crop (48, 48, 48) voxels ..."]):
        ax.text(0.04, y + i, line, fontsize=7.5, family="monospace", va="center", color="#222")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print(args.out)


if __name__ == "__main__":
    main()
