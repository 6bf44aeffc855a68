"""Saving and loading weights without unpickling anything.

Bundled weights are safetensors files with a model card next to them
(``<name>.safetensors`` + ``<name>.json``): the card records the file's SHA-256,
which :func:`load_weights` checks before reading a byte of it, and what the
model is (config, training data, steps, metrics). Foreign checkpoints (``.pt``,
``.pth``) go through ``torch.load(weights_only=True)``, which refuses anything
but tensors and plain containers. Every failure is an :class:`InputError`
naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from torch import nn

from tumorgen.atomic import staged_into
from tumorgen.errors import InputError


def sha256_of(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def card_path(weights: str | os.PathLike) -> Path:
    return Path(weights).with_suffix(".json")


def save_weights(model: nn.Module, path: str | os.PathLike, card: dict | None = None) -> Path:
    """Write ``model``'s state dict as safetensors and its card (with the SHA-256), together and atomically.

    Missing folders are created (and removed again if the write fails).
    """
    from safetensors.torch import save_file

    path = Path(path)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with staged_into(path.parent) as staging:
        weights = staging / path.name
        save_file(state, str(weights), metadata={"format": "pt", "model": type(model).__name__})
        card = {**(card or {}), "file": path.name, "sha256": sha256_of(weights), "parameters": int(sum(v.numel() for v in state.values()))}
        (staging / card_path(path).name).write_text(json.dumps(card, indent=2))
    return path


def read_card(path: str | os.PathLike) -> dict:
    card = card_path(path)
    if not card.is_file():
        raise InputError(f"model card {card} is missing (every weight file ships with one)")
    try:
        return json.loads(card.read_text())
    except ValueError as exc:
        raise InputError(f"model card {card} is not valid JSON: {exc}") from None


def read_state(path: str | os.PathLike, *, expected_sha256: str | None = None) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, after checking its SHA-256 when one is expected."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise InputError(f"weight file not found: {path}")
    if expected_sha256 is not None:
        actual = sha256_of(path)
        if actual != expected_sha256:
            raise InputError(f"weight file {path} is corrupt or was replaced: SHA-256 {actual[:16]}… does not match its card ({expected_sha256[:16]}…)")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise InputError(f"weight file {path} is not a readable safetensors file: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def save_training_state(optimizer: torch.optim.Optimizer, schedule, path: str | os.PathLike) -> Path:
    """An optimizer's and its schedule's state as one safetensors file: the tensors, and the rest as JSON metadata."""
    from safetensors.torch import save_file

    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{name}"] = value
    meta = {"param_groups": state["param_groups"], "scalars": scalars, "schedule": schedule.state_dict()}
    save_file(tensors, str(path), metadata={"training_state": json.dumps(meta)})
    return Path(path)


def load_training_state(optimizer: torch.optim.Optimizer, schedule, path: str | os.PathLike) -> None:
    """Restore what :func:`save_training_state` wrote; an InputError naming the file when it does not fit."""
    from safetensors import safe_open

    tensors = read_state(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads((handle.metadata() or {})["training_state"])
        state: dict[int, dict] = {}
        for key, value in [*tensors.items(), *meta["scalars"].items()]:
            index, name = key.split(".", 1)
            state.setdefault(int(index), {})[name] = value
        groups = [{k: tuple(v) if isinstance(v, list) and k != "params" else v for k, v in g.items()} for g in meta["param_groups"]]  # betas
        optimizer.load_state_dict({"state": state, "param_groups": groups})
        schedule.load_state_dict(meta["schedule"])
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise InputError(f"training state {path} does not fit this optimizer: {exc}") from None


def load_state_into(model: nn.Module, state: dict[str, torch.Tensor], source: str | os.PathLike) -> nn.Module:
    """Load ``state`` into ``model`` strictly; a missing, unexpected or wrong-shape tensor is an InputError naming ``source``."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [(k, tuple(state[k].shape), tuple(own[k].shape)) for k in own if k in state and state[k].shape != own[k].shape]
    if wrong:
        k, got, want = wrong[0]
        raise InputError(f"{source} does not fit this {type(model).__name__}: {k} has shape {got}, expected {want}"
                         + (f" ({len(wrong) - 1} more mismatches)" if len(wrong) > 1 else "") + "; was it saved with another config?")
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} tensors missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        raise InputError(f"{source} does not fit this {type(model).__name__}: {'; '.join(parts)}")
    model.load_state_dict(state, strict=True)
    return model


def load_weights(model: nn.Module, path: str | os.PathLike, *, check_card: bool = True) -> nn.Module:
    """Load a safetensors file into ``model``, checking the SHA-256 its card records."""
    expected = read_card(path).get("sha256") if check_card else None
    if check_card and not expected:
        raise InputError(f"model card {card_path(path)} has no sha256")
    return load_state_into(model, read_state(path, expected_sha256=expected), path)


def load_foreign_checkpoint(path: str | os.PathLike, *, key: str | None = None) -> dict[str, torch.Tensor]:
    """A state dict from a ``.pt``/``.pth`` file via ``torch.load(weights_only=True)`` (no arbitrary code runs).

    ``key`` picks a nested state dict (e.g. ``"state_dict"``); without it, a
    checkpoint whose only tensor-dict entry is nested is unwrapped.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a bad file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"checkpoint {path} cannot be read safely (weights only): {first}") from None
    if key is not None:
        if not isinstance(obj, dict) or key not in obj:
            raise InputError(f"checkpoint {path} has no entry {key!r}")
        obj = obj[key]
    if isinstance(obj, dict) and not all(isinstance(v, torch.Tensor) for v in obj.values()):
        nested = [v for v in obj.values() if isinstance(v, dict) and v and all(isinstance(t, torch.Tensor) for t in v.values())]
        if len(nested) == 1:
            obj = nested[0]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputError(f"checkpoint {path} does not hold a state dict of tensors")
    return obj
