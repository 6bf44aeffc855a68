"""A quick-look PNG montage of volumes and labels (Pillow writes the PNG: 8-bit grey or RGB).

Layout of :func:`montage`: one row per plane (axial, coronal, sagittal), one
column per image in the order given, and, when labels are given, a last column
with the first image under the labels in colour (:data:`LABEL_COLOURS`). Tiles
are ``size_px`` square and separated by :data:`SEPARATOR_PX` dark pixels.

Display orientation (radiological convention), decided from the grid direction
by matching each array axis to the nearest patient axis:

* axial: anterior up, the patient's right on the image's left;
* coronal: superior up, the patient's right on the image's left;
* sagittal: superior up, anterior on the image's left.

All tiles share one scale in millimetres per pixel, so anisotropic voxels keep
their physical aspect and the three planes can be compared by eye. For oblique
grids the slices are the array's own planes (no reslicing), shown along the
patient axes they are closest to.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from tumorgen.atomic import staged_file
from tumorgen.errors import InputError
from tumorgen.volume import Volume

if TYPE_CHECKING:
    from PIL import Image

#: Label value → RGB of the overlay (BraTS label convention).
LABEL_COLOURS: dict[int, tuple[int, int, int]] = {
    1: (255, 64, 64),  # necrotic / non-enhancing core: red
    2: (80, 220, 60),  # oedema: green
    3: (60, 120, 255),  # enhancing tumour: blue
    4: (255, 0, 255),  # resection cavity: magenta
}
#: Colour of any other positive label value.
OTHER_LABEL_COLOUR: tuple[int, int, int] = (255, 200, 0)
#: Opacity of the label colours over the grey image.
LABEL_ALPHA = 0.5
#: Width of the dark lines between tiles, in pixels.
SEPARATOR_PX = 2
SEPARATOR_GREY = 48
#: Rows of the montage, top to bottom.
PLANES = ("axial", "coronal", "sagittal")
#: Percentiles of the non-zero voxels mapped to black and white.
WINDOW_PERCENTILES = (0.5, 99.5)

_WINDOW_SAMPLE = 2_000_000  # at most this many voxels feed a window's percentiles


# -- PNG --------------------------------------------------------------------
def _pil_image(rgb: np.ndarray) -> Image.Image:
    """A :class:`PIL.Image.Image` of a uint8 ``H×W×3`` (RGB) or ``H×W`` (grey) array.

    Raises:
        ValueError: the array is not uint8, not H×W or H×W×3, or empty.
    """
    from PIL import Image

    array = np.asarray(rgb)
    if array.dtype != np.uint8:
        raise ValueError(f"PNG image must be uint8, got {array.dtype}")
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise ValueError(f"PNG image must be H×W (grey) or H×W×3 (RGB), got shape {array.shape}")
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"PNG image must not be empty, got shape {array.shape}")
    return Image.fromarray(np.ascontiguousarray(array))  # mode L or RGB, from the shape


def write_png(rgb: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a uint8 ``H×W×3`` (or ``H×W`` grey) array as a PNG file, atomically.

    The image goes to a temporary file in the destination folder that is then
    renamed into place; on any failure the temporary file is removed.

    Raises:
        ValueError: the array is not uint8 H×W or H×W×3.
        InputError: the folder does not exist or the file cannot be written.
    """
    image = _pil_image(rgb)  # validate before touching the file system
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise InputError(f"cannot write PNG {path}: the folder {folder} {what}")
    if path.is_dir():
        raise InputError(f"cannot write PNG {path}: it is a folder")
    try:
        with staged_file(path, suffix=".png") as tmp:
            image.save(tmp, format="PNG")
    except OSError as exc:
        raise InputError(f"cannot write PNG {path}: {exc.strerror or exc}") from None
    return path


# -- orientation --------------------------------------------------------------
def patient_axes(direction: Sequence[float]) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """``(perm, sign)``: array axis ``perm[p]`` runs along LPS axis ``p`` (x=L, y=P, z=S),
    towards + when ``sign[p]`` is 1 and towards − when it is −1.

    Each array axis is matched to the patient axis its direction is closest to
    (the permutation maximising the total absolute direction cosine, so even a
    45° grid gets a one-to-one assignment).
    """
    d = np.asarray(direction, dtype=float).reshape(3, 3)  # columns: i, j, k directions
    best = max(itertools.permutations(range(3)), key=lambda perm: sum(abs(d[p, perm[p]]) for p in range(3)))
    sign = tuple(-1 if d[p, best[p]] < 0 else 1 for p in range(3))
    return tuple(best), sign  # type: ignore[return-value]


def _to_lps_view(array: np.ndarray, perm: Sequence[int], sign: Sequence[int]) -> np.ndarray:
    """A view of ``array`` indexed [x, y, z] with indices growing towards L, P, S."""
    out = array.transpose(perm)
    flips = tuple(slice(None, None, -1) if s < 0 else slice(None) for s in sign)
    return out[flips]


# -- montage ------------------------------------------------------------------
def montage(
    images: Mapping[str, Volume],
    labels: Volume | None = None,
    *,
    centre_voxel: Sequence[int] | None = None,
    size_px: int = 160,
) -> np.ndarray:
    """An RGB uint8 montage: rows axial/coronal/sagittal, one column per image (+ overlay).

    Args:
        images: name → volume, all on the same grid; shown in this order, each in
            grey windowed to the 0.5–99.5 percentiles of its non-zero voxels.
        labels: an integer label map on the same grid; adds a last column with
            the first image under the labels in colour (:data:`LABEL_COLOURS`).
        centre_voxel: ``(i, j, k)`` the three planes pass through; by default the
            centroid of ``labels > 0``, or the volume centre without labels.
        size_px: side of each square tile in pixels.

    Returns:
        Array of shape ``(3*size_px + 2*SEPARATOR_PX, n*size_px + (n-1)*SEPARATOR_PX, 3)``
        where ``n`` is the number of images, plus one with labels.

    Raises:
        ValueError: no image, volumes on different grids, a bad centre or size.
    """
    if not isinstance(images, Mapping) or not images:
        raise ValueError("montage needs at least one image (a name → Volume mapping)")
    size_px = _check_size(size_px)
    names = list(images)
    for name in names:
        if not isinstance(images[name], Volume):
            raise ValueError(f"image {name!r} is a {type(images[name]).__name__}, not a Volume")
    if labels is not None and not isinstance(labels, Volume):
        raise ValueError(f"labels must be a Volume, got {type(labels).__name__}")
    first = images[names[0]]
    grid = first.grid
    others = [(f"image {n!r}", images[n]) for n in names[1:]]
    if labels is not None:
        others.append(("labels", labels))
    for what, vol in others:
        diffs = grid.differences(vol.grid)
        if diffs:
            raise InputError(f"image {names[0]!r} and {what} are on different grids: {'; '.join(diffs)}")

    label_array = None
    if labels is not None:
        label_array = _label_values(labels.array)
    centre = _centre(grid.size, centre_voxel, label_array)

    perm, sign = patient_axes(grid.direction)
    shape = np.asarray(grid.size)[list(perm)]
    spacing = np.asarray(grid.spacing, dtype=float)[list(perm)]
    c = [int(centre[perm[p]]) if sign[p] > 0 else int(shape[p] - 1 - centre[perm[p]]) for p in range(3)]
    mm_per_px = float(np.max(shape * spacing)) / size_px

    tiles_per_column = []
    for name in names:
        vol = images[name]
        lo, hi = _window(vol.array)
        view = _to_lps_view(vol.array, perm, sign)
        tiles_per_column.append([_grey(_slice_tile(view, plane, c, spacing, mm_per_px, size_px, linear=True), lo, hi) for plane in PLANES])
    if label_array is not None:
        lview = _to_lps_view(label_array, perm, sign)
        overlay = []
        for plane, grey in zip(PLANES, tiles_per_column[0]):
            lab = _slice_tile(lview, plane, c, spacing, mm_per_px, size_px, linear=False)
            overlay.append(_overlay(grey, lab))
        tiles_per_column.append(overlay)

    n_cols = len(tiles_per_column)
    step = size_px + SEPARATOR_PX
    out = np.full((3 * step - SEPARATOR_PX, n_cols * step - SEPARATOR_PX, 3), SEPARATOR_GREY, dtype=np.uint8)
    for col, tiles in enumerate(tiles_per_column):
        for row, tile in enumerate(tiles):
            block = out[row * step : row * step + size_px, col * step : col * step + size_px]
            block[...] = tile[..., None] if tile.ndim == 2 else tile
    return out


def write_preview(
    images: Mapping[str, Volume],
    labels: Volume | None,
    path: str | os.PathLike,
    **kw,
) -> Path:
    """:func:`montage` (``centre_voxel``, ``size_px`` pass through) written with :func:`write_png`."""
    return write_png(montage(images, labels, **kw), path)


# -- helpers ------------------------------------------------------------------
def _check_size(size_px) -> int:
    if isinstance(size_px, bool) or not isinstance(size_px, (int, np.integer)):
        raise ValueError(f"size_px must be an integer, got {size_px!r}")
    if not 8 <= int(size_px) <= 4096:
        raise ValueError(f"size_px must be between 8 and 4096, got {size_px}")
    return int(size_px)


def _label_values(array: np.ndarray) -> np.ndarray:
    if array.dtype == bool:
        return array.astype(np.int16)
    if np.issubdtype(array.dtype, np.integer):
        return array
    return np.rint(np.nan_to_num(array, nan=0.0, posinf=0.0, neginf=0.0)).astype(np.int64)


def _centre(size: Sequence[int], centre_voxel, label_array: np.ndarray | None) -> tuple[int, int, int]:
    if centre_voxel is not None:
        c = np.asarray(centre_voxel)
        if c.shape != (3,) or not np.all(np.isfinite(c.astype(float))):
            raise ValueError(f"centre_voxel must be 3 voxel indices (i, j, k), got {centre_voxel!r}")
        ci = np.rint(c.astype(float)).astype(int)
        if np.any(ci < 0) or np.any(ci >= np.asarray(size)):
            raise ValueError(f"centre_voxel {tuple(int(v) for v in ci)} is outside the volume of size {tuple(size)}")
        return tuple(int(v) for v in ci)  # type: ignore[return-value]
    if label_array is not None:
        idx = np.nonzero(label_array > 0)
        if idx[0].size:
            return tuple(int(round(float(np.mean(a)))) for a in idx)  # type: ignore[return-value]
    return tuple(int(n) // 2 for n in size)  # type: ignore[return-value]


def _window(array: np.ndarray) -> tuple[float, float]:
    """The 0.5 and 99.5 percentiles of the finite non-zero voxels (0, 0 when there are none)."""
    values = array.ravel()
    if values.dtype == bool:
        values = values.astype(np.uint8)
    if values.size > _WINDOW_SAMPLE:
        values = values[:: -(-values.size // _WINDOW_SAMPLE)]
    values = values[(values != 0) & np.isfinite(values)] if np.issubdtype(values.dtype, np.floating) else values[values != 0]
    if values.size == 0:
        return 0.0, 0.0
    lo, hi = np.percentile(values.astype(np.float64), WINDOW_PERCENTILES)
    return float(lo), float(hi)


def _grey(tile: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Float tile → uint8 grey through the window [lo, hi]; NaN (outside the volume) is black."""
    outside = np.isnan(tile)
    t = np.nan_to_num(tile, nan=lo, posinf=hi, neginf=lo)
    if hi > lo:
        g = np.clip((t - lo) / (hi - lo), 0.0, 1.0) * 255.0
    else:  # a constant image (or none non-zero): its voxels white, zeros black
        g = np.where((t >= hi) & (t != 0), 255.0, 0.0)
    g = np.rint(g).astype(np.uint8)
    g[outside] = 0
    return g


def _overlay(grey: np.ndarray, labels: np.ndarray) -> np.ndarray:
    rgb = np.repeat(grey[..., None], 3, axis=2).astype(np.float64)
    positive = labels > 0
    colours = np.zeros(labels.shape + (3,), dtype=np.float64)
    colours[positive] = OTHER_LABEL_COLOUR
    for value, colour in LABEL_COLOURS.items():
        colours[labels == value] = colour
    rgb[positive] = (1.0 - LABEL_ALPHA) * rgb[positive] + LABEL_ALPHA * colours[positive]
    return np.rint(rgb).astype(np.uint8)


def _slice_tile(
    view: np.ndarray,
    plane: str,
    c: Sequence[int],
    spacing: np.ndarray,
    mm_per_px: float,
    size_px: int,
    *,
    linear: bool,
) -> np.ndarray:
    """One plane of an [x=L, y=P, z=S] view as a ``size_px`` square tile, in display orientation.

    Grey tiles are float with NaN outside the volume; label tiles are integers with 0 there.
    """
    sx, sy, sz = spacing
    if plane == "axial":  # rows: anterior → posterior; columns: right → left
        sl, row_mm, col_mm = view[:, :, c[2]].T, sy, sx
    elif plane == "coronal":  # rows: superior → inferior; columns: right → left
        sl, row_mm, col_mm = view[:, c[1], ::-1].T, sz, sx
    elif plane == "sagittal":  # rows: superior → inferior; columns: anterior → posterior
        sl, row_mm, col_mm = view[c[0], :, ::-1].T, sz, sy
    else:  # pragma: no cover - internal
        raise ValueError(plane)
    out_shape = (
        int(min(size_px, max(1, round(sl.shape[0] * row_mm / mm_per_px)))),
        int(min(size_px, max(1, round(sl.shape[1] * col_mm / mm_per_px)))),
    )
    if linear:
        sl = np.nan_to_num(sl.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        fill: float | int = np.nan
        dtype = np.float64
    else:
        fill, dtype = 0, sl.dtype
    resized = _resize(sl, out_shape, linear=linear)
    tile = np.full((size_px, size_px), fill, dtype=dtype)
    r0 = (size_px - out_shape[0]) // 2
    c0 = (size_px - out_shape[1]) // 2
    tile[r0 : r0 + out_shape[0], c0 : c0 + out_shape[1]] = resized
    return tile


def _resize(a: np.ndarray, shape: Sequence[int], *, linear: bool) -> np.ndarray:
    """Resample a 2D array to ``shape`` (pixel centres aligned), nearest or separable linear."""
    for axis, n_out in enumerate(shape):
        n_in = a.shape[axis]
        if n_in == n_out:
            continue
        pos = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        if not linear:
            a = np.take(a, np.clip(np.floor(pos + 0.5).astype(np.intp), 0, n_in - 1), axis=axis)
            continue
        pos = np.clip(pos, 0.0, n_in - 1)
        lo = np.floor(pos).astype(np.intp)
        hi = np.minimum(lo + 1, n_in - 1)
        w = pos - lo
        w = w[:, None] if axis == 0 else w[None, :]
        a = np.take(a, lo, axis=axis) * (1.0 - w) + np.take(a, hi, axis=axis) * w
    return a
