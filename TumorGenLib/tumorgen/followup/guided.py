"""The guided route (paper 001): DDIM from the latest scan's partly noised latent, steered by the size regressor.

The size regressor (:func:`tumorgen.models.networks.build_regressor`, trained by
``tumorgen train regressor``) reads the tumor volume (c ≥ 0.25, in cm³ / 10) of
one latent window of its training size (a 64 mm cube on the tiny models' grid)
from a noisy latent and its timestep. Sampling:

1. the crop is the regressor's window centred on the tumor, or along an axis
   where the tumor (now or forecast) is longer than the window, its extent.
   The latest scan there, with the forecast's growth painted in the intensity
   of its tumor's outer shell (:func:`painted_growth`), is encoded and noised
   to ``strength`` (SDEdit), so the anatomy and the tumor's place survive and
   the growth starts out as tumor, not as the healthy tissue the denoiser
   would otherwise keep there;
2. each DDIM step's noise estimate is shifted by the gradient of the
   regressor's squared error against the requested volume (classifier
   guidance: ``ε ← ε + s·√(1−ᾱ)·∇ (r(x, t) − y)²/2``). A crop longer than the
   window is read on windows tiling it with at least half a window's overlap,
   each against the forecast's volume inside it, and each latent voxel's
   gradient is divided by the number of windows over it. With the tissue maps
   given and a ControlNet in the weights, the estimate itself is the
   ControlNet's under the tissue maps and the regrown median field, as in the
   biophysical route: the field says where the tumor is, the regressor how
   much of it the image shows. Unconditioned, the denoiser heals the noised
   tumor towards healthy tissue and the gradient alone draws too little of it;
3. outside the region that may change (the tumor now grown by the distance the
   forecast's radius grows, plus the margin) the latents are the latest scan's
   at every step (known-region injection), and the result is Poisson-blended.
   Where the forecast grows the tumor, its core (deeper than
   :data:`KEEP_CORE_MM` inside the latest tumor, :func:`kept_core`) is kept
   too: noised and redrawn, it came back fainter and patchy, read as less
   tumor than the scan shows, and the growth is drawn around it.

The requested volume is the forecast's inside the crop (and each window's,
inside it): the median draw's field gives how much of the tumor each holds.
The guidance aims at :data:`AIM` times it: the regressor may read the samples
it steered higher than an independent reader reads their tumor, and the aim,
fitted on simulated tuning series (``Testing/benchmarks/fit_guided_aim.py
--tuning``), makes up for it (with the core kept there was nothing to make up).
The generated volume is read back by the regressor on the clean latent
(``t = 0``), each window's reading summed, scaled as the windows' requests are
to the crop's and divided by the aim.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from tumorgen.errors import InputError
from tumorgen.volume import Volume

#: The guidance aims at this multiple of the request: the regressor, whose gradient the samples follow, may read them
#: higher than their drawn tumor. Fitted on 12 simulated tuning series against an independent reader
#: (``Testing/benchmarks/fit_guided_aim.py --tuning``, docs/results/followup.md): 1.047 when the whole tumor was
#: redrawn at strength 0.5; 0.989 with the core kept and strength 0.6 (the median case drew 1.1 % over under an aim
#: of 1), within a point of 1, so none is applied.
AIM = 1.0
#: Where the forecast grows the tumor, the latest tumor deeper than this inside its boundary is kept as the scan shows it.
KEEP_CORE_MM = 2.0
#: The growth is painted, before it is noised, with the intensity of the latest tumor's outer shell this thick.
RIM_MM = 3.0


def check_guided(model) -> None:
    """Fails unless ``model`` (a :class:`~tumorgen.models.sampling.LatentDiffusion`, or a
    :class:`~tumorgen.models.pending.PendingModel` still loading) holds the size regressor."""
    if not model.has("regressor"):
        raise InputError(f"the guided route needs the size regressor (regressor.safetensors), which {model.folder} does not have; "
                         "use --route fk")


def kept_core(start_field: np.ndarray, threshold: float, spacing) -> np.ndarray:
    """The latest tumor (``start_field`` ≥ ``threshold``) more than :data:`KEEP_CORE_MM` inside its boundary: what the
    guided route keeps as the latest scan shows it when the forecast grows the tumor."""
    from scipy.ndimage import distance_transform_edt

    tumor = np.asarray(start_field) >= threshold
    return distance_transform_edt(tumor, sampling=spacing) > KEEP_CORE_MM if tumor.any() else tumor


def painted_growth(work: np.ndarray, start_field: np.ndarray, median_field: np.ndarray, region: np.ndarray, spacing,
                   threshold: float = 0.25) -> np.ndarray:
    """The crop ``work`` (normalised intensities) with the forecast's growth painted as the latest tumor's rim shows:
    inside ``region``, where the median field reaches ``threshold`` and the latest field does not, the intensities are
    replaced by the median of the latest tumor's outer :data:`RIM_MM` (its shell, mostly oedema), faded out over about
    a voxel at the growth's edge. The SDEdit start of the guided route: noised to the strength, the growth keeps the
    tumor's low frequencies instead of the healthy tissue's, which the denoiser otherwise heals it back towards.
    Returns ``work`` itself (not a copy) where there is no growth or no latest tumor."""
    from scipy.ndimage import distance_transform_edt, gaussian_filter

    tumor = np.asarray(start_field) >= threshold
    growth = (np.asarray(median_field) >= threshold) & ~tumor & region
    if not growth.any() or not tumor.any():
        return work
    rim = tumor & (distance_transform_edt(tumor, sampling=spacing) <= RIM_MM) & (work > 0)
    if not rim.any():
        return work
    value = float(np.median(work[rim]))
    fade = gaussian_filter(growth.astype(np.float32), sigma=[0.75 / s for s in spacing])
    weight = np.where(region, np.maximum(fade, growth), np.float32(0.0))  # every growth voxel fully painted, its edge faded
    return work + weight * (np.float32(value) - work)


def _window(centre: np.ndarray, size: int, limit: int) -> slice:
    start = int(round(centre - size / 2))
    start = max(0, min(start, limit - size))
    return slice(start, start + size)


def work_box(tumor: np.ndarray, size, step: int) -> tuple[slice, slice, slice]:
    """The crop the guided route samples: along each axis the regressor's window (``size``) centred on the tumor, or,
    where the tumor is longer than that, its extent rounded up to a multiple of ``step`` (the latents' multiple on the
    image grid), centred on it; never beyond the image."""
    box = []
    for axis, (s, n) in enumerate(zip(size, tumor.shape)):
        hit = np.flatnonzero(tumor.any(axis=tuple(a for a in range(tumor.ndim) if a != axis)))
        extent = int(hit[-1] - hit[0] + 1)
        length = s if extent <= s else min(n, -(-extent // step) * step)
        box.append(_window((hit[0] + hit[-1] + 1) / 2, length, n))
    return tuple(box)


def reading_windows(latent_shape, window) -> list[tuple[slice, slice, slice]]:
    """The regressor's windows (latent voxels) that tile a latent of ``latent_shape``: one where it is the window's size,
    else evenly spaced with at least half a window's overlap along each axis longer than one window."""
    starts = []
    for n, w in zip(latent_shape, window):
        count = 1 if n <= w else -(-(n - w) // (w // 2)) + 1
        starts.append(sorted({int(round(v)) for v in np.linspace(0, max(n - w, 0), count)}))
    return [tuple(slice(a, a + w) for a, w in zip(corner, window))
            for corner in ((i, j, k) for i in starts[0] for j in starts[1] for k in starts[2])]


@dataclass
class GuidedResult:
    """The guided follow-up: mean, spread and samples (on the image's grid), the region that changed, the regressor's
    window, the volume requested inside it and the one it reads back from the generated latents (cm³)."""

    mean: Volume
    std: Volume
    samples: list[Volume]
    timings: dict[str, float]
    region: np.ndarray
    window: tuple[slice, slice, slice]
    requested_cm3: float
    read_cm3: float
    windows: int = 1


def guided_followup(model, image: Volume, region: np.ndarray, median_field: np.ndarray, settings, requested_cm3: float, *,
                    start_field: np.ndarray, tissues=None, progress: Callable[[str, float, str], None] | None = None,
                    cancelled: Callable[[], bool] | None = None):
    """The follow-up image by regressor-guided sampling (see the module docstring); ``region``: where it may change;
    ``tissues``: the image's tissue maps (:class:`~tumorgen.anatomy.tissues.TissueMaps`), the ControlNet's condition
    with the median field (None: the denoiser unconditioned)."""
    import torch

    from tumorgen.inpainting.core import SAMPLE_BATCH, _compose, _latent_mask, condition_maps, normalisation
    from tumorgen.inpainting.postprocess import PoissonBlender
    from tumorgen.models.repaint import RePaintChain, RePaintSchedule, repaint, time_grid
    from tumorgen.models.train import VOLUME_SCALE_CM3

    report = progress or (lambda stage, fraction, message: None)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    spacing = float(model.config.spacing_mm)
    if not np.allclose(image.spacing, spacing, atol=1e-3):
        raise InputError(f"the guided route works on the model's {spacing:g} mm grid; the T1 has spacing "
                         f"{tuple(round(s, 3) for s in image.spacing)} (resample it first)")
    size = tuple(int(c) for c in model.config.crop_for("regressor"))
    if any(s > n for s, n in zip(size, image.shape)):
        raise InputError(f"the image {image.shape} is smaller than the regressor's window {size}")
    tumor = (start_field >= 0.25) | (median_field >= 0.25)
    if not tumor.any():
        raise InputError("the guided route needs a tumor (concentration ≥ 0.25) now or in the forecast; there is none")
    box = work_box(tumor, size, model.down * model.latent_multiple)
    voxel_cm3 = image.grid.voxel_volume_mm3 / 1000.0
    grown = np.asarray(median_field) >= 0.25
    total = float(grown.sum()) * voxel_cm3
    share = (lambda where: float(grown[where].sum()) * voxel_cm3 / total) if total > 0 else (lambda where: 1.0)
    target = requested_cm3 * share(box)
    lo, hi = normalisation(np.asarray(image.array), region)
    work = np.clip((np.asarray(image.array, np.float32)[box] - lo) / (hi - lo), 0.0, None).astype(np.float32)
    work_region = region[box]
    if not work_region.any():
        raise InputError("the region that may change lies outside the guided route's crop around the tumor")
    known = model.encode(work)
    # the SDEdit start: the latest scan with the forecast's growth painted as its tumor's rim
    painted = painted_growth(work, np.asarray(start_field)[box], np.asarray(median_field)[box], work_region, image.spacing)
    sdedit_start = known if painted is work else model.encode(painted)
    cond, cache = None, {}
    blend = PoissonBlender(work_region)  # one Laplacian for every sample
    if tissues is not None and getattr(model, "controlnet", None) is not None:
        maps = condition_maps(*(np.asarray(a)[box] for a in tissues.arrays()), np.asarray(median_field)[box])
        cond = model.condition_tensor(maps)
    latent_mask = torch.from_numpy(_latent_mask(work_region, known.shape[2:], model.down)[None, None].astype(np.float32)).to(known.device)
    schedule = RePaintSchedule("ddim", settings.guided_steps, 1, 1)
    grid_scheduler = model.scheduler("ddim", settings.guided_steps)
    chain = RePaintChain(grid_scheduler.alphas_cumprod, time_grid(grid_scheduler), "ddim")
    abar = grid_scheduler.alphas_cumprod.to(known.device)
    # a tumor longer than the regressor's window is read on several windows, each against the forecast's share in it
    windows = reading_windows(known.shape[2:], tuple(s // model.down for s in size))
    shares = [requested_cm3 * share(tuple(slice(b.start + w.start * model.down, b.start + w.stop * model.down) for b, w in zip(box, win)))
              for win in windows]
    y = AIM * torch.tensor(shares, device=known.device)[None, :] / VOLUME_SCALE_CM3  # (1, windows)
    # the clean latents' reading as a volume in the crop: the windows' readings summed, scaled as their requests (which
    # count the overlaps) are to the crop's, and the aim (the regressor's known bias) taken out
    read_scale = target / (AIM * sum(shares)) if sum(shares) > 0 else 1.0 / AIM
    coverage = torch.zeros((1, 1, *known.shape[2:]), device=known.device)
    for win in windows:
        coverage[(slice(None), slice(None), *win)] += 1
    regressor = model.regressor

    def read(x: torch.Tensor, t: int) -> torch.Tensor:
        """The regressor's reading of each window of each sample, (B, windows), in its units (cm³ / 10)."""
        crops = torch.cat([x[(slice(None), slice(None), *win)] for win in windows])  # window-major: (windows·B, C, w, w, w)
        values = regressor(crops, torch.full((crops.shape[0],), int(t), device=x.device, dtype=torch.long))
        return values[:, 0].reshape(len(windows), x.shape[0]).T

    def predict(x: torch.Tensor, t: int) -> torch.Tensor:
        eps = model.predict_noise(x, t, cond, cache)
        if settings.guidance <= 0:
            return eps
        with torch.enable_grad():
            x_in = x.detach().requires_grad_(True)
            loss = 0.5 * ((read(x_in, t) - y) ** 2).sum()
            (grad,) = torch.autograd.grad(loss, x_in)
        if len(windows) > 1:
            grad = grad / coverage.clamp(min=1)  # each latent voxel as strongly guided as under one window
        return eps + settings.guidance * float((1 - abar[int(t)]) ** 0.5) * grad

    full_region = np.zeros(image.shape, bool)
    full_region[box] = work_region
    timings["prepare"] = time.perf_counter() - clock
    outputs, reads = [], []
    timings["sample"] = timings["decode"] = 0.0
    seeds = [settings.seed + n for n in range(settings.samples)]
    for first in range(0, len(seeds), SAMPLE_BATCH):  # the samples as one batch (the guidance's gradient is per sample)
        batch = seeds[first:first + SAMPLE_BATCH]
        clock = time.perf_counter()

        def step(fraction, first=first, size=len(batch)):
            report("sample", (first + size * 0.9 * fraction) / len(seeds), f"guided samples {first + 1}–{first + size}/{len(seeds)}")

        latents = repaint(predict, known, latent_mask, chain, schedule, seed=batch, progress=step, cancelled=cancelled,
                          prior=sdedit_start, strength=settings.strength)
        with torch.no_grad():
            reads.extend(float(v) * VOLUME_SCALE_CM3 * read_scale for v in read(latents, 0).sum(1).cpu())
        timings["sample"] += time.perf_counter() - clock
        clock = time.perf_counter()
        for generated in model.decode_batch(latents, work_region.shape):
            generated = np.clip(blend(generated.astype(np.float32), work), 0.0, None)
            outputs.append(_compose(image, full_region, box, generated, lo, hi))
        timings["decode"] += time.perf_counter() - clock
    stack = np.stack([o[box].astype(np.float64) for o in outputs])  # the samples differ only inside the box
    mean = _compose(image, full_region, box, None, lo, hi, values=stack.mean(0))
    std = np.zeros(image.shape, np.float32)
    std[box][full_region[box]] = stack.std(0)[full_region[box]].astype(np.float32)
    report("done", 1.0, "guided follow-up ready")
    return GuidedResult(image.with_array(mean), image.with_array(std), [image.with_array(o) for o in outputs], timings, full_region,
                        box, target, float(np.mean(reads)), len(windows))


__all__ = ["GuidedResult", "check_guided", "guided_followup", "kept_core", "painted_growth", "reading_windows", "work_box"]
