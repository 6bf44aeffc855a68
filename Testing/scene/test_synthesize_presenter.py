"""Label-map synthesis through the presenter on a real MRML scene: the job it starts (the t1n and the current labels: the
segmentation, else the concentration), the four contrasts and the labels it loads (names, node types, geometry, label
table), the views through the tumor, a second run beside the first, cancel, and what it refuses.

The backend job is the test task ``test_synthesize`` (Testing/support/tumorgen_test_tasks.py): the real task's inputs,
parameters (its own dataclass checks them), label handling and outputs, with the contrasts made by arithmetic instead of
a model, so that these tests run in seconds; the synthesis itself is tested in Testing/tumorgen/synthesis.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from scene_testing import assert_surfaces_framed, fake_starter, fingerprint, fresh_views, top_level_names, view_layers, volume_nodes
from scipy import ndimage

from tumorgen.settings import SYNTHESIS
from tumorgen.volume import Grid, Volume
from tumorgen.volume_io import read_volume, write_volume
from tumorgen_slicer.nodes import LABEL_TABLE_NAME, add_volume, array_of, grid_of, ijk_to_ras, volume_of
from tumorgen_slicer.presenter import TumorGenPresenter
from tumorgen_slicer.result_view import shown_surfaces

TUMOR_RAS = (-20.0, 10.0, 20.0)
OUTPUTS = {"t1n", "t1c", "t2w", "t2f", "seg"}
NO_LABELS = "synthesis needs labels: choose a segmentation (seg), or grow or paint a tumor concentration"


@pytest.fixture
def synthesizer(sample, tmp_path):
    """A presenter on the sample whose syntheses run as ``test_synthesize``, with fresh slice views (the sample's scene is shared)."""
    context, inputs = sample
    p = TumorGenPresenter(context, work_dir=tmp_path / "runs", starter=fake_starter)
    for role, node_id in inputs.items():
        assert p.set_input(role, node_id)
    fresh_views(context)
    return p


def _segmentation(p: TumorGenPresenter, folder: Path, name: str = "case-seg", values=(2, 3, 1)) -> np.ndarray:
    """Nested cubes around TUMOR_RAS on the t1n's grid (oedema, enhancing, necrotic core by default), loaded as the seg input."""
    grid = grid_of(p.input_node("t1n"))
    labels = np.zeros(grid.size, np.uint8)
    centre = np.round(grid.ras_to_index(TUMOR_RAS)).astype(int)
    for radius, value in zip((4, 2, 1), values):
        labels[tuple(slice(c - radius, c + radius + 1) for c in centre)] = value
    assert p.load_volume_file(write_volume(Volume(labels, grid), folder / f"{name}.nii.gz"), role="seg"), p.state.error
    return labels


def _tumor(p: TumorGenPresenter) -> None:
    assert p.new_concentration()
    assert p.configure({"blob_amplitude": 1.0, "blob_sigma_mm": 5.0})
    assert p.add_blob(TUMOR_RAS)


def _jobs(p: TumorGenPresenter) -> list[tuple[Path, dict]]:
    folders = sorted(f for f in p.work_dir.iterdir() if f.is_dir()) if p.work_dir.exists() else []
    return [(f, json.loads((f / "job.json").read_text())) for f in folders]


def _synthesize(p: TumorGenPresenter) -> None:
    assert p.synthesize(), p.state.error
    assert p.busy and p.state.running.startswith("Synthesis")
    assert p.wait(timeout=120) == "done", p.state.error
    assert p.state.error == "" and p.state.last_task == "synthesize"


def test_a_synthesis_of_the_segmentation_loads_four_contrasts_and_the_labels_where_the_user_looks(synthesizer, tmp_path):
    p, ctx = synthesizer, synthesizer.ctx
    labels = _segmentation(p, tmp_path)
    t1n = p.input_node("t1n")
    inputs_before = {role: fingerprint(p.input_node(role)) for role in p.state.inputs}
    nodes_before = volume_nodes(ctx)
    assert p.state.synthesis_labels == "seg: case-seg"
    assert p.configure({"synthesis_steps": 3, "synthesis_seed": 7, "blend_mm": 4.0})
    _synthesize(p)
    assert p.state.message.startswith("Synthesis 1 done in ")

    # the job: the t1n and the segmentation as written from their nodes; the panel's values under the task's own names
    folder, job = _jobs(p)[-1]
    assert set(job["inputs"]) == {"t1n", "seg"}
    assert job["params"] == {"steps": 3, "seed": 7, "samples": 2, "blend_mm": 4.0} and set(job["params"]) <= set(SYNTHESIS.names())
    np.testing.assert_array_equal(read_volume(job["inputs"]["seg"]).array, labels)

    # the outputs: four scalar volumes and a label map, named after the t1n, on its exact grid, in one folder
    results = {k: p.node(v) for k, v in p.state.results.items()}
    assert set(results) == OUTPUTS and volume_nodes(ctx) - nodes_before == {n.GetID() for n in results.values()}
    for key, node in results.items():
        assert node.GetName() == f"Sample t1n synthetic {key}"
        assert node.IsA("vtkMRMLScalarVolumeNode") and node.IsA("vtkMRMLLabelMapVolumeNode") == (key == "seg"), key
        assert node.GetImageData().GetDimensions() == t1n.GetImageData().GetDimensions()
        np.testing.assert_allclose(ijk_to_ras(node), ijk_to_ras(t1n), atol=1e-4)
    sh = ctx.subject_hierarchy
    assert {sh.GetItemName(sh.GetItemParent(sh.GetItemByDataNode(n))) for n in results.values()} == {"Synthesis 1"}
    seg = results["seg"]
    np.testing.assert_array_equal(array_of(seg), labels)
    assert ctx.scene.GetNodeByID(seg.GetDisplayNode().GetColorNodeID()).GetName() == LABEL_TABLE_NAME

    # the contrasts: t1c, t2w, t2f in [0, 1], the enhancing tumor bright on t1c; the t1n the scan beyond the blend margin
    scan = array_of(t1n)
    for key in ("t1c", "t2w", "t2f"):
        image = array_of(results[key])
        assert image.min() >= 0.0 and image.max() <= 1.0 and not image[scan <= 0].any(), key
    assert (array_of(results["t1c"])[labels == 3] == 1.0).all()
    synthetic_t1n = array_of(results["t1n"])
    far = ndimage.distance_transform_edt(labels == 0, sampling=grid_of(t1n).spacing) > 4.0
    np.testing.assert_array_equal(synthetic_t1n[far], scan[far])
    assert (synthetic_t1n[labels > 0] != scan[labels > 0]).mean() > 0.9

    # the views: the synthetic t1c, no overlay, the labels as outlines, every view through the tumor
    for background, foreground, label, _ in view_layers(ctx).values():
        assert (background, foreground, label) == (results["t1c"].GetID(), None, seg.GetID())
    centre = grid_of(seg).index_to_ras(np.argwhere(labels > 0).mean(axis=0))
    for n in range(ctx.scene.GetNumberOfNodesByClass("vtkMRMLSliceNode")):
        slice_node = ctx.scene.GetNthNodeByClass(n, "vtkMRMLSliceNode")
        assert slice_node.GetUseLabelOutline()
        np.testing.assert_allclose([slice_node.GetSliceToRAS().GetElement(r, 3) for r in range(3)], centre, atol=1e-6)
    # the labels as surfaces in 3D: the oedema a veil around the enhancing tumor and the necrotic core
    surfaces = shown_surfaces(ctx)
    assert [n.GetName() for n in surfaces] == ["Synthesis 1 seg segmentation"]
    segmentation = surfaces[0]
    assert_surfaces_framed(ctx, segmentation)
    display, segments = segmentation.GetDisplayNode(), segmentation.GetSegmentation()
    opacity = {segments.GetNthSegment(n).GetName(): display.GetSegmentOpacity3D(segments.GetNthSegmentID(n)) for n in range(3)}
    assert opacity == {"Peritumoral edema": 0.3, "Enhancing tumor": 1.0, "Necrotic tumor core": 1.0}
    assert p.show_result(False) and view_layers(ctx)["Red"][0] == t1n.GetID()
    assert p.show_result(True) and view_layers(ctx)["Red"][0] == results["t1c"].GetID()

    # the summary line: the labels it used and the tumor's regions
    cm3 = grid_of(t1n).voxel_volume_mm3 / 1000
    volumes = [round(float((labels == v).sum()) * cm3, 3) for v in (1, 2, 3)]
    assert p.state.synthesis_text == (f"t1n, t1c, t2w, t2f from seg 'case-seg': necrotic {volumes[0]:g}, oedema {volumes[1]:g}, "
                                      f"enhancing {volumes[2]:g} cm³ (3 steps, seed 7)")
    assert f"Synthesis 1: {p.state.synthesis_text}" in p.state.log
    assert inputs_before == {role: fingerprint(p.input_node(role)) for role in inputs_before}


def test_without_a_segmentation_the_concentration_goes_and_a_segmentation_wins_over_it(synthesizer, tmp_path):
    from tumorgen.biophysics.labels import concentration_to_labels

    p = synthesizer
    _tumor(p)
    concentration_before = fingerprint(p.concentration)
    assert p.state.synthesis_labels == f"concentration: {p.concentration.GetName()}"
    _synthesize(p)
    assert set(_jobs(p)[-1][1]["inputs"]) == {"t1n", "concentration"}
    first = dict(p.state.results)
    expected = concentration_to_labels(volume_of(p.concentration)).array
    np.testing.assert_array_equal(array_of(p.node(first["seg"])), expected)
    assert set(np.unique(expected)) == {0, 1, 2, 3}
    assert p.state.synthesis_text.startswith(f"t1n, t1c, t2w, t2f from concentration {p.concentration.GetName()!r}: necrotic ")
    assert fingerprint(p.concentration) == concentration_before

    # with a segmentation chosen as well, the segmentation is the labels; the first run's nodes stay in their own folder
    labels = _segmentation(p, tmp_path)
    assert p.state.synthesis_labels == "seg: case-seg"
    _synthesize(p)
    assert set(_jobs(p)[-1][1]["inputs"]) == {"t1n", "seg"}
    second = p.state.results
    assert not set(first.values()) & set(second.values()) and all(p.node(node_id) is not None for node_id in first.values())
    np.testing.assert_array_equal(array_of(p.node(second["seg"])), labels)
    assert {"Synthesis 1", "Synthesis 2"} <= set(top_level_names(p.ctx))


def test_what_a_synthesis_refuses_is_one_line_and_starts_nothing(synthesizer, tmp_path):
    p, ctx = synthesizer, synthesizer.ctx

    def refused(expected: str) -> None:
        assert not p.synthesize()
        assert p.state.error == expected and "\n" not in p.state.error, p.state.error

    t1n = p.state.inputs.pop("t1n")
    refused("choose a t1n input volume first (or load the sample)")
    p.state.inputs["t1n"] = t1n
    refused(NO_LABELS)
    assert p.state.synthesis_labels == ""
    assert p.new_concentration()
    refused(f"the concentration {p.concentration.GetName()!r} holds no tumor (c ≥ 0.25): grow or paint one first")
    assert p.set_concentration(None)

    _segmentation(p, tmp_path, "empty-seg", values=(0, 0, 0))
    refused("the segmentation 'empty-seg' is empty: it holds no tumor label")
    _segmentation(p, tmp_path, "cavity-seg", values=(2, 4, 1))
    refused("the segmentation 'cavity-seg' holds label 4: synthesis takes the BraTS labels 1 (necrotic core), 2 (oedema) and "
            "3 (enhancing tumor)")
    grid = grid_of(p.input_node("t1n"))
    other = Grid(size=tuple(n // 2 for n in grid.size), spacing=tuple(2 * s for s in grid.spacing), origin=grid.origin,
                 direction=grid.direction)
    coarse = add_volume(ctx, Volume(np.ones(other.size, np.uint8), other), "coarse-seg", labelmap=True)
    assert p.set_input("seg", coarse)
    assert not p.synthesize() and p.state.error.startswith("the tumor's seg 'coarse-seg' is not on the t1n's grid: ")

    assert not p.configure({"synthesis_steps": 0}) and p.state.error == "steps must be a whole number in [1, 1000], got 0"
    assert not p.configure({"blend_mm": 40}) and p.state.error == "blend_mm must be a number in [0, 30] mm, got 40.0"
    assert p.settings.params(SYNTHESIS) == SYNTHESIS.defaults()
    assert not p.busy and _jobs(p) == [] and p.state.synthesis_text == "" and p.state.results == {}


def test_cancel_stops_a_synthesis_and_loads_nothing(synthesizer, tmp_path):
    p, ctx = synthesizer, synthesizer.ctx
    _segmentation(p, tmp_path)
    assert p.configure({"synthesis_steps": 1000})  # 30 s of stand-in sampling
    nodes_before = volume_nodes(ctx)
    assert p.synthesize(), p.state.error
    name = p.state.running
    while p.poll() and p.state.progress == 0.0:  # until the job is sampling
        time.sleep(0.05)
    assert p.state.message.startswith("sample ")
    assert not p.synthesize() and p.state.error == f"{name} is still running; wait for it or cancel it"
    assert p.cancel() and p.wait(timeout=60) == "cancelled"
    assert p.state.message == f"{name} cancelled" and p.state.results == {} and p.state.synthesis_text == ""
    assert volume_nodes(ctx) == nodes_before and name not in top_level_names(ctx)


def test_the_presenter_loads_what_the_synthesize_task_writes():
    """The presenter's label outputs and contrasts are the task's (the GUI process cannot import tumorgen.tasks: it loads torch)."""
    from tumorgen.tasks.synthesize import CONTRAST_OUTPUTS, LABEL_OUTPUTS, OUTPUT_FILES
    from tumorgen_slicer import synthesize_actions

    assert synthesize_actions.LABEL_OUTPUTS == LABEL_OUTPUTS
    assert synthesize_actions.CONTRASTS == CONTRAST_OUTPUTS
    assert OUTPUTS | {"summary"} == set(OUTPUT_FILES)
