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


def add_slice_views(ctx, names=("Red", "Yellow", "Green")):
    """Slice and composite nodes as a view layout would create them."""
    for name in names:
        ctx.scene.AddNewNodeByClass("vtkMRMLSliceNode", name).SetLayoutName(name)
        composite = ctx.scene.AddNewNodeByClass("vtkMRMLSliceCompositeNode", f"{name} composite")
        composite.SetLayoutName(name)


def top_level_names(ctx) -> list[str]:
    """The names of the subject hierarchy's top-level items (folders of runs), with repeats."""
    import vtk

    sh = ctx.subject_hierarchy
    children = vtk.vtkIdList()
    sh.GetItemChildren(sh.GetSceneItemID(), children)
    return [sh.GetItemName(children.GetId(n)) for n in range(children.GetNumberOfIds())]
