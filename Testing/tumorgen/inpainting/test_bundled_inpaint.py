"""Healthy inpainting with the bundled tiny models on a simulated subject that training never saw.

The benchmark (``Testing/benchmarks/bench_inpaint.py``) measures the ablation;
this checks, in the test suite's time, that the bundled models inpaint a cube of
healthy brain much better than filling it with the surrounding mean, and that
the voxels outside the mask come back bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from tumorgen.inpainting.core import InpaintSettings, inpaint
from tumorgen.inpainting.metrics import inpainting_metrics
from tumorgen.models.sampling import bundled_weights

pytestmark = pytest.mark.skipif(not (bundled_weights() / "controlnet.safetensors").is_file(), reason="no bundled ControlNet")

CUBE_MM = 32
#: How much the bundled models must beat the mean fill by: measured 18.49 dB against 13.31 dB (SSIM 0.84 against 0.42)
MARGIN_DB = 3.0


@pytest.fixture(scope="module")
def case():
    from tumorgen.simulate import SimulationOptions, simulate_subject

    subject = simulate_subject([7778, 0], SimulationOptions(spacing_mm=1.0, tumor=False), case="TGTEST-00001-000")
    t1n = subject.images["t1n"]
    brain = t1n.array > 0
    # a cube of deep brain: its centre the brain voxel farthest from the background, shifted up into the hemispheres
    depth = ndimage.distance_transform_edt(brain)
    centre = np.array(np.unravel_index(np.argmax(depth), depth.shape)) + np.array([20, 0, 10])
    box = tuple(slice(c - CUBE_MM // 2, c + CUBE_MM // 2) for c in centre)
    mask = np.zeros(brain.shape, bool)
    mask[box] = brain[box]
    assert mask.sum() > 0.75 * CUBE_MM**3
    voided = t1n.with_array(np.where(mask, 0, t1n.array).astype(t1n.dtype))
    tissues = {k: getattr(subject.tissues, k) for k in ("csf", "gm", "wm")}
    return t1n, voided, mask, tissues


def test_bundled_models_inpaint_healthy_brain_far_better_than_its_mean(case):
    from tumorgen.models.sampling import LatentDiffusion

    t1n, voided, mask, tissues = case
    result = inpaint(LatentDiffusion(), voided, voided.with_array(mask), tissues, InpaintSettings(mode="healthy"))
    out = result.mean
    assert out.grid == t1n.grid and out.dtype == t1n.dtype
    assert np.array_equal(out.array[~mask], voided.array[~mask])
    learned = inpainting_metrics(out.array, t1n.array, mask, voided.array)

    shell = ndimage.binary_dilation(mask, iterations=4) & ~mask & (t1n.array > 0)
    flat = np.where(mask, t1n.array[shell].mean(), voided.array)
    baseline = inpainting_metrics(flat, t1n.array, mask, voided.array)
    print(f"learned {learned['psnr']:.2f} dB SSIM {learned['ssim']:.4f}; mean fill {baseline['psnr']:.2f} dB SSIM {baseline['ssim']:.4f}")
    assert learned["psnr"] >= baseline["psnr"] + MARGIN_DB, (learned, baseline)
    assert learned["ssim"] > baseline["ssim"]
