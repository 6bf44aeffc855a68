"""The classical fills inpainting is measured against: biharmonic and the registered template's T1."""

from __future__ import annotations

import numpy as np
import pytest

from tumorgen.anatomy.deform import deformed_subject
from tumorgen.anatomy.registration import RegistrationSettings
from tumorgen.anatomy.template import load_mni152
from tumorgen.anatomy.tissues import TISSUE_NAMES, TissueMaps
from tumorgen.errors import InputError
from tumorgen.inpainting.baselines import biharmonic_fill, template_paste
from tumorgen.resample import resample, working_grid
from tumorgen.volume import Grid, Volume


def test_the_biharmonic_fill_reproduces_a_smooth_field_and_keeps_the_rest():
    grid = Grid(size=(30, 28, 26), spacing=(1.0, 1.5, 2.0))
    i, j, k = np.indices(grid.size, dtype=np.float32)
    truth = 0.2 + 0.01 * i + 0.02 * j - 0.01 * k  # harmonic, hence biharmonic: the fill is exact up to discretisation
    mask = np.zeros(grid.size, bool)
    mask[10:18, 9:16, 8:14] = True
    voided = Volume(np.where(mask, 0, truth).astype(np.float32), grid)
    filled = biharmonic_fill(voided, voided.with_array(mask))
    np.testing.assert_array_equal(filled.array[~mask], voided.array[~mask])
    assert np.abs(filled.array[mask] - truth[mask]).max() < 1e-3
    with pytest.raises(InputError, match="the mask is empty"):
        biharmonic_fill(voided, voided.with_array(np.zeros(grid.size, bool)))


def test_the_template_paste_brings_the_subject_s_anatomy_back_better_than_nothing():
    template = load_mni152()
    grid = working_grid(template.t1.grid, 3.0)
    tissues = TissueMaps(*(resample(getattr(template.tissues, n), grid) for n in TISSUE_NAMES))
    subject = deformed_subject(resample(template.t1, grid), tissues, seed=4)
    t1 = subject.t1
    brain = t1.array > 0
    centre = np.array(np.nonzero(brain)).mean(axis=1).round().astype(int)
    mask = np.zeros(t1.shape, bool)
    mask[tuple(slice(c - 4, c + 4) for c in centre)] = True
    mask &= brain
    voided = t1.with_array(np.where(mask, 0, t1.array).astype(np.float32))
    pasted = template_paste(voided, voided.with_array(mask), settings=RegistrationSettings(working_spacing_mm=4.0), use_cache=False)
    np.testing.assert_array_equal(pasted.array[~mask], voided.array[~mask])
    error = np.abs(pasted.array[mask] - t1.array[mask]).mean()
    flat = np.abs(np.median(t1.array[brain & ~mask]) - t1.array[mask]).mean()
    assert error < 0.7 * flat  # anatomy, not a constant
