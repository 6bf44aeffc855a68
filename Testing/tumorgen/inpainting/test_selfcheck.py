"""The self-check on known tissue: where the probe goes, the harmonic fill, and what inpaint reports."""

from __future__ import annotations

import numpy as np
import pytest
from tumorgen_testing import brain_phantom, phantom_t1, small_models

from tumorgen.inpainting.core import InpaintSettings, crop_box, inpaint
from tumorgen.inpainting.metrics import inpainting_metrics
from tumorgen.inpainting.selfcheck import SelfCheck, harmonic_fill, left_right_axis, probe_region
from tumorgen.models.sampling import LatentDiffusion

IDENTITY = (1, 0, 0, 0, 1, 0, 0, 0, 1)


@pytest.fixture(scope="module")
def head():
    tissues = brain_phantom(size=(96, 72, 64))
    return phantom_t1(tissues), {"csf": tissues.csf, "gm": tissues.gm, "wm": tissues.wm}


def _ball(shape, centre, radius):
    idx = np.indices(shape)
    return sum((i - c) ** 2 for i, c in zip(idx, centre)) <= radius**2


def test_the_probe_is_the_mirror_image_when_the_other_side_is_free(head):
    image, _ = head
    mask = _ball(image.shape, (28, 36, 32), 6)
    probe, placement, shift = probe_region(image.array, mask, IDENTITY, (1.0, 1.0, 1.0))
    assert placement.startswith("mirrored")
    assert probe.sum() == mask.sum() and not (probe & mask).any()
    xs = np.argwhere(probe)[:, 0]
    assert xs.min() == 61 and xs.max() == 73  # the ball's 22..34 mirrored about the brain's centre (x 3..92)
    assert shift[1:] == (0, 0)


def test_a_mask_on_the_midline_gets_a_shifted_probe_clear_of_it(head):
    image, _ = head
    mask = _ball(image.shape, (48, 36, 32), 5)
    probe, placement, shift = probe_region(image.array, mask, IDENTITY, (1.0, 1.0, 1.0), margin=(4, 4, 4))
    assert placement.startswith("shifted") and probe.sum() == mask.sum()
    assert sorted(abs(s) for s in shift) == [0, 0, 11 + 8]  # the ball's size plus twice the margin
    dilated = np.zeros_like(mask)
    dilated[tuple(slice(max(0, lo - 4), hi + 5) for lo, hi in zip(np.argwhere(mask).min(0), np.argwhere(mask).max(0)))] = True
    assert not (probe & dilated).any()


def test_no_probe_when_the_mask_leaves_no_room(head):
    image, _ = head
    big = _ball(image.shape, (48, 36, 32), 28)
    assert probe_region(image.array, big, IDENTITY, (1.0, 1.0, 1.0)) is None
    # a crop box that always reaches the mask rules out every candidate
    small = _ball(image.shape, (28, 36, 32), 5)
    everything = tuple(slice(0, n) for n in image.shape)
    assert probe_region(image.array, small, IDENTITY, (1.0, 1.0, 1.0), keep_clear=lambda probe: everything) is None


def test_the_left_right_axis_follows_the_direction_matrix():
    assert left_right_axis(IDENTITY) == 0
    assert left_right_axis((0, 0, -1, 1, 0, 0, 0, 1, 0)) == 2  # array axis k runs along −x
    assert left_right_axis((0, 1, 0, 0, 0, 1, 1, 0, 0)) == 1


def test_the_harmonic_fill_reproduces_a_linear_ramp_exactly():
    ramp = np.fromfunction(lambda i, j, k: 2.0 * i - j + 0.5 * k + 10.0, (20, 18, 16)).astype(np.float32)
    region = np.zeros(ramp.shape, bool)
    region[6:14, 5:12, 4:11] = True
    voided = np.where(region, 0.0, ramp)
    filled = harmonic_fill(voided, region, (slice(2, 18), slice(1, 16), slice(0, 16)))
    assert np.abs(filled[region] - ramp[region]).max() < 1e-3  # a linear function is harmonic
    assert np.array_equal(filled[~region], voided[~region]) and np.array_equal(voided[region], 0 * ramp[region])


def test_inpaint_reports_a_self_check_on_known_tissue(tmp_path, head):
    """Untrained networks generate noise, so on known tissue the harmonic fill must beat them: a doubtful result."""
    image, maps = head
    model = LatentDiffusion(small_models(tmp_path / "m", spacing_mm=1.0))
    mask = image.with_array(_ball(image.shape, (28, 36, 32), 6))
    before = image.array.copy()
    settings = InpaintSettings(steps=4, jump=2, resample=1, fallback="off")
    result = inpaint(model, image, mask, maps, settings)
    check = result.check
    assert isinstance(check, SelfCheck) and np.array_equal(image.array, before)
    assert check.placement.startswith("mirrored") and check.voxels == int(mask.array.sum())
    assert check.doubtful and check.psnr < check.classical_psnr and "DOUBTFUL" in check.summary()
    assert check.behind and not check.fallback and "FALLBACK" not in check.summary()
    assert check.prior_psnr is not None and check.best_fill in ("harmonic", "unet")
    # the verdict's margin: what the biharmonic fill adds over the harmonic one
    from dataclasses import replace

    assert replace(check, psnr=check.classical_psnr + 0.9).doubtful and not replace(check, psnr=check.classical_psnr + 1.1).doubtful
    assert "check" in result.timings
    # the classical score is the challenge's metric of the harmonic fill of that probe, recomputed here
    probe, _, _ = probe_region(image.array, mask.array, image.direction, image.spacing,
                               keep_clear=lambda r: crop_box(r, (8, 8, 8), 16, image.shape), margin=(8, 8, 8))
    voided = np.where(probe, 0, image.array)
    expected = inpainting_metrics(harmonic_fill(voided, probe, crop_box(probe, (8, 8, 8), 16, image.shape)), image.array, probe, voided)
    assert check.classical_psnr == pytest.approx(expected["psnr"], abs=0.01)
    assert check.as_dict()["doubtful"] is True
    off = inpaint(model, image, mask, maps, InpaintSettings(steps=4, jump=2, resample=1, self_check=False, fallback="off"))
    assert off.check is None and "check" not in off.timings
    assert np.array_equal(off.mean.array, result.mean.array)  # the check does not touch the result
    # a generated tumor has no truth to check against: tumor mode runs no probe
    conc = image.with_array(np.where(mask.array, 0.8, 0.0).astype(np.float32))
    tumor = inpaint(model, image, mask, maps, InpaintSettings(mode="tumor", steps=4, jump=2, resample=1), concentration=conc)
    assert tumor.check is None and "check" not in tumor.timings


def test_behind_the_classical_fill_the_result_falls_back_to_the_best_fill(tmp_path, head):
    """Untrained networks score behind the harmonic fill on the probe: with fallback=auto (the default) the result is
    the fill that scored best there, every sample alike, and the check says so."""
    from tumorgen.inpainting.prior import prior_fill

    image, maps = head
    model = LatentDiffusion(small_models(tmp_path / "m", spacing_mm=1.0))
    mask = image.with_array(_ball(image.shape, (28, 36, 32), 6))
    result = inpaint(model, image, mask, maps, InpaintSettings(steps=4, jump=2, resample=1, samples=2))
    check = result.check
    assert check.behind and check.fallback == check.best_fill and "FALLBACK" in check.summary()
    assert check.as_dict()["fallback"] == check.best_fill
    from tumorgen.inpainting.core import normalisation

    # the fill is made on the crop, on the normalised intensities
    lo, hi = normalisation(image.array, mask.array)
    crop = np.clip((image.array[result.box].astype(np.float32) - lo) / (hi - lo), 0.0, None)
    region = mask.array[result.box]
    if check.fallback == "harmonic":
        filled = harmonic_fill(crop, region, tuple(slice(0, n) for n in region.shape))
    else:
        filled = prior_fill(crop, region, image.spacing)
    expected = lo + filled[region] * (hi - lo)
    inside = mask.array
    assert np.abs(result.mean.array[result.box][region] - expected).max() <= 0.5 + 1e-3  # the int16 rounding
    assert np.array_equal(result.samples[0].array, result.samples[1].array) and (result.std.array == 0).all()
    assert np.array_equal(result.mean.array[~inside], image.array[~inside])


def test_the_self_check_properties():
    check = SelfCheck("mirrored", (0.0, 0.0, 0.0), 100, 15.0, 0.7, 16.0, 0.75, 16.5, 0.76)
    assert check.behind and check.doubtful and check.best_fill == "unet"
    assert replace_psnr(check, prior_psnr=15.5).best_fill == "harmonic"
    assert replace_psnr(check, prior_psnr=None).best_fill == "harmonic"
    ahead = replace_psnr(check, psnr=16.5)
    assert not ahead.behind and ahead.doubtful  # above the fill but not by the margin
    fallen = replace_psnr(check, fallback="unet")
    assert "FALLBACK: the result is the learned smooth fill" in fallen.summary()


def replace_psnr(check, **changes):
    from dataclasses import replace

    return replace(check, **changes)
