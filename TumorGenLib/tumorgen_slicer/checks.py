"""Checks on what a user hands the presenter: input roles and volume files (type, size, contents, geometry).

Nothing enters the scene unless every check passes; each failure is one line
naming the file and the problem.
"""

from __future__ import annotations

from pathlib import Path

from tumorgen.errors import InputError
from tumorgen.volume import Grid, Volume

#: Input roles, in the order the Inputs panel shows them.
IMAGE_ROLES = ("t1n", "t1c", "t2w", "t2f")
TISSUE_ROLES = ("csf", "gm", "wm")
#: Label maps: the tumor's BraTS segmentation (1 necrosis, 2 oedema, 3 enhancing), which post-operative prediction can take.
LABEL_ROLES = ("seg",)
ROLES = IMAGE_ROLES + TISSUE_ROLES + LABEL_ROLES
#: The node classes an input may be: a volume for every role; for a label role also a segmentation, whose segments are
#: written as labels by name on the t1n's grid (:mod:`~tumorgen_slicer.segmentations`).
VOLUME_CLASS = "vtkMRMLScalarVolumeNode"
LABEL_CLASSES = (VOLUME_CLASS, "vtkMRMLSegmentationNode")
#: Limits on a loaded or uploaded volume file.
MAX_UPLOAD_BYTES = 512 * 2**20
MAX_VOXELS = 512**3
VOLUME_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")


def check_role(role: str) -> None:
    if role not in ROLES:
        raise InputError(f"unknown input {role!r}; choose one of {', '.join(ROLES)}")


def input_classes(role: str) -> tuple[str, ...]:
    """The MRML classes a node may be to be the input of ``role``."""
    check_role(role)
    return LABEL_CLASSES if role in LABEL_ROLES else (VOLUME_CLASS,)


def check_input_node(role: str, node) -> None:
    """InputError (one line, naming the node) unless ``node`` (a MRML node or None) can be the input of ``role``."""
    classes = input_classes(role)
    if node is not None and not any(node.IsA(name) for name in classes):
        what = "a scalar volume, a label map or a segmentation" if len(classes) > 1 else "a scalar volume"
        raise InputError(f"{node.GetName()!r} is not {what}")


def check_size(label: str, size: int, max_bytes: int = MAX_UPLOAD_BYTES) -> None:
    if size > max_bytes:
        raise InputError(f"{label}: {size / 2**20:.0f} MiB is over the {max_bytes / 2**20:.0f} MiB limit")


def stem(label: str) -> str:
    """A file name without its volume suffix (``case-t1n.nii.gz`` → ``case-t1n``)."""
    return next((label[: -len(sfx)] for sfx in VOLUME_SUFFIXES if label.lower().endswith(sfx)), label)


def read_volume_file(path: str | Path, role: str, *, label: str | None = None, max_bytes: int = MAX_UPLOAD_BYTES,
                     reference: Grid | None = None) -> Volume:
    """Read a volume file for ``role`` after checking its type and size; a non-t1n role must match ``reference``."""
    from tumorgen.volume_io import read_volume

    file = Path(path)
    label = label or file.name
    check_role(role)
    if not file.name.lower().endswith(VOLUME_SUFFIXES):
        raise InputError(f"{label}: unsupported file type; use NIfTI (.nii, .nii.gz), NRRD (.nrrd) or MetaImage (.mha, .mhd)")
    if not file.is_file():
        raise InputError(f"{label}: no such file")
    check_size(label, file.stat().st_size, max_bytes)
    volume = read_volume(file, role=role)
    if volume.grid.num_voxels > MAX_VOXELS:
        raise InputError(f"{label}: {volume.grid.size} is too many voxels (at most {MAX_VOXELS:,})")
    if role != "t1n" and reference is not None:
        differences = reference.differences(volume.grid)
        if differences:
            raise InputError(f"{label} does not match the t1n's geometry: {'; '.join(differences)}")
    if role in LABEL_ROLES:
        volume = _labels(volume, label)
    return volume


def _labels(volume: Volume, label: str) -> Volume:
    """A segmentation's voxels as whole labels (uint8), or InputError naming a value that is none."""
    import numpy as np

    values = np.unique(np.asarray(volume.array))
    bad = values[(values != np.round(values)) | (values < 0) | (values > 255)]
    if bad.size:
        raise InputError(f"{label}: a segmentation holds whole labels 0-255 (BraTS: 1, 2, 3), found {bad[0]:g}")
    return volume.with_array(np.asarray(volume.array).astype(np.uint8))
