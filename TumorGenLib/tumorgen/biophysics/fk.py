"""Fisher–Kolmogorov tumor growth on tissue maps.

The tumor cell concentration ``c`` (fraction of the carrying capacity, in [0, 1])
follows

    ∂c/∂t = ∇·(D(x) ∇c) + ρ c (1 − c)

with ``D = D_w·p_wm + D_g·p_gm`` (``p_*`` the tissue probabilities, ``D_g =
gm_ratio·D_w``, 0.1 by default) inside the *tissue domain* — voxels with more
grey plus white matter than CSF, inside the brain — and ``D = 0`` elsewhere.
Tumor cells therefore never enter CSF or leave the brain: there is no flux
across the domain boundary, and ``c`` stays exactly 0 outside it.

Discretisation (finite volumes on the image grid, per-axis spacing ``h_a``; the
direction matrix plays no role because diffusion is isotropic):

* the flux across the face between neighbours ``p`` and ``q`` along axis ``a``
  is ``K_pq (c_q − c_p) / h_a²`` with ``K_pq = 2 D_p D_q / (D_p + D_q)``, the
  harmonic mean (0 when either side is outside the domain);
* explicit (forward) Euler in time for diffusion and reaction together:
  ``c ← c + Δt (div + ρ c (1 − c))``.

Stability bound. With ``Δt ≤ 1 / (2 D_max Σ_a h_a⁻² + ρ)`` every update is a
convex combination of neighbouring values plus a logistic increment that stays
below 1, so ``c`` stays in [0, 1] (discrete maximum principle) and the scheme
is stable. The default step is 0.95 of that bound: for ``D_w = 1 mm²/day`` on a
1 mm grid, Δt ≈ 0.157 day. At that step the time error is far below the
spatial one (ρΔt ≈ 0.016).

Speed. The update is the same as a plain explicit-Euler solver's
(:mod:`tumorgen.biophysics.fk_reference`), but it runs only on the *active
box*: the bounding box of voxels with ``c > support_eps`` (1e-6) plus a margin.
The box grows as the tumor does (the support of an explicit stencil advances
at most one voxel per step, and the box is re-checked more often than its
margin can be crossed); outside it the concentration is below ``support_eps``
and is kept at 0. Work is in float32 with preallocated buffers. The same
algorithm runs in torch (``backend="torch"``) on CUDA or CPU and gives the same
field up to float32 rounding.

Whole grid (torch). Checking the box reads the field back to the host every
few steps, which stalls a GPU. On CUDA, or with ``whole_grid=True``, the torch
path steps the bounding box of the tissue domain instead, a box fixed for the
whole run: outside the domain ``c`` stays exactly 0 (every face there has
zero conductance), so this is the same solution. It differs from the active
box solver's only by float32 rounding and by that solver's truncation of
values below ``support_eps``: at most about 1e-6, and 3e-8 measured on a
240×240×155 brain after 65 days.

Fused step. :func:`fk_step` is the whole update (reaction, the three face
fluxes, the divergence, the Euler step) as one pure function of tensors. On
CUDA (``fused=None``) or with ``fused=True`` it runs through
``torch.compile(dynamic=False)``, one fused kernel per step; if compiling
fails (no Triton, an unsupported GPU) the eager in-place update takes over
and the process remembers not to try again. The time step and ρ are device
tensors, so the shortened last step of a fixed-time run does not recompile.

Chunked volume check. For a target-volume stop, each step also counts the
voxels with ``c ≥ threshold`` into a device tensor (:func:`fk_step_count`) and
sets a tumor's time step to 0 as soon as its count reaches its target: from
then on ``c + 0·div = c`` leaves it bit-for-bit at that step. The counts are
read back once per chunk of :data:`CHUNK_STEPS` steps, which tells each
tumor's first step at its target; steps and field are exactly what a check
after every step gives, without a host synchronisation per step. Progress and
cancellation are polled once per chunk.

Batch. :func:`grow_batch` grows several tumors on the same tissue maps as one
``(B, X, Y, Z)`` tensor (the conductances are shared), one step for all. With
per-tumor target volumes each tumor stops (freezes) at its own first step at
its target and reports its own ``steps`` and ``days``. Each result equals what
:func:`grow` gives for that tumor alone, up to float32 rounding.

Several volumes of one tumor. :func:`grow_through_volumes` grows one tumor once
through ascending target volumes on the CPU and hands over the field at each
(the follow-up's forecast draws), instead of one :func:`grow` per target.
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from tumorgen.anatomy.tissues import TissueMaps
from tumorgen.errors import CancelledError, InputError
from tumorgen.settings import GROWTH
from tumorgen.volume import Grid, Volume

ProgressFn = Callable[[float, str], None]
CancelFn = Callable[[], bool]

#: Concentration below which a voxel counts as tumor-free when sizing the active box.
SUPPORT_EPS = 1e-6
#: Voxels between the support's bounding box and the edge of the active box.
BOX_MARGIN = 8
#: Steps between checks of the active box (must stay below BOX_MARGIN).
BOX_CHECK_EVERY = 2
#: Safety factor applied to the stability bound for the default time step.
DT_SAFETY = 0.95
#: Steps between host reads of the tumor volume on the whole-grid torch path.
CHUNK_STEPS = 32


@dataclass(frozen=True)
class GrowthParams:
    """Parameters of the Fisher–Kolmogorov model.

    Attributes:
        d_white: diffusivity in white matter, mm²/day.
        rho: proliferation rate, 1/day.
        gm_ratio: D_g / D_w (grey matter diffuses ``gm_ratio`` times slower).
        dt: time step in days; ``None`` takes 0.95 of the stability bound.
    """

    d_white: float = GROWTH.default("d_white")
    rho: float = GROWTH.default("rho")
    gm_ratio: float = GROWTH.default("gm_ratio")
    dt: float | None = None

    def __post_init__(self) -> None:
        GROWTH.check(self)
        if self.dt is not None and not (math.isfinite(self.dt) and self.dt > 0):
            raise InputError(f"dt must be a positive number of days, got {self.dt}")


@dataclass(frozen=True)
class GrowthResult:
    """A grown field and how it got there."""

    concentration: Volume
    days: float
    steps: int
    dt: float
    #: Tumor volume (cm³) above ``threshold`` at the end.
    volume_cm3: float
    threshold: float


def stable_dt(d_max: float, rho: float, spacing: Sequence[float]) -> float:
    """The largest step that keeps the explicit scheme monotone (see the module docstring)."""
    return 1.0 / (2.0 * d_max * sum(1.0 / h**2 for h in spacing) + rho)


def diffusivity(tissues: TissueMaps, params: GrowthParams) -> np.ndarray:
    """D(x) in mm²/day (float32): D_w·p_wm + D_g·p_gm inside the tissue domain, 0 elsewhere."""
    _, gm, wm = tissues.arrays()
    d = params.d_white * (wm.astype(np.float32) + np.float32(params.gm_ratio) * gm.astype(np.float32))
    d[~tissues.tissue_mask().array] = 0.0
    return d.astype(np.float32, copy=False)


def seed_index(grid: Grid, *, ras: Sequence[float] | None = None, index: Sequence[float] | None = None) -> tuple[int, int, int]:
    """The voxel of a seed given as RAS millimetres or a voxel index (exactly one)."""
    if (ras is None) == (index is None):
        raise InputError("give the seed either as RAS millimetres or as a voxel index (exactly one)")
    where = f"RAS ({', '.join(f'{v:g}' for v in ras)}) mm" if ras is not None else f"index {tuple(index)}"
    values = grid.ras_to_index(ras) if ras is not None else np.asarray(index, dtype=float)
    if values.shape != (3,) or not np.all(np.isfinite(values)):
        raise InputError(f"seed {where} must have 3 finite coordinates")
    voxel = tuple(int(v) for v in np.rint(values))
    if not grid.contains_index(voxel):
        raise InputError(f"seed {where} is outside the image (voxel {voxel}, size {grid.size})")
    return voxel


def seed_field(grid: Grid, voxel: Sequence[int], domain: np.ndarray, *, sigma_mm: float = 1.5, amplitude: float = 1.0) -> np.ndarray:
    """A small Gaussian cell population centred on ``voxel``, zero outside the tissue domain."""
    if not domain[tuple(voxel)]:
        raise InputError(f"seed voxel {tuple(voxel)} is not in brain tissue (CSF or outside the brain); pick a point in grey or white matter")
    field = np.zeros(grid.size, np.float32)
    radius = [max(1, int(math.ceil(3 * sigma_mm / h))) for h in grid.spacing]
    lo = [max(0, v - r) for v, r in zip(voxel, radius)]
    hi = [min(n, v + r + 1) for v, r, n in zip(voxel, radius, grid.size)]
    axes = [(np.arange(a, b) - v) * h for a, b, v, h in zip(lo, hi, voxel, grid.spacing)]
    r2 = axes[0][:, None, None] ** 2 + axes[1][None, :, None] ** 2 + axes[2][None, None, :] ** 2
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    field[box] = (amplitude * np.exp(-r2 / (2 * sigma_mm**2))).astype(np.float32)
    field[~domain] = 0.0
    return field


def tumor_volume_cm3(field: np.ndarray, grid: Grid, threshold: float = 0.25) -> float:
    return float(np.count_nonzero(field >= threshold)) * grid.voxel_volume_mm3 / 1000.0


def _check_days(days: float | None, max_days: float) -> None:
    if days is not None and not (math.isfinite(days) and 0 <= days <= max_days):
        raise InputError(f"days must be in [0, {max_days:g}], got {days}")


def _check_options(threshold: float, backend: str, fused: bool | None, whole_grid: bool | None) -> None:
    if not 0 < threshold < 1:
        raise InputError(f"threshold must be in (0, 1), got {threshold}")
    if backend not in ("numpy", "torch"):
        raise InputError(f"backend must be numpy or torch, got {backend!r}")
    if backend == "numpy" and (fused or whole_grid):
        raise InputError("fused and whole_grid apply to the torch backend only; use backend='torch'")


def _tissue_domain(tissues: TissueMaps, params: GrowthParams) -> tuple[np.ndarray, np.ndarray]:
    """D(x) and the tissue domain (``D > 0``, not empty)."""
    d = diffusivity(tissues, params)
    domain = d > 0
    if not domain.any():
        raise InputError("the tissue maps have no grey or white matter: there is nowhere to grow")
    return d, domain


def _time_step(d: np.ndarray, grid: Grid, params: GrowthParams) -> float:
    d_max = float(d.max())
    # Axes one voxel thick have no faces, so they do not limit the step.
    spacing = [h for h, n in zip(grid.spacing, grid.size) if n > 1]
    bound = stable_dt(d_max, params.rho, spacing)
    dt = params.dt if params.dt is not None else DT_SAFETY * bound
    if dt > bound * (1 + 1e-9):
        raise InputError(f"dt {dt:g} day exceeds the stability bound {bound:.4g} day for D_max {d_max:g} mm²/day and this spacing")
    return dt


def _start_field(grid: Grid, domain: np.ndarray, *, seed_ras=None, seed_voxel=None, initial: Volume | None = None) -> np.ndarray:
    """The initial concentration (float32, zero outside the domain) from a seed or a field (exactly one given)."""
    if initial is not None:
        if not isinstance(initial, Volume):
            raise InputError(f"an initial concentration must be a Volume, got {type(initial).__name__}")
        if not initial.grid.matches(grid):
            raise InputError(f"initial field and tissue maps have different geometry: {'; '.join(grid.differences(initial.grid))}")
        c0 = np.asarray(initial.array, dtype=np.float32)
        if not np.all(np.isfinite(c0)) or c0.min() < 0 or c0.max() > 1:
            raise InputError("initial concentration must be finite and in [0, 1]")
        c0 = np.where(domain, c0, np.float32(0.0))
        if not c0.any():
            raise InputError("initial concentration is zero everywhere in brain tissue: there is nothing to grow")
        return c0
    voxel = tuple(seed_voxel) if seed_voxel is not None else None
    voxel = seed_index(grid, ras=seed_ras, index=voxel)
    return seed_field(grid, voxel, domain)


def _target_voxels(target_volume_cm3: float, grid: Grid) -> int:
    """The fewest voxels whose volume reaches the target (the same comparison as ``count * voxel_cm3 >= target``).

    Capped at one more than the grid's voxels: an unreachable target stays unreachable and fits in int64.
    """
    voxel_cm3 = grid.voxel_volume_mm3 / 1000.0
    cap = grid.num_voxels + 1
    n = min(cap, max(0, int(math.ceil(target_volume_cm3 / voxel_cm3)) - 1))
    while n < cap and n * voxel_cm3 < target_volume_cm3:
        n += 1
    return n


def _short_of(volume: float, threshold: float, max_days: float, target_volume_cm3: float, who: str = "the tumor") -> InputError:
    return InputError(
        f"{who} reached only {volume:.2f} cm³ (c ≥ {threshold:g}) after {max_days:g} days, short of "
        f"{target_volume_cm3:g} cm³; raise rho or d_white, or seed it in a larger tissue region"
    )


def grow(
    tissues: TissueMaps,
    params: GrowthParams = GrowthParams(),
    *,
    seed_ras: Sequence[float] | None = None,
    seed_voxel: Sequence[int] | None = None,
    initial: Volume | None = None,
    days: float | None = None,
    target_volume_cm3: float | None = None,
    threshold: float = 0.25,
    max_days: float = 3650.0,
    backend: str = "numpy",
    device: str | None = None,
    progress: ProgressFn | None = None,
    cancelled: CancelFn | None = None,
    fused: bool | None = None,
    whole_grid: bool | None = None,
) -> GrowthResult:
    """Grow a tumor on ``tissues`` from a seed or from an existing field.

    Give exactly one start (``seed_ras``, ``seed_voxel`` or ``initial``) and
    exactly one stop (``days``, or ``target_volume_cm3`` of tissue with
    ``c ≥ threshold``; growth then stops at the first step that reaches it,
    and fails with an :class:`InputError` if ``max_days`` pass first).

    ``backend="numpy"`` runs on the CPU; ``backend="torch"`` runs on ``device``
    (``"cuda"``, ``"cpu"``, or ``None`` for CUDA when present). Both give the
    same field up to float32 rounding. The result has the tissues' grid.

    Torch only: ``fused`` compiles the step with ``torch.compile`` (``None``:
    on CUDA only); ``whole_grid`` steps the tissue domain's bounding box with
    chunked volume checks instead of the active box (``None``: on CUDA or when
    the step is fused; a fused step on the active box recompiles each time the
    box grows). See the module docstring.
    """
    grid = tissues.grid
    starts = sum(x is not None for x in (seed_ras, seed_voxel, initial))
    if starts != 1:
        raise InputError("give exactly one start: a seed (RAS mm or voxel index) or an initial concentration field")
    if (days is None) == (target_volume_cm3 is None):
        raise InputError("give exactly one stop: a time in days or a target tumor volume in cm³")
    _check_days(days, max_days)
    if target_volume_cm3 is not None and not (math.isfinite(target_volume_cm3) and target_volume_cm3 > 0):
        raise InputError(f"target volume must be a positive number of cm³, got {target_volume_cm3}")
    _check_options(threshold, backend, fused, whole_grid)

    d, domain = _tissue_domain(tissues, params)
    c0 = _start_field(grid, domain, seed_ras=seed_ras, seed_voxel=seed_voxel, initial=initial)
    dt = _time_step(d, grid, params)
    voxel_cm3 = grid.voxel_volume_mm3 / 1000.0
    t_end = days if days is not None else max_days
    n_total = int(math.ceil(t_end / dt - 1e-9))

    if backend == "torch":
        stepper = _TorchStepper(device, fused=fused)
        if whole_grid is None:
            whole_grid = stepper.device.type == "cuda" or stepper.fused
        if whole_grid:
            def report(step: int, counts) -> None:
                if cancelled is not None and cancelled():
                    raise CancelledError("growth cancelled")
                if progress is not None:
                    if days is not None:
                        progress(step / max(n_total, 1), f"day {step * dt:.1f} of {days:g}")
                    else:
                        volume = float(counts[0]) * voxel_cm3
                        progress(min(volume / target_volume_cm3, 1.0), f"day {step * dt:.1f}: {volume:.1f} of {target_volume_cm3:g} cm³")

            targets = None if target_volume_cm3 is None else [_target_voxels(target_volume_cm3, grid)]
            fields, steps, counts = _grow_whole_grid(stepper, c0[None], d, grid.spacing, dt, params.rho, t_end=t_end,
                                                     targets=targets, threshold=threshold, report=report)
            if targets is not None and steps[0] is None:
                raise _short_of(float(counts[0]) * voxel_cm3, threshold, max_days, target_volume_cm3)
            result = _result(fields[0], grid, steps[0], dt, days, threshold)
            if progress is not None:
                progress(1.0, f"day {result.days:.1f}")
            return result
    else:
        stepper = _NumpyStepper()

    solver = _BoxSolver(stepper, c0, d, grid.spacing, dt, params.rho)
    try:
        if target_volume_cm3 is not None:
            step = _step_through_volumes(solver, [target_volume_cm3], dt, n_total, voxel_cm3, threshold, max_days, progress, cancelled)
        else:
            step = 0
            report_every = max(1, n_total // 200)
            while step < n_total:
                solver.step(min(dt, t_end - step * dt))  # the last step is shortened to land on t_end exactly
                step += 1
                if step % report_every == 0:
                    if cancelled is not None and cancelled():
                        raise CancelledError("growth cancelled")
                    if progress is not None:
                        progress(step / n_total, f"day {step * dt:.1f} of {days:g}")
        field = solver.field()
    finally:
        solver.ops.close()
    result = _result(field, grid, step, dt, days, threshold)
    if progress is not None:
        progress(1.0, f"day {result.days:.1f}")
    return result


def grow_through_volumes(
    tissues: TissueMaps,
    params: GrowthParams = GrowthParams(),
    *,
    initial: Volume,
    targets_cm3: Sequence[float],
    visit: Callable[[int, np.ndarray, float], None],
    threshold: float = 0.25,
    max_days: float = 3650.0,
    progress: ProgressFn | None = None,
    cancelled: CancelFn | None = None,
) -> None:
    """Grow ``initial`` once through ascending target volumes (cm³ with ``c ≥ threshold``) on the CPU.

    At the first step that reaches each target, ``visit(i, field, days)`` gets the whole-grid field (a new array) and
    the days grown so far. The fields are those of :func:`grow` run from each target's field to the next, up to the
    values below ``SUPPORT_EPS`` beyond the active box that such a restart drops: one solver, so D, the time step
    and the box are computed once instead of once per target (a forecast's 17 targets took 7 s that way on a 1 mm
    brain, most of it the per-call set-up on the whole grid). Fails like :func:`grow` when ``max_days`` pass first.
    """
    targets = [float(t) for t in targets_cm3]
    if not targets or any(not (math.isfinite(t) and t > 0) for t in targets):
        raise InputError(f"target volumes must be positive numbers of cm³, got {targets}")
    if any(b < a for a, b in zip(targets, targets[1:])):
        raise InputError(f"target volumes must be in ascending order, got {targets}")
    if not (math.isfinite(max_days) and max_days > 0):
        raise InputError(f"max_days must be a positive number of days, got {max_days}")
    _check_options(threshold, "numpy", None, None)
    grid = tissues.grid
    d, domain = _tissue_domain(tissues, params)
    c0 = _start_field(grid, domain, initial=initial)
    dt = _time_step(d, grid, params)
    voxel_cm3 = grid.voxel_volume_mm3 / 1000.0
    n_total = int(math.ceil(max_days / dt - 1e-9))
    solver = _BoxSolver(_NumpyStepper(), c0, d, grid.spacing, dt, params.rho)
    try:
        _step_through_volumes(solver, targets, dt, n_total, voxel_cm3, threshold, max_days, progress, cancelled,
                              visit=lambda i, step: visit(i, solver.field(), step * dt))
    finally:
        solver.ops.close()


def _step_through_volumes(solver: _BoxSolver, targets: list[float], dt: float, n_total: int, voxel_cm3: float, threshold: float,
                          max_days: float, progress: ProgressFn | None, cancelled: CancelFn | None,
                          visit: Callable[[int, int], None] | None = None) -> int:
    """Step ``solver`` until its volume reaches each of the ascending ``targets`` in turn; ``visit(i, steps)`` at the
    first step that reaches target ``i``. Returns the steps taken; fails when ``n_total`` steps do not reach one."""
    step = 0
    volume = solver.count_above(threshold) * voxel_cm3
    for i, target in enumerate(targets):
        while volume < target:
            if step >= n_total:
                raise _short_of(volume, threshold, max_days, target)
            solver.step(dt)
            step += 1
            # Every step (a pass over the box, a few per cent of a step): a small tumor's
            # volume can jump by more than 10 % in one step, so skipping counts could overshoot.
            volume = solver.count_above(threshold) * voxel_cm3
            if step % 25 == 0:
                if cancelled is not None and cancelled():
                    raise CancelledError("growth cancelled")
                if progress is not None:
                    progress(min(volume / targets[-1], 1.0), f"day {step * dt:.1f}: {volume:.1f} of {targets[-1]:g} cm³")
        if visit is not None:
            visit(i, step)
    return step


def _result(field: np.ndarray, grid: Grid, steps: int, dt: float, days: float | None, threshold: float) -> GrowthResult:
    elapsed = min(steps * dt, days) if days is not None else steps * dt
    return GrowthResult(
        concentration=Volume(field, grid),
        days=float(elapsed),
        steps=int(steps),
        dt=float(dt),
        volume_cm3=tumor_volume_cm3(field, grid, threshold),
        threshold=threshold,
    )


def grow_batch(
    tissues: TissueMaps,
    params: GrowthParams = GrowthParams(),
    *,
    seeds_ras: Sequence[Sequence[float]] | None = None,
    seeds_voxel: Sequence[Sequence[int]] | None = None,
    initials: Sequence[Volume] | None = None,
    days: float | None = None,
    target_volumes_cm3: Sequence[float] | float | None = None,
    threshold: float = 0.25,
    max_days: float = 3650.0,
    backend: str = "torch",
    device: str | None = None,
    progress: ProgressFn | None = None,
    cancelled: CancelFn | None = None,
    fused: bool | None = None,
) -> list[GrowthResult]:
    """Grow several tumors on the same tissue maps; one result per tumor, in order.

    Give exactly one kind of start, a list with one entry per tumor
    (``seeds_ras``, ``seeds_voxel`` or ``initials``), and exactly one stop:
    ``days`` for all, or ``target_volumes_cm3`` (one per tumor, or one number
    for all); each tumor then stops at its own first step at its target.

    ``backend="torch"`` steps all tumors together as one ``(B, X, Y, Z)``
    tensor on the tissue domain's bounding box (``fused`` as in :func:`grow`);
    ``backend="numpy"`` runs :func:`grow` for each. Each result equals what
    :func:`grow` gives for that tumor alone, up to float32 rounding.
    """
    grid = tissues.grid
    given = [(name, value) for name, value in (("seeds_ras", seeds_ras), ("seeds_voxel", seeds_voxel), ("initials", initials)) if value is not None]
    if len(given) != 1:
        raise InputError("give exactly one kind of start: seeds_ras, seeds_voxel or initials (a list with one entry per tumor)")
    start_name, starts = given[0]
    if isinstance(starts, (str, bytes, Volume, np.ndarray)) and not (isinstance(starts, np.ndarray) and starts.ndim == 2):
        raise InputError(f"{start_name} must be a list with one entry per tumor, got {type(starts).__name__}")
    try:
        starts = list(starts)
    except TypeError:
        raise InputError(f"{start_name} must be a list with one entry per tumor, got {type(starts).__name__}") from None
    if not starts:
        raise InputError(f"{start_name} is empty: give at least one tumor")
    if start_name != "initials" and any(isinstance(s, numbers.Number) for s in starts):
        raise InputError(f"{start_name} must be a list of 3-coordinate seeds, one per tumor (wrap a single seed in a list)")
    n = len(starts)
    if (days is None) == (target_volumes_cm3 is None):
        raise InputError("give exactly one stop: a time in days or target tumor volumes in cm³ (one per tumor)")
    _check_days(days, max_days)
    targets_cm3 = None
    if target_volumes_cm3 is not None:
        if isinstance(target_volumes_cm3, numbers.Number):
            targets_cm3 = [float(target_volumes_cm3)] * n
        else:
            try:
                targets_cm3 = [float(v) for v in target_volumes_cm3]
            except (TypeError, ValueError):
                raise InputError(f"target_volumes_cm3 must be numbers, one per tumor, got {target_volumes_cm3!r}") from None
            if len(targets_cm3) != n:
                raise InputError(f"target_volumes_cm3 has {len(targets_cm3)} values for {n} tumors in {start_name}: give one per tumor")
        for i, v in enumerate(targets_cm3):
            if not (math.isfinite(v) and v > 0):
                raise InputError(f"target volume of tumor {i} must be a positive number of cm³, got {v}")
    _check_options(threshold, backend, fused, None)

    d, domain = _tissue_domain(tissues, params)
    # the matching keyword of grow
    single = {"seeds_ras": "seed_ras", "seeds_voxel": "seed_voxel", "initials": "initial"}[start_name]
    c0s = None if backend == "numpy" else np.empty((n,) + tuple(grid.size), np.float32)
    for i, start in enumerate(starts):
        try:
            c0 = _start_field(grid, domain, **{single: start})
        except InputError as exc:
            raise InputError(f"tumor {i} in {start_name}: {exc}") from None
        if c0s is not None:
            c0s[i] = c0
    dt = _time_step(d, grid, params)

    if backend == "numpy":
        results = []
        for i, start in enumerate(starts):
            def sub(fraction: float, message: str, i=i) -> None:
                progress((i + fraction) / n, f"tumor {i + 1} of {n}: {message}")

            try:
                results.append(grow(tissues, params, **{single: start}, days=days, target_volume_cm3=None if targets_cm3 is None else targets_cm3[i],
                                    threshold=threshold, max_days=max_days, backend="numpy",
                                    progress=None if progress is None else sub, cancelled=cancelled))
            except InputError as exc:
                raise InputError(f"tumor {i}: {exc}") from None
        return results

    voxel_cm3 = grid.voxel_volume_mm3 / 1000.0
    t_end = days if days is not None else max_days
    n_total = int(math.ceil(t_end / dt - 1e-9))
    targets = None if targets_cm3 is None else [_target_voxels(v, grid) for v in targets_cm3]

    def report(step: int, counts) -> None:
        if cancelled is not None and cancelled():
            raise CancelledError("growth cancelled")
        if progress is not None:
            if days is not None:
                progress(step / max(n_total, 1), f"day {step * dt:.1f} of {days:g} ({n} tumors)")
            else:
                done = [min(float(c) / t, 1.0) for c, t in zip(counts, targets)]
                reached = sum(f >= 1.0 for f in done)
                progress(sum(done) / n, f"day {step * dt:.1f}: {reached} of {n} tumors at their target volume")

    stepper = _TorchStepper(device, fused=fused)
    fields, steps, counts = _grow_whole_grid(stepper, c0s, d, grid.spacing, dt, params.rho, t_end=t_end,
                                             targets=targets, threshold=threshold, report=report)
    del c0s
    results = []
    for i in range(n):
        if targets is not None and steps[i] is None:
            raise _short_of(float(counts[i]) * voxel_cm3, threshold, max_days, targets_cm3[i], who=f"tumor {i}")
        results.append(_result(fields[i], grid, steps[i], dt, days, threshold))
    if progress is not None:
        progress(1.0, f"day {max(r.days for r in results):.1f}")
    return results


# -- the whole-grid torch solver -----------------------------------------------------


def fk_step(c, kx, ky, kz, rho, dt):
    """One explicit Euler step of the Fisher–Kolmogorov update as a pure function of tensors.

    ``c`` is ``(..., X, Y, Z)`` (a leading batch axis is allowed); ``kx``, ``ky``,
    ``kz`` are the face conductances K/h² along each axis (``(X−1, Y, Z)``,
    ``(X, Y−1, Z)``, ``(X, Y, Z−1)``, shared by the batch); ``rho`` and ``dt`` are
    tensors broadcastable to ``c`` (``dt`` may be ``(B, 1, 1, 1)``: one step per
    tumor, 0 for a frozen one). Returns the new field; nothing is modified, so
    ``torch.compile`` fuses it into one kernel. The sums are taken in the same
    order as the eager update's.
    """
    import torch.nn.functional as F

    fx = (c[..., 1:, :, :] - c[..., :-1, :, :]) * kx
    fy = (c[..., :, 1:, :] - c[..., :, :-1, :]) * ky
    fz = (c[..., :, :, 1:] - c[..., :, :, :-1]) * kz
    div = c * (1.0 - c) * rho
    # flux out of a voxel's upper face adds to it, flux into its lower face subtracts
    div = div + F.pad(fx, (0, 0, 0, 0, 0, 1)) - F.pad(fx, (0, 0, 0, 0, 1, 0))
    div = div + F.pad(fy, (0, 0, 0, 1)) - F.pad(fy, (0, 0, 1, 0))
    div = div + F.pad(fz, (0, 1)) - F.pad(fz, (1, 0))
    return c + div * dt


def fk_step_count(c, kx, ky, kz, rho, dt, threshold, target):
    """:func:`fk_step`, then count each tumor's voxels with ``c ≥ threshold`` and freeze those at their target.

    Returns ``(new c, counts, new dt)``: ``counts`` has the batch shape, and
    ``new dt`` is 0 for each tumor whose count reached ``target`` (so later steps
    leave it exactly as it is). Pure, for ``torch.compile``; nothing leaves the device.
    """
    import torch

    c = fk_step(c, kx, ky, kz, rho, dt)
    counts = (c >= threshold).sum(dim=(-3, -2, -1))
    dt = torch.where((counts >= target).reshape(dt.shape), torch.zeros_like(dt), dt)
    return c, counts, dt


_KERNELS = {"fk_step": fk_step, "fk_step_count": fk_step_count}
#: ``torch.compile`` wrappers of the kernels, made on first use.
_COMPILED: dict = {}
#: Why compiling the fused step failed in this process (``None`` while it has not): ``fused=None`` then stays eager.
_FUSED_FAILURE: str | None = None


def _domain_box(domain: np.ndarray) -> tuple[slice, ...]:
    """The bounding box of the tissue domain (non-empty)."""
    box = []
    for axis in range(domain.ndim):
        other = tuple(a for a in range(domain.ndim) if a != axis)
        idx = np.flatnonzero(domain.any(axis=other))
        box.append(slice(int(idx[0]), int(idx[-1]) + 1))
    return tuple(box)


def _grow_whole_grid(stepper, c0s: np.ndarray, d: np.ndarray, spacing, dt: float, rho: float, *, t_end: float,
                     targets: list[int] | None, threshold: float, report: Callable, chunk: int | None = None):
    """Step ``B`` fields ``c0s`` ``(B, X, Y, Z)`` on the tissue domain's bounding box, without a host sync per step.

    ``targets``: per-tumor voxel counts to stop at (``None``: run to ``t_end``).
    ``report(step, counts)`` is called once per chunk (cancel and progress).
    Returns the fields ``(B, X, Y, Z)``, each tumor's steps (``None`` when its
    target was not reached by ``t_end``) and the last counts (``None`` for a
    fixed-time run).
    """
    torch = stepper.torch
    chunk = chunk or CHUNK_STEPS
    n = c0s.shape[0]
    box = (slice(None),) + _domain_box(d > 0)
    n_total = int(math.ceil(t_end / dt - 1e-9))
    stepper.load(c0s[box], _face_conductances(d[box[1:]], spacing), rho)
    c = stepper.c
    dev = stepper.device
    steps: list[int | None] = [None] * n
    step = 0
    counts = None
    try:
        if targets is None:
            dt_of: dict[float, object] = {}
            while step < n_total:
                for _ in range(min(chunk, n_total - step)):
                    # The last step of a fixed-time run is shortened to land on t_end exactly.
                    h = min(dt, t_end - step * dt)
                    if h not in dt_of:
                        dt_of[h] = torch.full((n, 1, 1, 1), h, dtype=torch.float32, device=dev)
                    c = stepper.update(c, dt_of[h])
                    step += 1
                report(step, None)
            steps = [step] * n
        else:
            counts = np.array([np.count_nonzero(f >= threshold) for f in c0s])
            for i in range(n):
                if counts[i] >= targets[i]:
                    steps[i] = 0
            dt_t = torch.tensor([0.0 if s is not None else dt for s in steps], dtype=torch.float32).reshape(n, 1, 1, 1).to(dev)
            threshold_t = torch.tensor(threshold, dtype=torch.float32, device=dev)
            target_t = torch.tensor(targets, dtype=torch.int64, device=dev)
            while step < n_total and any(s is None for s in steps):
                recorded = []
                for _ in range(min(chunk, n_total - step)):
                    c, count, dt_t = stepper.update_count(c, dt_t, threshold_t, target_t)
                    recorded.append(count)
                # the one read-back of the chunk: each tumor's count after each of its steps
                chunk_counts = torch.stack(recorded).cpu().numpy()
                for i in range(n):
                    if steps[i] is None:
                        hit = np.flatnonzero(chunk_counts[:, i] >= targets[i])
                        if hit.size:
                            steps[i] = step + int(hit[0]) + 1
                step += len(recorded)
                counts = chunk_counts[-1]
                report(step, counts)
        fields = np.zeros(c0s.shape, np.float32)
        fields[box] = c.detach().cpu().numpy()
    finally:
        stepper.close()
    return fields, steps, counts


# -- the active-box solver ---------------------------------------------------------


def _face_conductances(d: np.ndarray, spacing) -> list[np.ndarray]:
    """Per-axis face conductances K/h² (float32; harmonic mean of D, 0 where either side is outside the domain)."""
    out = []
    for axis, h in enumerate(spacing):
        a = d[(slice(None),) * axis + (slice(1, None),)]
        b = d[(slice(None),) * axis + (slice(None, -1),)]
        den = a + b
        k = np.zeros(den.shape, np.float32)
        np.divide(2.0 * a * b, den, out=k, where=den > 0)
        k *= np.float32(1.0 / h**2)
        out.append(k)
    return out


class _BoxSolver:
    """Steps the field on the active box and grows the box with the tumor."""

    def __init__(self, ops, c0: np.ndarray, d: np.ndarray, spacing, dt: float, rho: float) -> None:
        self.ops = ops
        self.shape = c0.shape
        self.d = d
        self.spacing = tuple(float(h) for h in spacing)
        self.rho = rho
        self.dt = dt
        self._since_check = 0
        self.box = self._box_around(c0)
        self.ops.load(c0[self._slices()], self._conductances(), rho)

    def _slices(self, box=None):
        box = box or self.box
        return tuple(slice(a, b) for a, b in box)

    def _box_around(self, field: np.ndarray) -> list[tuple[int, int]]:
        support = np.nonzero(field > SUPPORT_EPS)
        if support[0].size == 0:
            support = np.nonzero(field > 0)
        return [
            (max(0, int(ax.min()) - BOX_MARGIN), min(n, int(ax.max()) + 1 + BOX_MARGIN))
            for ax, n in zip(support, self.shape)
        ]

    def _conductances(self):
        return _face_conductances(self.d[self._slices()], self.spacing)

    def step(self, dt: float) -> None:
        self.ops.step(dt)
        self._since_check += 1
        if self._since_check >= BOX_CHECK_EVERY:
            self._since_check = 0
            self._maybe_grow()

    def _maybe_grow(self) -> None:
        lo, hi = self.ops.support_bounds(SUPPORT_EPS)
        need = False
        new_box = []
        for (a, b), l, u, n in zip(self.box, lo, hi, self.shape):
            # support within half a margin of an edge that is not the image's edge
            if (a > 0 and l < BOX_MARGIN // 2 + BOX_CHECK_EVERY) or (b < n and b - (a + u) < BOX_MARGIN // 2 + BOX_CHECK_EVERY):
                need = True
            new_box.append((max(0, min(a, a + l - BOX_MARGIN - 4)), min(n, max(b, a + u + BOX_MARGIN + 4))))
        if not need:
            return
        old = self.box
        field = self.ops.field()
        self.box = new_box
        c = np.zeros([b - a for a, b in new_box], np.float32)
        c[tuple(slice(oa - na, ob - na) for (oa, ob), (na, _) in zip(old, new_box))] = field
        self.ops.load(c, self._conductances(), self.rho)

    def count_above(self, threshold: float) -> int:
        return self.ops.count_above(threshold)

    def field(self) -> np.ndarray:
        out = np.zeros(self.shape, np.float32)
        out[self._slices()] = self.ops.field()
        return out


class _NumpyStepper:
    """The explicit update on the box with numpy.

    Double-buffered: each step reads ``c`` and writes ``c_next``, so the box can
    be split into slabs along the first axis that threads update at the same
    time (numpy releases the GIL inside its loops). A slab reads one extra row
    on each side, so its rows get exactly the values a single pass would give.
    """

    #: Boxes smaller than this many voxels run in one thread.
    PARALLEL_MIN_VOXELS = 200_000

    def __init__(self, device=None, threads: int | None = None) -> None:  # noqa: ARG002 - same signature as the torch one
        import os

        if threads is None:
            threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        self.threads = max(1, min(4, threads))
        self._pool = None

    def load(self, c: np.ndarray, conductances, rho: float) -> None:
        self.c = np.ascontiguousarray(c, dtype=np.float32)
        self.c_next = np.empty_like(self.c)
        self.k = conductances
        self.rho = np.float32(rho)
        n = self.c.shape[0]
        parts = self.threads if self.c.size >= self.PARALLEL_MIN_VOXELS and n >= 4 * self.threads else 1
        cuts = [round(i * n / parts) for i in range(parts + 1)]
        self.slabs = []
        for r0, r1 in zip(cuts[:-1], cuts[1:]):
            a, b = max(r0 - 1, 0), min(r1 + 1, n)
            shape = (b - a,) + self.c.shape[1:]
            k = [self.k[0][a : b - 1], self.k[1][a:b], self.k[2][a:b]]
            buffers = (np.empty(shape, np.float32), [np.empty(kk.shape, np.float32) for kk in k])
            self.slabs.append((r0, r1, a, b, k, buffers))
        if parts > 1 and self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="tumorgen-fk")

    def _slab(self, slab, dt: float) -> None:
        r0, r1, a, b, k, (div, fluxes) = slab
        c = self.c[a:b]
        # reaction: div = rho c (1 - c)
        np.subtract(np.float32(1.0), c, out=div)
        div *= c
        div *= self.rho
        for axis, (kk, flux) in enumerate(zip(k, fluxes)):
            hi = (slice(None),) * axis + (slice(1, None),)
            lo = (slice(None),) * axis + (slice(None, -1),)
            np.subtract(c[hi], c[lo], out=flux)
            flux *= kk
            div[lo] += flux
            div[hi] -= flux
        rows = slice(r0 - a, r1 - a)
        np.multiply(div[rows], np.float32(dt), out=self.c_next[r0:r1])
        self.c_next[r0:r1] += c[rows]

    def step(self, dt: float) -> None:
        if len(self.slabs) == 1:
            self._slab(self.slabs[0], dt)
        else:
            for future in [self._pool.submit(self._slab, slab, dt) for slab in self.slabs]:
                future.result()
        self.c, self.c_next = self.c_next, self.c

    def support_bounds(self, eps: float):
        mask = self.c > eps
        lo, hi = [], []
        for axis in range(3):
            other = tuple(a for a in range(3) if a != axis)
            idx = np.flatnonzero(mask.any(axis=other))
            lo.append(int(idx[0]) if idx.size else 0)
            hi.append(int(idx[-1]) + 1 if idx.size else 0)
        return lo, hi

    def count_above(self, threshold: float) -> int:
        return int(np.count_nonzero(self.c >= threshold))

    def field(self) -> np.ndarray:
        return self.c

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


class _TorchStepper:
    """The same update in torch (CUDA when present).

    ``fused``: run :func:`fk_step` compiled by ``torch.compile`` (``None``: on
    CUDA only, unless compiling failed earlier in this process); otherwise an
    eager update in place on preallocated buffers. A field may carry a leading
    batch axis (the whole-grid path); the conductances are shared.
    """

    def __init__(self, device=None, fused: bool | None = None) -> None:
        import torch

        from tumorgen.device import resolve_device

        self.torch = torch
        self.device = resolve_device(device or "auto")
        if fused is None:
            fused = self.device.type == "cuda" and _FUSED_FAILURE is None
        self.fused = bool(fused)
        self._buffers = None
        self._dt_of: dict[float, object] = {}

    def load(self, c: np.ndarray, conductances, rho: float) -> None:
        t = self.torch
        self.c = t.from_numpy(np.ascontiguousarray(c, dtype=np.float32)).to(self.device, copy=True)
        self.k = [t.from_numpy(np.ascontiguousarray(k, dtype=np.float32)).to(self.device) for k in conductances]
        self.rho = float(rho)
        self.rho_t = t.tensor(self.rho, dtype=t.float32, device=self.device)
        self._buffers = None

    # -- the update

    def _fused(self, name: str, *args):
        """The compiled kernel's result, or ``None`` (and eager from now on) when compiling fails."""
        global _FUSED_FAILURE
        try:
            fn = _COMPILED.get(name)
            if fn is None:
                fn = _COMPILED[name] = self.torch.compile(_KERNELS[name], dynamic=False, fullgraph=True)
            return fn(*args)
        except Exception as exc:  # no Triton, an unsupported GPU or compiler: the eager update is the same
            _FUSED_FAILURE = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
            self.fused = False
            warnings.warn(f"the fused Fisher–Kolmogorov step could not be compiled; using the eager step ({_FUSED_FAILURE})",
                          RuntimeWarning, stacklevel=2)
            return None

    def _eager(self, c, dt):
        """The update in place on ``c`` (``dt`` a number or a tensor broadcastable to ``c``); returns ``c``."""
        t = self.torch
        lead = c.dim() - 3
        if self._buffers is None or self._buffers[0].shape != c.shape:
            fluxes = [t.empty(tuple(c.shape[:lead]) + tuple(k.shape), dtype=c.dtype, device=c.device) for k in self.k]
            self._buffers = (t.empty_like(c), fluxes)
        div, fluxes = self._buffers
        t.mul(c, t.sub(1.0, c), out=div)
        div.mul_(self.rho)
        for axis, (k, flux) in enumerate(zip(self.k, fluxes)):
            axis += lead
            n = c.shape[axis]
            hi, lo = c.narrow(axis, 1, n - 1), c.narrow(axis, 0, n - 1)
            t.sub(hi, lo, out=flux)
            flux.mul_(k)
            div.narrow(axis, 0, n - 1).add_(flux)
            div.narrow(axis, 1, n - 1).sub_(flux)
        if isinstance(dt, float):
            c.add_(div, alpha=dt)
        else:
            c.addcmul_(div, dt)
        return c

    def update(self, c, dt):
        """One step of ``c`` by ``dt`` (a device tensor); returns the new field (``c`` itself when eager)."""
        if self.fused:
            out = self._fused("fk_step", c, *self.k, self.rho_t, dt)
            if out is not None:
                return out
        return self._eager(c, dt)

    def update_count(self, c, dt, threshold, target):
        """One step, then the counts above ``threshold`` and the new per-tumor ``dt`` (see :func:`fk_step_count`)."""
        if self.fused:
            out = self._fused("fk_step_count", c, *self.k, self.rho_t, dt, threshold, target)
            if out is not None:
                return out
        t = self.torch
        c = self._eager(c, dt)
        counts = (c >= threshold).sum(dim=(-3, -2, -1))
        dt = t.where((counts >= target).reshape(dt.shape), t.zeros_like(dt), dt)
        return c, counts, dt

    # -- the active-box solver's interface

    def step(self, dt: float) -> None:
        if not self.fused:
            self._eager(self.c, float(dt))
            return
        if dt not in self._dt_of:
            self._dt_of[dt] = self.torch.tensor(dt, dtype=self.torch.float32, device=self.device)
        self.c = self.update(self.c, self._dt_of[dt])

    def support_bounds(self, eps: float):
        mask = self.c > eps
        lo, hi = [], []
        for axis in range(3):
            other = tuple(a for a in range(3) if a != axis)
            idx = self.torch.nonzero(mask.any(dim=other[1]).any(dim=other[0])).flatten()
            lo.append(int(idx[0]) if idx.numel() else 0)
            hi.append(int(idx[-1]) + 1 if idx.numel() else 0)
        return lo, hi

    def count_above(self, threshold: float) -> int:
        return int((self.c >= threshold).sum())

    def field(self) -> np.ndarray:
        return self.c.detach().cpu().numpy().astype(np.float32, copy=False)

    def close(self) -> None:
        self._buffers = None
