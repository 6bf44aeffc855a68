"""Label map → four MR contrasts in a healthy scan's geometry (paper 003, conditioned on the scan).

:func:`synthesize` takes a healthy, skull-stripped t1n and a BraTS label map
(1 necrotic core, 2 oedema, 3 enhancing tumor) on the same grid and draws
t1n, t1c, t2w and t2f with the tumor where the labels put it:

1. the scan is BraTS-normalised (its brain's 0.5th–99.5th percentiles → [0, 1])
   and brought to the model's working grid (1 mm) when its spacing differs;
2. the brain's bounding box (plus a margin) is encoded by the shared
   autoencoder, whole (as the training pairs were): the healthy latent;
3. the generator (:mod:`tumorgen.synthesis.model`) runs DDIM (``steps``) on
   sliding windows for the four contrasts at once, as one batch from the same
   initial noise, conditioned on the healthy latent, the label fractions and
   the contrast; ``samples`` such draws (seeds ``seed``, ``seed + 1``, …) are
   averaged (their decoded images), which halves the mottled texture a single
   draw of the tiny generator has (see docs/results/synthesis.md);
4. each contrast is decoded, whole. t1n keeps the scan itself away from the tumor:
   the generated t1n is blended in over the whole tumor grown by
   ``blend_mm`` (a smooth ramp over its outer half), in the scan's own
   intensity units. t1c, t2w and t2f are generated over the whole brain (a
   healthy scan has no such contrasts to keep), BraTS-normalised ([0, 1]),
   zero outside the brain;
5. everything goes back to the scan's grid; the labels are written as given.

The input volumes are never modified.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from tumorgen.errors import CancelledError, InputError
from tumorgen.settings import SYNTHESIS
from tumorgen.synthesis.settings import SynthesisSettings
from tumorgen.synthesis.model import CONTRASTS, build_generator, contrast_onehot, label_fractions
from tumorgen.volume import Volume

ProgressFn = Callable[[str, float, str], None]

WEIGHTS_FILE = "synthesis.safetensors"
#: Margin around the brain's bounding box, working-grid voxels.
BOX_MARGIN = 4
#: The generator runs on sliding windows of its training crop (see docs/results/speed.md for the choice).
SAMPLE_ON_WINDOWS = True


@dataclass
class SynthesisResult:
    #: t1n (the scan's units), t1c, t2w, t2f ([0, 1]) on the scan's grid.
    images: dict[str, Volume]
    #: The labels, uint8, on the scan's grid.
    seg: Volume
    info: dict = field(default_factory=dict)


class SynthesisModel:
    """The shared autoencoder and the synthesis generator of one weights folder (the bundled ``tiny`` by default)."""

    def __init__(self, weights: str | Path | None = None, device: str = "auto"):
        from tumorgen.models import networks as N
        from tumorgen.models.sampling import LatentDiffusion
        from tumorgen.models.weights import load_weights

        self.diffusion = LatentDiffusion(weights, device=device)
        self.config = self.diffusion.config
        self.device = self.diffusion.device
        path = self.diffusion.folder / WEIGHTS_FILE
        if not path.is_file():
            raise InputError(f"{self.diffusion.folder} has no synthesis generator ({WEIGHTS_FILE}); train one with tumorgen train synthesis")
        self.generator = N.place(load_weights(build_generator(self.config), path), self.device).eval()
        self.path = path
        #: Run the generator on sliding windows of its training crop (True) or on the whole box at once.
        self.windows = SAMPLE_ON_WINDOWS

    @property
    def down(self) -> int:
        return self.config.downsampling

    @property
    def multiple(self) -> int:
        """Image sizes the model takes: the autoencoder's downsampling × the generator's."""
        return self.down * 2 ** (len(self.config.synthesis["channels"]) - 1)

    @torch.no_grad()
    def encode(self, image: np.ndarray) -> torch.Tensor:
        """Image (X, Y, Z), each a multiple of :attr:`multiple` → scaled latents (1, L, x, y, z), encoded whole like the training pairs."""
        from tumorgen.synthesis.training import whole_encoder

        encode = whole_encoder(self.diffusion.autoencoder, self.diffusion.latent_scale, self.device)
        return torch.from_numpy(encode(np.asarray(image, np.float32)[None, None])).to(self.device)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, shape) -> np.ndarray:
        """Latents (1, L, x, y, z) → an image cropped to ``shape``, decoded whole (not on windows): on a brain's box 5× faster
        than the autoencoder's 32³ windows for 0.9 dB less PSNR (measured on a simulated t2w: 4.9 s and 23.2 dB against
        27.5 s and 24.0 dB on 2 CPU cores), which four contrasts per case make worth it."""
        from tumorgen.models.networks import as_input

        image = self.diffusion.autoencoder.decode(as_input(latents / self.diffusion.latent_scale, self.device))
        return image[0, 0].float().cpu().numpy()[tuple(slice(0, n) for n in shape)]

    @torch.no_grad()
    def sample(self, healthy_latent: torch.Tensor, fractions: np.ndarray, settings: SynthesisSettings,
               step: Callable[[int, int], None] | None = None) -> torch.Tensor:
        """Latents (4, L, x, y, z) of the four contrasts, sampled as one batch from one initial noise."""
        from tumorgen.models import networks as N
        from tumorgen.models.sampling import windowed

        shape = tuple(healthy_latent.shape[2:])
        latent_channels = int(healthy_latent.shape[1])
        labels = torch.from_numpy(fractions)[None].to(self.device)
        condition = torch.cat([torch.cat([healthy_latent, labels, torch.from_numpy(contrast_onehot(c, shape))[None].to(self.device)], dim=1)
                               for c in CONTRASTS])
        generator = torch.Generator().manual_seed(int(settings.seed))
        x = torch.randn((1, latent_channels, *shape), generator=generator).to(self.device).repeat(len(CONTRASTS), 1, 1, 1, 1)
        scheduler = N.build_scheduler(self.config, "ddim")
        scheduler.set_timesteps(int(settings.steps))
        roi = tuple(c // self.down for c in self.config.crop_for("denoiser"))
        timesteps = [int(t) for t in scheduler.timesteps]
        for i, t in enumerate(timesteps):
            def predictor(window: torch.Tensor, t=t) -> torch.Tensor:
                return self.generator(window, torch.full((window.shape[0],), t, device=window.device, dtype=torch.long))

            inputs = torch.cat([x, condition], dim=1)
            eps = windowed(predictor, inputs, roi, self.diffusion.overlap) if self.windows else predictor(N.as_input(inputs, self.device))
            x, _ = scheduler.step(eps, t, x)
            if step:
                step(i + 1, len(timesteps))
        return x


def check_labels(labels: Volume, name: str = "labels") -> np.ndarray:
    """The label array as uint8, or an InputError naming the problem (unknown values, no tumor): see
    :func:`tumorgen.synthesis.augment.check_label_map`."""
    from tumorgen.synthesis.augment import check_label_map

    check_label_map(labels, name)
    return np.asarray(labels.array).astype(np.uint8)


def normalise(image: np.ndarray, brain: np.ndarray, percentiles=(0.5, 99.5)) -> tuple[np.ndarray, float, float]:
    """BraTS normalisation inside ``brain``: (image in [0, 1], 0 outside), lo, hi."""
    lo, hi = (float(v) for v in np.percentile(image[brain], percentiles))
    if not hi > lo:
        raise InputError("the scan's brain has a constant intensity; expected a skull-stripped healthy t1n")
    return np.where(brain, np.clip((image - lo) / (hi - lo), 0.0, 1.0), 0.0).astype(np.float32), lo, hi


def synthesize(model: SynthesisModel, t1n: Volume, labels: Volume, settings: SynthesisSettings = SynthesisSettings(), *,
               progress: ProgressFn | None = None, cancelled: Callable[[], bool] | None = None) -> SynthesisResult:
    """Draw the four contrasts of ``t1n`` with the tumor of ``labels`` (same grid). See the module docstring."""
    from tumorgen.resample import resample, working_grid
    from tumorgen.synthesis.training import brain_box, take
    from tumorgen.volume_io import check_same_geometry

    report = progress or (lambda stage, fraction, message: None)
    stop = cancelled or (lambda: False)
    clock = time.perf_counter()
    timings: dict[str, float] = {}
    check_same_geometry(t1n, labels, ("the scan", "the labels"))
    seg = check_labels(labels)
    scan = np.asarray(t1n.array, np.float32)
    if not np.all(np.isfinite(scan)):
        raise InputError("the scan contains NaN or infinite values")
    brain = scan > 0
    if brain.sum() < 1000:
        raise InputError("the scan has almost no brain voxels (> 0); expected a skull-stripped healthy t1n")
    if np.any((seg > 0) & ~brain):
        outside = int(np.count_nonzero((seg > 0) & ~brain))
        if outside > 0.5 * np.count_nonzero(seg):
            raise InputError(f"most of the tumor ({outside} voxels) lies outside the scan's brain: do the labels belong to this scan?")
    normalised, lo, hi = normalise(scan, brain)

    # -- the working grid ------------------------------------------------------
    spacing = float(model.config.spacing_mm)
    same_grid = np.allclose(t1n.spacing, spacing, rtol=0, atol=1e-3)
    grid = t1n.grid if same_grid else working_grid(t1n.grid, spacing)
    if same_grid:
        work_image, work_seg = normalised, seg
    else:
        work_image = resample(t1n.with_array(normalised), grid, interpolation="linear").array.astype(np.float32)
        work_seg = resample(t1n.with_array(seg), grid, interpolation="nearest").array.astype(np.uint8)
        if not np.any(work_seg > 0):
            raise InputError("the tumor is smaller than one voxel of the model's working grid (1 mm)")
    box = brain_box((work_image > 0) | (work_seg > 0), model.multiple, BOX_MARGIN)
    image_box, seg_box = take(work_image, box), take(work_seg, box)
    timings["prepare"] = time.perf_counter() - clock

    # -- encode, sample, decode --------------------------------------------------
    clock = time.perf_counter()
    report("encode", 0.02, "encoding the healthy scan")
    healthy = model.encode(image_box)
    timings["encode"] = time.perf_counter() - clock
    if stop():
        raise CancelledError("cancelled")
    samples = int(settings.samples)
    fractions = label_fractions(seg_box, model.down)
    decoded = {c: np.zeros(image_box.shape, np.float32) for c in CONTRASTS}
    timings["sample"] = timings["decode"] = 0.0
    for n in range(samples):
        clock = time.perf_counter()
        span = 0.93 / samples

        def step(i: int, total: int, n=n, span=span) -> None:
            report("sample", 0.05 + span * (n + 0.75 * i / total), f"sample {n + 1}/{samples}: step {i}/{total} (four contrasts)")
            if stop():
                raise CancelledError("cancelled")

        latents = model.sample(healthy, fractions, dataclasses.replace(settings, seed=int(settings.seed) + n), step)
        timings["sample"] += time.perf_counter() - clock
        clock = time.perf_counter()
        for k, contrast in enumerate(CONTRASTS):
            report("decode", 0.05 + span * (n + 0.75 + 0.25 * k / len(CONTRASTS)), f"sample {n + 1}/{samples}: decoding {contrast}")
            decoded[contrast] += np.clip(model.decode(latents[k:k + 1], image_box.shape), 0.0, 1.0) / np.float32(samples)
            if stop():
                raise CancelledError("cancelled")
        timings["decode"] += time.perf_counter() - clock

    # -- back to the scan's grid -----------------------------------------------
    clock = time.perf_counter()
    images: dict[str, Volume] = {}
    tumor = seg > 0
    weight = _blend_weight(tumor, t1n.spacing, settings.blend_mm)
    head = brain | tumor
    for contrast, generated in decoded.items():
        full = np.zeros(work_image.shape, np.float32)
        inside = tuple(slice(s.start, min(s.stop, n)) for s, n in zip(box, work_image.shape))
        full[inside] = generated[tuple(slice(0, s.stop - s.start) for s in inside)]
        on_scan = full if same_grid else resample(Volume(full, grid), t1n.grid, interpolation="linear").array
        on_scan = np.where(head, np.clip(on_scan, 0.0, 1.0), 0.0).astype(np.float32)
        if contrast == "t1n":  # the scan itself away from the tumor, in its own units
            on_scan = (weight * (on_scan * (hi - lo) + lo) + (1.0 - weight) * scan).astype(np.float32)
            on_scan = np.where(head, on_scan, scan)
        images[contrast] = t1n.with_array(on_scan.astype(np.float32))
    timings["compose"] = time.perf_counter() - clock
    cm3 = float(np.prod(t1n.spacing)) / 1000.0
    info = {"steps": int(settings.steps), "seed": int(settings.seed), "blend_mm": float(settings.blend_mm),
            "samples": samples, "network_evaluations": int(settings.steps) * len(CONTRASTS) * samples,
            "regions_cm3": {name: round(float(np.count_nonzero(seg == v)) * cm3, 3) for name, v in (("necrotic", 1), ("edema", 2), ("enhancing", 3))},
            "box": [[s.start, s.stop] for s in box], "working_grid_mm": spacing, "scan_lo_hi": [lo, hi],
            "timings_s": {k: round(v, 2) for k, v in timings.items()}, "weights": str(model.path)}
    report("done", 1.0, "synthesized t1n, t1c, t2w, t2f")
    return SynthesisResult(images, labels.with_array(seg), info)


def _blend_weight(tumor: np.ndarray, spacing, blend_mm: float) -> np.ndarray:
    """1 within the tumor grown by half of ``blend_mm``, falling smoothly to 0 at ``blend_mm``."""
    from scipy.ndimage import distance_transform_edt

    if blend_mm <= 0:
        return tumor.astype(np.float32)
    distance = distance_transform_edt(~tumor, sampling=tuple(float(s) for s in spacing))
    x = np.clip((blend_mm - distance) / (blend_mm / 2.0), 0.0, 1.0)
    return (x * x * (3.0 - 2.0 * x)).astype(np.float32)


__all__ = ["SynthesisModel", "SynthesisResult", "SynthesisSettings", "check_labels", "normalise", "synthesize"]
