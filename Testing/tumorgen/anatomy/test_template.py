"""The bundled MNI152 sample from nilearn's package data."""

from __future__ import annotations

import numpy as np

from tumorgen.anatomy.template import load_mni152


def test_template_maps_are_consistent():
    template = load_mni152()
    grid = template.t1.grid
    assert grid.size == (197, 233, 189) and grid.spacing == (1.0, 1.0, 1.0)
    csf, gm, wm = template.tissues.arrays()
    assert all(a.dtype == np.float32 and a.min() >= 0 and a.max() <= 1 for a in (csf, gm, wm))
    brain = template.brain.array
    total = csf + gm + wm
    assert np.allclose(total[brain], 1.0, atol=0.02) and total[~template.t1.array.astype(bool)].max() == 0
    litres = brain.sum() * grid.voxel_volume_mm3 / 1e6
    assert 1.4 < litres < 2.0
    labels = np.bincount(template.tissues.labels().array.ravel(), minlength=4)
    assert labels[3] > 0.5 * labels[2] and labels[2] > labels[1] > 0  # WM, GM, CSF all present
    assert not template.t1.array.flags.writeable  # the cached copy cannot be edited by accident
