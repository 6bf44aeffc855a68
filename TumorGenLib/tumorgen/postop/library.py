"""The case library of post-operative prediction: pre-/post-operative pairs in template space, and retrieval.

Paper 004 retrieves, for a query's tumor, the pre-/post-operative pairs whose
tumors overlap it most and shows the generator what their resection did. In
3D the cases live in the MNI152 template's space: each case's pre-operative
T1 is registered to the template (affine, :func:`tumorgen.anatomy.registration.register_template`
with the lesion kept out of the metric) and its tumor mask is carried to the
template's grid at :data:`MASK_SPACING_MM`. A case keeps

* ``tumor``: the flat indices of its tumor mask (labels 1–3) on that grid;
* a patch around its resection cavity on the template's 1 mm grid (the cavity
  box plus :data:`PATCH_MARGIN_MM`): the pre- and post-operative T1 on the
  training scale (the brain's 0.5th–99.5th percentiles outside the lesion →
  0–1) quantised to bytes, and the cavity mask;
* an image embedding for the image-retrieval baseline: the autoencoder's
  latents of the pre-operative T1 on the template's 2 mm grid, pooled;
* the resection box (centre and size, mm, in the case's own RAS) and region volumes.

A library is one ``.npz`` file (numpy arrays only, read without pickle) with a
JSON header naming :data:`FORMAT` and :data:`VERSION`; another version is
refused with a message saying so.

Retrieval (:meth:`CaseLibrary.retrieve`): ``tumor`` ranks cases by the IoU of
tumor masks (004's tumor-guided retrieval); ``image`` by the cosine similarity
of embeddings; ``random`` draws cases with a seed. With 1,000 cases the IoU of
all of them takes a few milliseconds (one gather over the concatenated indices).
"""

from __future__ import annotations

import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from tumorgen.errors import InputError
from tumorgen.volume import Grid, Volume

FORMAT = "tumorgen-postop-library"
VERSION = 1
#: Spacing of the template grid the tumor masks are compared on, mm.
MASK_SPACING_MM = 2.0
#: Context kept around a case's cavity in its patch, mm.
PATCH_MARGIN_MM = 10.0
#: Normalised intensities are stored as bytes: value = byte / PATCH_SCALE (0 … 1.275).
PATCH_SCALE = 200.0
#: The embedding's pooled grid (latent channels × these cells).
EMBEDDING_CELLS = (6, 7, 6)
RETRIEVALS = ("tumor", "image", "random")
#: BraTS labels: tumor (necrotic core, oedema, enhancing) and the resection cavity.
TUMOR_LABELS = (1, 2, 3)
CORE_LABELS = (1, 3)
CAVITY_LABEL = 4

ProgressFn = Callable[[float, str], None]


def template_grids() -> tuple[Grid, Grid]:
    """The template's 1 mm grid and its :data:`MASK_SPACING_MM` grid."""
    from tumorgen.anatomy.template import load_mni152
    from tumorgen.resample import working_grid

    grid = load_mni152().t1.grid
    return grid, working_grid(grid, MASK_SPACING_MM)


@dataclass
class LibraryCase:
    name: str
    #: Flat indices (C order) of the tumor mask on the template's mask grid.
    tumor: np.ndarray
    #: Start (i, j, k) of the patch on the template's 1 mm grid, and the patch arrays (uint8, uint8, bool).
    patch_start: tuple[int, int, int]
    pre: np.ndarray
    post: np.ndarray
    cavity: np.ndarray
    embedding: np.ndarray
    box: dict
    info: dict = field(default_factory=dict)

    def patch_grid(self, template: Grid) -> Grid:
        origin = template.index_to_lps(self.patch_start)
        return Grid(tuple(int(n) for n in self.pre.shape), template.spacing, tuple(float(v) for v in origin), template.direction)

    def patch_volumes(self, template: Grid) -> dict[str, Volume]:
        """The patch on the template: ``pre`` and ``post`` (float32, normalised) and ``cavity`` (bool)."""
        grid = self.patch_grid(template)
        return {"pre": Volume(self.pre.astype(np.float32) / PATCH_SCALE, grid),
                "post": Volume(self.post.astype(np.float32) / PATCH_SCALE, grid),
                "cavity": Volume(self.cavity.astype(bool), grid)}


@dataclass(frozen=True)
class Match:
    """One retrieved case: its index in the library, its name, and the score it was ranked by (IoU, cosine, or None)."""

    index: int
    name: str
    score: float | None
    method: str

    def as_dict(self) -> dict:
        return {"case": self.name, "score": None if self.score is None else round(float(self.score), 4), "method": self.method}


class CaseLibrary:
    """Cases, the template grids they are stored on, and retrieval."""

    def __init__(self, cases: list[LibraryCase], header: dict | None = None):
        self.cases = list(cases)
        self.header = dict(header or {})
        self._flat: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.cases)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.cases]

    # -- retrieval -------------------------------------------------------
    def _concatenated(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._flat is None:
            sizes = np.array([c.tumor.size for c in self.cases], np.int64)
            self._flat = (np.concatenate([c.tumor for c in self.cases]).astype(np.int64) if self.cases else np.zeros(0, np.int64), sizes)
        flat, sizes = self._flat
        return flat, sizes, np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)

    def ious(self, query: np.ndarray) -> np.ndarray:
        """IoU of ``query`` (a boolean mask on the template's mask grid) with every case's tumor."""
        flat, sizes, starts = self._concatenated()
        q = np.ascontiguousarray(query, dtype=bool).ravel()
        running = np.concatenate([[0], np.cumsum(q[flat], dtype=np.int64)])  # hits so far, so each case's count is a difference
        inter = running[starts + sizes] - running[starts]
        union = int(q.sum()) + sizes - inter
        return np.where(union > 0, inter / np.maximum(union, 1), 0.0)

    def cosines(self, embedding: np.ndarray) -> np.ndarray:
        if any(c.embedding.size != np.size(embedding) for c in self.cases):
            raise InputError("the case library has no image embeddings of this model (rebuild it with the weights in use)")
        bank = np.stack([c.embedding for c in self.cases]).astype(np.float64)
        e = np.asarray(embedding, np.float64).ravel()
        return bank @ e / np.maximum(np.linalg.norm(bank, axis=1) * np.linalg.norm(e), 1e-12)

    def retrieve(self, k: int, method: str = "tumor", *, tumor: np.ndarray | None = None, embedding: np.ndarray | None = None,
                 seed: int = 0, exclude: Sequence[str] = ()) -> list[Match]:
        """The ``k`` best cases by ``method`` (``tumor``: IoU of tumor masks; ``image``: cosine of embeddings; ``random``)."""
        if method not in RETRIEVALS:
            raise InputError(f"retrieval must be one of {', '.join(RETRIEVALS)}, got {method!r}")
        usable = [i for i, c in enumerate(self.cases) if c.name not in set(exclude)]
        if not 1 <= k <= len(usable):
            raise InputError(f"k must be between 1 and the library's {len(usable)} usable cases, got {k}")
        if method == "random":
            rng = np.random.default_rng(seed)
            chosen = rng.choice(usable, size=k, replace=False)
            return [Match(int(i), self.cases[i].name, None, method) for i in chosen]
        if method == "tumor":
            if tumor is None:
                raise InputError("tumor-guided retrieval needs the query's tumor mask in template space")
            scores = self.ious(tumor)
        else:
            if embedding is None:
                raise InputError("image retrieval needs the query's image embedding")
            scores = self.cosines(embedding)
        order = sorted(usable, key=lambda i: (-scores[i], i))[:k]
        return [Match(int(i), self.cases[i].name, float(scores[i]), method) for i in order]

    # -- files -----------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """One ``.npz`` (written atomically); see the module docstring."""
        from tumorgen.atomic import write_bytes

        path = Path(path)
        if path.suffix != ".npz":
            raise InputError(f"a case library is a .npz file, got {path}")
        arrays: dict[str, np.ndarray] = {}
        cases = []
        for n, c in enumerate(self.cases):
            arrays[f"tumor_{n}"] = c.tumor.astype(np.uint32)
            arrays[f"pre_{n}"] = c.pre.astype(np.uint8)
            arrays[f"post_{n}"] = c.post.astype(np.uint8)
            arrays[f"cavity_{n}"] = np.packbits(c.cavity.astype(bool).ravel())
            arrays[f"embedding_{n}"] = c.embedding.astype(np.float32)
            cases.append({"name": c.name, "patch_start": [int(v) for v in c.patch_start], "patch_shape": [int(v) for v in c.pre.shape],
                          "box": c.box, "info": c.info})
        header = {**self.header, "format": FORMAT, "version": VERSION, "mask_spacing_mm": MASK_SPACING_MM,
                  "patch_scale": PATCH_SCALE, "cases": cases}
        arrays["header"] = np.frombuffer(json.dumps(header).encode("utf-8"), np.uint8)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        return write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> CaseLibrary:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"case library not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError) as exc:
            raise InputError(f"{path} is not a case library (.npz): {exc}") from None
        if "header" not in arrays:
            raise InputError(f"{path} is not a case library: it has no header")
        try:
            header = json.loads(arrays["header"].tobytes().decode("utf-8"))
        except ValueError:
            raise InputError(f"{path} is not a case library: its header is not JSON") from None
        if header.get("format") != FORMAT:
            raise InputError(f"{path} is not a case library (format {header.get('format')!r}, expected {FORMAT!r})")
        if header.get("version") != VERSION:
            raise InputError(f"case library {path} has format version {header.get('version')}; this TumorGen reads version {VERSION}: "
                             "rebuild it with tumorgen library build")
        cases = []
        try:
            for n, c in enumerate(header["cases"]):
                shape = tuple(int(v) for v in c["patch_shape"])
                cavity = np.unpackbits(arrays[f"cavity_{n}"])[: int(np.prod(shape))].reshape(shape).astype(bool)
                cases.append(LibraryCase(c["name"], arrays[f"tumor_{n}"], tuple(c["patch_start"]), arrays[f"pre_{n}"].reshape(shape),
                                         arrays[f"post_{n}"].reshape(shape), cavity, arrays[f"embedding_{n}"], c["box"], c.get("info", {})))
        except (KeyError, ValueError, TypeError) as exc:
            raise InputError(f"case library {path} is damaged: {exc}") from None
        if not cases:
            raise InputError(f"case library {path} has no cases")
        header.pop("cases")
        return cls(cases, header)


def bundled_library() -> Path:
    return Path(__file__).resolve().parent / "library" / "simulated.npz"


# ----------------------------------------------------------------------------- template space


def register_affine(t1n: Volume, lesion: np.ndarray | None, *, use_cache: bool = True, progress=None, cancelled=None):
    """The affine subject → template (SimpleITK), the lesion kept out of the metric."""
    import SimpleITK as sitk

    from tumorgen.anatomy.registration import RegistrationSettings, register_template

    exclude = None if lesion is None or not lesion.any() else t1n.with_array(lesion.astype(bool))
    registration = register_template(t1n, exclude, settings=RegistrationSettings(deformable=False), use_cache=use_cache,
                                     progress=progress, cancelled=cancelled)
    return sitk.AffineTransform(registration.affine)


def to_template(volume: Volume, affine, grid: Grid, *, interpolation: str = "linear") -> Volume:
    """``volume`` (on a subject's grid) carried onto ``grid`` (template space) through the subject → template ``affine``."""
    import SimpleITK as sitk

    image = volume.to_sitk()
    if volume.array.dtype == bool:
        image = sitk.Cast(image, sitk.sitkUInt8)
    elif volume.array.dtype != np.float32:
        image = sitk.Cast(image, sitk.sitkFloat32)
    out = sitk.Resample(image, _reference(grid), affine.GetInverse(), sitk.sitkNearestNeighbor if interpolation == "nearest" else sitk.sitkLinear,
                        0.0, image.GetPixelID())
    result = Volume.from_sitk(out)
    return result.with_array(result.array.astype(bool)) if volume.array.dtype == bool else result


def from_template(volume: Volume, affine, grid: Grid, *, interpolation: str = "linear") -> Volume:
    """``volume`` (template space) carried onto a subject's ``grid`` through the subject → template ``affine``."""
    import SimpleITK as sitk

    image = volume.to_sitk()
    if volume.array.dtype != np.float32:
        image = sitk.Cast(image, sitk.sitkFloat32)
    out = sitk.Resample(image, _reference(grid), affine, sitk.sitkNearestNeighbor if interpolation == "nearest" else sitk.sitkLinear, 0.0,
                        sitk.sitkFloat32)
    return Volume.from_sitk(out)


def _reference(grid: Grid):
    import SimpleITK as sitk

    reference = sitk.Image([int(n) for n in grid.size], sitk.sitkUInt8)
    reference.SetSpacing(grid.spacing)
    reference.SetOrigin(grid.origin)
    reference.SetDirection(grid.direction)
    return reference


def normalise(image: Volume, lesion: np.ndarray) -> tuple[np.ndarray, float, float]:
    """The image on the training scale (percentiles of the brain outside ``lesion`` → 0–1) and the two intensities."""
    from tumorgen.inpainting.core import normalisation

    lo, hi = normalisation(image.array, lesion)
    return np.clip((image.array.astype(np.float32) - lo) / (hi - lo), 0.0, None), lo, hi


def template_tumor(seg: np.ndarray, grid: Grid, affine) -> np.ndarray:
    """The tumor (labels 1–3) of a label map on ``grid`` as a boolean mask on the template's mask grid."""
    _, coarse = template_grids()
    tumor = Volume(np.isin(seg, TUMOR_LABELS), grid)
    # the fraction of each coarse voxel covered (linear resampling of the 0/1 mask), at least half → tumor
    covered = to_template(tumor.with_array(tumor.array.astype(np.float32)), affine, coarse)
    return covered.array >= 0.5


def embed(model, normalised: Volume, affine) -> np.ndarray:
    """The image-retrieval embedding: the autoencoder's latents of the T1 on the template's 2 mm grid, mean-pooled."""
    import torch

    _, coarse = template_grids()
    on_template = to_template(normalised, affine, coarse).array
    latents = model.encode(on_template)
    pooled = torch.nn.functional.adaptive_avg_pool3d(latents.float().cpu(), EMBEDDING_CELLS)
    return pooled.numpy().ravel().astype(np.float32)


def box_of_mask(mask: np.ndarray, grid: Grid, margin_mm: float = 0.0) -> dict:
    """The RAS box (centre and size, mm) around a mask's voxels, grown by ``margin_mm`` on each side."""
    idx = np.argwhere(mask)
    lo, hi = idx.min(0), idx.max(0)
    corners = np.array([grid.index_to_ras([a, b, c]) for a in (lo[0], hi[0]) for b in (lo[1], hi[1]) for c in (lo[2], hi[2])])
    size = corners.max(0) - corners.min(0) + np.abs(grid.direction_matrix @ np.asarray(grid.spacing)) + 2 * margin_mm
    return {"centre_ras_mm": [round(float(v), 2) for v in corners.mean(0)], "size_mm": [round(float(v), 2) for v in size]}


# ----------------------------------------------------------------------------- building


@dataclass(frozen=True)
class Pair:
    """A pre-/post-operative pair on disk: two BraTS-format case folders."""

    name: str
    pre: Path
    post: Path

    def file(self, which: str, suffix: str) -> Path:
        folder = self.pre if which == "pre" else self.post
        return folder / f"{folder.name}-{suffix}.nii.gz"

    def box(self) -> dict | None:
        """The resection box the simulator recorded in the post-operative case's JSON, if any."""
        info = self.post / f"{self.post.name}.json"
        try:
            box = json.loads(info.read_text()).get("resection_box") if info.is_file() else None
        except (OSError, ValueError):
            return None
        return box if isinstance(box, dict) and "centre_ras_mm" in box else None


def find_pairs(root: str | Path) -> list[Pair]:
    """Pairs in a folder: case folders ``<subject>-000`` (pre-operative) and ``<subject>-001`` (post-operative, a ``-seg``
    with label 4), each with ``-t1n`` and ``-seg``, as ``tumorgen simulate --postop`` writes them."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"data folder not found: {root}")
    pairs = []
    for pre in sorted(p for p in root.iterdir() if p.is_dir() and p.name.endswith("-000")):
        post = root / f"{pre.name[:-4]}-001"
        pair = Pair(pre.name[:-4], pre, post)
        if post.is_dir() and all(pair.file(w, s).is_file() for w in ("pre", "post") for s in ("t1n", "seg")):
            pairs.append(pair)
    if not pairs:
        raise InputError(f"no pre-/post-operative pairs in {root} (expected <subject>-000/ and <subject>-001/ case folders with "
                         "-t1n and -seg, as tumorgen simulate --postop writes)")
    return pairs


@dataclass
class PairData:
    """A pair read and prepared: both T1s normalised on the pre-operative grid, labels, box, and the affine to the template."""

    name: str
    pre: Volume
    post: Volume
    seg: np.ndarray
    post_seg: np.ndarray
    concentration: np.ndarray | None
    box: dict
    affine: object


def read_pair(pair: Pair, *, use_cache: bool = True, register: Callable | None = None) -> PairData:
    """Read and prepare a pair; ``register(t1n, lesion)`` → the subject → template affine (default :func:`register_affine`)."""
    from tumorgen.resample import resample
    from tumorgen.volume_io import read_volume

    pre = read_volume(pair.file("pre", "t1n"), role=f"{pair.name} pre-operative t1n")
    seg = np.rint(read_volume(pair.file("pre", "seg"), role=f"{pair.name} pre-operative seg").array).astype(np.int16)
    post = read_volume(pair.file("post", "t1n"), role=f"{pair.name} post-operative t1n")
    post_seg_volume = read_volume(pair.file("post", "seg"), role=f"{pair.name} post-operative seg")
    if not post.grid.matches(pre.grid):  # co-registered scans on another grid: resampled in physical space
        post = resample(post.with_array(post.array.astype(np.float32)), pre.grid)
        post_seg_volume = resample(post_seg_volume.with_array(post_seg_volume.array.astype(np.float32)), pre.grid, interpolation="nearest")
    if seg.shape != pre.shape:
        raise InputError(f"{pair.name}: the pre-operative seg and t1n have different sizes")
    post_seg = np.rint(post_seg_volume.array).astype(np.int16)
    if not np.isin(seg, TUMOR_LABELS).any():
        raise InputError(f"{pair.name}: the pre-operative seg has no tumor (labels 1-3)")
    cavity = post_seg == CAVITY_LABEL
    if not cavity.any():
        raise InputError(f"{pair.name}: the post-operative seg has no resection cavity (label 4)")
    conc_path = pair.file("pre", "concentration")
    conc = read_volume(conc_path, role=f"{pair.name} concentration").array.astype(np.float32) if conc_path.is_file() else None
    lesion = np.isin(seg, TUMOR_LABELS)
    pre_n = pre.with_array(normalise(pre, lesion)[0])
    post_n = post.with_array(normalise(post, lesion | cavity | (post_seg > 0))[0])
    affine = register(pre, lesion) if register is not None else register_affine(pre, lesion, use_cache=use_cache)
    return PairData(pair.name, pre_n, post_n, seg, post_seg, conc, pair.box() or box_of_mask(cavity, pre.grid, 5.0), affine)


def library_case(data: PairData, model) -> LibraryCase:
    """The library entry of a prepared pair (see the module docstring)."""
    template, _ = template_grids()
    grid = data.pre.grid
    cavity = data.post_seg == CAVITY_LABEL
    # the cavity's extent on the template: its voxel centres through the affine
    points = np.array([grid.index_to_lps(i) for i in np.argwhere(cavity)[:: max(1, int(cavity.sum()) // 4000)]])
    mapped = np.array([data.affine.TransformPoint(tuple(float(v) for v in p)) for p in points])
    idx = np.array([template.lps_to_index(p) for p in mapped])
    margin = int(math.ceil(PATCH_MARGIN_MM / min(template.spacing)))
    lo = np.maximum(np.floor(idx.min(0)).astype(int) - margin, 0)
    hi = np.minimum(np.ceil(idx.max(0)).astype(int) + margin + 1, np.asarray(template.size))
    origin = template.index_to_lps(lo)
    patch_grid = Grid(tuple(int(v) for v in hi - lo), template.spacing, tuple(float(v) for v in origin), template.direction)
    pre = to_template(data.pre, data.affine, patch_grid).array
    post = to_template(data.post, data.affine, patch_grid).array
    cav = to_template(data.pre.with_array(cavity.astype(np.float32)), data.affine, patch_grid).array >= 0.5

    def quantise(a: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(a * PATCH_SCALE), 0, 255).astype(np.uint8)

    tumor = template_tumor(data.seg, grid, data.affine)
    cm3 = grid.voxel_volume_mm3 / 1000.0
    info = {"tumor_cm3": round(float(np.isin(data.seg, TUMOR_LABELS).sum()) * cm3, 2),
            "core_cm3": round(float(np.isin(data.seg, CORE_LABELS).sum()) * cm3, 2),
            "cavity_cm3": round(float(cavity.sum()) * cm3, 2)}
    return LibraryCase(data.name, np.flatnonzero(tumor).astype(np.uint32), tuple(int(v) for v in lo), quantise(pre), quantise(post), cav,
                       embed(model, data.pre, data.affine) if model is not None else np.zeros(0, np.float32), data.box, info)


def build_library(root: str | Path, model, *, progress: ProgressFn | None = None, use_cache: bool = True,
                  cancelled: Callable[[], bool] | None = None, register: Callable | None = None) -> CaseLibrary:
    """A library from every pair in ``root`` (:func:`find_pairs`); ``register`` as for :func:`read_pair`."""
    from tumorgen.errors import CancelledError

    pairs = find_pairs(root)
    started = time.perf_counter()
    cases = []
    for n, pair in enumerate(pairs):
        if cancelled is not None and cancelled():
            raise CancelledError("cancelled")
        cases.append(library_case(read_pair(pair, use_cache=use_cache, register=register), model))
        if progress:
            progress((n + 1) / len(pairs), f"{pair.name} ({n + 1}/{len(pairs)})")
    header = {"source": str(Path(root).name), "built_seconds": round(time.perf_counter() - started, 1),
              "embedding": {"weights": str(Path(model.folder).name), "cells": list(EMBEDDING_CELLS)}}
    return CaseLibrary(cases, header)


__all__ = ["CAVITY_LABEL", "CaseLibrary", "FORMAT", "LibraryCase", "Match", "Pair", "PairData", "RETRIEVALS", "VERSION", "box_of_mask",
           "build_library", "bundled_library", "embed", "find_pairs", "from_template", "library_case", "normalise", "read_pair",
           "register_affine", "template_grids", "template_tumor", "to_template"]
