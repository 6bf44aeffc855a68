"""The trained latent diffusion model as one object: load, encode, decode, sample.

:class:`LatentDiffusion` loads the weights of one folder (the bundled ``tiny``
models by default: ``tumorgen/models/weights/tiny``), each checked against its
card's SHA-256. Images are arrays on the model's working grid (the config's
spacing; callers resample); they are zero-padded to what the networks need and
cropped back. Sampling is DDPM (ancestral, the paper's 1000 steps) or DDIM
(``steps`` of them, deterministic for a seed) with the ControlNet's condition.

Every network runs on sliding windows of the size it was trained on (MONAI's
``sliding_window_inference``, Gaussian-weighted blending): the autoencoder on
its training crop, the denoiser and ControlNet on theirs (in latent voxels).
The networks normalise with GroupNorm, whose statistics over a whole head with
its background differ from those over a training crop; measured on the tiny
autoencoder at step 2,000, whole-volume reconstruction gave 20.9 dB against
26.0 dB on windows. The ControlNet's condition lives on the image grid, so it
travels through the windows folded into channels (space-to-depth) beside the
latents and is unfolded inside each window.
"""

from __future__ import annotations

import hashlib
import warnings
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


#: Window overlap. 0.5 scored 0.2 dB higher than 0.25 on a held-out crop (tiny autoencoder, step 2,700) at about
#: 2.5× the time; at 0.25 a whole 1 mm head takes about 40 s to encode and decode on 2 CPU cores (channels-last).
DEFAULT_OVERLAP = 0.25
WINDOW_BATCH = 4


def windowed(predictor: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, roi, overlap: float = DEFAULT_OVERLAP) -> torch.Tensor:
    """``predictor`` over sliding windows of ``roi`` (input voxels), blended with Gaussian weights.

    The output may be on a coarser or finer grid than the input (encoder,
    decoder); MONAI scales the windows accordingly. An input smaller than
    ``roi`` is zero-padded to it and the output cropped back.
    """
    from monai.inferers import sliding_window_inference

    if tuple(inputs.shape[2:]) == tuple(int(r) for r in roi):  # one window: the network on it (what the blending would return)
        return predictor(N.as_input(inputs, inputs.device))
    with warnings.catch_warnings():  # MONAI 1.5 indexes with lists, which PyTorch warns about on every window
        warnings.filterwarnings("ignore", message="Using a non-tuple sequence for multidimensional indexing", category=UserWarning)
        return sliding_window_inference(inputs, tuple(int(r) for r in roi), WINDOW_BATCH,
                                        lambda window: predictor(N.as_input(window, window.device)), overlap=overlap, mode="gaussian")


def latent_encoder(autoencoder: torch.nn.Module, latent_scale: float, device: torch.device, roi,
                   overlap: float = DEFAULT_OVERLAP) -> Callable[[np.ndarray], np.ndarray]:
    """A function: image array (1, 1, X, Y, Z) → scaled posterior means (1, C, x, y, z) as float32 numpy, on ``roi`` windows."""

    @torch.no_grad()
    def encode(array: np.ndarray) -> np.ndarray:
        image = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(device)
        mu = windowed(lambda window: autoencoder.encode(window)[0], image, roi, overlap)
        return (mu * latent_scale).float().cpu().numpy()

    return encode


def fold(condition: torch.Tensor, factor: int) -> torch.Tensor:
    """(B, C, fX, fY, fZ) → (B, C·f³, X, Y, Z): each f³ block of the image grid into channels at its latent voxel."""
    from monai.networks.utils import pixelunshuffle

    return pixelunshuffle(condition, spatial_dims=3, scale_factor=factor)


def unfold(folded: torch.Tensor, factor: int) -> torch.Tensor:
    """The inverse of :func:`fold`."""
    from monai.networks.utils import pixelshuffle

    return pixelshuffle(folded, spatial_dims=3, scale_factor=factor)


class _Fixed(torch.nn.Module):
    """Stands in for the ControlNet's conditioning embedding with an already computed result."""

    def __init__(self, value: torch.Tensor):
        super().__init__()
        self.value = value

    def forward(self, _condition: torch.Tensor) -> torch.Tensor:
        return self.value


class LatentDiffusion:
    """Autoencoder + denoiser + ControlNet (+ regressor when present) of one weights folder."""

    def __init__(self, weights: str | Path | None = None, config: ModelConfig | str | None = None, device: str = "auto",
                 overlap: float = DEFAULT_OVERLAP):
        if not 0.0 <= overlap < 1.0:
            raise InputError(f"window overlap must be in [0, 1), got {overlap}")
        self.overlap = float(overlap)
        folder = Path(weights) if weights else bundled_weights()
        if not folder.is_dir():
            raise InputError(f"model weights folder not found: {folder}")
        card = read_card(folder / "autoencoder.safetensors")
        self.config = config if isinstance(config, ModelConfig) else load_config(config or card.get("config", DEFAULT_MODEL))
        self.device = N.resolve_device(device)
        self.folder = folder
        self.latent_scale = float(card.get("latent_scale", 1.0))
        self.autoencoder = N.place(load_weights(N.build_autoencoder(self.config), folder / "autoencoder.safetensors"), self.device).eval()
        self.denoiser = self._optional(folder / "denoiser.safetensors", lambda: N.build_denoiser(self.config))
        self.controlnet = None
        if self.denoiser is not None:
            self.controlnet = self._optional(folder / "controlnet.safetensors", lambda: N.build_controlnet(self.config))
        self.regressor = self._optional(folder / "regressor.safetensors", lambda: N.build_regressor(self.config))
        #: The post-operative ControlNet (condition: composite prompt, tumor, box; :mod:`tumorgen.postop`), when present.
        self.postop = None
        if self.denoiser is not None and self.config.postop and (folder / "postop.safetensors").is_file():
            self.postop = self._optional(folder / "postop.safetensors", lambda: N.build_controlnet(self.config.for_postop()))

    def postop_model(self) -> LatentDiffusion:
        """This model with the post-operative ControlNet (and its config) in the ControlNet's place."""
        import copy

        if self.postop is None:
            raise InputError(f"{self.folder} has no post-operative ControlNet (postop.safetensors)")
        view = copy.copy(self)
        view.controlnet, view.config = self.postop, self.config.for_postop()
        return view

    def _optional(self, path: Path, build) -> torch.nn.Module | None:
        return N.place(load_weights(build(), path), self.device).eval() if path.is_file() else None

    @property
    def down(self) -> int:
        return self.config.downsampling

    @property
    def latent_multiple(self) -> int:
        """Latent sizes must be divisible by this (the denoiser halves them once per level after the first)."""
        return 2 ** (len(self.config.denoiser["channels"]) - 1)

    @property
    def autoencoder_roi(self) -> tuple[int, int, int]:
        """The autoencoder's window on the image grid (its training crop)."""
        return self.config.crop_for("autoencoder")

    @property
    def denoiser_roi(self) -> tuple[int, int, int]:
        """The denoiser's and ControlNet's window in latent voxels (their training crop / downsampling)."""
        return tuple(c // self.down for c in self.config.crop_for("denoiser"))

    # -- the autoencoder -------------------------------------------------
    @torch.no_grad()
    def encode(self, image: np.ndarray) -> torch.Tensor:
        """Image (X, Y, Z) → scaled latents (1, C, x, y, z), padded so the denoiser can take them."""
        padded, _ = pad_to(np.asarray(image, np.float32), self.down * self.latent_multiple)
        encode = latent_encoder(self.autoencoder, self.latent_scale, self.device, self.autoencoder_roi, self.overlap)
        return torch.from_numpy(encode(padded[None, None])).to(self.device)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, shape) -> np.ndarray:
        """Scaled latents → an image cropped to ``shape``."""
        roi = tuple(c // self.down for c in self.autoencoder_roi)
        image = windowed(self.autoencoder.decode, latents / self.latent_scale, roi, self.overlap)
        return image[0, 0].float().cpu().numpy()[tuple(slice(0, n) for n in shape)]

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

    @torch.no_grad()
    def predict_noise(self, x: torch.Tensor, t: int, condition: torch.Tensor | None, cache: dict | None = None) -> torch.Tensor:
        """The denoiser's noise estimate for latents ``x`` (1, C, x, y, z) at timestep ``t``, on windows.

        ``condition`` (1, C, X, Y, Z) on the image grid (:meth:`condition_tensor`)
        adds the ControlNet's residuals. ``cache``: a dict kept over one
        sampling run; the ControlNet's conditioning embedding depends on the
        condition alone, so each window's is computed once and reused at every
        step (with the ``embedding`` resampling it runs on the image grid and
        costs twice the denoiser).
        """
        channels = x.shape[1]
        controlled = condition is not None and self.controlnet is not None

        def predictor(window: torch.Tensor) -> torch.Tensor:
            timesteps = torch.full((window.shape[0],), int(t), device=window.device, dtype=torch.long)
            latents = window[:, :channels]
            if not controlled:
                return self.denoiser(latents, timesteps)
            cond = N.prepare_condition(self.config, unfold(window[:, channels:], self.down), latents.shape[2:])
            if cache is None:
                down, mid = self.controlnet(x=latents, timesteps=timesteps, controlnet_cond=cond)
            else:
                down, mid = self._controlnet_cached(latents, timesteps, cond, cache)
            return self.denoiser(x=latents, timesteps=timesteps, down_block_additional_residuals=down,
                                 mid_block_additional_residual=mid)

        inputs = torch.cat([x, fold(condition, self.down)], dim=1) if controlled else x
        return windowed(predictor, inputs, self.denoiser_roi, self.overlap)

    def _controlnet_cached(self, latents: torch.Tensor, timesteps: torch.Tensor, cond: torch.Tensor, cache: dict):
        key = (tuple(cond.shape), hashlib.blake2b(cond.detach().float().cpu().numpy().tobytes(), digest_size=16).hexdigest())
        embedded = cache.get(key)
        if embedded is None:
            embedded = cache[key] = self.controlnet.controlnet_cond_embedding(cond)
        own = self.controlnet.controlnet_cond_embedding
        self.controlnet.controlnet_cond_embedding = _Fixed(embedded)
        try:
            return self.controlnet(x=latents, timesteps=timesteps, controlnet_cond=cond)
        finally:
            self.controlnet.controlnet_cond_embedding = own

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
        cache: dict = {}
        for i, t in enumerate(timesteps):
            eps = self.predict_noise(x, int(t), cond, cache)
            if kind == "ddpm":
                x, _ = scheduler.step(eps, int(t), x, generator=generator)
            else:
                x, _ = scheduler.step(eps, int(t), x)
            if progress:
                progress((i + 1) / len(timesteps))
        return self.decode(x, shape)


__all__ = ["DEFAULT_MODEL", "DEFAULT_OVERLAP", "LatentDiffusion", "WEIGHTS_DIR", "bundled_weights", "fold", "latent_encoder", "pad_to",
           "unfold", "windowed"]
