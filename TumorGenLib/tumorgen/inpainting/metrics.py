"""The BraTS inpainting challenge's metrics: SSIM, PSNR and MSE inside the mask.

Computed by the challenge's own code, the ``inpainting`` package on PyPI
(``inpainting.challenge_metrics_2023.generate_metrics``, built on
torchmetrics): both images are normalised to [0, 1] by the 0.5th and 99.5th
percentiles of the *voided* image (the ground truth with the mask region set to
0, which is what a model sees), predictions and ground truth are multiplied by
the mask, SSIM is averaged over the mask and MSE/PSNR are taken over the mask's
voxels. ``psnr`` uses the ground truth's range inside the mask, ``psnr_01`` the
fixed range [0, 1].

The package's code runs on the mask's bounding box (plus the SSIM window's
reach), after the percentile normalisation has been done on the whole image the
package's way: the same numbers (tested against the whole-image call) about 40
times faster.

Arrays are indexed ``[i, j, k]`` like the NIfTI files the challenge reads with
nibabel; the challenge's SSIM is 2-D over the last two axes with the first as
channels, so the order matters and is kept.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from tumorgen.errors import InputError

#: How far the challenge's SSIM window (11 × 11, Gaussian σ 1.5) reaches from its centre, in voxels, plus one.
SSIM_REACH = 6
#: The metrics reported (the package computes a few more; all are kept in the JSON).
HEADLINE = ("ssim", "psnr", "psnr_01", "mse")


def inpainting_metrics(prediction: np.ndarray, truth: np.ndarray, mask: np.ndarray, voided: np.ndarray | None = None) -> dict[str, float]:
    """The challenge's metrics of ``prediction`` against ``truth`` inside ``mask`` (all the same shape).

    ``voided``: the image the method was given; by default ``truth`` with the
    mask set to 0, as the challenge builds its inputs.
    """
    import torch
    from inpainting.challenge_metrics_2023 import generate_metrics

    prediction, truth, mask = np.asarray(prediction), np.asarray(truth), np.asarray(mask).astype(bool)
    if not (prediction.shape == truth.shape == mask.shape):
        raise InputError(f"prediction {prediction.shape}, ground truth {truth.shape} and mask {mask.shape} must have the same shape")
    if not mask.any():
        raise InputError("the mask is empty: no voxel to evaluate")
    if voided is None:
        voided = np.where(mask, 0, truth)
    elif np.shape(voided) != truth.shape:
        raise InputError(f"voided image {np.shape(voided)} and ground truth {truth.shape} must have the same shape")

    def tensor(array: np.ndarray) -> torch.Tensor:  # as the package reads NIfTI: float64 → torch.Tensor (float32), (1, X, Y, Z)
        return torch.Tensor(np.asarray(array, np.float64)).unsqueeze(0).contiguous()

    with warnings.catch_warnings():  # the challenge code's own: np.percentile on a tensor, torch.tensor(tensor) in torchmetrics
        warnings.filterwarnings("ignore", message="__array_wrap__ must accept context", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="To copy construct from a tensor", category=UserWarning)
        # The same numbers on the mask's box: the package's percentile normalisation is done here on the whole
        # image, then everything is cropped to the mask's box plus the SSIM window's reach in the two planes the
        # 2-D SSIM runs over, and the package normalises with a reference whose 0.5th/99.5th percentiles are 0 and 1.
        v_min, v_max = np.percentile(tensor(voided), [0.5, 99.5])
        v_min = max(v_min, 0.0)
        where = np.argwhere(mask)
        reach = (0, SSIM_REACH, SSIM_REACH)
        box = tuple(slice(max(0, int(lo) - r), min(n, int(hi) + 1 + r)) for lo, hi, r, n in zip(where.min(0), where.max(0), reach, mask.shape))

        def cropped(array: np.ndarray) -> np.ndarray:  # the package's own arithmetic: (x·mask) clipped, scaled in float32
            masked = (tensor(array[box]) * tensor(mask[box]).bool()).float()  # voxelwise, so on the box alone
            return ((np.clip(masked, v_min, v_max) - v_min) / (v_max - v_min))[0].numpy()

        prediction, truth, mask = cropped(prediction), cropped(truth), mask[box]
        identity = np.zeros(mask.shape, np.float64)
        identity.flat[identity.size // 2:] = 1.0
        voided = identity
        values = generate_metrics(prediction=tensor(prediction), target=tensor(truth), normalization_tensor=tensor(voided),
                                  mask=tensor(mask).bool())
    return {k: float(v) for k, v in values.items()}


def evaluate_files(prediction: str | Path, truth: str | Path, mask: str | Path, voided: str | Path | None = None) -> dict[str, float]:
    """:func:`inpainting_metrics` of NIfTI files; the geometry of all must match."""
    from tumorgen.volume_io import check_same_geometry, read_mask, read_volume

    gt = read_volume(truth, role="ground truth")
    pred = read_volume(prediction, role="prediction")
    check_same_geometry(gt, pred, ("ground truth", "prediction"))
    m = read_mask(mask, reference=gt, reference_name="ground truth")
    void = None
    if voided is not None:
        void_volume = read_volume(voided, role="voided image")
        check_same_geometry(gt, void_volume, ("ground truth", "voided image"))
        void = void_volume.array
    return inpainting_metrics(pred.array, gt.array, m.array, void)


__all__ = ["HEADLINE", "evaluate_files", "inpainting_metrics"]
