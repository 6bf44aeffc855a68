"""Helpers for the scene-logic tests (Testing/scene)."""

from __future__ import annotations

#: Fast settings for the round trips: a 2 mm sample and a few denoising steps.
SAMPLE_SPACING_MM = 2.0
SEED_RAS = (-26.0, 14.0, 26.0)


def fingerprint(node) -> tuple:
    """Everything about a volume node that a run must not change."""
    from tumorgen_slicer.nodes import array_of, ijk_to_ras

    image = node.GetImageData()
    return (node.GetName(), image.GetMTime(), ijk_to_ras(node).tobytes(), array_of(node).tobytes())


def volume_nodes(ctx) -> set[str]:
    scene = ctx.scene
    return {scene.GetNthNodeByClass(i, "vtkMRMLVolumeNode").GetID() for i in range(scene.GetNumberOfNodesByClass("vtkMRMLVolumeNode"))}


#: The orientation of each of Slicer's slice views in its standard layouts.
ORIENTATIONS = {"Red": "Axial", "Yellow": "Sagittal", "Green": "Coronal"}


def add_slice_views(ctx, names=("Red", "Yellow", "Green")):
    """Slice and composite nodes as a view layout would create them."""
    for name in names:
        slice_node = ctx.scene.AddNewNodeByClass("vtkMRMLSliceNode", name)
        slice_node.SetLayoutName(name)
        slice_node.SetOrientation(ORIENTATIONS.get(name, "Axial"))
        composite = ctx.scene.AddNewNodeByClass("vtkMRMLSliceCompositeNode", f"{name} composite")
        composite.SetLayoutName(name)


def add_3d_view(ctx, name: str = "1"):
    """A 3D view's view node and its camera (Slicer's default camera: from the front, a 30° view angle)."""
    view = ctx.scene.AddNewNodeByClass("vtkMRMLViewNode", f"View{name}")
    view.SetLayoutName(name)
    camera = ctx.scene.AddNewNodeByClass("vtkMRMLCameraNode", f"Camera {name}")
    camera.SetLayoutName(name)
    return view, camera


def fresh_views(ctx) -> None:
    """The slice views Red, Yellow and Green and one 3D view, replacing any the scene has (a module's tests share one), with
    the slices shown in 3D as the web app shows them after loading."""
    scene = ctx.scene
    for class_name in ("vtkMRMLSliceNode", "vtkMRMLSliceCompositeNode", "vtkMRMLViewNode", "vtkMRMLCameraNode"):
        for node in [scene.GetNthNodeByClass(n, class_name) for n in range(scene.GetNumberOfNodesByClass(class_name))]:
            scene.RemoveNode(node)
    add_slice_views(ctx)
    add_3d_view(ctx)
    for n in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceNode")):
        scene.GetNthNodeByClass(n, "vtkMRMLSliceNode").SetSliceVisible(True)


def slice_offsets(ctx, point) -> dict[str, tuple[float, float]]:
    """For each slice view: how far ``point`` (RAS mm) is from its plane (along the normal) and from the middle of the view
    within the plane, in mm."""
    import numpy as np

    from tumorgen_slicer.vtk_arrays import array_of_matrix

    scene, out = ctx.scene, {}
    for n in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceNode")):
        node = scene.GetNthNodeByClass(n, "vtkMRMLSliceNode")
        matrix = array_of_matrix(node.GetSliceToRAS())
        normal = matrix[:3, 2] / np.linalg.norm(matrix[:3, 2])
        offset = np.asarray(point, float) - matrix[:3, 3]
        along = float(offset @ normal)
        out[node.GetLayoutName()] = (abs(along), float(np.linalg.norm(offset - along * normal)))
    return out


def assert_views_on(ctx, point, tolerance_mm: float = 2.0) -> None:
    """Every slice view (Red, Yellow, Green) goes through ``point`` and has it in its middle."""
    offsets = slice_offsets(ctx, point)
    assert set(offsets) >= {"Red", "Yellow", "Green"}, offsets
    assert all(along <= tolerance_mm and across <= tolerance_mm for along, across in offsets.values()), (point, offsets)


def assert_surfaces_framed(ctx, segmentation) -> None:
    """``segmentation`` is drawn in 3D as closed surfaces, the slices are hidden there, and every camera looks at it from a
    distance at which it fills a good part of the view (its bounding sphere within the view angle, and over a sixth of it)."""
    import numpy as np

    assert segmentation.GetSegmentation().ContainsRepresentation("Closed surface"), segmentation.GetName()
    display = segmentation.GetDisplayNode()
    assert display.GetVisibility() and display.GetVisibility3D()
    assert display.GetDisplayRepresentationName3D() == "Closed surface"
    scene = ctx.scene
    for n in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceNode")):
        assert not scene.GetNthNodeByClass(n, "vtkMRMLSliceNode").GetSliceVisible()
    bounds = [0.0] * 6
    segmentation.GetRASBounds(bounds)
    low, high = np.array(bounds[0::2]), np.array(bounds[1::2])
    centre, radius = (low + high) / 2, np.linalg.norm(high - low) / 2
    cameras = [scene.GetNthNodeByClass(n, "vtkMRMLCameraNode") for n in range(scene.GetNumberOfNodesByClass("vtkMRMLCameraNode"))]
    assert cameras
    for camera in cameras:
        position, focal = np.array(camera.GetPosition()), np.array(camera.GetFocalPoint())
        axis = (focal - position) / np.linalg.norm(focal - position)
        to_centre = centre - position
        distance = float(to_centre @ axis)
        off_axis = np.degrees(np.arctan2(np.linalg.norm(to_centre - distance * axis), distance))
        half_angle = np.degrees(np.arcsin(min(1.0, radius / np.linalg.norm(to_centre))))
        view_angle = camera.GetCamera().GetViewAngle()
        assert distance > 0 and off_axis + half_angle <= view_angle / 2 + 0.5, (off_axis, half_angle, view_angle)
        assert half_angle > view_angle / 12, (half_angle, view_angle)


def view_layers(ctx) -> dict[str, tuple]:
    """Each slice view's background, foreground and label volume IDs and its orientation, by view name."""
    scene = ctx.scene
    composites = [scene.GetNthNodeByClass(n, "vtkMRMLSliceCompositeNode") for n in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode"))]
    slices = {node.GetLayoutName(): node for node in (scene.GetNthNodeByClass(n, "vtkMRMLSliceNode")
                                                      for n in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceNode")))}
    return {c.GetLayoutName(): (c.GetBackgroundVolumeID(), c.GetForegroundVolumeID(), c.GetLabelVolumeID(),
                                slices[c.GetLayoutName()].GetOrientation()) for c in composites}


#: The real tasks the scene tests run as test tasks (tumorgen_test_tasks: the same inputs, parameters and outputs, without a
#: model or a case library).
STAND_IN_TASKS = {"postop": "test_postop", "followup": "test_followup", "synthesize": "test_synthesize"}


def fake_starter(spec, work_dir, device):
    """The presenter's job starter, with the post-operative and follow-up predictions and the synthesis run by their test
    tasks (:data:`STAND_IN_TASKS`); the run keeps the real task's spec."""
    import dataclasses

    from tumorgen.backend.runner import JobRunner
    from tumorgen_slicer.runs import start_run
    from tumorgen_testing import backend_env

    task = STAND_IN_TASKS.get(spec.task, spec.task)
    run = start_run(dataclasses.replace(spec, task=task), work_dir, JobRunner(env=backend_env()), device)
    run.spec = spec
    return run


#: The post-operative tests' name for it.
fake_postop_starter = fake_starter


def top_level_names(ctx) -> list[str]:
    """The names of the subject hierarchy's top-level items (folders of runs), with repeats."""
    import vtk

    sh = ctx.subject_hierarchy
    children = vtk.vtkIdList()
    sh.GetItemChildren(sh.GetSceneItemID(), children)
    return [sh.GetItemName(children.GetId(n)) for n in range(children.GetNumberOfIds())]
