"""Concentration → labels, and the hand-editing operations."""

from __future__ import annotations

import numpy as np
import pytest
from tumorgen_testing import OBLIQUE_DIRECTION

from tumorgen.biophysics import edit
from tumorgen.biophysics.labels import LabelThresholds, concentration_to_labels, region_volumes_cm3
from tumorgen.errors import InputError
from tumorgen.volume import Grid, Volume


@pytest.fixture
def grid() -> Grid:
    return Grid(size=(40, 36, 30), spacing=(1.0, 0.8, 1.5), origin=(5.0, -3.0, 12.0), direction=OBLIQUE_DIRECTION)


@pytest.fixture
def field(grid) -> Volume:
    return Volume(np.zeros(grid.size, np.float32), grid)


def test_labels_follow_the_thresholds(grid):
    values = np.array([0.0, 0.2, 0.25, 0.5, 0.6, 0.9, 0.95, 1.0], np.float32)
    field = Volume(np.resize(values, grid.size).astype(np.float32), grid)
    labels = concentration_to_labels(field).array.ravel()[: values.size]
    assert labels.tolist() == [0, 0, 2, 2, 3, 3, 1, 1]
    no_necrosis = concentration_to_labels(field, LabelThresholds(necrosis=None)).array.ravel()[: values.size]
    assert no_necrosis.tolist() == [0, 0, 2, 2, 3, 3, 3, 3]
    custom = concentration_to_labels(field, LabelThresholds(edema=0.1, core=0.5, necrosis=0.9)).array.ravel()[: values.size]
    assert custom.tolist() == [0, 2, 2, 3, 3, 1, 1, 1]


def test_region_volumes(grid):
    a = np.zeros(grid.size, np.uint8)
    a[:10, :10, :10] = 2
    a[:5, :5, :5] = 3
    a[:2, :2, :2] = 1
    vols = region_volumes_cm3(Volume(a, grid))
    voxel = 1.0 * 0.8 * 1.5 / 1000
    assert vols["whole_tumor"] == pytest.approx(1000 * voxel)
    assert vols["tumor_core"] == pytest.approx(125 * voxel)
    assert vols["necrotic"] == pytest.approx(8 * voxel)


@pytest.mark.parametrize("kwargs", [dict(edema=0.7), dict(core=0.99), dict(edema=0.0), dict(necrosis=1.5), dict(edema=float("nan"))])
def test_bad_thresholds(kwargs):
    with pytest.raises(InputError, match="threshold"):
        LabelThresholds(**kwargs)


def test_blob_lands_at_the_ras_point_with_a_physical_width(field):
    point = field.grid.index_to_ras((20, 18, 15))
    out = edit.add_blob(field, ras=point, sigma_mm=3.0, amplitude=0.8)
    assert np.unravel_index(np.argmax(out.array), out.shape) == (20, 18, 15)
    assert out.array.max() == pytest.approx(0.8)
    # value at a voxel 3 mm (one sigma) away along the first axis (spacing 1 mm)
    assert out.array[23, 18, 15] == pytest.approx(0.8 * np.exp(-0.5), rel=1e-5)
    assert out.grid == field.grid and not field.array.any()  # input untouched


def test_erase_and_clip(field):
    full = field.with_array(np.full(field.shape, 0.9, np.float32))
    added = edit.add_blob(full, voxel=(20, 18, 15), sigma_mm=2.0, amplitude=1.0)
    assert added.array.max() == 1.0
    erased = edit.add_blob(full, voxel=(20, 18, 15), sigma_mm=2.0, amplitude=1.0, erase=True)
    assert erased.array[20, 18, 15] == 0.0 and erased.array.min() >= 0.0
    assert erased.array[0, 0, 0] == pytest.approx(0.9)


def test_blob_within_a_mask(field):
    within = field.with_array(np.zeros(field.shape, bool))
    within.array[:20] = True
    out = edit.add_blob(field, voxel=(20, 18, 15), sigma_mm=3.0, within=within)
    assert out.array[20:].max() == 0.0 and out.array[19, 18, 15] > 0.5


def test_scale_clamp_smooth(field):
    a = np.zeros(field.shape, np.float32)
    a[10:30, 10:26, 10:20] = 0.5
    f = field.with_array(a)
    region = f.with_array(np.zeros(f.shape, bool))
    region.array[10:20] = True
    scaled = edit.scale_region(f, region, 1.5)
    assert scaled.array[15, 15, 15] == pytest.approx(0.75) and scaled.array[25, 15, 15] == pytest.approx(0.5)
    assert edit.scale_region(f, region, 3.0).array.max() == 1.0
    clamped = edit.clamp(scaled, 0.0, 0.6)
    assert clamped.array.max() == pytest.approx(0.6)
    smoothed = edit.smooth(f, sigma_mm=1.5)
    assert smoothed.array.sum() == pytest.approx(a.sum(), rel=1e-3)  # mass kept (away from the border)
    assert smoothed.array[9, 15, 15] > 0 and smoothed.array[20, 18, 15] == pytest.approx(0.5, abs=1e-3)
    assert f.array.max() == 0.5  # input untouched


def test_box_mask_on_an_oblique_grid_and_resection(field):
    centre = field.grid.index_to_ras((20, 18, 15))
    box = edit.box_mask(field.grid, centre, (10.0, 8.0, 12.0))
    expected_voxels = 10 * 8 * 12 / (1.0 * 0.8 * 1.5)
    assert box.array.sum() == pytest.approx(expected_voxels, rel=0.1)
    # every selected voxel centre is within the box in RAS
    ras = np.array([field.grid.index_to_ras(v) for v in np.argwhere(box.array)])
    assert np.all(np.abs(ras - centre) <= np.array([5.0, 4.0, 6.0]) + 1e-6)
    rotated = edit.box_mask(field.grid, centre, (10.0, 8.0, 12.0), orientation=OBLIQUE_DIRECTION)
    assert rotated.array.sum() == pytest.approx(expected_voxels, rel=0.1)
    full = field.with_array(np.ones(field.shape, np.float32))
    resected = edit.zero_box(full, box)
    assert resected.array[box.array].max() == 0.0 and resected.array[~box.array].min() == 1.0


def test_regrow_grows_an_edited_field():
    from tumorgen_testing import PHANTOM_SEED as SEED
    from tumorgen_testing import brain_phantom

    from tumorgen.biophysics import fk

    tissues = brain_phantom()
    grown = fk.grow(tissues, seed_voxel=SEED, days=50.0).concentration
    box = edit.box_mask(grown.grid, grown.grid.index_to_ras(SEED), (6.0, 6.0, 6.0))
    resected = edit.zero_box(grown, box)
    later = edit.regrow(resected, tissues, days=20.0)
    assert (later.array >= 0.25).sum() > (resected.array >= 0.25).sum()
    assert later.grid == grown.grid


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda f: edit.add_blob(f, sigma_mm=2.0), "exactly one"),
        (lambda f: edit.add_blob(f, voxel=(1, 1, 1), sigma_mm=0.0), "sigma"),
        (lambda f: edit.add_blob(f, voxel=(1, 1, 1), amplitude=2.0), "amplitude"),
        (lambda f: edit.add_blob(f, voxel=(500, 500, 500), sigma_mm=1.0), "outside the image"),
        (lambda f: edit.clamp(f, 0.5, 0.2), "clamp"),
        (lambda f: edit.smooth(f, -1.0), "sigma"),
        (lambda f: edit.box_mask(f.grid, (0, 0, 0), (1, -1, 1)), "box size"),
        (lambda f: edit.scale_region(f, Volume(np.zeros((2, 2, 2), bool)), 2.0), "different geometry"),
        (lambda f: edit.scale_region(f, f.with_array(np.zeros(f.shape, bool)), -1.0), "scale factor"),
        (lambda f: edit.clamp(f.with_array(np.full(f.shape, np.nan, np.float32))), "NaN"),
    ],
)
def test_bad_edits(field, call, message):
    with pytest.raises(InputError, match=message):
        call(field)
