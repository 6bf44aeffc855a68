"""Synthetic follow-ups: the forecast volume at a day, the tumor regrown to it, and the follow-up image.

The biophysical route (``route="fk"``):

1. **Forecast.** The growth ODE with radiotherapy (:mod:`tumorgen.biophysics.growth_ode`; untreated growth
   ``radial`` by default, the radius growing linearly, or ``exponential``) is fitted to the series and
   bootstrapped. A radiotherapy start after the latest scan (a planned treatment the data cannot have seen) applies
   the model's response with :data:`PLANNED_RT_ALPHA` and the default delay and clearance to the untreated
   forecast. After the latest scan the distribution is corrected by the model error learned on simulated tuning
   series (:mod:`tumorgen.followup.calibration`; ``recalibrate=False`` keeps the bootstrap's). At the requested
   day: the median volume, the interval and ``draws`` volumes at evenly spaced quantiles of the distribution.
2. **Field.** The latest tumor's concentration (given, or made from its labels by
   :func:`~tumorgen.followup.field.labels_to_concentration`) is regrown by Fisher–Kolmogorov to each volume, or
   scaled down where the forecast shrinks. The volume is relative: the forecast's growth factor from the latest
   measurement to the day, times the field's own volume, so a series measured another way still fits the field.
3. **Probability.** The fraction of draws in which each voxel is tumor (c ≥ the oedema threshold), blurred inside
   the brain by the calibration's ``blur_mm`` (where the tumor grows is uncertain as well as how much;
   :func:`~tumorgen.followup.calibration.spread_map`; not with ``recalibrate=False``); the labels are the median
   draw's.
4. **Image.** The region the tumor covers now or at the day, grown by ``margin_mm``, is tumor-inpainted into
   the latest scan under the median field (:func:`tumorgen.inpainting.core.inpaint`, DDIM without resampling),
   ``samples`` times: the follow-up is their mean, their spread the uncertainty. Voxels beyond the region are
   the latest scan's.

The guided route (``route="guided"``, paper 001) shares steps 1–3 and draws the image instead by DDIM from the
latest scan's partly noised latent under the ControlNet (the tissue maps and the median field), steered by the size
regressor's gradient towards the forecast volume (:mod:`tumorgen.followup.guided`); the region it may change is the
tumor grown by the distance the forecast's radius grows, plus the margin, less the core of a growing tumor, which is
kept.

The composed what-if: with a resection ``cavity`` the field inside it is removed (the residual is what lies
outside), the cavity becomes CSF for the growth (no cells enter it), and the residual follows the same growth
curve as the whole tumor scaled by the fraction of tumor cells (∫c) left: the ODE is linear in the starting size.
The image is then the post-operative one, and the cavity keeps label 4.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from tumorgen.errors import InputError
from tumorgen.followup.series import Series
from tumorgen.followup.settings import DEFAULT_HORIZON_DAYS, FollowupSettings
from tumorgen.models.pending import PendingModel
from tumorgen.volume import Volume

ProgressFn = Callable[[str, float, str], None]
#: Fraction of the tumor lethally hit by a radiotherapy that starts after the latest scan (the series cannot
#: show it; a typical value of fractionated radiotherapy of gliomas in the source papers' model).
PLANNED_RT_ALPHA = 0.7
#: BraTS label of a resection cavity.
CAVITY_LABEL = 4
#: Rows of the forecast curve written for the plot.
CURVE_POINTS = 60


@dataclass
class DayForecast:
    """The forecast at ``day``: median, interval and draws (cm³), and the curve for the plot."""

    day: float
    median: float
    low: float
    high: float
    draws: np.ndarray
    curve: list[dict]
    fit: dict
    planned_rt: bool = False
    #: The model-error correction applied after the latest scan (bias, spread), or None.
    correction: dict | None = None

    def as_dict(self) -> dict:
        return {"day": self.day, "median": round(self.median, 3), "low": round(self.low, 3), "high": round(self.high, 3),
                "draws": [round(float(v), 3) for v in self.draws], "fit": self.fit, "planned_rt": self.planned_rt,
                "correction": self.correction}


@dataclass
class FollowupResult:
    mean: Volume
    std: Volume
    probability: Volume
    labels: Volume
    concentration: Volume
    region: Volume
    forecast: DayForecast
    samples: list[Volume] = field(default_factory=list)
    residual: Volume | None = None
    info: dict = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def target_day(series: Series, settings: FollowupSettings) -> float:
    day = settings.day if settings.day is not None else series.last_day + DEFAULT_HORIZON_DAYS
    if day < series.last_day:
        raise InputError(f"day {day:g} is before the latest scan (day {series.last_day:g}); a follow-up comes after it")
    return float(day)


def _planned_factor(days: np.ndarray, rt: float, fit, last: float) -> np.ndarray:
    """Size with a radiotherapy from day ``rt`` over size without it: the ODE's closed form with the fitted growth,
    :data:`PLANNED_RT_ALPHA` and the default delay and clearance."""
    from tumorgen.biophysics.growth_ode import DEFAULT_K, DEFAULT_TAU, growth_curve

    days = np.asarray(days, float)
    untreated = growth_curve(days, fit.s0, fit.lam, t0=fit.t0, law=fit.law)
    treated = growth_curve(days, fit.s0, fit.lam, PLANNED_RT_ALPHA, DEFAULT_TAU, DEFAULT_K, rt, fit.t0, fit.law)
    return np.where(days > rt, treated / untreated, 1.0)


def forecast_day(series: Series, day: float, settings: FollowupSettings) -> DayForecast:
    """Fit, bootstrap and read off the forecast at ``day`` (see the module docstring)."""
    from tumorgen.biophysics.growth_ode import bootstrap_forecast

    first, last = float(series.days[0]), series.last_day
    end = max(day, last + DEFAULT_HORIZON_DAYS / 3)
    curve_days = np.unique(np.concatenate([np.linspace(first, end, CURVE_POINTS), series.days, [day]]))
    rt = series.rt_start
    planned = rt is not None and rt >= last
    forecast = bootstrap_forecast(series.days, series.sizes_cm3, None if planned else rt, curve_days, n_boot=settings.n_boot,
                                  seed=settings.seed, interval=settings.interval, law=settings.growth_law)
    samples = np.asarray(forecast.samples, float)
    median, low, high = (np.asarray(a, float) for a in (forecast.median, forecast.lower, forecast.upper))
    if planned:
        factor = _planned_factor(curve_days, rt, forecast.fit, last)
        samples, median, low, high = samples * factor, median * factor, low * factor, high * factor
    j = int(np.flatnonzero(np.isclose(curve_days, day))[0])
    quantiles = (np.arange(settings.draws) + 0.5) / settings.draws
    draws = np.quantile(samples[:, j], quantiles)
    correction = None
    if settings.recalibrate:  # the model error learned on simulated tuning series, after the latest scan
        from tumorgen.followup.calibration import bundled, recalibrated, shrink_depth

        error = bundled().error
        tail = (1.0 - settings.interval) / 2.0
        logs = np.log(np.maximum(samples, 1e-300))
        after = dict(latest=float(series.sizes_cm3[-1]), depth=shrink_depth(series.sizes_cm3))  # the growth from the latest scan, any shrink
        for i in np.flatnonzero(curve_days > last):
            low[i], median[i], high[i] = recalibrated(logs[:, i], error, (tail, 0.5, 1.0 - tail), **after)
        if day > last:
            draws = recalibrated(logs[:, j], error, quantiles, **after)
        correction = error.as_dict()
    observed = {float(d): float(s) for d, s in zip(series.days, series.sizes_cm3)}
    curve = [{"day": float(d), "median": float(m), "low": float(lo), "high": float(hi), "observed": observed.get(float(d))}
             for d, m, lo, hi in zip(curve_days, median, low, high)]
    fit = {k: (None if v is None else round(float(v), 6)) for k, v in forecast.fit.parameters().items()}
    fit["model"], fit["law"] = forecast.fit.model, forecast.fit.law
    return DayForecast(day, float(median[j]), float(low[j]), float(high[j]), draws, curve, fit, planned, correction)


def write_curve(forecast: DayForecast, path) -> None:
    lines = ["day,median,low,high,observed"]
    for row in forecast.curve:
        observed = "" if row["observed"] is None else f"{row['observed']:.4f}"
        lines.append(f"{row['day']:g},{row['median']:.4f},{row['low']:.4f},{row['high']:.4f},{observed}")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def predict_followup(model, image: Volume, series: Series, settings: FollowupSettings, *, field_now: Volume, tissues,
                     cavity: np.ndarray | None = None, removed: np.ndarray | None = None, progress: ProgressFn | None = None,
                     cancelled: Callable[[], bool] | None = None) -> FollowupResult:
    """The follow-up of ``image`` (the latest scan, or the post-operative one with ``cavity``) at the settings' day.

    ``cavity``: the resection cavity (label 4; CSF for the growth); ``removed``: where the resection took the tumor's cells
    (default the cavity; with a resection box, the box and the cavity).
    ``field_now``: the tumor's concentration on the image's grid; ``tissues``: its tissue maps
    (:class:`~tumorgen.anatomy.tissues.TissueMaps`); ``model``: a :class:`~tumorgen.models.sampling.LatentDiffusion`, or a
    :class:`~tumorgen.models.pending.PendingModel` still loading, taken when the image step starts.
    """
    from scipy.ndimage import binary_dilation, generate_binary_structure, iterate_structure

    from tumorgen.anatomy.tissues import TissueMaps
    from tumorgen.biophysics.fk import GrowthParams
    from tumorgen.biophysics.labels import LabelThresholds, concentration_to_labels
    from tumorgen.followup.field import fields_at_volumes, tumor_volume
    from tumorgen.inpainting.core import InpaintSettings, crop_box, inpaint
    from tumorgen.volume_io import check_same_geometry

    report = progress or (lambda stage, fraction, message: None)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    check_same_geometry(image, field_now, ("t1n", "tumor"))
    if not tissues.grid.matches(image.grid):
        raise InputError(f"tissue maps and t1n have different geometry: {'; '.join(image.grid.differences(tissues.grid))}")
    if settings.route == "guided":
        from tumorgen.followup.guided import check_guided

        check_guided(model)
    day = target_day(series, settings)
    threshold = LabelThresholds().edema
    voxel_cm3 = image.grid.voxel_volume_mm3 / 1000.0
    start = np.clip(np.asarray(field_now.array, np.float32), 0.0, 1.0)
    volume_now = tumor_volume(start, voxel_cm3, threshold)
    if volume_now <= 0:
        raise InputError("the tumor is empty (no voxel with concentration >= 0.25 or labels 1-3): nothing to follow")
    report("forecast", 0.01, "fitting the growth curve")
    forecast = forecast_day(series, day, settings)
    timings["forecast"] = time.perf_counter() - clock

    # -- the field: residual after a resection, growth factor, draws --------------------------------------
    clock = time.perf_counter()
    fraction_left = 1.0
    residual = None
    if cavity is not None:
        cavity = np.asarray(cavity, bool)
        check_same_geometry(image, image.with_array(cavity.astype(np.uint8)), ("t1n", "cavity"))
        removed = cavity if removed is None else (np.asarray(removed, bool) | cavity)
        left = np.where(removed, np.float32(0.0), start)
        fraction_left = float(left.sum() / max(float(start.sum()), 1e-9))
        start, residual = left, image.with_array(left)
        csf, gm, wm = (np.asarray(a, np.float32) for a in tissues.arrays())
        tissues = TissueMaps.from_arrays(np.where(cavity, 1.0, csf), np.where(cavity, 0.0, gm), np.where(cavity, 0.0, wm),
                                         tissues.csf)
        if not start.any():
            raise InputError("the resection removes the whole tumor: no residual is left to regrow")
    growth = forecast.draws / float(series.sizes_cm3[-1])
    scale = volume_now * fraction_left / float(series.sizes_cm3[-1])
    targets = [forecast.median * scale] + list(forecast.draws * scale)
    counts = np.zeros(image.shape, np.uint8)
    kept: dict[int, np.ndarray] = {}

    def visit(i: int, array: np.ndarray) -> None:
        if i == 0:
            kept[0] = array
        else:
            counts[array >= threshold] += 1

    params = GrowthParams(d_white=settings.d_white, rho=settings.rho)
    fields_at_volumes(image.with_array(start), tissues, targets, params=params, threshold=threshold, visit=visit, cancelled=cancelled,
                      progress=lambda f, m: report("grow", 0.02 + 0.28 * f, m))
    median_field = kept[0]
    probability = (counts.astype(np.float32) / settings.draws)
    blur = 0.0
    if settings.recalibrate:  # the boundary's uncertainty, learned with the forecast's model error
        from tumorgen.followup.calibration import bundled, spread_map

        blur = bundled().blur_mm
        inside = (np.asarray(image.array) > 0) | (probability > 0)
        probability = spread_map(probability, inside if cavity is None else inside & ~cavity, blur, image.spacing)
    labels = np.asarray(concentration_to_labels(image.with_array(median_field)).array, np.uint8)
    if cavity is not None:
        labels = np.where(cavity, np.uint8(CAVITY_LABEL), labels)
        probability[cavity] = 0.0
    timings["grow"] = time.perf_counter() - clock

    # -- the image ---------------------------------------------------------------------------------------------
    clock = time.perf_counter()
    if isinstance(model, PendingModel):
        report("image", 0.3, "loading the model")
        model = model.get(cancelled)
    timings["model_wait"] = time.perf_counter() - clock
    tumor_any = (start >= threshold) | (median_field >= threshold)
    radius = max(1, int(round(settings.margin_mm / min(image.spacing)))) if settings.margin_mm > 0 else 0
    region = tumor_any
    if radius and tumor_any.any():  # on the tumor's box grown by the radius: the same voxels as on the whole grid, in a fraction of the time
        box = crop_box(tumor_any, (radius + 1,) * 3, 1, tumor_any.shape)
        region = np.zeros_like(tumor_any)
        region[box] = binary_dilation(tumor_any[box], iterate_structure(generate_binary_structure(3, 1), radius))
    region &= np.asarray(image.array) > 0
    if cavity is not None:
        region &= ~cavity
    guided = None
    if settings.route == "guided":
        from scipy.ndimage import distance_transform_edt

        from tumorgen.followup.guided import guided_followup, kept_core

        requested = forecast.median * scale
        radius = lambda v: (3.0 * max(v, 0.0) * 1000.0 / (4.0 * np.pi)) ** (1.0 / 3.0)  # noqa: E731 - mm of a ball of v cm³
        reach = max(0.0, radius(requested) - radius(volume_now)) + settings.margin_mm
        may_change = distance_transform_edt(~(start >= threshold), sampling=image.spacing) <= reach
        may_change &= np.asarray(image.array) > 0
        if cavity is not None:
            may_change &= ~cavity
        # a growing tumor (or residual) keeps its core as the scan shows it; a shrinking one is redrawn whole
        growing = requested >= tumor_volume(start, voxel_cm3, threshold)
        core = kept_core(start, threshold, image.spacing) if growing else np.zeros_like(may_change)
        may_change &= ~core
        result = guided_followup(model, image, may_change, median_field, settings, requested, start_field=start,
                                 tissues=tissues, progress=lambda s, f, m: report(s, 0.3 + 0.68 * f, m), cancelled=cancelled)
        region = result.region
        guided = {"requested_cm3_in_window": round(result.requested_cm3, 3), "regressor_read_cm3": round(result.read_cm3, 3),
                  "window": [[w.start, w.stop] for w in result.window], "windows": result.windows,
                  "kept_core_cm3": round(float(core.sum()) * voxel_cm3, 3)}
    else:
        inpainting = InpaintSettings(mode="tumor", scheduler="ddim", steps=settings.steps, jump=min(5, settings.steps), resample=1,
                                     samples=settings.samples, seed=settings.seed, histogram=False, poisson=True, self_check=False)
        result = inpaint(model, image, image.with_array(region.astype(np.uint8)),
                         {"csf": tissues.csf, "gm": tissues.gm, "wm": tissues.wm}, inpainting,
                         concentration=image.with_array(median_field), progress=lambda s, f, m: report(s, 0.3 + 0.68 * f, m),
                         cancelled=cancelled, decode_kept=True)
    timings["image"] = time.perf_counter() - clock
    info = {
        "day": day, "last_day": series.last_day, "route": settings.route,
        "forecast_cm3": {"median": round(forecast.median, 3), "low": round(forecast.low, 3), "high": round(forecast.high, 3)},
        "growth_factor": {"median": round(forecast.median / float(series.sizes_cm3[-1]), 4),
                          "low": round(float(growth.min()), 4), "high": round(float(growth.max()), 4)},
        "tumor_now_cm3": round(volume_now, 3),
        "predicted_cm3": round(tumor_volume(median_field, voxel_cm3, threshold), 3),
        "residual_fraction": round(fraction_left, 4) if cavity is not None else None,
        "observed": {"days": [float(d) for d in series.days], "sizes_cm3": [float(s) for s in series.sizes_cm3]},
        "rt_start": series.rt_start, "planned_rt": forecast.planned_rt, "fit": forecast.fit, "correction": forecast.correction,
        "region_cm3": round(float(region.sum()) * voxel_cm3, 3), "map_blur_mm": blur,
    }
    if guided is not None:
        info["guided"] = guided
    report("done", 1.0, "follow-up ready")
    return FollowupResult(result.mean, result.std, image.with_array(probability), image.with_array(labels),
                          image.with_array(median_field.astype(np.float32)), image.with_array(region.astype(np.uint8)), forecast,
                          list(result.samples), residual, info, {**timings, **{f"image_{k}": v for k, v in result.timings.items()}})


__all__ = ["CAVITY_LABEL", "DayForecast", "FollowupResult", "PLANNED_RT_ALPHA", "forecast_day", "predict_followup", "target_day",
           "write_curve"]
