"""The forecast's model error: a correction of the bootstrap's distribution, learned on simulated tuning series.

The bootstrap of the growth curve (:func:`tumorgen.biophysics.growth_ode.bootstrap_forecast`) knows how noisy the
series is, not how wrong the curve itself is. On simulated series the radial law's median runs high, with or
without radiotherapy: a tumor's visible radius slows as its front meets grey matter and the brain's boundaries,
where the law keeps its speed constant. The bootstrap's spread, from three points, is not the spread of the
errors either. The tumor probability map inherits both.

The correction, for a day after the latest scan (volume ``V``) whose bootstrap log-volumes have median ``m`` and
standard deviation ``s``::

    log V_day ~ Normal(log V + (1 + growth) · (m − log V) + s · (bias + shrink · d), (s · spread)²)

``bias``, ``shrink`` and ``spread`` are in units of the bootstrap's own spread, so they grow with the horizon as it
does (on the tuning series the error in these units is the same 60, 75 and 90 days ahead). ``growth`` scales the
forecast's growth itself: the faster the law says a tumor grows, the more it overshoots. ``d = log(largest observed
volume / V)`` is how far the tumor has shrunk from its largest (0 for a growing one): after a radiotherapy has
shrunk it, the regrowth that three points imply errs by more in the same direction (on the tuning series: too
high). Version 1 and 2 files (no growth or shrink term) read as ``growth`` and ``shrink`` 0.

The volume is not the only error: the regrowth has the default D and rho and no mass effect, so the true tumor's
boundary also lies elsewhere than the regrown one's at the same volume. The map is therefore blurred by a
Gaussian of ``blur_mm`` inside the brain (:func:`spread_map`): the mean of the map under a random shift of that
size.

``bias``, ``growth``, ``shrink``, ``spread`` and ``blur_mm`` are chosen together to minimise the tumor probability
map's Brier score on simulated tuning series, untreated and with radiotherapy, that no benchmark scores
(``Testing/benchmarks/fit_forecast_calibration.py``; the numbers are in docs/results/followup.md and in the bundled file's
``source``). They describe the simulator's tumors; ``recalibrate=False`` (``--no-recalibrate``) gives the
bootstrap's distribution and the unblurred map.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping

import numpy as np

from tumorgen.errors import InputError

#: Format tag and version of the calibration file (version 1 had no blur: it reads as blur 0; versions 1 and 2 had no
#: growth or shrink term: they read as 0).
FORMAT, VERSION = "tumorgen-forecast-calibration", 3
#: The bundled calibration.
BUNDLED = Path(__file__).with_name("forecast_calibration.json")
#: The largest blur a calibration may have (mm).
MAX_BLUR_MM = 20.0


@dataclass(frozen=True)
class ModelError:
    """The error of the true log-volume around the bootstrap's median: ``bias``, ``shrink`` (per unit of log shrink
    since the largest scan) and ``spread`` in units of its spread; ``growth`` scales the forecast's log growth."""

    bias: float = 0.0
    spread: float = 1.0
    growth: float = 0.0
    shrink: float = 0.0

    def __post_init__(self):
        if not all(math.isfinite(v) for v in (self.bias, self.spread, self.growth, self.shrink)) or self.spread <= 0:
            raise InputError(f"a model error needs a finite bias, growth and shrink and a positive spread, got bias {self.bias!r}, "
                             f"spread {self.spread!r}, growth {self.growth!r}, shrink {self.shrink!r}")
        if self.growth <= -1:
            raise InputError(f"a model error's growth term must be above -1 (a factor 1 + growth on the growth), got {self.growth!r}")

    def as_dict(self) -> dict:
        return {"bias": self.bias, "spread": self.spread, "growth": self.growth, "shrink": self.shrink}


@dataclass(frozen=True)
class Calibration:
    error: ModelError
    source: Mapping
    blur_mm: float = 0.0  # sigma of the map's Gaussian blur

    def __post_init__(self):
        if not (math.isfinite(self.blur_mm) and 0.0 <= self.blur_mm <= MAX_BLUR_MM):
            raise InputError(f"the map's blur must be 0-{MAX_BLUR_MM:g} mm, got {self.blur_mm!r}")

    def as_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, **self.error.as_dict(), "blur_mm": self.blur_mm, "source": dict(self.source)}


def read_calibration(path: str | Path) -> Calibration:
    """A calibration file (JSON), or a one-line :class:`InputError` naming what is wrong with it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"forecast calibration {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"forecast calibration {path} cannot be read: {error}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f"{path} is not a forecast calibration (format {FORMAT!r} expected)")
    if data.get("version") not in (1, 2, VERSION):
        raise InputError(f"{path} is a forecast calibration of version {data.get('version')!r}; this TumorGen reads versions 1-{VERSION}")
    try:
        bias, spread = float(data["bias"]), float(data["spread"])
        blur = float(data["blur_mm"]) if data["version"] >= 2 else 0.0
        growth, shrink = (float(data["growth"]), float(data["shrink"])) if data["version"] >= 3 else (0.0, 0.0)
    except (KeyError, TypeError, ValueError):
        needs = {1: "bias and spread", 2: "bias, spread and blur_mm"}.get(data["version"], "bias, spread, growth, shrink and blur_mm")
        raise InputError(f"{path}: the calibration needs a numeric {needs}") from None
    try:
        return Calibration(ModelError(bias, spread, growth, shrink), data.get("source") or {}, blur)
    except InputError as problem:
        raise InputError(f"{path}: {problem}") from None


@lru_cache(maxsize=1)
def bundled() -> Calibration:
    return read_calibration(BUNDLED)


def recalibrated(log_samples: np.ndarray, error: ModelError, probabilities, *, latest: float = 1.0, depth: float = 0.0) -> np.ndarray:
    """Volumes at ``probabilities`` (in (0, 1)) of the corrected distribution of one day's bootstrap log-volumes.

    ``latest``: the latest scan's volume, in the units of ``exp(log_samples)`` (the growth term scales the growth from
    it; 1 where the samples are log growth factors); ``depth``: the series' :func:`shrink_depth` (0: not shrunk)."""
    from scipy.stats import norm

    log_samples = np.asarray(log_samples, float)
    log_samples = log_samples[np.isfinite(log_samples)]  # a refit that overflowed says nothing about the spread
    if log_samples.size == 0:
        raise InputError("the forecast's bootstrap has no finite volume at the day: the growth curve explodes before it")
    m, s = float(np.median(log_samples)), float(np.std(log_samples))
    base = math.log(latest)
    centre = base + (1.0 + error.growth) * (m - base) + s * (error.bias + error.shrink * depth)
    z = norm.ppf(np.asarray(probabilities, float))
    return np.exp(centre + s * error.spread * z)


def shrink_depth(sizes) -> float:
    """``log(largest of sizes / the last)``: how far a series' tumor has shrunk from its largest scan (0 if it has not)."""
    sizes = np.asarray(sizes, float)
    return max(0.0, math.log(float(sizes.max()) / float(sizes[-1])))


#: The blur's Gaussian is cut this many sigmas out.
TRUNCATE = 3.0


def spread_map(probability: np.ndarray, domain: np.ndarray, blur_mm: float, spacing) -> np.ndarray:
    """``probability`` blurred by a Gaussian of ``blur_mm`` (sigma, mm) inside ``domain``, zero outside it; float32.
    ``blur_mm`` 0 only clears the outside. Each voxel gets the Gaussian-weighted mean of the map over the domain around
    it (normalised convolution), so nothing leaks out of the brain and a uniform map stays uniform up to its edge.

    The blurred map is the mean of the map shifted by a random offset drawn from that Gaussian: where the tumor will be,
    not only how large it will be, is uncertain (the regrowth has the default D and rho and no mass effect)."""
    from scipy.ndimage import gaussian_filter

    from tumorgen.inpainting.core import crop_box

    domain = np.asarray(domain, bool)
    probability = np.where(domain, np.asarray(probability, np.float32), np.float32(0.0))
    if blur_mm <= 0 or not probability.any():
        return probability
    sigma = [blur_mm / float(s) for s in spacing]
    # the work is confined to the map's support grown by twice the filter's reach: every voxel the blur reaches then has
    # its whole window of the domain inside the box, as on the whole grid
    box = crop_box(probability > 0, [2 * (int(TRUNCATE * g + 0.5) + 1) for g in sigma], 1, probability.shape)
    inside = domain[box].astype(np.float32)
    weight = gaussian_filter(inside, sigma, truncate=TRUNCATE)
    blurred = gaussian_filter(probability[box], sigma, truncate=TRUNCATE)
    out = np.zeros(probability.shape, np.float32)
    out[box] = np.where(domain[box], np.clip(blurred / np.maximum(weight, 1e-6), 0.0, 1.0), 0.0)
    return out


__all__ = ["BUNDLED", "Calibration", "ModelError", "bundled", "read_calibration", "recalibrated", "shrink_depth", "spread_map"]
