"""Tumor labels as segmentation nodes (the Segment Editor's) and segmentation nodes back as label maps.

A label map holds BraTS labels (1 necrotic tumor core, 2 peritumoral edema, 3 enhancing tumor) and TumorGen's
resection cavity (4). As a ``vtkMRMLSegmentationNode`` each label present is one segment, named as in
:data:`SEGMENT_NAMES`, coloured as in :data:`~tumorgen_slicer.nodes.LABEL_COLORS` and, where DICOM has a code for it,
tagged with its standard terminology (:data:`TERMINOLOGY`). The way back reads a segment's label from its name
(:func:`label_of_segment`: the names above, or the common short ones such as ``NCR``, ``ED``, ``ET``, ``necrosis``,
``edema``, ``enhancing``, ``cavity``, in any case), so a tumor edited in the Segment Editor can be the labels of the
next run. Both directions use Slicer's own segmentations logic; neither modifies its input node.

Geometry: a segment's binary labelmap is a ``vtkOrientedImageData`` whose image-to-world matrix maps absolute voxel
indices (its extent need not start at 0) to RAS; :func:`volume_of_image` and :func:`oriented_image` convert it to and
from the engine's :class:`~tumorgen.volume.Volume` exactly. A segmentation's own grid is its reference image geometry
(the label map it was imported from, or the source volume it was drawn on), else the union of its segments' extents.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from tumorgen.errors import InputError
from tumorgen.volume import Volume
from tumorgen_slicer.nodes import LABEL_COLORS, grid_from_ijk_to_ras, grid_of, ijk_to_ras
from tumorgen_slicer.vtk_arrays import array_of_matrix, fill_image, vtk_matrix

#: The MRML class of a segmentation.
SEGMENTATION_CLASS = "vtkMRMLSegmentationNode"
#: A label's segment name.
SEGMENT_NAMES = {1: "Necrotic tumor core", 2: "Peritumoral edema", 3: "Enhancing tumor", 4: "Resection cavity"}
#: Other names a segment may have for each label (compared in lower case, with ``_`` and ``-`` read as spaces).
SEGMENT_ALIASES = {
    1: ("ncr", "net", "ncr/net", "necrosis", "necrotic", "necrotic core", "necrotic tumor", "necrotic tumour core"),
    2: ("ed", "edema", "oedema", "peritumoral oedema", "snfh"),
    3: ("et", "enhancing", "enhancing tumour", "enhancing lesion"),
    4: ("rc", "cavity", "resection", "surgical cavity"),
}
#: Labels from the outermost region to the innermost: where segments overlap, the later label wins.
OVERLAP_ORDER = (2, 1, 3, 4)

_CONTEXT = "Segmentation category and type - DICOM master list"
_ALTERED = "SCT^49755003^Morphologically Altered Structure"
#: Slicer's terminology entry (segment tag ``TerminologyEntry``) per label, with the codes of DICOM CID 7168 (Brain
#: Lesion Segmentation Type With Necrosis). The resection cavity has no code there and is left without one.
TERMINOLOGY = {value: f"{_CONTEXT}~{_ALTERED}~{code}~^^~Anatomic codes - DICOM master list~^^~^^"
               for value, code in ((1, "SCT^6574001^Necrosis"), (2, "SCT^79654002^Edema"), (3, "NCIt^C113842^Enhancing Lesion"))}


def _normal(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", name.strip().lower())


_LABELS_BY_NAME = {_normal(name): value for value, name in SEGMENT_NAMES.items()}
_LABELS_BY_NAME.update({_normal(alias): value for value, aliases in SEGMENT_ALIASES.items() for alias in aliases})
_LABELS_BY_NAME.update({_normal(name): value for value, (name, _) in LABEL_COLORS.items()})


def is_segmentation(node: Any) -> bool:
    """Whether ``node`` is a segmentation node (a ``vtkMRMLSegmentationNode``)."""
    return node is not None and bool(node.IsA(SEGMENTATION_CLASS))


def label_of_segment(segment_name: str, segmentation_name: str = "") -> int:
    """The label value a segment's name stands for (see :data:`SEGMENT_NAMES` and :data:`SEGMENT_ALIASES`).

    Args:
        segment_name: the segment's name, as the Segment Editor shows it.
        segmentation_name: the segmentation's name, for the error message.

    Returns:
        The label: 1 necrotic tumor core, 2 peritumoral edema, 3 enhancing tumor, 4 resection cavity.

    Raises:
        InputError: (one line) the name is none of these.
    """
    value = _LABELS_BY_NAME.get(_normal(segment_name))
    if value is None:
        where = f" of the segmentation {segmentation_name!r}" if segmentation_name else ""
        names = ", ".join(SEGMENT_NAMES.values())
        raise InputError(f"the segment {segment_name!r}{where} is not a tumor label: name it {names} (or NCR, ED, ET, cavity)")
    return value


def segment_labels(segmentation_node: Any) -> dict[str, int]:
    """Each segment's ID and the label its name stands for, in the segmentation's order.

    Raises:
        InputError: (one line) a segment's name is not a tumor label's (see :func:`label_of_segment`).
    """
    segmentation = segmentation_node.GetSegmentation()
    out = {}
    for n in range(segmentation.GetNumberOfSegments()):
        segment_id = segmentation.GetNthSegmentID(n)
        out[segment_id] = label_of_segment(segmentation.GetSegment(segment_id).GetName(), segmentation_node.GetName())
    return out


# -- label map -> segmentation ---------------------------------------------------------------------------------
def labelmap_to_segmentation(ctx: Any, labelmap_node: Any, name: str | None = None) -> Any:
    """A new segmentation node with one segment per label present in ``labelmap_node`` (which is only read).

    Slicer's ``ImportLabelmapToSegmentationNode`` makes the segments from the labels' bounding box (the whole 1 mm
    grid took 100-140 ms on the GUI thread, the box a few); each is then named (:data:`SEGMENT_NAMES`), coloured
    (:data:`~tumorgen_slicer.nodes.LABEL_COLORS`) and tagged with its terminology (:data:`TERMINOLOGY`). A label
    outside 1-4 keeps Slicer's name for it (``Label_5``). The segmentation's reference geometry
    is the label map's, it has a display node drawing the segments as outlines in the slice views (as TumorGen draws
    label maps), and it is added to ``ctx.scene``.

    Args:
        ctx: the scene context (:class:`~tumorgen_slicer.context.SceneContext`).
        labelmap_node: a ``vtkMRMLLabelMapVolumeNode`` in the scene.
        name: the new node's name (default: the label map's name with `` segmentation``).

    Returns:
        The new ``vtkMRMLSegmentationNode``.

    Raises:
        InputError: Slicer could not import the label map.
    """
    import slicer

    node = ctx.scene.AddNewNodeByClass(SEGMENTATION_CLASS, name or f"{labelmap_node.GetName()} segmentation")
    node.CreateDefaultDisplayNodes()
    display = node.GetDisplayNode()
    if display is not None:
        display.SetVisibility2DFill(False)
        display.SetVisibility2DOutline(True)
    node.SetReferenceImageGeometryParameterFromVolumeNode(labelmap_node)
    labels = _labels_in_their_box(labelmap_node)
    if labels is not None and not slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labels, node):
        ctx.scene.RemoveNode(node)
        raise InputError(f"could not make a segmentation of the label map {labelmap_node.GetName()!r}")
    segmentation = node.GetSegmentation()
    for n in range(segmentation.GetNumberOfSegments()):
        segment = segmentation.GetNthSegment(n)
        value = segment.GetLabelValue()  # the import keeps each label's value in the shared labelmap
        if value in SEGMENT_NAMES:
            segment.SetName(SEGMENT_NAMES[value])
            segment.SetColor(*LABEL_COLORS[value][1])
            if value in TERMINOLOGY:
                segment.SetTerminology(TERMINOLOGY[value])
    return node


def _labels_in_their_box(labelmap_node: Any) -> Any:
    """The label map's voxels inside the bounding box of its labels, as a ``vtkOrientedImageData`` on the label map's own
    grid (its extent is the box), or None when it holds no label. The label map is only read."""
    import slicer
    from vtk.util.numpy_support import vtk_to_numpy

    image = labelmap_node.GetImageData()
    if image is None or image.GetPointData().GetScalars() is None:
        raise InputError(f"the label map {labelmap_node.GetName()!r} has no image data")
    ni, nj, nk = image.GetDimensions()
    voxels = vtk_to_numpy(image.GetPointData().GetScalars()).reshape(nk, nj, ni)
    ks = np.flatnonzero(voxels.any(axis=(1, 2)))
    if ks.size == 0:
        return None
    box = voxels[ks[0]:ks[-1] + 1]
    js = np.flatnonzero(box.any(axis=(0, 2)))
    box = box[:, js[0]:js[-1] + 1]
    is_ = np.flatnonzero(box.any(axis=(0, 1)))
    labels = fill_image(slicer.vtkOrientedImageData(), box[:, :, is_[0]:is_[-1] + 1])
    labels.SetExtent(int(is_[0]), int(is_[-1]), int(js[0]), int(js[-1]), int(ks[0]), int(ks[-1]))
    labels.SetImageToWorldMatrix(vtk_matrix(ijk_to_ras(labelmap_node)))
    return labels


# -- segmentation -> label map ---------------------------------------------------------------------------------
def segmentation_labels(segmentation_node: Any, reference: Any = None) -> Volume:
    """The segmentation as a label map: each segment's voxels hold the label of its name (:func:`label_of_segment`).

    Where segments overlap, the voxel takes the label of the innermost region (:data:`OVERLAP_ORDER`: a cavity over the
    enhancing tumor over the necrotic core over the oedema, as BraTS nests enhancing ⊂ tumor core ⊂ whole tumor).
    Hidden segments count too. The node is only read.

    Args:
        segmentation_node: a ``vtkMRMLSegmentationNode``.
        reference: a volume node whose grid the labels are on (Slicer resamples the segments to it, nearest
            neighbour, taking the transforms between them into account); None: the segmentation's own grid (its
            reference image geometry, else the union of its segments' extents).

    Returns:
        A uint8 volume of labels 0-4.

    Raises:
        InputError: (one line) a segment's name is not a tumor label's, or there is no grid to put the labels on
            (no reference, and the segmentation has neither a reference geometry nor a segment).
    """
    import slicer
    import vtk

    labels = segment_labels(segmentation_node)
    ordered = sorted(labels, key=lambda segment_id: OVERLAP_ORDER.index(labels[segment_id]))  # a later one wins
    segment_ids, values = vtk.vtkStringArray(), vtk.vtkIntArray()
    for segment_id in ordered:
        segment_ids.InsertNextValue(segment_id)
        values.InsertNextValue(labels[segment_id])
    merged = slicer.vtkOrientedImageData()
    if not ordered:  # nothing to merge (Slicer's merge fails then): no label on the grid
        merged = _reference_image(segmentation_node, reference)
    elif reference is not None:
        slicer.vtkSlicerSegmentationsModuleLogic.GenerateMergedLabelmapInReferenceGeometry(
            segmentation_node, reference, segment_ids, slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY, merged, values)
    else:
        segmentation_node.GenerateMergedLabelmapForAllSegments(merged, slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY, None,
                                                               segment_ids, values)
    if merged is None or merged.GetPointData().GetScalars() is None or min(merged.GetDimensions()) < 1:
        raise InputError(f"the segmentation {segmentation_node.GetName()!r} has no geometry to export: it holds no segment "
                         "and no reference geometry")
    volume = volume_of_image(merged)
    return volume.with_array(np.asarray(volume.array).astype(np.uint8))


def _reference_image(segmentation_node: Any, reference: Any) -> Any:
    """An image of zeros on the reference volume's grid, else on the segmentation's reference geometry (None: neither)."""
    import slicer
    import vtk

    if reference is not None:
        grid = grid_of(reference)
        return oriented_image(Volume(np.zeros(grid.size, np.uint8), grid))
    name = slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName()
    # read from the serialized parameters: GetConversionParameter logs an error when there is none
    serialized = segmentation_node.GetSegmentation().SerializeAllConversionParameters()
    entries = (entry.split("|") for entry in serialized.split("&"))
    geometry = next((entry[1] for entry in entries if len(entry) > 1 and entry[0] == name), "")
    image = slicer.vtkOrientedImageData()
    converter = slicer.vtkSegmentationConverter
    if not geometry or not converter.DeserializeImageGeometry(geometry, image, True, vtk.VTK_UNSIGNED_CHAR, 1):
        return None
    image.GetPointData().GetScalars().Fill(0)
    return image


# -- oriented images <-> engine volumes -------------------------------------------------------------------------
def volume_of_image(image: Any) -> Volume:
    """A ``vtkOrientedImageData`` as an engine volume (a copy; indices from the start of its extent).

    Args:
        image: a single-component oriented image, e.g. a segment's binary labelmap.

    Returns:
        The voxels indexed ``[i, j, k]`` on the image's grid.
    """
    import vtk
    from vtk.util.numpy_support import vtk_to_numpy

    dims = image.GetDimensions()
    flat = vtk_to_numpy(image.GetPointData().GetScalars())
    array = np.array(flat.reshape(dims[2], dims[1], dims[0]).transpose(2, 1, 0), copy=True)
    matrix = vtk.vtkMatrix4x4()
    image.GetImageToWorldMatrix(matrix)
    m = array_of_matrix(matrix)
    extent = image.GetExtent()
    m[:, 3] = m @ np.array([extent[0], extent[2], extent[4], 1.0])  # index 0 of the array is the extent's start
    return Volume(array, grid_from_ijk_to_ras(m, dims, "the segmentation"))


def oriented_image(volume: Volume) -> Any:
    """An engine volume as a ``vtkOrientedImageData`` (extent from 0; e.g. a binary mask to set a segment from).

    Args:
        volume: the voxels (bool arrays become uint8) and their grid.

    Returns:
        A new oriented image with the volume's voxels and geometry.
    """
    import slicer

    image = fill_image(slicer.vtkOrientedImageData(), np.asarray(volume.array).transpose(2, 1, 0))
    image.SetImageToWorldMatrix(vtk_matrix(volume.grid.index_to_ras_matrix))
    return image
