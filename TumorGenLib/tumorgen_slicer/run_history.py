"""How long runs took on this machine, to say how long the next will take; and removing old run folders.

:class:`RunHistory` keeps the last few runs of each kind (a task on a device) in
a small JSON file in the work folder, ``history.json``:

```json
{"version": 1, "runs": [{"task": "inpaint", "device": "cuda", "seconds": 41.7, "voxels": 884736, "finished": 1718000000.0}]}
```

The file is a convenience: a missing, unreadable or corrupt one reads as an
empty history, and it is replaced as a whole (:func:`tumorgen.atomic.write_text`),
so a reader never sees half of it.

A run folder (a "job folder") is a folder directly in the work folder that holds
a ``job.json`` (:func:`~tumorgen_slicer.runs.start_run` writes one per run);
:func:`prune_run_folders` removes all but the newest of them. No Qt, no Slicer:
both front ends and the tests use it as it is.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

from tumorgen.atomic import write_text
from tumorgen.errors import InputError

#: The history file's name in the work folder.
HISTORY_FILE = "history.json"
#: The file that makes a folder in the work folder a job folder.
JOB_FILE = "job.json"
#: How many runs of each kind (task, device) the history keeps.
RUNS_KEPT_PER_KIND = 5
_VERSION = 1


@dataclass(frozen=True)
class PastRun:
    """One finished run.

    Args:
        task: the backend task (``inpaint``, ``grow``).
        device: where it ran, as the caller names it (``cpu``, ``cuda``).
        seconds: how long it took, start to finish.
        voxels: the size of its main input in voxels (what its time scales with).
        finished: when it finished (seconds since the epoch), to order runs.
    """

    task: str
    device: str
    seconds: float
    voxels: int
    finished: float

    @classmethod
    def from_json(cls, data: Any) -> PastRun | None:
        """A run from its JSON object, or None when the object is not one (a damaged file)."""
        if not isinstance(data, dict):
            return None
        task, device = data.get("task"), data.get("device")
        seconds, voxels, finished = data.get("seconds"), data.get("voxels"), data.get("finished", 0.0)
        if not (isinstance(task, str) and task and isinstance(device, str) and device):
            return None
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (seconds, voxels, finished)):
            return None
        if seconds < 0 or voxels < 1 or voxels != int(voxels):
            return None
        return cls(task, device, float(seconds), int(voxels), float(finished))


class RunHistory:
    """The recent runs of each kind (a task on a device) on this machine, in a JSON file.

    Args:
        path: the JSON file (``<work_dir>/history.json``); it need not exist yet, nor its folder.
        runs_per_kind: how many runs of each kind to keep.
    """

    def __init__(self, path: Path, runs_per_kind: int = RUNS_KEPT_PER_KIND) -> None:
        if runs_per_kind < 1:
            raise InputError(f"runs_per_kind must be at least 1, got {runs_per_kind}")
        self.path = Path(path)
        self.runs_per_kind = int(runs_per_kind)

    @classmethod
    def in_folder(cls, work_dir: Path) -> RunHistory:
        """The history of the runs in ``work_dir`` (its :data:`HISTORY_FILE`)."""
        return cls(Path(work_dir) / HISTORY_FILE)

    def runs(self) -> list[PastRun]:
        """Every run in the file, oldest first; empty when the file is missing, unreadable or corrupt.

        Returns:
            The runs whose records are whole (a damaged record is left out, the others kept).
        """
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # missing, unreadable, not UTF-8, not JSON
            return []
        records = data.get("runs") if isinstance(data, dict) else None
        if not isinstance(records, list):
            return []
        runs = [run for run in map(PastRun.from_json, records) if run is not None]
        return sorted(runs, key=lambda run: run.finished)

    def record(self, task: str, seconds: float, voxels: int, device: str) -> bool:
        """Add a finished run, keeping the last :attr:`runs_per_kind` of its kind.

        Args:
            task: the backend task.
            seconds: how long the run took.
            voxels: the size of its main input in voxels.
            device: where it ran.

        Returns:
            Whether the history was saved: False when the file cannot be written (a read-only work folder; the
            history is a convenience, and a run that worked must not fail for it).

        Raises:
            InputError: a value is not a run's (an empty name, a negative or non-finite time, no voxels).
        """
        if not (isinstance(task, str) and task):
            raise InputError(f"a run's task must be a name, got {task!r}")
        if not (isinstance(device, str) and device):
            raise InputError(f"a run's device must be a name, got {device!r}")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds < 0:
            raise InputError(f"a run's time must be a finite number of seconds ≥ 0, got {seconds!r}")
        if isinstance(voxels, bool) or not isinstance(voxels, int) or voxels < 1:
            raise InputError(f"a run's voxel count must be a whole number ≥ 1, got {voxels!r}")
        new = PastRun(task, device, float(seconds), int(voxels), time.time())
        runs = self.runs() + [new]
        same_kind = [run for run in runs if (run.task, run.device) == (task, device)]
        dropped = set(map(id, same_kind[:-self.runs_per_kind]))
        kept = [run for run in runs if id(run) not in dropped]
        text = json.dumps({"version": _VERSION, "runs": [asdict(run) for run in kept]}, indent=1) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_text(self.path, text)
        except OSError:
            return False
        return True

    def expected_seconds(self, task: str, voxels: int, device: str) -> float | None:
        """How long a run of ``task`` on ``device`` with ``voxels`` voxels should take, from the last such run here.

        Args:
            task: the backend task.
            voxels: the size of the next run's main input in voxels.
            device: where it will run.

        Returns:
            The last run's time, scaled by the ratio of the voxel counts when they differ (the tasks' work grows
            with the volume); None when no run of this task on this device is on record.
        """
        last = next((run for run in reversed(self.runs()) if (run.task, run.device) == (task, device)), None)
        if last is None:
            return None
        if voxels == last.voxels:
            return last.seconds
        return last.seconds * float(voxels) / float(last.voxels)


def describe_expected(seconds: float | None) -> str:
    """An expected time as a status line shows it.

    Args:
        seconds: from :meth:`RunHistory.expected_seconds`.

    Returns:
        ``about 42 s`` under 90 s, ``about 3 min`` under 90 minutes, ``about 2.5 h`` (``about 3 h``) beyond; empty for None (or a
        time that is not one: negative, not finite).
    """
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return ""
    if seconds < 90:
        return f"about {max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"about {round(seconds / 60)} min"
    return f"about {round(seconds / 3600, 1):g} h"


def _job_folders(work_dir: Path) -> list[Path]:
    """The job folders directly in ``work_dir`` (a real folder holding a ``job.json`` file), oldest first."""
    try:
        entries = list(os.scandir(work_dir))
    except OSError:  # no work folder yet
        return []
    folders = []
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                job_file = Path(entry.path) / JOB_FILE
                if job_file.is_file():
                    # When the job was written: the run's start (the folder's own time moves as outputs arrive).
                    folders.append((job_file.stat().st_mtime, entry.name, Path(entry.path)))
        except OSError:  # gone meanwhile
            continue
    return [path for _, _, path in sorted(folders)]


def prune_run_folders(work_dir: Path, keep: int, protect: Iterable[Path] = ()) -> list[Path]:
    """Delete all but the newest ``keep`` job folders in ``work_dir``.

    Args:
        work_dir: the folder the runs are made in.
        keep: how many of the newest job folders to keep; 0 deletes every one not protected.
        protect: folders never deleted (the running job's); those that are job folders count towards ``keep``,
            so that ``keep`` job folders stay (or the protected ones, when they are more).

    Returns:
        The folders deleted, oldest first. Only job folders are deleted (folders directly in ``work_dir`` that
        hold a ``job.json``; never a link, a file, or any other folder); one that cannot be deleted (a file in use)
        is left, and not listed.

    Raises:
        InputError: ``keep`` is negative.
    """
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
        raise InputError(f"keep must be a whole number of run folders ≥ 0, got {keep!r}")
    protected = {_identity(Path(p)) for p in protect}
    folders = _job_folders(Path(work_dir))
    unprotected = [folder for folder in folders if _identity(folder) not in protected]
    spare = max(keep - (len(folders) - len(unprotected)), 0)  # what ``keep`` leaves once the protected are counted
    deleted = []
    for folder in unprotected[:max(len(unprotected) - spare, 0)]:
        try:
            shutil.rmtree(folder)
        except OSError:
            continue
        deleted.append(folder)
    return deleted


def _identity(path: Path) -> Path:
    """A path as it compares: absolute, links resolved."""
    try:
        return path.resolve()
    except OSError:
        return path.absolute()
