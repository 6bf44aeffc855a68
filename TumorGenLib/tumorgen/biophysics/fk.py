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
"""

from __future__ import annotations

import math
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
) -> GrowthResult:
    """Grow a tumor on ``tissues`` from a seed or from an existing field.

    Give exactly one start (``seed_ras``, ``seed_voxel`` or ``initial``) and
    exactly one stop (``days``, or ``target_volume_cm3`` of tissue with
    ``c ≥ threshold``; growth then stops at the first step that reaches it,
    and fails with an :class:`InputError` if ``max_days`` pass first).

    ``backend="numpy"`` runs on the CPU; ``backend="torch"`` runs on ``device``
    (``"cuda"``, ``"cpu"``, or ``None`` for CUDA when present). Both give the
    same field up to float32 rounding. The result has the tissues' grid.
    """
    grid = tissues.grid
    starts = sum(x is not None for x in (seed_ras, seed_voxel, initial))
    if starts != 1:
        raise InputError("give exactly one start: a seed (RAS mm or voxel index) or an initial concentration field")
    if (days is None) == (target_volume_cm3 is None):
        raise InputError("give exactly one stop: a time in days or a target tumor volume in cm³")
    if days is not None and not (math.isfinite(days) and 0 <= days <= max_days):
        raise InputError(f"days must be in [0, {max_days:g}], got {days}")
    if target_volume_cm3 is not None and not (math.isfinite(target_volume_cm3) and target_volume_cm3 > 0):
        raise InputError(f"target volume must be a positive number of cm³, got {target_volume_cm3}")
    if not 0 < threshold < 1:
        raise InputError(f"threshold must be in (0, 1), got {threshold}")
    if backend not in ("numpy", "torch"):
        raise InputError(f"backend must be numpy or torch, got {backend!r}")

    d = diffusivity(tissues, params)
    domain = d > 0
    if not domain.any():
        raise InputError("the tissue maps have no grey or white matter: there is nowhere to grow")
    if initial is not None:
        if not initial.grid.matches(grid):
            raise InputError(f"initial field and tissue maps have different geometry: {'; '.join(grid.differences(initial.grid))}")
        c0 = np.asarray(initial.array, dtype=np.float32)
        if not np.all(np.isfinite(c0)) or c0.min() < 0 or c0.max() > 1:
            raise InputError("initial concentration must be finite and in [0, 1]")
        c0 = np.where(domain, c0, np.float32(0.0))
        if not c0.any():
            raise InputError("initial concentration is zero everywhere in brain tissue: there is nothing to grow")
    else:
        voxel = tuple(seed_voxel) if seed_voxel is not None else None
        voxel = seed_index(grid, ras=seed_ras, index=voxel)
        c0 = seed_field(grid, voxel, domain)

    d_max = float(d.max())
    # Axes one voxel thick have no faces, so they do not limit the step.
    spacing = [h for h, n in zip(grid.spacing, grid.size) if n > 1]
    bound = stable_dt(d_max, params.rho, spacing)
    dt = params.dt if params.dt is not None else DT_SAFETY * bound
    if dt > bound * (1 + 1e-9):
        raise InputError(f"dt {dt:g} day exceeds the stability bound {bound:.4g} day for D_max {d_max:g} mm²/day and this spacing")

    stepper = _NumpyStepper if backend == "numpy" else _TorchStepper
    solver = _BoxSolver(stepper(device), c0, d, grid.spacing, dt, params.rho)
    voxel_cm3 = grid.voxel_volume_mm3 / 1000.0
    t_end = days if days is not None else max_days
    n_total = int(math.ceil(t_end / dt - 1e-9))
    step = 0
    report_every = max(1, n_total // 200) if days is not None else 25
    volume = solver.count_above(threshold) * voxel_cm3
    next_count = 0
    try:
        while step < n_total:
            if target_volume_cm3 is not None and volume >= target_volume_cm3:
                break
            # The last step of a fixed-time run is shortened to land on t_end exactly.
            h = min(dt, t_end - step * dt) if days is not None else dt
            solver.step(h)
            step += 1
            if target_volume_cm3 is not None and step >= next_count:
                volume = solver.count_above(threshold) * voxel_cm3
                # Counting is a pass over the box: far from the target, count every few steps
                # (the volume grows by well under 1 % per step), then every step.
                next_count = step + (1 if volume > 0.9 * target_volume_cm3 else 4)
            if step % report_every == 0:
                if cancelled is not None and cancelled():
                    raise CancelledError("growth cancelled")
                if progress is not None:
                    if days is not None:
                        progress(step / n_total, f"day {step * dt:.1f} of {days:g}")
                    else:
                        progress(min(volume / target_volume_cm3, 1.0), f"day {step * dt:.1f}: {volume:.1f} of {target_volume_cm3:g} cm³")
        field = solver.field()
    finally:
        solver.ops.close()
    elapsed = min(step * dt, t_end) if days is not None else step * dt
    if target_volume_cm3 is not None and volume < target_volume_cm3:
        raise InputError(
            f"the tumor reached only {volume:.2f} cm³ (c ≥ {threshold:g}) after {max_days:g} days, short of "
            f"{target_volume_cm3:g} cm³; raise rho or d_white, or seed it in a larger tissue region"
        )
    if progress is not None:
        progress(1.0, f"day {elapsed:.1f}")
    return GrowthResult(
        concentration=Volume(field, grid),
        days=float(elapsed),
        steps=step,
        dt=float(dt),
        volume_cm3=tumor_volume_cm3(field, grid, threshold),
        threshold=threshold,
    )


# -- the active-box solver ---------------------------------------------------------


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
        """Per-axis face conductances K/h² on the box (harmonic mean of D)."""
        d = self.d[self._slices()]
        out = []
        for axis, h in enumerate(self.spacing):
            a = d[(slice(None),) * axis + (slice(1, None),)]
            b = d[(slice(None),) * axis + (slice(None, -1),)]
            den = a + b
            k = np.zeros(den.shape, np.float32)
            np.divide(2.0 * a * b, den, out=k, where=den > 0)
            k *= np.float32(1.0 / h**2)
            out.append(k)
        return out

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
    """The same update in torch (CUDA when present)."""

    def __init__(self, device=None) -> None:
        import torch

        from tumorgen.device import resolve_device

        self.torch = torch
        self.device = resolve_device(device or "auto")

    def load(self, c: np.ndarray, conductances, rho: float) -> None:
        t = self.torch
        self.c = t.from_numpy(np.ascontiguousarray(c)).to(self.device)
        self.k = [t.from_numpy(k).to(self.device) for k in conductances]
        self.rho = float(rho)
        self.div = t.empty_like(self.c)
        self.flux = [t.empty_like(k) for k in self.k]

    def step(self, dt: float) -> None:
        t = self.torch
        c, div = self.c, self.div
        t.mul(c, t.sub(1.0, c), out=div)
        div.mul_(self.rho)
        for axis, (k, flux) in enumerate(zip(self.k, self.flux)):
            n = c.shape[axis]
            hi, lo = c.narrow(axis, 1, n - 1), c.narrow(axis, 0, n - 1)
            t.sub(hi, lo, out=flux)
            flux.mul_(k)
            div.narrow(axis, 0, n - 1).add_(flux)
            div.narrow(axis, 1, n - 1).sub_(flux)
        c.add_(div, alpha=float(dt))

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
        pass
