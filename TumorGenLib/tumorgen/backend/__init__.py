"""The backend: jobs run in their own process, talking JSON lines.

* :mod:`~tumorgen.backend.job` — the job file.
* :mod:`~tumorgen.backend.events` — the events streamed on stdout.
* :mod:`~tumorgen.backend.registry` — task names → engine functions.
* :mod:`~tumorgen.backend.protocol` — ``python -m tumorgen.backend JOB.json``.
* :mod:`~tumorgen.backend.runner` — starting, following and cancelling a job (no Qt, no threads).
* :mod:`~tumorgen.backend.process` — a child process with its output in files, and killing its whole tree.
"""

from tumorgen.backend.events import ErrorEvent, Event, LogEvent, ProgressEvent, ResultEvent
from tumorgen.backend.job import Job
from tumorgen.backend.registry import TaskSpec, available_tasks, get_task, register_task
from tumorgen.backend.runner import JobOutcome, JobProcess, JobRunner

__all__ = [
    "ErrorEvent",
    "Event",
    "Job",
    "JobOutcome",
    "JobProcess",
    "JobRunner",
    "LogEvent",
    "ProgressEvent",
    "ResultEvent",
    "TaskSpec",
    "available_tasks",
    "get_task",
    "register_task",
]
