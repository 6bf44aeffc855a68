"""Scans that differ from the training simulator the way real T1 scans do.

The simulator renders MNI152's population-average tissue maps, warped: smooth
folds, wide partial-volume zones and one intensity table. A real brain has
sharp sulci whose pattern no template knows, its own grey/white/CSF contrast,
a bias field, partial-volume blur and noise. Two tools bring the simulated
anatomy closer to that, for the fidelity benchmark's realistic cases and for
training the inpainting prior (:mod:`tumorgen.inpainting.prior`):

* :func:`sharpen_tissues`: individual folding. Band-limited random fields
  (σ ``detail_mm``) are added to the tissue classes' log-probabilities and the
  result is sharpened (``temperature`` below 1): where the template is unsure
  (the cortical ribbon, the sulci, the ventricles' edge) each voxel becomes one
  class or another in a random pattern about a gyrus wide, deep white matter
  stays white matter. The brain's outline and total tissue fraction are kept.
* :func:`render_t1`: a T1-like image from tissue maps with per-class
  intensities drawn independently (:class:`Contrast`, in the spirit of
  SynthSeg's contrast randomisation: any GM/WM ratio real scans show, not a
  global jitter), within-class texture, a multiplicative bias field,
  partial-volume blur, Rician noise and a gamma, scaled like BraTS (the
  brain's 0.5th–99.5th percentiles → [0, 1]).

Both work on any sub-volume (a training crop) as well as a whole brain.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class Contrast:
    """Per-class T1 intensities (relative to white matter's 1.0) and the imaging around them."""

    gm: float = 0.69
    csf: float = 0.19
    #: Within-class texture: standard deviation of a smooth (σ 1 mm) multiplicative field.
    texture: float = 0.03
    #: Bias-field amplitude (0.2 → intensities × 0.8…1.2).
    bias: float = 0.10
    #: Partial-volume blur (Gaussian σ, mm).
    blur_mm: float = 0.0
    #: Rician noise, standard deviation relative to white matter.
    noise: float = 0.025
    #: Intensities raised to this power inside the brain.
    gamma: float = 1.0

    def as_dict(self) -> dict:
        return asdict(self)


#: Ranges that :func:`random_contrast` draws from: GM/WM 0.45–0.88 and CSF/WM 0.05–0.45 span adult T1 scans
#: (MPRAGE to spin-echo, 1.5 T to 3 T), the rest the imaging real scans show after BraTS preprocessing.
RANGES = {"gm": (0.45, 0.88), "csf": (0.05, 0.45), "texture": (0.0, 0.08), "bias": (0.0, 0.40),
          "blur_mm": (0.0, 1.2), "noise": (0.0, 0.07), "gamma": (0.6, 1.5)}


def random_contrast(rng: np.random.Generator, *, anything: float = 0.0) -> Contrast:
    """A contrast drawn uniformly from :data:`RANGES`; with probability ``anything`` the classes' intensities are
    drawn independently of their usual order (SynthSeg's full randomisation)."""
    values = {k: float(rng.uniform(*r)) for k, r in RANGES.items()}
    if rng.random() < anything:
        values["gm"], values["csf"] = (float(v) for v in rng.uniform(0.05, 1.2, 2))
    return Contrast(**values)


def smooth_noise(shape, rng: np.random.Generator, sigma_vox) -> np.ndarray:
    """Gaussian noise smoothed by ``sigma_vox`` and rescaled to unit standard deviation (float32)."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma_vox, mode="reflect")
    return field / max(float(field.std()), 1e-6)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-3, 1 - 1e-3)
    return np.log(p / (1 - p))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30.0, 30.0)))


def sharpen_tissues(maps: np.ndarray, rng: np.random.Generator, spacing, *, detail_mm: float = 1.2,
                    strength: float = 1.5, sulci: float = 2.5, temperature: float = 0.4) -> np.ndarray:
    """``maps`` (CSF, GM, WM stacked, any grid) with individual, sharper folding; the brain's outline is kept.

    The white-matter fraction and the CSF share of the rest are moved, in log-odds, by two band-limited random
    fields (σ ``detail_mm``; ``strength`` and ``sulci`` log-odds per standard deviation) and sharpened (divided by
    ``temperature``): a voxel the template puts at 50 % becomes one class or the other, one it is sure of
    stays.
    """
    maps = np.asarray(maps, np.float32)
    total = maps.sum(0)
    inside = total > 1e-3
    share = maps / np.maximum(total, 1e-6)
    sigma = [detail_mm / float(s) for s in spacing]
    wm = _sigmoid((_logit(share[2]) + strength * smooth_noise(total.shape, rng, sigma)) / temperature)
    rest = np.clip(share[0] + share[1], 1e-6, None)
    csf = _sigmoid((_logit(share[0] / rest) + sulci * smooth_noise(total.shape, rng, sigma)) / temperature) * (1 - wm)
    out = np.stack([csf, 1.0 - wm - csf, wm]) * total
    return np.where(inside, out, maps).astype(np.float32)


def bias_field(shape, rng: np.random.Generator, amplitude: float, spacing, scale_mm: float = 60.0) -> np.ndarray:
    """A smooth multiplicative field 1 ± ``amplitude`` varying over about ``scale_mm``."""
    coarse = [max(2, int(np.ceil(n * s / scale_mm)) + 1) for n, s in zip(shape, spacing)]
    field = ndimage.zoom(rng.uniform(-1.0, 1.0, coarse).astype(np.float32), [n / c for n, c in zip(shape, coarse)], order=3,
                         mode="nearest", grid_mode=True)[: shape[0], : shape[1], : shape[2]]
    return (1.0 + amplitude * np.clip(field, -1.0, 1.0)).astype(np.float32)


def render_t1(maps: np.ndarray, contrast: Contrast, rng: np.random.Generator, spacing,
              brain: np.ndarray | None = None, normalise: bool = True) -> np.ndarray:
    """A T1-like image of ``maps`` (CSF, GM, WM) with ``contrast``; 0 outside the brain, [0, 1] when ``normalise``."""
    csf, gm, wm = (np.asarray(m, np.float32) for m in maps)
    brain = (csf + gm + wm > 0.5) if brain is None else np.asarray(brain, bool)
    signal = contrast.csf * csf + contrast.gm * gm + wm
    if contrast.texture > 0:
        signal = signal * (1.0 + contrast.texture * smooth_noise(signal.shape, rng, [1.0 / s for s in spacing]))
    signal = signal * bias_field(signal.shape, rng, contrast.bias, spacing)
    if contrast.blur_mm > 0:
        signal = ndimage.gaussian_filter(signal, [contrast.blur_mm / s for s in spacing])
    sigma = np.float32(contrast.noise)
    real = signal + rng.standard_normal(signal.shape, dtype=np.float32) * sigma
    imag = rng.standard_normal(signal.shape, dtype=np.float32) * sigma
    image = np.sqrt(real * real + imag * imag)
    image = np.where(brain, np.clip(image, 0.0, None) ** contrast.gamma, 0.0).astype(np.float32)
    if not normalise or not brain.any():
        return image
    lo, hi = np.percentile(image[brain], (0.5, 99.5))
    return np.where(brain, np.clip((image - lo) / max(float(hi - lo), 1e-6), 0.0, 1.0), 0.0).astype(np.float32)


__all__ = ["Contrast", "RANGES", "bias_field", "random_contrast", "render_t1", "sharpen_tissues", "smooth_noise"]
