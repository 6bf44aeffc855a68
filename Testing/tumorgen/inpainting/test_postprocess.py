"""Histogram matching through the mask's surroundings and Poisson (gradient-domain) blending."""

from __future__ import annotations

import numpy as np
import pytest

from tumorgen.inpainting.postprocess import PoissonBlender, match_histogram, poisson_blend, shell


def _scene(shape=(24, 22, 20), seed=0):
    rng = np.random.default_rng(seed)
    x, y, z = np.meshgrid(*[np.linspace(0, 1, n) for n in shape], indexing="ij")
    reference = (0.5 + 0.3 * np.sin(6 * x) * np.cos(4 * y) + 0.1 * z + 0.02 * rng.standard_normal(shape)).astype(np.float32)
    mask = np.zeros(shape, bool)
    mask[7:17, 6:15, 5:14] = True
    return reference, mask


def test_shell_is_the_band_just_outside_the_mask():
    _, mask = _scene()
    ring = shell(mask, 2)
    assert not (ring & mask).any()
    assert ring[5, 10, 9] and ring[6, 10, 9] and not ring[4, 10, 9]  # 2 voxels below the mask's first row (7)


def test_histogram_matching_undoes_a_monotone_intensity_distortion():
    reference, mask = _scene()
    generated = 0.6 * reference**1.3 + 0.15  # what a decoder with a contrast bias would give, everywhere
    matched = match_histogram(generated, reference, mask)
    assert np.array_equal(matched[~mask], generated[~mask])  # only the mask changes
    before = np.abs(generated[mask] - reference[mask]).mean()
    after = np.abs(matched[mask] - reference[mask]).mean()
    assert before > 0.1 and after < 0.01


def test_histogram_matching_keeps_a_bright_region_bright():
    """The transfer comes from the surroundings, so a generated lesion keeps its contrast (tumor mode)."""
    reference, mask = _scene()
    generated = reference.copy()
    generated[10:14, 9:12, 8:11] = 2.0
    matched = match_histogram(generated, reference, mask)
    assert matched[11, 10, 9] == pytest.approx(2.0, abs=0.1)


def test_poisson_blending_removes_an_offset_and_a_ramp_exactly():
    """Generated = truth + a harmonic error (constant, linear ramp): blending recovers the truth inside the mask."""
    reference, mask = _scene()
    i = np.arange(reference.shape[0], dtype=np.float32)[:, None, None]
    for error in (np.float32(0.3), 0.02 * i):
        blended = poisson_blend(reference + error, reference, mask)
        assert np.abs(blended - reference).max() < 1e-4
    assert np.array_equal(poisson_blend(reference + 0.3, reference, mask)[~mask], reference[~mask])


def test_poisson_blending_keeps_the_generated_detail_and_matches_the_boundary():
    reference, mask = _scene()
    detail = np.zeros_like(reference)
    detail[11, 10, 9] = 1.0  # a feature in the middle of the mask
    generated = reference + 0.25 + detail
    blended = poisson_blend(generated, reference, mask)
    assert blended[11, 10, 9] - reference[11, 10, 9] == pytest.approx(1.0, abs=0.05)
    seam_before = np.abs(generated - reference)[mask & shell(~mask, 1)].mean()
    seam_after = np.abs(blended - reference)[mask & shell(~mask, 1)].mean()
    assert seam_before == pytest.approx(0.25, abs=1e-5) and seam_after < 0.01


def test_poisson_blending_with_the_mask_on_the_crop_border_is_zero_flux_there():
    reference, _ = _scene()
    mask = np.zeros(reference.shape, bool)
    mask[:8, 5:15, 5:15] = True  # touches the crop's first face
    blended = poisson_blend(reference + 0.3, reference, mask)
    assert np.abs(blended - reference).max() < 1e-4
    full = np.ones(reference.shape, bool)
    assert np.array_equal(poisson_blend(reference + 0.3, reference, full), (reference + 0.3).astype(np.float32))


def test_one_blender_for_several_samples_gives_each_its_own_blend():
    """The Laplacian assembled once and each solve started from the previous one's correction: every sample still
    gets its own blend (to the solver's tolerance), an empty mask leaves the reference, and the inputs stay as they were."""
    reference, mask = _scene()
    rng = np.random.default_rng(3)
    i = np.arange(reference.shape[0], dtype=np.float32)[:, None, None]
    samples = [reference + offset + 0.02 * k * i + 0.05 * rng.standard_normal(reference.shape).astype(np.float32)
               for k, offset in enumerate((0.3, -0.2, 0.1))]
    copies = [s.copy() for s in samples]
    blender = PoissonBlender(mask)
    for generated, copy in zip(samples, copies):
        together = blender(generated, reference)
        alone = poisson_blend(generated, reference, mask)
        assert np.abs(together - alone).max() < 1e-4
        assert np.array_equal(together[~mask], reference[~mask])
        assert np.array_equal(generated, copy)
    assert blender.previous is not None and blender.previous.shape == (int(mask.sum()),)
    empty = PoissonBlender(np.zeros(reference.shape, bool))
    assert np.array_equal(empty(samples[0], reference), reference)
