"""Classical fills that generated tissue must beat: a biharmonic (PDE) fill and a registered-template paste.

Both keep every voxel outside the mask as it is, like :func:`tumorgen.inpainting.core.inpaint`.

* :func:`biharmonic_fill` — scikit-image's biharmonic inpainting on the mask's
  bounding box plus a context margin: smooth, no anatomy.
* :func:`template_paste` — the MNI152 template's T1 carried onto the image by
  the same registration the tissue maps come from (mask excluded), its
  intensities matched to the ring of known tissue around the mask: anatomy,
  but the template's, not the subject's.
"""

from __future__ import annotations

import numpy as np

from tumorgen.errors import InputError
from tumorgen.volume import Volume

CONTEXT_MM = 8.0


def _check(voided: Volume, mask: Volume) -> np.ndarray:
    region = np.asarray(mask.array).astype(bool)
    if region.shape != voided.shape:
        raise InputError(f"mask {region.shape} and image {voided.shape} must have the same shape")
    if not region.any():
        raise InputError("the mask is empty: nothing to fill")
    return region


def biharmonic_fill(voided: Volume, mask: Volume, context_mm: float = CONTEXT_MM) -> Volume:
    """The biharmonic fill of ``voided`` inside ``mask`` (float32), computed on the mask's box plus ``context_mm``."""
    from skimage.restoration import inpaint_biharmonic

    region = _check(voided, mask)
    where = np.argwhere(region)
    margin = [int(np.ceil(context_mm / s)) for s in voided.spacing]
    box = tuple(slice(max(0, lo - m), min(n, hi + 1 + m)) for lo, hi, m, n in zip(where.min(0), where.max(0), margin, region.shape))
    out = np.array(voided.array, dtype=np.float32)
    out[box] = inpaint_biharmonic(out[box].astype(np.float64), region[box]).astype(np.float32)
    return voided.with_array(np.where(region, out, np.asarray(voided.array, dtype=np.float32)))


def template_paste(voided: Volume, mask: Volume, **registration) -> Volume:
    """The registered template's T1 inside ``mask``, histogram-matched to the known tissue around it.

    ``registration``: keyword arguments of :func:`tumorgen.anatomy.registration.register_template`
    (``use_cache``, ``cache_dir``, ``settings``). The mask is excluded from the registration, as for the tissue maps.
    """
    import SimpleITK as sitk

    from tumorgen.anatomy.registration import register_template
    from tumorgen.anatomy.template import load_mni152
    from tumorgen.inpainting.postprocess import match_histogram

    region = _check(voided, mask)
    fitted = register_template(voided, mask.with_array(region), **registration)
    reference = sitk.Image([int(n) for n in voided.grid.size], sitk.sitkUInt8)
    reference.SetSpacing(voided.grid.spacing)
    reference.SetOrigin(voided.grid.origin)
    reference.SetDirection(voided.grid.direction)
    template = sitk.Cast(load_mni152().t1.to_sitk(), sitk.sitkFloat32)
    carried = sitk.GetArrayFromImage(sitk.Resample(template, reference, fitted.transform, sitk.sitkLinear, 0.0)).transpose(2, 1, 0)
    known = np.asarray(voided.array, dtype=np.float32)
    matched = match_histogram(carried.astype(np.float32), known, region)
    return voided.with_array(np.where(region, matched, known).astype(np.float32))
