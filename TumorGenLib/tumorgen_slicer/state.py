"""What the front ends show: the presenter's state, and how its parts tell the front ends that it changed.

Listeners are called as ``listener(kind, presenter)`` with ``kind`` one of
``"state"`` (anything in the state changed), ``"progress"``, ``"log"``,
``"error"``, ``"finished"`` (a run ended; see ``state.last_status``) and ``"question"`` (the backend has a question
for the user in ``state.question``: ask it after the listener returns, never inside it).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Iterator, Optional

LOG_LINES = 500
LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class LogLine:
    """One message of the log and its level (``info``, ``warning`` or ``error``)."""

    text: str
    level: str = "info"

    def __str__(self) -> str:
        return self.text if self.level == "info" else f"{self.level}: {self.text}"

    @property
    def labelled(self) -> str:
        """The line as the panels' log shows it, its level first."""
        return f"[{self.level}] {self.text}"


class RunLog:
    """The presenter's log: the last :data:`LOG_LINES` messages with their levels, and how many were ever added.

    Iterating gives the lines as text (``str(LogLine)``: warnings and errors keep their level in front), so
    ``"…" in state.log`` works; a front end shows every new line with :meth:`since`, its own count in hand.
    """

    def __init__(self, maxlen: int = LOG_LINES) -> None:
        self._lines: deque[LogLine] = deque(maxlen=maxlen)
        #: How many lines were ever added (the lines that fell off the front included).
        self.count = 0

    def append(self, text: str, level: str = "info") -> None:
        """Add one message; a text that starts with ``error: `` is an error even without the level."""
        if level not in LEVELS:
            level = "info"
        if level == "info" and text.startswith("error: "):
            text, level = text[len("error: "):], "error"
        self._lines.append(LogLine(str(text), level))
        self.count += 1

    def since(self, count: int) -> list[LogLine]:
        """The lines added after the first ``count`` (as many as are still kept)."""
        new = max(0, self.count - count)
        return list(self._lines)[-new:] if new else []

    def __iter__(self) -> Iterator[str]:
        return (str(line) for line in self._lines)

    def __contains__(self, text: object) -> bool:
        """Whether a kept line says ``text`` (with or without its level in front)."""
        return any(text == line.text or text == str(line) for line in self._lines)

    def __len__(self) -> int:
        return len(self._lines)

    def __getitem__(self, index: int) -> str:
        return str(self._lines[index])


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
    #: How long the running job should take, from the last run of its kind on this machine ("about 40 s"; "" unknown).
    expected: str = ""
    #: A yes/no question for the user about the backend (what to install), "" when none waits: answer it with
    #: ``answer_backend``. Front ends ask it when told ``"question"``, outside the poll.
    question: str = ""
    #: The NVIDIA GPUs the backend's Python sees, in words ("" before the first check).
    gpu: str = ""
    progress: float = 0.0
    message: str = ""
    log: RunLog = field(default_factory=RunLog)
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
    #: Whether the last result's uncertainty (std) overlay is shown: its own toggle's alone (before/after, a new run and
    #: "Show prediction" keep it as it is).
    showing_uncertainty: bool = True
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
    #: The day of the time point the views show (None before the first follow-up).
    followup_day_shown: Optional[float] = None
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
