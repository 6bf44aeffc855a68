"""Training data: case folders from the simulator or in BraTS format, random crops with augmentation.

A case is a folder ``<case>/`` with ``<case>-t1n.nii.gz`` (and any of ``-t1c``,
``-t2w``, ``-t2f``), optionally ``-seg``, ``-concentration`` and
``-tissue-csf/-gm/-wm`` (the simulator writes all of them), and noise-free
references ``-t1n-noisefree`` etc. when the simulator was asked for them
(evaluation only; training never reads them). Every volume is
resampled once to the config's isotropic spacing and kept in memory. Where a
case has no concentration it is approximated from its labels (oedema 0.4,
enhancing 0.8, necrosis 1.0); where it has no tissue maps it cannot condition
the ControlNet and is skipped for that model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    references: dict[str, np.ndarray] = field(default_factory=dict)  # contrast → its noise-free version (simulated cases)


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
    references = {c: a for c in images if (a := read(f"{c}-noisefree")) is not None}
    return Case(name, images, condition, spacing_mm**3 / 1000.0, references)


class CropSampler:
    """Random crops (a tumor-containing one half of the time) with left-right flips and intensity scaling."""

    def __init__(self, cases: list[Case], crop, seed: int, condition: tuple[str, ...] | None = None,
                 contrasts: tuple[str, ...] | None = None):
        self.cases = usable_cases(cases, condition, contrasts)
        self.contrasts = sorted({k for c in self.cases for k in c.images})
        self.crop = tuple(int(c) for c in crop)
        self.condition = condition
        self.seed = seed
        self._index_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def batch(self, step: int, size: int) -> dict[str, np.ndarray]:
        """Batch number ``step``: deterministic from (seed, step), so a resumed run sees the same data."""
        rng = np.random.default_rng([self.seed, step])
        images, conditions, volumes = [], [], []
        for _ in range(size):
            case = self.cases[rng.integers(len(self.cases))]
            contrast = list(case.images)[rng.integers(len(case.images))]  # usable_cases kept the wanted contrasts only
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

    def _indices(self, case: Case) -> tuple[np.ndarray, np.ndarray]:
        """Voxel indices of the tumor (concentration ≥ 0.25) and of the foreground, computed once per case."""
        if case.name not in self._index_cache:
            conc = case.condition.get("concentration")
            tumor = np.argwhere(conc >= 0.25) if conc is not None else np.zeros((0, 3), np.int64)
            self._index_cache[case.name] = (tumor, np.argwhere(case.images[next(iter(case.images))] > 0))
        return self._index_cache[case.name]

    def _start(self, case: Case, shape, rng) -> list[int]:
        tumor, foreground = self._indices(case)
        if case.condition.get("concentration") is not None and rng.random() < 0.5 and len(tumor):
            centre = tumor[rng.integers(len(tumor))]
        else:
            brain = foreground if rng.random() < 0.9 else None
            centre = brain[rng.integers(len(brain))] if brain is not None and len(brain) else np.asarray(shape) // 2
        return [int(np.clip(c - k // 2, 0, max(0, n - k))) for c, k, n in zip(centre, self.crop, shape)]


def usable_cases(cases: list[Case], condition: tuple[str, ...] | None, contrasts: tuple[str, ...] | None) -> list[Case]:
    """The cases with every condition channel, restricted to ``contrasts`` (all when None); an InputError when none is left."""
    kept = []
    for case in cases:
        images = {k: v for k, v in case.images.items() if contrasts is None or k in contrasts}
        if images and (condition is None or all(k in case.condition for k in condition)):
            kept.append(Case(case.name, images, case.condition, case.voxel_cm3))
    if not kept:
        wanted = f"contrasts {', '.join(contrasts)}" if contrasts else "images"
        raise InputError(f"no training case has {wanted}" + (f" and all of the condition channels {', '.join(condition)}" if condition else ""))
    return kept


@dataclass
class LatentCase:
    name: str
    latents: list[np.ndarray]  # one (C, x, y, z) array per contrast
    contrasts: tuple[str, ...]
    condition: dict[str, np.ndarray]  # on the image grid, padded to the latent grid × downsampling
    voxel_cm3: float
    brain: np.ndarray  # latent-grid indices (n, 3) of blocks with foreground


def encode_cases(cases: list[Case], encode, downsampling: int, progress=None) -> list[LatentCase]:
    """Every image of ``cases`` encoded once, whole, by ``encode`` (an array (1, 1, X, Y, Z) → latents (1, C, x, y, z)).

    The images are zero-padded to a multiple of ``downsampling`` first (the
    background is 0 after skull stripping); the condition maps likewise.
    """
    out = []
    total = sum(len(c.images) for c in cases)
    done = 0
    for case in cases:
        latents = []
        for image in case.images.values():
            padded = _pad_to_multiple(image, downsampling)
            latents.append(np.asarray(encode(padded[None, None]))[0].astype(np.float32))
            done += 1
            if progress:
                progress(done / total, f"encoded {case.name}")
        condition = {k: _pad_to_multiple(v, downsampling) for k, v in case.condition.items()}
        blocks = [n // downsampling for n in padded.shape]
        foreground = (padded > 0).reshape(blocks[0], downsampling, blocks[1], downsampling, blocks[2], downsampling).any(axis=(1, 3, 5))
        out.append(LatentCase(case.name, latents, tuple(case.images), condition, case.voxel_cm3, np.argwhere(foreground)))
    return out


#: The condition channels :func:`perturb_tissues` moves (the tumor's concentration stays where the image has it).
TISSUE_CHANNELS = ("csf", "gm", "wm")


def perturb_tissues(stacked: np.ndarray, names: tuple[str, ...], rms_mm: float, rng: np.random.Generator,
                    smoothness_vox: float = 4.0) -> np.ndarray:
    """The tissue channels of a condition crop (C, X, Y, Z, 1 mm voxels) pulled through a random smooth fold.

    The displacement is Gaussian noise smoothed with σ ``smoothness_vox`` voxels and scaled to an RMS of
    ``rms_mm``: a wrong tissue map of the kind registration carries into a voided region, against which
    the ControlNet learns to lean on the image around it.
    """
    from scipy.ndimage import gaussian_filter, map_coordinates

    shape = stacked.shape[1:]
    field = np.stack([gaussian_filter(rng.standard_normal(shape).astype(np.float32), smoothness_vox, mode="wrap") for _ in range(3)])
    rms = float(np.sqrt(np.mean(np.sum(field**2, axis=0)))) or 1.0
    coords = np.indices(shape, dtype=np.float32) + field * np.float32(rms_mm / rms)
    out = stacked.copy()
    for c, name in enumerate(names):
        if name in TISSUE_CHANNELS:
            out[c] = map_coordinates(stacked[c], coords, order=1, mode="nearest")
    return out


class LatentCropSampler:
    """Random crops of precomputed latents with the matching condition crop on the image grid (a tumor-centred one half of the time).

    For the latent models: the frozen autoencoder encodes each volume once
    (:func:`encode_cases`) instead of every crop at every step. Batches are
    deterministic from (seed, step), like :class:`CropSampler`'s.
    """

    def __init__(self, cases: list[LatentCase], latent_crop, downsampling: int, seed: int, condition: tuple[str, ...] | None = None,
                 perturb_mm: float = 0.0):
        self.cases = cases
        #: RMS of the random fold that moves the tissue channels of half the condition crops against the image (0: none).
        self.perturb_mm = float(perturb_mm)
        self.contrasts = sorted({k for c in cases for k in c.contrasts})
        self.crop = tuple(int(c) for c in latent_crop)
        self.down = int(downsampling)
        self.condition = condition
        self.seed = seed
        self._tumor: dict[str, np.ndarray] = {}

    def batch(self, step: int, size: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([self.seed, step])
        folds = np.random.default_rng([self.seed, step, 1])  # its own stream: the crops are those of an unperturbed run
        latents, conditions, volumes = [], [], []
        image_crop = tuple(c * self.down for c in self.crop)
        for _ in range(size):
            case = self.cases[rng.integers(len(self.cases))]
            latent = case.latents[rng.integers(len(case.latents))]
            starts = self._start(case, latent.shape[1:], rng)
            latents.append(np.stack([_pad(ch[tuple(slice(s, s + c) for s, c in zip(starts, self.crop))], self.crop) for ch in latent]))
            box = tuple(slice(s * self.down, (s + c) * self.down) for s, c in zip(starts, self.crop))
            conc = case.condition.get("concentration")
            volumes.append(float((_pad(conc[box], image_crop) >= 0.25).sum()) * case.voxel_cm3 if conc is not None else 0.0)
            if self.condition:
                stacked = np.stack([_pad(case.condition[k][box], image_crop) for k in self.condition])
                if self.perturb_mm > 0 and folds.random() < 0.5:
                    stacked = perturb_tissues(stacked, self.condition, self.perturb_mm, folds)
                conditions.append(stacked)
        out = {"latent": np.stack(latents).astype(np.float32), "volume_cm3": np.asarray(volumes, np.float32)}
        if self.condition:
            out["condition"] = np.stack(conditions).astype(np.float32)
        return out

    def _start(self, case: LatentCase, shape, rng) -> list[int]:
        if case.name not in self._tumor:
            conc = case.condition.get("concentration")
            self._tumor[case.name] = np.argwhere(conc >= 0.25) // self.down if conc is not None else np.zeros((0, 3), np.int64)
        tumor = self._tumor[case.name]
        if case.condition.get("concentration") is not None and rng.random() < 0.5 and len(tumor):
            idx = tumor
        else:
            idx = case.brain if len(case.brain) else np.asarray([[n // 2 for n in shape]])
        centre = idx[rng.integers(len(idx))]
        return [int(np.clip(c - k // 2, 0, max(0, n - k))) for c, k, n in zip(centre, self.crop, shape)]


def _pad_to_multiple(array: np.ndarray, multiple: int) -> np.ndarray:
    from tumorgen.models.sampling import pad_to

    return pad_to(array, multiple)[0]


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


__all__ = ["Case", "CropSampler", "LatentCase", "LatentCropSampler", "encode_cases", "find_cases", "load_case", "load_cases", "usable_cases"]
