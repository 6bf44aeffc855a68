"""The tumor's concentration field: from a label map, and regrown (or shrunk) to forecast volumes.

:func:`labels_to_concentration` turns BraTS labels into a field whose labels
(:func:`tumorgen.biophysics.labels.concentration_to_labels`) are the input's:
inside each nested region (whole tumor ⊃ core ⊃ necrosis) the concentration
rises from the region's threshold at its edge towards the next threshold at the
inner region's edge, in proportion to the distances; beyond the visible edge it
falls off as the front of a Fisher–Kolmogorov wave, ``θ_edema · exp(−d / L)``
with ``L = sqrt(D / ρ)``, the infiltration an MRI does not show.

:func:`fields_at_volumes` gives the field at each of several whole-tumor
volumes: larger ones by Fisher–Kolmogorov growth (one solver run through them
in increasing order, :func:`tumorgen.biophysics.fk.grow_through_volumes`), smaller ones by scaling
the concentration down (the radiotherapy model's lethally hit fraction, cleared).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
from scipy.ndimage import distance_transform_edt

from tumorgen.biophysics.labels import EDEMA, ENHANCING, NECROTIC, LabelThresholds
from tumorgen.errors import InputError
from tumorgen.volume import Volume

#: How far beyond the visible edge the infiltration tail is drawn, in units of L.
TAIL_LENGTHS = 4.0
#: Label → level of the nested regions (whole tumor 1, core 2, necrosis 3).
LEVELS = {EDEMA: 1, ENHANCING: 2, NECROTIC: 3}


def labels_to_concentration(seg: Volume, thresholds: LabelThresholds = LabelThresholds(), *, d_white: float = 1.0,
                            rho: float = 0.1, domain: np.ndarray | None = None) -> Volume:
    """A concentration field (float32 in [0, 1]) whose labels are ``seg``'s (BraTS 1, 2, 3; 4 and others count as none).

    ``domain``: where tumor cells can be (brain tissue); the tail stays inside it.
    """
    labels = np.rint(np.asarray(seg.array)).astype(np.int16)
    level = np.zeros(labels.shape, np.int8)
    for label, value in LEVELS.items():
        level[labels == label] = value
    if not level.any():
        raise InputError("the segmentation is empty: no tumor (labels 1, 2 or 3) to forecast")
    spacing = seg.spacing
    tops = [thresholds.edema, thresholds.core, thresholds.necrosis if thresholds.necrosis is not None else 1.0, 1.0]
    c = np.zeros(labels.shape, np.float32)
    inside = level >= 1
    box = _bounding_box(inside, int(math.ceil(TAIL_LENGTHS * math.sqrt(d_white / rho) / min(spacing))) + 2)
    lv = level[box]
    out = np.zeros(lv.shape, np.float32)
    for k in (1, 2, 3):
        region = lv >= k
        if not region.any():
            continue
        here = region & (lv == k)
        depth = distance_transform_edt(region, sampling=spacing)  # distance to the region's edge, inside it
        inner = lv >= k + 1
        if inner.any():
            to_inner = distance_transform_edt(~inner, sampling=spacing)
            t = depth / np.maximum(depth + to_inner, 1e-6)
        else:  # the innermost region: rise over a few millimetres
            t = np.minimum(depth / 4.0, 1.0) * 0.999
        low, high = tops[k - 1], tops[k]
        out[here] = (low + (high - low) * np.clip(t[here], 0.0, 0.999)).astype(np.float32)
    # the infiltration beyond the edge: the front of a travelling wave
    length = math.sqrt(d_white / rho)
    outside = distance_transform_edt(lv < 1, sampling=spacing)
    tail = (thresholds.edema * 0.98 * np.exp(-outside / length)).astype(np.float32)
    tail[outside > TAIL_LENGTHS * length] = 0.0
    out = np.where(lv >= 1, np.maximum(out, thresholds.edema), tail)
    c[box] = out
    if domain is not None:
        c = np.where(domain | (level >= 1), c, np.float32(0.0))
    return seg.with_array(np.clip(c, 0.0, 1.0).astype(np.float32))


def _bounding_box(mask: np.ndarray, margin: int) -> tuple[slice, ...]:
    where = np.argwhere(mask)
    lo = np.maximum(where.min(0) - margin, 0)
    hi = np.minimum(where.max(0) + margin + 1, mask.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))


def tumor_volume(field: np.ndarray, voxel_cm3: float, threshold: float) -> float:
    return float(np.count_nonzero(field >= threshold)) * voxel_cm3


def shrunk_to(field: np.ndarray, target_cm3: float, voxel_cm3: float, threshold: float) -> np.ndarray:
    """``field`` scaled by the factor in (0, 1] that brings its volume (c ≥ threshold) closest to ``target_cm3`` from above."""
    values = np.sort(field[field >= threshold])[::-1]  # the volume of s·c is the number of values >= threshold / s
    keep = int(round(target_cm3 / voxel_cm3))
    if keep <= 0:
        return field * np.float32(0.5 * threshold / max(float(field.max()), 1e-6))
    if keep >= values.size:
        return field.copy()
    # s so that exactly the `keep` largest stay above the threshold: between threshold/values[keep-1] and threshold/values[keep]
    s = threshold / max(float(values[keep - 1]), 1e-6)
    return np.clip(field * np.float32(s), 0.0, 1.0)


def fields_at_volumes(field: Volume, tissues, targets_cm3: Sequence[float], *, params=None, threshold: float = 0.25,
                      progress: Callable[[float, str], None] | None = None, cancelled: Callable[[], bool] | None = None,
                      visit: Callable[[int, np.ndarray], None] | None = None) -> list[np.ndarray] | None:
    """The field at each target volume (c ≥ ``threshold``), in the order given.

    ``visit(i, array)``: called once per target instead of keeping every field (then None is returned), so that many
    draws of a whole brain need not sit in memory together.
    """
    from tumorgen.biophysics.fk import GrowthParams, grow_through_volumes

    targets = [float(t) for t in targets_cm3]
    if any(not (math.isfinite(t) and t >= 0) for t in targets):
        raise InputError(f"target volumes must be finite and >= 0, got {targets}")
    voxel_cm3 = field.grid.voxel_volume_mm3 / 1000.0
    params = params or GrowthParams()
    start = np.asarray(field.array, np.float32)
    now = tumor_volume(start, voxel_cm3, threshold)
    kept: list[np.ndarray | None] = [None] * len(targets)
    done = [0]

    def give(i, array):
        if visit is not None:
            visit(i, array)
        else:
            kept[i] = array
        done[0] += 1
        if progress is not None:
            progress(done[0] / len(targets), f"forecast draw {done[0]}/{len(targets)}: {targets[i]:.1f} cm³")

    def check_cancel():
        if cancelled is not None and cancelled():
            from tumorgen.errors import CancelledError

            raise CancelledError("follow-up cancelled")

    order = sorted(range(len(targets)), key=lambda i: targets[i])
    smaller = [i for i in order if targets[i] <= now]
    larger = [i for i in order if targets[i] > now]
    for i in smaller:
        check_cancel()
        give(i, shrunk_to(start, targets[i], voxel_cm3, threshold))
    if larger:  # one growth through every larger target, smallest first
        check_cancel()
        grow_through_volumes(tissues, params, initial=field, targets_cm3=[targets[i] for i in larger], threshold=threshold,
                             cancelled=cancelled, visit=lambda n, array, days: give(larger[n], array))
    return None if visit is not None else kept  # type: ignore[return-value]


__all__ = ["fields_at_volumes", "labels_to_concentration", "shrunk_to", "tumor_volume"]
