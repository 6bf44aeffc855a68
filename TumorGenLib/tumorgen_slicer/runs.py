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
from typing import Any, Callable, Iterator

from tumorgen.backend.events import Event
from tumorgen.backend.job import Job
from tumorgen.backend.runner import JobOutcome, JobProcess, JobRunner
from tumorgen.errors import InputError
from tumorgen.volume import Volume
from tumorgen_slicer.checks import VOLUME_SUFFIXES
from tumorgen_slicer import exchange
from tumorgen_slicer.exchange import load_node
from tumorgen_slicer.nodes import write_node
from tumorgen_slicer.segmentations import is_segmentation, labelmap_to_segmentation



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
    #: Outputs of tumor labels (BraTS 1-3, the resection cavity 4; not pure masks such as a box or a generated region):
    #: each loads as a label map and also as a segmentation node with named, coloured segments, kept in
    #: :attr:`Run.segmentations` (:func:`~tumorgen_slicer.segmentations.labelmap_to_segmentation`).
    segmentations: frozenset[str] = frozenset()
    #: Outputs to load (None: every volume output).
    load: tuple[str, ...] | None = None

    @property
    def voxels(self) -> int:
        """The size of the run, for its expected time: the voxels of its largest volume input (1 without one)."""
        sizes = [1]
        for value in self.inputs.values():
            image = value.GetImageData() if hasattr(value, "GetImageData") else None
            if image is not None:
                dims = image.GetDimensions()
                sizes.append(int(dims[0]) * int(dims[1]) * int(dims[2]))
            elif isinstance(value, Volume):
                sizes.append(int(value.array.size))
        return max(sizes)


class Run:
    """A started backend job and, once it is done, the nodes it produced."""

    def __init__(self, spec: RunSpec, folder: Path, process: JobProcess):
        self.spec = spec
        self.folder = folder
        self.process = process
        self.outcome: JobOutcome | None = None
        #: The loaded outputs by output name: scalar volumes and label maps (what the presenter's results list).
        self.nodes: dict[str, Any] = {}
        #: The segmentation nodes of the outputs in :attr:`RunSpec.segmentations`, by output name (the label map of the
        #: same output is in :attr:`nodes`).
        self.segmentations: dict[str, Any] = {}
        self.input_files: dict[str, Path] = {}
        #: The result in one line, set by whoever reads the outputs ("tumor 12.0 cm³"); the status line shows it.
        self.summary = ""
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

    def kill(self) -> None:
        """Kill the job's processes at once, without waiting (the front end goes away)."""
        if self.outcome is None:
            self.process.kill()

    def cancel(self, timeout: float = 10.0) -> None:
        """Cancel and wait until the job is gone (scripts and tests; a GUI calls :meth:`request_cancel` and polls)."""
        if self.outcome is None:
            self.outcome = self.process.cancel(timeout=timeout)
            self.finished_at = time.monotonic()

    def load_outputs(self, ctx) -> dict[str, Any]:
        """Load the outputs as new nodes under a subject-hierarchy folder named after the run (all at once).

        Returns :attr:`nodes`; the outputs in :attr:`RunSpec.segmentations` also load as segmentation nodes
        (``<run> <output> segmentation``), into :attr:`segmentations` and the same folder.
        """
        for _ in self.loading(ctx):
            pass
        return self.nodes

    def loading(self, ctx) -> Iterator[str]:
        """Load the outputs as :meth:`load_outputs` does, one node per step (a GUI takes a step per timer tick, so
        no tick holds it long); each step yields the name of what it loaded.
        """
        if self.outcome is None or not self.outcome.ok:
            raise InputError(f"run {self.name!r} has no outputs to load")
        wanted, labels = self.spec.load, self.spec.labelmaps | self.spec.segmentations
        for key, path in self.outcome.outputs.items():
            if wanted is not None and key not in wanted:
                continue
            if not str(path).endswith(VOLUME_SUFFIXES):
                continue
            self.nodes[key] = load_node(ctx, path, f"{self.name} {key}", labelmap=key in labels)
            yield key
            if key in self.spec.segmentations:
                self.segmentations[key] = labelmap_to_segmentation(ctx, self.nodes[key], f"{self.name} {key} segmentation")
                yield f"{key} segmentation"
        group(ctx, self.name, [*self.nodes.values(), *self.segmentations.values()])


def start_run(spec: RunSpec, work_dir: Path, runner: JobRunner, device: str = "auto") -> Run:
    """Write the inputs and the job file to a new folder under ``work_dir`` and start the job.

    Volumes are exchanged as raw NRRD both ways (:mod:`~tumorgen_slicer.exchange`: cheap on the GUI thread); the
    job asks the backend to write its volume outputs so too.
    """
    folder = _new_folder(Path(work_dir), spec.task)
    inputs_dir = folder / "inputs"
    inputs_dir.mkdir()
    files: dict[str, Path] = {}
    for key, value in spec.inputs.items():
        if value is None:
            continue
        target = inputs_dir / f"{key}{exchange.SUFFIX}"
        if isinstance(value, FileInput):
            files[key] = inputs_dir / value.filename
            value.write(files[key])
        elif isinstance(value, Volume):
            files[key] = exchange.write_volume(value, target)
        elif isinstance(value, (str, Path)):
            files[key] = Path(value)
        elif is_segmentation(value):  # its labels, on the t1n's grid
            files[key] = write_node(value, target, reference=spec.inputs.get("t1n"))
        else:
            files[key] = exchange.write_node(value, target)
    job = Job(task=spec.task, inputs={k: str(v) for k, v in files.items()}, params=dict(spec.params), device=device,
              output_dir=folder / "outputs", output_format="nrrd")
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
