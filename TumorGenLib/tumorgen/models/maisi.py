"""MAISI's autoencoder from a local MONAI bundle folder, for users who have one (nothing is downloaded).

Layout of the ``maisi_ct_generative`` bundle that is read:

* ``configs/*.json``: the first file with an ``autoencoder_def`` entry gives the
  network's arguments (its ``_target_`` must be MAISI's ``AutoencoderKlMaisi``);
* ``models/autoencoder*.pt``: the weights, read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tumorgen.errors import InputError
from tumorgen.models.weights import load_foreign_checkpoint, load_state_into

MAISI_TARGET = "AutoencoderKlMaisi"


def find_autoencoder_def(bundle: Path) -> tuple[dict, Path]:
    configs = sorted((bundle / "configs").glob("*.json"))
    for path in configs:
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(raw, dict) and isinstance(raw.get("autoencoder_def"), dict):
            return dict(raw["autoencoder_def"]), path
    raise InputError(f"no configs/*.json with an 'autoencoder_def' in the MONAI bundle {bundle}")


def load_maisi_autoencoder(bundle_dir: str | os.PathLike):
    """Build ``AutoencoderKlMaisi`` from the bundle's config and load its weights (eval mode, CPU)."""
    from monai.apps.generation.maisi.networks.autoencoderkl_maisi import AutoencoderKlMaisi

    bundle = Path(bundle_dir)
    if not bundle.is_dir():
        raise InputError(f"MONAI bundle folder not found: {bundle}")
    definition, config_path = find_autoencoder_def(bundle)
    target = str(definition.pop("_target_", ""))
    if not target.endswith(MAISI_TARGET):
        raise InputError(f"{config_path}: autoencoder_def targets {target or 'nothing'}, expected {MAISI_TARGET}")
    weights = sorted((bundle / "models").glob("autoencoder*.pt"))
    if not weights:
        raise InputError(f"no models/autoencoder*.pt in the MONAI bundle {bundle}")
    try:
        model = AutoencoderKlMaisi(**{k: v for k, v in definition.items() if not k.startswith("_")})
    except TypeError as exc:
        raise InputError(f"{config_path}: autoencoder_def has arguments AutoencoderKlMaisi does not take: {exc}") from None
    load_state_into(model, load_foreign_checkpoint(weights[0]), weights[0])
    return model.eval()
