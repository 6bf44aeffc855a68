"""Synthetic subjects: known deformations of the template."""

from __future__ import annotations

import numpy as np
import pytest

from tumorgen.anatomy.deform import DeformationSpec, deformed_subject, dice, random_transform, tissue_dice
from tumorgen.anatomy.tissues import TissueMaps
from tumorgen.volume import Grid, Volume


@pytest.fixture
def sphere_subject():
    grid = Grid((40, 40, 40), (2.0, 2.0, 2.0))
    r = np.sqrt(((np.indices(grid.size) - 19.5) ** 2).sum(0)) * 2.0
    wm = (r < 20).astype(np.float32)
    gm = ((r >= 20) & (r < 28)).astype(np.float32)
    csf = ((r >= 28) & (r < 32)).astype(np.float32)
    t1 = Volume((100 * wm + 60 * gm + 20 * csf).astype(np.float32), grid)
    return t1, TissueMaps.from_arrays(csf, gm, wm, t1)


def test_same_seed_same_subject_other_seed_differs(sphere_subject):
    t1, tissues = sphere_subject
    a, b, c = (deformed_subject(t1, tissues, seed=s) for s in (3, 3, 4))
    assert np.array_equal(a.t1.array, b.t1.array) and np.array_equal(a.tissues.wm.array, b.tissues.wm.array)
    assert not np.array_equal(a.tissues.wm.array, c.tissues.wm.array)


def test_deformation_moves_the_anatomy_by_the_spec(sphere_subject):
    t1, tissues = sphere_subject
    subject = deformed_subject(t1, tissues, seed=0)
    scores = tissue_dice(subject.tissues, tissues)
    assert 0.5 < scores["wm"] < 0.99 and scores["brain"] > 0.8
    still = deformed_subject(t1, tissues, DeformationSpec(rotation_deg=0, scale=0, translation_mm=0, displacement_mm=0), seed=0)
    assert tissue_dice(still.tissues, tissues)["wm"] > 0.999
    # the transform maps points by at most the affine + a few spline standard deviations
    transform = random_transform(t1, DeformationSpec(), seed=0)
    centre = (39.0, 39.0, 39.0)
    assert np.linalg.norm(np.subtract(transform.TransformPoint(centre), centre)) < 6 * np.sqrt(3) + 4 * 3.0


def test_intensity_changes_stay_inside_the_brain_and_maps_stay_probabilities(sphere_subject):
    t1, tissues = sphere_subject
    subject = deformed_subject(t1, tissues, seed=5)
    csf, gm, wm = subject.tissues.arrays()
    assert all(a.min() >= 0 and a.max() <= 1 for a in (csf, gm, wm))
    assert subject.t1.array[(csf + gm + wm) <= 0.5].max() == 0.0
    assert subject.t1.grid == t1.grid
    # the intensity change is not a plain copy of the warped template
    assert not np.allclose(subject.t1.array[wm > 0.99], 100.0, atol=1.0)


def test_dice():
    a = np.zeros((4, 4), bool)
    b = a.copy()
    assert dice(a, b) == 1.0
    a[:2] = True
    b[1:3] = True
    assert dice(a, b) == pytest.approx(0.5)
