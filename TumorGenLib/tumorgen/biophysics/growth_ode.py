r"""Tumor-size growth ODE with radiotherapy: closed form, fit and bootstrap forecast.

The compartmental model of the mechanistic-learning papers (``papers/001``,
``papers/002``) forecasts a scalar tumor size (volume in cm³, area in mm², any
positive unit: the model is scale-free) from a few longitudinal measurements.

Model
-----
Time ``t`` is in **days** on any axis (days since diagnosis, since the first
scan, ...). Before the radiotherapy (RT) start :math:`t_{RT}`, or without RT,
the tumor grows exponentially:

.. math::  S(t) = S_0\,e^{\lambda (t - t_0)}, \qquad t \le t_{RT}

At :math:`t_{RT}` the tumor of size :math:`S_{RT} = S_0 e^{\lambda (t_{RT}-t_0)}`
splits into a surviving compartment :math:`A_l` (fraction :math:`1-\alpha`) and
a lethally damaged, dying compartment :math:`A_d` (fraction :math:`\alpha`):

.. math::
    \frac{dA_l}{dt} = \lambda A_l, \qquad
    \frac{dA_d}{dt} = \begin{cases} 0 & t_{RT} < t \le t_{RT}+\tau \\
                                    -k A_d & t > t_{RT}+\tau \end{cases}, \qquad
    A_l(t_{RT}) = (1-\alpha) S_{RT},\ A_d(t_{RT}) = \alpha S_{RT}

and the observed size is :math:`S = A_l + A_d`. The closed-form solution, for
:math:`t > t_{RT}`, is

.. math::
    S(t) = S_{RT}\left[(1-\alpha)\,e^{\lambda (t-t_{RT})}
           + \alpha\,e^{-k \max(0,\ t-t_{RT}-\tau)}\right]

It is continuous at :math:`t_{RT}` and at :math:`t_{RT}+\tau`. It is evaluated
in log space (``logaddexp``), so long horizons do not overflow.

========== =========== =====================================================
parameter   unit        meaning
========== =========== =====================================================
``s0``      size        size at the reference day ``t0`` (the fit uses the
                        first measurement's day)
``lam``     1/day       net proliferation rate λ (doubling time ln2/λ)
``alpha``   1           fraction of the tumor lethally hit by RT, in [0, 1]
``tau``     day         delay τ before the dying compartment starts to clear
``k``       1/day       clearance rate of the dying compartment (half-life ln2/k)
``rt_start`` day        :math:`t_{RT}`; ``None`` means no RT (plain exponential)
========== =========== =====================================================

Fit
---
:func:`fit_growth` minimises :math:`\sum_i [\log y_i - \log S(t_i)]^2` with
bounded least squares (:func:`scipy.optimize.least_squares`, trust-region
reflective) from a small grid of starting points, keeping the best. The **log
scale** is chosen because size measurements carry multiplicative error (a
segmentation is off by a few percent of the tumor, not by a fixed amount),
sizes span orders of magnitude over a course, and it keeps every bootstrap
sample positive. ``r2`` is therefore reported on the log scale (``r2_size``
gives the ordinary R² on the sizes themselves).

Which parameters are free depends on what the data can identify:

* no RT, or only two measurements: the exponential ``(s0, lam)`` only; the RT
  parameters are *ignored* (``alpha = 0``: with two points the net growth
  between them is all the data say, so the forecast is the trend between them);
* RT and at least 3 measurements: ``(s0, lam, alpha)``, with ``tau`` and ``k``
  fixed at :data:`DEFAULT_TAU` and :data:`DEFAULT_K`;
* RT, at least :data:`MIN_POINTS_AFTER_RT_FOR_CLEARANCE` measurements after
  :math:`t_{RT}` and at least one residual degree of freedom: all five.

``fixed={"tau": 10.0}`` (or ``alpha``, ``k``) fixes a parameter in any case.
Bounds: ``lam`` in ±0.5/day, ``alpha`` in [0, 1], ``tau`` in [0, last day −
t_RT] (a longer delay would leave ``k`` unobserved), ``k`` in [1e-4, 1]/day,
``s0`` within a factor e⁴ of the measured range.

Bootstrap
---------
:func:`bootstrap_forecast` uses a **residual bootstrap on the log scale**: the
log residuals of the fit are centred, inflated by :math:`\sqrt{n/(n-p)}` (they
are smaller than the true errors because the fit absorbed ``p`` degrees of
freedom), resampled with replacement and added to the fitted log curve; each
synthetic series is refitted with the same free parameters and the refits'
predictions give the median and the percentile interval per forecast day.
Residuals rather than whole measurements (pairs) are resampled because with 3–8
time points a pairs resample routinely drops all pre- or post-RT points and
makes the model unidentifiable; it also keeps the design (the scan days) fixed,
as it is in reality. When the fit leaves (almost) no residual information (e.g.
two points, or ``n = p``), or the residual spread is below ``min_noise``, the
resampled residuals are replaced by Gaussian log residuals with standard
deviation ``min_noise`` (default 5 %, a typical volumetric measurement error)
so that the interval is never spuriously narrow. The interval is a confidence
band for the *tumor size curve*, not a prediction interval for a new noisy
measurement. Given a seed, the result is deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
from scipy.optimize import least_squares

from tumorgen.errors import InputError

#: Default delay τ (days) before the RT-damaged compartment starts to clear,
#: used when the data cannot identify it. Radiological shrinkage typically
#: starts within the first weeks of a fractionated course.
DEFAULT_TAU = 7.0
#: Default clearance rate k (1/day) of the dying compartment: a two-week half-life.
DEFAULT_K = math.log(2.0) / 14.0
#: Measurements after the RT start needed before ``tau`` and ``k`` are fitted.
MIN_POINTS_AFTER_RT_FOR_CLEARANCE = 4
#: Bounds of the growth rate λ (1/day): a doubling or halving faster than 1.4 days is not a tumor.
LAMBDA_BOUND = 0.5
#: Bounds of the clearance rate k (1/day).
K_BOUNDS = (1e-4, 1.0)
#: Default floor (log scale, ~5 %) on the measurement noise the bootstrap assumes.
DEFAULT_MIN_NOISE = 0.05

PARAMETERS = ("s0", "lam", "alpha", "tau", "k")
_FIXABLE = ("alpha", "tau", "k")


# ----------------------------------------------------------------------------- model


def log_growth_curve(
    days: np.ndarray | Sequence[float] | float,
    s0: float,
    lam: float,
    alpha: float = 0.0,
    tau: float = DEFAULT_TAU,
    k: float = DEFAULT_K,
    rt_start: float | None = None,
    t0: float = 0.0,
    law: str = "exponential",
) -> np.ndarray:
    """``log S(t)`` of the model (see the module docstring); vectorised over ``days``."""
    return _log_curve(np.asarray(days, dtype=float), math.log(s0), lam, alpha, tau, k, rt_start, t0, _check_law(law))


def growth_curve(
    days: np.ndarray | Sequence[float] | float,
    s0: float,
    lam: float,
    alpha: float = 0.0,
    tau: float = DEFAULT_TAU,
    k: float = DEFAULT_K,
    rt_start: float | None = None,
    t0: float = 0.0,
    law: str = "exponential",
) -> np.ndarray:
    """Tumor size ``S(t) = A_l(t) + A_d(t)`` at ``days`` (closed form, vectorised).

    Args:
        days: days at which to evaluate (any shape).
        s0: size at day ``t0`` (any positive unit; the result has the same unit).
        lam: growth rate λ in 1/day.
        alpha: fraction lethally damaged by RT, in [0, 1].
        tau: delay in days before the damaged fraction starts to clear.
        k: clearance rate in 1/day.
        rt_start: RT start day; ``None`` for no RT (then ``s0·exp(lam·(t - t0))``).
        t0: the day at which the size is ``s0`` (before or at ``rt_start``).
        law: ``exponential`` (``S ∝ e^{λt}``) or ``radial`` (``S ∝ (1 + λt)³``: the radius grows linearly, as a
            Fisher–Kolmogorov front does; λ is then the radial speed over the radius at ``t0``). Radial with RT: the
            survivors' radius starts at ``(1-α)^(1/3)`` of the tumor's at ``rt_start`` and grows at the untreated
            front's speed, ``A_l = S_RT·[(1-α)^(1/3) + λ'(t - t_RT)]³`` with ``λ' = λ / (1 + λ(t_RT - t0))``: killing a
            fraction of the cells sets a Fisher–Kolmogorov front back but does not slow it.

    Returns:
        An array of sizes with the shape of ``days``.
    """
    with np.errstate(over="ignore"):
        return np.exp(log_growth_curve(days, s0, lam, alpha, tau, k, rt_start, t0, law))


#: The untreated growth laws: exponential (papers 001/002) and radial (a linearly growing radius).
LAWS = ("exponential", "radial")


def _check_law(law: str) -> str:
    if law not in LAWS:
        raise InputError(f"growth law must be one of {', '.join(LAWS)}, got {law!r}")
    return law


def _log_growth(dt, rate: float, law: str):
    """log of the untreated growth factor over ``dt`` days: ``rate·dt`` (exponential) or ``3·log(1 + rate·dt)`` (radial)."""
    if law == "exponential":
        return rate * dt
    return 3.0 * np.log(np.maximum(1.0 + rate * np.asarray(dt, dtype=float), 1e-12))


def _log_curve(t: np.ndarray, log_s0: float, lam: float, alpha: float, tau: float, k: float, rt_start: float | None, t0: float,
               law: str = "exponential") -> np.ndarray:
    pre = log_s0 + _log_growth(t - t0, lam, law)
    if rt_start is None:
        return pre
    dt = t - rt_start
    with np.errstate(divide="ignore"):  # log(0) = -inf for alpha = 0 or 1 is what logaddexp wants
        surviving = math.log1p(-alpha) if alpha < 1.0 else -math.inf
        dying = math.log(alpha) if alpha > 0.0 else -math.inf
    at_rt = log_s0 + _log_growth(rt_start - t0, lam, law)
    if law == "exponential":
        grown = surviving + _log_growth(np.maximum(dt, 0.0), lam, law)
    else:  # radial: the survivors' radius starts at (1-α)^(1/3) of the tumor's and grows at the untreated front's speed
        rate = lam / max(1.0 + lam * (rt_start - t0), 1e-12)  # that speed over the radius at the RT start
        with np.errstate(divide="ignore"):
            grown = 3.0 * np.log(np.maximum(math.exp(surviving / 3.0) + rate * np.maximum(dt, 0.0), 0.0))
    post = at_rt + np.logaddexp(grown, dying - k * np.maximum(dt - tau, 0.0))
    return np.where(dt > 0.0, post, pre)


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class GrowthFit:
    """A fitted growth curve. Sizes are in the unit of the input, days as given.

    ``residuals`` are on the log scale (``log size - log fitted``); ``r2`` is
    the coefficient of determination on the log scale (what the fit
    minimises), ``r2_size`` the one on the sizes. Both are ``nan`` when the
    measured sizes are all equal.
    """

    s0: float
    lam: float
    alpha: float
    tau: float
    k: float
    rt_start: float | None
    t0: float
    model: str  # "exponential" or "radiotherapy"
    free: tuple[str, ...]
    days: np.ndarray = field(repr=False)
    sizes: np.ndarray = field(repr=False)
    fitted: np.ndarray = field(repr=False)
    residuals: np.ndarray = field(repr=False)
    r2: float = math.nan
    r2_size: float = math.nan
    law: str = "exponential"

    def predict(self, days: np.ndarray | Sequence[float] | float) -> np.ndarray:
        """Predicted sizes at ``days`` (any shape)."""
        return growth_curve(days, self.s0, self.lam, self.alpha, self.tau, self.k, self._rt(), self.t0, self.law)

    def _rt(self) -> float | None:
        return self.rt_start if self.model == "radiotherapy" else None

    @property
    def n_points(self) -> int:
        return int(self.days.size)

    @property
    def rmse_log(self) -> float:
        """Root-mean-square log residual (≈ the relative error of the fit)."""
        return float(np.sqrt(np.mean(self.residuals**2)))

    @property
    def doubling_time(self) -> float:
        """ln2/λ in days (negative: halving time; inf when λ = 0)."""
        return math.log(2.0) / self.lam if self.lam != 0 else math.inf

    def parameters(self) -> dict[str, float | None]:
        """The model parameters by name (``lam`` as ``lambda``), ``None`` where the model has no RT."""
        rt = self.model == "radiotherapy"
        return {
            "s0": self.s0,
            "t0": self.t0,
            "lambda": self.lam,
            "alpha": self.alpha if rt else None,
            "tau": self.tau if rt else None,
            "k": self.k if rt else None,
            "rt_start": self.rt_start,
        }

    def to_dict(self) -> dict:
        """JSON-ready summary: model, parameters, which were fitted, R², residuals."""
        return {
            "model": self.model,
            "law": self.law,
            "parameters": self.parameters(),
            "free": list(self.free),
            "units": {"s0": "size unit of the input", "t0": "day", "lambda": "1/day", "alpha": "fraction",
                      "tau": "day", "k": "1/day", "rt_start": "day"},
            "doubling_time_days": self.doubling_time,
            "r2": self.r2,
            "r2_size": self.r2_size,
            "rmse_log": self.rmse_log,
            "n_points": self.n_points,
            "residuals_log": self.residuals.tolist(),
        }

    def summary(self) -> str:
        """One line for a terminal."""
        fixed = [p for p in ("alpha", "tau", "k") if p not in self.free]
        text = f"{self.model} fit of {self.n_points} points: S0={self.s0:.4g} at day {self.t0:g}, lambda={self.lam:.4g}/day"
        if self.model == "radiotherapy":
            text += f", alpha={self.alpha:.3g}, tau={self.tau:.3g} d, k={self.k:.3g}/day, RT from day {self.rt_start:g}"
            if fixed:
                text += f" ({', '.join(fixed)} fixed)"
        elif self.rt_start is not None:
            text += f" (RT from day {self.rt_start:g} not modelled: too few points)"
        return text + f"; R2={self.r2:.3f} (log), RMSE={100 * self.rmse_log:.1f}%"


@dataclass(frozen=True)
class Forecast:
    """Bootstrap forecast: per day the median and the ``interval`` percentile band.

    ``point`` is the prediction of the fit to the measured data; ``samples``
    (``n_boot`` × days) holds every bootstrap refit's prediction, the raw
    material of a growth probability map.
    """

    days: np.ndarray
    median: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    point: np.ndarray
    interval: float
    n_boot: int
    seed: int | None
    fit: GrowthFit
    samples: np.ndarray = field(repr=False)
    noise_model: str = "residuals"  # or "gaussian-floor"

    def rows(self) -> list[dict[str, float]]:
        return [
            {"day": float(d), "median": float(m), "lower": float(lo), "upper": float(hi)}
            for d, m, lo, hi in zip(self.days, self.median, self.lower, self.upper)
        ]


# ----------------------------------------------------------------------------- validation


def _as_vector(values, name: str) -> np.ndarray:
    if isinstance(values, (str, bytes)):
        raise InputError(f"{name} must be numbers, got a string")
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be numbers") from None
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1:
        raise InputError(f"{name} must be a 1-D list of numbers, got shape {array.shape}")
    return array


def check_series(days, sizes, rt_start: float | None = None) -> tuple[np.ndarray, np.ndarray, float | None]:
    """Validate a measured series; returns float arrays and ``rt_start`` (float or None).

    Raises InputError (one line) for: fewer than 2 points, length mismatch,
    NaN/inf, non-positive sizes, days not strictly increasing (unsorted or
    duplicated), an RT start that is not finite or not within
    ``[first day, last day)`` (the fit needs a measurement at or before the RT
    start to anchor the untreated size and one after it to see the response).
    """
    t = _as_vector(days, "days")
    y = _as_vector(sizes, "sizes")
    if t.size != y.size:
        raise InputError(f"days and sizes have different lengths ({t.size} vs {y.size})")
    if t.size < 2:
        raise InputError(f"need at least 2 measurements to fit a growth curve, got {t.size}")
    for name, values in (("day", t), ("size", y)):
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise InputError(f"{name} of measurement {bad[0] + 1} is {values[bad[0]]:g}; every {name} must be a finite number")
    bad = np.flatnonzero(y <= 0)
    if bad.size:
        raise InputError(f"size at day {t[bad[0]]:g} is {y[bad[0]]:g}; sizes must be positive")
    steps = np.diff(t)
    if np.any(steps == 0):
        i = int(np.flatnonzero(steps == 0)[0])
        raise InputError(f"day {t[i]:g} appears more than once; days must be distinct")
    if np.any(steps < 0):
        i = int(np.flatnonzero(steps < 0)[0])
        raise InputError(f"days must be in increasing order: day {t[i + 1]:g} comes after day {t[i]:g}")
    if rt_start is not None:
        try:
            rt = float(rt_start)
        except (TypeError, ValueError):
            raise InputError(f"rt_start must be a number (a day), got {rt_start!r}") from None
        if not math.isfinite(rt):
            raise InputError(f"rt_start must be a finite day, got {rt:g}")
        if rt < t[0]:
            raise InputError(f"rt_start {rt:g} is before the first measurement (day {t[0]:g}); "
                             "the fit needs a measurement at or before the RT start")
        if rt >= t[-1]:
            raise InputError(f"rt_start {rt:g} is not before the last measurement (day {t[-1]:g}); "
                             "the fit needs a measurement after the RT start")
        rt_start = rt
    return t, y, rt_start


def _check_fixed(fixed: Mapping[str, float] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, value in (fixed or {}).items():
        if name not in _FIXABLE:
            raise InputError(f"cannot fix {name!r}; fixable parameters are {', '.join(_FIXABLE)}")
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise InputError(f"fixed {name} must be a number, got {value!r}") from None
        ok = {"alpha": 0.0 <= value <= 1.0, "tau": 0.0 <= value < math.inf, "k": 0.0 <= value < math.inf}[name]
        if not ok:
            allowed = {"alpha": "in [0, 1]", "tau": "a finite day count >= 0", "k": "a finite rate >= 0"}[name]
            raise InputError(f"fixed {name} must be {allowed}, got {value:g}")
        out[name] = value
    return out


# ----------------------------------------------------------------------------- fit


class _Problem:
    """The least-squares problem for one design (days, RT start, free set)."""

    def __init__(self, t: np.ndarray, y_log_range: tuple[float, float], rt_start: float | None, free: tuple[str, ...], fixed: dict[str, float],
                 law: str = "exponential"):
        self.law = law
        self.t = t
        self.t0 = float(t[0])
        self.rt_start = rt_start
        self.free = free
        self.fixed = fixed
        lo_y, hi_y = y_log_range
        span_after = float(t[-1] - rt_start) if rt_start is not None else 0.0
        bounds = {
            "s0": (lo_y - 4.0, hi_y + 4.0),  # log s0
            "lam": (-LAMBDA_BOUND, LAMBDA_BOUND),
            "alpha": (0.0, 1.0),
            "tau": (0.0, max(span_after, 1e-6)),
            "k": K_BOUNDS,
        }
        self.lower = np.array([bounds[p][0] for p in free])
        self.upper = np.array([bounds[p][1] for p in free])
        scale = {"s0": 1.0, "lam": 0.01, "alpha": 0.1, "tau": 5.0, "k": 0.02}
        self.x_scale = np.array([scale[p] for p in free])

    def unpack(self, x: np.ndarray) -> dict[str, float]:
        values = {"alpha": 0.0, "tau": DEFAULT_TAU, "k": DEFAULT_K}
        values.update(self.fixed)
        values.update(zip(self.free, map(float, x)))
        return values

    def log_model(self, x: np.ndarray, t: np.ndarray | None = None) -> np.ndarray:
        v = self.unpack(x)
        rt = self.rt_start if self._rt_modelled else None
        return _log_curve(self.t if t is None else t, v["s0"], v["lam"], v["alpha"], v["tau"], v["k"], rt, self.t0, self.law)

    @property
    def _rt_modelled(self) -> bool:
        return self.rt_start is not None and ("alpha" in self.free or "alpha" in self.fixed)

    def solve(self, log_y: np.ndarray, starts: Iterable[np.ndarray]) -> np.ndarray:
        if not self._rt_modelled and self.law == "exponential":
            return self._solve_exponential(log_y)
        best_x, best_cost = None, math.inf
        for x0 in starts:
            x0 = np.clip(x0, self.lower, self.upper)
            result = least_squares(
                lambda x: self.log_model(x) - log_y,
                x0,
                bounds=(self.lower, self.upper),
                x_scale=self.x_scale,
                method="trf",
                xtol=1e-10,
                ftol=1e-10,
                gtol=1e-10,
                max_nfev=400,
            )
            if np.isfinite(result.cost) and result.cost < best_cost - 1e-14:
                best_x, best_cost = result.x, result.cost
        if best_x is None:  # cannot happen with finite data, but never return garbage
            raise InputError("the growth fit failed to converge from every starting point")
        return best_x

    def _solve_exponential(self, log_y: np.ndarray) -> np.ndarray:
        # Linear least squares on the log scale is exact; clip λ to the bounds like the general fit.
        dt = self.t - self.t0
        design = np.column_stack([np.ones_like(dt), dt])
        (log_s0, lam), *_ = np.linalg.lstsq(design, log_y, rcond=None)
        if not -LAMBDA_BOUND <= lam <= LAMBDA_BOUND:
            lam = float(np.clip(lam, -LAMBDA_BOUND, LAMBDA_BOUND))
            log_s0 = float(np.mean(log_y - lam * dt))
        return np.array([log_s0, lam])


def _choose_free(n: int, n_after: int, rt_start: float | None, fixed: dict[str, float]) -> tuple[str, ...]:
    if rt_start is None or n < 3:
        return ("s0", "lam")
    free = ["s0", "lam"]
    if "alpha" not in fixed:
        free.append("alpha")
    clearance = [p for p in ("tau", "k") if p not in fixed]
    if n_after >= MIN_POINTS_AFTER_RT_FOR_CLEARANCE and n - len(free) - len(clearance) >= 1:
        free += clearance
    return tuple(free)


def _initial_guesses(t: np.ndarray, log_y: np.ndarray, rt_start: float | None, free: tuple[str, ...],
                     law: str = "exponential") -> list[np.ndarray]:
    """A small grid of starts: λ from the pre-RT slope and the late slope, a few α, τ, k."""
    slopes = []
    before = t <= rt_start if rt_start is not None else np.ones_like(t, dtype=bool)
    if before.sum() >= 2:
        slopes.append(np.polyfit(t[before] - t[0], log_y[before], 1)[0])
    slopes.append((log_y[-1] - log_y[-2]) / (t[-1] - t[-2]))
    slopes.append(0.01)
    if law == "radial":  # d log S/dt = 3λ at the start
        slopes = [s / 3.0 for s in slopes]
    lam_starts = [float(np.clip(s, -0.9 * LAMBDA_BOUND, 0.9 * LAMBDA_BOUND)) for s in slopes]
    span_after = float(t[-1] - rt_start) if rt_start is not None else 0.0
    grids = {
        "s0": [float(log_y[0])],
        "lam": list(dict.fromkeys(round(s, 12) for s in lam_starts)),
        "alpha": [0.3, 0.7, 0.95],
        "tau": sorted({min(DEFAULT_TAU, 0.5 * span_after), 0.25 * span_after}),
        "k": [DEFAULT_K, 0.2],
    }
    starts = [np.array([])]
    for name in free:
        starts = [np.append(s, v) for s in starts for v in grids[name]]
    return starts


def fit_growth(
    days: Sequence[float] | np.ndarray,
    sizes: Sequence[float] | np.ndarray,
    rt_start: float | None = None,
    *,
    fixed: Mapping[str, float] | None = None,
    law: str = "exponential",
) -> GrowthFit:
    """Fit the growth model to measured sizes by bounded least squares on log sizes.

    Args:
        days: measurement days, strictly increasing.
        sizes: positive tumor sizes (any unit) at those days.
        rt_start: the RT start day, in ``[days[0], days[-1])``; ``None`` for no RT.
        fixed: parameters to hold fixed (``alpha``, ``tau``, ``k``); otherwise
            ``tau`` and ``k`` default to :data:`DEFAULT_TAU` and :data:`DEFAULT_K`
            when the data cannot identify them (see the module docstring).
        law: the untreated growth law, ``exponential`` or ``radial`` (see :func:`growth_curve`).

    Returns:
        A :class:`GrowthFit` whose ``t0`` is ``days[0]``.

    Raises:
        InputError: a bad series (see :func:`check_series`) or a bad ``fixed``.
    """
    t, y, rt = check_series(days, sizes, rt_start)
    fixed = _check_fixed(fixed)
    problem = _make_problem(t, y, rt, fixed, _check_law(law))
    log_y = np.log(y)
    x = problem.solve(log_y, _initial_guesses(t, log_y, rt, problem.free, problem.law))
    return _make_fit(problem, x, y)


def _make_problem(t: np.ndarray, y: np.ndarray, rt: float | None, fixed: dict[str, float], law: str = "exponential") -> _Problem:
    free = _choose_free(t.size, int(np.sum(t > rt)) if rt is not None else 0, rt, fixed)
    # Without RT, or with fewer than 3 points, the RT response is ignored (alpha = 0), whatever was fixed.
    problem_fixed = fixed if rt is not None and t.size >= 3 else {}
    log_y = np.log(y)
    return _Problem(t, (float(log_y.min()), float(log_y.max())), rt, free, problem_fixed, law)


def _make_fit(problem: _Problem, x: np.ndarray, y: np.ndarray) -> GrowthFit:
    values = problem.unpack(x)
    log_y = np.log(y)
    log_fit = problem.log_model(x)
    residuals = log_y - log_fit
    fitted = np.exp(log_fit)
    return GrowthFit(
        s0=math.exp(values["s0"]),
        lam=values["lam"],
        alpha=values["alpha"] if problem._rt_modelled else 0.0,
        tau=values["tau"],
        k=values["k"],
        rt_start=problem.rt_start,
        t0=problem.t0,
        model="radiotherapy" if problem._rt_modelled else "exponential",
        free=problem.free,
        days=problem.t.copy(),
        sizes=y.copy(),
        fitted=fitted,
        residuals=residuals,
        r2=_r2(log_y, log_fit),
        r2_size=_r2(y, fitted),
        law=problem.law,
    )


def _r2(observed: np.ndarray, predicted: np.ndarray) -> float:
    total = float(np.sum((observed - observed.mean()) ** 2))
    if total == 0.0:
        return math.nan
    return 1.0 - float(np.sum((observed - predicted) ** 2)) / total


# ----------------------------------------------------------------------------- bootstrap


def bootstrap_forecast(
    days: Sequence[float] | np.ndarray,
    sizes: Sequence[float] | np.ndarray,
    rt_start: float | None,
    forecast_days: Sequence[float] | np.ndarray,
    n_boot: int = 200,
    seed: int | None = 0,
    interval: float = 0.9,
    *,
    fixed: Mapping[str, float] | None = None,
    min_noise: float = DEFAULT_MIN_NOISE,
    progress: Callable[[int, int], None] | None = None,
    law: str = "exponential",
) -> Forecast:
    """Forecast tumor size with a residual bootstrap on the log scale.

    Args:
        days: as for :func:`fit_growth`.
        sizes: as for :func:`fit_growth`.
        rt_start: as for :func:`fit_growth`.
        fixed: as for :func:`fit_growth`.
        forecast_days: days to forecast (not before the first measurement).
        n_boot: bootstrap refits (at least 10).
        seed: seed of the random generator; the same seed gives the same result.
        interval: nominal coverage of the percentile band, in (0, 1).
        min_noise: floor (log scale) on the noise the bootstrap assumes; see the
            module docstring. 0 disables it (except when no residual degree of
            freedom is left, where nothing else can be resampled).
        progress: called as ``progress(done, n_boot)`` after each refit.
        law: the untreated growth law (:func:`growth_curve`).

    Returns:
        A :class:`Forecast`.
    """
    t, y, rt = check_series(days, sizes, rt_start)
    fixed = _check_fixed(fixed)
    horizon = _as_vector(forecast_days, "forecast days")
    if horizon.size == 0:
        raise InputError("no forecast days given")
    bad = np.flatnonzero(~np.isfinite(horizon))
    if bad.size:
        raise InputError(f"forecast day {bad[0] + 1} is {horizon[bad[0]]:g}; forecast days must be finite")
    if horizon.min() < t[0]:
        raise InputError(f"forecast day {horizon.min():g} is before the first measurement (day {t[0]:g})")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 10:
        raise InputError(f"n_boot must be an integer >= 10, got {n_boot!r}")
    try:
        interval = float(interval)
    except (TypeError, ValueError):
        raise InputError(f"interval must be a number in (0, 1), got {interval!r}") from None
    if not 0.0 < interval < 1.0:
        raise InputError(f"interval must be between 0 and 1 (e.g. 0.9 for 90 %), got {interval:g}")
    if not (math.isfinite(min_noise) and min_noise >= 0):
        raise InputError(f"min_noise must be a finite number >= 0, got {min_noise:g}")

    problem = _make_problem(t, y, rt, fixed, _check_law(law))
    log_y = np.log(y)
    x_hat = problem.solve(log_y, _initial_guesses(t, log_y, rt, problem.free, problem.law))
    fit = _make_fit(problem, x_hat, y)
    log_fit = problem.log_model(x_hat)

    n, p = t.size, len(problem.free)
    dof = n - p
    residuals = fit.residuals
    sigma = math.sqrt(float(np.sum(residuals**2)) / dof) if dof > 0 else 0.0
    rng = np.random.default_rng(seed)
    if dof > 0 and sigma >= max(min_noise, 1e-12):
        pool = (residuals - residuals.mean()) * math.sqrt(n / dof)
        draws = pool[rng.integers(0, n, size=(n_boot, n))]
        noise_model = "residuals"
    else:
        draws = rng.normal(0.0, max(min_noise, 1e-12), size=(n_boot, n))
        noise_model = "gaussian-floor"

    # Refits start from the fit (the synthetic series are close to it) and from
    # two spread-out starts that guard against a refit stuck in a poor local minimum.
    extra = _initial_guesses(t, log_y, rt, problem.free, problem.law)
    extra = [extra[0], extra[-1]] if len(extra) > 1 else []
    samples = np.empty((n_boot, horizon.size))
    for b in range(n_boot):
        x_b = problem.solve(log_fit + draws[b], [x_hat, *extra])
        samples[b] = problem.log_model(x_b, horizon)
        if progress is not None:
            progress(b + 1, n_boot)
    tail = (1.0 - interval) / 2.0
    with np.errstate(over="ignore"):
        lower, median, upper = np.exp(np.quantile(samples, [tail, 0.5, 1.0 - tail], axis=0))
        point = np.exp(problem.log_model(x_hat, horizon))
        samples = np.exp(samples)
    return Forecast(
        days=horizon.copy(),  # asarray does not copy a float array: never alias the caller's forecast_days
        median=median,
        lower=lower,
        upper=upper,
        point=point,
        interval=interval,
        n_boot=int(n_boot),
        seed=seed,
        fit=fit,
        samples=samples,
        noise_model=noise_model,
    )
