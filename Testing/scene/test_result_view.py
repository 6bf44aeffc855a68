"""What a user sees after a run, on a real MRML scene: every slice view on the result, the tumor as surfaces in 3D framed by
the camera, and the seed's and the box's labels apart (a grown tumor, then tumor inpainting in a box around it)."""

from __future__ import annotations

import numpy as np
import pytest
from scene_testing import SAMPLE_SPACING_MM, SEED_RAS, assert_surfaces_framed, assert_views_on, fresh_views, slice_offsets

from tumorgen_slicer import box as boxes
from tumorgen_slicer.context import SceneContext
from tumorgen_slicer.nodes import array_of, grid_of
from tumorgen_slicer.presenter import TUMOR_THRESHOLD, TumorGenPresenter

FAST = dict(steps=2, jump=2, resample=1)


@pytest.fixture(scope="module")
def grown(tmp_path_factory):
    """The sample with slice and 3D views, a seed placed in its point list and a tumor grown from it."""
    ctx = SceneContext.headless()
    p = TumorGenPresenter(ctx, work_dir=tmp_path_factory.mktemp("runs"))
    assert p.load_sample(spacing_mm=SAMPLE_SPACING_MM), p.state.error
    assert p.wait(timeout=300) == "done", p.state.error
    fresh_views(ctx)
    p.seed_points().AddControlPoint(*SEED_RAS)
    assert p.configure({"target_volume_cm3": 4.0})
    before = slice_offsets(ctx, SEED_RAS)
    assert p.grow(), p.state.error
    assert p.wait(timeout=300) == "done", p.state.error
    return p, before


def _tumor_centre(p) -> np.ndarray:
    node = p.concentration
    return grid_of(node).index_to_ras(np.argwhere(array_of(node) >= TUMOR_THRESHOLD).mean(axis=0))


def _segmentation(p, name: str):
    node = p.ctx.scene.GetFirstNodeByName(name)
    assert node is not None and node.IsA("vtkMRMLSegmentationNode"), name
    return node


def test_after_growing_every_view_shows_the_tumor(grown):
    p, before = grown
    ctx = p.ctx
    # the sample's views did not go through the seed: the growth moved them there
    assert max(along for along, _ in before.values()) > 5.0, before
    assert_views_on(ctx, _tumor_centre(p))
    # the tumor's labels as surfaces in 3D, the oedema a veil around the core; the slices hidden there; the camera on it
    segmentation = _segmentation(p, "Growth 1 labels segmentation")
    assert_surfaces_framed(ctx, segmentation)
    display, labels = segmentation.GetDisplayNode(), segmentation.GetSegmentation()
    opacities = {labels.GetSegment(labels.GetNthSegmentID(n)).GetName(): display.GetSegmentOpacity3D(labels.GetNthSegmentID(n))
                 for n in range(labels.GetNumberOfSegments())}
    if len(opacities) > 1:
        assert opacities["Peritumoral edema"] < 0.5 and max(opacities.values()) == 1.0, opacities
    else:  # a small tumor is all oedema: nothing inside to see through it to
        assert list(opacities.values()) == [1.0], opacities
    # the seed: shown in 3D, and through the surfaces around it
    seed = p.seed_points().GetDisplayNode()
    assert seed.GetVisibility3D() and seed.GetOccludedVisibility()


def test_the_seed_and_the_box_labels_do_not_cover_each_other(grown):
    p, _ = grown
    assert p.create_box(), p.state.error  # around the tumor: its centre is where the seed is
    centre = boxes.box_geometry(p.box)[0]
    assert np.linalg.norm(centre - np.asarray(p.seed())) < 10.0
    # Slicer writes a box's name at its centre, beside the seed's label: the box's name stays in the panels and the data
    # tree, the seed's label is one short word
    box = p.box.GetDisplayNode()
    assert not box.GetPropertiesLabelVisibility() and not box.GetPointLabelsVisibility()
    assert p.box.GetName() == "Resection box"
    points = p.seed_points()
    display = points.GetDisplayNode()
    assert display.GetPointLabelsVisibility() and points.GetNthControlPointLabel(0) == "seed"
    assert display.GetTextScale() < 3.0  # Slicer's default is 3 (% of the view's height)


def test_after_inpainting_every_view_shows_the_box_in_the_inputs_window(grown):
    p, _ = grown
    ctx = p.ctx
    if p.box is None:
        assert p.create_box(), p.state.error
    boxes.place_box(p.box, boxes.box_geometry(p.box)[0] + np.array([8.0, -6.0, 4.0]), boxes.box_geometry(p.box)[1])
    for n in range(ctx.scene.GetNumberOfNodesByClass("vtkMRMLSliceNode")):  # the user looks elsewhere meanwhile
        ctx.scene.GetNthNodeByClass(n, "vtkMRMLSliceNode").JumpSliceByCentering(0.0, -30.0, 0.0)
        ctx.scene.GetNthNodeByClass(n, "vtkMRMLSliceNode").SetSliceVisible(True)
    assert p.configure({**FAST, "samples": 1, "mode": "tumor"})
    assert p.inpaint(), p.state.error
    assert p.wait(timeout=300) == "done", p.state.error
    mask = p.node(p.state.results["mask"])
    centre = grid_of(mask).index_to_ras(np.argwhere(array_of(mask) > 0).mean(axis=0))
    assert_views_on(ctx, centre)
    # the grown tumor stays in 3D, framed with the box
    assert_surfaces_framed(ctx, _segmentation(p, "Growth 1 labels segmentation"))
    # the result in its input's window, which holds the box's voxels: before and after compare at a glance
    result, t1n = p.node(p.state.results["inpainted"]).GetDisplayNode(), p.input_node("t1n").GetDisplayNode()
    assert (result.GetWindow(), result.GetLevel()) == (t1n.GetWindow(), t1n.GetLevel()) and result.GetWindow() > 0
    inside = np.median(array_of(p.node(p.state.results["inpainted"]))[array_of(mask) > 0])
    assert abs(inside - result.GetLevel()) < result.GetWindow() / 2
    # the before/after toggle keeps the slices where the user has them
    ctx.scene.GetNthNodeByClass(0, "vtkMRMLSliceNode").JumpSliceByCentering(0.0, -30.0, 0.0)
    moved = slice_offsets(ctx, centre)
    assert p.show_result(False) and p.show_result(True)
    assert slice_offsets(ctx, centre) == moved
