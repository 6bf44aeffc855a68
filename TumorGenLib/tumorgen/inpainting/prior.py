"""A learned deterministic fill: a small 3D U-Net that inpaints a T1 from its surroundings.

Trained with an image loss (mean squared error inside the mask) on simulated
MNI152 scans with randomised contrast and individual folding
(:mod:`tumorgen.simulate.realism`, :mod:`tumorgen.inpainting.prior_training`),
it learns the expected value of the missing tissue: structure where the
surroundings determine it (the cortex continued from the border, a ventricle's
edge) and a smooth fill where they do not (folding deep inside a large mask),
which is what scores best where the answer cannot be known.

Input (three channels on the crop around the mask, at the image's own voxels):
the voided image, the mask, and the mask's harmonic fill
(:func:`tumorgen.inpainting.selfcheck.harmonic_fill`), all divided by the 99th
percentile of the known brain voxels in the crop so that any intensity scale
works. Output: a correction added to the harmonic fill inside the mask. The
prior is used

* as a method of its own (``tumorgen inpaint --method unet``);
* as the start of the diffusion chain (``--prior unet``): the chain starts
  from the prior's latents noised to ``strength``, so the generated detail
  sits on the prior's layout;
* as the smooth fill the generated image is blended toward where the tissue
  condition is a guess (``--confidence R``, :func:`confidence`: deep inside
  the mask);
* as the second candidate of the fallback (scored on the self-check's probe).

The start and the blend are off by default: on the fidelity benchmark's tuning
part neither scored above the harmonic start (see docs/results/fidelity.md). A model folder
may hold its own ``prior.safetensors``; otherwise the bundled one is used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from tumorgen.errors import InputError

#: The U-Net's feature widths (MONAI BasicUNet: four downsamplings).
FEATURES = (8, 16, 32, 64, 128, 8)
#: The crop is grown to a multiple of this (the four poolings).
MULTIPLE = 16
#: Known voxels around the mask that the network sees, mm.
CONTEXT_MM = 12.0
#: Percentile of the crop's known brain voxels that maps to 1.
SCALE_PERCENTILE = 99.0
FILE = "prior.safetensors"


def build_network():
    from monai.networks.nets import BasicUNet

    return BasicUNet(spatial_dims=3, in_channels=3, out_channels=1, features=FEATURES, act="leakyrelu", norm="instance")


def default_weights() -> Path:
    return Path(__file__).resolve().parent.parent / "models" / "weights" / "tiny" / FILE


_LOADED: dict[str, object] = {}


def load_prior(path: str | Path | None = None):
    """The prior network (eval mode, float32, CPU) from ``path`` (default: the bundled one); cached per path."""
    from tumorgen.models.weights import load_state_into, read_card, read_state

    path = Path(path) if path is not None else default_weights()
    key = str(path.resolve())
    if key not in _LOADED:
        if not path.is_file():
            raise InputError(f"inpainting prior {path} not found (the U-Net that --method unet and --prior unet use)")
        expected = read_card(path).get("sha256")
        state = {k: v.float() for k, v in read_state(path, expected_sha256=expected).items()}
        net = load_state_into(build_network(), state, path).eval()
        for p in net.parameters():
            p.requires_grad_(False)
        _LOADED[key] = net
    return _LOADED[key]


def network_inputs(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, float]:
    """The network's three input channels for a crop (``image`` with anything inside ``mask`` ignored) and the scale."""
    from tumorgen.inpainting.selfcheck import harmonic_fill

    mask = np.asarray(mask, bool)
    voided = np.where(mask, 0.0, np.asarray(image, np.float32)).astype(np.float32)
    known = voided[(~mask) & (voided > 0)]
    scale = float(np.percentile(known, SCALE_PERCENTILE)) if known.size >= 64 else float(voided.max())
    if not scale > 0:
        raise InputError("no known brain tissue around the mask: the prior has nothing to inpaint from")
    everything = tuple(slice(0, n) for n in mask.shape)
    fill = harmonic_fill(voided, mask, everything)
    return np.stack([voided / scale, mask.astype(np.float32), fill / scale]).astype(np.float32), scale


def predict(net, inputs: np.ndarray) -> np.ndarray:
    """The network's fill of a crop (the inputs' scale), padded to :data:`MULTIPLE` and cropped back."""
    import torch

    shape = inputs.shape[1:]
    padded = [(-n) % MULTIPLE for n in shape]
    x = np.pad(inputs, [(0, 0)] + [(p // 2, p - p // 2) for p in padded], mode="constant")
    with torch.inference_mode():
        residual = net(torch.from_numpy(x[None]))[0, 0].numpy()
    residual = residual[tuple(slice(p // 2, p // 2 + n) for p, n in zip(padded, shape))]
    mask = inputs[1] > 0.5
    return np.where(mask, np.clip(inputs[2] + residual, 0.0, None), inputs[0]).astype(np.float32)


def prior_fill(image: np.ndarray, mask: np.ndarray, spacing, net=None) -> np.ndarray:
    """``image`` (any scale) with ``mask`` filled by the prior; solved on the mask's box plus :data:`CONTEXT_MM`."""
    from tumorgen.inpainting.core import crop_box

    mask = np.asarray(mask, bool)
    if not mask.any():
        raise InputError("the mask is empty: nothing to inpaint")
    net = net if net is not None else load_prior()
    margin = tuple(int(np.ceil(CONTEXT_MM / float(s))) for s in spacing)
    box = crop_box(mask, margin, MULTIPLE, mask.shape)
    inputs, scale = network_inputs(np.asarray(image)[box], mask[box])
    out = np.array(image, dtype=np.float32, copy=True)
    region = out[box]
    region[mask[box]] = (predict(net, inputs) * scale)[mask[box]]
    return out


def confidence(mask: np.ndarray, spacing, reach_mm: float) -> np.ndarray:
    """How far the tissue condition can be trusted at each voxel of ``mask``: 1 at its border, falling as
    exp(−depth / ``reach_mm``) with the distance into it (0 outside the mask is not used)."""
    depth = ndimage.distance_transform_edt(np.asarray(mask, bool), sampling=[float(s) for s in spacing])
    return np.exp(-np.maximum(depth - float(min(spacing)), 0.0) / max(float(reach_mm), 1e-6)).astype(np.float32)


__all__ = ["CONTEXT_MM", "FEATURES", "build_network", "confidence", "default_weights", "load_prior", "network_inputs",
           "predict", "prior_fill"]
