"""Write simulated subjects as BraTS-style case folders.

A case folder ``<out>/<case>/`` holds ``<case>-t1n.nii.gz``, ``-t1c``, ``-t2w``,
``-t2f`` (BraTS 2023+ naming), ``-seg`` (0 background, 1 necrotic core,
2 oedema, 3 enhancing, 4 resection cavity), ``-concentration`` (float32 tumor
cell density) and ``-tissue-csf/-gm/-wm`` (the subject's tissue maps), with
``-t1n-noisefree`` etc. when the subject has noise-free references, plus
``<case>.json`` (the simulation's parameters and region volumes) and,
on request, ``<case>-preview.png``. A case folder is written under a temporary
name and renamed when complete, so it is whole or absent.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from tumorgen.anatomy.tissues import TISSUE_NAMES
from tumorgen.atomic import replace_dir
from tumorgen.errors import InputError
from tumorgen.simulate.contrasts import CONTRASTS
from tumorgen.simulate.subject import SimulatedSubject

#: File suffixes of a case, in the order they are written.
SUFFIXES = (*CONTRASTS, "seg", "concentration", *(f"tissue-{n}" for n in TISSUE_NAMES))


def case_files(case: str) -> dict[str, str]:
    return {suffix: f"{case}-{suffix}.nii.gz" for suffix in SUFFIXES}


def write_case(subject: SimulatedSubject, out: str | os.PathLike, *, preview: bool = False) -> Path:
    """Write ``subject`` to ``out/<case>/``; an existing case folder of that name is replaced. Returns the folder."""
    from tumorgen.volume_io import write_volume

    case = subject.case
    if not case or "/" in case or case.startswith("."):
        raise InputError(f"case name must be a plain name, got {case!r}")
    names = case_files(case)
    names.update({suffix: f"{case}-{suffix}.nii.gz" for suffix in subject.references})
    volumes = subject.volumes()
    info = {"case": case, "files": names, **subject.info}

    def write(staging: Path) -> None:
        for suffix in names:
            write_volume(volumes[suffix], staging / names[suffix], dtype=np.uint8 if suffix == "seg" else np.float32)
        (staging / f"{case}.json").write_text(json.dumps(info, indent=2, default=_jsonable))
        if preview:
            from tumorgen.simulate.preview import write_preview

            write_preview(subject.images, subject.seg, staging / f"{case}-preview.png")

    return replace_dir(Path(out) / case, write)


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
