"""Choosing the compute device: CUDA when present, CPU otherwise."""

from __future__ import annotations

from tumorgen.errors import InputError


def resolve_device(requested: str = "auto"):
    """Turn ``auto``/``cpu``/``cuda`` into a :class:`torch.device`.

    ``auto`` picks CUDA when PyTorch sees a GPU. Asking for ``cuda`` on a
    machine without one is an input error rather than a silent fallback.
    """
    import torch

    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cpu":
        return torch.device("cpu")
    if requested == "cuda":
        if not torch.cuda.is_available():
            raise InputError("device 'cuda' was requested but PyTorch sees no CUDA GPU on this machine")
        return torch.device("cuda")
    raise InputError(f"device must be auto, cpu or cuda, got {requested!r}")
