"""The composite prompt (paper 004): retrieved resections pasted onto the query's pre-operative image.

For each retrieved case the library's patch (its post-operative T1 and cavity
on the template's grid) is carried into the query's space through the query's
subject → template affine. Its cavity, grown by :data:`RIM_MM` (the blood-product
rim and the oedema at the cavity's wall come with it) and cut to the region
that will be generated, is where the retrieved post-operative intensities
replace the query's. With several cases a voxel is pasted where at least half
of them paste it, with the mean of their values there.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from tumorgen.volume import Grid

#: How far beyond a retrieved cavity its post-operative appearance is pasted, mm.
RIM_MM = 2.0


def carried_cases(cases, affine, grid: Grid, template: Grid) -> list[dict[str, np.ndarray]]:
    """Each case's patch (``pre``, ``post``, ``cavity``) on the query's ``grid``; zero outside the patch."""
    from tumorgen.postop.library import from_template

    out = []
    for case in cases:
        patch = case.patch_volumes(template)
        carried = {name: from_template(patch[name] if name != "cavity" else patch[name].with_array(patch[name].array.astype(np.float32)),
                                       affine, grid).array for name in ("pre", "post", "cavity")}
        carried["cavity"] = carried["cavity"] >= 0.5
        out.append(carried)
    return out


def composite_image(pre: np.ndarray, region: np.ndarray, carried: list[dict[str, np.ndarray]], spacing) -> tuple[np.ndarray, np.ndarray]:
    """The composite (``pre`` with the retrieved resections pasted inside ``region``) and the pasted voxels."""
    if not carried:
        return pre.astype(np.float32), np.zeros(pre.shape, bool)
    radius = [max(1, int(round(RIM_MM / s))) for s in spacing]
    structure = _ellipsoid(radius)
    votes = np.zeros(pre.shape, np.int32)
    total = np.zeros(pre.shape, np.float64)
    for case in carried:
        pasted = ndimage.binary_dilation(case["cavity"], structure=structure) & region
        votes += pasted
        total += np.where(pasted, case["post"], 0.0)
    needed = max(1, int(np.ceil(len(carried) / 2)))
    where = votes >= needed
    out = pre.astype(np.float32).copy()
    out[where] = (total[where] / votes[where]).astype(np.float32)
    return out, where


def _ellipsoid(radius) -> np.ndarray:
    r = np.asarray(radius)
    grid = np.indices(tuple(2 * r + 1)) - r[:, None, None, None]
    return np.sum((grid / np.maximum(r, 1)[:, None, None, None]) ** 2, axis=0) <= 1.0


__all__ = ["RIM_MM", "carried_cases", "composite_image"]
