"""One backend run from the scene: nodes to a job folder, the engine in its own process, outputs back as nodes.

A run writes each input node (and any volume computed for it, such as the box
mask) to ``<job folder>/inputs`` with the engine's writer, writes ``job.json``
and starts ``python -m tumorgen.backend`` through the engine's
:class:`~tumorgen.backend.runner.JobRunner`. The caller polls it from its own
timer; when the job is done its outputs are loaded as new nodes, grouped in
the subject hierarchy under the run's name. Input nodes are only read.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tumorgen.backend.events import Event
from tumorgen.backend.job import Job
from tumorgen.backend.runner import JobOutcome, JobProcess, JobRunner
from tumorgen.errors import InputError
from tumorgen.volume import Volume
from tumorgen_slicer.checks import VOLUME_SUFFIXES
from tumorgen_slicer.nodes import load_volume, write_node



@dataclass(frozen=True)
class FileInput:
    """An input the run writes into its own inputs folder (a table rather than a volume): ``write(path)`` writes it."""

    filename: str
    write: Callable[[Path], Any]


@dataclass
class RunSpec:
    """What to run: a backend task, its inputs (nodes, engine volumes, file paths or :class:`FileInput`) and parameters."""

    task: str
    name: str
    inputs: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    #: Outputs to load as label maps (the rest load as scalar volumes).
    labelmaps: frozenset[str] = frozenset()
    #: Outputs to load (None: every volume output).
    load: tuple[str, ...] | None = None


class Run:
    """A started backend job and, once it is done, the nodes it produced."""

    def __init__(self, spec: RunSpec, folder: Path, process: JobProcess):
        self.spec = spec
        self.folder = folder
        self.process = process
        self.outcome: JobOutcome | None = None
        self.nodes: dict[str, Any] = {}
        self.input_files: dict[str, Path] = {}
        self.started = time.monotonic()
        self.finished_at: float | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def done(self) -> bool:
        return self.outcome is not None

    @property
    def seconds(self) -> float:
        return (self.finished_at or time.monotonic()) - self.started

    def poll(self) -> list[Event]:
        """Events since the last poll (never waits); sets :attr:`outcome` once the job has ended."""
        if self.outcome is not None:
            return []
        events = self.process.poll()
        if self.process.outcome is not None:
            self.outcome = self.process.outcome
            self.finished_at = time.monotonic()
        return events

    def request_cancel(self) -> None:
        """Ask the job to stop and return at once; later polls kill it after a grace period and set the outcome."""
        if self.outcome is None:
            self.process.request_cancel()

    def cancel(self, timeout: float = 10.0) -> None:
        """Cancel and wait until the job is gone (scripts and tests; a GUI calls :meth:`request_cancel` and polls)."""
        if self.outcome is None:
            self.outcome = self.process.cancel(timeout=timeout)
            self.finished_at = time.monotonic()

    def load_outputs(self, ctx) -> dict[str, Any]:
        """Load the outputs as new nodes under a subject-hierarchy folder named after the run."""
        if self.outcome is None or not self.outcome.ok:
            raise InputError(f"run {self.name!r} has no outputs to load")
        wanted = self.spec.load
        for key, path in self.outcome.outputs.items():
            if wanted is not None and key not in wanted:
                continue
            if not str(path).endswith(VOLUME_SUFFIXES):
                continue
            self.nodes[key] = load_volume(ctx, path, f"{self.name} {key}", labelmap=key in self.spec.labelmaps)
        group(ctx, self.name, list(self.nodes.values()))
        return self.nodes


def start_run(spec: RunSpec, work_dir: Path, runner: JobRunner, device: str = "auto") -> Run:
    """Write the inputs and the job file to a new folder under ``work_dir`` and start the job."""
    from tumorgen.volume_io import write_volume

    folder = _new_folder(Path(work_dir), spec.task)
    inputs_dir = folder / "inputs"
    inputs_dir.mkdir()
    files: dict[str, Path] = {}
    for key, value in spec.inputs.items():
        if value is None:
            continue
        target = inputs_dir / f"{key}.nii.gz"
        if isinstance(value, FileInput):
            files[key] = inputs_dir / value.filename
            value.write(files[key])
        elif isinstance(value, Volume):
            files[key] = write_volume(value, target)
        elif isinstance(value, (str, Path)):
            files[key] = Path(value)
        else:
            files[key] = write_node(value, target)
    job = Job(task=spec.task, inputs={k: str(v) for k, v in files.items()}, params=dict(spec.params), device=device,
              output_dir=folder / "outputs")
    process = runner.start(job.write(folder / "job.json"))
    run = Run(spec, folder, process)
    run.input_files = files
    return run


def group(ctx, folder_name: str, nodes: list) -> int:
    """Put ``nodes`` in a subject-hierarchy folder (created under the scene) and return the folder's item ID."""
    sh = ctx.subject_hierarchy
    folder = sh.CreateFolderItem(sh.GetSceneItemID(), folder_name)
    for node in nodes:
        item = sh.GetItemByDataNode(node)
        if item:
            sh.SetItemParent(item, folder)
        else:
            sh.CreateItem(folder, node)
    return folder


def _new_folder(work_dir: Path, task: str) -> Path:
    work_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", task)
    for n in range(1, 10000):
        folder = work_dir / f"{stamp}-{base}-{n}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise InputError(f"could not create a job folder in {work_dir}")
