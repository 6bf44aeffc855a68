"""The forecast's model error: a correction of the bootstrap's distribution, learned on simulated tuning series.

The bootstrap of the growth curve (:func:`tumorgen.biophysics.growth_ode.bootstrap_forecast`) knows how noisy the
series is, not how wrong the curve itself is. On simulated series the radial law's median runs high, with or
without radiotherapy: a tumor's visible radius slows as its front meets grey matter and the brain's boundaries,
where the law keeps its speed constant. The bootstrap's spread, from three points, is not the spread of the
errors either. The tumor probability map inherits both.

The correction, for a day after the latest scan whose bootstrap log-volumes have median ``m`` and standard
deviation ``s``::

    log V ~ Normal(m + s · bias, (s · spread)²)

``bias`` and ``spread`` are in units of the bootstrap's own spread, so they grow with the horizon as it does (on
the tuning series the error in these units is the same 60, 75 and 90 days ahead). They are chosen to minimise
the tumor probability map's Brier score on simulated tuning series, untreated and with radiotherapy, that no
benchmark scores (``Testing/benchmarks/fit_forecast_calibration.py``; the numbers are in the README and in the
bundled file's ``source``). They describe the simulator's tumors; ``recalibrate=False`` (``--no-recalibrate``)
gives the bootstrap's distribution unchanged.
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

#: Format tag and version of the calibration file.
FORMAT, VERSION = "tumorgen-forecast-calibration", 1
#: The bundled calibration.
BUNDLED = Path(__file__).with_name("forecast_calibration.json")


@dataclass(frozen=True)
class ModelError:
    """The bias and spread of the true log-volume around the bootstrap's median, in units of its spread."""

    bias: float = 0.0
    spread: float = 1.0

    def __post_init__(self):
        if not (math.isfinite(self.bias) and math.isfinite(self.spread) and self.spread > 0):
            raise InputError(f"a model error needs a finite bias and a positive spread, got bias {self.bias!r}, "
                             f"spread {self.spread!r}")


@dataclass(frozen=True)
class Calibration:
    error: ModelError
    source: Mapping

    def as_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "bias": self.error.bias, "spread": self.error.spread, "source": dict(self.source)}


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
    if data.get("version") != VERSION:
        raise InputError(f"{path} is a forecast calibration of version {data.get('version')!r}; this TumorGen reads version {VERSION}")
    try:
        bias, spread = float(data["bias"]), float(data["spread"])
    except (KeyError, TypeError, ValueError):
        raise InputError(f"{path}: the calibration needs a numeric bias and spread") from None
    try:
        error = ModelError(bias, spread)
    except InputError as problem:
        raise InputError(f"{path}: {problem}") from None
    return Calibration(error, data.get("source") or {})


@lru_cache(maxsize=1)
def bundled() -> Calibration:
    return read_calibration(BUNDLED)


def recalibrated(log_samples: np.ndarray, error: ModelError, probabilities) -> np.ndarray:
    """Volumes at ``probabilities`` (in (0, 1)) of the corrected distribution of one day's bootstrap log-volumes."""
    from scipy.stats import norm

    log_samples = np.asarray(log_samples, float)
    log_samples = log_samples[np.isfinite(log_samples)]  # a refit that overflowed says nothing about the spread
    if log_samples.size == 0:
        raise InputError("the forecast's bootstrap has no finite volume at the day: the growth curve explodes before it")
    m, s = float(np.median(log_samples)), float(np.std(log_samples))
    z = norm.ppf(np.asarray(probabilities, float))
    return np.exp(m + s * (error.bias + error.spread * z))


__all__ = ["BUNDLED", "Calibration", "ModelError", "bundled", "read_calibration", "recalibrated"]
