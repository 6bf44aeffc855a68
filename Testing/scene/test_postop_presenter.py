"""Post-operative prediction through the presenter on a real MRML scene: the job it starts, the outputs it loads, the
retrieved cases side by side, a second run with the box moved, and what it refuses.

The backend job is the test task ``test_postop`` (Testing/support/tumorgen_test_tasks.py): the real task's inputs,
parameters (its own dataclass checks them) and outputs, without a model or a case library, so that these tests
run in seconds; the prediction itself is tested in Testing/tumorgen/postop.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scene_testing import (assert_surfaces_framed, assert_views_on, fake_postop_starter, fingerprint, fresh_views, slice_offsets, top_level_names,
                           view_layers, volume_nodes)

from tumorgen.settings import POSTOP
from tumorgen_slicer import box as boxes
from tumorgen_slicer.nodes import array_of, grid_of, ijk_to_ras
from tumorgen_slicer.presenter import TumorGenPresenter
from tumorgen_slicer.result_view import shown_surfaces

TUMOR_RAS = (-20.0, 10.0, 20.0)
OUTPUTS = {"postop", "std", "cavity", "composite", "region"}


@pytest.fixture
def predictor(sample, tmp_path):
    """A presenter on the sample whose post-operative predictions run as ``test_postop``, with slice views."""
    context, inputs = sample
    p = TumorGenPresenter(context, work_dir=tmp_path / "runs", starter=fake_postop_starter)
    for role, node_id in inputs.items():
        assert p.set_input(role, node_id)
    fresh_views(context)  # the sample's scene is shared
    return p


def _tumor_and_box(p: TumorGenPresenter) -> None:
    assert p.new_concentration()
    assert p.configure({"blob_amplitude": 1.0, "blob_sigma_mm": 5.0})
    assert p.add_blob(TUMOR_RAS)
    assert p.create_box(), p.state.error  # around the tumor


def _jobs(p: TumorGenPresenter) -> list[dict]:
    folders = sorted(f for f in p.work_dir.iterdir() if f.is_dir()) if p.work_dir.exists() else []
    return [json.loads((f / "job.json").read_text()) for f in folders]


def _predict(p: TumorGenPresenter) -> None:
    assert p.predict_postop(), p.state.error
    assert p.busy and p.state.running.startswith("Post-operative prediction")
    assert p.wait(timeout=120) == "done", p.state.error
    assert p.state.error == "" and p.state.last_task == "postop"


def test_a_prediction_loads_its_outputs_and_the_retrieved_cases(predictor):
    p, ctx = predictor, predictor.ctx
    _tumor_and_box(p)
    inputs_before = {role: fingerprint(p.input_node(role)) for role in p.state.inputs}
    concentration_before = fingerprint(p.concentration)
    nodes_before = volume_nodes(ctx)
    assert p.configure({"postop_k": 2, "postop_samples": 3, "postop_steps": 7, "retrieval": "tumor", "cfg": 2.0,
                        "postop_margin_mm": 4.0, "composite": False})
    _predict(p)

    # the job: the t1n, the box on its grid and the concentration; the panel's values under the task's own names
    job = _jobs(p)[-1]
    assert set(job["inputs"]) == {"t1n", "box", "concentration"}
    assert job["params"] == {"k": 2, "retrieval": "tumor", "cfg": 2.0, "samples": 3, "seed": 0, "steps": 7, "strength": 0.8,
                             "margin_mm": 4.0, "composite": False, "tumor_prompt": True}
    assert set(job["params"]) <= set(POSTOP.names())

    t1n = p.input_node("t1n")
    results = {k: p.node(v) for k, v in p.state.results.items()}
    assert set(results) == OUTPUTS | {f"retrieved-{n}-{scan}" for n in (1, 2) for scan in ("pre", "post")}
    assert volume_nodes(ctx) - nodes_before == {n.GetID() for n in results.values()}
    for node in results.values():
        np.testing.assert_allclose(ijk_to_ras(node), ijk_to_ras(t1n), atol=1e-4)
    assert results["cavity"].IsA("vtkMRMLLabelMapVolumeNode") and results["region"].IsA("vtkMRMLLabelMapVolumeNode")
    assert not results["postop"].IsA("vtkMRMLLabelMapVolumeNode")
    cavity = array_of(results["cavity"])
    box = p.box_mask().array.astype(bool)
    assert set(np.unique(cavity)) == {0, 4}
    np.testing.assert_array_equal(cavity == 4, box & (array_of(t1n) > 0))
    np.testing.assert_allclose(array_of(results["postop"])[cavity == 0], array_of(t1n)[cavity == 0])

    # the retrieved cases, best first, with their scores and the nodes of their scans
    retrieved = p.state.retrieved
    assert [(c["case"], c["score"], c["method"], c["label"]) for c in retrieved] == [
        ("sim-001", 0.5, "tumor", "1. sim-001 (IoU 0.50)"), ("sim-002", 0.25, "tumor", "2. sim-002 (IoU 0.25)")]
    for n, case in enumerate(retrieved, start=1):
        assert case["pre"] == results[f"retrieved-{n}-pre"].GetID() and case["post"] == results[f"retrieved-{n}-post"].GetID()
        assert p.node(case["pre"]).GetName() == f"Post-operative prediction 1 case {n} sim-00{n} pre"
    cm3 = (cavity == 4).sum() * np.prod(grid_of(t1n).spacing) / 1000
    assert p.state.postop_summary == f"cavity {round(cm3, 2):g} cm³; guided by 1. sim-001 (IoU 0.50), 2. sim-002 (IoU 0.25)"
    assert p.state.postop_summary in " ".join(p.state.log)

    # the views: the prediction, its uncertainty over it, the cavity as an outline, every view through the box
    layers = view_layers(ctx)
    assert set(layers) == {"Red", "Yellow", "Green"}
    for background, foreground, label, _ in layers.values():
        assert (background, foreground, label) == (results["postop"].GetID(), results["std"].GetID(), results["cavity"].GetID())
    centre = boxes.box_geometry(p.box)[0]
    for n in range(3):
        slice_to_ras = ctx.scene.GetNthNodeByClass(n, "vtkMRMLSliceNode").GetSliceToRAS()
        np.testing.assert_allclose([slice_to_ras.GetElement(r, 3) for r in range(3)], centre, atol=1e-6)
    assert results["std"].GetDisplayNode().GetColorNodeID() != "vtkMRMLColorTableNodeGrey"
    # the cavity as a surface in 3D, framed; the prediction in the t1n's window, as before and after compare
    surfaces = shown_surfaces(ctx)
    assert [n.GetName() for n in surfaces] == [f"{results['cavity'].GetName()} segmentation"]
    assert_surfaces_framed(ctx, surfaces[0])
    shown, predicted = t1n.GetDisplayNode(), results["postop"].GetDisplayNode()
    assert (predicted.GetWindow(), predicted.GetLevel()) == (shown.GetWindow(), shown.GetLevel())
    assert p.show_result(False) and view_layers(ctx)["Red"][0] == t1n.GetID()
    assert p.show_result(True) and view_layers(ctx)["Red"][0] == results["postop"].GetID()

    sh = ctx.subject_hierarchy
    assert {sh.GetItemName(sh.GetItemParent(sh.GetItemByDataNode(n))) for n in results.values()} == {"Post-operative prediction 1"}
    assert inputs_before == {role: fingerprint(p.input_node(role)) for role in inputs_before}
    assert fingerprint(p.concentration) == concentration_before


def test_the_uncertainty_overlay_follows_its_own_toggle_only(predictor):
    p, ctx = predictor, predictor.ctx
    _tumor_and_box(p)
    _predict(p)
    std = p.state.results["std"]

    def overlays() -> set[tuple[str, float]]:
        """Each slice view's foreground layer and its opacity."""
        composites = [ctx.scene.GetNthNodeByClass(n, "vtkMRMLSliceCompositeNode")
                      for n in range(ctx.scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode"))]
        return {(c.GetForegroundVolumeID(), round(c.GetForegroundOpacity(), 3)) for c in composites}

    assert overlays() == {(std, 0.4)}
    assert p.show_uncertainty(False) and overlays() == {(std, 0.0)}
    # "Show before" and back, "Show prediction", a retrieved case side by side and back: the overlay stays hidden
    assert p.show_result(False) and view_layers(ctx)["Red"][0] == p.input_node("t1n").GetID() and overlays() == {(std, 0.0)}
    assert p.show_result(True) and overlays() == {(std, 0.0)}
    assert p.show_retrieved(1) and p.show_result(True) and overlays() == {(std, 0.0)}
    _predict(p)  # a new prediction too: the toggle is still off
    assert overlays() == {(p.state.results["std"], 0.0)} and not p.state.showing_uncertainty
    assert p.show_uncertainty(True) and overlays() == {(p.state.results["std"], 0.4)}
    assert p.show_result(False) and overlays() == {(p.state.results["std"], 0.4)}


def test_a_retrieved_case_shows_side_by_side_with_the_prediction(predictor):
    p, ctx = predictor, predictor.ctx
    _tumor_and_box(p)
    assert p.configure({"postop_k": 2})
    _predict(p)
    results = p.state.results
    assert p.show_retrieved(2), p.state.error
    layers = view_layers(ctx)
    assert layers["Red"] == (results["postop"], None, results["cavity"], "Axial")
    assert layers["Yellow"] == (results["retrieved-2-post"], None, None, "Axial")
    assert layers["Green"] == (results["retrieved-2-pre"], None, None, "Axial")
    # the prediction's cavity drawn in its own view only: its segmentation (a surface in 3D) draws nothing in the slice
    # views, where it would lie over the retrieved case's scans too
    segmentations = [ctx.scene.GetNthNodeByClass(n, "vtkMRMLSegmentationNode")
                     for n in range(ctx.scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode"))]
    assert segmentations and not [s.GetName() for s in segmentations if s.GetDisplayNode() is not None
                                  and s.GetDisplayNode().GetVisibility() and s.GetDisplayNode().GetVisibility2D()]
    assert len({background for background, *_ in layers.values()}) == 3 and p.state.side_by_side == 2
    # the retrieved scans take the prediction's window: they are on its scale
    shown = p.node(results["postop"]).GetDisplayNode()
    for key in ("retrieved-2-post", "retrieved-2-pre"):
        display = p.node(results[key]).GetDisplayNode()
        assert (display.GetWindow(), display.GetLevel()) == (shown.GetWindow(), shown.GetLevel())
    # all three views cut through the cavity
    cavity_voxels = np.argwhere(array_of(p.node(results["cavity"])) > 0)
    centre = grid_of(p.node(results["cavity"])).index_to_ras(cavity_voxels.mean(axis=0))
    for n in range(3):
        slice_to_ras = ctx.scene.GetNthNodeByClass(n, "vtkMRMLSliceNode").GetSliceToRAS()
        np.testing.assert_allclose([slice_to_ras.GetElement(r, 3) for r in range(3)], centre, atol=1e-6)

    assert p.show_retrieved("1") and view_layers(ctx)["Yellow"][0] == results["retrieved-1-post"]
    assert not p.show_retrieved(3) and p.state.error == "choose a retrieved case from 1 to 2, got 3"
    assert not p.show_retrieved(1.5) and p.state.error == "choose a retrieved case from 1 to 2, got 1.5"
    assert p.state.side_by_side == 1
    # back to the prediction alone, in each view's own orientation
    assert p.show_result(True)
    assert {name: layer[3] for name, layer in view_layers(ctx).items()} == {"Red": "Axial", "Yellow": "Sagittal", "Green": "Coronal"}
    assert {layer[0] for layer in view_layers(ctx).values()} == {results["postop"]} and p.state.side_by_side == 0


def test_moving_the_box_and_predicting_again_gives_a_new_prediction(predictor):
    p, ctx = predictor, predictor.ctx
    _tumor_and_box(p)
    assert p.configure({"postop_k": 2})
    _predict(p)
    first = dict(p.state.results)
    first_cavity = array_of(p.node(first["cavity"])) > 0
    assert p.show_retrieved(1)
    centre, size, _ = boxes.box_geometry(p.box)
    boxes.place_box(p.box, centre + np.array([6.0, 0.0, 0.0]), size * 0.8)
    assert p.configure({"postop_k": 1, "retrieval": "random"})
    _predict(p)

    second = p.state.results
    assert not set(first.values()) & set(second.values())
    assert all(p.node(node_id) is not None for node_id in first.values())  # the first what-if stays to compare with
    assert top_level_names(ctx).count("Post-operative prediction 1") == 1 and "Post-operative prediction 2" in top_level_names(ctx)
    cavity = array_of(p.node(second["cavity"])) > 0
    np.testing.assert_array_equal(cavity, p.box_mask().array.astype(bool) & (array_of(p.input_node("t1n")) > 0))
    assert (cavity != first_cavity).any()
    assert [(c["case"], c["score"], c["label"]) for c in p.state.retrieved] == [("sim-001", None, "1. sim-001")]
    assert p.state.retrieved[0]["post"] == second["retrieved-1-post"]
    assert p.state.side_by_side == 0
    assert {name: layer for name, layer in view_layers(ctx).items()} == {
        name: (second["postop"], second["std"], second["cavity"], orientation)
        for name, orientation in (("Red", "Axial"), ("Yellow", "Sagittal"), ("Green", "Coronal"))}
    assert len(_jobs(p)) == 2


def test_a_segmentation_input_is_the_tumor_when_there_is_no_concentration(predictor, tmp_path):
    from tumorgen.volume_io import write_volume

    p = predictor
    t1n = p.input_node("t1n")
    grid = grid_of(t1n)
    labels = np.zeros(grid.size, np.uint8)
    centre = np.round(grid.ras_to_index(TUMOR_RAS)).astype(int)
    labels[tuple(slice(c - 3, c + 4) for c in centre)] = 2
    labels[tuple(slice(c - 1, c + 2) for c in centre)] = 3
    from tumorgen.volume import Volume

    fractional = write_volume(Volume(labels * 0.5, grid), tmp_path / "half-seg.nii.gz")  # labels 1 and 1.5
    assert not p.load_volume_file(fractional, role="seg")
    assert p.state.error == "half-seg.nii.gz: a segmentation holds whole labels 0-255 (BraTS: 1, 2, 3), found 1.5"
    labels_centre = grid.index_to_ras(np.argwhere(labels > 0).mean(axis=0))
    assert max(along for along, _ in slice_offsets(p.ctx, labels_centre).values()) > 5.0  # the views are elsewhere
    assert p.load_volume_file(write_volume(Volume(labels, grid), tmp_path / "case-seg.nii.gz"), role="seg"), p.state.error
    seg = p.input_node("seg")
    assert seg.IsA("vtkMRMLLabelMapVolumeNode") and seg.GetName() == "case-seg"
    np.testing.assert_array_equal(array_of(seg), labels)
    assert view_layers(p.ctx)["Red"][2] == seg.GetID()
    # every slice view goes through the labels chosen, as through a run's result
    assert_views_on(p.ctx, labels_centre)
    # a segmentation node chosen as the seg input (the desktop's node selector) too, by its segments' extent
    from tumorgen_slicer.nodes import jump_slices
    from tumorgen_slicer.segmentations import labelmap_to_segmentation

    segmentation = labelmap_to_segmentation(p.ctx, seg, "case segmentation")
    jump_slices(p.ctx, (0.0, 0.0, 0.0))
    assert p.set_input("seg", segmentation), p.state.error
    assert_views_on(p.ctx, labels_centre, tolerance_mm=1.5)
    assert p.set_input("seg", seg)
    assert p.create_box()
    boxes.place_box(p.box, TUMOR_RAS, (12.0, 12.0, 12.0))
    _predict(p)
    assert set(_jobs(p)[-1]["inputs"]) == {"t1n", "box", "seg"}
    assert (array_of(p.node(p.state.results["cavity"])) == 4).any()


def test_what_a_prediction_refuses_is_one_line_and_starts_nothing(predictor):
    p, ctx = predictor, predictor.ctx
    nodes_before = volume_nodes(ctx)
    refusals = []

    def refused(expected: str) -> None:
        assert not p.predict_postop()
        assert expected in p.state.error and "\n" not in p.state.error, p.state.error
        refusals.append(p.state.error)

    refused("no resection box: create one first")
    assert p.create_box()
    refused("post-operative prediction needs the tumor: grow or paint a concentration, or choose a segmentation (seg)")
    assert p.new_concentration()
    refused(f"the concentration {p.concentration.GetName()!r} holds no tumor (c ≥ 0.25): grow or paint one first")
    assert p.configure({"blob_amplitude": 1.0, "blob_sigma_mm": 5.0}) and p.add_blob(TUMOR_RAS)
    boxes.place_box(p.box, (500.0, 500.0, 500.0), (10.0, 10.0, 10.0))
    refused("the resection box holds no voxel of the t1n: move it onto the image")
    assert not p.configure({"postop_k": 0}) and p.state.error == "k must be a whole number in [1, 16], got 0"
    assert not p.configure({"retrieval": "nearest"}) and p.state.error == "retrieval must be one of tumor, image, random, got 'nearest'"
    assert not p.show_retrieved(1) and p.state.error == "no post-operative prediction to compare yet: predict first"
    assert not p.busy and volume_nodes(ctx) - nodes_before == {p.concentration.GetID(),
                                                                p.concentration.GetNodeReference("tumorgenOutlines").GetID()}
    assert _jobs(p) == [] and len(refusals) == 4
