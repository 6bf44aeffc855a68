"""Training data and training loop of the inpainting prior (:mod:`tumorgen.inpainting.prior`).

Every example is drawn fresh: an anatomy from a cache of warped MNI152 tissue
maps (and the unwarped template: the smooth population average), a crop around
a random point of the brain, individual folding on the crop
(:func:`tumorgen.simulate.realism.sharpen_tissues`, random strength, sometimes
none), a T1 with randomised per-class contrast, bias, blur, noise and gamma
(:func:`tumorgen.simulate.realism.render_t1`), and a mask of random shape
(sphere, ellipsoid, box or blob) and volume (3–36 cm³) anywhere in the brain:
against the cortex, the ventricles or the brain's edge. The loss is the mean
squared error inside the mask on the prior's intensity scale.

The anatomies come from seeds no benchmark uses (:data:`ANATOMY_SEED`), so
the fidelity benchmark's cases stay unseen. Training state (network, optimiser,
step, loss curve) is checkpointed and resumed.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from scipy import ndimage

#: Seeds of the training anatomies (the fidelity benchmark uses 7100+ and 7200+).
ANATOMY_SEED = 9100
CROP = 64
#: Rendered around the crop so that blur and texture filters see no edge.
PAD = 8
VOLUMES_CM3 = (3.0, 36.0)


@dataclass(frozen=True)
class PriorTraining:
    steps: int = 4000
    batch: int = 2
    lr: float = 2e-3
    anatomies: int = 12
    seed: int = 0
    checkpoint_every: int = 50
    #: Share of examples whose classes' intensities are drawn in any order (SynthSeg's full randomisation).
    anything: float = 0.15
    #: Randomise the contrast at all (off: the simulator's T1 table, bias 0.1, noise 2.5 %, no blur).
    randomise: bool = True


def build_anatomies(folder: Path, count: int, progress: Callable[[str], None] = print) -> list[Path]:
    """``count`` warped MNI152 anatomies (and the template itself first) as uint8 CSF/GM/WM stacks in ``folder``."""
    from tumorgen.simulate.subject import SimulationOptions, subject_anatomy

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(count + 1):
        path = folder / f"anatomy-{k:03d}.npy"
        if not path.is_file():
            rng = np.random.default_rng([ANATOMY_SEED, k])
            options = SimulationOptions(tumor=False, deform=k > 0, deform_mm=float(rng.uniform(3.0, 7.0)),
                                        fold_mm=float(rng.choice([0.0, 1.5, 2.5])))
            maps, _ = subject_anatomy(rng, options)
            stack = np.stack([maps.csf.array, maps.gm.array, maps.wm.array])
            np.save(path.with_suffix(".tmp.npy"), np.round(np.clip(stack, 0, 1) * 255).astype(np.uint8))
            path.with_suffix(".tmp.npy").rename(path)
            progress(f"anatomy {k + 1}/{count + 1} ready")
        paths.append(path)
    return paths


def random_mask(shape, rng: np.random.Generator, brain: np.ndarray, centre, max_extent: int) -> np.ndarray:
    """A mask of random shape and volume around ``centre`` (voxel indices, 1 mm voxels), cut to ``brain``."""
    idx = np.indices(shape, dtype=np.float32)
    offset = [idx[a] - centre[a] for a in range(3)]
    volume = float(np.exp(rng.uniform(*np.log(VOLUMES_CM3)))) * 1000.0
    kind = rng.choice(["sphere", "ellipsoid", "box", "blob"])
    if kind == "box":
        sides = rng.uniform(0.7, 1.4, 3)
        sides *= (volume / np.prod(sides)) ** (1 / 3)
        sides = np.minimum(sides, max_extent)
        mask = np.all([np.abs(o) <= s / 2 for o, s in zip(offset, sides)], axis=0)
    elif kind in ("sphere", "ellipsoid"):
        axes = np.ones(3) if kind == "sphere" else rng.uniform(0.6, 1.5, 3)
        axes *= (volume / (4 / 3 * np.pi * np.prod(axes))) ** (1 / 3)
        axes = np.minimum(axes, max_extent / 2)
        mask = sum((o / a) ** 2 for o, a in zip(offset, axes)) <= 1.0
    else:
        reach = min((2 * volume / (4 / 3 * np.pi)) ** (1 / 3), max_extent / 2)
        r2 = sum(o**2 for o in offset)
        noise = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), 4.0) - r2 / reach**2
        inside = r2 <= reach**2
        voxels = min(int(volume), int(inside.sum()) - 1)
        mask = inside & (noise >= np.sort(noise[inside])[-voxels])
    mask &= brain
    labels, count = ndimage.label(mask)
    if count > 1:
        mask = labels == np.argmax(np.bincount(labels.ravel())[1:]) + 1
    return mask


def example(anatomy: np.ndarray, rng: np.random.Generator, settings: PriorTraining) -> tuple[np.ndarray, np.ndarray]:
    """One training example: the prior's input channels and the truth (on the prior's scale), both CROP³."""
    from tumorgen.inpainting.prior import network_inputs
    from tumorgen.simulate.realism import Contrast, random_contrast, render_t1, sharpen_tissues

    brain_all = anatomy.sum(0) > 127
    while True:
        points = np.argwhere(brain_all[::4, ::4, ::4]) * 4
        centre = points[rng.integers(len(points))]
        size = CROP + 2 * PAD
        low = np.clip(centre - size // 2, 0, np.asarray(brain_all.shape) - size)
        box = tuple(slice(int(lo), int(lo) + size) for lo in low)
        maps = anatomy[(slice(None), *box)].astype(np.float32) / 255.0
        brain = maps.sum(0) > 0.5
        if brain[PAD:-PAD, PAD:-PAD, PAD:-PAD].mean() > 0.3:
            break
    if rng.random() < 0.8:
        maps = sharpen_tissues(maps, rng, (1.0, 1.0, 1.0), strength=float(rng.uniform(0.5, 2.0)),
                               sulci=float(rng.uniform(0.5, 3.5)), temperature=float(rng.uniform(0.3, 0.8)),
                               detail_mm=float(rng.uniform(1.0, 2.0)))
    contrast = random_contrast(rng, anything=settings.anything) if settings.randomise else Contrast()
    image = render_t1(maps, contrast, rng, (1.0, 1.0, 1.0), brain, normalise=False)
    image = image[PAD:-PAD, PAD:-PAD, PAD:-PAD]
    brain = brain[PAD:-PAD, PAD:-PAD, PAD:-PAD]
    inner = CROP // 2
    centre = np.asarray(centre) - low - PAD
    centre = np.clip(centre, 16, CROP - 16)
    while True:
        mask = random_mask(image.shape, rng, brain, centre, max_extent=CROP - 2 * 6)
        if mask.sum() >= 200:
            break
        centre = np.asarray([inner, inner, inner]) + rng.integers(-8, 9, 3)
    inputs, scale = network_inputs(image, mask)
    return inputs, (image / scale).astype(np.float32)


def train(settings: PriorTraining, out: Path, cache: Path, *, log: Callable[[str], None] = print,
          max_seconds: float | None = None) -> dict:
    """Train (or resume) the prior; the state lives in ``out`` (``state.pt``, ``curve.json``). Returns the curve."""
    import torch

    from tumorgen.inpainting.prior import build_network

    out.mkdir(parents=True, exist_ok=True)
    anatomies = [np.load(p) for p in build_anatomies(cache, settings.anatomies, log)]
    torch.manual_seed(settings.seed)
    net = build_network()
    optimiser = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=settings.lr, total_steps=settings.steps, pct_start=0.05)
    state_path, curve_path = out / "state.pt", out / "curve.json"
    curve = {"settings": asdict(settings), "steps": [], "loss": [], "seconds": 0.0}
    step = 0
    if state_path.is_file():
        saved = torch.load(state_path, map_location="cpu", weights_only=True)
        net.load_state_dict(saved["net"])
        optimiser.load_state_dict(saved["optimiser"])
        schedule.load_state_dict(saved["schedule"])
        step = int(saved["step"])
        curve = json.loads(curve_path.read_text())
        log(f"resumed at step {step}")
    started = time.perf_counter()
    spent = curve["seconds"]
    window = []
    net.train()
    while step < settings.steps:
        rng = np.random.default_rng([settings.seed, step])
        batch = [example(anatomies[int(rng.integers(len(anatomies)))], rng, settings) for _ in range(settings.batch)]
        x = torch.from_numpy(np.stack([b[0] for b in batch]))
        y = torch.from_numpy(np.stack([b[1] for b in batch]))[:, None]
        m = x[:, 1:2]
        pred = x[:, 2:3] + net(x)
        loss = (((pred - y) ** 2) * m).sum() / m.sum()
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        step += 1
        window.append(loss.item())
        if step % settings.checkpoint_every == 0 or step == settings.steps:
            curve["steps"].append(step)
            curve["loss"].append(float(np.mean(window)))
            curve["seconds"] = spent + time.perf_counter() - started
            window = []
            torch.save({"net": net.state_dict(), "optimiser": optimiser.state_dict(), "schedule": schedule.state_dict(),
                        "step": step}, out / "state.tmp.pt")
            (out / "state.tmp.pt").replace(state_path)
            curve_path.write_text(json.dumps(curve, indent=1))
            log(f"step {step}/{settings.steps}: loss {curve['loss'][-1]:.5f} ({curve['seconds']:.0f} s)")
            if max_seconds is not None and time.perf_counter() - started > max_seconds:
                break
    return curve


def export(out: Path, destination: Path, card: dict) -> Path:
    """The trained network's weights in float16 (half the size; the prior loads them as float32) with its card."""
    import torch

    from tumorgen.inpainting.prior import build_network
    from tumorgen.models.weights import save_weights

    saved = torch.load(out / "state.pt", map_location="cpu", weights_only=True)
    net = build_network()
    net.load_state_dict(saved["net"])
    net.half()
    curve = json.loads((out / "curve.json").read_text())
    return save_weights(net, destination, {**card, "steps": int(saved["step"]), "loss_curve": {"steps": curve["steps"],
                        "loss": [round(v, 6) for v in curve["loss"]]}, "wall_time_s": round(curve["seconds"], 1)})


__all__ = ["ANATOMY_SEED", "PriorTraining", "build_anatomies", "example", "export", "random_mask", "train"]
