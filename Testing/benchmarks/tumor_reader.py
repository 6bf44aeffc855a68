#!/usr/bin/env python3
"""An independent reading of the whole-tumor volume in a T1n, for scoring the guided follow-up route.

The guided route (``tumorgen followup --route guided``) steers sampling with the
size regressor, so the regressor's reading of its own output is no measurement.
This reader is a separate network that never takes part in sampling: a small
3D U-Net (MONAI ``BasicUNet``) that maps a T1n at 2 mm to the fraction of each
2 mm voxel that is tumor (labels 1–3, i.e. concentration ≥ 0.25). The volume it
reads is the sum of these fractions over the tumor-like blobs (fraction > 0.5,
at least 0.5 cm³) and 4 mm around them; the soft target keeps it unbiased at
the tumor's boundary. The network reads 48³ windows (its training crops) with
half overlap.

Training data: simulated MNI152 subjects only (``tumorgen simulate``). Half of
the training images have a window around the tumor replaced by its round trip
through the bundled autoencoder, so the reader also knows what a decoded tumor
looks like (the guided and biophysical routes both decode their samples).

    python Testing/benchmarks/tumor_reader.py train --data reg-train synth-train tune-nort tune-nort-b tune-rt tune-rt-b \
        --out reader.pt --steps 2000 --lr 2e-3 --background 0.35 --seed 0
    python Testing/benchmarks/tumor_reader.py evaluate --reader reader.pt --data held-plain held-folded --suffix=-000

``bench_followup.py --guided --reader reader.pt`` reads each guided
sample with it (and, as a check of the reader on generated images, each sample
of the biophysical route, whose tumor is known).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

FACTOR = 2  # the reader works on 2 mm voxels
CROP = 48  # training crops: 48³ voxels of 2 mm
FEATURES = (8, 16, 32, 64, 128, 8)
MIN_BLOB_CM3 = 0.5  # smaller blobs of fraction > 0.5 are not read as tumor


def network():
    from monai.networks.nets import BasicUNet

    return BasicUNet(spatial_dims=3, in_channels=1, out_channels=1, features=FEATURES)


def downsample(array: np.ndarray, factor: int = FACTOR) -> np.ndarray:
    """Mean over factor³ blocks (the array is zero-padded to a multiple of ``factor``)."""
    pad = [(0, (-n) % factor) for n in array.shape]
    a = np.pad(np.asarray(array, np.float32), pad)
    x, y, z = (n // factor for n in a.shape)
    return a.reshape(x, factor, y, factor, z, factor).mean(axis=(1, 3, 5))


def normalised(t1n: np.ndarray) -> np.ndarray:
    """The brain's intensities mapped as inpainting maps them (0.5th and 99.5th percentiles of the nonzero voxels → 0, 1)."""
    from tumorgen.inpainting.core import normalisation

    lo, hi = normalisation(t1n, np.zeros(t1n.shape, bool))
    return np.where(t1n > 0, (t1n.astype(np.float32) - lo) / (hi - lo), 0.0).astype(np.float32)


def prepared(t1n: np.ndarray) -> np.ndarray:
    """What the reader reads: the T1n normalised and averaged to 2 mm."""
    return downsample(normalised(np.asarray(t1n)))


class Reader:
    """The trained reader: ``read(t1n, voxel_mm3)`` → tumor volume (cm³) and the 2 mm fraction map."""

    def __init__(self, path: str | Path, device: str = "cpu"):
        import torch

        state = torch.load(path, map_location=device, weights_only=True)
        self.net = network().to(device).eval()
        self.net.load_state_dict(state["network"])
        self.device = device
        self.card = {k: v for k, v in state.items() if k != "network"}

    def fractions(self, t1n: np.ndarray) -> np.ndarray:
        return self.fractions_of(prepared(t1n))

    def fractions_of(self, image: np.ndarray) -> np.ndarray:
        """The fraction map of an image already :func:`prepared`."""
        import torch
        from monai.inferers import sliding_window_inference

        image = np.asarray(image, np.float32)
        with torch.no_grad():  # windows of the training crop's size: the network's instance norms see what they were trained on
            x = torch.from_numpy(image[None, None]).to(self.device)
            p = torch.sigmoid(sliding_window_inference(x, (CROP,) * 3, 8, self.net, overlap=0.5, mode="gaussian"))[0, 0].cpu().numpy()
        return np.where(image > 0, p, 0.0).astype(np.float32)

    def read(self, t1n: np.ndarray, voxel_mm3: float = 1.0) -> tuple[float, np.ndarray]:
        return self.read_prepared(prepared(t1n), voxel_mm3)

    def read_prepared(self, image: np.ndarray, voxel_mm3: float = 1.0) -> tuple[float, np.ndarray]:
        """The fractions summed over the tumor-like blobs (fraction > 0.5, at least MIN_BLOB_CM3) and 2 voxels around them:
        scattered low fractions elsewhere in the brain are not tumor."""
        from scipy.ndimage import binary_dilation, label

        p = self.fractions_of(image)
        block_cm3 = voxel_mm3 * FACTOR ** 3 / 1000.0
        blobs, _ = label(p > 0.5)
        sizes = np.bincount(blobs.ravel())
        keep = np.isin(blobs, np.nonzero(sizes[1:] * block_cm3 >= MIN_BLOB_CM3)[0] + 1)  # label 0: not a blob
        keep = binary_dilation(keep, iterations=2)
        return float(p[keep].sum()) * block_cm3, np.where(keep, p, 0.0).astype(np.float32)


# -- data ----------------------------------------------------------------------------------------------------
def cases(folder: Path) -> list[Path]:
    """The cases of a simulated folder that have a t1n and labels (one folder per case)."""
    found = []
    for case in sorted(p for p in folder.iterdir() if p.is_dir()):
        if (case / f"{case.name}-t1n.nii.gz").is_file() and (case / f"{case.name}-seg.nii.gz").is_file():
            found.append(case)
    return found


def load(case: Path) -> tuple[np.ndarray, np.ndarray, float]:
    from tumorgen.volume_io import read_volume

    t1n = read_volume(case / f"{case.name}-t1n.nii.gz")
    seg = read_volume(case / f"{case.name}-seg.nii.gz").array
    return np.asarray(t1n.array, np.float32), np.isin(np.rint(seg).astype(int), (1, 2, 3)), float(t1n.grid.voxel_volume_mm3)


def round_trip(model, image: np.ndarray, tumor: np.ndarray, rng: np.random.Generator, size: int = 96) -> np.ndarray:
    """``image`` (normalised, 1 mm) with a window around the tumor replaced by its autoencoder round trip."""
    centre = np.argwhere(tumor).mean(0) if tumor.any() else np.array(image.shape) / 2
    box = []
    for c, n in zip(centre + rng.integers(-16, 17, 3), image.shape):
        start = int(max(0, min(round(c - size / 2), n - size)))
        box.append(slice(start, start + min(size, n)))
    box = tuple(box)
    work = np.clip(image[box], 0.0, None)
    decoded = model.decode(model.encode(work), work.shape)
    out = image.copy()
    out[box] = np.where(work > 0, np.clip(decoded, 0.0, None), 0.0)
    return out


def prepare(folders: list[Path], *, autoencoder: bool, seed: int, log=print) -> list[tuple[np.ndarray, np.ndarray]]:
    """(image, target) pairs at 2 mm: every case plain and, with ``autoencoder``, once more through the round trip."""
    model = None
    if autoencoder:
        from tumorgen.models.sampling import LatentDiffusion

        model = LatentDiffusion(device="cpu")
    rng = np.random.default_rng(seed)
    pairs = []
    all_cases = [c for f in folders for c in cases(f)]
    for i, case in enumerate(all_cases):
        t1n, tumor, _ = load(case)
        image = normalised(t1n)
        target = downsample(tumor.astype(np.float32))
        pairs.append((downsample(image), target))
        if model is not None:
            pairs.append((downsample(round_trip(model, image, tumor, rng)), target))
        if (i + 1) % 10 == 0:
            log(f"prepared {i + 1}/{len(all_cases)} cases")
    return pairs


def crop(image: np.ndarray, target: np.ndarray, rng: np.random.Generator, background: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """A CROP³ window: anywhere in the brain with probability ``background``, otherwise around the tumor (jittered)."""
    if target.max() > 0 and rng.random() >= background:
        centre = np.argwhere(target > 0.5).mean(0) if (target > 0.5).any() else np.argwhere(target > 0).mean(0)
        centre = centre + rng.integers(-CROP // 3, CROP // 3 + 1, 3)
    else:
        brain = np.argwhere(image > 0)
        centre = brain[rng.integers(len(brain))]
    pad = [(CROP, CROP)] * 3
    image, target = np.pad(image, pad), np.pad(target, pad)
    box = tuple(slice(int(c) + CROP - CROP // 2, int(c) + CROP - CROP // 2 + CROP) for c in centre)
    return image[box], target[box]


def train(args) -> int:
    import torch

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    clock = time.perf_counter()
    if args.cache and Path(args.cache).is_file():
        with np.load(args.cache) as cached:
            pairs = [(cached[f"x{i}"], cached[f"y{i}"]) for i in range(len(cached.files) // 2)]
    else:
        pairs = prepare([Path(f) for f in args.data], autoencoder=not args.no_autoencoder, seed=args.seed)
        if args.cache:
            np.savez(args.cache, **{f"{k}{i}": a for i, pair in enumerate(pairs) for k, a in zip("xy", pair)})
    print(f"{len(pairs)} training images in {time.perf_counter() - clock:.0f} s", flush=True)
    net = network()
    if args.init:
        net.load_state_dict(torch.load(args.init, map_location="cpu", weights_only=True)["network"])
    optimiser = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=args.lr, total_steps=args.steps, pct_start=0.1)
    losses = []
    for step in range(1, args.steps + 1):
        batch = [crop(*pairs[rng.integers(len(pairs))], rng, args.background) for _ in range(args.batch)]
        x = np.stack([b[0] for b in batch])[:, None]
        y = np.stack([b[1] for b in batch])[:, None]
        if rng.random() < 0.5:  # left-right flip
            x, y = x[..., ::-1, :, :].copy(), y[..., ::-1, :, :].copy()
        x = x * rng.uniform(0.9, 1.1) + rng.normal(0.0, rng.uniform(0.0, 0.03), x.shape) * (x > 0)  # intensity scale, noise
        x, y = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.float32))
        logits = net(x)
        p = torch.sigmoid(logits)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
        soft_dice = 1 - (2 * (p * y).sum() + 1) / (p.sum() + y.sum() + 1)
        loss = bce + soft_dice
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
        if step % 50 == 0:
            print(f"step {step}/{args.steps} loss {np.mean(losses[-50:]):.4f} ({time.perf_counter() - clock:.0f} s)", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"network": net.state_dict(), "steps": args.steps, "batch": args.batch, "lr": args.lr, "seed": args.seed,
                "data": [str(f) for f in args.data], "autoencoder_round_trip": not args.no_autoencoder, "background": args.background,
                "init": args.init,
                "final_loss": float(np.mean(losses[-50:])), "wall_time_s": round(time.perf_counter() - clock, 1)}, out)
    print(f"wrote {out}")
    return 0


def evaluate(args) -> int:
    """Volume error and Dice (2 mm, fraction > 0.5) of the reader on simulated cases it was not trained on."""
    reader = Reader(args.reader)
    rows = []
    for folder in args.data:
        for case in cases(Path(folder)):
            if args.suffix and not case.name.endswith(args.suffix):
                continue
            t1n, tumor, voxel = load(case)
            truth = float(tumor.sum()) * voxel / 1000.0
            if truth < args.min_cm3:
                continue
            read, p = reader.read(t1n, voxel)
            target = downsample(tumor.astype(np.float32)) > 0.5
            dice = float(2 * ((p > 0.5) & target).sum() / max((p > 0.5).sum() + target.sum(), 1))
            rows.append({"case": case.name, "truth_cm3": round(truth, 2), "read_cm3": round(read, 2),
                         "error": round((read - truth) / truth, 4), "dice": round(dice, 4)})
            print(json.dumps(rows[-1]), flush=True)
    errors = np.array([abs(r["error"]) for r in rows])
    summary = {"cases": len(rows), "median_abs_error": round(float(np.median(errors)), 4),
               "mean_signed_error": round(float(np.mean([r["error"] for r in rows])), 4),
               "within_10_percent": round(float(np.mean(errors <= 0.1)), 3),
               "mean_dice": round(float(np.mean([r["dice"] for r in rows])), 4)}
    print(json.dumps(summary))
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "cases": rows}, indent=1) + "\n")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train the reader on simulated folders")
    t.add_argument("--data", nargs="+", required=True, help="folders of simulated cases (t1n and seg per case)")
    t.add_argument("--out", required=True, help="where to write the reader (a torch file)")
    t.add_argument("--steps", type=int, default=1500)
    t.add_argument("--batch", type=int, default=4)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--no-autoencoder", action="store_true", help="no autoencoder round trips in the training images")
    t.add_argument("--background", type=float, default=0.5, help="share of crops anywhere in the brain (default 0.5; the rest "
                   "around the tumor)")
    t.add_argument("--init", help="start from this reader (fine-tuning)")
    t.add_argument("--cache", help="an .npz of the prepared 2 mm images: written on the first run, read on the next")
    e = sub.add_parser("evaluate", help="volume error and Dice on held-out simulated folders")
    e.add_argument("--reader", required=True)
    e.add_argument("--data", nargs="+", required=True)
    e.add_argument("--suffix", default="", help="only cases whose name ends so (e.g. -000: the pre-operative scans)")
    e.add_argument("--min-cm3", type=float, default=1.0, help="skip cases with less tumor than this")
    e.add_argument("--json", help="write the rows and the summary here")
    args = parser.parse_args(argv)
    return train(args) if args.command == "train" else evaluate(args)


if __name__ == "__main__":
    sys.exit(main())
