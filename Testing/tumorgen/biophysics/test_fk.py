"""Fisher–Kolmogorov solver: physics, the reference, both backends, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from tumorgen_testing import OBLIQUE_DIRECTION, PHANTOM_SEED, brain_phantom

from tumorgen.anatomy.tissues import TissueMaps
from tumorgen.biophysics import fk
from tumorgen.biophysics.fk_reference import grow_reference
from tumorgen.errors import InputError
from tumorgen.volume import Grid, Volume


@pytest.fixture(scope="module")
def phantom() -> TissueMaps:
    return brain_phantom()


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Torch on one CPU thread: these grids are small, and OpenMP threads slow to a crawl on a busy machine."""
    try:
        import torch
    except ImportError:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


SEED = PHANTOM_SEED


def test_front_speed_converges_to_the_fisher_kpp_speed():
    # A long, thin slab of homogeneous white matter: the front becomes planar.
    d_w, rho, h = 1.0, 0.25, 0.5
    grid = Grid(size=(700, 1, 1), spacing=(h, 1.0, 1.0))
    wm = np.ones(grid.size, np.float32)
    tissues = TissueMaps.from_arrays(np.zeros_like(wm), np.zeros_like(wm), wm, Volume(wm, grid))
    params = fk.GrowthParams(d_white=d_w, rho=rho)
    start = np.zeros(grid.size, np.float32)
    start[:6] = 1.0

    def front(c):  # position (mm) where c crosses 0.5, linearly interpolated
        line = c[:, 0, 0]
        i = int(np.nonzero(line < 0.5)[0][0])
        return h * (i - 1 + (line[i - 1] - 0.5) / (line[i - 1] - line[i]))

    t1, t2 = 80.0, 240.0  # rho·t = 20 and 60: past the transient
    first = fk.grow(tissues, params, initial=Volume(start, grid), days=t1)
    second = fk.grow(tissues, params, initial=first.concentration, days=t2 - t1)
    speed = (front(second.concentration.array) - front(first.concentration.array)) / (t2 - t1)
    theory = 2 * np.sqrt(d_w * rho)
    assert abs(speed - theory) / theory < 0.05, f"front speed {speed:.4f} mm/day vs 2·sqrt(D·rho) = {theory:.4f}"
    assert second.days == pytest.approx(t2 - t1)


def test_values_stay_in_unit_interval_and_nothing_enters_csf_or_leaves_the_brain(phantom):
    result = fk.grow(phantom, fk.GrowthParams(d_white=2.0, rho=0.2), seed_voxel=SEED, days=60.0)
    c = result.concentration.array
    domain = phantom.tissue_mask().array
    assert c.min() >= 0.0 and c.max() <= 1.0
    assert np.all(c[~domain] == 0.0), "tumor cells in CSF or outside the brain"
    # the tumor has reached the CSF and the brain's edge: the check above is not vacuous
    from scipy import ndimage

    next_to_csf = ndimage.binary_dilation(phantom.csf.array > 0.5) & domain
    assert c[next_to_csf].max() > 0.25
    next_to_outside = ndimage.binary_dilation(~phantom.brain_mask().array) & domain
    assert c[next_to_outside].max() > 0.01
    assert result.volume_cm3 > 5.0


def test_matches_the_plain_explicit_euler_reference(phantom):
    params = fk.GrowthParams()
    result = fk.grow(phantom, params, seed_voxel=SEED, days=25.0)
    d = fk.diffusivity(phantom, params)
    c0 = fk.seed_field(phantom.grid, SEED, d > 0)
    ref, steps = grow_reference(d, c0, phantom.grid.spacing, params.rho, result.dt, days=25.0)
    assert steps == result.steps
    rel = np.linalg.norm(result.concentration.array - ref) / np.linalg.norm(ref)
    assert rel < 1e-5, rel


def test_stops_at_the_target_volume_like_the_reference(phantom):
    params = fk.GrowthParams()
    result = fk.grow(phantom, params, seed_voxel=SEED, target_volume_cm3=6.0)
    assert 6.0 <= result.volume_cm3 < 6.0 * 1.03
    d = fk.diffusivity(phantom, params)
    ref, steps = grow_reference(d, fk.seed_field(phantom.grid, SEED, d > 0), phantom.grid.spacing, params.rho, result.dt, target_voxels=6000)
    assert steps == result.steps


def test_numpy_and_torch_give_the_same_field(phantom):
    a = fk.grow(phantom, seed_voxel=SEED, days=40.0, backend="numpy").concentration.array
    b = fk.grow(phantom, seed_voxel=SEED, days=40.0, backend="torch", device="cpu").concentration.array
    assert np.linalg.norm(a - b) / np.linalg.norm(a) < 1e-3


def test_threads_do_not_change_the_field(phantom, monkeypatch):
    monkeypatch.setattr(fk._NumpyStepper, "PARALLEL_MIN_VOXELS", 1)
    threaded = fk.grow(phantom, seed_voxel=SEED, days=20.0).concentration.array
    monkeypatch.setattr(fk._NumpyStepper, "PARALLEL_MIN_VOXELS", 10**12)
    single = fk.grow(phantom, seed_voxel=SEED, days=20.0).concentration.array
    np.testing.assert_array_equal(threaded, single)


def test_white_matter_spreads_faster_than_grey_matter():
    # white matter for x < 50, grey matter beyond; the seed on the border
    grid = Grid(size=(100, 15, 15))
    wm = np.zeros(grid.size, np.float32)
    wm[:50] = 1.0
    gm = 1.0 - wm
    tissues = TissueMaps.from_arrays(np.zeros_like(wm), gm, wm, Volume(wm, grid))
    c = fk.grow(tissues, seed_voxel=(50, 7, 7), days=60.0).concentration.array
    into_wm = np.count_nonzero(c[:50, 7, 7] > 0.25)
    into_gm = np.count_nonzero(c[50:, 7, 7] > 0.25)
    assert into_wm > 1.5 * into_gm > 0, (into_wm, into_gm)


def test_anisotropic_oblique_grid_keeps_geometry_and_grows_round_in_millimetres():
    tissues = brain_phantom(size=(50, 50, 26), spacing=(1.0, 1.0, 2.0), direction=OBLIQUE_DIRECTION)
    wm = np.where(tissues.brain_mask().array, 1.0, 0.0).astype(np.float32)
    homogeneous = TissueMaps.from_arrays(np.zeros_like(wm), np.zeros_like(wm), wm, tissues.csf)
    centre = tuple(n // 2 for n in tissues.grid.size)
    result = fk.grow(homogeneous, seed_ras=tissues.grid.index_to_ras(centre), days=60.0)
    assert result.concentration.grid == tissues.grid
    inside = np.argwhere(result.concentration.array >= 0.25)
    extent_mm = (inside.max(0) - inside.min(0) + 1) * np.array(tissues.grid.spacing)
    assert extent_mm.max() - extent_mm.min() <= 2.0 + 1e-9, extent_mm


def test_inputs_are_not_modified(phantom):
    before = [a.copy() for a in phantom.arrays()]
    initial = fk.grow(phantom, seed_voxel=SEED, days=10.0).concentration
    snapshot = initial.array.copy()
    fk.grow(phantom, initial=initial, days=5.0)
    np.testing.assert_array_equal(initial.array, snapshot)
    for a, b in zip(before, phantom.arrays()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(seed_voxel=(29, 21, 19), days=5.0), "not in brain tissue"),  # the ventricle
        (dict(seed_voxel=(0, 0, 0), days=5.0), "not in brain tissue"),
        (dict(seed_voxel=(99, 0, 0), days=5.0), "outside the image"),
        (dict(seed_voxel=SEED), "exactly one stop"),
        (dict(seed_voxel=SEED, days=5.0, target_volume_cm3=1.0), "exactly one stop"),
        (dict(days=5.0), "exactly one start"),
        (dict(seed_voxel=SEED, days=-1.0), "days must be"),
        (dict(seed_voxel=SEED, target_volume_cm3=500.0, max_days=30.0), "reached only"),
        (dict(seed_voxel=SEED, days=5.0, backend="jax"), "backend must be"),
        (dict(seed_voxel=SEED, days=5.0, params=fk.GrowthParams(dt=1.0)), "exceeds the stability bound"),
    ],
)
def test_bad_input(phantom, kwargs, message):
    params = kwargs.pop("params", fk.GrowthParams())
    with pytest.raises(InputError, match=message) as exc:
        fk.grow(phantom, params, **kwargs)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("field, message", [("d_white", "d_white"), ("rho", "rho"), ("gm_ratio", "gm_ratio")])
def test_bad_parameters(field, message):
    with pytest.raises(InputError, match=message):
        fk.GrowthParams(**{field: -1.0})


def test_cancel_stops_growth(phantom):
    from tumorgen.errors import CancelledError

    calls = []
    with pytest.raises(CancelledError):
        fk.grow(phantom, seed_voxel=SEED, days=100.0, cancelled=lambda: calls.append(1) or len(calls) > 2)


def test_one_growth_through_several_volumes_gives_the_restarted_fields(phantom):
    """grow_through_volumes equals grow() restarted from each target's field, up to the box's truncation."""
    start = fk.grow(phantom, seed_voxel=SEED, target_volume_cm3=1.0).concentration
    snapshot = start.array.copy()
    targets = [2.0, 3.5, 3.5, 6.0]
    seen = []
    progress = []
    fk.grow_through_volumes(phantom, initial=start, targets_cm3=targets, visit=lambda i, field, days: seen.append((i, field, days)),
                            progress=lambda f, m: progress.append(f))
    assert [i for i, _, _ in seen] == [0, 1, 2, 3] and np.array_equal(start.array, snapshot)
    assert seen[1][1] is not seen[2][1] and np.array_equal(seen[1][1], seen[2][1]) and seen[1][2] == seen[2][2]
    field, days = start, 0.0
    for (i, through, at), target in zip(seen, targets):
        result = fk.grow(phantom, initial=field, target_volume_cm3=target) if fk.tumor_volume_cm3(field.array, phantom.grid) < target else None
        if result is not None:
            field, days = result.concentration, days + result.days
        assert np.abs(through - field.array).max() < WHOLE_GRID_ATOL and at == pytest.approx(days)
        assert target <= fk.tumor_volume_cm3(through, phantom.grid) < target * 1.05
    assert progress and progress == sorted(progress) and progress[-1] <= 1.0
    with pytest.raises(InputError, match="ascending order"):
        fk.grow_through_volumes(phantom, initial=start, targets_cm3=[3.0, 2.0], visit=lambda *a: None)
    with pytest.raises(InputError, match="positive numbers of cm³"):
        fk.grow_through_volumes(phantom, initial=start, targets_cm3=[], visit=lambda *a: None)
    visited = []
    with pytest.raises(InputError, match="reached only"):
        fk.grow_through_volumes(phantom, initial=start, targets_cm3=[fk.tumor_volume_cm3(snapshot, phantom.grid), 500.0],
                                visit=lambda i, field, days: visited.append((i, days)), max_days=30.0)
    assert visited == [(0, 0.0)]  # the first target was reached at the start


# -- the torch path: fused step, whole grid, chunked volume check --------------------------

# The whole-grid torch path drops the active box. The box solver's truncation below SUPPORT_EPS
# and float32 rounding keep the two fields within WHOLE_GRID_ATOL (measured: 3e-8 here and on a
# 240×240×155 brain after 65 days; the truncation alone is bounded by about SUPPORT_EPS).
WHOLE_GRID_ATOL = 1e-6


def _domain_stepper(phantom, fused, batch=1, seed=0):
    """A torch CPU stepper on the phantom's tissue-domain box, loaded with a random field."""
    torch = pytest.importorskip("torch")
    params = fk.GrowthParams()
    d = fk.diffusivity(phantom, params)
    box = fk._domain_box(d > 0)
    rng = np.random.default_rng(seed)
    c = rng.random((batch,) + d[box].shape, dtype=np.float32)
    stepper = fk._TorchStepper("cpu", fused=fused)
    stepper.load(c, fk._face_conductances(d[box], phantom.grid.spacing), params.rho)
    dt = torch.full((batch, 1, 1, 1), fk._time_step(d, phantom.grid, params), dtype=torch.float32)
    return stepper, dt


def test_fused_step_equals_the_eager_step_and_does_not_recompile_for_a_new_dt(phantom):
    torch = pytest.importorskip("torch")
    from torch._dynamo.utils import counters

    fused, dt = _domain_stepper(phantom, fused=True)
    eager, _ = _domain_stepper(phantom, fused=False)
    c0 = fused.c.clone()
    new = fused.update(fused.c, dt)
    assert fused.fused, fk._FUSED_FAILURE  # compiled, not fallen back
    torch.testing.assert_close(fused.c, c0, rtol=0, atol=0)  # the fused step is pure
    expected = eager.update(eager.c, dt)
    assert (new - expected).abs().max().item() <= 1e-6
    # the uncompiled pure function is the same update
    assert (fk.fk_step(c0, *eager.k, eager.rho_t, dt) - expected).abs().max().item() <= 1e-6

    # a shorter (last) step reuses the compiled kernel
    graphs = counters["stats"]["unique_graphs"]
    short = fused.update(c0, dt * 0.37)
    assert counters["stats"]["unique_graphs"] == graphs
    c1 = c0.clone()
    assert (short - eager.update(c1, dt * 0.37)).abs().max().item() <= 1e-6


def test_step_with_count_freezes_a_tumor_at_its_target(phantom):
    torch = pytest.importorskip("torch")
    stepper, dt = _domain_stepper(phantom, fused=False, batch=2)
    c0 = stepper.c.clone()
    threshold = torch.tensor(0.25)
    below = int((c0[0] >= 0.25).sum())
    # tumor 0 reaches its target at this step, tumor 1 cannot
    target = torch.tensor([1, c0[0].numel() + 1])
    c1, counts, dt1 = stepper.update_count(stepper.c, dt, threshold, target)
    assert counts.shape == (2,) and counts[0] > 0 and below > 0
    assert dt1[0].item() == 0.0 and dt1[1].item() == dt[1].item()
    snapshot = c1.clone()
    c2, counts2, _ = stepper.update_count(c1, dt1, threshold, target)
    torch.testing.assert_close(c2[0], snapshot[0], rtol=0, atol=0)  # frozen: exactly unchanged
    assert not torch.equal(c2[1], snapshot[1])
    assert counts2[0] == counts[0]


@pytest.mark.parametrize("fused", [False, True])
def test_whole_grid_torch_matches_the_box_solver_for_a_time(phantom, fused):
    box = fk.grow(phantom, seed_voxel=SEED, days=40.0)
    whole = fk.grow(phantom, seed_voxel=SEED, days=40.0, backend="torch", device="cpu", whole_grid=True, fused=fused)
    assert whole.steps == box.steps and whole.days == box.days == 40.0
    np.testing.assert_allclose(whole.concentration.array, box.concentration.array, rtol=0, atol=WHOLE_GRID_ATOL)
    assert whole.concentration.grid == phantom.grid
    assert np.all(whole.concentration.array[~phantom.tissue_mask().array] == 0.0)


@pytest.mark.parametrize("fused", [False, True])
def test_whole_grid_torch_stops_at_the_same_step_as_the_box_solver(phantom, fused):
    box = fk.grow(phantom, seed_voxel=SEED, target_volume_cm3=6.0)
    whole = fk.grow(phantom, seed_voxel=SEED, target_volume_cm3=6.0, backend="torch", device="cpu", whole_grid=True, fused=fused)
    assert whole.steps == box.steps
    assert whole.volume_cm3 == box.volume_cm3 >= 6.0
    np.testing.assert_allclose(whole.concentration.array, box.concentration.array, rtol=0, atol=WHOLE_GRID_ATOL)


def test_chunked_volume_check_equals_a_check_after_every_step(phantom, monkeypatch):
    kwargs = dict(seed_voxel=SEED, target_volume_cm3=4.0, backend="torch", device="cpu", whole_grid=True, fused=False)
    chunked = fk.grow(phantom, **kwargs)
    assert chunked.steps % fk.CHUNK_STEPS != 0  # the target was reached inside a chunk
    monkeypatch.setattr(fk, "CHUNK_STEPS", 1)
    every_step = fk.grow(phantom, **kwargs)
    assert chunked.steps == every_step.steps
    np.testing.assert_array_equal(chunked.concentration.array, every_step.concentration.array)
    assert chunked.steps == fk.grow(phantom, seed_voxel=SEED, target_volume_cm3=4.0).steps


def test_whole_grid_reports_progress_per_chunk_and_can_be_cancelled(phantom):
    from tumorgen.errors import CancelledError

    seen = []
    result = fk.grow(phantom, seed_voxel=SEED, days=20.0, backend="torch", device="cpu", whole_grid=True,
                     progress=lambda f, m: seen.append((f, m)))
    assert len(seen) == -(-result.steps // fk.CHUNK_STEPS) + 1
    assert seen[-1][0] == 1.0 and all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))
    calls = []
    with pytest.raises(CancelledError):
        fk.grow(phantom, seed_voxel=SEED, target_volume_cm3=30.0, backend="torch", device="cpu", whole_grid=True,
                cancelled=lambda: calls.append(1) or len(calls) > 2)
    assert len(calls) == 3


def test_failed_compilation_falls_back_to_the_eager_step(phantom, monkeypatch):
    def broken(*args):
        raise RuntimeError("no compiler\nfor this device")

    monkeypatch.setattr(fk, "_COMPILED", {"fk_step": broken, "fk_step_count": broken})
    monkeypatch.setattr(fk, "_FUSED_FAILURE", None)
    with pytest.warns(RuntimeWarning, match="could not be compiled"):
        result = fk.grow(phantom, seed_voxel=SEED, days=10.0, backend="torch", device="cpu", fused=True)
    assert "no compiler for this device" in fk._FUSED_FAILURE
    eager = fk.grow(phantom, seed_voxel=SEED, days=10.0, backend="torch", device="cpu", whole_grid=True, fused=False)
    np.testing.assert_array_equal(result.concentration.array, eager.concentration.array)
    assert not fk._TorchStepper("cpu").fused


@pytest.mark.parametrize("kwargs", [dict(fused=True), dict(whole_grid=True)])
def test_torch_options_are_refused_with_numpy(phantom, kwargs):
    with pytest.raises(InputError, match="torch backend only"):
        fk.grow(phantom, seed_voxel=SEED, days=5.0, backend="numpy", **kwargs)
