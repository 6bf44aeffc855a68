"""Held-out metrics of a trained model folder (what the model cards and the documentation's results pages report).

* autoencoder: PSNR inside the brain (foreground of the skull-stripped image),
  data range = the ground truth's range there, per contrast: against the
  image itself and, for simulated cases written with noise-free references,
  against the noise-free image (the anatomy), with the noise-free image's own
  PSNR against the noisy one as the noise floor. A reconstruction through a
  4-channel, 4× latent cannot carry voxel noise, so against the noisy image it
  scores at most about that floor (30.8 dB on t1n, 30.2 dB on t2w at the
  simulator's noise);
* ControlNet + denoiser: a t1n image sampled with DDIM under a case's tissue
  maps and concentration is split into three classes by multi-Otsu thresholds
  inside the brain; Dice of CSF / GM / WM against the argmax of the conditioning
  tissue maps, outside the tumor's labels (where the image shows tumor, not
  the tissue underneath). The same thresholding of the real t1n and of its
  autoencoder reconstruction is reported alongside as the ceiling;
* denoiser and ControlNet: noise-prediction MSE on held-out latents;
* regressor: mean absolute error of the tumor volume from noisy latent crops.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from tumorgen.models.data import Case
from tumorgen.models.sampling import LatentDiffusion, latent_encoder

TISSUE_CLASSES = ("csf", "gm", "wm")
EVAL_TIMESTEPS = (50, 250, 500, 750)


def brain_psnr(pred: np.ndarray, truth: np.ndarray, brain: np.ndarray) -> float:
    """PSNR inside ``brain``; the data range is the range of ``truth`` there."""
    values = truth[brain].astype(np.float64)
    mse = float(np.mean((pred[brain].astype(np.float64) - values) ** 2))
    peak = float(values.max() - values.min())
    return float("inf") if mse == 0 else 10.0 * np.log10(peak**2 / mse)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total


def tissue_labels(case: Case) -> tuple[np.ndarray, np.ndarray]:
    """Argmax of the case's CSF/GM/WM maps (1, 2, 3) and the mask where they are compared (brain, no tumor)."""
    maps = np.stack([case.condition[k] for k in TISSUE_CLASSES])
    brain = maps.sum(0) > 0.5
    labels = np.where(brain, maps.argmax(0) + 1, 0)
    tumor = case.condition.get("concentration", np.zeros_like(brain, np.float32)) >= 0.25
    return labels, brain & ~tumor


def threshold_classes(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Three intensity classes (1 dark … 3 bright: CSF, GM, WM on T1) by multi-Otsu inside ``mask``."""
    from skimage.filters import threshold_multiotsu

    thresholds = threshold_multiotsu(image[mask], classes=3)
    return np.where(mask, np.digitize(image, thresholds) + 1, 0)


def class_dice(image: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    classes = threshold_classes(image, mask)
    return {name: dice((classes == k) & mask, (labels == k) & mask) for k, name in enumerate(TISSUE_CLASSES, start=1)}


def _mean(rows: list[dict], key: str) -> float:
    return float(np.mean([r[key] for r in rows]))


def evaluate_autoencoder(model: LatentDiffusion, cases: list[Case], progress: Callable[[float, str], None] | None = None) -> dict:
    rows = []
    total = sum(len(c.images) for c in cases)
    for case in cases:
        for contrast, image in case.images.items():
            brain = image > 0
            recon = model.reconstruct(image)
            row = {"case": case.name, "contrast": contrast, "psnr": brain_psnr(recon, image, brain)}
            reference = case.references.get(contrast)
            if reference is not None:
                row["psnr_noisefree"] = brain_psnr(recon, reference, brain)
                row["noise_floor"] = brain_psnr(reference, image, brain)
            rows.append(row)
            if progress:
                progress(len(rows) / total, f"{case.name} {contrast}: {row['psnr']:.2f} dB")
    out = {}
    for key, name in (("psnr", "psnr_brain_db"), ("psnr_noisefree", "psnr_noisefree_db"), ("noise_floor", "noise_floor_db")):
        have = [r for r in rows if key in r]
        if not have:
            continue
        contrasts = dict.fromkeys(r["contrast"] for r in have)
        out.update({f"{name}_mean": _mean(have, key), f"{name}_min": float(min(r[key] for r in have)),
                    f"{name}_by_contrast": {c: _mean([r for r in have if r["contrast"] == c], key) for c in contrasts}})
    return {**out, "cases": rows}


@torch.no_grad()
def _noise_mse(model: LatentDiffusion, latents: torch.Tensor, condition: torch.Tensor | None, seed: int) -> float:
    scheduler = model.scheduler("ddpm", int(model.config.scheduler["num_train_timesteps"]))
    generator = torch.Generator().manual_seed(seed)
    errors, cache = [], {}  # the ControlNet's conditioning embedding once for every timestep
    for t in EVAL_TIMESTEPS:
        noise = torch.randn(latents.shape, generator=generator).to(latents.device)
        noisy = scheduler.add_noise(latents, noise, torch.tensor([t], device=latents.device))
        errors.append(float(torch.mean((model.predict_noise(noisy, t, condition, cache) - noise) ** 2)))
    return float(np.mean(errors))


def evaluate_diffusion(model: LatentDiffusion, cases: list[Case], *, steps: int = 50, seed: int = 0,
                       progress: Callable[[float, str], None] | None = None) -> dict:
    rows = []
    for n, case in enumerate(cases):
        image = case.images["t1n"]
        labels, mask = tissue_labels(case)
        condition = np.stack([case.condition[k] for k in model.config.condition])
        cond = model.condition_tensor(condition)
        latents = model.encode(image)
        row = {"case": case.name,
               "noise_mse_denoiser": _noise_mse(model, latents, None, seed),
               "noise_mse_controlnet": _noise_mse(model, latents, cond, seed)}
        sample = model.sample(image.shape, condition, kind="ddim", steps=steps, seed=seed + n)
        row["dice_sampled"] = class_dice(sample, labels, mask)
        row["dice_real_t1n"] = class_dice(image, labels, mask)
        row["dice_reconstructed"] = class_dice(model.reconstruct(image), labels, mask)
        rows.append(row)
        if progress:
            progress((n + 1) / len(cases), f"sampled {case.name}: WM Dice {row['dice_sampled']['wm']:.3f}")
    summary = {f"{kind}_{c}": float(np.mean([r[kind][c] for r in rows])) for kind in ("dice_sampled", "dice_real_t1n", "dice_reconstructed")
               for c in TISSUE_CLASSES}
    return {"ddim_steps": steps, **summary,
            "noise_mse_denoiser": _mean(rows, "noise_mse_denoiser"), "noise_mse_controlnet": _mean(rows, "noise_mse_controlnet"),
            "cases": rows}


@torch.no_grad()
def evaluate_regressor(model: LatentDiffusion, cases: list[Case], *, crops: int = 16, seed: int = 0) -> dict:
    from tumorgen.models.data import LatentCropSampler, encode_cases
    from tumorgen.models.train import VOLUME_SCALE_CM3

    encode = latent_encoder(model.autoencoder, model.latent_scale, model.device, model.autoencoder_roi, model.overlap)
    t1n = [Case(c.name, {"t1n": c.images["t1n"]}, c.condition, c.voxel_cm3) for c in cases]
    sampler = LatentCropSampler(encode_cases(t1n, encode, model.down), model.config.latent_crop, model.down, seed)
    scheduler = model.scheduler("ddpm", int(model.config.scheduler["num_train_timesteps"]))
    generator = torch.Generator().manual_seed(seed)
    errors: dict[int, list[float]] = {t: [] for t in EVAL_TIMESTEPS}
    volumes = []
    for n in range(crops):
        batch = sampler.batch(n, 1)
        z = torch.from_numpy(batch["latent"]).to(model.device)
        volumes.append(float(batch["volume_cm3"][0]))
        for t in EVAL_TIMESTEPS:
            noise = torch.randn(z.shape, generator=generator).to(z.device)
            noisy = scheduler.add_noise(z, noise, torch.tensor([t], device=z.device))
            predicted = float(model.regressor(noisy, torch.tensor([t], device=z.device))[0, 0]) * VOLUME_SCALE_CM3
            errors[t].append(abs(predicted - volumes[-1]))
    return {"volume_mae_cm3_by_t": {str(t): float(np.mean(e)) for t, e in errors.items()},
            "volume_mean_cm3": float(np.mean(volumes)), "crops": crops}


__all__ = ["brain_psnr", "class_dice", "dice", "evaluate_autoencoder", "evaluate_diffusion", "evaluate_regressor",
           "threshold_classes", "tissue_labels"]
