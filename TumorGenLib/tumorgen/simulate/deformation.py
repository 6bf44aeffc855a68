"""Smooth, invertible deformations on voxel grids: subject variation, mass effect, tissue shift.

Fields are *backward* displacements in voxel units, shape ``(3, *grid.size)``:
the warped image at voxel ``x`` takes the value of the input at ``x + u(x)``.
A deformation is a diffeomorphism when the Jacobian determinant of
``x ↦ x + u(x)`` is positive everywhere; :func:`jacobian_determinant` checks it.

* :func:`random_diffeomorphism` — a stationary velocity field (Gaussian-smoothed
  noise on a coarse grid) integrated by scaling and squaring, composed with a
  small random affine (global scale and rotation). Integrating a smooth
  velocity field gives an invertible map by construction; the coarse-grid
  Jacobian is checked and the field halved until it is positive.
* :func:`radial_field` — a radial push away from (``strength > 0``) or pull
  towards (``< 0``) a centre: ``x ↦ c + (x − c)(1 − g(R))`` with
  ``g = a·exp(−R²/2σ²)``, monotone in R (so invertible) for ``|a| < 1``, tapered
  to zero near the edge of a ``confine`` mask so the brain's outline stays put.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import distance_transform_edt, gaussian_filter, map_coordinates, zoom

from tumorgen.volume import Grid, Volume


def jacobian_determinant(u: np.ndarray) -> np.ndarray:
    """det(I + ∇u) of a backward displacement in voxel units.

    On an anisotropic grid the physical Jacobian is S J S⁻¹ (S the spacings), so
    its determinant is the same and the spacing is not needed.
    """
    grads = [np.gradient(u[a], axis=(0, 1, 2)) for a in range(3)]  # grads[a][b] = ∂u_a/∂x_b (voxel units)
    j = [[grads[a][b] + (1.0 if a == b else 0.0) for b in range(3)] for a in range(3)]
    return (
        j[0][0] * (j[1][1] * j[2][2] - j[1][2] * j[2][1])
        - j[0][1] * (j[1][0] * j[2][2] - j[1][2] * j[2][0])
        + j[0][2] * (j[1][0] * j[2][1] - j[1][1] * j[2][0])
    )


def compose_fields(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Backward displacement of "first v, then u": x ↦ x + v(x) + u(x + v(x))."""
    coords = np.indices(u.shape[1:], dtype=np.float64) + v
    return v + np.stack([map_coordinates(u[a], coords, order=1, mode="nearest") for a in range(3)])


def random_diffeomorphism(
    grid: Grid,
    rng: np.random.Generator,
    *,
    displacement_mm: float = 4.0,
    smoothness_mm: float = 20.0,
    scale: float = 0.06,
    rotation_deg: float = 4.0,
    coarse_mm: float = 4.0,
    squarings: int = 6,
) -> np.ndarray:
    """A smooth random backward displacement (voxel units, float32, full grid) with a positive Jacobian.

    Args:
        displacement_mm: typical (RMS) size of the non-linear part.
        smoothness_mm: Gaussian smoothing of the velocity noise.
        scale: largest global scale change (0.06 → ±6 %).
        rotation_deg: largest rotation about each axis.
        coarse_mm: spacing of the grid the field is built on before upsampling.
    """
    spacing = np.asarray(grid.spacing, dtype=float)
    size = np.asarray(grid.size)
    factor = np.maximum(1.0, coarse_mm / spacing)
    coarse = np.maximum(4, np.ceil(size / factor).astype(int))
    coarse_spacing = spacing * size / coarse  # mm per coarse voxel along each axis
    noise = rng.normal(size=(3, *coarse))
    velocity = np.stack([gaussian_filter(noise[a], smoothness_mm / coarse_spacing, mode="nearest") for a in range(3)])
    rms = float(np.sqrt(np.mean(np.sum((velocity * coarse_spacing[:, None, None, None]) ** 2, axis=0)))) or 1.0
    velocity *= displacement_mm / rms / coarse_spacing[:, None, None, None]  # mm → coarse voxels
    # the affine part (about the centre), in coarse voxels
    angles = np.deg2rad(rng.uniform(-rotation_deg, rotation_deg, 3))
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rot = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]]) @ np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]]) @ np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    matrix = rot @ np.diag(1.0 + rng.uniform(-scale, scale, 3))
    physical = np.indices(coarse, dtype=np.float64) * coarse_spacing[:, None, None, None]
    centre = (coarse - 1) / 2 * coarse_spacing
    rel = physical - centre[:, None, None, None]
    affine = (np.einsum("ab,b...->a...", matrix - np.eye(3), rel)) / coarse_spacing[:, None, None, None]
    for _ in range(8):
        u = velocity / 2**squarings
        for _ in range(squarings):
            u = compose_fields(u, u)
        total = compose_fields(affine, u)  # non-linear part first, then the affine
        if jacobian_determinant(total).min() > 0.2:
            break
        velocity *= 0.5
    # upsample to the full grid (voxel units scale with the grid ratio)
    ratio = size / coarse
    full = np.stack([zoom(total[a], ratio, order=1, mode="nearest", grid_mode=True)[: size[0], : size[1], : size[2]] * ratio[a] for a in range(3)])
    return full.astype(np.float32)


def radial_field(
    grid: Grid,
    centre_index,
    *,
    strength: float,
    sigma_mm: float,
    confine: np.ndarray | None = None,
    taper_mm: float = 8.0,
) -> np.ndarray:
    """Radial backward displacement (voxel units): ``strength`` > 0 pushes tissue away from ``centre_index``, < 0 pulls it in.

    The map is ``x ↦ c + (x − c)(1 − g(R))``, ``g = strength·exp(−R²/2σ²)``:
    near the centre a region is scaled by ``1/(1 − strength)`` per axis. It is
    monotone in R, hence invertible, for ``|strength| < 1``. Inside ``confine``
    the field is tapered to zero within ``taper_mm`` of its edge (and is zero outside it).
    """
    if not abs(strength) < 1.0:
        raise ValueError(f"radial strength must be in (-1, 1), got {strength}")
    spacing = np.asarray(grid.spacing, dtype=float)
    size = np.asarray(grid.size)
    centre = np.asarray(centre_index, dtype=float)
    # beyond 3.5 σ the field is below 0.3 % of its peak: work on that box only
    reach = np.ceil(3.5 * sigma_mm / spacing).astype(int)
    lo = np.clip(np.floor(centre).astype(int) - reach, 0, size)
    hi = np.clip(np.ceil(centre).astype(int) + reach + 1, 0, size)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    u = np.zeros((3, *grid.size), np.float32)
    if any(b <= a for a, b in zip(lo, hi)):
        return u
    index = np.indices(tuple(hi - lo), dtype=np.float32) + lo[:, None, None, None].astype(np.float32)
    rel_mm = (index - centre.astype(np.float32)[:, None, None, None]) * spacing[:, None, None, None].astype(np.float32)
    r2 = np.sum(rel_mm**2, axis=0)
    g = (strength * np.exp(-r2 / (2.0 * sigma_mm**2))).astype(np.float32)
    if confine is not None:
        local = np.pad(np.asarray(confine, bool)[box], 1, constant_values=True)  # the box's edge is not the confine's edge
        depth = distance_transform_edt(local, sampling=spacing)[1:-1, 1:-1, 1:-1]
        g *= np.clip(depth / taper_mm, 0.0, 1.0).astype(np.float32) ** 2
    # backward: the value at x comes from c + (x − c)(1 − g) → u = −g (x − c), in voxels
    u[(slice(None), *box)] = -g[None] * rel_mm / spacing[:, None, None, None].astype(np.float32)
    return u


def warp(volumes: list[Volume], u: np.ndarray, *, order: int = 1, box: tuple[slice, ...] | None = None) -> list[Volume]:
    """Each volume sampled at ``x + u(x)`` (linear; 0 outside). ``box`` limits the work to where ``u`` is non-zero."""
    out = []
    if box is None:
        box = tuple(slice(0, n) for n in u.shape[1:])
    offset = np.array([s.start for s in box], dtype=np.float32)
    sub = u[(slice(None), *box)]
    coords = np.indices(sub.shape[1:], dtype=np.float32) + offset[:, None, None, None] + sub
    for volume in volumes:
        arr = np.asarray(volume.array)
        result = arr.astype(np.float32, copy=True)
        result[box] = map_coordinates(arr.astype(np.float32, copy=False), coords, order=order, mode="constant", cval=0.0)
        out.append(volume.with_array(result))
    return out


def support_box(u: np.ndarray, eps: float = 0.01, margin: int = 2) -> tuple[slice, ...]:
    """The bounding box (slices) of voxels where |u| exceeds ``eps`` voxels, plus a margin."""
    moving = np.any(np.abs(u) > eps, axis=0)
    if not moving.any():
        return tuple(slice(0, 0) for _ in range(3))
    idx = np.nonzero(moving)
    return tuple(slice(max(0, int(i.min()) - margin), min(n, int(i.max()) + 1 + margin)) for i, n in zip(idx, moving.shape))
