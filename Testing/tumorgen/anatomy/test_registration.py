"""Tissue maps for any T1: the template registered to deformed copies of itself.

The subjects are the MNI152 template on a 3 mm grid, deformed by a known random
transform (affine + B-spline) with a bias field, a gamma change and noise
(:mod:`tumorgen.anatomy.deform`), so their true tissue maps are known. The
registration runs on a 4 mm working grid to keep the tests quick; the full
1 mm numbers are in ``Testing/benchmarks/bench_tissues.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from tumorgen_testing import OBLIQUE_DIRECTION, assert_same_geometry

from tumorgen.anatomy.deform import deformed_subject, dice, tissue_dice
from tumorgen.anatomy.registration import (
    RegistrationSettings,
    cache_key,
    carry_tissues,
    register_template,
    tissues_for_subject,
)
from tumorgen.anatomy.template import load_mni152
from tumorgen.anatomy.tissues import TISSUE_NAMES, TissueMaps
from tumorgen.errors import CancelledError, InputError
from tumorgen.resample import resample, working_grid
from tumorgen.volume import Grid, Volume

FAST = RegistrationSettings(working_spacing_mm=4.0)
AFFINE = RegistrationSettings(working_spacing_mm=4.0, deformable=False)


def _on_grid(tissues: TissueMaps, grid: Grid) -> TissueMaps:
    return TissueMaps(*(resample(getattr(tissues, n), grid) for n in TISSUE_NAMES))


@pytest.fixture(scope="module")
def small_template():
    template = load_mni152()
    grid = working_grid(template.t1.grid, 3.0)
    return resample(template.t1, grid), _on_grid(template.tissues, grid)


@pytest.fixture(scope="module")
def subject(small_template):
    t1, tissues = small_template
    return deformed_subject(t1, tissues, seed=2)


@pytest.fixture(scope="module")
def registered(subject):
    return register_template(subject.t1, None, settings=FAST, use_cache=False)


def test_deformable_registration_recovers_the_tissue_maps(small_template, subject, registered):
    identity = tissue_dice(small_template[1], subject.tissues)
    affine = tissue_dice(carry_tissues(register_template(subject.t1, None, settings=AFFINE, use_cache=False).transform, subject.t1), subject.tissues)
    deformable = tissue_dice(carry_tissues(registered.transform, subject.t1), subject.tissues)
    # measured at seed 2: identity gm .62 wm .58, affine gm .68 wm .60, deformable gm .88 wm .89 csf .50
    assert deformable["gm"] >= 0.83 and deformable["wm"] >= 0.83 and deformable["csf"] >= 0.4 and deformable["brain"] >= 0.95
    for name in ("gm", "wm"):
        assert affine[name] > identity[name] + 0.01
        assert deformable[name] > affine[name] + 0.08
    assert registered.mse_final < 0.5 * registered.mse_affine


def test_carried_maps_are_probabilities_on_the_exact_input_grid(subject, registered):
    maps = carry_tissues(registered.transform, subject.t1)
    assert_same_geometry(maps.grid, subject.t1.grid)
    csf, gm, wm = maps.arrays()
    total = csf + gm + wm
    assert all(a.dtype == np.float32 and a.min() >= 0.0 and a.max() <= 1.0 for a in (csf, gm, wm))
    assert total.max() <= 1.0 + 1e-3
    assert total[subject.t1.array == 0].max() == 0.0  # skull-stripped subject: nothing outside its foreground


def test_oblique_anisotropic_subject(subject):
    """A subject on an oblique grid with anisotropic voxels: outputs on that exact grid, maps still right."""
    g = subject.t1.grid
    centre = np.asarray(g.origin) + np.asarray(g.direction).reshape(3, 3) @ ((np.asarray(g.size) - 1) / 2 * np.asarray(g.spacing))
    spacing = np.array([3.0, 3.6, 3.3])
    size = np.ceil(np.asarray(g.size) * np.asarray(g.spacing) / spacing).astype(int) + 4
    direction = np.asarray(OBLIQUE_DIRECTION).reshape(3, 3)
    origin = centre - direction @ ((size - 1) / 2 * spacing)
    oblique = Grid(tuple(int(n) for n in size), tuple(spacing), tuple(origin), tuple(direction.ravel()))
    t1 = resample(subject.t1, oblique)
    truth = _on_grid(subject.tissues, oblique)
    maps = tissues_for_subject(t1, None, settings=FAST, use_cache=False)
    assert_same_geometry(maps.grid, oblique)
    scores = tissue_dice(maps, truth)
    assert scores["gm"] >= 0.78 and scores["wm"] >= 0.78, scores


def test_exclude_mask_keeps_a_lesion_from_pulling_the_template(small_template):
    """A bright ring with a dark centre (a tumor) in the subject; with it excluded the maps around it are closer to the truth."""
    t1, tissues = small_template
    subject = deformed_subject(t1, tissues, seed=1)
    arr = subject.t1.array.copy()
    index = np.indices(arr.shape)
    radius_mm = 3.0 * np.sqrt(((index - np.array([22, 40, 38])[:, None, None, None]) ** 2).sum(0))
    lesion = radius_mm < 25
    arr[lesion] = np.where(radius_mm[lesion] < 12, 0.1, 1.3) * arr.max()
    with_lesion = subject.t1.with_array(arr)
    exclude = subject.t1.with_array(lesion)
    near = radius_mm < 45
    truth = subject.tissues.labels().array

    def near_dice(maps):
        got = maps.labels().array
        return {name: dice((got == v) & near, (truth == v) & near) for name, v in (("gm", 2), ("wm", 3))}

    plain = near_dice(tissues_for_subject(with_lesion, None, settings=FAST, use_cache=False))
    excluded = near_dice(tissues_for_subject(with_lesion, exclude, settings=FAST, use_cache=False))
    # measured: gm .781 → .806, wm .835 → .849
    assert excluded["gm"] > plain["gm"] and excluded["wm"] > plain["wm"], (plain, excluded)


def test_cache_hit_second_call_and_keys(tmp_path, subject):
    calls = []
    first = register_template(subject.t1, None, settings=FAST, cache_dir=tmp_path, progress=lambda *a: calls.append(a))
    assert not first.cached and len(calls) > 3
    entries = [p.name for p in tmp_path.iterdir()]
    assert entries == [cache_key(subject.t1, None, FAST)]
    assert sorted(p.name for p in (tmp_path / entries[0]).iterdir()) == ["affine.tfm", "displacement.nii.gz", "registration.json"]
    second = register_template(subject.t1, None, settings=FAST, cache_dir=tmp_path)
    assert second.cached
    a = carry_tissues(first.transform, subject.t1)
    b = carry_tissues(second.transform, subject.t1)
    for name in TISSUE_NAMES:
        assert np.abs(getattr(a, name).array - getattr(b, name).array).max() < 1e-4
    # anything that changes the result changes the key
    exclude = subject.t1.with_array(np.zeros(subject.t1.grid.size, bool))
    exclude.array[30:34, 30:34, 30:34] = True
    other = exclude.with_array(np.roll(exclude.array, 3, axis=0))
    keys = {
        cache_key(subject.t1, None, FAST),
        cache_key(subject.t1, exclude, FAST),
        cache_key(subject.t1, other, FAST),
        cache_key(subject.t1, None, AFFINE),
        cache_key(subject.t1.with_array(subject.t1.array * 1.01), None, FAST),
    }
    assert len(keys) == 5
    # a damaged entry is recomputed, not trusted
    (tmp_path / entries[0] / "registration.json").write_text("{broken")
    assert not register_template(subject.t1, None, settings=FAST, cache_dir=tmp_path).cached
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no staging folder left


def test_default_cache_folder_comes_from_the_environment(tmp_path, monkeypatch, subject):
    monkeypatch.setenv("TUMORGEN_CACHE_DIR", str(tmp_path))
    register_template(subject.t1, None, settings=AFFINE)
    assert (tmp_path / "tissues" / cache_key(subject.t1, None, AFFINE) / "registration.json").is_file()


def test_inputs_are_not_modified(subject):
    t1 = subject.t1.with_array(subject.t1.array.copy())
    exclude = t1.with_array(np.zeros(t1.grid.size, bool))
    exclude.array[20:26, 30:36, 30:36] = True
    before_t1, before_ex = t1.array.copy(), exclude.array.copy()
    tissues_for_subject(t1, exclude, settings=AFFINE, use_cache=False)
    assert np.array_equal(t1.array, before_t1) and np.array_equal(exclude.array, before_ex)


def test_cancel_stops_in_either_stage(subject):
    with pytest.raises(CancelledError):
        register_template(subject.t1, None, settings=FAST, use_cache=False, cancelled=lambda: True)
    stages = []  # cancel once the deformable stage has reported progress
    with pytest.raises(CancelledError):
        register_template(subject.t1, None, settings=FAST, use_cache=False,
                          cancelled=lambda: any(m.startswith("deformable") for m in stages),
                          progress=lambda stage, f, m: stages.append(m))
    assert any(m.startswith("deformable") for m in stages)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda t1: (t1.with_array(np.full(t1.grid.size, 3.0, np.float32)), None), "constant"),
        (lambda t1: (t1.with_array(np.where(t1.array > 0, np.nan, 0).astype(np.float32)), None), "NaN"),
        (lambda t1: (Volume(np.ones((4, 30, 30), np.float32) * np.arange(30)[None, None, :], Grid((4, 30, 30))), None), "too small"),
        (lambda t1: (t1, Volume(np.ones((10, 10, 10), bool), Grid((10, 10, 10)))), "different geometry"),
        (lambda t1: (t1, t1.with_array(np.ones(t1.grid.size, bool))), "too little anatomy"),
    ],
)
def test_bad_inputs_name_the_problem(tmp_path, subject, make, message):
    t1, exclude = make(subject.t1)
    with pytest.raises(InputError, match=message) as info:
        tissues_for_subject(t1, exclude, settings=FAST, cache_dir=tmp_path)
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_settings_are_checked():
    for bad in (dict(working_spacing_mm=0), dict(sampling=0), dict(exclude_margin_mm=-1), dict(demons_iterations=(10,)), dict(demons_sigma_mm=-1)):
        with pytest.raises(InputError):
            RegistrationSettings(**bad)


def test_a_voided_region_keeps_its_tissue_maps(subject, registered):
    """Inpainting hands over a T1 whose mask is voided (zeros): those zeros are brain, not the skull-stripped background."""
    t1 = subject.t1
    brain = t1.array > 0
    # at the brain's surface, as most lesions near the cortex are: the void is open to the background
    centre = np.array(np.nonzero(brain)).mean(axis=1).round().astype(int)
    centre[1] = np.nonzero(brain[centre[0], :, centre[2]])[0].max()
    mask = np.zeros(t1.shape, bool)
    mask[tuple(slice(c - 3, c + 3) for c in centre)] = True
    mask &= brain
    assert mask.sum() > 50
    voided = t1.with_array(np.where(mask, 0, t1.array))
    full = carry_tissues(registered.transform, t1)
    cut = carry_tissues(registered.transform, voided)  # without the mask, the void counts as background
    kept = carry_tissues(registered.transform, voided, t1.with_array(mask))
    assert sum(a[mask].sum() for a in cut.arrays()) == 0.0
    for a, b in zip(kept.arrays(), full.arrays()):
        np.testing.assert_array_equal(a, b)
    # and the whole path: the registration with the mask excluded, as `tumorgen inpaint` runs it without tissue maps
    maps = tissues_for_subject(voided, t1.with_array(mask), settings=FAST, use_cache=False)
    inside = np.stack(maps.arrays())[:, mask].sum(axis=0)
    assert np.mean(inside > 0.5) >= 0.9  # brain under the mask (a few surface voxels lie outside the template's brain)
    assert tissue_dice(maps, subject.tissues)["brain"] >= 0.95
