"""Reading, checking and writing volumes (NIfTI ``.nii``/``.nii.gz`` and NRRD).

Every reader turns a bad file into an :class:`~tumorgen.errors.InputError` with a
one-line message that names the file and the problem. Every writer writes to a
temporary name in the destination folder and renames it into place, so a
reader never sees a half-written file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from tumorgen.atomic import check_writable_dir, staged_file
from tumorgen.errors import InputError
from tumorgen.volume import Volume

#: File name endings the engine reads and writes, longest first.
SUPPORTED_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
#: Single-file formats, the only ones a rename can publish atomically.
WRITABLE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")


def volume_suffix(path: str | os.PathLike) -> str:
    """The volume-format ending of ``path`` (``.nii.gz`` counts as one), or raise InputError."""
    name = Path(path).name.lower()
    for suffix in SUPPORTED_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    raise InputError(f"{path}: unsupported volume format (use one of {', '.join(SUPPORTED_SUFFIXES)})")


def read_volume(path: str | os.PathLike, *, role: str = "image", allow_non_finite: bool = False) -> Volume:
    """Read a scalar 3D volume and check it.

    Args:
        path: a NIfTI or NRRD file.
        role: what the file is for, used in error messages ("image", "mask", ...).
        allow_non_finite: accept NaN/Inf voxels (never for images fed to a model).

    Raises:
        InputError: missing, unreadable or corrupt file; not 3D; vector pixels;
            NaN or Inf voxels.
    """
    import SimpleITK as sitk

    path = Path(path)
    if not path.exists():
        raise InputError(f"{role} file not found: {path}")
    if not path.is_file():
        raise InputError(f"{role} path is not a file: {path}")
    volume_suffix(path)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise InputError(f"cannot read {role} {path}: {_itk_reason(exc)}") from None
    dim = image.GetDimension()
    if dim != 3:
        raise InputError(f"{role} {path} is {dim}D (size {image.GetSize()}); expected a 3D volume")
    components = image.GetNumberOfComponentsPerPixel()
    if components != 1:
        raise InputError(f"{role} {path} has {components} values per voxel; expected a scalar volume")
    try:
        volume = Volume.from_sitk(image)
    except RuntimeError as exc:  # pixel data truncated after a readable header
        raise InputError(f"cannot read {role} {path}: {_itk_reason(exc)}") from None
    if not allow_non_finite:
        check_finite(volume, f"{role} {path}")
    if volume_suffix(path) in (".nii", ".nii.gz"):
        missing, non_finite = _scan_nifti(path)
        if missing:
            raise InputError(f"cannot read {role} {path}: the voxel data ends {missing} bytes early (truncated file)")
        if non_finite and not allow_non_finite:
            raise InputError(f"{role} {path} has {non_finite} NaN or Inf voxels")
    return volume


def read_mask(
    path: str | os.PathLike,
    *,
    reference: Volume | None = None,
    reference_name: str = "image",
    role: str = "mask",
    allow_empty: bool = False,
) -> Volume:
    """Read a binary mask (voxels 0 or 1) and return it as a boolean volume.

    Raises:
        InputError: what :func:`read_volume` raises, plus: values other than 0
            and 1, an empty mask, or a geometry different from ``reference``.
    """
    volume = read_volume(path, role=role)
    values = np.unique(volume.array)
    if not np.all(np.isin(values, (0, 1))):
        shown = ", ".join(f"{v:g}" for v in values[:6]) + (", ..." if values.size > 6 else "")
        raise InputError(f"{role} {path} is not binary: it has values {shown} (expected only 0 and 1)")
    mask = volume.with_array(volume.array.astype(bool))
    if not allow_empty and not mask.array.any():
        raise InputError(f"{role} {path} is empty: no voxel is set")
    if reference is not None:
        check_same_geometry(reference, mask, (reference_name, f"{role} {path}"))
    return mask


def check_finite(volume: Volume, name: str) -> None:
    """Raise InputError if ``volume`` has NaN or Inf voxels."""
    if np.issubdtype(volume.dtype, np.floating):
        bad = ~np.isfinite(volume.array)
        count = int(bad.sum())
        if count:
            raise InputError(f"{name} has {count} NaN or Inf voxels")


def check_same_geometry(a: Volume, b: Volume, names: Sequence[str] = ("image", "mask")) -> None:
    """Raise InputError unless ``a`` and ``b`` share size, spacing, origin and direction."""
    diffs = a.grid.differences(b.grid)
    if diffs:
        raise InputError(f"{names[0]} and {names[1]} have different geometry: {'; '.join(diffs)}")


def write_volume(volume: Volume, path: str | os.PathLike, *, dtype: np.dtype | str | None = None) -> Path:
    """Write ``volume`` to ``path`` atomically (temporary name in the same folder, then rename).

    The grid is written as it is, so a volume made with ``like.with_array(...)``
    keeps its input's geometry exactly. ``.nii.gz`` files are compressed.
    """
    import SimpleITK as sitk

    path = Path(path)
    suffix = volume_suffix(path)
    if suffix not in WRITABLE_SUFFIXES:
        raise InputError(f"{path}: cannot write {suffix} (data in a separate file); use one of {', '.join(WRITABLE_SUFFIXES)}")
    check_writable_dir(path.parent)
    out = volume if dtype is None else volume.with_array(volume.array.astype(dtype))
    image = out.to_sitk()
    with staged_file(path, suffix=suffix) as tmp:  # SimpleITK picks the format by the name's ending
        sitk.WriteImage(image, str(tmp), useCompression=suffix == ".nii.gz")
    return path


def _scan_nifti(path: Path) -> tuple[int, int]:
    """Read a NIfTI file's stored voxels: ``(missing_bytes, non_finite_count)``.

    ITK's NIfTI reader fills voxel data that stops early with zeros and maps
    NaN/Inf voxels to 0 on the way in, so neither shows in the loaded array;
    this looks at the stored bytes instead. Anything it cannot parse is left
    to ITK's own checks (it returns ``(0, 0)``).
    """
    import gzip
    import struct
    import zlib

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            header = f.read(540)
            for endian in ("<", ">"):
                sizeof_hdr = struct.unpack(endian + "i", header[:4])[0]
                if sizeof_hdr in (348, 540):
                    break
            else:
                return 0, 0
            if sizeof_hdr == 348:
                ndim, *dims = struct.unpack(endian + "8h", header[40:56])
                datatype, bitpix = struct.unpack(endian + "2h", header[70:74])
                offset = int(struct.unpack(endian + "f", header[108:112])[0])
            else:
                datatype, bitpix = struct.unpack(endian + "2h", header[12:16])
                ndim, *dims = struct.unpack(endian + "8q", header[16:80])
                offset = struct.unpack(endian + "q", header[168:176])[0]
            if not 1 <= ndim <= 7 or bitpix <= 0 or bitpix % 8:
                return 0, 0
            count = int(np.prod([max(int(d), 1) for d in dims[:ndim]]))
            itemsize = bitpix // 8
            float_kind = {16: "f4", 64: "f8"}.get(datatype)
            dtype = np.dtype(endian + float_kind) if float_kind else np.dtype(f"V{itemsize}")
            f.seek(offset)
            missing, bad = count * itemsize, 0
            chunk = 1 << 22  # voxels per read
            while missing > 0:
                data = f.read(min(chunk * itemsize, missing))
                if not data:
                    break
                missing -= len(data)
                if float_kind:
                    values = np.frombuffer(data[: len(data) - len(data) % itemsize], dtype=dtype)
                    bad += int((~np.isfinite(values)).sum())
            return missing, bad
    except (OSError, EOFError, struct.error, ValueError, zlib.error):
        return 0, 0


def _itk_reason(exc: BaseException) -> str:
    """The useful line of an ITK exception (they span several lines with file/line noise)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.lower().startswith(("itk::error", "itk::exception")) or ln.startswith("Description"):
            return ln.split(":", 1)[-1].strip() if ln.startswith("Description") else ln
    return lines[-1] if lines else type(exc).__name__
