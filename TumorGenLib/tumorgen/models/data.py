"""Training data: case folders from the simulator or in BraTS format, random crops with augmentation.

A case is a folder ``<case>/`` with ``<case>-t1n.nii.gz`` (and any of ``-t1c``,
``-t2w``, ``-t2f``), optionally ``-seg``, ``-concentration`` and
``-tissue-csf/-gm/-wm`` (the simulator writes all of them). Every volume is
resampled once to the config's isotropic spacing and kept in memory. Where a
case has no concentration it is approximated from its labels (oedema 0.4,
enhancing 0.8, necrosis 1.0); where it has no tissue maps it cannot condition
the ControlNet and is skipped for that model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tumorgen.errors import InputError

CONTRASTS = ("t1n", "t1c", "t2w", "t2f")
TISSUES = ("tissue-csf", "tissue-gm", "tissue-wm")
LABEL_TO_CONCENTRATION = {1: 1.0, 2: 0.4, 3: 0.8}


@dataclass
class Case:
    name: str
    images: dict[str, np.ndarray]
    condition: dict[str, np.ndarray]  # csf, gm, wm, concentration (when known)
    voxel_cm3: float


def find_cases(root: str | Path) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"training data folder not found: {root}")
    cases = sorted(p for p in root.iterdir() if p.is_dir() and (p / f"{p.name}-t1n.nii.gz").is_file())
    if not cases:
        raise InputError(f"no case folders in {root} (expected <case>/<case>-t1n.nii.gz, as tumorgen simulate writes)")
    return cases


def load_case(folder: Path, spacing_mm: float) -> Case:
    from tumorgen.resample import resample, working_grid
    from tumorgen.volume_io import read_volume

    name = folder.name

    def read(suffix: str, interpolation: str = "linear") -> np.ndarray | None:
        path = folder / f"{name}-{suffix}.nii.gz"
        if not path.is_file():
            return None
        volume = read_volume(path, role=f"{name} {suffix}")
        grid = working_grid(volume.grid, spacing_mm)
        return np.asarray(resample(volume.with_array(volume.array.astype(np.float32)), grid, interpolation=interpolation).array, np.float32)

    images = {c: a for c in CONTRASTS if (a := read(c)) is not None}
    condition: dict[str, np.ndarray] = {}
    tissues = [read(t) for t in TISSUES]
    if all(t is not None for t in tissues):
        condition.update(zip(("csf", "gm", "wm"), tissues))
    conc = read("concentration")
    if conc is None:
        seg = read("seg", interpolation="nearest")
        if seg is not None:
            conc = np.zeros_like(seg)
            for label, value in LABEL_TO_CONCENTRATION.items():
                conc[np.rint(seg) == label] = value
    if conc is not None:
        condition["concentration"] = np.clip(conc, 0.0, 1.0)
    return Case(name, images, condition, spacing_mm**3 / 1000.0)


class CropSampler:
    """Random crops (a tumor-containing one half of the time) with left-right flips and intensity scaling."""

    def __init__(self, cases: list[Case], crop, seed: int, condition: tuple[str, ...] | None = None):
        self.cases = [c for c in cases if condition is None or all(k in c.condition for k in condition)]
        if not self.cases:
            raise InputError(f"no training case has all of the condition channels {condition}")
        self.crop = tuple(int(c) for c in crop)
        self.condition = condition
        self.seed = seed

    def batch(self, step: int, size: int) -> dict[str, np.ndarray]:
        """Batch number ``step``: deterministic from (seed, step), so a resumed run sees the same data."""
        rng = np.random.default_rng([self.seed, step])
        images, conditions, volumes = [], [], []
        for _ in range(size):
            case = self.cases[rng.integers(len(self.cases))]
            contrast = list(case.images)[rng.integers(len(case.images))]
            image = case.images[contrast]
            starts = self._start(case, image.shape, rng)
            box = tuple(slice(s, s + c) for s, c in zip(starts, self.crop))
            flip = bool(rng.integers(2))
            crop = _pad(image[box], self.crop)
            crop = crop * np.float32(rng.uniform(0.9, 1.1))
            images.append(crop[::-1].copy() if flip else crop)
            conc = case.condition.get("concentration")
            volumes.append(float((_pad(conc[box], self.crop) >= 0.25).sum()) * case.voxel_cm3 if conc is not None else 0.0)
            if self.condition:
                stacked = np.stack([_pad(case.condition[k][box], self.crop) for k in self.condition])
                conditions.append(stacked[:, ::-1].copy() if flip else stacked)
        out = {"image": np.stack(images)[:, None].astype(np.float32), "volume_cm3": np.asarray(volumes, np.float32)}
        if self.condition:
            out["condition"] = np.stack(conditions).astype(np.float32)
        return out

    def _start(self, case: Case, shape, rng) -> list[int]:
        conc = case.condition.get("concentration")
        if conc is not None and rng.random() < 0.5 and (conc >= 0.25).any():
            idx = np.argwhere(conc >= 0.25)
            centre = idx[rng.integers(len(idx))]
        else:
            brain = np.argwhere(case.images[next(iter(case.images))] > 0) if rng.random() < 0.9 else None
            centre = brain[rng.integers(len(brain))] if brain is not None and len(brain) else np.asarray(shape) // 2
        return [int(np.clip(c - k // 2, 0, max(0, n - k))) for c, k, n in zip(centre, self.crop, shape)]


def _pad(array: np.ndarray, crop) -> np.ndarray:
    if array.shape == tuple(crop):
        return array
    out = np.zeros(crop, np.float32)
    out[tuple(slice(0, n) for n in array.shape)] = array
    return out


def load_cases(root: str | Path, spacing_mm: float, progress=None) -> list[Case]:
    folders = find_cases(root)
    cases = []
    for n, folder in enumerate(folders):
        cases.append(load_case(folder, spacing_mm))
        if progress:
            progress((n + 1) / len(folders), f"loaded {folder.name}")
    return cases


__all__ = ["Case", "CropSampler", "find_cases", "load_case", "load_cases"]
