"""Follow-up prediction: the tumor-size series, the synthetic follow-up scan at a day, and the time points as a sequence.

The series table lives in the state (rows of ``day`` and ``size`` in cm³, kept in day order): rows are added one at a
time, measured from the current tumor, or loaded from a CSV file (``day,size[,rt_start]``) by the engine's own reader,
and checked as the engine checks them. The prediction is a backend job (task ``followup``): the t1n, the series as a
CSV file in the job's folder, the tumor (the concentration being edited, else the ``seg`` input) and, with "After
resection", the resection box as a mask. Its time points (the latest scan at the series' latest day, each predicted
day) go into a sequence the views browse (:mod:`~tumorgen_slicer.sequences`), its forecast into the plot
(:mod:`~tumorgen_slicer.forecast_plot`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from tumorgen.errors import InputError
from tumorgen.followup.series import check_series, read_series, write_series
from tumorgen.followup.settings import DEFAULT_HORIZON_DAYS
from tumorgen.settings import FOLLOWUP
from tumorgen.volume import Volume
from tumorgen_slicer import sequences
from tumorgen_slicer.forecast_plot import forecast_chart, read_forecast, show_chart
from tumorgen_slicer.nodes import (
    PROBABILITY_COLORS,
    array_of,
    grid_of,
    restore_orientations,
    show_colormap,
    show_in_slices,
    show_labels,
    volume_of,
)
from tumorgen_slicer.presenter_core import TUMOR_THRESHOLD
from tumorgen_slicer.result_actions import ResultActions
from tumorgen_slicer.result_view import centre_of
from tumorgen_slicer.runs import FileInput, Run, RunSpec

#: The outputs loaded as label maps: tumorgen.tasks.followup.LABEL_OUTPUTS (a test checks they agree; importing
#: tumorgen.tasks would load torch into Slicer's GUI process).
LABEL_OUTPUTS = frozenset({"labels", "region"})
SERIES_FILE = "series.csv"
#: How many days after the latest scan the day slider reaches (:func:`day_range`).
DAY_SPAN = 4 * DEFAULT_HORIZON_DAYS


class FollowupActions(ResultActions):
    """The series table, the follow-up prediction, and browsing its time points."""

    # -- the series table ------------------------------------------------------------------------------------
    def add_series_row(self, day, size) -> bool:
        """Add a measurement: ``size`` cm³ on ``day`` (the table stays in day order; a day already there is refused)."""
        return self._action(lambda: self._add_row(_day(day), _size(size)))

    def add_current_to_series(self, day) -> bool:
        """Add the current tumor's volume on ``day``: the concentration being edited (c ≥ 0.25), else the seg input's labels."""
        def act():
            when = _day(day)
            tumor = self._tumor_input(self._reference(), "measuring the tumor")
            self._add_row(when, round(_tumor_cm3(tumor, self.editor), 4))
        return self._action(act)

    def remove_series_row(self, index) -> bool:
        """Remove row ``index`` (0 is the earliest day)."""
        def act():
            rows = self.state.series
            if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < len(rows):
                raise InputError(f"no row {index!r} in the series: it has {len(rows)} row{'s' * (len(rows) != 1)}")
            row = rows.pop(int(index))
            self._series_changed(f"removed day {row['day']:g} from the series")
        return self._action(act)

    def load_series(self, path: str | Path) -> bool:
        """Replace the table by a CSV file's rows (``day,size[,rt_start]``, or ``day,seg`` with label maps), checked as the
        engine checks them."""
        def act():
            series = read_series(path)
            self.state.series = [{"day": float(d), "size": float(s)} for d, s in zip(series.days, series.sizes_cm3)]
            self.state.series_rt_start = series.rt_start
            self._series_changed(f"loaded {len(self.state.series)} time points from {Path(path).name}"
                                 + (f", radiotherapy from day {series.rt_start:g}" if series.rt_start is not None else ""))
        return self._action(act)

    def _add_row(self, day: float, size: float) -> None:
        rows = self.state.series
        if any(row["day"] == day for row in rows):
            raise InputError(f"day {day:g} is in the series already: remove that row first")
        rows.append({"day": day, "size": size})
        rows.sort(key=lambda row: row["day"])
        self._series_changed(f"added day {day:g}: {size:g} cm³ to the series")

    def _series_changed(self, message: str) -> None:
        rows = self.state.series
        self.state.followup_default_day = rows[-1]["day"] + DEFAULT_HORIZON_DAYS if rows else None
        self.state.log.append(message)

    def followup_day_range(self) -> tuple[float, float]:
        """The day slider's range (what the front ends' sliders span): see :func:`day_range`."""
        rows = self.state.series
        return day_range(rows[-1]["day"] if rows else None, self.settings["followup_day"])

    def _checked_series(self):
        """The table as the engine's series (InputError, one line, as the engine would raise it)."""
        rows = self.state.series
        rt_start = self.settings["rt_start"] if self.settings["rt_start"] is not None else self.state.series_rt_start
        return check_series([r["day"] for r in rows], [r["size"] for r in rows], rt_start, where="the series table")

    # -- the prediction ----------------------------------------------------------------------------------------
    def predict_followup(self) -> bool:
        """Predict the follow-up scan at the panel's day (default: the latest day + 90) from the series and the tumor;
        with "After resection", of the residual tumor after resecting the box."""
        params = {k: v for k, v in self.settings.params(FOLLOWUP).items() if v is not None}
        try:
            self.runs.check_idle()
            t1n = self._reference()
            series = self._checked_series()
            tumor = self._tumor_input(t1n, "a follow-up")
            inputs: dict[str, Any] = {"t1n": t1n, "series": FileInput(SERIES_FILE, lambda path: write_series(series, path)), **tumor}
            if self.settings["followup_resect"]:
                inputs["resect"] = self._t1n_and_box()[1]
        except InputError as exc:
            return self._fail(str(exc))
        observed = _observed(tumor)
        spec = RunSpec("followup", self._run_name("Follow-up"), inputs=inputs, params=params, labelmaps=LABEL_OUTPUTS,
                       segmentations=frozenset({"labels"}))

        def predicted(run: Run) -> None:
            self.state.result_input_id = t1n.GetID()
            summary = self._read_followup(run, params.get("interval", FOLLOWUP.default("interval")))
            browser = sequences.followup_browser(self.ctx, t1n)
            self.state.followup_day_shown = None  # the time points change under the browser: none is shown until the new one
            sequences.set_observed(browser, float(summary.get("last_day", series.last_day)), {"t1n": t1n, **observed})
            sequences.set_time_point(browser, float(summary["day"]), {"t1n": run.nodes["followup"], "probability":
                                     run.nodes["probability"], "labels": run.nodes["labels"]})
            self.state.followup_browser_id, self.state.followup_days = browser.GetID(), sequences.days(browser)
            self._colour_uncertainty()
            show_colormap(self.ctx, run.nodes["probability"], PROBABILITY_COLORS, window=(0.0, 1.0))
            self._show_day(float(summary["day"]), run.segmentations.values())
            sequences.follow_steps(browser, str(id(self)), self._stepped)
            show_chart(self.ctx, forecast_chart(self.ctx, self.state.forecast_rows, _observed_points(summary), float(summary["day"])))

        return self._start(spec, predicted)

    def _read_followup(self, run: Run, interval: float) -> dict:
        """The run's forecast curve (forecast.csv) and summary (followup.json) into the state, and the summary in one line."""
        outputs = run.outcome.outputs
        if "summary" not in outputs or "forecast" not in outputs:
            raise InputError("the follow-up wrote no forecast (forecast.csv) or summary (followup.json)")
        summary = json.loads(Path(outputs["summary"]).read_text())
        self.state.forecast_rows = read_forecast(outputs["forecast"])
        self.state.followup_summary = summary
        self.state.followup_text = describe_followup(summary, interval)
        self.state.log.append(f"{run.name}: {self.state.followup_text}")
        run.summary = self.state.followup_text
        return summary

    # -- browsing ----------------------------------------------------------------------------------------------
    def show_followup_day(self, day) -> bool:
        """Step the follow-up series to the time point at ``day`` (the views show it)."""
        def act():
            if float(day) not in self.state.followup_days:
                known = ", ".join(f"{d:g}" for d in self.state.followup_days) or "none yet: predict a follow-up first"
                raise InputError(f"no time point at day {float(day):g} in the follow-up series (days: {known})")
            self._show_day(float(day))
        return self._action(act)

    def _stepped(self, day: float) -> None:
        """Slicer's sequence toolbar selected the time point at ``day``: the views show it as :meth:`show_followup_day` does."""
        if self.state.followup_day_shown is not None and day != self.state.followup_day_shown and day in self.state.followup_days:
            self._action(lambda: self._show_day(day))

    def _show_day(self, day: float, surfaces=()) -> None:
        """The views on the time point at ``day``: its t1n, its probability as a colour map, its labels as outlines and,
        in 3D, as the surfaces of ``surfaces`` (a prediction's segmentation of them) or of a segmentation made from them;
        only its own: another time point's labels go from the slice views and from 3D."""
        browser = self.node(self.state.followup_browser_id)
        if browser is None:
            raise InputError("the follow-up series is no longer in the scene: predict again")
        self.state.followup_day_shown = day  # first: selecting it below tells the toolbar's observer (_stepped) of it
        proxies = sequences.show_day(self.ctx, browser, day)
        t1n = self.node(browser.GetAttribute(sequences.FOLLOWUP_OF))
        image, shown = proxies["t1n"].GetDisplayNode(), t1n.GetDisplayNode() if t1n is not None else None
        if image is not None and shown is not None and shown.GetWindow() > 0:  # the series in the latest scan's window
            image.AutoWindowLevelOff()
            image.SetWindowLevel(shown.GetWindow(), shown.GetLevel())
        show_colormap(self.ctx, proxies["probability"], PROBABILITY_COLORS, window=(0.0, 1.0))
        show_labels(self.ctx, proxies["labels"])
        restore_orientations(self.ctx)
        show_in_slices(self.ctx, background=proxies["t1n"], foreground=proxies["probability"], label=proxies["labels"],
                       foreground_opacity=0.5)
        self.state.showing_result, self.state.side_by_side = True, 0
        surfaces = [s for s in surfaces if s is not None] or [sequences.time_point_segmentation(self.ctx, browser, proxies["labels"])]
        self._show_in_views(centre_of(proxies["labels"]), surfaces)

    def show_forecast_plot(self) -> bool:
        """Show the last forecast's plot again (in a plot view; inside Slicer the layout switches to one with a plot)."""
        def act():
            summary = self.state.followup_summary
            if not self.state.forecast_rows:
                raise InputError("no forecast to plot yet: predict a follow-up first")
            show_chart(self.ctx, forecast_chart(self.ctx, self.state.forecast_rows, _observed_points(summary), summary.get("day")))
        return self._action(act)


def describe_followup(summary: dict, interval: float) -> str:
    """A follow-up in one line: ``day 210: forecast 14.2 cm³ (90% interval 12.1–16.5), predicted tumor 14.0 cm³``; after
    a resection (the summary has a ``residual_fraction``) the forecast is the whole tumor's, had it not been resected, and
    the predicted tumor the residual: ``day 150: forecast without resection 33.6 cm³ (90% interval 31.5–35.8); residual
    tumor at day 150: 11 cm³``."""
    forecast = summary.get("forecast_cm3", {})
    resected = summary.get("residual_fraction") is not None
    text = (f"day {summary['day']:g}: forecast{' without resection' if resected else ''} "
            f"{forecast.get('median', float('nan')):.3g} cm³ "
            f"({interval:.0%} interval {forecast.get('low', float('nan')):.3g}–{forecast.get('high', float('nan')):.3g})")
    if summary.get("predicted_cm3") is not None:
        text += (f"; residual tumor at day {summary['day']:g}: {summary['predicted_cm3']:.3g} cm³" if resected
                 else f", predicted tumor {summary['predicted_cm3']:.3g} cm³")
    return text


def day_range(last_day: float | None, day: float | None) -> tuple[float, float]:
    """The days a slider for the follow-up's day spans: from the series' latest day (a follow-up comes after it) to
    :data:`DAY_SPAN` days after it (the default day, 90 days after it, a quarter of the way), and wider to hold a chosen
    ``day`` outside that; the setting's whole range without a series or a day. Within the setting's range."""
    setting = FOLLOWUP["day"]
    if last_day is None and day is None:
        return float(setting.minimum), float(setting.maximum)
    low = float(last_day) if last_day is not None else float(setting.minimum)
    high = low + DAY_SPAN
    if day is not None:
        low, high = min(low, float(day)), max(high, float(day))
    return max(low, float(setting.minimum)), min(high, float(setting.maximum))


def _day(value) -> float:
    day = FOLLOWUP["day"].convert(value)
    if day is None:
        raise InputError("give the day of the measurement")
    return day


def _size(value) -> float:
    try:
        size = float(value)
    except (TypeError, ValueError):
        raise InputError(f"a tumor size is a volume in cm³, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(size) or size <= 0:
        raise InputError(f"a tumor size must be a positive volume in cm³, got {value!r}")
    return size


def _tumor_cm3(tumor: dict, editor) -> float:
    """The tumor's volume: the concentration's (c ≥ the growth threshold) or the segmentation's tumor labels (1-3: a
    resection cavity, label 4, is not tumor)."""
    if "concentration" in tumor:
        return float(editor.tumor_volume_cm3(TUMOR_THRESHOLD) or 0.0)
    seg = tumor["seg"]
    return float(np.count_nonzero(np.isin(np.rint(array_of(seg)), (1, 2, 3)))) * grid_of(seg).voxel_volume_mm3 / 1000.0


def _observed(tumor: dict) -> dict[str, Volume]:
    """The observed time point's labels and tumor probability (1 inside the tumor), from the tumor the follow-up starts from."""
    from tumorgen.biophysics.labels import concentration_to_labels

    name, node = next(iter(tumor.items()))
    volume = volume_of(node)
    if name == "seg":
        labels, inside = volume.with_array(np.asarray(volume.array, np.uint8)), np.asarray(volume.array) > 0
    else:
        labels, inside = concentration_to_labels(volume), np.asarray(volume.array) >= TUMOR_THRESHOLD
        labels = labels.with_array(np.asarray(labels.array, np.uint8))
    return {"labels": labels, "probability": volume.with_array(inside.astype(np.float32))}


def _observed_points(summary: dict) -> list[tuple[float, float]]:
    observed = summary.get("observed", {})
    return [(float(d), float(s)) for d, s in zip(observed.get("days", []), observed.get("sizes_cm3", []))]
