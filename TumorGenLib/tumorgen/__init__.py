"""TumorGen engine: brain-tumor MRI generation under biophysical and clinical control.

The engine never imports Slicer, Qt or trame. Front ends talk to it through the
backend job protocol (:mod:`tumorgen.backend`) or use its Python API directly.
"""

from __future__ import annotations

__version__ = "0.1.0"

from tumorgen.errors import CancelledError, InputError, TumorGenError
from tumorgen.volume import Grid, Volume

__all__ = ["__version__", "CancelledError", "Grid", "InputError", "TumorGenError", "Volume"]
