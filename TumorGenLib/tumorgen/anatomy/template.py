"""The bundled sample: the MNI152 2009c template that ``nilearn``'s wheel ships.

nilearn's package data holds the ICBM152 2009 (symmetric, "converted") T1 and
the grey- and white-matter probability maps at 1 mm (197×233×189, uint8 0–255).
They are read straight from the package's data folder; nilearn itself is never
imported. As in ``nilearn.datasets.load_mni152_brain_mask``, the brain mask is
the normalised T1 above 0.2, and CSF = brain mask − GM − WM (clipped to [0, 1]).

Training data of every bundled model derives only from this template.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from tumorgen.anatomy.tissues import TissueMaps
from tumorgen.errors import TumorGenError
from tumorgen.volume import Volume

_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}
#: nilearn's brain-mask threshold on the T1 normalised to [0, 1].
BRAIN_THRESHOLD = 0.2


def template_dir() -> Path:
    """The folder of nilearn's package data that holds the MNI152 files."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise TumorGenError("the MNI152 template needs the 'nilearn' package (pip install nilearn)")
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    missing = [name for name in _FILES.values() if not (folder / name).is_file()]
    if missing:
        raise TumorGenError(f"nilearn's package data lacks {', '.join(missing)} in {folder}")
    return folder


@dataclass(frozen=True)
class Template:
    """T1 (float32, 0–1, zero outside the brain) and tissue maps on the same 1 mm grid."""

    t1: Volume
    tissues: TissueMaps

    @property
    def brain(self) -> Volume:
        return self.tissues.brain_mask()


@lru_cache(maxsize=1)
def _load() -> Template:
    from tumorgen.volume_io import read_volume

    folder = template_dir()
    raw = {key: read_volume(folder / name, role=f"MNI152 {key}") for key, name in _FILES.items()}
    t1 = raw["t1"].array.astype(np.float32) / 255.0
    gm = raw["gm"].array.astype(np.float32) / 255.0
    wm = raw["wm"].array.astype(np.float32) / 255.0
    brain = t1 > BRAIN_THRESHOLD
    gm = np.where(brain, gm, 0.0).astype(np.float32)
    wm = np.where(brain, wm, 0.0).astype(np.float32)
    csf = np.where(brain, np.clip(1.0 - gm - wm, 0.0, 1.0), 0.0).astype(np.float32)
    grid = raw["t1"].grid
    for array in (t1, gm, wm, csf):
        array.setflags(write=False)
    return Template(
        t1=Volume(t1, grid),
        tissues=TissueMaps(csf=Volume(csf, grid), gm=Volume(gm, grid), wm=Volume(wm, grid)),
    )


def load_mni152() -> Template:
    """The MNI152 template (cached; its arrays are read-only, copy before editing)."""
    return _load()
