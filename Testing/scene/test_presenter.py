"""The presenter on a real MRML scene: the sample, growth and edits, inpainting round trips, cancel, failures."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scene_testing import SAMPLE_SPACING_MM, SEED_RAS, add_slice_views, fingerprint, top_level_names, volume_nodes

from tumorgen.biophysics.labels import LabelThresholds
from tumorgen_slicer import box as boxes
from tumorgen_slicer.nodes import array_of, grid_of, ijk_to_ras, volume_of

FAST = dict(steps=2, jump=2, resample=1)


def test_the_sample_loads_with_one_action(sample):
    ctx, inputs = sample
    assert set(inputs) == {"t1n", "t1c", "t2w", "t2f", "csf", "gm", "wm"}
    t1n = ctx.scene.GetNodeByID(inputs["t1n"])
    assert t1n.GetName() == "Sample t1n"
    assert grid_of(t1n).spacing == pytest.approx((SAMPLE_SPACING_MM,) * 3)
    for role in ("csf", "gm", "wm"):
        node = ctx.scene.GetNodeByID(inputs[role])
        assert grid_of(node).matches(grid_of(t1n))
        a = array_of(node)
        assert 0 <= a.min() and a.max() <= 1 and a.sum() > 1000
    # grouped in the subject hierarchy under the run's name
    sh = ctx.subject_hierarchy
    folder = sh.GetItemChildWithName(sh.GetSceneItemID(), "Sample")
    assert folder and sh.GetItemParent(sh.GetItemByDataNode(t1n)) == folder


def test_growing_a_tumor_from_a_seed(presenter):
    ctx = presenter.ctx
    before = {role: fingerprint(presenter.input_node(role)) for role in presenter.state.inputs}
    assert not presenter.grow() and "seed" in presenter.state.error
    assert presenter.set_seed(SEED_RAS)
    assert presenter.configure({"target_volume_cm3": 6.0})
    assert presenter.grow(), presenter.state.error
    assert presenter.wait(timeout=300) == "done", presenter.state.error
    assert presenter.state.last_task == "grow"
    node = presenter.concentration
    t1n = presenter.input_node("t1n")
    assert grid_of(node).matches(grid_of(t1n))
    field = array_of(node)
    assert 0 <= field.min() and field.max() <= 1
    grown_cm3 = np.count_nonzero(field >= 0.25) * SAMPLE_SPACING_MM**3 / 1000
    assert 6.0 <= grown_cm3 < 7.5
    seed = np.round(grid_of(node).ras_to_index(SEED_RAS)).astype(int)
    peak = np.unravel_index(field.argmax(), field.shape)
    assert np.abs(np.asarray(peak) - seed).max() <= 1 and field.max() > 0.3
    # outlines: the engine's BraTS labels of the field, as a label map referenced by the concentration
    outlines = node.GetNodeReference("tumorgenOutlines")
    labels = array_of(outlines)
    t = LabelThresholds()
    np.testing.assert_array_equal(labels > 0, field >= t.edema)
    np.testing.assert_array_equal(labels == 2, (field >= t.edema) & (field < t.core))
    assert set(np.unique(labels)) <= {0, 1, 2, 3} and (labels == 2).sum() * 8 / 1000 == pytest.approx(grown_cm3)
    assert node.GetDisplayNode().GetApplyThreshold()
    # a new box goes around the grown tumor (c >= 0.25) with the margin
    assert presenter.create_box()
    inside = boxes.box_mask(presenter.box, node).array.astype(bool)
    assert inside[field >= 0.25].all() and inside.sum() < 4 * (field >= 0.25).sum() + 8000
    assert before == {role: fingerprint(presenter.input_node(role)) for role in before}


def test_editing_the_concentration(presenter):
    ctx = presenter.ctx
    assert not presenter.add_blob((0, 0, 0)) and "no tumor concentration" in presenter.state.error
    assert presenter.new_concentration()
    node = presenter.concentration
    grid = grid_of(node)
    assert grid.matches(grid_of(presenter.input_node("t1n"))) and not array_of(node).any()
    point = tuple(grid.index_to_ras((np.asarray(grid.size) - 1) / 2.0))
    centre = tuple(np.round(grid.ras_to_index(point)).astype(int))

    assert presenter.configure({"blob_amplitude": 0.8})
    assert presenter.add_blob(point)
    a1 = array_of(node)
    assert a1[centre] == pytest.approx(0.8, abs=0.02) and a1.max() <= 1
    assert presenter.add_blob(point)
    assert array_of(node)[centre] == pytest.approx(1.0)  # clipped

    assert presenter.configure({"blob_amplitude": 0.5})
    assert presenter.erase_blob(point)
    assert array_of(node)[centre] == pytest.approx(0.5, abs=0.02)

    erased = array_of(node)
    assert presenter.smooth()
    smoothed = array_of(node)
    assert smoothed.max() < erased.max() and (smoothed > 1e-3).sum() > (erased > 1e-3).sum()
    assert smoothed.sum() == pytest.approx(erased.sum(), rel=0.01)  # smoothing moves concentration, it does not add any

    assert not presenter.zero_in_box() and "no resection box" in presenter.state.error
    assert presenter.create_box()
    roi = presenter.box
    boxes.place_box(roi, point, (6.0, 6.0, 6.0))
    inside = boxes.box_mask(roi, node).array.astype(bool)
    assert presenter.configure({"scale_factor": 0.5})
    before_scale = array_of(node)
    assert presenter.scale_in_box()
    scaled = array_of(node)
    np.testing.assert_allclose(scaled[inside], before_scale[inside] * 0.5, rtol=1e-6)
    np.testing.assert_array_equal(scaled[~inside], before_scale[~inside])
    assert presenter.zero_in_box()
    zeroed = array_of(node)
    assert not zeroed[inside].any()
    np.testing.assert_array_equal(zeroed[~inside], before_scale[~inside])

    # undo walks back through the edits exactly
    assert presenter.state.undo_depth == 6
    assert presenter.undo()
    np.testing.assert_array_equal(array_of(node), scaled)
    assert presenter.undo()
    np.testing.assert_array_equal(array_of(node), before_scale)
    # a bad setting is refused by name in one line; the setting and the field stay as they were
    assert not presenter.configure({"smooth_sigma_mm": -1})
    assert presenter.state.error == "smooth_sigma_mm must be a number in [0.1, 20] mm, got -1.0"
    assert presenter.settings["smooth_sigma_mm"] == 1.0
    np.testing.assert_array_equal(array_of(node), before_scale)


def test_healthy_inpainting_round_trip_loads_new_nodes_with_the_input_geometry(presenter):
    ctx = presenter.ctx
    add_slice_views(ctx)
    inputs_before = {role: fingerprint(presenter.input_node(role)) for role in presenter.state.inputs}
    nodes_before = volume_nodes(ctx)
    t1n = presenter.input_node("t1n")
    assert not presenter.inpaint() and "no resection box" in presenter.state.error
    assert presenter.create_box()
    boxes.place_box(presenter.box, (-20.0, 10.0, 20.0), (16.0, 16.0, 16.0))
    # untrained models score behind the classical fill on the probe: the fallback would make both samples the fill
    assert presenter.configure({**FAST, "samples": 2, "mode": "healthy", "fallback": "off"})
    events = []
    presenter.add_listener(lambda kind, p: events.append((kind, p.state.progress)))
    assert presenter.inpaint(), presenter.state.error
    assert presenter.busy and presenter.state.running.startswith("Inpainting healthy")
    assert not presenter.grow() and "still running" in presenter.state.error
    assert presenter.wait(timeout=300) == "done", presenter.state.error
    assert presenter.state.error == ""

    results = {k: ctx.scene.GetNodeByID(v) for k, v in presenter.state.results.items()}
    assert set(results) == {"inpainted", "std", "mask"}
    assert set(volume_nodes(ctx)) - nodes_before == {n.GetID() for n in results.values()}
    for node in results.values():
        np.testing.assert_allclose(ijk_to_ras(node), ijk_to_ras(t1n), atol=1e-4)
        assert node.GetImageData().GetDimensions() == t1n.GetImageData().GetDimensions()
    mask = array_of(results["mask"]).astype(bool)
    np.testing.assert_array_equal(mask, presenter.box_mask().array.astype(bool))
    before, after = array_of(t1n), array_of(results["inpainted"])
    np.testing.assert_array_equal(after[~mask], before[~mask])
    assert np.abs(after[mask] - before[mask]).mean() > 0
    assert array_of(results["std"])[mask].max() > 0 and not array_of(results["std"])[~mask].any()

    # display: result in the background, uncertainty as a colour overlay, the mask as an outline
    composite = ctx.scene.GetNthNodeByClass(0, "vtkMRMLSliceCompositeNode")
    assert composite.GetBackgroundVolumeID() == results["inpainted"].GetID()
    assert composite.GetForegroundVolumeID() == results["std"].GetID() and composite.GetForegroundOpacity() > 0
    assert composite.GetLabelVolumeID() == results["mask"].GetID()
    assert ctx.scene.GetNthNodeByClass(0, "vtkMRMLSliceNode").GetUseLabelOutline()
    assert results["std"].GetDisplayNode().GetColorNodeID() != "vtkMRMLColorTableNodeGrey"
    assert presenter.show_result(False) and composite.GetBackgroundVolumeID() == t1n.GetID()
    assert presenter.show_result(True) and composite.GetBackgroundVolumeID() == results["inpainted"].GetID()

    # grouped under the run's name in the subject hierarchy, in one folder (the mask is a task output like the rest)
    sh = ctx.subject_hierarchy
    parents = {sh.GetItemParent(sh.GetItemByDataNode(n)) for n in results.values()}
    assert len(parents) == 1 and sh.GetItemName(parents.pop()) == "Inpainting healthy 1"
    assert top_level_names(ctx).count("Inpainting healthy 1") == 1
    assert (presenter.work_dir / sorted(p.name for p in presenter.work_dir.iterdir() if p.is_dir())[-1] / "outputs" / "mask.nrrd").is_file()

    kinds = [k for k, _ in events]
    assert "progress" in kinds and kinds.count("finished") == 1
    assert kinds.index("finished") > max(i for i, k in enumerate(kinds) if k == "progress")
    fractions = [f for k, f in events if k == "progress"]
    assert fractions == sorted(fractions) and fractions[-1] > 0.5
    assert any("crop" in line for line in presenter.state.log)
    assert inputs_before == {role: fingerprint(presenter.input_node(role)) for role in inputs_before}

    # the self-check ran on the box's mirror image: its line is in the state (what the panels show) and in the log
    check = json.loads((presenter.work_dir / sorted(p.name for p in presenter.work_dir.iterdir() if p.is_dir())[-1] / "outputs" / "self-check.json").read_text())
    assert check["placement"].startswith("mirrored") and 0.9 * mask.sum() <= check["voxels"] <= mask.sum()
    assert presenter.state.check == check["summary"] and presenter.state.check_doubtful == check["doubtful"]
    assert presenter.state.check.startswith("self-check on known tissue") and check["summary"] in presenter.state.log
    # the fallback was off: the line says the result is doubtful and nothing fell back
    assert check["behind"] and check["fallback"] == "" and "FALLBACK" not in presenter.state.check


def test_tumor_inpainting_needs_a_concentration_and_uses_it(presenter):
    ctx = presenter.ctx
    assert presenter.create_box()
    assert presenter.configure({**FAST, "samples": 1, "mode": "tumor"})
    assert not presenter.inpaint() and "concentration" in presenter.state.error
    assert presenter.new_concentration()
    assert presenter.configure({"blob_amplitude": 1.0, "blob_sigma_mm": 5.0})
    assert presenter.add_blob((-20.0, 10.0, 20.0))
    assert presenter.fit_box_to_tumor()
    conc_before = fingerprint(presenter.concentration)
    assert presenter.inpaint(), presenter.state.error
    assert presenter.wait(timeout=300) == "done", presenter.state.error
    assert set(presenter.state.results) == {"inpainted", "mask"}
    # without an uncertainty map the concentration overlay makes way for the result
    add_slice_views(ctx, names=("Red",))
    assert presenter.show_result(True)
    composite = ctx.scene.GetFirstNodeByClass("vtkMRMLSliceCompositeNode")
    assert composite.GetForegroundVolumeID() is None
    assert composite.GetBackgroundVolumeID() == presenter.state.results["inpainted"]
    assert fingerprint(presenter.concentration) == conc_before
    run_folder = sorted(p for p in presenter.work_dir.iterdir() if p.is_dir())[-1]
    assert (run_folder / "inputs" / "concentration.nrrd").is_file()
    assert (run_folder / "job.json").is_file()


def test_cancel_mid_run_leaves_no_nodes_and_no_output(presenter):
    ctx = presenter.ctx
    nodes_before = volume_nodes(ctx)
    assert presenter.create_box()
    boxes.place_box(presenter.box, (-20.0, 10.0, 20.0), (30.0, 30.0, 30.0))
    assert presenter.configure({"steps": 200, "jump": 5, "resample": 5, "samples": 4, "mode": "healthy"})
    assert presenter.inpaint(), presenter.state.error
    import time

    deadline = time.monotonic() + 120
    while presenter.poll() and presenter.state.progress <= 0.0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert presenter.busy, "the job ended before it could be cancelled"
    assert presenter.cancel()
    assert presenter.busy  # cancel only asked the job to stop: it did not wait for it
    assert presenter.wait(timeout=120) == "cancelled"
    assert not presenter.busy and presenter.state.last_status == "cancelled"
    assert "cancelled" in presenter.state.message
    assert volume_nodes(ctx) == nodes_before
    run_folder = sorted(p for p in presenter.work_dir.iterdir() if p.is_dir())[-1]
    outputs = run_folder / "outputs"
    assert not outputs.exists() or not any(outputs.iterdir())
    assert not presenter.cancel()  # nothing left to cancel


def test_a_failing_backend_surfaces_its_message(presenter, tmp_path):
    ctx = presenter.ctx
    nodes_before = volume_nodes(ctx)
    assert presenter.create_box()
    assert presenter.configure({**FAST, "samples": 1, "mode": "healthy", "weights": str(tmp_path / "no-such-weights")})
    errors = []
    presenter.add_listener(lambda kind, p: errors.append(p.state.error) if kind == "error" else None)
    assert presenter.inpaint(), presenter.state.error
    assert presenter.wait(timeout=300) == "bad_input"
    assert presenter.state.error.startswith("Inpainting healthy")
    assert "no-such-weights" in presenter.state.error and "\n" not in presenter.state.error
    assert errors == [presenter.state.error]
    assert volume_nodes(ctx) == nodes_before


def test_bad_choices_are_refused_in_one_line(presenter, tmp_path):
    assert not presenter.set_input("flair", presenter.input_node("t1n")) and "unknown input" in presenter.state.error
    assert not presenter.configure({"device": "tpu"}) and presenter.state.error == "device must be one of auto, cpu, cuda, got 'tpu'"
    assert not presenter.set_python(str(tmp_path / "python9")) and "not an executable" in presenter.state.error
    roi = presenter.ctx.scene.AddNewNodeByClass("vtkMRMLMarkupsROINode")
    assert not presenter.set_input("t1n", roi) and "not a scalar volume" in presenter.state.error
    assert presenter.create_box()
    boxes.place_box(presenter.box, (500.0, 500.0, 500.0), (10.0, 10.0, 10.0))
    assert not presenter.inpaint() and "holds no voxel" in presenter.state.error
    assert not presenter.busy


def test_configure_feeds_nodes_and_settings_by_name(presenter):
    scene = presenter.ctx.scene
    points = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "seed")
    points.AddControlPoint(-26.0, 14.0, 26.0)
    assert presenter.configure({"seed_points": points, "d_white": 0.5, "target_volume_cm3": 3.0, "steps": 7, "sampling_seed": 3,
                                "mode": "tumor", "device": "cpu", "blob_sigma_mm": 2.0, "python": ""}), presenter.state.error
    assert presenter.seed() == (-26.0, 14.0, 26.0)
    s = presenter.settings
    assert s["d_white"] == 0.5 and s["target_volume_cm3"] == 3.0
    assert s["steps"] == 7 and s["sampling_seed"] == 3 and s["mode"] == "tumor"
    assert s["blob_sigma_mm"] == 2.0 and s["device"] == "cpu"
    assert not presenter.configure({"warp": 1}) and presenter.state.error == "unknown setting 'warp'"
    # text fields arrive as strings: numbers are converted, anything else is refused by name
    assert presenter.configure({"steps": "12", "rho": "0.25", "histogram": False, "days": None})
    assert s["steps"] == 12 and s["rho"] == 0.25 and not s["histogram"]
    assert s["days"] is None
    assert presenter.configure({"days": "30"}) and s["days"] == 30.0
    assert presenter.configure({"days": ""}) and s["days"] is None
    assert not presenter.configure({"steps": "many"}) and presenter.state.error == "steps must be a number, got 'many'"
    assert not presenter.configure({"samples": 2.5}) and presenter.state.error == "samples must be a whole number, got 2.5"
    assert not presenter.configure({"steps": 0}) and presenter.state.error == "steps must be a whole number in [1, 1000], got 0"
    assert s["steps"] == 12
    assert not presenter.configure({"box": presenter.input_node("t1n")}) and "is not a box" in presenter.state.error
    assert not presenter.configure({"seed_points": presenter.input_node("t1n")}) and "not a point list" in presenter.state.error
    # blobs go to the seed point when no position is given
    assert presenter.new_concentration() and presenter.add_blob()
    field, grid = array_of(presenter.concentration), grid_of(presenter.concentration)
    peak = np.unravel_index(field.argmax(), field.shape)
    assert np.abs(np.asarray(peak) - grid.ras_to_index((-26.0, 14.0, 26.0))).max() <= 1
    # an existing volume can become the concentration being edited
    other = presenter.concentration
    assert presenter.set_concentration(None) and presenter.concentration is None
    assert presenter.set_concentration(other.GetID()) and presenter.concentration is other


def test_configure_leaves_the_views_alone_when_the_inputs_did_not_change(presenter):
    ctx = presenter.ctx
    add_slice_views(ctx, names=("Red",))
    composite = ctx.scene.GetFirstNodeByClass("vtkMRMLSliceCompositeNode")
    other = presenter.input_node("t2w")
    composite.SetBackgroundVolumeID(other.GetID())
    values = {role: presenter.input_node(role) for role in presenter.state.inputs}
    assert presenter.configure({**values, "steps": 9})
    assert composite.GetBackgroundVolumeID() == other.GetID() and presenter.settings["steps"] == 9
    assert presenter.configure({"t1n": other}) and composite.GetBackgroundVolumeID() == other.GetID()
    assert presenter.input_node("t1n") is other


def test_loading_a_volume_file_checks_it_first_and_changes_nothing_when_it_is_bad(presenter, tmp_path):
    import SimpleITK as sitk

    from tumorgen.volume import Volume
    from tumorgen.volume_io import write_volume

    ctx = presenter.ctx
    nodes_before = volume_nodes(ctx)
    t1n = volume_of(presenter.input_node("t1n"))
    bad_type = tmp_path / "notes.txt"
    bad_type.write_text("not an image")
    assert not presenter.load_volume_file(bad_type) and "unsupported file type" in presenter.state.error
    corrupt = tmp_path / "broken.nii.gz"
    corrupt.write_bytes(b"\x1f\x8b not really gzip")
    assert not presenter.load_volume_file(corrupt) and presenter.state.error.startswith(f"cannot read t1n {corrupt}")
    flat = tmp_path / "slice.nii.gz"
    sitk.WriteImage(sitk.Image(32, 32, sitk.sitkFloat32), str(flat))
    assert not presenter.load_volume_file(flat) and "3D" in presenter.state.error
    assert not presenter.load_volume_file(write_volume(t1n, tmp_path / "big.nii.gz"), max_bytes=1000) and "limit" in presenter.state.error
    shifted = write_volume(Volume(t1n.array, type(t1n.grid)(t1n.grid.size, t1n.grid.spacing, (0.0, 0.0, 0.0), t1n.grid.direction)),
                           tmp_path / "shifted.nii.gz")
    assert not presenter.load_volume_file(shifted, role="t2w") and "does not match the t1n's geometry: origin" in presenter.state.error
    assert not presenter.load_volume_file(shifted, role="pd") and "unknown input" in presenter.state.error
    assert not presenter.refuse_upload("huge.nii.gz", 3 * 2**20, max_bytes=2**20)
    assert presenter.state.error == "huge.nii.gz: 3 MiB is over the 1 MiB limit"
    assert presenter.refuse_upload("small.nii.gz", 1000, max_bytes=2**20) and presenter.state.error == ""
    assert volume_nodes(ctx) == nodes_before and "\n" not in presenter.state.error
    # a good file becomes the input
    good = write_volume(t1n.with_array(t1n.array * 2), tmp_path / "case-t2w.nii.gz")
    assert presenter.load_volume_file(good, role="t2w"), presenter.state.error
    node = presenter.input_node("t2w")
    assert node.GetName() == "case-t2w" and grid_of(node).matches(t1n.grid)
    np.testing.assert_array_equal(array_of(node), t1n.array * 2)


def test_placing_a_seed_and_drawing_a_box_switch_the_views_to_place_mode(presenter):
    from slicer import vtkMRMLInteractionNode

    interaction = presenter.ctx.scene.GetNodeByID("vtkMRMLInteractionNodeSingleton")
    assert presenter.place_seed(), presenter.state.error
    points = presenter.node(presenter.state.seed_points_id)
    assert points.GetName() == "Tumor seed" and points.GetNumberOfControlPoints() == 0
    assert interaction.GetCurrentInteractionMode() == vtkMRMLInteractionNode.Place
    markups = presenter.ctx.app_logic.GetModuleLogic("Markups")
    assert markups.GetActiveListID() == points.GetID()
    points.AddControlPoint(-26.0, 14.0, 26.0)  # what a click in a view does
    assert presenter.seed() == (-26.0, 14.0, 26.0)
    assert presenter.draw_box() and markups.GetActiveListID() == presenter.state.box_id
    assert presenter.box.IsA("vtkMRMLMarkupsROINode")
    assert not presenter.show_uncertainty(True) and "uncertainty" in presenter.state.error
