"""The networks of the latent diffusion model, built from MONAI (no layers written here).

* autoencoder: :class:`monai.networks.nets.AutoencoderKL`, one image channel ↔
  ``latent_channels`` (4), downsampling 2 per level after the first (4× with
  three levels), shared by all contrasts;
* denoiser: :class:`monai.networks.nets.DiffusionModelUNet` on the latents,
  trained with DDPM (1000 steps, linear β 1e-4 → 0.02) and sampled with DDPM or DDIM;
* controlnet: :class:`monai.networks.nets.ControlNet`; its condition (tissue
  maps and concentration by default; the list is configurable) is brought to
  the latent grid (:func:`prepare_condition`) either by nearest-neighbour
  downsampling (``"condition_resampling": "nearest"``, paper 000) or by the
  ControlNet's own strided conditioning embedding (``"embedding"``, the
  ControlNet paper's design: the maps enter on the image grid), and its
  residuals are added to the denoiser's features (:class:`ControlledDenoiser`);
* regressor: :class:`monai.networks.nets.DiffusionModelEncoder` on noisy latents
  ``x_t`` and ``t``, one output: the tumor volume (for guided sampling).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from tumorgen.models.config import ModelConfig


def memory_format(device: torch.device | str) -> torch.memory_format:
    """Channels-last on the CPU, where oneDNN's 3D convolutions run faster that way (measured on 2 cores: an
    autoencoder training step 0.93 → 0.64 s, a denoiser step 1.78 → 1.51 s); the default layout on CUDA."""
    return torch.channels_last_3d if torch.device(device).type == "cpu" else torch.contiguous_format


def place(module: nn.Module, device: torch.device | str) -> nn.Module:
    """``module`` on ``device`` in that device's :func:`memory_format` (values are unchanged); on the CPU its 3D
    convolutions always take oneDNN (:func:`onednn_convolutions`)."""
    module = module.to(device=device, memory_format=memory_format(device))
    return onednn_convolutions(module) if torch.device(device).type == "cpu" else module


@functools.cache
def onednn_dtypes() -> tuple[torch.dtype, ...]:
    """What oneDNN's convolution computes in on this CPU: float32, and bfloat16 where the CPU has the instructions
    oneDNN's bfloat16 path needs (AVX-512 BW/VL/DQ or AVX-NE-CONVERT); elsewhere bfloat16 takes PyTorch's own kernel."""
    bf16 = bool(getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)())
    return (torch.float32, torch.bfloat16) if bf16 else (torch.float32,)


def _onednn_conv_forward(self: nn.Conv3d, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    if (input.device.type == "cpu" and input.dtype in onednn_dtypes() and weight.dtype == input.dtype
            and self.padding_mode == "zeros" and not isinstance(self.padding, str)):
        return torch.ops.aten.mkldnn_convolution(input, weight, bias, list(self.padding), list(self.stride), list(self.dilation),
                                                 self.groups)
    return nn.Conv3d._conv_forward(self, input, weight, bias)


def onednn_convolutions(module: nn.Module) -> nn.Module:
    """``module`` with every :class:`~torch.nn.Conv3d` running oneDNN's convolution on the CPU, whatever the batch size.

    PyTorch's CPU heuristic sends a 3D convolution with batch 1 and fewer than 20,480 values in its first four
    dimensions (batch × channels × two spatial sizes: a 32-channel 16³ latent) to its native ``slow_conv3d``,
    which on 2 cores took 5.0 ms for a 32 → 32 channel 3³ convolution on a 16³ latent against 0.5 ms with oneDNN;
    the tiny denoiser + ControlNet evaluation on one 16³ window went from 75–99 ms to 25 ms (the same values to
    5e-6). Other devices, dtypes (bfloat16 on a CPU without oneDNN's bfloat16 instructions: :func:`onednn_dtypes`) and
    padding modes keep PyTorch's own choice. Returns ``module``.
    """
    import types

    if not torch.backends.mkldnn.is_available():
        return module
    for layer in module.modules():
        if isinstance(layer, nn.Conv3d) and not isinstance(layer, nn.ConvTranspose3d):
            layer._conv_forward = types.MethodType(_onednn_conv_forward, layer)
    return module


def as_input(tensor: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """``tensor`` on ``device``; volumes (5-D) in that device's :func:`memory_format`."""
    tensor = tensor.to(device)
    return tensor.contiguous(memory_format=memory_format(device)) if tensor.ndim == 5 else tensor


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when present, else the CPU), ``cpu`` or ``cuda``: :func:`tumorgen.device.resolve_device`."""
    from tumorgen.device import resolve_device as resolve

    return resolve(name)


#: Initial log-variance of the autoencoder's posterior: σ = e^(-5) ≈ 0.007 at the start of training instead of ≈ 1.
#: With MONAI's default the sampled latent starts as noisy as its mean, and a KL weight of 1e-6 barely shrinks it,
#: so the decoder learns from latents with an SNR of about 4 for thousands of steps (measured: 21 dB at step 500).
INITIAL_LOG_VARIANCE = -10.0


def build_autoencoder(config: ModelConfig) -> nn.Module:
    from monai.networks.nets import AutoencoderKL

    a = config.autoencoder
    net = AutoencoderKL(
        spatial_dims=3,
        in_channels=1,
        out_channels=1,
        channels=tuple(a["channels"]),
        latent_channels=int(a["latent_channels"]),
        num_res_blocks=int(a["num_res_blocks"]),
        attention_levels=tuple(a["attention_levels"]),
        norm_num_groups=int(a["norm_num_groups"]),
        with_encoder_nonlocal_attn=False,
        with_decoder_nonlocal_attn=False,
    )
    with torch.no_grad():
        net.quant_conv_log_sigma.conv.bias.fill_(INITIAL_LOG_VARIANCE)
    return net


def _unet_kwargs(config: ModelConfig) -> dict:
    d = config.denoiser
    return dict(
        spatial_dims=3,
        in_channels=config.latent_channels,
        channels=tuple(d["channels"]),
        attention_levels=tuple(d["attention_levels"]),
        num_res_blocks=int(d["num_res_blocks"]),
        num_head_channels=int(d["num_head_channels"]),
        norm_num_groups=int(d["norm_num_groups"]),
    )


def build_denoiser(config: ModelConfig) -> nn.Module:
    from monai.networks.nets import DiffusionModelUNet

    return DiffusionModelUNet(out_channels=config.latent_channels, **_unet_kwargs(config))


CONDITION_RESAMPLING = ("nearest", "embedding")


def condition_resampling(config: ModelConfig) -> str:
    return str(config.controlnet.get("condition_resampling", "nearest"))


def prepare_condition(config: ModelConfig, condition: torch.Tensor, latent_shape) -> torch.Tensor:
    """The ControlNet input for condition maps on the image grid (B, C, X, Y, Z) and latents of ``latent_shape``.

    ``nearest``: downsampled to the latent grid. ``embedding``: kept on the image
    grid, which must be the latent grid times the autoencoder's downsampling.
    """
    latent_shape = tuple(int(s) for s in latent_shape)
    if condition_resampling(config) == "nearest":
        return condition if tuple(condition.shape[2:]) == latent_shape else condition_to_latent(condition, latent_shape)
    want = tuple(s * config.downsampling for s in latent_shape)
    if tuple(condition.shape[2:]) != want:
        raise ValueError(f"condition maps of shape {tuple(condition.shape[2:])} do not match latents {latent_shape} "
                         f"(expected {want}: the latent grid × {config.downsampling})")
    return condition


def build_controlnet(config: ModelConfig, denoiser: nn.Module | None = None) -> nn.Module:
    """A ControlNet for ``config``'s condition channels; initialised from ``denoiser``'s encoder when given."""
    from monai.networks.nets import ControlNet

    net = ControlNet(
        conditioning_embedding_in_channels=len(config.condition),
        conditioning_embedding_num_channels=tuple(config.controlnet["conditioning_embedding_num_channels"]),
        **_unet_kwargs(config),
    )
    if denoiser is not None:
        # ControlNet's encoder mirrors the denoiser's: start from its weights (the zero convolutions stay zero)
        own = net.state_dict()
        shared = {k: v for k, v in denoiser.state_dict().items() if k in own and own[k].shape == v.shape}
        net.load_state_dict(shared, strict=False)
    return net


def build_regressor(config: ModelConfig) -> nn.Module:
    from monai.networks.nets.diffusion_model_unet import DiffusionModelEncoder

    r = config.regressor
    return DiffusionModelEncoder(
        spatial_dims=3,
        in_channels=config.latent_channels,
        out_channels=1,
        input_shape=config.latent_crop,
        channels=tuple(r["channels"]),
        attention_levels=tuple(r["attention_levels"]),
        num_res_blocks=int(r["num_res_blocks"]),
        norm_num_groups=int(r["norm_num_groups"]),
    )


def build_scheduler(config: ModelConfig, kind: str = "ddpm"):
    """The DDPM (training, ancestral sampling) or DDIM (fast sampling) scheduler of ``config``."""
    from monai.networks.schedulers import DDIMScheduler, DDPMScheduler

    s = config.scheduler
    kwargs = dict(num_train_timesteps=int(s["num_train_timesteps"]), beta_start=float(s["beta_start"]), beta_end=float(s["beta_end"]),
                  schedule=str(s["schedule"]))
    if kind == "ddpm":
        return DDPMScheduler(clip_sample=False, **kwargs)  # latents are not bounded to [-1, 1]
    if kind == "ddim":
        return DDIMScheduler(clip_sample=False, **kwargs)
    raise ValueError(f"scheduler kind must be ddpm or ddim, got {kind!r}")


def condition_to_latent(condition: torch.Tensor, latent_shape) -> torch.Tensor:
    """Condition maps (B, C, X, Y, Z) on the image grid → the latent grid by nearest-neighbour downsampling."""
    return F.interpolate(condition, size=tuple(int(s) for s in latent_shape), mode="nearest")


class ControlledDenoiser(nn.Module):
    """The denoiser with a ControlNet's residuals added to its skip and middle features."""

    def __init__(self, denoiser: nn.Module, controlnet: nn.Module, config: ModelConfig, conditioning_scale: float = 1.0):
        super().__init__()
        self.denoiser = denoiser
        self.controlnet = controlnet
        self.config = config
        self.conditioning_scale = conditioning_scale

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """``condition``: the maps on the image grid (or, with nearest resampling, already on the latent grid)."""
        cond = prepare_condition(self.config, condition, x.shape[2:])
        down, mid = self.controlnet(x=x, timesteps=timesteps, controlnet_cond=cond, conditioning_scale=self.conditioning_scale)
        return self.denoiser(x=x, timesteps=timesteps, down_block_additional_residuals=down, mid_block_additional_residual=mid)
