"""Exchange files between the GUI and the backend: raw (uncompressed) NRRD, cheap enough for the GUI thread.

A run's inputs are written, and its outputs read, on the GUI thread (threads
starve in Slicer's GUI process, see :mod:`tumorgen.backend.process`), so these
files must cost little. For a 1 mm brain (193×229×193 float32, 34 MB) on 2 CPU
cores:

- writing compressed NIfTI takes about 1.1 s, ITK's uncompressed NRRD writer
  80–100 ms; :func:`write_node` writes the node's own voxel buffer (VTK keeps
  them x-fastest, as raw NRRD stores them) behind a ten-line header: about 15 ms;
- reading a compressed NIfTI through the volumes logic takes about 250 ms,
  most of it decompression and the display's automatic window/level over
  every voxel (and importing SimpleITK the first time, 70 ms more);
  :func:`load_node` reads raw NRRD (:func:`read_raw_nrrd`, about 15 ms) into a
  node without reordering and sets the window from a strided sample.

The header follows the NRRD format (``space: left-posterior-superior``, ``space
directions`` and ``space origin`` in LPS, as ITK and Slicer write it). Slicer's
Python has no NRRD library but ITK's, hence the few lines here; the tests read
every file written here with SimpleITK, and every file SimpleITK writes here,
and compare voxels and geometry, oblique directions included.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tumorgen.errors import InputError
from tumorgen.volume import Volume

#: The raw NRRD file suffix runs exchange volumes with.
SUFFIX = ".nrrd"
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
_NRRD_TYPES = {np.dtype(np.uint8): "uint8", np.dtype(np.int8): "int8", np.dtype(np.int16): "short",
               np.dtype(np.uint16): "ushort", np.dtype(np.int32): "int", np.dtype(np.uint32): "uint",
               np.dtype(np.int64): "longlong", np.dtype(np.uint64): "ulonglong", np.dtype(np.float32): "float",
               np.dtype(np.float64): "double"}
#: Every type name the NRRD format allows (ITK writes "unsigned char", "short", ...), to its numpy type.
_NRRD_READ_TYPES = {
    **{name: np.dtype(np.int8) for name in ("signed char", "int8", "int8_t")},
    **{name: np.dtype(np.uint8) for name in ("uchar", "unsigned char", "uint8", "uint8_t")},
    **{name: np.dtype(np.int16) for name in ("short", "short int", "signed short", "signed short int", "int16", "int16_t")},
    **{name: np.dtype(np.uint16) for name in ("ushort", "unsigned short", "unsigned short int", "uint16", "uint16_t")},
    **{name: np.dtype(np.int32) for name in ("int", "signed int", "int32", "int32_t")},
    **{name: np.dtype(np.uint32) for name in ("uint", "unsigned int", "uint32", "uint32_t")},
    **{name: np.dtype(np.int64) for name in ("longlong", "long long", "long long int", "signed long long",
                                             "signed long long int", "int64", "int64_t")},
    **{name: np.dtype(np.uint64) for name in ("ulonglong", "unsigned long long", "unsigned long long int", "uint64",
                                              "uint64_t")},
    "float": np.dtype(np.float32), "double": np.dtype(np.float64),
}
#: Voxels sampled (about) to set a loaded scalar volume's window and level.
_WINDOW_SAMPLE = 200_000


def write_raw_nrrd(path: str | os.PathLike, voxels: np.ndarray, ijk_to_ras: np.ndarray) -> Path:
    """Write ``voxels`` (shape ``(k, j, i)``, C order: i fastest) with the geometry ``ijk_to_ras`` as raw NRRD.

    Atomic: the file is written under a hidden name in the same folder and renamed when complete.
    """
    path = Path(path)
    dtype = np.dtype(voxels.dtype)
    if dtype == np.bool_:
        voxels, dtype = voxels.astype(np.uint8), np.dtype(np.uint8)
    kind = _NRRD_TYPES.get(dtype.newbyteorder("=") if dtype.byteorder not in "=|" else dtype)
    if kind is None or voxels.ndim != 3:
        raise InputError(f"{path.name}: cannot exchange a {voxels.ndim}-D {dtype} volume (need 3-D, integer or float)")
    lps = _RAS_TO_LPS @ np.asarray(ijk_to_ras, dtype=float)
    directions = " ".join("(" + ",".join(f"{v:.17g}" for v in lps[:3, c]) + ")" for c in range(3))
    origin = "(" + ",".join(f"{v:.17g}" for v in lps[:3, 3]) + ")"
    nk, nj, ni = voxels.shape
    header = (f"NRRD0004\ntype: {kind}\ndimension: 3\nspace: left-posterior-superior\nsizes: {ni} {nj} {nk}\n"
              f"space directions: {directions}\nkinds: domain domain domain\n"
              f"endian: {'big' if dtype.byteorder == '>' else 'little'}\nencoding: raw\nspace origin: {origin}\n\n")
    partial = path.with_name(f".{path.name}.part")
    try:
        with open(partial, "wb") as out:
            out.write(header.encode("ascii"))
            np.ascontiguousarray(voxels).tofile(out)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path


def write_node(node, path: str | os.PathLike) -> Path:
    """Write a scalar volume node's voxels as they are in memory (no copy, no reordering) and its geometry."""
    from vtk.util.numpy_support import vtk_to_numpy

    from tumorgen_slicer.nodes import ijk_to_ras

    image = node.GetImageData() if node is not None else None
    scalars = image.GetPointData().GetScalars() if image is not None else None
    if scalars is None:
        raise InputError(f"volume {node.GetName() if node is not None else '(none)'} has no image data")
    if scalars.GetNumberOfComponents() != 1:
        raise InputError(f"volume {node.GetName()} has {scalars.GetNumberOfComponents()} components; TumorGen needs a scalar volume")
    ni, nj, nk = image.GetDimensions()
    return write_raw_nrrd(path, vtk_to_numpy(scalars).reshape(nk, nj, ni), ijk_to_ras(node))


def write_volume(volume: Volume, path: str | os.PathLike) -> Path:
    """Write an engine volume (indexed ``[i, j, k]``) as raw NRRD with its exact geometry."""
    return write_raw_nrrd(path, np.asarray(volume.array).transpose(2, 1, 0), volume.grid.index_to_ras_matrix)


def read_raw_nrrd(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """The voxels (shape ``(k, j, i)``, VTK's order) and the IJK→RAS matrix of a raw 3-D NRRD file.

    Reads what :func:`write_raw_nrrd` and ITK's NRRD writer (the backend's outputs) write: a header of ``key: value``
    lines, a blank line, the voxels uncompressed (``encoding: raw``) in a ``space: left-posterior-superior`` (or
    ``right-anterior-superior``) space. Anything else is an InputError that names it.
    """
    path = Path(path)
    with open(path, "rb") as source:
        if not source.readline().startswith(b"NRRD"):
            raise InputError(f"{path.name}: not a NRRD file")
        fields: dict[str, str] = {}
        for raw in iter(source.readline, b""):
            line = raw.decode("latin-1").strip()
            if not line:
                break
            if line.startswith("#") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip().lstrip("=").strip()
        offset = source.tell()
    try:
        kind = _NRRD_READ_TYPES[fields["type"]]
        if fields.get("encoding", "raw") != "raw" or fields.get("dimension") != "3" or "data file" in fields:
            raise KeyError("encoding")
        ni, nj, nk = (int(v) for v in fields["sizes"].split())
        directions = np.array([[float(v) for v in part.strip("() ").split(",")]
                               for part in fields["space directions"].replace(") (", ")|(").split("|")]).T
        origin = np.array([float(v) for v in fields.get("space origin", "(0,0,0)").strip("() ").split(",")])
    except (KeyError, ValueError) as exc:
        raise InputError(f"{path.name}: not a raw 3-D NRRD volume TumorGen exchanges ({exc})") from None
    dtype = kind.newbyteorder(">" if fields.get("endian") == "big" else "<")
    voxels = np.fromfile(path, dtype=dtype, count=ni * nj * nk, offset=offset)
    if voxels.size != ni * nj * nk:
        raise InputError(f"{path.name}: holds {voxels.size} of its {ni * nj * nk} voxels")
    matrix = np.eye(4)
    matrix[:3, :3], matrix[:3, 3] = directions, origin
    if fields.get("space", "left-posterior-superior") in ("left-posterior-superior", "LPS"):
        matrix = _RAS_TO_LPS @ matrix
    elif fields.get("space") not in ("right-anterior-superior", "RAS"):
        raise InputError(f"{path.name}: space {fields.get('space')!r} is neither LPS nor RAS")
    return voxels.astype(kind, copy=False).reshape(nk, nj, ni), matrix


def load_node(ctx, path: str | os.PathLike, name: str, *, labelmap: bool = False):
    """A new scalar (or label map) volume node with the voxels and geometry of the volume file ``path``.

    A raw NRRD file (what runs exchange) is read straight into the node's memory order; any other volume file goes
    through Slicer's volumes logic. A scalar volume's window and level come from a strided sample of its voxels
    (the 1st and 99th percentiles), not from a pass over all of them.
    """
    import vtk

    from tumorgen_slicer.nodes import show_labels
    from tumorgen_slicer.vtk_arrays import fill_image, vtk_matrix

    if not str(path).endswith(SUFFIX):
        return _load_through_slicer(ctx, path, name, labelmap=labelmap)
    voxels, ijk_to_ras = read_raw_nrrd(path)
    if labelmap and not np.issubdtype(voxels.dtype, np.integer):
        voxels = voxels.astype(np.int16)
    node = ctx.scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode", name)
    was = node.StartModify()
    node.SetIJKToRASMatrix(vtk_matrix(ijk_to_ras))
    node.SetAndObserveImageData(fill_image(vtk.vtkImageData(), voxels))
    node.EndModify(was)
    if labelmap:
        node.CreateDefaultDisplayNodes()
        show_labels(ctx, node)
        return node
    display = ctx.scene.AddNewNodeByClass("vtkMRMLScalarVolumeDisplayNode")
    display.SetAutoWindowLevel(False)
    step = max(1, round((voxels.size / _WINDOW_SAMPLE) ** (1 / 3)))
    low, high = (float(v) for v in np.percentile(voxels[::step, ::step, ::step], (1.0, 99.0)))
    display.SetWindowLevelMinMax(low, high if high > low else low + 1.0)
    grey = ctx.scene.GetNodeByID("vtkMRMLColorTableNodeGrey")
    if grey is not None:
        display.SetAndObserveColorNodeID(grey.GetID())
    node.SetAndObserveDisplayNodeID(display.GetID())
    return node


def _load_through_slicer(ctx, path: str | os.PathLike, name: str, *, labelmap: bool = False):
    """Load a volume file as a new node through the volumes logic (Slicer's own reader and storage node).

    ``AddArchetypeVolume`` tries the label-map reader when asked for one (``AddArchetypeScalarVolume`` only tries the
    scalar reader and ignores the label-map option).
    """
    from tumorgen_slicer.nodes import show_labels

    options = 4 | (1 if labelmap else 0)  # single file (no series), label map
    node = ctx.volumes_logic.AddArchetypeVolume(str(path), name, options, None)
    if node is None:
        raise InputError(f"could not load {path} into the scene")
    if node.GetDisplayNode() is None:
        node.CreateDefaultDisplayNodes()
    if labelmap:
        show_labels(ctx, node)
    return node
