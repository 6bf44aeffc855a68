"""Inpainting: healthy tissue or a tumor generated inside a mask (:func:`inpaint`), its post-processing and metrics."""

from tumorgen.inpainting.core import InpaintResult, InpaintSettings, inpaint

__all__ = ["InpaintResult", "InpaintSettings", "inpaint"]
