"""Placing markups by clicking in the views: the tumor seed (a one-point list) and the corners of a new box."""

from __future__ import annotations

from tumorgen.errors import InputError

SEED_LIST_NAME = "Tumor seed"
#: The seed point's label in the views: short, so that beside the point it covers little of the tumor around it.
SEED_LABEL = "seed"
#: The seed label's height (% of the view's height; Slicer's default is 3).
SEED_TEXT_SCALE = 2.5


def new_seed_list(ctx, name: str = SEED_LIST_NAME):
    """A point list that holds at most one point: the seed of the growth, and where blobs go.

    Its point is labelled :data:`SEED_LABEL` (the list keeps its name in the data tree) and stays visible through the
    tumor's surfaces in 3D (faintly: occluded visibility).
    """
    points = ctx.scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", name)
    points.CreateDefaultDisplayNodes()
    points.SetMaximumNumberOfControlPoints(1)
    points.SetControlPointLabelFormat(SEED_LABEL)
    display = points.GetDisplayNode()
    if display is not None:
        display.SetTextScale(SEED_TEXT_SCALE)
        display.SetOccludedVisibility(True)
        display.SetOccludedOpacity(0.5)
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
