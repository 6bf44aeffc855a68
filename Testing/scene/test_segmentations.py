"""Labels the Slicer way, on a real MRML scene: label maps load as segmentation nodes with named, coloured segments, and a
segmentation node chosen as the ``seg`` input goes to a run as a label map on the t1n's grid, labels by segment name.

Voxel counts are checked through Slicer's own export (``ExportSegmentsToLabelmapNode``), not through the code under test.
The syntheses run as the test task ``test_synthesize`` (Testing/support/tumorgen_test_tasks.py); the growth is the real
engine's, on the 2 mm sample.
"""

from __future__ import annotations

import numpy as np
import pytest
from scene_testing import SEED_RAS, fake_starter

from tumorgen.errors import InputError
from tumorgen.volume import Grid, Volume
from tumorgen.volume_io import read_volume
from tumorgen_slicer.nodes import LABEL_COLORS, add_volume, array_of, grid_of, volume_of
from tumorgen_slicer.presenter import TumorGenPresenter
from tumorgen_slicer.segmentations import (
    SEGMENT_NAMES,
    TERMINOLOGY,
    label_of_segment,
    labelmap_to_segmentation,
    segmentation_labels,
)

GRID = Grid(size=(12, 14, 10), spacing=(2.0, 1.5, 3.0), origin=(30.0, -20.0, 5.0), direction=(0, 1, 0, -1, 0, 0, 0, 0, 1))
TUMOR_RAS = (-20.0, 10.0, 20.0)


class Recorder:
    """The presenter's job starter (:func:`scene_testing.fake_starter`), keeping every run it starts."""

    def __init__(self):
        self.runs = []

    def __call__(self, spec, work_dir, device):
        run = fake_starter(spec, work_dir, device)
        self.runs.append(run)
        return run


@pytest.fixture
def recorded(sample, tmp_path):
    context, inputs = sample
    recorder = Recorder()
    p = TumorGenPresenter(context, work_dir=tmp_path / "runs", starter=recorder)
    for role, node_id in inputs.items():
        assert p.set_input(role, node_id)
    return p, recorder


def _segments(node) -> dict[str, tuple]:
    """Each segment's name: its colour and terminology."""
    segments = (node.GetSegmentation().GetNthSegment(n) for n in range(node.GetSegmentation().GetNumberOfSegments()))
    return {segment.GetName(): (segment.GetColor(), segment.GetTerminology()) for segment in segments}


def _voxels(ctx, node, segment_name: str, reference) -> np.ndarray:
    """A segment's voxels on ``reference``'s grid, exported by Slicer's segmentations logic into a scratch label map."""
    import slicer
    import vtk

    ids = vtk.vtkStringArray()
    ids.InsertNextValue(node.GetSegmentation().GetSegmentIdBySegmentName(segment_name))
    scratch = ctx.scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "scratch")
    try:
        assert slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(node, ids, scratch, reference)
        return array_of(scratch) > 0
    finally:
        ctx.scene.RemoveNode(scratch)


def _fingerprint(node) -> tuple:
    """Everything about a segmentation node that using it as an input must not change."""
    from vtk.util.numpy_support import vtk_to_numpy

    segmentation = node.GetSegmentation()
    segments = []
    for n in range(segmentation.GetNumberOfSegments()):
        segment_id = segmentation.GetNthSegmentID(n)
        segment = segmentation.GetSegment(segment_id)
        image = node.GetBinaryLabelmapInternalRepresentation(segment_id)
        segments.append((segment_id, segment.GetName(), segment.GetColor(), segment.GetLabelValue(), image.GetExtent(),
                         vtk_to_numpy(image.GetPointData().GetScalars()).tobytes()))
    return node.GetName(), node.GetMTime(), segmentation.GetMTime(), segmentation.SerializeAllConversionParameters(), segments


def _drawn(ctx, reference, masks: dict[str, np.ndarray], name: str = "drawn"):
    """A segmentation drawn on ``reference`` (its reference geometry) with one segment per mask, each stored on the
    smallest box around it (as the Segment Editor stores them), made through Slicer's segmentations logic."""
    import slicer

    node = ctx.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    node.SetReferenceImageGeometryParameterFromVolumeNode(reference)
    grid = grid_of(reference)
    for segment_name, mask in masks.items():
        voxels = np.argwhere(mask)
        low, high = voxels.min(axis=0), voxels.max(axis=0) + 1
        crop = Grid(size=tuple(high - low), spacing=grid.spacing, origin=tuple(grid.index_to_lps(low)), direction=grid.direction)
        piece = add_volume(ctx, Volume(mask[tuple(slice(a, b) for a, b in zip(low, high))].astype(np.uint8), crop), "piece",
                           labelmap=True)
        image = slicer.vtkSlicerSegmentationsModuleLogic.CreateOrientedImageDataFromVolumeNode(piece)
        node.AddSegmentFromBinaryLabelmapRepresentation(image, segment_name, (0.5, 0.5, 0.5))
        ctx.scene.RemoveNode(piece)
    return node


# -- label map -> segmentation --------------------------------------------------------------------------------
def test_a_label_map_loads_as_a_segmentation_with_a_named_coloured_segment_per_label_present(ctx):
    labels = np.zeros(GRID.size, np.uint8)
    labels[2:9, 3:11, 2:8] = 2
    labels[4:7, 5:9, 3:6] = 3
    labels[5, 6:8, 4] = 1
    labelmap = add_volume(ctx, Volume(labels, GRID), "case-seg", labelmap=True)
    before = array_of(labelmap).tobytes(), labelmap.GetImageData().GetMTime()

    node = labelmap_to_segmentation(ctx, labelmap)

    assert node.IsA("vtkMRMLSegmentationNode") and node.GetName() == "case-seg segmentation" and node.GetScene() is ctx.scene
    segments = _segments(node)
    assert list(segments) == ["Necrotic tumor core", "Peritumoral edema", "Enhancing tumor"]  # no cavity: label 4 is absent
    for value in (1, 2, 3):
        colour, terminology = segments[SEGMENT_NAMES[value]]
        assert colour == pytest.approx(LABEL_COLORS[value][1])
        assert terminology == TERMINOLOGY[value]
        assert _voxels(ctx, node, SEGMENT_NAMES[value], labelmap).sum() == (labels == value).sum() > 0
    np.testing.assert_array_equal(_voxels(ctx, node, "Enhancing tumor", labelmap), labels == 3)
    assert "SCT^6574001^Necrosis" in TERMINOLOGY[1] and "SCT^79654002^Edema" in TERMINOLOGY[2]
    display = node.GetDisplayNode()
    assert display is not None and display.GetVisibility2DOutline() and not display.GetVisibility2DFill()
    # its own grid is the label map's; back as labels it is the label map again; the label map is untouched
    assert grid_of(node).matches(GRID)
    np.testing.assert_array_equal(array_of(node), labels)
    assert (array_of(labelmap).tobytes(), labelmap.GetImageData().GetMTime()) == before


def test_a_cavity_is_a_segment_too_and_an_empty_label_map_a_segmentation_without_segments(ctx):
    labels = np.zeros(GRID.size, np.uint8)
    labels[3:6, 3:6, 3:6] = 4
    node = labelmap_to_segmentation(ctx, add_volume(ctx, Volume(labels, GRID), "cavity", labelmap=True), "Post-op cavity")
    assert node.GetName() == "Post-op cavity" and list(_segments(node)) == ["Resection cavity"]
    assert _segments(node)["Resection cavity"][0] == pytest.approx(LABEL_COLORS[4][1])
    np.testing.assert_array_equal(array_of(node), labels)

    empty = labelmap_to_segmentation(ctx, add_volume(ctx, Volume(np.zeros(GRID.size, np.uint8), GRID), "none", labelmap=True))
    assert empty.GetSegmentation().GetNumberOfSegments() == 0
    assert grid_of(empty).matches(GRID) and not array_of(empty).any()


# -- segmentation -> label map --------------------------------------------------------------------------------
@pytest.mark.parametrize("name, value", [("Necrotic tumor core", 1), ("NCR", 1), ("necrosis", 1), ("ncr/net", 1),
                                         ("Peritumoral edema", 2), ("ED", 2), ("Edema", 2), ("peritumoral_oedema", 2),
                                         ("Enhancing tumor", 3), ("et", 3), ("ENHANCING", 3),
                                         ("Resection cavity", 4), ("cavity", 4), ("  Cavity ", 4)])
def test_segment_names_stand_for_labels_in_any_case(name, value):
    assert label_of_segment(name) == value


def test_an_unknown_segment_name_is_one_line_naming_it():
    with pytest.raises(InputError) as raised:
        label_of_segment("Segment_1", "my tumor")
    message = str(raised.value)
    assert "\n" not in message and message.startswith("the segment 'Segment_1' of the segmentation 'my tumor' is not a tumor label")


def test_a_segmentation_exports_on_another_grid_by_name_with_the_innermost_region_where_segments_overlap(ctx):
    fine = add_volume(ctx, Volume(np.zeros(GRID.size, np.float32), GRID), "fine")
    edema, core, enhancing = (np.zeros(GRID.size, bool) for _ in range(3))
    edema[1:11, 2:12, 1:9] = True
    core[4:8, 5:9, 3:6] = True  # inside the oedema
    enhancing[6:10, 5:9, 3:6] = True  # overlaps the core
    node = _drawn(ctx, fine, {"ED": edema, "necrosis": core, "Enhancing tumor": enhancing})
    expected = np.zeros(GRID.size, np.uint8)
    expected[edema], expected[core], expected[enhancing] = 2, 1, 3
    np.testing.assert_array_equal(segmentation_labels(node).array, expected)
    assert segmentation_labels(node).grid.matches(GRID)

    # on a grid of twice the spacing whose voxel centres are every other voxel's: nearest neighbour picks those
    coarse_grid = Grid(size=tuple(n // 2 for n in GRID.size), spacing=tuple(2 * s for s in GRID.spacing), origin=GRID.origin,
                       direction=GRID.direction)
    coarse = add_volume(ctx, Volume(np.zeros(coarse_grid.size, np.float32), coarse_grid), "coarse")
    on_coarse = segmentation_labels(node, coarse)
    assert on_coarse.grid.matches(coarse_grid) and on_coarse.array.dtype == np.uint8
    assert set(np.unique(on_coarse.array)) == {0, 1, 2, 3}
    np.testing.assert_array_equal(on_coarse.array, expected[::2, ::2, ::2])


# -- a segmentation as the seg input --------------------------------------------------------------------------
def test_a_segmentation_chosen_as_seg_goes_to_the_run_on_the_t1n_grid_and_is_not_changed(recorded, tmp_path):
    p, recorder = recorded
    ctx, t1n = p.ctx, p.input_node("t1n")
    grid = grid_of(t1n)
    centre = np.round(grid.ras_to_index(TUMOR_RAS)).astype(int)
    edema, core, enhancing = (np.zeros(grid.size, bool) for _ in range(3))
    for mask, radius in ((edema, 4), (enhancing, 2), (core, 1)):
        mask[tuple(slice(c - radius, c + radius + 1) for c in centre)] = True
    enhancing &= ~core  # drawn without overlap, as the Segment Editor does by default
    edema &= ~(core | enhancing)
    node = _drawn(ctx, t1n, {"Peritumoral edema": edema, "ET": enhancing, "Necrotic tumor core": core}, "case tumor")
    expected = (1 * core + 2 * edema + 3 * enhancing).astype(np.uint8)
    before = _fingerprint(node)

    assert p.set_input("seg", node) and p.input_node("seg") is node
    assert p.state.synthesis_labels == "seg: case tumor"
    assert p.configure({"synthesis_steps": 2})
    assert p.synthesize(), p.state.error
    assert p.wait(timeout=120) == "done", p.state.error

    run = recorder.runs[-1]
    written = read_volume(run.input_files["seg"])
    assert run.input_files["seg"].parent == run.folder / "inputs"
    assert written.grid.matches(grid)
    np.testing.assert_array_equal(written.array, expected)
    assert _fingerprint(node) == before
    # the synthesis's own labels load as a label map and a segmentation beside it
    result = run.segmentations["seg"]
    assert list(_segments(result)) == ["Necrotic tumor core", "Peritumoral edema", "Enhancing tumor"]
    np.testing.assert_array_equal(array_of(result), array_of(run.nodes["seg"]))
    sh = ctx.subject_hierarchy
    assert sh.GetItemParent(sh.GetItemByDataNode(result)) == sh.GetItemParent(sh.GetItemByDataNode(run.nodes["seg"]))
    assert "seg segmentation" in result.GetName() and set(p.state.results) == {"t1n", "t1c", "t2w", "t2f", "seg"}


def test_a_segment_with_an_unknown_name_stops_the_run_in_one_line_and_other_inputs_refuse_a_segmentation(recorded):
    p, recorder = recorded
    t1n = p.input_node("t1n")
    grid = grid_of(t1n)
    mask = np.zeros(grid.size, bool)
    centre = np.round(grid.ras_to_index(TUMOR_RAS)).astype(int)
    mask[tuple(slice(c - 2, c + 3) for c in centre)] = True
    node = _drawn(p.ctx, t1n, {"Peritumoral edema": mask.copy(), "Segment_1": mask}, "unnamed")
    assert p.set_input("seg", node)  # names are read when a run starts: they can still be fixed after choosing
    assert not p.synthesize()
    assert p.state.error == ("the segment 'Segment_1' of the segmentation 'unnamed' is not a tumor label: name it Necrotic "
                             "tumor core, Peritumoral edema, Enhancing tumor, Resection cavity (or NCR, ED, ET, cavity)")
    assert recorder.runs == []
    node.GetSegmentation().GetSegment(node.GetSegmentation().GetSegmentIdBySegmentName("Segment_1")).SetName("ET")
    assert p.configure({"synthesis_steps": 2})
    assert p.synthesize(), p.state.error
    assert p.wait(timeout=120) == "done", p.state.error
    np.testing.assert_array_equal(read_volume(recorder.runs[-1].input_files["seg"]).array, 3 * mask)  # enhancing wins

    assert not p.set_input("t1c", node) and p.state.error == "'unnamed' is not a scalar volume"
    seeds = p.ctx.scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "points")
    assert not p.set_input("seg", seeds) and p.state.error == "'points' is not a scalar volume, a label map or a segmentation"


# -- end to end: grow, edit in the Segment Editor's way, synthesize from the edit --------------------------------------
def test_a_grown_tumor_is_a_segmentation_whose_edit_is_the_labels_of_the_next_synthesis(recorded):
    import slicer
    import vtk

    p, recorder = recorded
    ctx, t1n = p.ctx, p.input_node("t1n")
    assert p.set_seed(SEED_RAS) and p.configure({"target_volume_cm3": 6.0})
    assert p.grow(), p.state.error
    assert p.wait(timeout=300) == "done", p.state.error
    grown = recorder.runs[-1]
    labels_node, node = grown.nodes["labels"], grown.segmentations["labels"]
    labels = array_of(labels_node)
    present = sorted(set(np.unique(labels).tolist()) - {0})
    assert 2 in present and set(present) <= {1, 2, 3} and grid_of(labels_node).matches(grid_of(t1n))
    assert list(_segments(node)) == [SEGMENT_NAMES[value] for value in present]  # only the labels the growth reached
    for value in present:
        assert _voxels(ctx, node, SEGMENT_NAMES[value], t1n).sum() == (labels == value).sum() > 0
    sh = ctx.subject_hierarchy
    folder = sh.GetItemParent(sh.GetItemByDataNode(node))
    assert sh.GetItemName(folder) == grown.name and folder == sh.GetItemParent(sh.GetItemByDataNode(grown.nodes["concentration"]))
    assert p.concentration is grown.nodes["concentration"]  # the concentration stays what the grow hands the editor

    # erase the oedema in the upper half of the tumor (a slab of k), as slicer.util.updateSegmentBinaryLabelmapFromArray does
    edema_id = node.GetSegmentation().GetSegmentIdBySegmentName("Peritumoral edema")
    k_centre = int(np.round(np.argwhere(labels > 0)[:, 2].mean()))
    kept = labels == 2
    kept[:, :, k_centre:] = False
    scratch = add_volume(ctx, Volume(kept.astype(np.uint8), grid_of(t1n)), "__edit__", labelmap=True)
    ids = vtk.vtkStringArray()
    ids.InsertNextValue(edema_id)
    assert slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(scratch, node, ids)
    ctx.scene.RemoveNode(scratch)
    expected = labels.copy()
    expected[(labels == 2) & ~kept] = 0
    assert 0 < (expected == 2).sum() < (labels == 2).sum()
    np.testing.assert_array_equal(_voxels(ctx, node, "Peritumoral edema", t1n), kept)

    # the edited segmentation is the labels of the synthesis (it wins over the grown concentration)
    assert p.set_input("seg", node) and p.state.synthesis_labels == f"seg: {node.GetName()}"
    assert p.configure({"synthesis_steps": 2})
    assert p.synthesize(), p.state.error
    assert p.wait(timeout=120) == "done", p.state.error
    synthesis = recorder.runs[-1]
    assert synthesis.spec.task == "synthesize" and set(synthesis.input_files) == {"t1n", "seg"}
    written = read_volume(synthesis.input_files["seg"])
    assert written.grid.matches(grid_of(t1n))
    np.testing.assert_array_equal(written.array, expected)
    np.testing.assert_array_equal(array_of(labels_node), labels)  # the grown label map is untouched by the edit
    np.testing.assert_array_equal(volume_of(node).array, expected)
