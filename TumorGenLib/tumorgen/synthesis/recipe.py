"""One synthetic case of ``tumorgen dataset``: a tumor label map → augmented or grown → four contrasts in a healthy scan.

:func:`make_case` is what every worker runs (in this process or as a Ray task,
:mod:`tumorgen.synthesis.dataset`). Case ``i`` is a function of its seed and
the settings alone:

1. the **target brain**: the healthy scan (``settings["t1n"]``, default the
   bundled sample, simulated: its tissue maps come with it) and its CSF/GM/WM
   maps (for a given scan, the ``-tissue-csf/-gm/-wm`` files beside it, else
   from the registered template, cached on disk);
2. the **labels**: with ``settings["labels"]`` (a folder of BraTS label maps)
   one of them drawn by the seed and augmented into the target brain
   (:func:`tumorgen.synthesis.augment.augment_labels`: rotation, scaling,
   elastic deformation, relocation to white matter, nesting kept); without it,
   a new tumor grown by Fisher–Kolmogorov in the target brain to a volume in
   ``settings["volume_cm3"]`` (default 8–60 cm³; :func:`~tumorgen.synthesis.augment.grow_labels`);
3. the **contrasts**: :func:`tumorgen.synthesis.synthesize.synthesize` with the
   case's seed.

The target brain and the model are loaded once per process.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from tumorgen.errors import InputError
from tumorgen.volume import Volume

#: File suffixes of a case, in BraTS order.
SUFFIXES = ("t1n", "t1c", "t2w", "t2f", "seg")


@functools.lru_cache(maxsize=1)
def sample_scan():
    """The bundled sample (a healthy simulated MNI152 subject, the one the demo opens): (t1n, tissue maps)."""
    from tumorgen.simulate import SimulationOptions, simulate_subject
    from tumorgen.tasks.simulate import SAMPLE_CASE, SAMPLE_SEED

    subject = simulate_subject([SAMPLE_SEED, 0], SimulationOptions(tumor=False), case=SAMPLE_CASE)
    return subject.images["t1n"], subject.tissues


@functools.lru_cache(maxsize=2)
def target_brain(t1n_path: str | None):
    """(t1n, tissue maps) of the target brain: the bundled sample; or a scan ``<case>-t1n.nii.gz`` with its tissue maps
    ``<case>-tissue-csf/-gm/-wm.nii.gz`` beside it (as tumorgen simulate writes them), else maps from the registered template."""
    if t1n_path is None:
        return sample_scan()
    from tumorgen.anatomy.tissues import TissueMaps
    from tumorgen.volume_io import check_same_geometry, read_volume

    t1n = read_volume(t1n_path, role="t1n")
    path = Path(t1n_path)
    if path.name.endswith("-t1n.nii.gz"):
        beside = {k: path.with_name(path.name[: -len("t1n.nii.gz")] + f"tissue-{k}.nii.gz") for k in ("csf", "gm", "wm")}
        if all(p.is_file() for p in beside.values()):
            maps = {k: read_volume(p, role=f"tissue map {k}") for k, p in beside.items()}
            for k, volume in maps.items():
                check_same_geometry(t1n, volume, ("the t1n", f"its tissue map {beside[k].name}"))
            return t1n, TissueMaps(maps["csf"], maps["gm"], maps["wm"])
    from tumorgen.anatomy.registration import tissues_for_subject

    return t1n, tissues_for_subject(t1n)


@functools.lru_cache(maxsize=4)
def label_pool(folder: str) -> tuple[Path, ...]:
    """The label maps of a folder, sorted: files named ``*seg.nii.gz`` anywhere below it, else every ``.nii.gz`` in it."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"label folder not found: {folder}")
    found = sorted(p for p in root.rglob("*seg.nii.gz") if p.is_file())
    if not found:
        found = sorted(p for p in root.glob("*.nii.gz") if p.is_file())
    if not found:
        raise InputError(f"no label maps (*.nii.gz) in {folder}")
    return tuple(found)


@functools.lru_cache(maxsize=2)
def _model(weights: str | None, device: str):
    from tumorgen.synthesis.synthesize import SynthesisModel

    return SynthesisModel(weights, device=device)


def case_labels(rng: np.random.Generator, tissues, labels_folder: str | None, volume_cm3=(8.0, 60.0)) -> tuple[Volume, dict]:
    """The case's label map on the target grid and where it came from."""
    from tumorgen.synthesis.augment import augment_labels, check_label_map, grow_labels

    if labels_folder is None:
        labels, _ = grow_labels(tissues, rng, volume_cm3=tuple(float(v) for v in volume_cm3))
        return labels, {"source": "grown (Fisher-Kolmogorov)"}
    from tumorgen.volume_io import read_volume

    pool = label_pool(labels_folder)
    path = pool[int(rng.integers(len(pool)))]
    source = read_volume(path, role="label map")
    check_label_map(source, f"label map {path.name}")
    return augment_labels(source, tissues, rng), {"source": f"augmented {path.relative_to(labels_folder)}"}


def make_case(index: int, case_seed: int, staging: Path, settings: dict) -> dict:
    """Write case ``staging.name`` (t1n, t1c, t2w, t2f, seg) into ``staging``; returns what the datalist records."""
    from tumorgen.synthesis.synthesize import SynthesisSettings, synthesize
    from tumorgen.volume_io import write_volume

    staging = Path(staging)
    rng = np.random.default_rng(int(case_seed))
    t1n, tissues = target_brain(settings.get("t1n"))
    labels, record = case_labels(rng, tissues, settings.get("labels"), settings.get("volume_cm3") or (8.0, 60.0))
    model = _model(settings.get("weights"), str(settings.get("device") or "auto"))
    result = synthesize(model, t1n, labels, SynthesisSettings(steps=int(settings.get("steps") or 20), seed=int(case_seed) % 2**31,
                                                                     samples=int(settings.get("samples") or 2)))
    case = staging.name
    for contrast, volume in result.images.items():
        write_volume(volume, staging / f"{case}-{contrast}.nii.gz", dtype=np.float32)
    write_volume(result.seg, staging / f"{case}-seg.nii.gz", dtype=np.uint8)
    return {**record, "regions_cm3": result.info["regions_cm3"]}  # no timings: the datalist is the same on every run


__all__ = ["SUFFIXES", "case_labels", "label_pool", "make_case", "sample_scan", "target_brain"]
