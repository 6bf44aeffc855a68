"""How close a synthesized contrast is to the truth, and whether its tumor regions relate to healthy tissue as MR does.

* :func:`image_metrics`: PSNR, SSIM and MS-SSIM (MONAI's, 3D, Gaussian window
  σ 1.5, data range 1) on the brain's bounding box, both images in [0, 1].
  MS-SSIM's five scales need each side > (window − 1)·2⁴: the window is 7
  voxels (96 voxels per side at least; a brain's box at 1 mm is 140–190), not
  the 11 of the 2D definition.
* :func:`region_means`: the mean of an image in each tumor region (necrosis,
  enhancing rim, oedema) relative to normal-appearing white matter (white
  matter at least ``distance_mm`` from the tumor), and :data:`RELATIONS`, the
  relationships a radiologist expects (enhancing rim bright on t1c, oedema
  bright on t2w/t2f, necrosis dark on t1c).
"""

from __future__ import annotations

import numpy as np

#: (contrast, region, comparison, other): "region is brighter/darker than other" on contrast; other is "wm" or a region.
RELATIONS = (
    ("t1c", "enhancing", ">", "wm"),
    ("t1c", "enhancing", ">", "necrosis"),
    ("t1c", "necrosis", "<", "wm"),
    ("t2w", "edema", ">", "wm"),
    ("t2f", "edema", ">", "wm"),
    ("t1n", "necrosis", "<", "wm"),
)
REGIONS = {"necrosis": 1, "edema": 2, "enhancing": 3}
MS_SSIM_WINDOW = 7


def image_metrics(prediction: np.ndarray, truth: np.ndarray, brain: np.ndarray) -> dict[str, float]:
    """PSNR (inside the brain), SSIM and MS-SSIM (on the brain's box) of ``prediction`` against ``truth``, both in [0, 1]."""
    import torch
    from monai.metrics import MultiScaleSSIMMetric, SSIMMetric

    from tumorgen.synthesis.training import brain_box

    box = brain_box(brain, 1)
    p = np.clip(np.asarray(prediction, np.float32), 0.0, 1.0)
    t = np.clip(np.asarray(truth, np.float32), 0.0, 1.0)
    mse = float(np.mean((p[brain] - t[brain]) ** 2))
    psnr = float(10.0 * np.log10(1.0 / max(mse, 1e-12)))
    a = torch.from_numpy(np.ascontiguousarray(p[box]))[None, None]
    b = torch.from_numpy(np.ascontiguousarray(t[box]))[None, None]
    ssim = float(SSIMMetric(spatial_dims=3, data_range=1.0, win_size=MS_SSIM_WINDOW)(a, b).mean())
    ms_ssim = float(MultiScaleSSIMMetric(spatial_dims=3, data_range=1.0, kernel_size=MS_SSIM_WINDOW)(a, b).mean())
    return {"psnr": psnr, "ssim": ssim, "ms_ssim": ms_ssim}


def region_means(image: np.ndarray, seg: np.ndarray, wm: np.ndarray, spacing=(1.0, 1.0, 1.0), distance_mm: float = 10.0) -> dict[str, float]:
    """Mean intensity of each tumor region and of normal-appearing white matter (``wm`` ≥ 0.9, ≥ ``distance_mm`` from the tumor)."""
    from scipy.ndimage import distance_transform_edt

    far = distance_transform_edt(seg == 0, sampling=tuple(float(s) for s in spacing)) >= distance_mm
    out = {"wm": float(np.mean(image[(wm >= 0.9) & far])) if np.any((wm >= 0.9) & far) else float("nan")}
    for name, label in REGIONS.items():
        region = seg == label
        out[name] = float(np.mean(image[region])) if region.any() else float("nan")
    return out


def relations_hold(means: dict[str, dict[str, float]]) -> dict[str, bool | None]:
    """Each relation of :data:`RELATIONS` on per-contrast region means: True, False, or None where a region is absent."""
    out: dict[str, bool | None] = {}
    for contrast, region, op, other in RELATIONS:
        a, b = means[contrast][region], means[contrast][other]
        key = f"{contrast}: {region} {op} {other}"
        out[key] = None if not (np.isfinite(a) and np.isfinite(b)) else bool(a > b if op == ">" else a < b)
    return out


__all__ = ["MS_SSIM_WINDOW", "REGIONS", "RELATIONS", "image_metrics", "region_means", "relations_hold"]
