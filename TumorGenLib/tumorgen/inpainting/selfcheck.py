"""A self-check on known tissue: how well the same inpainting does on this scan where the answer is known.

A generated region cannot be scored against a truth nobody has. What can be
scored is the same method on the same scan, in a region of the same shape
whose voxels are known: the *probe*. :func:`probe_region` moves the mask's
shape onto known brain tissue (its mirror image across the brain's left–right
centre when that is free, the homologous tissue of the other hemisphere; else
the mask shifted by its own size plus the context along one axis), away from
the mask so that the probe's context holds no voided voxel. The probe is
voided, inpainted with the same model, settings and tissue maps (one healthy
sample), and scored against the voxels that were there by the BraTS
challenge's metrics; so is a classical fill of the probe (harmonic: Laplace's
equation with the surrounding tissue as boundary values, which scores like the
biharmonic fill at a fraction of its time). The harmonic fill scores about
1 dB below scikit-image's biharmonic fill (17.28 against 18.35 dB on the
fidelity benchmark's twelve masks) and takes a second where the biharmonic one
takes a minute, so a check where TumorGen is less than :data:`MARGIN_DB` above
the harmonic fill marks the result as doubtful: no better than the classical
fill. The learned fill (:mod:`tumorgen.inpainting.prior`) is scored on the
same probe; when TumorGen scores *below* the harmonic fill there
(:attr:`SelfCheck.behind`), ``fallback="auto"`` replaces the result by the
better of the two fills (:attr:`SelfCheck.best_fill`) and records it in
:attr:`SelfCheck.fallback`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

#: Least share of the moved mask that must fall on known brain tissue for a probe.
MIN_COVERAGE = 0.9
#: How far TumorGen must score above the harmonic fill on the probe: what the biharmonic fill adds over it.
MARGIN_DB = 1.0
FILL_NAMES = {"harmonic": "classical (harmonic) fill", "unet": "learned smooth fill"}


@dataclass(frozen=True)
class SelfCheck:
    """The scores of TumorGen and of the classical fill on the probe (PSNR dB and SSIM by the challenge's code)."""

    placement: str
    offset_mm: tuple[float, float, float]
    voxels: int
    psnr: float
    ssim: float
    classical_psnr: float
    classical_ssim: float
    #: The learned fill alone (:mod:`tumorgen.inpainting.prior`) on the same probe; None when not scored.
    prior_psnr: float | None = None
    prior_ssim: float | None = None
    #: What the result fell back to (``harmonic`` or ``unet``) because TumorGen scored behind the classical fill; "" if not.
    fallback: str = ""

    @property
    def doubtful(self) -> bool:
        """On known tissue of this scan TumorGen scored less than :data:`MARGIN_DB` above the harmonic fill."""
        return self.psnr < self.classical_psnr + MARGIN_DB

    @property
    def behind(self) -> bool:
        """TumorGen scored below the classical fill on the probe: the fallback's trigger."""
        return self.psnr < self.classical_psnr

    @property
    def best_fill(self) -> str:
        """The better of the harmonic and the learned fill on the probe."""
        return "unet" if self.prior_psnr is not None and self.prior_psnr > self.classical_psnr else "harmonic"

    def summary(self) -> str:
        verdict = (f"DOUBTFUL: not {MARGIN_DB:g} dB above the classical fill on known tissue of this scan" if self.doubtful
                   else "TumorGen ahead of the classical fill")
        learned = "" if self.prior_psnr is None else f", learned fill {self.prior_psnr:.2f} dB / {self.prior_ssim:.3f}"
        text = (f"self-check on known tissue ({self.placement}, {self.voxels} voxels): TumorGen {self.psnr:.2f} dB / SSIM "
                f"{self.ssim:.3f}, harmonic fill {self.classical_psnr:.2f} dB / {self.classical_ssim:.3f}{learned}: {verdict}")
        if self.fallback:
            text += f"; FALLBACK: the result is the {FILL_NAMES[self.fallback]}, which scored better there"
        return text

    def as_dict(self) -> dict:
        return {**asdict(self), "offset_mm": list(self.offset_mm), "doubtful": self.doubtful, "behind": self.behind,
                "summary": self.summary()}


def left_right_axis(direction: tuple[float, ...]) -> int:
    """The array axis that runs closest to the patient's left–right (LPS x) direction."""
    matrix = np.asarray(direction, float).reshape(3, 3)
    return int(np.argmax(np.abs(matrix[0])))


def probe_region(image: np.ndarray, mask: np.ndarray, direction, spacing, keep_clear=None,
                 margin: tuple[int, int, int] = (8, 8, 8)) -> tuple[np.ndarray, str, tuple[int, int, int]] | None:
    """A region of the mask's shape on known brain tissue, its placement and its shift in voxels; None when none fits.

    ``image``: the scan (the brain is its nonzero voxels outside ``mask``). ``keep_clear(probe)``, when given,
    returns the probe's crop box, which must hold no voxel of the mask; otherwise the probe must stay
    ``margin`` voxels away from the mask. Candidates in order: the mirror image, then shifts by the mask's
    size plus twice the margin along its longest axis, either way, then the others.
    """
    mask = np.asarray(mask, bool)
    brain = (np.asarray(image) > 0) & ~mask
    where = np.argwhere(mask)
    low, high = where.min(0), where.max(0) + 1
    extent = high - low
    candidates: list[tuple[str, list[int], int | None]] = []  # (placement, shift in voxels, axis flipped)
    axis = left_right_axis(direction)
    occupied = np.flatnonzero((brain | mask).any(axis=tuple(a for a in range(3) if a != axis)))
    centre = (occupied[0] + occupied[-1]) / 2.0
    shift = [0, 0, 0]
    shift[axis] = int(round(2 * centre - (high[axis] - 1))) - int(low[axis])
    candidates.append(("mirrored across the brain's left-right centre", shift, axis))
    for a in np.argsort(-extent):  # shifts along the mask's longest axes first
        for sign in (1, -1):
            step = [0, 0, 0]
            step[a] = int(sign * (extent[a] + 2 * margin[a]))
            candidates.append((f"shifted {abs(step[a]) * float(spacing[a]):.0f} mm along array axis {a}", step, None))
    clear = ndimage.binary_dilation(mask, iterations=max(margin)) if keep_clear is None else None
    for name, step, flip in candidates:  # the first that fits
        moved = _moved(mask, low, high, step, flip)
        if moved is None or not moved.any():
            continue
        coverage = float((moved & brain).sum()) / float(mask.sum())
        if coverage < MIN_COVERAGE:
            continue
        probe = moved & brain
        if keep_clear is not None:
            if mask[keep_clear(probe)].any():
                continue
        elif (probe & clear).any():
            continue
        return probe, name, tuple(step)
    return None


def _moved(mask: np.ndarray, low, high, shift, flip_axis: int | None = None) -> np.ndarray | None:
    """``mask`` shifted by ``shift`` voxels (and flipped along ``flip_axis`` inside its box); None if it leaves the grid."""
    new_low = np.asarray(low) + np.asarray(shift)
    new_high = np.asarray(high) + np.asarray(shift)
    if (new_low < 0).any() or (new_high > np.asarray(mask.shape)).any():
        return None
    block = mask[tuple(slice(lo, hi) for lo, hi in zip(low, high))]
    if flip_axis is not None:
        block = np.flip(block, flip_axis)
    out = np.zeros(mask.shape, bool)
    out[tuple(slice(lo, hi) for lo, hi in zip(new_low, new_high))] = block
    return out


def harmonic_fill(image: np.ndarray, region: np.ndarray, box) -> np.ndarray:
    """``image`` with ``region`` filled by the harmonic interpolation of its surroundings (solved on ``box``)."""
    from tumorgen.inpainting.postprocess import poisson_blend

    out = np.array(image, dtype=np.float32, copy=True)
    crop = out[box]
    out[box] = poisson_blend(np.zeros_like(crop), crop, region[box])
    return out


__all__ = ["MARGIN_DB", "MIN_COVERAGE", "SelfCheck", "harmonic_fill", "left_right_axis", "probe_region"]
