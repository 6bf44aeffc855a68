"""The forecast plot: forecast.csv read back, the MRML plot nodes of the desktop (slicer-core's real table, plot series and
chart nodes) and the web app's SVG, on the same rows."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tumorgen_slicer.forecast_plot import CURVES, forecast_chart, forecast_svg, read_forecast, show_chart

ROWS = [{"day": 0.0, "median": 2.0, "low": 2.0, "high": 2.0, "observed": 2.0},
        {"day": 50.0, "median": 3.0, "low": 2.5, "high": 3.5, "observed": None},
        {"day": 100.0, "median": 4.0, "low": 3.0, "high": 5.5, "observed": 4.2}]
OBSERVED = [(0.0, 2.0), (100.0, 4.2)]
SVG = "{http://www.w3.org/2000/svg}"


def test_read_forecast_gives_numbers_and_none_for_a_blank_observation(tmp_path):
    path = tmp_path / "forecast.csv"
    path.write_text("day,median,low,high,observed\n0,2.0000,2.0000,2.0000,2.0000\n50,3,2.5,3.5,\n100,4,3,5.5,4.2\n")
    assert read_forecast(path) == ROWS


def test_the_svg_draws_the_band_the_median_the_measured_points_and_the_day():
    svg = ET.fromstring(forecast_svg(ROWS, OBSERVED, 80.0, width=300, height=150, margin=20))
    assert (svg.get("width"), svg.get("height")) == ("300", "150")
    median = [tuple(map(float, p.split(","))) for p in svg.find(f"{SVG}polyline[@class='median']").get("points").split()]
    # x: day 0 at the left margin, day 100 at the right one; y: 0 cm³ at the bottom margin, 1.1 × the highest high at the top
    top = 5.5 * 1.1
    assert median == [pytest.approx((20 + d / 100 * 260, 130 - m / top * 110), abs=0.06) for d, m in ((0, 2), (50, 3), (100, 4))]
    band = svg.find(f"{SVG}polygon[@class='interval']").get("points").split()
    assert len(band) == 2 * len(ROWS)
    points = svg.findall(f"{SVG}circle[@class='observed']")
    assert [(float(c.get("cx")), float(c.get("cy"))) for c in points] == [
        pytest.approx((20.0, 130 - 2 / top * 110), abs=0.06), pytest.approx((280.0, 130 - 4.2 / top * 110), abs=0.06)]
    assert points[1].find(f"{SVG}title").text == "day 100: 4.2 cm³"
    assert float(svg.find(f"{SVG}line[@class='day']").get("x1")) == pytest.approx(20 + 0.8 * 260, abs=0.06)


def test_the_svg_of_a_series_without_a_forecast_shows_its_points_and_nothing_draws_nothing():
    svg = ET.fromstring(forecast_svg([], OBSERVED))
    assert len(svg.findall(f"{SVG}circle")) == 2 and svg.find(f"{SVG}polyline") is None
    assert forecast_svg([], []) == ""


def test_the_chart_plots_the_rows_and_is_updated_by_the_next_forecast(ctx):
    view = ctx.scene.AddNewNodeByClass("vtkMRMLPlotViewNode")
    chart = forecast_chart(ctx, ROWS, OBSERVED, 80.0)
    assert chart.GetTitle() == "Follow-up forecast (day 80)" and chart.GetYAxisTitle() == "tumor volume (cm³)"
    series = {chart.GetNthPlotSeriesNode(n).GetName(): chart.GetNthPlotSeriesNode(n) for n in range(chart.GetNumberOfPlotSeriesNodes())}
    assert set(series) == {f"Follow-up forecast {name}" for name in CURVES}
    observed = series["Follow-up forecast observed"]
    assert observed.GetLineStyle() == observed.LineStyleNone and observed.GetMarkerStyle() == observed.MarkerStyleCircle
    table = observed.GetTableNode().GetTable()
    assert [(table.GetValue(r, 0).ToDouble(), table.GetValue(r, 1).ToDouble()) for r in range(table.GetNumberOfRows())] == OBSERVED
    high = series["Follow-up forecast high"]
    assert high.GetLineStyle() == high.LineStyleDash and high.GetYColumnName() == "high"
    forecast = high.GetTableNode().GetTable()
    assert [forecast.GetValueByName(r, "high").ToDouble() for r in range(forecast.GetNumberOfRows())] == [2.0, 3.5, 5.5]
    show_chart(ctx, chart)
    assert view.GetPlotChartNodeID() == chart.GetID()

    again = forecast_chart(ctx, ROWS[:2], OBSERVED[:1], None)
    assert again is chart and chart.GetNumberOfPlotSeriesNodes() == 4 and chart.GetTitle() == "Follow-up forecast"
    assert ctx.scene.GetNumberOfNodesByClass("vtkMRMLPlotSeriesNode") == 4 and ctx.scene.GetNumberOfNodesByClass("vtkMRMLTableNode") == 2
    assert high.GetTableNode().GetNumberOfRows() == 2
