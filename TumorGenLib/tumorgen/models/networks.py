"""The networks of the latent diffusion model, built from MONAI (no layers written here).

* autoencoder: :class:`monai.networks.nets.AutoencoderKL`, one image channel ↔
  ``latent_channels`` (4), downsampling 2 per level after the first (4× with
  three levels), shared by all contrasts;
* denoiser: :class:`monai.networks.nets.DiffusionModelUNet` on the latents,
  trained with DDPM (1000 steps, linear β 1e-4 → 0.02) and sampled with DDPM or DDIM;
* controlnet: :class:`monai.networks.nets.ControlNet`; its condition (tissue
  maps and concentration by default; the list is configurable) is brought to
  the latent grid by nearest-neighbour downsampling (:func:`condition_to_latent`)
  and its residuals are added to the denoiser's features (:class:`ControlledDenoiser`);
* regressor: :class:`monai.networks.nets.DiffusionModelEncoder` on noisy latents
  ``x_t`` and ``t``, one output: the tumor volume (for guided sampling).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tumorgen.models.config import ModelConfig


def build_autoencoder(config: ModelConfig) -> nn.Module:
    from monai.networks.nets import AutoencoderKL

    a = config.autoencoder
    return AutoencoderKL(
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
        return DDPMScheduler(**kwargs)
    if kind == "ddim":
        return DDIMScheduler(clip_sample=False, **kwargs)
    raise ValueError(f"scheduler kind must be ddpm or ddim, got {kind!r}")


def condition_to_latent(condition: torch.Tensor, latent_shape) -> torch.Tensor:
    """Condition maps (B, C, X, Y, Z) on the image grid → the latent grid by nearest-neighbour downsampling."""
    return F.interpolate(condition, size=tuple(int(s) for s in latent_shape), mode="nearest")


class ControlledDenoiser(nn.Module):
    """The denoiser with a ControlNet's residuals added to its skip and middle features."""

    def __init__(self, denoiser: nn.Module, controlnet: nn.Module, conditioning_scale: float = 1.0):
        super().__init__()
        self.denoiser = denoiser
        self.controlnet = controlnet
        self.conditioning_scale = conditioning_scale

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        cond = condition if condition.shape[2:] == x.shape[2:] else condition_to_latent(condition, x.shape[2:])
        down, mid = self.controlnet(x=x, timesteps=timesteps, controlnet_cond=cond, conditioning_scale=self.conditioning_scale)
        return self.denoiser(x=x, timesteps=timesteps, down_block_additional_residuals=down, mid_block_additional_residual=mid)
