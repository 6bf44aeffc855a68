"""Tissue maps: CSF, grey and white matter probabilities on one grid.

The growth model and the generative models' conditioning both use them.
A tissue *label map* uses 0 background, 1 CSF, 2 grey matter, 3 white matter.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tumorgen.errors import InputError
from tumorgen.volume import Volume

#: Label values of a tissue label map.
BACKGROUND, CSF, GM, WM = 0, 1, 2, 3
TISSUE_NAMES = ("csf", "gm", "wm")
#: File names used when tissue maps are written to / read from a folder.
FILE_NAMES = {name: f"tissue-{name}.nii.gz" for name in TISSUE_NAMES}
LABEL_FILE_NAME = "tissue-labels.nii.gz"


@dataclass(frozen=True)
class TissueMaps:
    """Probability maps (float32 in [0, 1]) of CSF, grey matter and white matter.

    Outside the brain all three are 0. Inside, they need not sum to 1 exactly
    (partial volume with other structures), but never exceed it by more than rounding.
    """

    csf: Volume
    gm: Volume
    wm: Volume

    def __post_init__(self) -> None:
        for name in ("gm", "wm"):
            other = getattr(self, name)
            if not other.grid.matches(self.csf.grid):
                raise InputError(f"tissue maps csf and {name} have different geometry: {'; '.join(self.csf.grid.differences(other.grid))}")

    @property
    def grid(self):
        return self.csf.grid

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.csf.array, self.gm.array, self.wm.array

    def brain_mask(self) -> Volume:
        csf, gm, wm = self.arrays()
        return self.csf.with_array((csf + gm + wm) > 0.5)

    def tissue_mask(self) -> Volume:
        """Voxels where tumor cells can live: more grey plus white matter than CSF, inside the brain."""
        csf, gm, wm = self.arrays()
        return self.csf.with_array(((gm + wm) > csf) & ((csf + gm + wm) > 0.5))

    def labels(self) -> Volume:
        """Hard labels (0 background, 1 CSF, 2 GM, 3 WM) by the largest probability inside the brain."""
        csf, gm, wm = self.arrays()
        stacked = np.stack([csf, gm, wm])
        labels = (np.argmax(stacked, axis=0) + 1).astype(np.uint8)
        labels[(csf + gm + wm) <= 0.5] = BACKGROUND
        return self.csf.with_array(labels)

    @classmethod
    def from_labels(cls, labels: Volume) -> TissueMaps:
        """Probability maps (0 or 1) from a tissue label map."""
        values = np.unique(labels.array)
        unknown = sorted(set(values.tolist()) - {BACKGROUND, CSF, GM, WM})
        if unknown:
            raise InputError(f"tissue label map has values {unknown}; expected 0 background, 1 CSF, 2 GM, 3 WM")
        if not np.isin(values, (CSF, GM, WM)).any():
            raise InputError("tissue label map has no CSF, GM or WM voxel")
        arr = labels.array
        return cls(*(labels.with_array((arr == value).astype(np.float32)) for value in (CSF, GM, WM)))

    @classmethod
    def from_arrays(cls, csf: np.ndarray, gm: np.ndarray, wm: np.ndarray, reference: Volume) -> TissueMaps:
        return cls(*(reference.with_array(np.asarray(a, dtype=np.float32)) for a in (csf, gm, wm)))

    # -- files -------------------------------------------------------------
    def write(self, folder: str | os.PathLike) -> dict[str, Path]:
        from tumorgen.volume_io import write_volume

        folder = Path(folder)
        out = {name: write_volume(getattr(self, name), folder / FILE_NAMES[name], dtype=np.float32) for name in TISSUE_NAMES}
        out["labels"] = write_volume(self.labels(), folder / LABEL_FILE_NAME)
        return out

    @classmethod
    def read(cls, csf: str | os.PathLike, gm: str | os.PathLike, wm: str | os.PathLike) -> TissueMaps:
        """Read three probability maps; they must share a geometry and lie in [0, 1]."""
        from tumorgen.volume_io import read_volume

        maps = {}
        for name, path in zip(TISSUE_NAMES, (csf, gm, wm)):
            volume = read_volume(path, role=f"{name} map")
            arr = volume.array.astype(np.float32)
            lo, hi = float(arr.min()), float(arr.max())
            if lo < -1e-3 or hi > 1.0 + 1e-3:
                raise InputError(f"{name} map {path} has values in [{lo:g}, {hi:g}]; expected probabilities in [0, 1]")
            maps[name] = volume.with_array(np.clip(arr, 0.0, 1.0))
        return cls(**maps)

    @classmethod
    def read_folder(cls, folder: str | os.PathLike) -> TissueMaps:
        folder = Path(folder)
        return cls.read(*(folder / FILE_NAMES[name] for name in TISSUE_NAMES))
