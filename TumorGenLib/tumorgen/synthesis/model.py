"""The label-map synthesis generator: a latent diffusion model conditioned on a healthy scan, the labels and the contrast.

Paper 003 (GliomaGen) draws four MR contrasts from a label map with a
Med-DDPM-style denoiser: the condition is concatenated to the noisy input.
TumorGen does the same in the latent space of the shared autoencoder (one
autoencoder for all four contrasts, :mod:`tumorgen.models.networks`), and adds
the healthy scan the tumor goes into, so the anatomy is the subject's own:

* input channels: the noisy latent of the contrast (``L`` = 4), the latent of
  the healthy t1n (``L``), the label map as the fractions of each latent voxel
  (4³ image voxels) in the whole tumor, the core and the necrosis (3, nested:
  necrosis ≤ core ≤ whole), and the contrast as a one-hot (4, constant);
* network: MONAI's :class:`~monai.networks.nets.DiffusionModelUNet` (config
  section ``synthesis``), DDPM noise prediction, sampled with DDIM;
* the four contrasts of a case are sampled together from the **same initial
  noise** (and, with DDIM, the same trajectory of noise), so textures that the
  labels leave open agree across contrasts.

The contrast enters as input channels rather than a class embedding so that the
network runs on sliding windows (the window batch mixes contrasts).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from tumorgen.models.config import ModelConfig

#: The contrasts the generator draws, in its one-hot order.
CONTRASTS = ("t1n", "t1c", "t2w", "t2f")
#: The label channels: fractions of each latent voxel in these nested regions.
LABEL_CHANNELS = ("whole", "core", "necrosis")
#: BraTS labels in each nested region (1 necrotic core, 2 oedema, 3 enhancing tumor).
REGION_LABELS = {"whole": (1, 2, 3), "core": (1, 3), "necrosis": (1,)}


def condition_channels(config: ModelConfig) -> int:
    """Channels of the condition beside the noisy latent: the healthy latent, the label fractions, the contrast one-hot."""
    return config.latent_channels + len(LABEL_CHANNELS) + len(CONTRASTS)


def build_generator(config: ModelConfig) -> nn.Module:
    from monai.networks.nets import DiffusionModelUNet

    s = config.synthesis
    if not s:
        from tumorgen.errors import InputError

        raise InputError(f"model config {config.name} has no synthesis section (the label-map synthesis generator)")
    return DiffusionModelUNet(
        spatial_dims=3,
        in_channels=config.latent_channels + condition_channels(config),
        out_channels=config.latent_channels,
        channels=tuple(s["channels"]),
        attention_levels=tuple(s["attention_levels"]),
        num_res_blocks=int(s["num_res_blocks"]),
        num_head_channels=int(s["num_head_channels"]),
        norm_num_groups=int(s["norm_num_groups"]),
    )


def label_fractions(labels: np.ndarray, down: int) -> np.ndarray:
    """BraTS labels (X, Y, Z), each a multiple of ``down`` → (3, X/down, Y/down, Z/down) fractions of whole, core, necrosis."""
    shape = labels.shape
    if any(n % down for n in shape):
        raise ValueError(f"label map shape {shape} is not a multiple of {down}")
    blocks = (shape[0] // down, down, shape[1] // down, down, shape[2] // down, down)
    out = [np.isin(labels, REGION_LABELS[name]).reshape(blocks).mean(axis=(1, 3, 5), dtype=np.float32) for name in LABEL_CHANNELS]
    return np.stack(out).astype(np.float32)


def contrast_onehot(contrast: str | int, shape) -> np.ndarray:
    """The contrast as (4, *shape) constant channels."""
    index = CONTRASTS.index(contrast) if isinstance(contrast, str) else int(contrast)
    out = np.zeros((len(CONTRASTS), *shape), np.float32)
    out[index] = 1.0
    return out


def generator_input(noisy: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
    return torch.cat([noisy, condition.to(noisy.dtype)], dim=1)


__all__ = ["CONTRASTS", "LABEL_CHANNELS", "REGION_LABELS", "build_generator", "condition_channels", "contrast_onehot",
           "generator_input", "label_fractions"]
