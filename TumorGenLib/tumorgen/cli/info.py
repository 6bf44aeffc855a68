"""``tumorgen info``: versions and the compute device, for bug reports."""

from __future__ import annotations

import argparse
import platform


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("info", help="show versions and the compute device", description="Print versions and devices.")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:  # noqa: ARG001
    import numpy
    import scipy
    import SimpleITK
    import torch

    from tumorgen import __version__

    print(f"tumorgen   {__version__}")
    print(f"python     {platform.python_version()} ({platform.platform()})")
    for module in (numpy, scipy, SimpleITK, torch):
        print(f"{module.__name__:<10} {module.__version__}")
    if torch.cuda.is_available():
        print(f"device     cuda ({torch.cuda.get_device_name(0)})")
    else:
        print(f"device     cpu ({torch.get_num_threads()} threads); no CUDA GPU visible")
    return 0
