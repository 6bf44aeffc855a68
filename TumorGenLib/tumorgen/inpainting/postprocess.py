"""Post-processing of a generated region: histogram matching, then Poisson blending.

Both work on the crop around the mask, in the engine's normalised intensities.

* :func:`match_histogram`: the generated region's intensities mapped through
  the monotone transfer that takes the *generated* surroundings (a shell just
  outside the mask, which the decoder reconstructs) onto the *input's*
  surroundings, quantile by quantile. It corrects the autoencoder's contrast
  and brightness bias towards the tissue around the mask without forcing the
  region's own histogram, so a generated tumor keeps its contrast.
* :func:`poisson_blend`: gradient-domain (seamless) blending. Inside the mask
  the result keeps the generated image's Laplacian and on the mask's outer
  boundary it equals the input, which removes the seam. It solves for the
  harmonic correction ``h`` (Δh = 0 in the mask, ``h = input − generated`` on
  the boundary) with the 7-point Laplacian and scipy's conjugate gradients;
  the crop's own border is a zero-flux (Neumann) boundary.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: Width of the shell around the mask whose intensities calibrate the histogram match, in voxels.
SHELL_VOXELS = 4
QUANTILES = np.linspace(0.0, 1.0, 101)


def shell(mask: np.ndarray, width: int = SHELL_VOXELS) -> np.ndarray:
    """The voxels within ``width`` (city-block steps) outside ``mask``."""
    return ndimage.binary_dilation(mask, iterations=int(width)) & ~mask


def match_histogram(generated: np.ndarray, reference: np.ndarray, mask: np.ndarray, width: int = SHELL_VOXELS) -> np.ndarray:
    """``generated`` with the voxels in ``mask`` remapped so its surroundings' histogram matches ``reference``'s.

    Voxels outside ``mask`` are returned unchanged. With fewer than 16 shell
    voxels (a mask filling its crop) there is nothing to match and the input
    comes back unchanged.
    """
    ring = shell(mask, width)
    out = np.array(generated, dtype=np.float32, copy=True)
    if ring.sum() < 16:
        return out
    source_q = np.quantile(generated[ring], QUANTILES)
    target_q = np.quantile(reference[ring], QUANTILES)
    # np.interp needs increasing x: merge ties in the generated quantiles
    source_q, first = np.unique(source_q, return_index=True)
    target_q = target_q[first]
    values = generated[mask]
    mapped = np.interp(values, source_q, target_q)
    # beyond the shell's range, carry on with unit slope rather than clamping
    mapped = np.where(values < source_q[0], target_q[0] + (values - source_q[0]), mapped)
    mapped = np.where(values > source_q[-1], target_q[-1] + (values - source_q[-1]), mapped)
    out[mask] = mapped
    return out


class PoissonBlender:
    """:func:`poisson_blend` for several images into one mask: the Laplacian is assembled once, and each solve starts
    from the previous correction (samples of one region need nearly the same one), so the conjugate gradients stop
    sooner at the same tolerance."""

    def __init__(self, mask: np.ndarray):
        from scipy.sparse import coo_matrix

        self.mask = mask = np.asarray(mask, bool)
        self.n = n = int(mask.sum())
        self.previous: np.ndarray | None = None
        if n == 0:
            return
        index = np.full(mask.shape, -1, np.int64)
        index[mask] = np.arange(n)
        coords = np.argwhere(mask)
        rows, cols, outside = [], [], []
        degree = np.zeros(n)
        for axis in range(3):
            for step in (-1, 1):
                neighbour = coords.copy()
                neighbour[:, axis] += step
                inside = (neighbour[:, axis] >= 0) & (neighbour[:, axis] < mask.shape[axis])
                ids = np.flatnonzero(inside)
                nb = neighbour[ids]
                degree[ids] += 1  # the crop border is zero-flux: no edge there
                nb_index = index[nb[:, 0], nb[:, 1], nb[:, 2]]
                interior = nb_index >= 0
                rows.append(ids[interior])
                cols.append(nb_index[interior])
                outside.append((ids[~interior], np.ravel_multi_index(tuple(nb[~interior].T), mask.shape)))
        rows = np.concatenate(rows)
        cols = np.concatenate(cols)
        #: The boundary edges: the mask voxel and the flat index of its neighbour outside the mask.
        self.edge_voxel = np.concatenate([o[0] for o in outside])
        self.edge_neighbour = np.concatenate([o[1] for o in outside])
        self.preconditioner = _jacobi(degree)
        self.laplacian = coo_matrix((np.concatenate([degree, -np.ones(rows.size)]),
                                     (np.concatenate([np.arange(n), rows]), np.concatenate([np.arange(n), cols]))), shape=(n, n)).tocsr()

    def __call__(self, generated: np.ndarray, reference: np.ndarray, *, rtol: float = 1e-6) -> np.ndarray:
        """``generated + h`` inside the mask and ``reference`` outside it."""
        from scipy.sparse.linalg import cg

        generated = np.asarray(generated, np.float64)
        reference = np.asarray(reference, np.float64)
        out = reference.copy()
        if self.n == 0:
            return out.astype(np.float32)
        if self.edge_voxel.size == 0:  # the mask fills its crop: no boundary to blend into
            h = np.zeros(self.n)
        else:
            difference = (reference - generated).ravel()  # h on the boundary
            rhs = np.bincount(self.edge_voxel, weights=difference[self.edge_neighbour], minlength=self.n)
            h, info = cg(self.laplacian, rhs, x0=self.previous, rtol=rtol, atol=0.0,
                         maxiter=20 * int(round(self.n ** (1 / 3))) + 200, M=self.preconditioner)
            if info != 0:  # not converged within the iterations: a direct solve, slower but exact
                from scipy.sparse.linalg import spsolve

                h = spsolve(self.laplacian.tocsc(), rhs)
            self.previous = h
        out[self.mask] = generated[self.mask] + h
        return out.astype(np.float32)


def poisson_blend(generated: np.ndarray, reference: np.ndarray, mask: np.ndarray, *, rtol: float = 1e-6) -> np.ndarray:
    """Seamless blending of ``generated`` into ``reference`` inside ``mask`` (both arrays on the same crop).

    Returns ``generated + h`` inside the mask and ``reference`` outside it. Several images into one mask:
    :class:`PoissonBlender`.
    """
    return PoissonBlender(mask)(generated, reference, rtol=rtol)


def _jacobi(degree: np.ndarray):
    from scipy.sparse import diags

    return diags(1.0 / np.maximum(degree, 1.0))


__all__ = ["PoissonBlender", "match_histogram", "poisson_blend", "shell"]
