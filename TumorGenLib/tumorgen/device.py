"""Choosing the compute device: CUDA when present, CPU otherwise.

PyTorch is imported only inside :func:`resolve_device`: the Slicer GUI process
imports this module (for :data:`DEVICES`) and has no PyTorch.
"""

from __future__ import annotations

import argparse

from tumorgen.errors import InputError

#: What a user may ask for: CUDA when PyTorch sees a GPU (else the CPU), the CPU, or CUDA.
DEVICES = ("auto", "cpu", "cuda")


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
    raise InputError(f"device must be one of {', '.join(DEVICES)}, got {requested!r}")


def no_cuda_driver() -> bool:
    """True where there surely is no CUDA GPU: Linux without the NVIDIA driver (no ``/proc/driver/nvidia`` and no
    ``/dev/nvidia*``). Lets a caller skip importing PyTorch just to ask; False (don't know) elsewhere."""
    import glob
    import os
    import sys

    if not sys.platform.startswith("linux"):
        return False
    return not os.path.exists("/proc/driver/nvidia") and not glob.glob("/dev/nvidia[0-9]*")


def add_device_argument(parser: argparse._ActionsContainer, help: str = "compute device") -> argparse.Action:
    """Add ``--device {auto,cpu,cuda}`` (default ``auto``) to ``parser`` (a parser or an argument group).

    Args:
        parser: an :class:`argparse.ArgumentParser` or one of its argument groups.
        help: what the device is used for; the choices and the default are appended.
    """
    return parser.add_argument("--device", choices=DEVICES, default="auto",
                               help=f"{help}: auto (CUDA when present, else the CPU), cpu or cuda (default auto)")
