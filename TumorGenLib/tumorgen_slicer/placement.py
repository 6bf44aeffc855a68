"""Placing markups by clicking in the views: the tumor seed (a one-point list) and the corners of a new box."""

from __future__ import annotations

from tumorgen.errors import InputError

SEED_LIST_NAME = "Tumor seed"


def new_seed_list(ctx, name: str = SEED_LIST_NAME):
    """A point list that holds at most one point: the seed of the growth, and where blobs go."""
    points = ctx.scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", name)
    points.CreateDefaultDisplayNodes()
    points.SetMaximumNumberOfControlPoints(1)
    return points


def start_placing(ctx, node) -> None:
    """Make ``node`` the active markup and put the views in place mode: the next click(s) place its points."""
    from slicer import vtkMRMLInteractionNode

    markups = ctx.app_logic.GetModuleLogic("Markups")
    interaction = ctx.scene.GetNodeByID("vtkMRMLInteractionNodeSingleton")
    if markups is None or interaction is None:
        raise InputError("this scene has no views to place points in")
    markups.SetActiveList(node)
    interaction.SetPlaceModePersistence(0)
    interaction.SetCurrentInteractionMode(vtkMRMLInteractionNode.Place)
