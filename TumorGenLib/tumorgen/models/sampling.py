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

import os
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from tumorgen.errors import InputError
from tumorgen.models import networks as N
from tumorgen.models.config import DEFAULT_MODEL, WEIGHTS_DIR, ModelConfig, bundled_weights, load_config
from tumorgen.models.weights import load_weights, read_card
from tumorgen.threads import rebalance


def pad_to(array: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[int, ...]]:
    """``array`` (…, X, Y, Z) zero-padded at the far end to a multiple of ``multiple``; also its spatial shape."""
    shape = array.shape[-3:]
    want = [-(-n // multiple) * multiple for n in shape]
    pad = [(0, 0)] * (array.ndim - 3) + [(0, w - n) for n, w in zip(shape, want)]
    return np.pad(array, pad), tuple(shape)


#: What the denoiser and the ControlNet may compute in: float32, or bfloat16 / float16 (half the memory traffic;
#: bfloat16 takes oneDNN on CPUs with AVX-512 BF16 or AMX and PyTorch's slower kernel on other CPUs, and runs on CUDA
#: GPUs; float16 on CUDA).
PRECISIONS = ("float32", "bfloat16", "float16")
#: The precision when none is given (float32 when unset): how the command line, the backend and the panels choose it.
PRECISION_VARIABLE = "TUMORGEN_PRECISION"

#: Window overlap. 0.5 scored 0.2 dB higher than 0.25 on a held-out crop (tiny autoencoder, step 2,700) at about
#: 2.5× the time; at 0.25 a whole 1 mm head takes about 40 s to encode and decode on 2 CPU cores (channels-last).
DEFAULT_OVERLAP = 0.25
#: Latent voxels decoded around what an inpainting keeps (:meth:`LatentDiffusion.decode_batch`): one, 4 image voxels
#: on the tiny models' grid. With two, most follow-up crops were decoded whole; with one, four follow-up tuning
#: series moved by −0.12 to +0.05 dB (mean −0.014 dB) with a third fewer windows.
DECODE_MARGIN = 1
#: Windows per network call: a few on the CPU (larger batches gain nothing there), many on a GPU, where each call
#: costs a launch and a batch of windows costs about what one does.
WINDOW_BATCH = 4
WINDOW_BATCH_CUDA = 32


def windowed(predictor: Callable[..., torch.Tensor], inputs: torch.Tensor, roi, overlap: float = DEFAULT_OVERLAP, *,
             with_places: bool = False) -> torch.Tensor:
    """``predictor`` over sliding windows of ``roi`` (input voxels), blended with Gaussian weights.

    The output may be on a coarser or finer grid than the input (encoder,
    decoder); MONAI scales the windows accordingly. An input smaller than
    ``roi`` is zero-padded to it and the output cropped back. With
    ``with_places`` the predictor also gets where each window of its batch
    lies: a tuple of (batch index, first voxel of each spatial axis), one per
    window, the same for the same window at every call on inputs of the same
    shape.
    """
    from monai.inferers import sliding_window_inference

    rebalance()  # the CPU threads follow the cores other processes leave free

    def run(window: torch.Tensor, slices=None) -> torch.Tensor:
        window = N.as_input(window, window.device)
        if not with_places:
            return predictor(window)
        return predictor(window, tuple((int(s[0].start),) + tuple(int(a.start or 0) for a in s[2:]) for s in slices))

    if tuple(inputs.shape[2:]) == tuple(int(r) for r in roi):  # one window: the network on it (what the blending would return)
        return run(inputs, [[slice(b, b + 1), slice(None)] + [slice(0, n) for n in inputs.shape[2:]] for b in range(inputs.shape[0])])
    with warnings.catch_warnings():  # MONAI 1.5 indexes with lists, which PyTorch warns about on every window
        warnings.filterwarnings("ignore", message="Using a non-tuple sequence for multidimensional indexing", category=UserWarning)
        batch = WINDOW_BATCH_CUDA if inputs.device.type == "cuda" else WINDOW_BATCH
        return sliding_window_inference(inputs, tuple(int(r) for r in roi), batch, run, overlap=overlap, mode="gaussian",
                                        with_coord=with_places)


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
                 overlap: float = DEFAULT_OVERLAP, precision: str | None = None):
        if not 0.0 <= overlap < 1.0:
            raise InputError(f"window overlap must be in [0, 1), got {overlap}")
        if precision is None:
            precision = os.environ.get(PRECISION_VARIABLE, "").strip() or "float32"
        if precision not in PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}"
                             + (f" (from {PRECISION_VARIABLE})" if os.environ.get(PRECISION_VARIABLE) == precision else ""))
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
        #: What the denoiser and the ControlNets compute in (the autoencoder and the regressor stay in float32).
        self.precision = precision
        self.dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[precision]
        for network in (self.denoiser, self.controlnet, self.postop):
            if network is not None and self.dtype != torch.float32:
                network.to(self.dtype)

    def postop_model(self) -> LatentDiffusion:
        """This model with the post-operative ControlNet (and its config) in the ControlNet's place."""
        import copy

        if self.postop is None:
            raise InputError(f"{self.folder} has no post-operative ControlNet (postop.safetensors)")
        view = copy.copy(self)
        view.controlnet, view.config = self.postop, self.config.for_postop()
        return view

    def has(self, network: str) -> bool:
        """Whether this model holds ``network`` (``denoiser``, ``controlnet``, ``regressor`` or ``postop``)."""
        return getattr(self, network) is not None

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
        """Scaled latents (1, C, x, y, z) → an image cropped to ``shape``."""
        return self.decode_batch(latents[:1], shape)[0]

    @torch.no_grad()
    def decode_batch(self, latents: torch.Tensor, shape, where: np.ndarray | None = None) -> np.ndarray:
        """Scaled latents (B, C, x, y, z) → B images (B, *shape), decoded as one batch.

        ``where`` (boolean, ``shape``): only the latents over its bounding box, grown by :data:`DECODE_MARGIN`
        latent voxels, are decoded, and the images are NaN beyond what that decodes. An inpainting crop carries
        context for the denoiser that the result never shows; decoding only what is kept took 64 windows instead of
        100 per sample on the follow-up benchmark's timing series.
        """
        roi = tuple(c // self.down for c in self.autoencoder_roi)
        scaled = latents.float() / self.latent_scale
        if where is None or not np.any(where):
            image = windowed(self.autoencoder.decode, scaled, roi, self.overlap)
            return image[:, 0].float().cpu().numpy()[(slice(None), *(slice(0, n) for n in shape))]
        found = np.argwhere(where)
        low = [max(0, int(a) // self.down - DECODE_MARGIN) for a in found.min(0)]
        high = [min(n, -(-(int(b) + 1) // self.down) + DECODE_MARGIN) for b, n in zip(found.max(0), scaled.shape[2:])]
        for axis, (r, n) in enumerate(zip(roi, scaled.shape[2:])):  # at least one window of real latents (no zero padding)
            short = min(r, n) - (high[axis] - low[axis])
            if short > 0:
                low[axis] = max(0, low[axis] - short // 2)
                high[axis] = min(n, low[axis] + min(r, n))
                low[axis] = high[axis] - min(r, n)
        part = windowed(self.autoencoder.decode, scaled[(slice(None), slice(None), *(slice(a, b) for a, b in zip(low, high)))], roi,
                        self.overlap)[:, 0].float().cpu().numpy()
        out = np.full((latents.shape[0], *shape), np.nan, np.float32)
        box = tuple(slice(a * self.down, min(b * self.down, n)) for a, b, n in zip(low, high, shape))
        out[(slice(None), *box)] = part[(slice(None), *(slice(0, s.stop - s.start) for s in box))]
        return out

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
        """The denoiser's noise estimate for latents ``x`` (B, C, x, y, z) at timestep ``t``, on windows.

        ``condition`` (1 or B, C, X, Y, Z) on the image grid (:meth:`condition_tensor`) adds the ControlNet's
        residuals; one condition serves every sample of the batch. ``cache``: a dict kept over one sampling run;
        the ControlNet's conditioning embedding depends on the condition alone, so it is computed once and reused
        at every step and for every sample (with the ``embedding`` resampling it runs on the image grid and costs
        twice the denoiser). The networks run in :attr:`dtype`; the estimate comes back in ``x``'s dtype.
        """
        channels, batch = x.shape[1], x.shape[0]
        controlled = condition is not None and self.controlnet is not None
        if controlled and condition.shape[0] not in (1, batch):
            raise InputError(f"the condition has a batch of {condition.shape[0]}, the latents {batch}: give one condition or one per sample")
        if tuple(x.shape[2:]) == tuple(self.denoiser_roi):  # one window: no windowing, and the embedding cached by identity
            return self._predict_window(x, t, condition if controlled else None, cache)

        shared = controlled and condition.shape[0] == 1  # one condition for every sample: a window's embedding serves them all

        def predictor(window: torch.Tensor, places) -> torch.Tensor:
            timesteps = torch.full((window.shape[0],), int(t), device=window.device, dtype=torch.long)
            latents = window[:, :channels].to(self.dtype)
            if not controlled:
                return self.denoiser(latents, timesteps).to(x.dtype)

            def window_condition() -> torch.Tensor:
                return N.prepare_condition(self.config, unfold(window[:, channels:], self.down), latents.shape[2:]).to(self.dtype)

            if cache is None:
                down, mid = self.controlnet(x=latents, timesteps=timesteps, controlnet_cond=window_condition())
            else:
                where = tuple((0 if shared else b, *corner) for b, *corner in places)
                down, mid = self._controlnet_cached(latents, timesteps, window_condition, cache, condition, tuple(x.shape[2:]), where)
            return self.denoiser(x=latents, timesteps=timesteps, down_block_additional_residuals=down,
                                 mid_block_additional_residual=mid).to(x.dtype)

        inputs = torch.cat([x, fold(condition, self.down).expand(batch, -1, -1, -1, -1)], dim=1) if controlled else x
        return windowed(predictor, inputs, self.denoiser_roi, self.overlap, with_places=True)

    def _predict_window(self, x: torch.Tensor, t: int, condition: torch.Tensor | None, cache: dict | None) -> torch.Tensor:
        """:meth:`predict_noise` on latents of exactly one window: the networks on the whole batch at once."""
        rebalance()
        latents = N.as_input(x.to(self.dtype), self.device)
        timesteps = torch.full((x.shape[0],), int(t), device=latents.device, dtype=torch.long)
        if condition is None:
            return self.denoiser(latents, timesteps).to(x.dtype)
        key = ("whole", id(condition))
        held = cache.get(key) if cache is not None else None
        if held is None or held[0] is not condition:
            cond = N.as_input(N.prepare_condition(self.config, condition, x.shape[2:]).to(self.dtype), self.device)
            held = (condition, self.controlnet.controlnet_cond_embedding(cond))
            if cache is not None:
                cache[key] = held  # the condition is kept with it, so its id stays its own
        embedded = held[1]
        down, mid = self._controlnet_embedded(embedded.expand(x.shape[0], *embedded.shape[1:]), latents, timesteps)
        return self.denoiser(x=latents, timesteps=timesteps, down_block_additional_residuals=down,
                             mid_block_additional_residual=mid).to(x.dtype)

    def _controlnet_cached(self, latents: torch.Tensor, timesteps: torch.Tensor, window_condition: Callable[[], torch.Tensor],
                           cache: dict, condition: torch.Tensor, shape: tuple, places: tuple):
        """The ControlNet on a batch of windows with their conditioning embedding from ``cache``: the embedding of the
        windows at ``places`` (:func:`windowed`) of ``condition`` on latents of ``shape`` is computed once per
        sampling run, from ``window_condition()`` (called only then). The condition is kept with it, so its id stays
        its own while the cache lives."""
        key = ("windows", id(condition), shape, places)
        held = cache.get(key)
        if held is None or held[0] is not condition:
            held = cache[key] = (condition, self.controlnet.controlnet_cond_embedding(window_condition()))
        return self._controlnet_embedded(held[1], latents, timesteps)

    def _controlnet_embedded(self, embedded: torch.Tensor, latents: torch.Tensor, timesteps: torch.Tensor):
        """The ControlNet's residuals with its conditioning embedding already computed (``embedded``)."""
        own = self.controlnet.controlnet_cond_embedding
        self.controlnet.controlnet_cond_embedding = _Fixed(embedded)
        try:  # the stand-in ignores its input: the embedding stands in the condition's place
            return self.controlnet(x=latents, timesteps=timesteps, controlnet_cond=embedded)
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


__all__ = ["DEFAULT_MODEL", "DEFAULT_OVERLAP", "LatentDiffusion", "PRECISIONS", "PRECISION_VARIABLE", "WEIGHTS_DIR", "bundled_weights", "fold", "latent_encoder", "pad_to",
           "unfold", "windowed"]
