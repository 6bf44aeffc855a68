"""Four MR contrasts from tissue and lesion compartments.

Every voxel is a mixture: tissue probabilities (CSF, GM, WM; partial volume at
their borders) for the part not taken by a lesion compartment, plus lesion
compartments with their own fractions (oedema, enhancing tumor, necrosis, a
resection cavity, a blood-product rim). The signal of a contrast is the
fraction-weighted mean of the compartments' intensities (table
:data:`INTENSITY`, relative units), times a smooth random bias field, with
Rician noise. Then BraTS-style preprocessing: skull-stripped (0 outside the
brain) and each contrast scaled so that its 0.5th–99.5th percentile range
inside the brain maps to [0, 1] (clipped).

On request (:attr:`ImagingOptions.reference`) each contrast also comes without
its noise, on the noisy image's intensity scale (key ``<contrast>-noisefree``):
the anatomy a model should reproduce. The noise is drawn either way, so the
noisy images do not change. With the default noise, the noise-free image
itself scores only 30–34 dB PSNR against the noisy one inside the brain
(30.8 dB t1n, 30.2 dB t2w on three 1 mm subjects): about the most a
reconstruction that drops the noise can score against the noisy image.

Relationships the table encodes (and the tests check): oedema bright on T2
and FLAIR and mildly darker than white matter on T1; the enhancing rim
brightest on t1c; necrosis dark on T1 and bright on T2; CSF the darkest
compartment on FLAIR and the brightest on T2; a resection cavity behaves
like CSF; blood products bright on T1 and dark on T2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import zoom

CONTRASTS = ("t1n", "t1c", "t2w", "t2f")

#: Relative intensity of each compartment per contrast (t1n, t1c, t2w, t2f).
INTENSITY: dict[str, tuple[float, float, float, float]] = {
    "csf": (0.15, 0.16, 1.00, 0.08),
    "gm": (0.55, 0.57, 0.58, 0.62),
    "wm": (0.80, 0.82, 0.36, 0.48),
    "edema": (0.50, 0.52, 0.82, 0.92),
    "enhancing": (0.58, 1.05, 0.68, 0.78),
    "necrosis": (0.22, 0.26, 0.92, 0.55),
    "cavity": (0.14, 0.15, 0.98, 0.10),
    "blood": (0.92, 0.95, 0.30, 0.55),
}
LESIONS = ("edema", "enhancing", "necrosis", "cavity", "blood")


@dataclass(frozen=True)
class ImagingOptions:
    #: Bias-field amplitude (0.1 → intensities × 0.9…1.1).
    bias: float = 0.10
    #: Rician noise: standard deviation relative to white matter's T1 signal.
    noise: float = 0.025
    #: Percentiles (inside the brain) mapped to 0 and 1.
    percentiles: tuple[float, float] = (0.5, 99.5)
    #: Random ± fraction applied to each table entry per subject (appearance variation).
    jitter: float = 0.05
    #: Also return each contrast without noise (``<contrast>-noisefree``), scaled like the noisy one.
    reference: bool = False


def _bias_field(shape, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """A smooth multiplicative field: cubic interpolation of 4³ random values to 16³, then linear to ``shape``."""
    coarse = rng.uniform(-1.0, 1.0, (4, 4, 4))
    mid = zoom(coarse, 4.0, order=3, mode="nearest", grid_mode=True)
    field = zoom(mid.astype(np.float32), np.asarray(shape) / 16.0, order=1, mode="nearest", grid_mode=True)[: shape[0], : shape[1], : shape[2]]
    return (1.0 + amplitude * np.clip(field, -1.0, 1.0)).astype(np.float32)


def render(
    tissues: tuple[np.ndarray, np.ndarray, np.ndarray],
    lesions: dict[str, np.ndarray],
    rng: np.random.Generator,
    options: ImagingOptions = ImagingOptions(),
) -> dict[str, np.ndarray]:
    """The four contrasts (float32, BraTS-normalised, 0 outside the brain).

    Args:
        tissues: CSF, GM, WM probability arrays.
        lesions: compartment name (see :data:`LESIONS`) → fraction array in [0, 1];
            their sum must not exceed 1 (the tissue keeps the rest).
        rng: random generator (table jitter, bias fields, noise).
    """
    csf, gm, wm = (np.asarray(t, dtype=np.float32) for t in tissues)
    shape = csf.shape
    unknown = set(lesions) - set(LESIONS)
    if unknown:
        raise ValueError(f"unknown lesion compartments {sorted(unknown)}; expected some of {LESIONS}")
    occupied = np.zeros(shape, np.float32)
    for fraction in lesions.values():
        occupied += fraction
    if occupied.max() > 1.0 + 1e-4:
        raise ValueError(f"lesion fractions sum to {occupied.max():.3f} > 1")
    tissue_total = csf + gm + wm
    brain_fraction = np.clip(np.maximum(tissue_total, occupied), 0.0, 1.0)
    brain = brain_fraction > 0.5
    # tissue probabilities renormalised over the part of the voxel the lesions leave
    scale = np.where(tissue_total > 1e-6, (1.0 - occupied) * brain_fraction / np.maximum(tissue_total, 1e-6), 0.0).astype(np.float32)
    jitter = {name: 1.0 + rng.uniform(-options.jitter, options.jitter, 4) for name in INTENSITY}
    # the scans are skull-stripped: compute inside the brain only
    inside = np.nonzero(brain)
    p_csf, p_gm, p_wm, k = csf[inside], gm[inside], wm[inside], scale[inside]
    parts = {name: fraction[inside] for name, fraction in lesions.items()}
    out = {}
    for c, contrast in enumerate(CONTRASTS):
        value = lambda name: np.float32(INTENSITY[name][c] * jitter[name][c])  # noqa: E731
        signal = k * (p_csf * value("csf") + p_gm * value("gm") + p_wm * value("wm"))
        for name, fraction in parts.items():
            signal += fraction * value(name)
        signal *= _bias_field(shape, rng, options.bias)[inside]
        sigma = np.float32(options.noise * INTENSITY["wm"][0])
        real = signal + rng.standard_normal(signal.size, dtype=np.float32) * sigma
        imag = rng.standard_normal(signal.size, dtype=np.float32) * sigma
        magnitude = np.sqrt(real * real + imag * imag)
        lo, hi = np.percentile(magnitude, options.percentiles)
        for key, values in ((contrast, magnitude), (f"{contrast}-noisefree", signal)):
            if key == contrast or options.reference:
                image = np.zeros(shape, np.float32)
                image[inside] = np.clip((values - lo) / max(float(hi - lo), 1e-6), 0.0, 1.0)
                out[key] = image
    return out


def brats_normalise(image: np.ndarray, brain: np.ndarray, percentiles=(0.5, 99.5)) -> np.ndarray:
    """Skull-strip (0 outside ``brain``) and map the brain's percentile range to [0, 1], clipped."""
    values = image[brain]
    if values.size == 0:
        return np.zeros_like(image, dtype=np.float32)
    lo, hi = np.percentile(values, percentiles)
    scaled = np.clip((image - lo) / max(float(hi - lo), 1e-6), 0.0, 1.0)
    return np.where(brain, scaled, 0.0).astype(np.float32)
