"""Mask augmentation: nesting, scaling, relocation into white matter, geometry, determinism, errors, grown tumors.

A phantom brain (48³ at 2.5 mm: white matter inside a grey-matter shell, a CSF
ventricle) is the target; the input tumors are nested spheres (oedema, core,
necrosis) on grids of their own.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import binary_erosion
from tumorgen_testing import OBLIQUE_DIRECTION, brain_phantom

from tumorgen.anatomy.tissues import TissueMaps
from tumorgen.biophysics.labels import LabelThresholds
from tumorgen.errors import InputError
from tumorgen.synthesis.augment import (
    AugmentOptions,
    augment_labels,
    augment_labels_with_info,
    check_label_map,
    grow_labels,
    nest_labels,
)
from tumorgen.volume import Grid, Volume

SPACING = 2.5
#: Radii (mm) of the nested spheres: whole tumor, core, necrosis.
RADII = (16.0, 11.0, 5.0)
RIGID = dict(elastic_mm=0.0, relocate=False)
FACES = np.zeros((3, 3, 3), bool)
FACES[1, 1, :] = FACES[1, :, 1] = FACES[:, 1, 1] = True


@pytest.fixture(scope="module")
def target() -> TissueMaps:
    return brain_phantom((48, 48, 48), spacing=(SPACING,) * 3)


def brain_centre(target: TissueMaps) -> np.ndarray:
    return target.grid.index_to_lps((np.asarray(target.grid.size) - 1) / 2)


def spheres(grid: Grid, centre_lps, radii=RADII) -> Volume:
    """Nested spheres about a physical point: oedema shell, enhancing shell, necrotic centre."""
    points = np.einsum("ab,b...->a...", grid.index_to_lps_matrix[:3, :3], np.indices(grid.size, dtype=float))
    points += np.asarray(grid.origin)[:, None, None, None]
    r = np.sqrt(np.sum((points - np.asarray(centre_lps, dtype=float)[:, None, None, None]) ** 2, axis=0))
    labels = np.zeros(grid.size, np.uint8)
    labels[r < radii[0]] = 2
    labels[r < radii[1]] = 3
    labels[r < radii[2]] = 1
    return Volume(labels, grid)


def source_at(centre_lps, spacing=1.5, size=29, direction=None) -> Volume:
    """Spheres on their own grid whose middle voxel is ``centre_lps`` (so the tumor is symmetric about a voxel)."""
    d = np.asarray(direction if direction is not None else np.eye(3).ravel(), dtype=float).reshape(3, 3)
    origin = np.asarray(centre_lps, dtype=float) - d @ (np.full(3, (size - 1) / 2) * spacing)
    grid = Grid((size,) * 3, (spacing,) * 3, tuple(origin), tuple(d.ravel()))
    return spheres(grid, centre_lps)


@pytest.fixture(scope="module")
def source(target) -> Volume:
    """A 17 cm³ tumor in the phantom's left white matter, on a 1.5 mm grid of its own."""
    return source_at(brain_centre(target) - np.array([15.0, 0.0, 0.0]))


def centroid_lps(labels: Volume) -> np.ndarray:
    return labels.grid.index_to_lps(np.array(np.nonzero(labels.array > 0), dtype=float).mean(axis=1))


def volume_cm3(labels: Volume, values=(1, 2, 3)) -> float:
    return float(np.count_nonzero(np.isin(labels.array, values))) * labels.grid.voxel_volume_mm3 / 1000.0


def assert_enclosed(labels: np.ndarray) -> None:
    """Necrosis is surrounded by core and core by the whole tumor (face neighbours), and no region is empty."""
    whole, core, necrosis = labels > 0, np.isin(labels, (1, 3)), labels == 1
    assert set(np.unique(labels).tolist()) == {0, 1, 2, 3}
    assert not np.any(necrosis & ~binary_erosion(core, FACES, border_value=0))
    assert not np.any(core & ~binary_erosion(whole, FACES, border_value=0))


# ----------------------------------------------------------------------------- options and checks


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(rotation_deg=-1.0), "rotation"),
        (dict(rotation_deg=float("nan")), "rotation"),
        (dict(scale=(1.2, 0.8)), "scale range"),
        (dict(scale=(0.0, 1.0)), "scale range"),
        (dict(scale=1.2), "scale must be a range"),
        (dict(elastic_mm=-0.5), "elastic displacement"),
        (dict(elastic_smoothness_mm=0.0), "elastic smoothness"),
        (dict(min_white_matter=1.5), "min_white_matter"),
        (dict(min_inside=0.0), "min_inside"),
        (dict(attempts=0), "attempts"),
        (dict(attempts=2.5), "attempts"),
    ],
)
def test_options_are_validated_with_one_line_messages(kwargs, message):
    with pytest.raises(InputError, match=message) as caught:
        AugmentOptions(**kwargs)
    assert "\n" not in str(caught.value)


def test_check_label_map_names_the_problem(source):
    check_label_map(source)  # a good map passes
    bad = source.array.copy()
    bad[0, 0, 0] = 5
    bad[0, 0, 1] = 7
    with pytest.raises(InputError, match=r"seg has values \[5, 7\] that are not BraTS labels"):
        check_label_map(source.with_array(bad), "seg")
    with pytest.raises(InputError, match="not BraTS labels"):
        check_label_map(source.with_array(source.array.astype(np.float32) * 0.5))  # 0.5, 1.5: interpolated labels
    with pytest.raises(InputError, match="labels is empty: no tumor voxel"):
        check_label_map(source.with_array(np.zeros_like(source.array)))
    with pytest.raises(InputError, match="must be a 3D label map, got a 2D array"):
        check_label_map(source.array[:, :, 0])


def test_augment_rejects_bad_label_maps(source, target):
    rng = np.random.default_rng(0)
    bad = source.array.copy()
    bad[14, 14, 14] = 5
    with pytest.raises(InputError, match=r"labels has values \[5\]"):
        augment_labels(source.with_array(bad), target, rng)
    with pytest.raises(InputError, match="no tumor voxel"):
        augment_labels(source.with_array(np.zeros_like(source.array)), target, rng)


# ----------------------------------------------------------------------------- nesting


def test_nesting_holds_after_augmentation_for_many_seeds(source, target):
    brain = target.brain_mask().array
    for seed in range(16):
        out = augment_labels(source, target, np.random.default_rng(seed))
        assert out.dtype == np.uint8 and out.grid == target.grid
        labels = out.array
        necrosis, core, whole = (set(np.flatnonzero(np.isin(labels, v)).tolist()) for v in ((1,), (1, 3), (1, 2, 3)))
        assert necrosis and necrosis < core < whole
        assert_enclosed(labels)  # the spheres' nesting survives rotation, scaling and the elastic warp
        assert not np.any(labels[~brain])
        np.testing.assert_array_equal(nest_labels(labels), labels)  # nothing for nest_labels to repair


def test_each_region_is_deformed_as_its_own_mask(source, target):
    """The regions of the result are exactly the regions deformed one at a time (same draws)."""
    options = AugmentOptions(rotation_deg=30.0, scale=(0.8, 1.25), **RIGID)
    full = augment_labels(source, target, np.random.default_rng(7), options).array
    a = source.array
    for values, alone in (((1, 2, 3), np.where(a > 0, 2, 0)), ((1, 3), np.where(np.isin(a, (1, 3)), 3, 0)), ((1,), np.where(a == 1, 1, 0))):
        single = augment_labels(source.with_array(alone.astype(np.uint8)), target, np.random.default_rng(7), options).array
        np.testing.assert_array_equal(np.isin(full, values), single > 0)


def test_nest_labels_restores_the_nesting():
    labels = np.zeros((12, 12, 12), np.uint8)
    labels[2:10, 2:10, 2:10] = 2
    labels[3:9, 3:9, 3:9] = 3
    labels[4:8, 4:8, 4:8] = 1
    np.testing.assert_array_equal(nest_labels(labels), labels)  # already nested: unchanged
    broken = labels.copy()
    broken[4:8, 4:8, 3] = 1  # necrosis reaching the oedema: not surrounded by core
    broken[2, 5, 5] = 1  # necrosis on the outer edge (interpolated label values do this)
    broken[0, 0, 11] = 3  # a speck of core in the background
    broken[11, 11, 0] = 1
    fixed = nest_labels(broken)
    assert fixed.dtype == np.uint8
    assert np.all(fixed[4:8, 4:8, 3] == 3) and fixed[2, 5, 5] == 3
    assert fixed[0, 0, 11] == 0 and fixed[11, 11, 0] == 0
    np.testing.assert_array_equal(fixed[4:8, 4:8, 4:8], 1)  # enclosed necrosis stays
    np.testing.assert_array_equal(nest_labels(fixed), fixed)
    assert broken[0, 0, 11] == 3  # the input is not modified
    with pytest.raises(InputError, match=r"values \[4\]"):
        nest_labels(np.full((4, 4, 4), 4, np.uint8))


# ----------------------------------------------------------------------------- scale, geometry


@pytest.mark.parametrize("scale", [1.2, 0.8])
def test_volume_scales_with_the_cube_of_the_scale(source, target, scale):
    options = AugmentOptions(rotation_deg=0.0, scale=(scale, scale), **RIGID)
    out = augment_labels(source, target, np.random.default_rng(1), options)
    # the whole tumor within 10 %; the core (a radius of 3.5-5 target voxels) has the coarser sampling error
    for values, tolerance in (((1, 2, 3), 0.10), ((1, 3), 0.20)):
        ratio = volume_cm3(out, values) / volume_cm3(source, values)
        assert ratio == pytest.approx(scale**3, rel=tolerance), (values, ratio)


def test_identity_transform_on_the_same_grid_gives_the_input_back(target):
    labels = spheres(target.grid, brain_centre(target) - np.array([15.0, 0.0, 0.0]))
    options = AugmentOptions(rotation_deg=0.0, scale=(1.0, 1.0), **RIGID)
    out = augment_labels(labels, target, np.random.default_rng(0), options)
    np.testing.assert_array_equal(out.array, labels.array)


@pytest.mark.parametrize("oblique", [False, True])
def test_physical_position_is_kept_across_grids(target, oblique):
    """A tumor on another grid (spacing, origin, direction) lands at its physical place on the target grid."""
    centre = brain_centre(target) + np.array([-12.3, 7.9, -4.1])
    labels = source_at(centre, spacing=1.1, size=35, direction=OBLIQUE_DIRECTION if oblique else None)
    assert not labels.grid.matches(target.grid)
    options = AugmentOptions(rotation_deg=20.0, scale=(0.9, 1.1), **RIGID)
    out, info = augment_labels_with_info(labels, target, np.random.default_rng(3), options)
    assert out.grid == target.grid
    assert np.linalg.norm(centroid_lps(out) - centroid_lps(labels)) < SPACING
    np.testing.assert_allclose(info["centre_lps_mm"], centroid_lps(labels), atol=1e-2)
    assert volume_cm3(out) == pytest.approx(volume_cm3(labels) * info["scale"] ** 3, rel=0.10)


def test_outside_the_target_brain_is_cut_away(target):
    """Without relocation a tumor across the brain's edge keeps only its part inside the brain."""
    brain = target.brain_mask().array
    edge = brain_centre(target) + np.array([0.0, 0.0, 55.0])  # the phantom's top
    labels = source_at(edge)
    options = AugmentOptions(rotation_deg=0.0, scale=(1.0, 1.0), **RIGID)
    out, info = augment_labels_with_info(labels, target, np.random.default_rng(0), options)
    assert out.array.any() and not np.any(out.array[~brain])
    assert 0.05 < info["inside_fraction"] < 0.9
    assert np.count_nonzero(out.array) == pytest.approx(info["inside_fraction"] * info["voxels_before_cut"], abs=1)
    far = source_at(brain_centre(target) + np.array([0.0, 0.0, 120.0]))  # beyond the brain altogether
    with pytest.raises(InputError, match="outside the target brain"):
        augment_labels(far, target, np.random.default_rng(0), options)


# ----------------------------------------------------------------------------- relocation


@pytest.mark.parametrize("min_white_matter", [0.5, 0.9])
def test_relocation_puts_the_centre_in_white_matter_inside_the_brain(source, target, min_white_matter):
    wm = target.wm.array
    brain = target.brain_mask().array
    options = AugmentOptions(min_white_matter=min_white_matter, min_inside=0.95)
    centres = set()
    for seed in range(10):
        out, info = augment_labels_with_info(source, target, np.random.default_rng(seed), options)
        voxel = tuple(int(v) for v in info["centre_index"])
        assert np.allclose(info["centre_index"], voxel)  # a voxel of the target
        assert wm[voxel] >= min_white_matter
        centres.add(voxel)
        # the tumor is centred there (rotation and scaling are about the centre; the elastic warp moves it a little)
        centre = out.grid.lps_to_index(centroid_lps(out))
        assert np.linalg.norm((centre - voxel) * SPACING) < 2 * SPACING
        kept = np.count_nonzero(out.array)
        assert kept >= 0.95 * info["voxels_before_cut"] and info["inside_fraction"] >= 0.95
        assert not np.any(out.array[~brain])
    assert len(centres) == 10  # moved somewhere new each time


def test_relocation_keeps_big_tumors_inside(source, target):
    """A tumor too big for most positions is placed only where it (nearly) fits."""
    options = AugmentOptions(scale=(1.6, 1.6), rotation_deg=0.0, elastic_mm=0.0, min_inside=0.99, attempts=400)
    brain = target.brain_mask().array
    tried = []
    for seed in range(4):
        out, info = augment_labels_with_info(source, target, np.random.default_rng(seed), options)
        tried.append(info["attempts"])
        assert np.count_nonzero(out.array) >= 0.99 * info["voxels_before_cut"]
        assert not np.any(out.array[~brain])
    assert max(tried) > 1  # some positions were refused


def test_impossible_relocation_names_the_problem(source, target):
    no_wm = TissueMaps(target.csf, target.gm.with_array(target.gm.array + target.wm.array), target.wm.with_array(np.zeros_like(target.wm.array)))
    with pytest.raises(InputError, match="no white matter with probability >= 0.5"):
        augment_labels(source, no_wm, np.random.default_rng(0))
    with pytest.raises(InputError, match=r"cannot relocate the tumor .* at none of 20 white-matter positions"):
        augment_labels(source, target, np.random.default_rng(0), AugmentOptions(scale=(3.0, 3.0), min_inside=1.0, attempts=20))
    empty = TissueMaps(*(m.with_array(np.zeros_like(m.array)) for m in (target.csf, target.gm, target.wm)))
    with pytest.raises(InputError, match="target brain is empty"):
        augment_labels(source, empty, np.random.default_rng(0))


# ----------------------------------------------------------------------------- determinism, inputs


def test_deterministic_from_the_generator(source, target):
    a = augment_labels(source, target, np.random.default_rng(11))
    b = augment_labels(source, target, np.random.default_rng(11))
    np.testing.assert_array_equal(a.array, b.array)
    others = [augment_labels(source, target, np.random.default_rng(s)).array for s in (12, 13)]
    assert all(not np.array_equal(a.array, o) for o in others)
    assert not np.array_equal(others[0], others[1])
    # without relocation, the rotation, scale and elastic draws still differ
    opts = AugmentOptions(relocate=False)
    c, d = (augment_labels(source, target, np.random.default_rng(s), opts).array for s in (1, 2))
    assert not np.array_equal(c, d)


def test_elastic_deformation_changes_the_shape_but_not_much_the_volume(source, target):
    rigid = AugmentOptions(rotation_deg=0.0, scale=(1.0, 1.0), **RIGID)
    elastic = AugmentOptions(rotation_deg=0.0, scale=(1.0, 1.0), elastic_mm=3.0, relocate=False)
    a = augment_labels(source, target, np.random.default_rng(5), rigid)
    b = augment_labels(source, target, np.random.default_rng(5), elastic)
    assert np.count_nonzero(a.array != b.array) > 20
    assert volume_cm3(b) == pytest.approx(volume_cm3(a), rel=0.2)
    assert_enclosed(b.array)


def test_inputs_are_not_modified(source, target):
    labels = source.array.copy()
    maps = [m.array.copy() for m in (target.csf, target.gm, target.wm)]
    augment_labels(source, target, np.random.default_rng(0))
    np.testing.assert_array_equal(source.array, labels)
    for before, after in zip(maps, (target.csf, target.gm, target.wm)):
        np.testing.assert_array_equal(before, after.array)


# ----------------------------------------------------------------------------- grown tumors


def test_grow_labels_makes_a_nested_tumor_of_the_requested_volume(target):
    labels, concentration = grow_labels(target, np.random.default_rng(2), volume_cm3=(3.0, 6.0), d_white=(0.1, 0.2), rho=(0.2, 0.25))
    assert labels.grid == target.grid and concentration.grid == target.grid
    assert labels.dtype == np.uint8 and concentration.dtype == np.float32
    c = concentration.array
    assert c.min() >= 0.0 and c.max() <= 1.0
    assert 3.0 <= volume_cm3(labels) <= 6.0 * 1.2  # growth stops at the first step past the drawn target
    t = LabelThresholds()
    a = labels.array
    np.testing.assert_array_equal(a > 0, c >= t.edema)  # the simulator's labels
    np.testing.assert_array_equal(np.isin(a, (1, 3)), c >= t.core)
    np.testing.assert_array_equal(a == 1, c >= t.necrosis)
    assert np.isin(a, (1, 3)).any()
    assert not np.any(a[~target.tissue_mask().array])  # grown in tissue only
    again, _ = grow_labels(target, np.random.default_rng(2), volume_cm3=(3.0, 6.0), d_white=(0.1, 0.2), rho=(0.2, 0.25))
    np.testing.assert_array_equal(again.array, a)
    with pytest.raises(InputError, match="volume_cm3 range"):
        grow_labels(target, np.random.default_rng(0), volume_cm3=(6.0, 3.0))
