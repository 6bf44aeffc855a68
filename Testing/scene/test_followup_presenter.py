"""Follow-up prediction through the presenter on a real MRML scene: the series table and its checks, the job it starts
(the series as a CSV file in the job's folder), the outputs it loads, the time points in a Slicer sequence (real
vtkMRMLSequenceNode / vtkMRMLSequenceBrowserNode of slicer-core), the forecast plot, the composed what-if after a
resection, cancel, and what it refuses.

The backend job is the test task ``test_followup`` (Testing/support/tumorgen_test_tasks.py): the real task's inputs,
parameters (its own dataclass checks them) and outputs, made by arithmetic, so that these tests run in seconds.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from scene_testing import assert_surfaces_framed, assert_views_on, fake_starter, fingerprint, fresh_views, view_layers, volume_nodes

from tumorgen.settings import FOLLOWUP
from tumorgen_slicer import box as boxes
from tumorgen_slicer import sequences
from tumorgen_slicer.nodes import array_of, grid_of
from tumorgen_slicer.presenter import TumorGenPresenter
from tumorgen_slicer.result_view import shown_surfaces

TUMOR_RAS = (-20.0, 10.0, 20.0)
OUTPUTS = {"followup", "std", "probability", "labels", "concentration", "region"}


@pytest.fixture
def predictor(sample, tmp_path):
    """A presenter on the sample whose follow-ups run as ``test_followup``, with slice views and a plot view, and no
    sequence left over from another test (the sample's scene is shared)."""
    context, inputs = sample
    p = TumorGenPresenter(context, work_dir=tmp_path / "runs", starter=fake_starter)
    for role, node_id in inputs.items():
        assert p.set_input(role, node_id)
    scene = context.scene
    for class_name in ("vtkMRMLSequenceBrowserNode", "vtkMRMLSequenceNode", "vtkMRMLPlotViewNode"):
        for node in [scene.GetNthNodeByClass(n, class_name) for n in range(scene.GetNumberOfNodesByClass(class_name))]:
            scene.RemoveNode(node)
    fresh_views(context)
    scene.AddNewNodeByClass("vtkMRMLPlotViewNode").SetLayoutName("PlotView1")
    return p


def _tumor(p: TumorGenPresenter) -> None:
    assert p.new_concentration()
    assert p.configure({"blob_amplitude": 1.0, "blob_sigma_mm": 5.0})
    assert p.add_blob(TUMOR_RAS)


def _jobs(p: TumorGenPresenter) -> list[tuple[Path, dict]]:
    folders = sorted(f for f in p.work_dir.iterdir() if f.is_dir()) if p.work_dir.exists() else []
    return [(f, json.loads((f / "job.json").read_text())) for f in folders]


def _predict(p: TumorGenPresenter) -> None:
    assert p.predict_followup(), p.state.error
    assert p.busy and p.state.running.startswith("Follow-up")
    assert p.wait(timeout=120) == "done", p.state.error
    assert p.state.error == "" and p.state.last_task == "followup"


def _sequence_values(p: TumorGenPresenter) -> dict[str, list[str]]:
    browser = p.node(p.state.followup_browser_id)
    return {q: [s.GetNthIndexValue(n) for n in range(s.GetNumberOfDataNodes())] for q, s in sequences.sequences(browser).items()}


def _visible_segmentations(ctx) -> list[str]:
    """The segmentation nodes drawn in the slice views (as outlines) or in 3D, by name."""
    scene = ctx.scene
    nodes = [scene.GetNthNodeByClass(n, "vtkMRMLSegmentationNode") for n in range(scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode"))]
    return [n.GetName() for n in nodes if n.GetDisplayNode() is not None and n.GetDisplayNode().GetVisibility()
            and (n.GetDisplayNode().GetVisibility2D() or n.GetDisplayNode().GetVisibility3D())]


def _assert_only_the_day_s_labels(p: TumorGenPresenter, labels_proxy, day: str) -> None:
    """The time point at ``day`` shows its own labels and no other: its segmentation (of the labels proxy) is the only one
    drawn, in 3D as surfaces and in the slice views."""
    from tumorgen_slicer.segmentations import segmentation_labels

    browser = p.node(p.state.followup_browser_id)
    surfaces = shown_surfaces(p.ctx)
    assert [n.GetName() for n in surfaces] == [f"{browser.GetName()} day {day} labels segmentation"]
    assert _visible_segmentations(p.ctx) == [surfaces[0].GetName()]
    np.testing.assert_array_equal(segmentation_labels(surfaces[0], labels_proxy).array, array_of(labels_proxy))
    assert_surfaces_framed(p.ctx, surfaces[0])


def test_the_series_table_is_kept_in_day_order_and_checked_as_the_engine_checks_it(predictor, tmp_path):
    p = predictor
    assert p.state.series == [] and p.state.followup_default_day is None
    assert p.followup_day_range() == (FOLLOWUP["day"].minimum, FOLLOWUP["day"].maximum)  # no day yet: the setting's range
    assert p.add_series_row(60, 3.5) and p.add_series_row("0", "2.0") and p.add_series_row(30.0, 2.5)
    assert p.state.series == [{"day": 0.0, "size": 2.0}, {"day": 30.0, "size": 2.5}, {"day": 60.0, "size": 3.5}]
    assert p.state.followup_default_day == 150.0
    # the day slider spans the latest scan to a year after it: the default day a quarter of the way, not at its far left
    low, high = p.followup_day_range()
    assert (low, high) == (60.0, 420.0) and (150.0 - low) / (high - low) == 0.25
    assert p.configure({"followup_day": 500}) and p.followup_day_range() == (60.0, 500.0)  # a day beyond: wider
    assert p.configure({"followup_day": 3650}) and p.followup_day_range() == (60.0, 3650.0)
    assert p.configure({"followup_day": None}) and p.followup_day_range() == (60.0, 420.0)
    assert not p.add_series_row(30, 9.0) and p.state.error == "day 30 is in the series already: remove that row first"
    assert not p.add_series_row(90, 0) and p.state.error == "a tumor size must be a positive volume in cm³, got 0"
    assert not p.add_series_row(90, "big") and p.state.error == "a tumor size is a volume in cm³, got 'big'"
    assert not p.add_series_row(-5, 1.0) and p.state.error == "day must be a number in [0, 3650] day, got -5.0"
    assert p.remove_series_row(2) and [r["day"] for r in p.state.series] == [0.0, 30.0] and p.state.followup_default_day == 120.0
    assert not p.remove_series_row(2) and p.state.error == "no row 2 in the series: it has 2 rows"

    good = tmp_path / "series.csv"
    good.write_text("day,size,rt_start\n0,1.5,20\n40,2.0,20\n100,2.4,20\n")
    assert p.load_series(good), p.state.error
    assert p.state.series == [{"day": 0.0, "size": 1.5}, {"day": 40.0, "size": 2.0}, {"day": 100.0, "size": 2.4}]
    assert p.state.series_rt_start == 20.0 and p.state.followup_default_day == 190.0
    unordered = tmp_path / "unordered.csv"
    unordered.write_text("day,size\n0,1.5\n40,2.0\n20,2.4\n")
    assert not p.load_series(unordered)
    assert p.state.error == f"{unordered}: dates out of order: day 20 comes after day 40" and "\n" not in p.state.error
    negative = tmp_path / "negative.csv"
    negative.write_text("day,size\n0,1.5\n40,-2.0\n")
    assert not p.load_series(negative) and p.state.error == f"{negative}: the volume at day 40 is negative (-2 cm³)"
    assert len(p.state.series) == 3  # a refused file leaves the table as it was

    # the current tumor, measured: the concentration (c ≥ 0.25) being edited
    _tumor(p)
    assert p.add_current_to_series(130), p.state.error
    assert p.state.series[-1] == {"day": 130.0, "size": round(p.state.tumor_cm3, 4)} and p.state.tumor_cm3 > 0.5

    # a single row is no series: the engine's check, one line, and no job
    for _ in range(3):
        assert p.remove_series_row(0)
    assert not p.predict_followup()
    assert p.state.error == "the series table: a follow-up needs at least two time points, got 1" and _jobs(p) == []


def test_a_followup_loads_its_outputs_and_its_time_points_go_into_a_sequence(predictor):
    p, ctx = predictor, predictor.ctx
    _tumor(p)
    t1n = p.input_node("t1n")
    inputs_before = {role: fingerprint(p.input_node(role)) for role in p.state.inputs}
    nodes_before = volume_nodes(ctx)
    assert p.add_series_row(0, 2.0) and p.add_series_row(60, 3.0)
    assert p.configure({"followup_samples": 2, "followup_steps": 3, "followup_day": 150, "draws": 8, "route": "fk"})
    _predict(p)

    # the job: the t1n, the series as a CSV file in the job's own folder, the concentration; no resection box
    folder, job = _jobs(p)[-1]
    assert set(job["inputs"]) == {"t1n", "series", "concentration"}
    assert Path(job["inputs"]["series"]) == folder / "inputs" / "series.csv"
    assert (folder / "inputs" / "series.csv").read_text() == "day,size\n0,2.0000\n60,3.0000\n"
    expected = {**{k: v for k, v in FOLLOWUP.defaults().items() if v is not None}, "day": 150.0, "samples": 2, "steps": 3, "draws": 8}
    assert job["params"] == expected and set(job["params"]) <= set(FOLLOWUP.names())

    results = {k: p.node(v) for k, v in p.state.results.items()}
    assert set(results) == OUTPUTS
    assert {k for k, n in results.items() if n.IsA("vtkMRMLLabelMapVolumeNode")} == {"labels", "region"}
    assert volume_nodes(ctx) - nodes_before >= {n.GetID() for n in results.values()}
    labels = array_of(results["labels"])
    assert set(np.unique(labels)) == {0, 2, 3}
    probability = array_of(results["probability"])
    assert 0.0 <= probability.min() and probability.max() <= 1.0
    assert probability[labels == 3].mean() > 0.8 and probability[labels == 0].mean() < 0.01

    # the forecast and the summary, read into the state
    summary = p.state.followup_summary
    assert (summary["day"], summary["last_day"]) == (150.0, 60.0)
    assert summary["observed"] == {"days": [0.0, 60.0], "sizes_cm3": [2.0, 3.0]}
    median = 3.0 * (3.0 / 2.0) ** (90 / 60)
    assert summary["forecast_cm3"]["median"] == pytest.approx(median, abs=1e-3)
    rows = p.state.forecast_rows
    assert rows[0]["day"] == 0.0 and rows[-1]["day"] == pytest.approx(165.0) and all(a["day"] < b["day"] for a, b in zip(rows, rows[1:]))
    assert [(r["day"], r["observed"]) for r in rows if r["observed"] is not None] == [(0.0, 2.0), (60.0, 3.0)]
    assert all(r["low"] <= r["median"] <= r["high"] for r in rows)
    low, high = summary["forecast_cm3"]["low"], summary["forecast_cm3"]["high"]
    assert p.state.followup_text == (f"day 150: forecast {median:.3g} cm³ (90% interval {low:.3g}–{high:.3g}), "
                                     f"predicted tumor {summary['predicted_cm3']:.3g} cm³")

    # the sequence: the latest scan at day 60 and the follow-up at day 150, for the t1n, the probability and the labels
    browser = p.node(p.state.followup_browser_id)
    assert browser.IsA("vtkMRMLSequenceBrowserNode") and browser.GetAttribute(sequences.FOLLOWUP_OF) == t1n.GetID()
    assert _sequence_values(p) == {q: ["60", "150"] for q in ("t1n", "probability", "labels")}
    assert p.state.followup_days == [60.0, 150.0]
    for sequence in sequences.sequences(browser).values():
        assert (sequence.GetIndexName(), sequence.GetIndexUnit(), sequence.GetIndexType()) == ("day", "day", sequence.NumericIndex)
    master = browser.GetMasterSequenceNode()
    assert master.GetAttribute(sequences.QUANTITY) == "t1n" and browser.GetSelectedItemNumber() == 1
    np.testing.assert_array_equal(array_of(master.GetDataNodeAtValue("60")), array_of(t1n))

    # the views show the browser's proxies, at day 150: the follow-up, its probability over it, its labels as outlines
    proxies = {q: browser.GetProxyNode(s) for q, s in sequences.sequences(browser).items()}
    for background, foreground, label, _ in view_layers(ctx).values():
        assert (background, foreground, label) == (proxies["t1n"].GetID(), proxies["probability"].GetID(), proxies["labels"].GetID())
    np.testing.assert_array_equal(array_of(proxies["t1n"]), array_of(results["followup"]))
    np.testing.assert_array_equal(array_of(proxies["labels"]), labels)
    assert proxies["labels"].IsA("vtkMRMLLabelMapVolumeNode")
    display = proxies["probability"].GetDisplayNode()
    assert display.GetColorNodeID() != "vtkMRMLColorTableNodeGrey" and display.GetApplyThreshold()
    assert (display.GetWindow(), display.GetLevel()) == (1.0, 0.5)
    # every view on the predicted tumor, its labels as surfaces in 3D
    assert_views_on(ctx, grid_of(results["labels"]).index_to_ras(np.argwhere(labels > 0).mean(axis=0)))
    surfaces = shown_surfaces(ctx)
    assert [n.GetName() for n in surfaces] == [f"{results['labels'].GetName()} segmentation"]
    assert_surfaces_framed(ctx, surfaces[0])

    # stepping back to the latest scan: the views show it, with the tumor now
    assert p.show_followup_day(60), p.state.error
    np.testing.assert_array_equal(array_of(proxies["t1n"]), array_of(t1n))
    assert set(np.unique(array_of(proxies["labels"]))) <= {0, 1, 2, 3}
    np.testing.assert_array_equal(array_of(proxies["probability"]) > 0, array_of(p.concentration) >= 0.25)
    # only its own labels: as outlines (the labels proxy) and as surfaces in 3D; day 150's go from the slice views and 3D
    _assert_only_the_day_s_labels(p, proxies["labels"], "60")
    assert p.show_followup_day(150), p.state.error
    _assert_only_the_day_s_labels(p, proxies["labels"], "150")
    np.testing.assert_array_equal(array_of(proxies["labels"]), labels)
    # the same when Slicer's sequence toolbar steps the browser itself (the desktop module has no control of its own)
    browser.SetSelectedItemNumber(0)
    assert p.state.followup_day_shown == 60.0 and p.state.error == ""
    _assert_only_the_day_s_labels(p, proxies["labels"], "60")
    np.testing.assert_array_equal(array_of(proxies["t1n"]), array_of(t1n))
    browser.SetSelectedItemNumber(1)
    assert p.state.followup_day_shown == 150.0
    _assert_only_the_day_s_labels(p, proxies["labels"], "150")
    assert not p.show_followup_day(99) and p.state.error == "no time point at day 99 in the follow-up series (days: 60, 150)"

    # the plot: the forecast curve and the measured points in the plot view
    chart_id = ctx.scene.GetFirstNodeByClass("vtkMRMLPlotViewNode").GetPlotChartNodeID()
    chart = ctx.scene.GetNodeByID(chart_id)
    assert chart.GetTitle() == "Follow-up forecast (day 150)" and chart.GetNumberOfPlotSeriesNodes() == 4
    forecast = chart.GetNthPlotSeriesNode(1).GetTableNode()
    assert forecast.GetNumberOfRows() == len(rows) and forecast.GetTable().GetValueByName(0, "median").ToDouble() == rows[0]["median"]

    assert inputs_before == {role: fingerprint(p.input_node(role)) for role in inputs_before}


def test_predicting_the_same_day_again_replaces_its_time_point_and_another_day_adds_one(predictor):
    p = predictor
    _tumor(p)
    assert p.add_series_row(0, 2.0) and p.add_series_row(60, 3.0)
    assert p.configure({"followup_day": 150})
    _predict(p)
    first = dict(p.state.results)
    assert p.remove_series_row(1) and p.add_series_row(60, 4.5)  # a faster growth
    _predict(p)
    second = p.state.results
    assert not set(first.values()) & set(second.values())
    assert _sequence_values(p)["t1n"] == ["60", "150"]
    browser = p.node(p.state.followup_browser_id)
    item = sequences.sequences(browser)["labels"].GetDataNodeAtValue("150")
    np.testing.assert_array_equal(array_of(item), array_of(p.node(second["labels"])))
    assert (array_of(p.node(second["labels"])) != array_of(p.node(first["labels"]))).any()

    assert p.configure({"followup_day": None})  # the default: 90 days after the latest scan
    _predict(p)
    assert p.state.followup_summary["day"] == 150.0 and _sequence_values(p)["t1n"] == ["60", "150"]
    assert p.configure({"followup_day": 400})
    _predict(p)
    assert _sequence_values(p) == {q: ["60", "150", "400"] for q in ("t1n", "probability", "labels")}
    assert p.state.followup_days == [60.0, 150.0, 400.0] and len(_jobs(p)) == 4

    # a series with a later latest scan moves the observed time point
    assert p.add_series_row(100, 3.6) and p.configure({"followup_day": 150})
    _predict(p)
    assert _sequence_values(p)["t1n"] == ["100", "150", "400"]


def test_after_resection_the_box_goes_with_the_job_and_the_cavity_comes_back(predictor):
    p = predictor
    _tumor(p)
    assert p.add_series_row(0, 2.0) and p.add_series_row(60, 3.0)
    assert p.configure({"followup_resect": True})
    assert not p.predict_followup() and p.state.error == "no resection box: create one first"
    assert p.create_box(), p.state.error
    boxes.place_box(p.box, TUMOR_RAS, (8.0, 8.0, 8.0))  # part of the tumor: a residual stays outside it
    _predict(p)
    folder, job = _jobs(p)[-1]
    assert set(job["inputs"]) == {"t1n", "series", "concentration", "resect"}
    box = p.box_mask().array.astype(bool)
    t1n = p.input_node("t1n")
    results = {k: p.node(v) for k, v in p.state.results.items()}
    assert set(results) == OUTPUTS | {"postop", "residual"}
    labels = array_of(results["labels"])
    np.testing.assert_array_equal(labels == 4, box & (array_of(t1n) > 0))
    assert (labels == 2).any() and not (array_of(results["residual"])[box] > 0).any()
    # the summary says which volume is which: the forecast is the whole tumor's, had it not been resected; the predicted
    # tumor is the residual, regrown to the day
    summary = p.state.followup_summary
    forecast = summary["forecast_cm3"]
    assert 0 < summary["residual_fraction"] < 1
    assert p.state.followup_text == (f"day 150: forecast without resection {forecast['median']:.3g} cm³ (90% interval "
                                     f"{forecast['low']:.3g}–{forecast['high']:.3g}); residual tumor at day 150: "
                                     f"{summary['predicted_cm3']:.3g} cm³")

    assert p.configure({"followup_resect": False})
    _predict(p)
    assert p.state.followup_text.startswith("day 150: forecast ") and ", predicted tumor " in p.state.followup_text
    assert "resection" not in p.state.followup_text and "residual" not in p.state.followup_text
    assert set(_jobs(p)[-1][1]["inputs"]) == {"t1n", "series", "concentration"}
    assert not (array_of(p.node(p.state.results["labels"])) == 4).any()


def test_a_segmentation_is_the_tumor_when_there_is_no_concentration(predictor, tmp_path):
    from tumorgen.volume import Volume
    from tumorgen.volume_io import write_volume

    p = predictor
    grid = grid_of(p.input_node("t1n"))
    labels = np.zeros(grid.size, np.uint8)
    centre = np.round(grid.ras_to_index(TUMOR_RAS)).astype(int)
    labels[tuple(slice(c - 3, c + 4) for c in centre)] = 2
    assert p.load_volume_file(write_volume(Volume(labels, grid), tmp_path / "case-seg.nii.gz"), role="seg"), p.state.error
    assert p.add_series_row(0, 1.0) and p.add_current_to_series(45), p.state.error
    assert p.state.series[-1]["size"] == round(7 ** 3 * grid.voxel_volume_mm3 / 1000, 4)
    _predict(p)
    assert set(_jobs(p)[-1][1]["inputs"]) == {"t1n", "series", "seg"}
    browser = p.node(p.state.followup_browser_id)
    observed = sequences.sequences(browser)["labels"].GetDataNodeAtValue("45")
    np.testing.assert_array_equal(array_of(observed), labels)


def test_cancel_stops_a_followup_and_loads_nothing(predictor):
    p, ctx = predictor, predictor.ctx
    _tumor(p)
    assert p.add_series_row(0, 2.0) and p.add_series_row(60, 3.0)
    assert p.configure({"followup_samples": 16, "followup_steps": 1000})  # 32 s of stand-in sampling
    nodes_before = volume_nodes(ctx)
    assert p.predict_followup(), p.state.error
    name = p.state.running
    while p.poll() and p.state.progress == 0.0:  # until the job is sampling
        time.sleep(0.05)
    assert p.cancel() and p.wait(timeout=60) == "cancelled"
    assert p.state.message == f"{name} cancelled" and p.state.results == {} and p.state.followup_browser_id == ""

    assert volume_nodes(ctx) == nodes_before and ctx.scene.GetNumberOfNodesByClass("vtkMRMLSequenceNode") == 0


def test_what_a_followup_refuses_is_one_line_and_starts_nothing(predictor):
    p, ctx = predictor, predictor.ctx

    def refused(expected: str) -> None:
        assert not p.predict_followup()
        assert p.state.error == expected and "\n" not in p.state.error, p.state.error

    t1n = p.state.inputs.pop("t1n")
    refused("choose a t1n input volume first (or load the sample)")
    p.state.inputs["t1n"] = t1n
    refused("the series table: a follow-up needs at least two time points, got 0")
    assert p.add_series_row(0, 2.0) and p.add_series_row(60, 3.0)
    refused("a follow-up needs the tumor: grow or paint a concentration, or choose a segmentation (seg)")
    assert p.new_concentration()
    refused(f"the concentration {p.concentration.GetName()!r} holds no tumor (c ≥ 0.25): grow or paint one first")
    assert not p.add_current_to_series(90)
    assert p.state.error == f"the concentration {p.concentration.GetName()!r} holds no tumor (c ≥ 0.25): grow or paint one first"
    assert p.configure({"rt_start": -3}) is False and p.state.error == "rt_start must be a number in [0, 3650] day, got -3.0"
    assert not p.configure({"route": "magic"}) and p.state.error == "route must be one of fk, guided, got 'magic'"
    assert not p.show_forecast_plot() and p.state.error == "no forecast to plot yet: predict a follow-up first"
    assert not p.show_followup_day(150)
    assert p.state.error == "no time point at day 150 in the follow-up series (days: none yet: predict a follow-up first)"
    assert not p.busy and _jobs(p) == [] and ctx.scene.GetNumberOfNodesByClass("vtkMRMLSequenceNode") == 0


def test_the_presenter_loads_what_the_followup_task_writes():
    """The presenter's label outputs are the task's (the GUI process cannot import tumorgen.tasks: it loads torch)."""
    from tumorgen.tasks.followup import LABEL_OUTPUTS, OUTPUT_FILES
    from tumorgen_slicer import followup_actions

    assert followup_actions.LABEL_OUTPUTS == LABEL_OUTPUTS
    assert OUTPUTS | {"postop", "residual", "forecast", "summary"} == set(OUTPUT_FILES)
