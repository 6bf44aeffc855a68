"""Concentration → BraTS labels.

A tumor cell concentration ``c`` in [0, 1] maps to the BraTS 2023+ labels by
thresholds (all configurable):

=========================  ======================  =====
region                     default rule            label
=========================  ======================  =====
background                 c < 0.25                0
infiltration / oedema      0.25 ≤ c < 0.6          2 (ED)
enhancing tumor            0.6 ≤ c < 0.95          3 (ET)
necrotic core              c ≥ 0.95 (saturated)    1 (NCR)
=========================  ======================  =====

The tumor core (TC) is then labels 1+3 (c ≥ 0.6) and the whole tumor (WT)
labels 1+2+3 (c ≥ 0.25). Set ``necrosis=None`` for a tumor without a necrotic
centre (core and enhancing become the same region).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tumorgen.errors import InputError
from tumorgen.settings import GROWTH
from tumorgen.volume import Volume

#: BraTS 2023+ label values.
NECROTIC, EDEMA, ENHANCING = 1, 2, 3


@dataclass(frozen=True)
class LabelThresholds:
    edema: float = GROWTH.default("edema_threshold")
    core: float = GROWTH.default("core_threshold")
    necrosis: float | None = GROWTH.default("necrosis_threshold")

    def __post_init__(self) -> None:
        values = [self.edema, self.core] + ([self.necrosis] if self.necrosis is not None else [])
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            raise InputError(f"label thresholds must be finite numbers, got {values}")
        top = self.necrosis if self.necrosis is not None else 1.0
        if not (0 < self.edema < self.core <= top <= 1):
            raise InputError(
                f"label thresholds must satisfy 0 < edema < core <= necrosis <= 1, got edema {self.edema}, "
                f"core {self.core}, necrosis {self.necrosis}"
            )


def concentration_to_labels(field: Volume, thresholds: LabelThresholds = LabelThresholds()) -> Volume:
    """BraTS labels (uint8) on the field's grid."""
    c = np.asarray(field.array)
    labels = np.zeros(c.shape, np.uint8)
    labels[c >= thresholds.edema] = EDEMA
    labels[c >= thresholds.core] = ENHANCING
    if thresholds.necrosis is not None:
        labels[c >= thresholds.necrosis] = NECROTIC
    return field.with_array(labels)


def region_volumes_cm3(labels: Volume) -> dict[str, float]:
    """Volumes of the BraTS regions: whole tumor, tumor core, enhancing, necrotic, oedema."""
    a = labels.array
    cm3 = labels.grid.voxel_volume_mm3 / 1000.0
    count = lambda m: float(np.count_nonzero(m)) * cm3  # noqa: E731
    return {
        "whole_tumor": count(a > 0),
        "tumor_core": count((a == NECROTIC) | (a == ENHANCING)),
        "enhancing": count(a == ENHANCING),
        "necrotic": count(a == NECROTIC),
        "edema": count(a == EDEMA),
    }
