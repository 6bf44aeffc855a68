"""The trained latent diffusion model as one object: load, encode, decode, sample.

:class:`LatentDiffusion` loads the weights of one folder (the bundled ``tiny``
models by default: ``tumorgen/models/weights/tiny``), each checked against its
card's SHA-256. Images are arrays on the model's working grid (the config's
spacing; callers resample); they are zero-padded to what the networks need and
cropped back. Sampling is DDPM (ancestral, the paper's 1000 steps) or DDIM
(``steps`` of them, deterministic for a seed) with the ControlNet's condition.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from tumorgen.errors import InputError
from tumorgen.models import networks as N
from tumorgen.models.config import ModelConfig, load_config
from tumorgen.models.weights import load_weights, read_card

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_MODEL = "tiny"


def bundled_weights(name: str = DEFAULT_MODEL) -> Path:
    return WEIGHTS_DIR / name


def pad_to(array: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[int, ...]]:
    """``array`` (…, X, Y, Z) zero-padded at the far end to a multiple of ``multiple``; also its spatial shape."""
    shape = array.shape[-3:]
    want = [-(-n // multiple) * multiple for n in shape]
    pad = [(0, 0)] * (array.ndim - 3) + [(0, w - n) for n, w in zip(shape, want)]
    return np.pad(array, pad), tuple(shape)


def latent_encoder(autoencoder: torch.nn.Module, latent_scale: float, device: torch.device) -> Callable[[np.ndarray], np.ndarray]:
    """A function: image array (1, 1, X, Y, Z) → scaled posterior means (1, C, x, y, z) as float32 numpy."""

    @torch.no_grad()
    def encode(array: np.ndarray) -> np.ndarray:
        mu, _ = autoencoder.encode(torch.from_numpy(np.ascontiguousarray(array)).to(device))
        return (mu * latent_scale).float().cpu().numpy()

    return encode


class LatentDiffusion:
    """Autoencoder + denoiser + ControlNet (+ regressor when present) of one weights folder."""

    def __init__(self, weights: str | Path | None = None, config: ModelConfig | str | None = None, device: str = "auto"):
        folder = Path(weights) if weights else bundled_weights()
        if not folder.is_dir():
            raise InputError(f"model weights folder not found: {folder}")
        card = read_card(folder / "autoencoder.safetensors")
        self.config = config if isinstance(config, ModelConfig) else load_config(config or card.get("config", DEFAULT_MODEL))
        self.device = N.resolve_device(device)
        self.folder = folder
        self.latent_scale = float(card.get("latent_scale", 1.0))
        self.autoencoder = load_weights(N.build_autoencoder(self.config), folder / "autoencoder.safetensors").to(self.device).eval()
        self.denoiser = self._optional(folder / "denoiser.safetensors", lambda: N.build_denoiser(self.config))
        self.controlnet = None
        if self.denoiser is not None:
            self.controlnet = self._optional(folder / "controlnet.safetensors", lambda: N.build_controlnet(self.config))
        self.regressor = self._optional(folder / "regressor.safetensors", lambda: N.build_regressor(self.config))

    def _optional(self, path: Path, build) -> torch.nn.Module | None:
        return load_weights(build(), path).to(self.device).eval() if path.is_file() else None

    @property
    def down(self) -> int:
        return self.config.downsampling

    @property
    def latent_multiple(self) -> int:
        """Latent sizes must be divisible by this (the denoiser halves them once per level after the first)."""
        return 2 ** (len(self.config.denoiser["channels"]) - 1)

    # -- the autoencoder -------------------------------------------------
    @torch.no_grad()
    def encode(self, image: np.ndarray) -> torch.Tensor:
        """Image (X, Y, Z) → scaled latents (1, C, x, y, z), padded so the denoiser can take them."""
        padded, _ = pad_to(np.asarray(image, np.float32), self.down * self.latent_multiple)
        mu, _ = self.autoencoder.encode(torch.from_numpy(padded)[None, None].to(self.device))
        return mu * self.latent_scale

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, shape) -> np.ndarray:
        """Scaled latents → an image cropped to ``shape``."""
        image = self.autoencoder.decode(latents / self.latent_scale)[0, 0].float().cpu().numpy()
        return image[tuple(slice(0, n) for n in shape)]

    def reconstruct(self, image: np.ndarray) -> np.ndarray:
        return self.decode(self.encode(image), np.shape(image))

    # -- sampling --------------------------------------------------------
    def condition_tensor(self, condition: np.ndarray) -> torch.Tensor:
        """Condition maps (C, X, Y, Z) on the image grid, padded like the images."""
        if self.controlnet is None:
            raise InputError(f"{self.folder} has no ControlNet (controlnet.safetensors)")
        if condition.shape[0] != len(self.config.condition):
            raise InputError(f"the ControlNet takes {len(self.config.condition)} condition maps ({', '.join(self.config.condition)}), got {condition.shape[0]}")
        padded, _ = pad_to(np.asarray(condition, np.float32), self.down * self.latent_multiple)
        return torch.from_numpy(padded)[None].to(self.device)

    def predict_noise(self, x: torch.Tensor, t: int, condition: torch.Tensor | None) -> torch.Tensor:
        timesteps = torch.full((x.shape[0],), int(t), device=self.device, dtype=torch.long)
        if condition is None or self.controlnet is None:
            return self.denoiser(x, timesteps)
        cond = N.prepare_condition(self.config, condition, x.shape[2:])
        down, mid = self.controlnet(x=x, timesteps=timesteps, controlnet_cond=cond)
        return self.denoiser(x=x, timesteps=timesteps, down_block_additional_residuals=down, mid_block_additional_residual=mid)

    def scheduler(self, kind: str = "ddim", steps: int = 50):
        if kind not in ("ddpm", "ddim"):
            raise InputError(f"scheduler must be ddpm or ddim, got {kind!r}")
        total = int(self.config.scheduler["num_train_timesteps"])
        if not 1 <= steps <= total:
            raise InputError(f"steps must be between 1 and {total}, got {steps}")
        scheduler = N.build_scheduler(self.config, kind)
        scheduler.set_timesteps(steps)
        return scheduler

    @torch.no_grad()
    def sample(self, shape, condition: np.ndarray | None = None, *, kind: str = "ddim", steps: int = 50, seed: int = 0,
               progress: Callable[[float], None] | None = None) -> np.ndarray:
        """An image of ``shape`` (the working grid) generated from noise under ``condition`` (C, X, Y, Z)."""
        if self.denoiser is None:
            raise InputError(f"{self.folder} has no denoiser (denoiser.safetensors)")
        cond = self.condition_tensor(condition) if condition is not None else None
        padded = [-(-n // (self.down * self.latent_multiple)) * self.down * self.latent_multiple for n in shape]
        latent_shape = (1, self.config.latent_channels, *(n // self.down for n in padded))
        generator = torch.Generator().manual_seed(int(seed))
        x = torch.randn(latent_shape, generator=generator).to(self.device)
        scheduler = self.scheduler(kind, steps)
        timesteps = list(scheduler.timesteps)
        for i, t in enumerate(timesteps):
            eps = self.predict_noise(x, int(t), cond)
            if kind == "ddpm":
                x, _ = scheduler.step(eps, int(t), x, generator=generator)
            else:
                x, _ = scheduler.step(eps, int(t), x)
            if progress:
                progress((i + 1) / len(timesteps))
        return self.decode(x, shape)


__all__ = ["DEFAULT_MODEL", "LatentDiffusion", "WEIGHTS_DIR", "bundled_weights", "latent_encoder", "pad_to"]
