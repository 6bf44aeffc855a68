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
