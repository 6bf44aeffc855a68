"""Random smooth deformations: synthetic "subjects" whose true tissue maps are known.

Registration is checked (tests, ``Testing/benchmarks/bench_tissues.py``) by
deforming the template with a known transform, registering the template back
to the deformed copy, and comparing the carried tissue maps with the deformed
true maps. The deformation is an affine part (rotation, anisotropic scaling,
translation) composed with a cubic B-spline displacement whose control-point
offsets are Gaussian; intensity changes (a smooth multiplicative bias field,
a gamma change and Rician-like noise) make the copy look less like the template.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tumorgen.anatomy.tissues import TissueMaps
from tumorgen.volume import Volume


@dataclass(frozen=True)
class DeformationSpec:
    #: Largest rotation about each axis, degrees.
    rotation_deg: float = 6.0
    #: Largest relative scale change per axis (0.06 → ±6 %).
    scale: float = 0.06
    #: Largest translation per axis, mm.
    translation_mm: float = 6.0
    #: Standard deviation of the B-spline control-point offsets, mm.
    displacement_mm: float = 3.0
    #: Distance between B-spline control points, mm.
    control_spacing_mm: float = 40.0
    #: Multiplicative bias field amplitude (0.15 → intensities × 0.85…1.15).
    bias: float = 0.15
    #: Gamma of the intensity change (1 = none).
    gamma: float = 1.15
    #: Noise standard deviation relative to the intensity range.
    noise: float = 0.02


def random_transform(volume: Volume, spec: DeformationSpec = DeformationSpec(), seed: int = 0):
    """A SimpleITK transform (fixed = output grid → moving = ``volume``) drawn from ``spec``."""
    import SimpleITK as sitk

    rng = np.random.default_rng(seed)
    image = volume.to_sitk()
    size = np.asarray(volume.grid.size, dtype=float)
    centre = np.asarray(image.TransformContinuousIndexToPhysicalPoint(((size - 1) / 2.0).tolist()))

    affine = sitk.AffineTransform(3)
    angles = np.deg2rad(rng.uniform(-spec.rotation_deg, spec.rotation_deg, 3))
    rotation = sitk.Euler3DTransform(centre.tolist(), *angles.tolist())
    scales = 1.0 + rng.uniform(-spec.scale, spec.scale, 3)
    matrix = np.asarray(rotation.GetMatrix()).reshape(3, 3) @ np.diag(scales)
    affine.SetCenter(centre.tolist())
    affine.SetMatrix(matrix.ravel().tolist())
    affine.SetTranslation(rng.uniform(-spec.translation_mm, spec.translation_mm, 3).tolist())

    extent = size * np.asarray(volume.spacing)
    mesh = [max(1, int(round(e / spec.control_spacing_mm))) for e in extent]
    bspline = sitk.BSplineTransformInitializer(image, mesh, 3)
    n = len(bspline.GetParameters())
    offsets = rng.normal(0.0, spec.displacement_mm, n)
    # Pin the outermost ring of control points so the boundary stays put.
    grid_size = [m + 3 for m in mesh]
    per_axis = np.zeros(grid_size[::-1], dtype=bool)
    per_axis[1:-1, 1:-1, 1:-1] = True
    offsets *= np.tile(per_axis.ravel(), 3)
    bspline.SetParameters(offsets.tolist())

    composite = sitk.CompositeTransform(3)
    composite.AddTransform(affine)
    composite.AddTransform(bspline)
    return composite


def warp(volume: Volume, transform, interpolation: str = "linear") -> Volume:
    """``volume`` pulled back through ``transform`` onto its own grid."""
    import SimpleITK as sitk

    image = volume.to_sitk()
    interp = {"linear": sitk.sitkLinear, "nearest": sitk.sitkNearestNeighbor}[interpolation]
    out = sitk.Resample(image, image, transform, interp, 0.0, image.GetPixelID())
    return Volume.from_sitk(out)


def change_intensity(t1: Volume, brain: np.ndarray, spec: DeformationSpec = DeformationSpec(), seed: int = 0) -> Volume:
    """Bias field, gamma and noise inside ``brain``; zero outside (a skull-stripped scan)."""
    from scipy.ndimage import zoom

    rng = np.random.default_rng(seed + 1)
    arr = np.clip(t1.array.astype(np.float32), 0.0, None)
    peak = float(arr.max()) or 1.0
    coarse = rng.uniform(-1.0, 1.0, (3, 3, 3))
    bias = zoom(coarse, np.asarray(arr.shape) / 3.0, order=3, mode="nearest")[: arr.shape[0], : arr.shape[1], : arr.shape[2]]
    bias = 1.0 + spec.bias * np.clip(bias, -1.0, 1.0)
    out = peak * (arr / peak) ** spec.gamma * bias
    out = out + rng.normal(0.0, spec.noise * peak, arr.shape)
    out = np.where(brain, np.clip(out, 0.0, None), 0.0).astype(np.float32)
    return t1.with_array(out)


@dataclass(frozen=True)
class SyntheticSubject:
    t1: Volume
    tissues: TissueMaps
    transform: object


def deformed_subject(t1: Volume, tissues: TissueMaps, spec: DeformationSpec = DeformationSpec(), seed: int = 0) -> SyntheticSubject:
    """A deformed copy of a template (T1 and its tissue maps) on the template's grid."""
    import SimpleITK as sitk

    transform = random_transform(t1, spec, seed)
    # one resample of a 4-component image: the transform is evaluated once per voxel, not four times
    stacked = sitk.Compose([v.with_array(v.array.astype(np.float32)).to_sitk() for v in (t1, tissues.csf, tissues.gm, tissues.wm)])
    warped = sitk.GetArrayFromImage(sitk.Resample(stacked, stacked, transform, sitk.sitkLinear, 0.0)).transpose(2, 1, 0, 3)
    t1_w, csf, gm, wm = (np.ascontiguousarray(warped[..., c]) for c in range(4))
    maps = TissueMaps(*(tissues.csf.with_array(np.clip(a, 0.0, 1.0)) for a in (csf, gm, wm)))
    brain = (csf + gm + wm) > 0.5
    return SyntheticSubject(change_intensity(t1.with_array(t1_w), brain, spec, seed), maps, transform)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap of two boolean arrays (1.0 when both are empty)."""
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total


def tissue_dice(result: TissueMaps, truth: TissueMaps) -> dict[str, float]:
    """Dice of the hard tissue labels (CSF, GM, WM) and of the brain mask."""
    from tumorgen.anatomy.tissues import CSF, GM, WM

    got, want = result.labels().array, truth.labels().array
    out = {name: dice(got == value, want == value) for name, value in (("csf", CSF), ("gm", GM), ("wm", WM))}
    out["brain"] = dice(got > 0, want > 0)
    return out
