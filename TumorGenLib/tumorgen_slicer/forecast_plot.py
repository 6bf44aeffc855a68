"""The follow-up's forecast plot: the measured sizes, the median forecast and its interval, day by day.

The rows are ``forecast.csv``'s (:func:`read_forecast`: ``day``, ``median``, ``low``, ``high`` in cm³ and ``observed``,
the measured size on a measured day). The desktop draws them with MRML plot nodes in Slicer's plot view
(:func:`forecast_chart`, :func:`show_chart`); the web app as a small inline SVG (:func:`forecast_svg`).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from xml.sax.saxutils import escape

CHART_NAME = "Follow-up forecast"
#: On the chart and its tables: what they are (found again by it, so each forecast updates the same plot).
FORECAST = "TumorGen.forecast"
#: Plot series: name -> (table, y column, colour, line style or None for points only).
CURVES = {"observed": ("observed", "size", (0.1, 0.1, 0.1), None), "median": ("forecast", "median", (0.85, 0.33, 0.1), "solid"),
          "low": ("forecast", "low", (0.85, 0.33, 0.1), "dash"), "high": ("forecast", "high", (0.85, 0.33, 0.1), "dash")}
TABLE_COLUMNS = {"forecast": ("day", "median", "low", "high"), "observed": ("day", "size")}


def read_forecast(path: str | Path) -> list[dict]:
    """The rows of ``forecast.csv`` as numbers (``observed`` None where the cell is blank)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return [{key: (float(text) if text.strip() else None) if key == "observed" else float(text)
                 for key, text in row.items() if key in ("day", "median", "low", "high", "observed")}
                for row in csv.DictReader(handle)]


# -- desktop: MRML plot nodes --------------------------------------------------------------------------------
def forecast_chart(ctx, rows: list[dict], observed: list[tuple[float, float]], day: float | None = None):
    """The forecast plot's chart node (created once per scene, then updated): ``rows`` as the median and interval lines,
    ``observed`` (day, cm³) as points."""
    chart = _tagged(ctx, "vtkMRMLPlotChartNode", "chart", CHART_NAME)
    tables = {name: _tagged(ctx, "vtkMRMLTableNode", name, f"{CHART_NAME} {name}") for name in TABLE_COLUMNS}
    _fill(tables["forecast"], TABLE_COLUMNS["forecast"], [[row[c] for c in TABLE_COLUMNS["forecast"]] for row in rows])
    _fill(tables["observed"], TABLE_COLUMNS["observed"], [list(point) for point in observed])
    for name, (table, column, colour, line) in CURVES.items():
        series = _tagged(ctx, "vtkMRMLPlotSeriesNode", name, f"{CHART_NAME} {name}")
        series.SetAndObserveTableNodeID(tables[table].GetID())
        series.SetXColumnName("day")
        series.SetYColumnName(column)
        series.SetPlotType(series.PlotTypeScatter)
        series.SetMarkerStyle(series.MarkerStyleCircle if line is None else series.MarkerStyleNone)
        series.SetLineStyle(series.LineStyleNone if line is None else series.LineStyleSolid if line == "solid" else series.LineStyleDash)
        series.SetColor(*colour)
        if not chart.HasPlotSeriesNodeID(series.GetID()):
            chart.AddAndObservePlotSeriesNodeID(series.GetID())
    chart.SetTitle(CHART_NAME + (f" (day {day:g})" if day is not None else ""))
    chart.SetXAxisTitle("day")
    chart.SetYAxisTitle("tumor volume (cm³)")
    return chart


def show_chart(ctx, chart) -> None:
    """Show ``chart`` in the plot views; inside Slicer, switch to a layout that has one (the Plots module's way)."""
    if getattr(ctx, "in_slicer", False) and ctx.scene.GetFirstNodeByClass("vtkMRMLLayoutNode") is not None:
        ctx.module_logic("Plots").ShowChartInLayout(chart)
        return
    ctx.app_logic.GetSelectionNode().SetActivePlotChartID(chart.GetID())
    ctx.app_logic.PropagatePlotChartSelection()


def _tagged(ctx, class_name: str, tag: str, name: str):
    scene = ctx.scene
    for n in range(scene.GetNumberOfNodesByClass(class_name)):
        node = scene.GetNthNodeByClass(n, class_name)
        if node.GetAttribute(FORECAST) == tag:
            return node
    node = scene.AddNewNodeByClass(class_name, name)
    node.SetAttribute(FORECAST, tag)
    return node


def _fill(table_node, columns, rows) -> None:
    import vtk

    table = vtk.vtkTable()
    for c, name in enumerate(columns):
        array = vtk.vtkDoubleArray()
        array.SetName(name)
        array.SetNumberOfValues(len(rows))
        for r, row in enumerate(rows):
            array.SetValue(r, float(row[c]))
        table.AddColumn(array)
    table_node.SetAndObserveTable(table)


# -- web: SVG -------------------------------------------------------------------------------------------------
def forecast_svg(rows: list[dict], observed: list[tuple[float, float]], day: float | None = None, *, width: int = 320,
                 height: int = 170, margin: int = 28) -> str:
    """The same plot as an SVG document: the interval as a band, the median as a line, the measured sizes as points and
    the requested day as a vertical line; "" when there is nothing to draw."""
    xs = [r["day"] for r in rows] + [d for d, _ in observed] + ([day] if day is not None else [])
    ys = [r["high"] for r in rows] + [s for _, s in observed]
    if not xs:
        return ""
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1.0
    y1 = max(ys) * 1.1 if ys and max(ys) > 0 else 1.0

    def at(x: float, y: float) -> str:
        return f"{margin + (x - x0) / (x1 - x0) * (width - 2 * margin):.1f},{height - margin - y / y1 * (height - 2 * margin):.1f}"

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'font-size="10" font-family="sans-serif" fill="currentColor">',  # the text in the page's own colour
             f'<line x1="{margin}" y1="{height - margin}" x2="{width - margin}" y2="{height - margin}" stroke="#888"/>',
             f'<line x1="{margin}" y1="{margin}" x2="{margin}" y2="{height - margin}" stroke="#888"/>',
             f'<text x="{margin}" y="{height - 8}">day {x0:g}</text>',
             f'<text x="{width - margin}" y="{height - 8}" text-anchor="end">day {x1:g}</text>',
             f'<text x="2" y="{margin - 8}">{y1:.3g} cm³</text>']
    if rows:
        band = [at(r["day"], r["high"]) for r in rows] + [at(r["day"], r["low"]) for r in reversed(rows)]
        parts.append(f'<polygon class="interval" points="{" ".join(band)}" fill="#d9541a" fill-opacity="0.2" stroke="none"/>')
        parts.append(f'<polyline class="median" points="{" ".join(at(r["day"], r["median"]) for r in rows)}" fill="none" '
                     'stroke="#d9541a" stroke-width="2"/>')
    if day is not None and math.isfinite(day):
        x = at(day, 0.0).split(",")[0]
        parts.append(f'<line class="day" x1="{x}" y1="{margin}" x2="{x}" y2="{height - margin}" stroke="#4a90d9" stroke-dasharray="4 3"/>')
    for d, s in observed:
        cx, cy = at(d, s).split(",")
        parts.append(f'<circle class="observed" cx="{cx}" cy="{cy}" r="3.5" fill="#eee" stroke="#222">'
                     f'<title>{escape(f"day {d:g}: {s:g} cm³")}</title></circle>')
    return "".join(parts) + "</svg>"
