"""Mask augmentation: new tumor label maps from existing ones, or grown from scratch.

A label-map synthesis model needs many plausible tumor masks in many brains.
Following the mask augmentation of GliomaGen (random flips and scalings of
BraTS masks), :func:`augment_labels` turns one label map into a new one on a
*target* brain:

1. the tumor (BraTS labels: 0 background, 1 necrotic core, 2 oedema,
   3 enhancing tumor) is split into its three **nested regions** — whole tumor
   {1, 2, 3} ⊇ tumor core {1, 3} ⊇ necrosis {1};
2. a random **rigid rotation** (uniform in ±``rotation_deg`` about each axis)
   and an isotropic **scaling** (uniform in ``scale``; the volume scales with
   its cube) about the tumor's centre, then a smooth random **elastic**
   displacement (RMS ``elastic_mm``, from
   :func:`tumorgen.simulate.deformation.random_diffeomorphism`);
3. with ``relocate``, the tumor's centre is **moved** to a random voxel of the
   target whose white-matter probability is at least ``min_white_matter``, and
   positions are tried until at least ``min_inside`` of the moved whole tumor
   lies inside the target brain (``csf + gm + wm > 0.5``); without it the tumor
   keeps its physical position;
4. each region's indicator function is sampled through the backward map with
   linear interpolation and thresholded at 0.5. Linear interpolation is a
   convex combination, so the sampled indicators keep
   ``necrosis ≤ core ≤ whole`` pointwise and the thresholded regions stay
   nested exactly; the labels are rebuilt from them and everything outside the
   target brain is cut away.

Geometry goes through physical (LPS) coordinates, so the input may lie on any
grid (spacing, origin, direction); the output is on the target's grid. The
transform is built on a box around the tumor only, so the work does not grow
with the size of the image.

:func:`grow_labels` makes a new tumor instead: a Fisher–Kolmogorov field grown
in the target brain by the simulator's own code path
(:func:`tumorgen.simulate.subject.grow_tumor`), labelled by
:func:`tumorgen.biophysics.labels.concentration_to_labels`.

:func:`nest_labels` restores the nesting of a label map that was resampled by
other means (nearest neighbour, or interpolated label values).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import convolve, map_coordinates

from tumorgen.anatomy.tissues import TissueMaps
from tumorgen.errors import InputError
from tumorgen.volume import Grid, Volume

#: BraTS label values.
BACKGROUND, NECROTIC, EDEMA, ENHANCING = 0, 1, 2, 3
LABEL_VALUES = (BACKGROUND, NECROTIC, EDEMA, ENHANCING)
#: The elastic displacement is clipped at this multiple of its RMS (keeps the working box bounded).
ELASTIC_CLIP = 4.0


def _finite(*values: float) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)


@dataclass(frozen=True)
class AugmentOptions:
    #: Largest |angle| (degrees) of the random rotation about each axis.
    rotation_deg: float = 15.0
    #: Range of the isotropic scale factor (the volume scales with its cube).
    scale: tuple[float, float] = (0.8, 1.25)
    #: RMS (mm) of the smooth random elastic displacement (0: none) and the smoothing of its noise (mm).
    elastic_mm: float = 2.0
    elastic_smoothness_mm: float = 8.0
    #: Move the tumor's centre to a random white-matter position of the target brain.
    relocate: bool = True
    #: The new centre's white-matter probability is at least this.
    min_white_matter: float = 0.5
    #: At least this fraction of the moved whole tumor lies inside the target brain.
    min_inside: float = 0.95
    #: Positions tried before giving up.
    attempts: int = 50

    def __post_init__(self) -> None:
        if not (_finite(self.rotation_deg) and 0.0 <= self.rotation_deg <= 180.0):
            raise InputError(f"rotation must be between 0 and 180 degrees, got {self.rotation_deg}")
        try:
            lo, hi = (float(v) for v in self.scale)
        except (TypeError, ValueError):
            raise InputError(f"scale must be a range (low, high), got {self.scale!r}") from None
        if not (_finite(lo, hi) and 0.1 <= lo <= hi <= 10.0):
            raise InputError(f"scale range must satisfy 0.1 <= low <= high <= 10, got ({lo:g}, {hi:g})")
        object.__setattr__(self, "scale", (lo, hi))
        if not (_finite(self.elastic_mm) and 0.0 <= self.elastic_mm <= 20.0):
            raise InputError(f"elastic displacement must be between 0 and 20 mm, got {self.elastic_mm}")
        if not (_finite(self.elastic_smoothness_mm) and 1.0 <= self.elastic_smoothness_mm <= 100.0):
            raise InputError(f"elastic smoothness must be between 1 and 100 mm, got {self.elastic_smoothness_mm}")
        if not (_finite(self.min_white_matter) and 0.0 <= self.min_white_matter <= 1.0):
            raise InputError(f"min_white_matter must be a probability in [0, 1], got {self.min_white_matter}")
        if not (_finite(self.min_inside) and 0.0 < self.min_inside <= 1.0):
            raise InputError(f"min_inside must be a fraction in (0, 1], got {self.min_inside}")
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, (int, np.integer)) or not 1 <= self.attempts <= 100_000:
            raise InputError(f"attempts must be a whole number between 1 and 100000, got {self.attempts!r}")


# ----------------------------------------------------------------------------- checks and nesting


def _mm(values) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ")"


def _label_array(labels: Volume | np.ndarray) -> np.ndarray:
    return np.asarray(labels.array if isinstance(labels, Volume) else labels)


def _check_values(arr: np.ndarray, name: str) -> None:
    if arr.dtype == bool:
        return
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InputError(f"{name} must hold numbers (BraTS labels 0-3), got dtype {arr.dtype}")
    values = np.unique(arr)
    unknown = values[~np.isin(values, LABEL_VALUES)]
    if unknown.size:
        shown = ", ".join(f"{v:g}" for v in unknown[:8].tolist()) + (", ..." if unknown.size > 8 else "")
        raise InputError(
            f"{name} has values [{shown}] that are not BraTS labels; expected 0 background, 1 necrotic core, 2 oedema, 3 enhancing tumor"
        )


def check_label_map(labels: Volume | np.ndarray, name: str = "labels") -> None:
    """Raise an :class:`InputError` (one line naming the problem) unless ``labels`` is a usable BraTS tumor map.

    Problems: not a 3D array; values other than 0 background, 1 necrotic core,
    2 oedema, 3 enhancing tumor (the offending values are named); no tumor voxel.
    """
    arr = _label_array(labels)
    if arr.ndim != 3:
        raise InputError(f"{name} must be a 3D label map, got a {arr.ndim}D array of shape {arr.shape}")
    _check_values(arr, name)
    if not np.any(arr):
        raise InputError(f"{name} is empty: no tumor voxel (every label is 0)")


#: Face neighbours (6-connectivity) and the full 26-neighbourhood, for counting.
_FACES = np.zeros((3, 3, 3), np.int16)
_FACES[1, 1, :] = _FACES[1, :, 1] = _FACES[:, 1, 1] = 1
_FACES[1, 1, 1] = 0
_CUBE = np.ones((3, 3, 3), np.int16)
_CUBE[1, 1, 1] = 0


def nest_labels(labels: np.ndarray) -> np.ndarray:
    """Restore the nesting necrosis ⊂ core ⊂ whole tumor of a resampled label map; returns uint8 labels.

    Resampling a label map with nearest neighbour or by interpolating the
    label values leaves necrosis on the tumor's outer edge and specks of core
    in the background. Two rules undo that (the input is not modified):

    * stray core: a core voxel (1 or 3) with no other tumor voxel (1, 2 or 3)
      among its 26 neighbours lies outside any whole tumor and is removed (0);
    * necrosis inside core: a necrosis voxel (1) with a face neighbour outside
      the tumor core (0 or 2, or the image's edge) is not surrounded by core
      and becomes core (3, enhancing). One pass suffices: what it turns into
      core is core, so the necrosis left has only core faces.

    A label map whose necrosis is enclosed by core comes back unchanged.
    Values other than 0-3 raise an :class:`InputError`; non-integer values are
    not accepted either (round interpolated labels first).
    """
    arr = np.asarray(labels)
    if arr.ndim != 3:
        raise InputError(f"labels must be a 3D label map, got a {arr.ndim}D array of shape {arr.shape}")
    _check_values(arr, "labels")
    out = arr.astype(np.uint8, copy=True)
    tumor = out > 0
    core = (out == NECROTIC) | (out == ENHANCING)
    tumor_neighbours = convolve(tumor.astype(np.int16), _CUBE, mode="constant", cval=0)
    out[core & (tumor_neighbours == 0)] = BACKGROUND
    core = (out == NECROTIC) | (out == ENHANCING)
    core_faces = convolve(core.astype(np.int16), _FACES, mode="constant", cval=0)
    out[(out == NECROTIC) & (core_faces < 6)] = ENHANCING
    return out


def _nested_masks(arr: np.ndarray) -> np.ndarray:
    """float32 indicators (3, ...) of whole tumor, core and necrosis."""
    return np.stack([arr > 0, (arr == NECROTIC) | (arr == ENHANCING), arr == NECROTIC]).astype(np.float32)


def _labels_from_masks(whole: np.ndarray, core: np.ndarray, necrosis: np.ndarray) -> np.ndarray:
    out = np.zeros(whole.shape, np.uint8)
    out[whole] = EDEMA
    out[core & whole] = ENHANCING
    out[necrosis & core & whole] = NECROTIC
    return out


# ----------------------------------------------------------------------------- the transform


def _rotation(angles_rad: np.ndarray) -> np.ndarray:
    cx, cy, cz = np.cos(angles_rad)
    sx, sy, sz = np.sin(angles_rad)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def _linear(grid: Grid) -> np.ndarray:
    """3×3 matrix taking an index step to an LPS step (direction · diag(spacing))."""
    return grid.index_to_lps_matrix[:3, :3]


@dataclass
class _Source:
    """The input's nested masks cropped to the tumor (plus a zero rim) and where they are."""

    masks: np.ndarray  # (3, ...) float32: whole, core, necrosis
    corner: np.ndarray  # source index of masks[:, 0, 0, 0]
    grid: Grid
    centre: np.ndarray  # LPS mm, the centroid of the whole tumor
    radius_mm: float  # farthest whole-tumor voxel corner from the centre
    volume_mm3: float


def _source(labels: Volume) -> _Source:
    arr = np.asarray(labels.array)
    whole = arr > 0
    idx = np.nonzero(whole)
    lo = np.array([int(i.min()) for i in idx])
    hi = np.array([int(i.max()) + 1 for i in idx])
    crop = tuple(slice(a, b) for a, b in zip(lo, hi))
    masks = np.pad(_nested_masks(arr[crop]), ((0, 0), (1, 1), (1, 1), (1, 1)))  # zeros around: a linear fall-off at the edge
    grid = labels.grid
    points = np.stack(idx).astype(np.float64)
    centre_index = points.mean(axis=1)
    centre = grid.index_to_lps(centre_index)
    rel = _linear(grid) @ (points - centre_index[:, None])
    half_diagonal = 0.5 * float(np.linalg.norm(grid.spacing))
    radius = float(np.sqrt(np.max(np.sum(rel**2, axis=0)))) + half_diagonal
    return _Source(masks, lo - 1, grid, centre, radius, float(points.shape[1]) * grid.voxel_volume_mm3)


def _elastic_mm(shape: tuple[int, ...], target: Grid, rng: np.random.Generator, options: AugmentOptions) -> np.ndarray | None:
    """A smooth random backward displacement on the working box, LPS mm, shape (3, *shape); None without one."""
    if options.elastic_mm <= 0:
        return None
    from tumorgen.simulate.deformation import random_diffeomorphism

    box = Grid(size=shape, spacing=target.spacing)
    u = random_diffeomorphism(box, rng, displacement_mm=options.elastic_mm, smoothness_mm=options.elastic_smoothness_mm,
                              scale=0.0, rotation_deg=0.0, coarse_mm=min(4.0, options.elastic_smoothness_mm / 2.0))
    u_mm = np.einsum("ab,b...->a...", _linear(target), u.astype(np.float64))
    length = np.sqrt(np.sum(u_mm**2, axis=0))
    limit = ELASTIC_CLIP * options.elastic_mm
    too_long = length > limit
    if too_long.any():
        u_mm[:, too_long] *= limit / length[too_long]
    return u_mm


def _working_box(radius_mm: float, target: Grid) -> np.ndarray:
    """Half-widths (voxels per axis) of a box around a voxel that holds a ball of ``radius_mm``."""
    return np.ceil(radius_mm / np.asarray(target.spacing)).astype(int) + 1


def _sample(source: _Source, target: Grid, matrix: np.ndarray, half: np.ndarray, frac: np.ndarray,
            u_mm: np.ndarray | None) -> np.ndarray:
    """The three nested masks (bool, (3, *box)) on the box of target voxels ``n - frac``, n ∈ [-half, half], around the new centre.

    ``matrix`` is the backward linear part (Rᵀ / s): the target point at offset
    ``y`` (LPS mm from the new centre) takes the source's value at
    ``centre + matrix · (y + u(y))``.
    """
    shape = tuple(int(2 * h + 1) for h in half)
    offsets = np.indices(shape, dtype=np.float64).reshape(3, -1) - (half + frac)[:, None]
    y = _linear(target) @ offsets
    if u_mm is not None:
        y = y + u_mm.reshape(3, -1)
    x = source.centre[:, None] + matrix @ y
    coords = np.linalg.solve(_linear(source.grid), x - np.asarray(source.grid.origin)[:, None]) - source.corner[:, None]
    out = np.empty((3, *shape), bool)
    for r in range(3):
        values = map_coordinates(source.masks[r], coords, order=1, mode="constant", cval=0.0)
        out[r] = (values >= 0.5).reshape(shape)
    # linear interpolation keeps necrosis ≤ core ≤ whole; guard against rounding at exactly 0.5 all the same
    out[1] &= out[0]
    out[2] &= out[1]
    return out


def _overlap(centre: np.ndarray, half: np.ndarray, size: tuple[int, int, int]) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Slices of the box (around integer voxel ``centre``) and of the image where they overlap."""
    lo = centre - half
    hi = centre + half + 1
    a = np.maximum(lo, 0)
    b = np.minimum(hi, np.asarray(size))
    if np.any(b <= a):
        empty = tuple(slice(0, 0) for _ in range(3))
        return empty, empty
    return tuple(slice(int(s - l), int(e - l)) for s, e, l in zip(a, b, lo)), tuple(slice(int(s), int(e)) for s, e in zip(a, b))


def _inside_fraction(whole: np.ndarray, total: int, centre: np.ndarray, half: np.ndarray, brain: np.ndarray) -> float:
    box, image = _overlap(centre, half, brain.shape)
    return float(np.count_nonzero(whole[box] & brain[image])) / total


# ----------------------------------------------------------------------------- augmentation


def augment_labels_with_info(labels: Volume, target: TissueMaps, rng: np.random.Generator,
                             options: AugmentOptions = AugmentOptions()) -> tuple[Volume, dict]:
    """:func:`augment_labels` and what it drew.

    The dict holds ``scale``, ``angles_deg``, ``attempts`` (positions tried; 0
    without relocation), ``inside_fraction`` (of the moved whole tumor inside
    the target brain), ``voxels_before_cut`` (whole-tumor voxels before the
    cut at the brain's edge, counting any beyond the image), ``centre_index``
    and ``centre_lps_mm`` (where the tumor's centre went) and ``volume_cm3``
    (``input`` and ``output`` whole-tumor volumes).
    """
    if not isinstance(labels, Volume):
        raise InputError(f"labels must be a Volume (a label map with its geometry), got {type(labels).__name__}")
    check_label_map(labels)
    grid = target.csf.grid
    csf, gm, wm = target.arrays()
    brain = (csf + gm + wm) > 0.5
    if not brain.any():
        raise InputError("the target brain is empty: its tissue maps have no voxel with csf + gm + wm > 0.5")
    source = _source(labels)

    scale = float(rng.uniform(*options.scale))
    angles = rng.uniform(-options.rotation_deg, options.rotation_deg, 3)
    rotation = _rotation(np.deg2rad(angles))
    matrix = rotation.T / scale  # backward: target offset → source offset
    margin_mm = (ELASTIC_CLIP * options.elastic_mm if options.elastic_mm > 0 else 0.0) + max(grid.spacing)
    half = _working_box(scale * source.radius_mm + margin_mm, grid)
    u_mm = _elastic_mm(tuple(int(2 * h + 1) for h in half), grid, rng, options)

    info: dict = {"scale": round(scale, 5), "angles_deg": [round(float(a), 4) for a in angles]}
    if options.relocate:
        masks = _sample(source, grid, matrix, half, np.zeros(3), u_mm)
        total = int(np.count_nonzero(masks[0]))
        if total == 0:
            raise InputError(f"the tumor vanished on the target grid (spacing {_mm(grid.spacing)} mm) after scaling by {scale:.3g}: "
                             "it is too small to augment")
        candidates = np.flatnonzero((wm >= options.min_white_matter) & brain)
        if candidates.size == 0:
            raise InputError(
                f"cannot relocate the tumor: the target brain has no white matter with probability >= {options.min_white_matter:g}"
            )
        best = 0.0
        for attempt in range(1, options.attempts + 1):
            voxel = np.array(np.unravel_index(int(candidates[rng.integers(candidates.size)]), brain.shape))
            inside = _inside_fraction(masks[0], total, voxel, half, brain)
            best = max(best, inside)
            if inside >= options.min_inside:
                break
        else:
            raise InputError(
                f"cannot relocate the tumor ({total * grid.voxel_volume_mm3 / 1000:.1f} cm³ after scaling by {scale:.3g}) into the "
                f"target brain: at none of {options.attempts} white-matter positions was >= {options.min_inside:g} of it inside the "
                f"brain (best {best:.2f}); lower min_inside or the scale, or raise attempts"
            )
        info.update(attempts=attempt, inside_fraction=round(inside, 4))
        frac = np.zeros(3)
    else:
        position = grid.lps_to_index(source.centre)
        voxel = np.rint(position).astype(int)
        frac = position - voxel
        masks = _sample(source, grid, matrix, half, frac, u_mm)
        total = int(np.count_nonzero(masks[0]))
        info.update(attempts=0, inside_fraction=round(_inside_fraction(masks[0], total, voxel, half, brain), 4) if total else 0.0)

    out = np.zeros(grid.size, np.uint8)
    box, image = _overlap(voxel, half, grid.size)
    out[image] = _labels_from_masks(*(m[box] for m in masks))
    out[~brain] = BACKGROUND
    if not out.any():
        raise InputError("the augmented tumor lies outside the target brain; with relocate=False the label map must overlap the target brain")
    centre_index = voxel + frac
    info.update(voxels_before_cut=total, centre_index=[round(float(v), 4) for v in centre_index],
                centre_lps_mm=[round(float(v), 3) for v in grid.index_to_lps(centre_index)],
                volume_cm3={"input": round(source.volume_mm3 / 1000, 4),
                            "output": round(float(np.count_nonzero(out)) * grid.voxel_volume_mm3 / 1000, 4)})
    return Volume(out, grid), info


def augment_labels(labels: Volume, target: TissueMaps, rng: np.random.Generator, options: AugmentOptions = AugmentOptions()) -> Volume:
    """A new label map (uint8) on the target brain's grid from the tumor of ``labels`` (any grid).

    The tumor is rotated, scaled and elastically deformed about its centre
    and, with ``options.relocate``, moved so its centre lies at a random
    white-matter position of the target (probability ≥ ``min_white_matter``)
    with ≥ ``min_inside`` of it inside the brain (``csf + gm + wm > 0.5``);
    without relocation it keeps its physical position. Whatever falls outside
    the target brain is cut away. The three nested regions are sampled as
    smooth indicators (linear interpolation, threshold 0.5), so necrosis ⊂ core
    ⊂ whole tumor holds exactly. Deterministic from ``rng``; the input is not
    modified. :class:`InputError` for a bad label map, an empty target brain, a
    target without white matter (relocation), no position that fits, or a
    tumor that ends up outside the target brain.
    """
    return augment_labels_with_info(labels, target, rng, options)[0]


# ----------------------------------------------------------------------------- new tumors


def grow_labels(
    target: TissueMaps,
    rng: np.random.Generator,
    *,
    volume_cm3: tuple[float, float] = (8.0, 60.0),
    d_white: tuple[float, float] = (0.1, 0.8),
    rho: tuple[float, float] = (0.08, 0.25),
) -> tuple[Volume, Volume]:
    """A new tumor grown in the target brain: (BraTS labels uint8, concentration float32) on the target's grid.

    The simulator's own path (:func:`tumorgen.simulate.subject.grow_tumor`): a
    random seed deep in white matter, D_w and ρ uniform in their ranges, a
    Fisher–Kolmogorov field grown until the volume with c ≥ the oedema
    threshold reaches a target drawn uniformly from ``volume_cm3``; labels by
    :func:`tumorgen.biophysics.labels.concentration_to_labels`.
    """
    from tumorgen.biophysics.labels import concentration_to_labels
    from tumorgen.simulate.subject import SimulationOptions, grow_tumor

    options = SimulationOptions(volume_cm3=tuple(volume_cm3), d_white=tuple(d_white), rho=tuple(rho))
    concentration, _, _ = grow_tumor(target, rng, options)
    concentration = concentration.with_array(np.clip(np.asarray(concentration.array, dtype=np.float32), 0.0, 1.0))
    labels = concentration_to_labels(concentration, options.labels)
    return labels.with_array(labels.array.astype(np.uint8)), concentration
