"""Growing several tumors at once: the same results as one at a time, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from tumorgen_testing import PHANTOM_SEED, brain_phantom

from tumorgen.anatomy.tissues import TissueMaps
from tumorgen.biophysics import fk
from tumorgen.errors import CancelledError, InputError
from tumorgen.volume import Volume

pytest.importorskip("torch")

#: Three white-matter seeds of the phantom, apart enough to grow differently (one near the ventricle).
SEEDS = [PHANTOM_SEED, (23, 12, 20), (20, 22, 28)]
#: The batch against single whole-grid torch runs: the same arithmetic on more tumors.
SAME_SOLVER_ATOL = 1e-6
#: The batch against the numpy active-box solver (float32 rounding and its truncation below SUPPORT_EPS).
BOX_SOLVER_ATOL = 1e-6


@pytest.fixture(scope="module")
def phantom() -> TissueMaps:
    return brain_phantom()


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Torch on one CPU thread: these grids are small, and OpenMP threads slow to a crawl on a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _check_same(batch, singles, atol):
    assert len(batch) == len(singles)
    for b, s in zip(batch, singles):
        assert (b.steps, b.days, b.dt, b.volume_cm3, b.threshold) == (s.steps, s.days, s.dt, s.volume_cm3, s.threshold)
        assert b.concentration.grid == s.concentration.grid
        np.testing.assert_allclose(b.concentration.array, s.concentration.array, rtol=0, atol=atol)


def test_batch_for_a_time_equals_single_runs(phantom):
    batch = fk.grow_batch(phantom, seeds_voxel=SEEDS, days=30.0, device="cpu")
    whole = [fk.grow(phantom, seed_voxel=s, days=30.0, backend="torch", device="cpu", whole_grid=True) for s in SEEDS]
    _check_same(batch, whole, SAME_SOLVER_ATOL)
    _check_same(batch, [fk.grow(phantom, seed_voxel=s, days=30.0) for s in SEEDS], BOX_SOLVER_ATOL)
    # each tumor grew around its own seed: its concentration there is the highest of the three
    for i, seed in enumerate(SEEDS):
        at_seed = [r.concentration.array[seed] for r in batch]
        assert int(np.argmax(at_seed)) == i, at_seed


def test_batch_stops_each_tumor_at_its_own_target(phantom):
    targets = [3.0, 6.0, 1.5]
    batch = fk.grow_batch(phantom, seeds_voxel=SEEDS, target_volumes_cm3=targets, device="cpu")
    singles = [fk.grow(phantom, seed_voxel=s, target_volume_cm3=t) for s, t in zip(SEEDS, targets)]
    _check_same(batch, singles, BOX_SOLVER_ATOL)
    assert len({r.steps for r in batch}) == 3
    for r, t in zip(batch, targets):
        assert t <= r.volume_cm3 < t * 1.05
        assert r.days == pytest.approx(r.steps * r.dt)


def test_fused_batch_stops_each_tumor_at_its_own_target(phantom):
    targets = [3.0, 6.0, 1.5]
    fused = fk.grow_batch(phantom, seeds_voxel=SEEDS, target_volumes_cm3=targets, device="cpu", fused=True)
    assert fk._FUSED_FAILURE is None
    eager = fk.grow_batch(phantom, seeds_voxel=SEEDS, target_volumes_cm3=targets, device="cpu", fused=False)
    _check_same(fused, eager, SAME_SOLVER_ATOL)


def test_numpy_batch_is_a_loop_over_grow(phantom):
    batch = fk.grow_batch(phantom, seeds_voxel=SEEDS[:2], target_volumes_cm3=2.0, backend="numpy")
    singles = [fk.grow(phantom, seed_voxel=s, target_volume_cm3=2.0) for s in SEEDS[:2]]
    _check_same(batch, singles, 0.0)


def test_batch_from_seeds_in_millimetres_and_from_initial_fields(phantom):
    grid = phantom.grid
    from_ras = fk.grow_batch(phantom, seeds_ras=[grid.index_to_ras(s) for s in SEEDS[:2]], days=5.0, device="cpu")
    from_voxels = fk.grow_batch(phantom, seeds_voxel=SEEDS[:2], days=5.0, device="cpu")
    _check_same(from_ras, from_voxels, 0.0)
    initials = [r.concentration for r in from_voxels]
    later = fk.grow_batch(phantom, initials=initials, days=5.0, device="cpu")
    _check_same(later, [fk.grow(phantom, initial=v, days=5.0, backend="torch", device="cpu", whole_grid=True) for v in initials],
                SAME_SOLVER_ATOL)


def test_batch_progress_and_cancel(phantom):
    seen = []
    fk.grow_batch(phantom, seeds_voxel=SEEDS, target_volumes_cm3=[2.0, 3.0, 1.0], device="cpu",
                  progress=lambda f, m: seen.append((f, m)))
    assert seen[-1][0] == 1.0 and all(0 <= f <= 1 for f, _ in seen)
    assert "3 of 3 tumors" in seen[-2][1]
    with pytest.raises(CancelledError):
        fk.grow_batch(phantom, seeds_voxel=SEEDS, days=100.0, device="cpu", cancelled=lambda: True)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(seeds_voxel=[], days=5.0), "seeds_voxel is empty"),
        (dict(days=5.0), "exactly one kind of start"),
        (dict(seeds_voxel=SEEDS, seeds_ras=[(0, 0, 0)], days=5.0), "exactly one kind of start"),
        (dict(seeds_voxel=SEEDS), "exactly one stop"),
        (dict(seeds_voxel=SEEDS, days=5.0, target_volumes_cm3=[1.0] * 3), "exactly one stop"),
        (dict(seeds_voxel=SEEDS, target_volumes_cm3=[1.0, 2.0]), "2 values for 3 tumors"),
        (dict(seeds_voxel=SEEDS, target_volumes_cm3=[1.0, -2.0, 1.0]), "target volume of tumor 1"),
        (dict(seeds_voxel=SEEDS, target_volumes_cm3="big"), "target_volumes_cm3 must be numbers"),
        (dict(seeds_voxel=PHANTOM_SEED, days=5.0), "list of 3-coordinate seeds"),
        (dict(seeds_voxel=[SEEDS[0], (0, 0, 0)], days=5.0), "tumor 1 in seeds_voxel: seed voxel .* not in brain tissue"),
        (dict(seeds_voxel=[SEEDS[0], (99, 0, 0)], days=5.0), "tumor 1 in seeds_voxel: .*outside the image"),
        (dict(initials=[np.zeros((48, 44, 40), np.float32)], days=5.0), "must be a Volume"),
        (dict(seeds_voxel=SEEDS, days=-1.0), "days must be"),
        (dict(seeds_voxel=SEEDS, days=5.0, threshold=1.5), "threshold must be"),
        (dict(seeds_voxel=SEEDS, days=5.0, backend="jax"), "backend must be"),
        (dict(seeds_voxel=SEEDS, days=5.0, backend="numpy", fused=True), "torch backend only"),
        (dict(seeds_voxel=SEEDS, target_volumes_cm3=[1.0, 500.0, 1.0], max_days=60.0), "tumor 1 reached only"),
        (dict(seeds_voxel=SEEDS, target_volumes_cm3=[1.0, 500.0, 1.0], max_days=60.0, backend="numpy"), "tumor 1: the tumor reached only"),
    ],
)
def test_bad_input(phantom, kwargs, message):
    kwargs.setdefault("device", "cpu")
    with pytest.raises(InputError, match=message) as exc:
        fk.grow_batch(phantom, **kwargs)
    assert "\n" not in str(exc.value)


def test_initial_field_on_another_grid_is_refused(phantom):
    other = brain_phantom(size=(40, 40, 40))
    field = Volume(np.zeros(other.grid.size, np.float32), other.grid)
    with pytest.raises(InputError, match="tumor 0 in initials: initial field and tissue maps have different geometry"):
        fk.grow_batch(phantom, initials=[field], days=5.0, device="cpu")


def test_speed_helper_runs_end_to_end_on_a_small_grid(phantom):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "speed_fk.py"
    spec = importlib.util.spec_from_file_location("speed_fk", path)
    speed_fk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(speed_fk)
    rows = speed_fk.fk_rows(phantom, "cpu", days=45.0, batch=3, reference=True, seed_ras=phantom.grid.index_to_ras(PHANTOM_SEED),
                            seed_spacing_mm=5.0, repeats=1)
    assert not [r for r in rows if "error" in r], [r["error"] for r in rows if "error" in r]
    by = {(r["section"], r["solver"]): r for r in rows}
    assert set(by) == {("grow", "numpy"), ("grow", "torch-eager"), ("grow", "torch-fused"), ("target", "numpy"), ("target", "torch-eager"),
                       ("target", "torch-fused"), ("batch", "grow_batch"), ("batch-target", "grow_batch"), ("reference", "reference")}
    assert all(r["steps_equal_numpy"] for r in rows if r["section"] == "target" and r["solver"] != "numpy")
    assert by[("batch", "grow_batch")]["batch"] == 3 and by[("batch", "grow_batch")]["steps_equal_singles"]
    assert by[("batch-target", "grow_batch")]["steps_equal_singles"]
    assert by[("reference", "reference")]["rel_l2_numpy_vs_reference"] < 1e-5
    assert by[("reference", "reference")]["reference_over_numpy"] > 0
