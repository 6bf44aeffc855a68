"""The tumor concentration as a scalar volume node: create, edit with the engine's operations, show.

Edits run in this process (they take milliseconds to a second; see
:mod:`tumorgen_slicer.editing`); growth from a seed runs as a backend job (see
:mod:`tumorgen_slicer.runs`).
"""

from __future__ import annotations

import numpy as np

from tumorgen.volume import Volume
from tumorgen_slicer.nodes import (
    CONCENTRATION_COLORS,
    add_volume,
    grid_of,
    set_volume,
    show_colormap,
    show_labels,
    volume_of,
)

DEFAULT_NAME = "Tumor concentration"
#: Concentrations below this are not drawn (the far tail of the diffusion would veil the image).
DISPLAY_THRESHOLD = 0.05
#: The outlines drawn over the concentration (the engine's BraTS label thresholds): their name and node reference.
OUTLINE_SUFFIX = " outlines"
OUTLINE_REFERENCE = "tumorgenOutlines"


def new_concentration(ctx, reference_node, name: str = DEFAULT_NAME):
    """An all-zero concentration field on ``reference_node``'s grid (float32, [0, 1])."""
    grid = grid_of(reference_node)
    node = add_volume(ctx, Volume(np.zeros(grid.size, np.float32), grid), name)
    show_concentration(ctx, node)
    return node


def show_concentration(ctx, node) -> None:
    """Colour map over [0, 1] (zero transparent) and the label thresholds as outlines."""
    show_colormap(ctx, node, CONCENTRATION_COLORS, window=(0.0, 1.0), threshold_fraction=DISPLAY_THRESHOLD)
    update_outlines(ctx, node)


def outlines_node(ctx, node):
    """The label map drawn as outlines over a concentration node (None before the first update)."""
    return node.GetNodeReference(OUTLINE_REFERENCE)


def update_outlines(ctx, node, field: Volume | None = None, thresholds=None):
    """The label map (BraTS 1/2/3 from the engine's thresholds) drawn as outlines over the field.

    ``field`` is the node's field when the caller has it already (saves reading the node again).
    """
    from tumorgen.biophysics.labels import LabelThresholds, concentration_to_labels

    labels = concentration_to_labels(field if field is not None else volume_of(node), thresholds or LabelThresholds())
    labels = labels.with_array(np.asarray(labels.array, dtype=np.uint8))
    outline = outlines_node(ctx, node)
    if outline is None:
        outline = add_volume(ctx, labels, node.GetName() + OUTLINE_SUFFIX, labelmap=True)
        node.SetNodeReferenceID(OUTLINE_REFERENCE, outline.GetID())
    else:
        set_volume(outline, labels)
        show_labels(ctx, outline)
    return outline


def tumor_volume_cm3(node, threshold: float) -> float:
    from tumorgen.biophysics.fk import tumor_volume_cm3 as engine_volume

    field = volume_of(node)
    return engine_volume(np.asarray(field.array), field.grid, threshold)
