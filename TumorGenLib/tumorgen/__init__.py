"""TumorGen engine: brain-tumor MRI generation under biophysical and clinical control.

The engine never imports Slicer, Qt or trame. Front ends talk to it through the
backend job protocol (:mod:`tumorgen.backend`) or use its Python API directly.
"""

from __future__ import annotations

__version__ = "0.1.0"

from tumorgen.errors import CancelledError, InputError, TumorGenError


def __getattr__(name: str):
    """``Grid`` and ``Volume`` on first use: importing the package does not import numpy, so that the command
    line and the backend can set the numerical libraries' thread settings first (:mod:`tumorgen.threads`)."""
    if name in ("Grid", "Volume"):
        from tumorgen import volume

        return getattr(volume, name)
    raise AttributeError(f"module 'tumorgen' has no attribute {name!r}")


__all__ = ["__version__", "CancelledError", "Grid", "InputError", "TumorGenError", "Volume"]
