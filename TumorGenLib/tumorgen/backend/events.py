"""The events a backend job streams on stdout: one JSON object per line.

``{"type": "progress", "stage": "...", "fraction": 0.42, "message": "..."}``
    ``fraction`` is the whole job's progress in [0, 1].
``{"type": "log", "level": "info", "message": "..."}``
``{"type": "result", "outputs": {"name": "/abs/path.nii.gz", ...}}``
    Emitted once, after every output is in place.
``{"type": "error", "kind": "bad_input" | "internal" | "cancelled", "message": "..."}``
    Emitted once, as the last event of a job that did not finish.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from typing import IO, Union

ERROR_KINDS = ("bad_input", "internal", "cancelled")


@dataclass(frozen=True)
class ProgressEvent:
    stage: str
    fraction: float
    message: str = ""
    type: str = field(default="progress", init=False)


@dataclass(frozen=True)
class LogEvent:
    message: str
    level: str = "info"
    type: str = field(default="log", init=False)


@dataclass(frozen=True)
class ResultEvent:
    outputs: dict[str, str]
    type: str = field(default="result", init=False)


@dataclass(frozen=True)
class ErrorEvent:
    kind: str
    message: str
    type: str = field(default="error", init=False)


Event = Union[ProgressEvent, LogEvent, ResultEvent, ErrorEvent]


def event_to_json(event: Event) -> str:
    return json.dumps(asdict(event), ensure_ascii=False, separators=(",", ":"))


def parse_event(line: str) -> Event:
    """Parse one line of a job's stdout; a line that is not an event becomes a log event."""
    text = line.rstrip("\r\n")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return LogEvent(message=text, level="stdout")
    if not isinstance(data, dict):
        return LogEvent(message=text, level="stdout")
    kind = data.get("type")
    try:
        if kind == "progress":
            return ProgressEvent(str(data["stage"]), float(data["fraction"]), str(data.get("message", "")))
        if kind == "log":
            return LogEvent(str(data["message"]), str(data.get("level", "info")))
        if kind == "result":
            return ResultEvent({str(k): str(v) for k, v in dict(data["outputs"]).items()})
        if kind == "error":
            return ErrorEvent(str(data["kind"]), str(data["message"]))
    except (KeyError, TypeError, ValueError):
        pass
    return LogEvent(message=text, level="stdout")


class EventWriter:
    """Writes events to a text stream, one line each, flushed at once (thread-safe)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def emit(self, event: Event) -> None:
        line = event_to_json(event) + "\n"
        with self._lock:
            self._stream.write(line)
            self._stream.flush()
