"""A 3D image with its place in the world: the one volume type of the engine.

Conventions (the same as ITK and NIfTI voxel indexing):

* ``Volume.array`` is indexed ``[i, j, k]``, the first index running fastest in
  the file. (``SimpleITK.GetArrayFromImage`` gives ``[k, j, i]``; the
  conversion happens once, in :meth:`Volume.from_sitk` / :meth:`Volume.to_sitk`.)
* Physical coordinates are millimetres in ITK's LPS frame. Slicer works in RAS;
  :meth:`Grid.ras_to_index` and :meth:`Grid.index_to_ras` convert. RAS = diag(-1, -1, 1) · LPS.
* The position of voxel index ``v`` is ``origin + D · diag(spacing) · v`` where the
  columns of the direction matrix ``D`` are the directions of the i, j, k axes.

A :class:`Grid` is the geometry alone (size, spacing, origin, direction). Outputs
of every task are written on the grid of their input, so :class:`Grid` is what
gets compared, copied and resampled to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

#: Absolute tolerances used by :meth:`Grid.matches`. NIfTI stores geometry as
#: float32, so two grids that went through a file can differ by ~1e-7 relative.
SPACING_RTOL = 1e-5
ORIGIN_ATOL_MM = 1e-3
DIRECTION_ATOL = 1e-5

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def _triple(values: Iterable[float], name: str, cast: type = float) -> tuple:
    out = tuple(cast(v) for v in values)
    if len(out) != 3:
        raise ValueError(f"{name} must have 3 values, got {len(out)}")
    return out


@dataclass(frozen=True)
class Grid:
    """Geometry of a 3D image: voxel counts, spacing (mm), origin (LPS mm), direction.

    ``direction`` is stored row-major as 9 floats, as SimpleITK does.
    """

    size: tuple[int, int, int]
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", _triple(self.size, "size", int))
        object.__setattr__(self, "spacing", _triple(self.spacing, "spacing"))
        object.__setattr__(self, "origin", _triple(self.origin, "origin"))
        direction = tuple(float(v) for v in np.asarray(self.direction, dtype=float).ravel())
        if len(direction) != 9:
            raise ValueError(f"direction must have 9 values, got {len(direction)}")
        object.__setattr__(self, "direction", direction)
        if min(self.size) < 1:
            raise ValueError(f"size must be positive, got {self.size}")
        if min(self.spacing) <= 0:
            raise ValueError(f"spacing must be positive, got {self.spacing}")

    # -- matrices ---------------------------------------------------------
    @property
    def direction_matrix(self) -> np.ndarray:
        """3×3 matrix whose columns are the i, j, k axis directions (LPS)."""
        return np.asarray(self.direction, dtype=float).reshape(3, 3)

    @property
    def index_to_lps_matrix(self) -> np.ndarray:
        """4×4 homogeneous matrix taking a voxel index (i, j, k, 1) to LPS mm."""
        m = np.eye(4)
        m[:3, :3] = self.direction_matrix @ np.diag(self.spacing)
        m[:3, 3] = self.origin
        return m

    @property
    def index_to_ras_matrix(self) -> np.ndarray:
        """4×4 homogeneous matrix taking a voxel index to RAS mm (Slicer's IJKToRAS)."""
        m = self.index_to_lps_matrix
        m[:3, :] = _LPS_TO_RAS @ m[:3, :]
        return m

    @property
    def voxel_volume_mm3(self) -> float:
        return float(np.prod(self.spacing))

    @property
    def num_voxels(self) -> int:
        return int(np.prod(self.size))

    # -- coordinate conversions ------------------------------------------
    def index_to_lps(self, index: Sequence[float]) -> np.ndarray:
        ijk = np.asarray(index, dtype=float)
        return self.index_to_lps_matrix[:3, :3] @ ijk + np.asarray(self.origin)

    def lps_to_index(self, point: Sequence[float]) -> np.ndarray:
        """Continuous voxel index of an LPS point (round it for the nearest voxel)."""
        p = np.asarray(point, dtype=float) - np.asarray(self.origin)
        return np.linalg.solve(self.index_to_lps_matrix[:3, :3], p)

    def index_to_ras(self, index: Sequence[float]) -> np.ndarray:
        return _LPS_TO_RAS @ self.index_to_lps(index)

    def ras_to_index(self, point: Sequence[float]) -> np.ndarray:
        return self.lps_to_index(_LPS_TO_RAS @ np.asarray(point, dtype=float))

    def contains_index(self, index: Sequence[float]) -> bool:
        """Whether a (continuous) index lies inside the voxel centres' hull ±0.5 voxel."""
        ijk = np.asarray(index, dtype=float)
        return bool(np.all(ijk >= -0.5) and np.all(ijk <= np.asarray(self.size) - 0.5))

    # -- comparison ------------------------------------------------------
    def differences(self, other: Grid) -> list[str]:
        """Human-readable list of what differs beyond the tolerances; empty if they match."""
        out = []
        if self.size != other.size:
            out.append(f"size {self.size} vs {other.size}")
        if not np.allclose(self.spacing, other.spacing, rtol=SPACING_RTOL, atol=0):
            out.append(f"spacing {_fmt(self.spacing)} vs {_fmt(other.spacing)}")
        if not np.allclose(self.origin, other.origin, rtol=0, atol=ORIGIN_ATOL_MM):
            out.append(f"origin {_fmt(self.origin)} vs {_fmt(other.origin)}")
        if not np.allclose(self.direction, other.direction, rtol=0, atol=DIRECTION_ATOL):
            out.append(f"direction {_fmt(self.direction)} vs {_fmt(other.direction)}")
        return out

    def matches(self, other: Grid) -> bool:
        return not self.differences(other)


def _fmt(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:.6g}" for v in values) + ")"


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3D array on a :class:`Grid`. The array is indexed ``[i, j, k]``.

    Volumes are treated as immutable: operations return new volumes, and the
    engine never writes into an input's array.
    """

    array: np.ndarray
    grid: Grid = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        array = np.asarray(self.array)
        object.__setattr__(self, "array", array)
        if array.ndim != 3:
            raise ValueError(f"a Volume holds a 3D array, got {array.ndim}D with shape {array.shape}")
        if self.grid is None:
            object.__setattr__(self, "grid", Grid(size=array.shape))
        elif tuple(array.shape) != self.grid.size:
            raise ValueError(f"array shape {array.shape} does not match grid size {self.grid.size}")

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.grid.size

    @property
    def spacing(self) -> tuple[float, float, float]:
        return self.grid.spacing

    @property
    def origin(self) -> tuple[float, float, float]:
        return self.grid.origin

    @property
    def direction(self) -> tuple[float, ...]:
        return self.grid.direction

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    def with_array(self, array: np.ndarray) -> Volume:
        """A new volume on the same grid (the array's shape must match)."""
        return Volume(array, self.grid)

    # -- SimpleITK bridge ---------------------------------------------------
    @classmethod
    def from_sitk(cls, image) -> Volume:
        import SimpleITK as sitk

        if image.GetDimension() != 3:
            raise ValueError(f"expected a 3D image, got {image.GetDimension()}D")
        array = sitk.GetArrayFromImage(image).transpose(2, 1, 0)
        grid = Grid(
            size=image.GetSize(),
            spacing=image.GetSpacing(),
            origin=image.GetOrigin(),
            direction=image.GetDirection(),
        )
        return cls(array, grid)

    def to_sitk(self):
        import SimpleITK as sitk

        array = self.array
        if array.dtype == bool:
            array = array.astype(np.uint8)
        image = sitk.GetImageFromArray(np.ascontiguousarray(array.transpose(2, 1, 0)))
        image.SetSpacing(self.grid.spacing)
        image.SetOrigin(self.grid.origin)
        image.SetDirection(self.grid.direction)
        return image
