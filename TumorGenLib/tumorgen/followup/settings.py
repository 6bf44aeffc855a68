"""The settings of a follow-up prediction (:data:`tumorgen.settings.FOLLOWUP` holds each one's default, range and help)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from tumorgen.settings import FOLLOWUP


@dataclass
class FollowupSettings:
    day: Optional[float] = FOLLOWUP.default("day")
    rt_start: Optional[float] = FOLLOWUP.default("rt_start")
    growth_law: Literal["radial", "exponential"] = FOLLOWUP.default("growth_law")
    route: Literal["fk", "guided"] = FOLLOWUP.default("route")
    samples: int = FOLLOWUP.default("samples")
    seed: int = FOLLOWUP.default("seed")
    draws: int = FOLLOWUP.default("draws")
    n_boot: int = FOLLOWUP.default("n_boot")
    interval: float = FOLLOWUP.default("interval")
    recalibrate: bool = FOLLOWUP.default("recalibrate")
    d_white: float = FOLLOWUP.default("d_white")
    rho: float = FOLLOWUP.default("rho")
    steps: int = FOLLOWUP.default("steps")
    guided_steps: int = FOLLOWUP.default("guided_steps")
    guidance: float = FOLLOWUP.default("guidance")
    strength: float = FOLLOWUP.default("strength")
    margin_mm: float = FOLLOWUP.default("margin_mm")

    def __post_init__(self):
        FOLLOWUP.check(self)


#: Days after the latest scan shown when no day is given.
DEFAULT_HORIZON_DAYS = 90.0
