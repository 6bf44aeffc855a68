"""Training data of the synthesis generator: simulated pairs of a healthy scan and the same subject with a tumor.

A training case is a folder that ``tumorgen simulate --healthy-reference``
writes: the four contrasts with the tumor (``<case>-t1n.nii.gz`` ...), the
labels (``-seg``) and the subject's healthy anatomy imaged with the same draws
(``-t1n-healthy``). Each case is cropped to its brain's bounding box (plus a
margin, padded to the networks' multiple), its five images encoded once by the
frozen autoencoder (whole, as the synthesis encodes and decodes), and its labels turned into latent-grid fractions
(:func:`tumorgen.synthesis.model.label_fractions`). Batches are random latent
crops (centred on the tumor half of the time) of a random contrast, with the
matching condition; deterministic from (seed, step).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tumorgen.errors import InputError
from tumorgen.synthesis.model import CONTRASTS, contrast_onehot, label_fractions

#: Margin around the brain's bounding box, in latent voxels.
BOX_MARGIN = 1


@dataclass
class SynthesisCase:
    name: str
    healthy: np.ndarray  # (L, x, y, z) latent of the healthy t1n
    targets: dict[str, np.ndarray]  # contrast → (L, x, y, z) latent
    labels: np.ndarray  # (3, x, y, z) label fractions
    brain: np.ndarray  # (n, 3) latent voxels with brain
    tumor: np.ndarray  # (m, 3) latent voxels with tumor


def pairs_for_training(data: str | Path, encode, down: int, multiple: int, spacing_mm: float,
                       progress=None) -> tuple[list[SynthesisCase], dict]:
    """The training pairs and where they came from: a folder of case folders (encoded here) or a ``.npz`` of pairs
    encoded before (:func:`save_pairs`)."""
    if Path(data).is_file() and str(data).endswith(".npz"):
        return load_pairs(data)
    return encode_pairs(find_pairs(data), encode, down, multiple, spacing_mm, progress=progress), {}


def encode_folder(data: str | Path, autoencoder_path: str | Path, config, out: str | Path, device: str = "auto", progress=None) -> Path:
    """Encode the pairs of ``data`` with the autoencoder at ``autoencoder_path`` and save them to ``out`` (:func:`save_pairs`)."""
    from tumorgen.models import networks as N
    from tumorgen.models.weights import load_weights, read_card, sha256_of

    device = N.resolve_device(device)
    autoencoder = N.place(load_weights(N.build_autoencoder(config), autoencoder_path), device).eval()
    scale = float(read_card(autoencoder_path).get("latent_scale", 1.0))
    multiple = 2 ** (len(config.synthesis["channels"]) - 1)
    cases = encode_pairs(find_pairs(data), whole_encoder(autoencoder, scale, device), config.downsampling, multiple, config.spacing_mm, progress)
    manifest = Path(data) / "cases.json"
    simulated = {}
    if manifest.is_file():
        import json

        raw = json.loads(manifest.read_text())
        simulated = {k: raw[k] for k in ("seed", "n", "spacing_mm") if k in raw}
    return save_pairs(cases, out, {"folder": Path(data).name, "autoencoder_sha256": sha256_of(autoencoder_path), "simulated": simulated,
                                   "latent_scale": scale})


def find_pairs(root: str | Path) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"training data folder not found: {root}")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and (p / f"{p.name}-t1n-healthy.nii.gz").is_file()
                     and (p / f"{p.name}-seg.nii.gz").is_file())
    if not folders:
        raise InputError(f"no case folder in {root} has a healthy reference (<case>-t1n-healthy.nii.gz) and labels: "
                         "simulate them with tumorgen simulate --healthy-reference")
    return folders


def brain_box(brain: np.ndarray, multiple: int, margin: int = 0) -> tuple[slice, slice, slice]:
    """The bounding box of ``brain`` grown by ``margin`` voxels, extended to a multiple of ``multiple`` (may pass the array's end)."""
    idx = np.argwhere(brain)
    if not len(idx):
        raise InputError("the scan has no brain voxels (all zero)")
    lo = np.maximum(idx.min(axis=0) - margin, 0)
    hi = idx.max(axis=0) + 1 + margin
    size = -(-(hi - lo) // multiple) * multiple
    return tuple(slice(int(a), int(a + s)) for a, s in zip(lo, size))


def take(array: np.ndarray, box) -> np.ndarray:
    """``array[box]`` zero-padded where the box passes the array's end."""
    out = np.zeros(tuple(s.stop - s.start for s in box), array.dtype)
    part = array[tuple(slice(s.start, min(s.stop, n)) for s, n in zip(box, array.shape))]
    out[tuple(slice(0, n) for n in part.shape)] = part
    return out


def whole_encoder(autoencoder, latent_scale: float, device):
    """A function: image (1, 1, X, Y, Z) → scaled posterior means, the autoencoder run on the whole box at once (not on its
    training windows): how :class:`tumorgen.synthesis.synthesize.SynthesisModel` encodes and decodes, about 4× faster."""
    import torch

    from tumorgen.models.networks import as_input

    @torch.no_grad()
    def encode(array: np.ndarray) -> np.ndarray:
        image = as_input(torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)), device)
        return (autoencoder.encode(image)[0] * latent_scale).float().cpu().numpy()

    return encode


def encode_pairs(folders: list[Path], encode, down: int, multiple: int, spacing_mm: float, progress=None) -> list[SynthesisCase]:
    """Each pair's five images encoded on its brain box; ``encode``: (1, 1, X, Y, Z) → (1, L, x, y, z)."""
    from tumorgen.resample import resample, working_grid
    from tumorgen.volume_io import read_volume

    out = []
    for n, folder in enumerate(folders):
        name = folder.name

        def read(suffix: str, interpolation: str = "linear") -> np.ndarray:
            volume = read_volume(folder / f"{name}-{suffix}.nii.gz", role=f"{name} {suffix}")
            grid = working_grid(volume.grid, spacing_mm)
            return np.asarray(resample(volume.with_array(volume.array.astype(np.float32)), grid, interpolation=interpolation).array)

        healthy = read("t1n-healthy").astype(np.float32)
        seg = np.rint(read("seg", "nearest")).astype(np.uint8)
        box = brain_box((healthy > 0) | (seg > 0), down * multiple, BOX_MARGIN * down)
        latent = lambda image: np.asarray(encode(take(image, box)[None, None]))[0].astype(np.float32)  # noqa: E731
        targets = {c: latent(read(c).astype(np.float32)) for c in CONTRASTS}
        h = latent(healthy)
        labels = label_fractions(take(seg, box), down)
        brain_blocks = take(((healthy > 0) | (seg > 0)).astype(np.float32), box)
        shape = h.shape[1:]
        brain_frac = brain_blocks.reshape(shape[0], down, shape[1], down, shape[2], down).mean(axis=(1, 3, 5))
        out.append(SynthesisCase(name, h, targets, labels, np.argwhere(brain_frac > 0.5), np.argwhere(labels[0] > 0)))
        if progress:
            progress((n + 1) / len(folders), f"encoded {name}")
    return out


#: Latents are stored in int8 steps of this size (the scaled latents have unit variance; |z| ≤ 127/32 ≈ 4σ).
LATENT_STEP = 1.0 / 32.0
PAIRS_FORMAT = "tumorgen-synthesis-pairs-1"


def save_pairs(cases: list[SynthesisCase], path: str | Path, record: dict) -> Path:
    """The encoded pairs as one compressed ``.npz`` (latents in int8 steps of :data:`LATENT_STEP`, label fractions in
    1/64ths), written atomically: what ``tumorgen train synthesis --data FILE.npz`` reads instead of a folder (encode once,
    train elsewhere; 1–2 MB per 1 mm subject). ``record`` (the autoencoder's SHA-256, the source folder) is kept with them."""
    import json

    from tumorgen.atomic import staged_file

    arrays: dict[str, np.ndarray] = {}
    quantise = lambda a: np.clip(np.rint(a / LATENT_STEP), -127, 127).astype(np.int8)  # noqa: E731
    for n, case in enumerate(cases):
        arrays[f"{n}/healthy"] = quantise(case.healthy)
        for contrast in CONTRASTS:
            arrays[f"{n}/{contrast}"] = quantise(case.targets[contrast])
        arrays[f"{n}/labels"] = np.rint(case.labels * 64).astype(np.uint8)
        arrays[f"{n}/brain"] = case.brain.astype(np.int16)
    meta = {"format": PAIRS_FORMAT, "names": [c.name for c in cases], **record}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    with staged_file(Path(path), suffix=".npz") as staging:
        with open(staging, "wb") as handle:
            np.savez_compressed(handle, **arrays)
    return Path(path)


def load_pairs(path: str | Path) -> tuple[list[SynthesisCase], dict]:
    """The pairs :func:`save_pairs` wrote, and its record."""
    import json

    try:
        data = np.load(path, allow_pickle=False)
        meta = json.loads(bytes(data["meta"]).decode())
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"{path} is not a file of encoded synthesis pairs: {exc}") from None
    if meta.get("format") != PAIRS_FORMAT:
        raise InputError(f"{path} is not a file of encoded synthesis pairs (format {meta.get('format')!r})")
    cases = []
    for n, name in enumerate(meta["names"]):
        latent = lambda key: data[f"{n}/{key}"].astype(np.float32) * np.float32(LATENT_STEP)  # noqa: E731
        labels = data[f"{n}/labels"].astype(np.float32) / np.float32(64.0)
        cases.append(SynthesisCase(name, latent("healthy"), {c: latent(c) for c in CONTRASTS}, labels,
                                   data[f"{n}/brain"].astype(np.int64), np.argwhere(labels[0] > 0)))
    return cases, meta


class SynthesisSampler:
    """Random latent crops of a random contrast with their condition (healthy latent, label fractions, contrast one-hot)."""

    def __init__(self, cases: list[SynthesisCase], latent_crop, seed: int):
        self.cases = cases
        self.crop = tuple(int(c) for c in latent_crop)
        self.seed = seed
        self.contrasts = list(CONTRASTS)

    def batch(self, step: int, size: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([self.seed, step])
        latents, conditions = [], []
        for _ in range(size):
            case = self.cases[rng.integers(len(self.cases))]
            contrast = CONTRASTS[rng.integers(len(CONTRASTS))]
            idx = case.tumor if len(case.tumor) and rng.random() < 0.5 else case.brain
            shape = case.healthy.shape[1:]
            centre = idx[rng.integers(len(idx))] if len(idx) else np.asarray(shape) // 2
            starts = [int(np.clip(c - k // 2 + rng.integers(-k // 4, k // 4 + 1), 0, max(0, n - k))) for c, k, n in zip(centre, self.crop, shape)]
            box = tuple(slice(s, s + k) for s, k in zip(starts, self.crop))
            cut = lambda a: _crop(a, box, self.crop)  # noqa: E731
            latents.append(cut(case.targets[contrast]))
            conditions.append(np.concatenate([cut(case.healthy), cut(case.labels), contrast_onehot(contrast, self.crop)]))
        return {"latent": np.stack(latents).astype(np.float32), "condition": np.stack(conditions).astype(np.float32)}


def _crop(array: np.ndarray, box, crop) -> np.ndarray:
    """(C, x, y, z)[box], zero-padded to ``crop``."""
    part = array[(slice(None),) + tuple(box)]
    if part.shape[1:] == tuple(crop):
        return part
    out = np.zeros((array.shape[0], *crop), np.float32)
    out[(slice(None),) + tuple(slice(0, n) for n in part.shape[1:])] = part
    return out


__all__ = ["SynthesisCase", "SynthesisSampler", "brain_box", "encode_pairs", "find_pairs", "take"]
