"""A cheap stand-in for the per-case recipe, for the dataset builder's tests (importable by Ray workers too).

``make_case`` writes five tiny deterministic volumes (values from the case seed)
after a short sleep, so that cases overlap on the workers. Settings:

* ``sleep_s``: the sleep (default 0.3 s);
* ``kill_index`` and ``kill_marker``: on the case of that index, after two of
  its five files are written, SIGKILL the process running it, the first time
  only: the marker file (created exclusively) records that it happened, and
  holds the killed process's id;
* ``fail_index``: raise on the case of that index, every time.

None of them changes a case's bytes or its returned dict.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np

from tumorgen.volume import Grid, Volume
from tumorgen.volume_io import write_volume

SIZE = (6, 5, 4)
GRID = Grid(size=SIZE, spacing=(1.0, 1.2, 1.5), origin=(-3.0, 2.0, 1.0))


def make_case(index: int, seed: int, folder: Path, settings: dict) -> dict:
    time.sleep(float(settings.get("sleep_s", 0.3)))
    if settings.get("fail_index") == index:
        raise ValueError(f"case {index} cannot be made\n(a second line)")
    case = folder.name
    rng = np.random.default_rng(seed)
    images = {name: rng.normal(100.0, 20.0, SIZE).astype(np.float32) for name in ("t1n", "t1c", "t2w", "t2f")}
    labels = rng.integers(0, 4, SIZE).astype(np.uint8)
    for n, (name, array) in enumerate(images.items()):
        if n == 2 and settings.get("kill_index") == index:
            _kill_once(Path(settings["kill_marker"]))
        write_volume(Volume(array, GRID), folder / f"{case}-{name}.nii.gz")
    write_volume(Volume(labels, GRID), folder / f"{case}-seg.nii.gz", dtype=np.uint8)
    return {"tumor_voxels": int((labels > 0).sum()), "mean_t1n": round(float(images["t1n"].mean()), 4)}


def _kill_once(marker: Path) -> None:
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return  # killed before: this is the rerun
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)
