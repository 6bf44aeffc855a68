"""The healthy tissue under a mask estimated from the scan itself, against the registered template's guess.

Registered tissue maps are the template's folding, not the subject's: sure near
the mask's border, guesses deep inside it. :func:`continued_tissues` reads the
tissue classes of the known scan around the mask from its own intensities (the
three classes' mean intensities estimated from the registered maps outside the
mask, each known voxel given the class its intensity is nearest to) and carries
them inward: each voxel of the mask takes the class of the nearest known voxel,
with a weight that fades with depth (σ ``reach_mm``) toward the registered maps.

The fidelity benchmark measures each estimate's Dice inside the masks against
the registered maps' (``bench_fidelity.py``'s ``tissue_dice``).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from tumorgen.anatomy.tissues import TissueMaps

#: Known voxels within this distance of the mask calibrate the classes' intensities.
RING_MM = 10.0


def class_means(image: np.ndarray, mask: np.ndarray, maps: np.ndarray, spacing) -> np.ndarray:
    """The CSF, GM and WM mean intensities of the known tissue near ``mask``, weighted by the registered maps."""
    depth = ndimage.distance_transform_edt(~mask, sampling=[float(s) for s in spacing])
    near = (~mask) & (depth <= RING_MM) & (image > 0)
    if near.sum() < 100:
        near = (~mask) & (image > 0)
    weights = maps[:, near]
    values = image[near]
    means = (weights * values).sum(1) / np.maximum(weights.sum(1), 1e-6)
    return np.maximum.accumulate(means)  # T1: CSF ≤ GM ≤ WM


def scan_classes(image: np.ndarray, mask: np.ndarray, maps: np.ndarray, spacing) -> np.ndarray:
    """Each known voxel's class (0 CSF, 1 GM, 2 WM) by its intensity's nearest class mean; -1 in the mask and outside."""
    means = class_means(image, mask, maps, spacing)
    classes = np.argmin(np.abs(image[..., None] - means), axis=-1).astype(np.int8)
    classes[mask | (image <= 0)] = -1
    return classes


def continued_tissues(image: np.ndarray, mask: np.ndarray, registered: TissueMaps, spacing, reach_mm: float = 3.0) -> TissueMaps:
    """Tissue maps whose classes inside ``mask`` continue the scan's own classes inward, fading to ``registered``."""
    mask = np.asarray(mask, bool)
    maps = np.stack([registered.csf.array, registered.gm.array, registered.wm.array]).astype(np.float32)
    classes = scan_classes(np.asarray(image, np.float32), mask, maps, spacing)
    known = classes >= 0
    depth, nearest = ndimage.distance_transform_edt(~known, sampling=[float(s) for s in spacing], return_indices=True)
    carried = classes[tuple(nearest)]
    onehot = np.stack([(carried == k) for k in range(3)]).astype(np.float32)
    weight = np.exp(-depth / max(reach_mm, 1e-6)).astype(np.float32) * mask
    out = maps * (1 - weight) + onehot * weight
    out[:, mask] *= maps[:, mask].sum(0) / np.maximum(out[:, mask].sum(0), 1e-6)
    return TissueMaps(*(v.with_array(a) for v, a in zip((registered.csf, registered.gm, registered.wm), out)))


__all__ = ["class_means", "continued_tissues", "scan_classes"]
