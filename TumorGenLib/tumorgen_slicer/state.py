"""What the front ends show: the presenter's state, and how its parts tell the front ends that it changed.

Listeners are called as ``listener(kind, presenter)`` with ``kind`` one of
``"state"`` (anything in the state changed), ``"progress"``, ``"log"``,
``"error"`` and ``"finished"`` (a run ended; see ``state.last_status``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Optional

LOG_LINES = 500


@dataclass
class PresenterState:
    #: role -> node ID (t1n, t1c, t2w, t2f, csf, gm, wm, seg).
    inputs: dict[str, str] = field(default_factory=dict)
    box_id: str = ""
    seed_ras: Optional[tuple[float, float, float]] = None
    #: A markups point list whose first point is the seed (the desktop module places it in the views).
    seed_points_id: str = ""
    #: The backend's Python: "" for Slicer's own (this interpreter outside Slicer), else a path.
    python: str = ""
    #: The running job's name ("" when idle), its progress and current message.
    running: str = ""
    progress: float = 0.0
    message: str = ""
    log: deque = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    error: str = ""
    #: The backend task of the last run that ended, and how it ended: done, bad_input, failed or cancelled.
    last_task: str = ""
    last_status: str = ""
    #: The last finished run's nodes: output name -> node ID.
    results: dict[str, str] = field(default_factory=dict)
    #: The input the last result was made from (what "before" shows).
    result_input_id: str = ""
    #: The last inpainting's self-check on known tissue, in words ("" when none ran), and whether it found the result doubtful.
    check: str = ""
    check_doubtful: bool = False
    #: Whether the views show the last result (True) or its input (False).
    showing_result: bool = True
    #: The last post-operative prediction's retrieved cases, best first: ``case`` (its name in the library), ``score`` (IoU or
    #: cosine similarity, None for random retrieval), ``method``, the node IDs of its scans, ``pre`` and ``post``, and ``label``,
    #: how the panels list it ("1. sim-004 (IoU 0.41)").
    retrieved: list[dict] = field(default_factory=list)
    #: The last post-operative prediction in one line (cavity volume, retrieved cases); "" when none ran.
    postop_summary: str = ""
    #: The retrieved case (1, 2, …) the views show side by side with the prediction; 0 when they show the prediction alone.
    side_by_side: int = 0
    #: The tumor-size series a follow-up is forecast from: rows of ``day`` and ``size`` (cm³), days increasing.
    series: list[dict] = field(default_factory=list)
    #: The radiotherapy start day of a loaded series (its rt_start column); None when it has none.
    series_rt_start: Optional[float] = None
    #: The day a follow-up is predicted at when no day is set: 90 days after the series' latest day (None without a series).
    followup_default_day: Optional[float] = None
    #: The last follow-up's forecast curve (forecast.csv): rows of ``day``, ``median``, ``low``, ``high`` (cm³) and
    #: ``observed`` (the measured size on a measured day, else None).
    forecast_rows: list[dict] = field(default_factory=list)
    #: The last follow-up's summary (followup.json: day, last_day, forecast_cm3, predicted_cm3, observed, seconds); {} when none.
    followup_summary: dict = field(default_factory=dict)
    #: The last follow-up in one line (the day, the forecast volume and interval, the predicted volume); "" when none ran.
    followup_text: str = ""
    #: The follow-up sequence browser (the series' time points, by day) and the days it holds; "" and [] before the first.
    followup_browser_id: str = ""
    followup_days: list[float] = field(default_factory=list)
    #: The labels a synthesis would use, in words ("seg: case-seg", else "concentration: Tumor concentration"); "" when
    #: there are none (the Synthesize button waits for them).
    synthesis_labels: str = ""
    #: The last synthesis in one line (the labels it used, the tumor's regions in cm³, its steps and seed); "" when none ran.
    #: Its nodes are ``results``: t1n, t1c, t2w, t2f (scalar volumes) and seg (a label map).
    synthesis_text: str = ""
    #: How many edits of the concentration can be undone.
    undo_depth: int = 0
    #: The tumor's volume (c ≥ the growth threshold) in cm³, None without a concentration.
    tumor_cm3: Optional[float] = None
