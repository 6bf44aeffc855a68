"""Scores of a post-operative prediction against the post-operative scan: PSNR, SSIM, MS-SSIM in a region, cavity Dice.

Both images are put on the truth's scale first: the 0.5th and 99.5th
percentiles of the truth's brain (nonzero voxels) → 0 and 1, clipped to [0, 1].
SSIM is the 3D Gaussian-window SSIM (σ 1.5 voxels, window 11, K1 0.01, K2 0.03)
averaged over the region's voxels; PSNR is over the region's voxels with a data
range of 1; MS-SSIM is MONAI's (3D, Gaussian window 7, σ 1.5) on the region's
bounding box grown to at least :data:`MS_SSIM_MIN` voxels a side, with three
scales (the first three of the standard five weights, renormalised) so that a
box of a few centimetres has room for them.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from tumorgen.errors import InputError

SSIM_SIGMA = 1.5
SSIM_RADIUS = 5
#: Context kept around a region for its SSIM window, voxels.
SSIM_REACH = SSIM_RADIUS + 1
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001)
MS_SSIM_KERNEL = 7
MS_SSIM_MIN = 32


def scale_to_truth(prediction: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values = truth[truth > 0].astype(np.float64)
    if values.size < 100:
        raise InputError("the ground truth has too little brain to set an intensity scale")
    lo, hi = np.percentile(values, (0.5, 99.5))
    lo = max(lo, 0.0)

    def scaled(a):
        return np.clip((np.asarray(a, np.float64) - lo) / (hi - lo), 0.0, 1.0)

    return scaled(prediction), scaled(truth)


def _box(mask: np.ndarray, reach: int, minimum: int = 0):
    where = np.argwhere(mask)
    lo, hi = where.min(0), where.max(0) + 1
    out = []
    for a, b, n in zip(lo, hi, mask.shape):
        a, b = max(0, int(a) - reach), min(n, int(b) + reach)
        short = max(0, minimum - (b - a))
        a = max(0, a - short // 2)
        b = min(n, max(b, a + minimum))
        a = max(0, min(a, b - minimum))
        out.append(slice(a, b))
    return tuple(out)


def ssim_map(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    c1, c2 = 0.01**2, 0.03**2

    def blur(a):
        return ndimage.gaussian_filter(a, SSIM_SIGMA, truncate=SSIM_RADIUS / SSIM_SIGMA, mode="reflect")  # an 11-voxel window

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    return ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))


def region_scores(prediction: np.ndarray, truth: np.ndarray, region: np.ndarray) -> dict[str, float]:
    """PSNR, SSIM and MS-SSIM of ``prediction`` against ``truth`` inside ``region`` (see the module docstring)."""
    import torch
    from monai.metrics import MultiScaleSSIMMetric

    region = np.asarray(region, bool)
    if not region.any():
        raise InputError("the region is empty: no voxel to score")
    p, t = scale_to_truth(prediction, truth)
    box = _box(region, SSIM_REACH)
    mse = float(np.mean((p[region] - t[region]) ** 2))
    psnr = float(10 * np.log10(1.0 / max(mse, 1e-12)))
    ssim = float(ssim_map(p[box], t[box])[region[box]].mean())
    ms_box = _box(region, 0, MS_SSIM_MIN)
    weights = tuple(w / sum(MS_SSIM_WEIGHTS) for w in MS_SSIM_WEIGHTS)
    metric = MultiScaleSSIMMetric(spatial_dims=3, data_range=1.0, kernel_size=MS_SSIM_KERNEL, kernel_sigma=SSIM_SIGMA, weights=weights)
    ms = float(metric(torch.from_numpy(p[ms_box][None, None]).float(), torch.from_numpy(t[ms_box][None, None]).float()).mean())
    return {"psnr": psnr, "ssim": ssim, "ms_ssim": ms}


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * float(np.logical_and(a, b).sum()) / total


__all__ = ["dice", "region_scores", "scale_to_truth", "ssim_map"]
