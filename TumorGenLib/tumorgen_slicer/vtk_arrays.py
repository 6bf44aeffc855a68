"""numpy ↔ VTK: 4×4 matrices and image scalars (shape ``(k, j, i)``, i fastest: VTK's memory order)."""

from __future__ import annotations

import numpy as np


def array_of_matrix(matrix) -> np.ndarray:
    """A ``vtkMatrix4x4`` as a 4×4 numpy array."""
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def vtk_matrix(m: np.ndarray):
    """A 4×4 numpy array as a ``vtkMatrix4x4``."""
    import vtk

    matrix = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            matrix.SetElement(r, c, float(m[r, c]))
    return matrix


def fill_image(image, voxels: np.ndarray):
    """Give a ``vtkImageData`` (or ``vtkOrientedImageData``) a copy of ``voxels`` (shape ``(k, j, i)``, i fastest) as its
    scalars, and their dimensions; bool voxels become uint8. Returns ``image``."""
    from vtk.util.numpy_support import numpy_to_vtk

    voxels = np.ascontiguousarray(voxels, dtype=np.uint8 if voxels.dtype == bool else None)
    image.SetDimensions(voxels.shape[2], voxels.shape[1], voxels.shape[0])
    scalars = numpy_to_vtk(voxels.ravel(), deep=True)
    scalars.SetName("ImageScalars")
    image.GetPointData().SetScalars(scalars)
    return image
