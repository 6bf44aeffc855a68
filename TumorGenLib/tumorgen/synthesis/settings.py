"""The settings of one label-map synthesis (:mod:`tumorgen.synthesis.synthesize`), without PyTorch: the backend
task's parameters derive from them, and commands that never synthesise read them."""

from __future__ import annotations

from dataclasses import dataclass

from tumorgen.errors import InputError
from tumorgen.settings import SYNTHESIS


@dataclass
class SynthesisSettings:
    #: DDIM steps.
    steps: int = SYNTHESIS.default("steps")
    #: Seed of the initial noise (the same for the four contrasts); sample n uses seed + n.
    seed: int = SYNTHESIS.default("seed")
    #: Samples averaged into the result (each draws the four contrasts from its own noise).
    samples: int = SYNTHESIS.default("samples")
    #: t1n: the generated image replaces the scan over the whole tumor grown by this margin (mm), ramping over its outer half.
    blend_mm: float = SYNTHESIS.default("blend_mm")

    def __post_init__(self) -> None:
        if not 1 <= int(self.steps) <= 1000:
            raise InputError(f"steps must be between 1 and 1000, got {self.steps}")
        if not 1 <= int(self.samples) <= 16:
            raise InputError(f"samples must be between 1 and 16, got {self.samples}")
        if not 0.0 <= float(self.blend_mm) <= 30.0:
            raise InputError(f"blend margin must be between 0 and 30 mm, got {self.blend_mm}")


__all__ = ["SynthesisSettings"]
