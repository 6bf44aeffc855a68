#!/usr/bin/env python3
"""Speed of the Fisher–Kolmogorov solvers on one grid, measured in one process.

:func:`fk_rows` grows a tumor for ``days`` (65 by default) from a white-matter
seed and returns one dict per measurement:

* ``section="grow"``: ``numpy`` (active box, CPU threads), ``torch-eager`` (the
  torch default without compiling: active box on the CPU, whole grid on CUDA),
  ``torch-fused`` (compiled step, whole grid) and, on CUDA, ``torch-eager-box``
  (the active box, which reads the field back every few steps). Each row has
  the steps, the best of ``repeats`` wall times (compiled paths after a warm-up
  run; ``compile_seconds`` is the warm-up's extra time), steps per second and
  the field's difference from the numpy one. On CUDA, whole-grid rows also
  have the memory-bandwidth bound: bytes per step (read ``c`` and the three
  conductance arrays, write ``c``; float32) over the device-to-device copy
  bandwidth measured on the device, and the achieved fraction of that bound.
  The voxels counted are those stepped, the tissue domain's bounding box
  (``voxels_stepped``); ``bytes_per_step_full_grid`` is the same for the whole
  image. The active-box rows have no bound (their box changes during the run).
* ``section="target"``: the same solvers stopping at the volume numpy reached
  after ``days`` (the chunked volume check on the whole-grid path); the steps
  must equal numpy's.
* ``section="batch"``: :func:`tumorgen.biophysics.fk.grow_batch` of ``batch``
  tumors (seeds 10 mm apart in white matter around the first) against
  ``batch`` single runs with the same solver: seconds, ratio, differences;
  ``section="batch-target"``: the same with one target volume per tumor (each
  tumor's volume at ``days / 2``), timed once.
* ``section="reference"`` (``reference=True``): the plain explicit-Euler
  solver, :func:`tumorgen.biophysics.fk_reference.grow_reference` (float64,
  whole grid; minutes on a CPU), its time over numpy's and the relative L2
  difference of the fields.

A row that fails records ``error`` instead of stopping the others.

    .venv/bin/python Testing/benchmarks/speed_fk.py --device cuda --out speed-fk.json
    .venv/bin/python Testing/benchmarks/speed_fk.py --device cpu --out speed-fk.json --no-reference --batch 2 --repeats 1
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import time
import traceback
from typing import Callable

import numpy as np

#: Left frontal white matter of the MNI152 sample.
SEED_RAS = (-38.0, -4.0, 28.0)
THRESHOLD = 0.25
#: The benchmarks' model: D_w 1 mm²/day, ρ 0.1/day, D_g = D_w/10.
PARAMS = dict(d_white=1.0, rho=0.1, gm_ratio=0.1)


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def _timed(run: Callable, device: str):
    _sync(device)
    started = time.perf_counter()
    out = run()
    _sync(device)
    return out, time.perf_counter() - started


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}"


def copy_bandwidth(device: str = "cuda", mib: int = 1024, repeats: int = 5) -> float:
    """Device-to-device copy bandwidth in bytes/s (read + write), best of ``repeats``."""
    import torch

    n = mib * 2**20 // 4
    src = torch.ones(n, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    best = math.inf
    for _ in range(repeats):
        _sync(device)
        started = time.perf_counter()
        dst.copy_(src)
        _sync(device)
        best = min(best, time.perf_counter() - started)
    del src, dst
    return 2 * n * 4 / best


def white_matter_seeds(tissues, first=SEED_RAS, count: int = 8, spacing_mm: float = 10.0) -> list[tuple[float, float, float]]:
    """``count`` seeds (RAS mm) on a ``spacing_mm`` lattice around ``first``, nearest first, in white matter."""
    from tumorgen.biophysics import fk

    grid = tissues.grid
    wm = tissues.wm.array
    domain = tissues.tissue_mask().array
    offsets = sorted(itertools.product((-1, 0, 1, -2, 2), repeat=3), key=lambda o: (sum(v * v for v in o), o))
    seeds, voxels = [], set()
    for o in offsets:
        ras = tuple(float(f + spacing_mm * v) for f, v in zip(first, o))
        try:
            voxel = fk.seed_index(grid, ras=ras)
        except Exception:
            continue
        if voxel in voxels or not domain[voxel] or wm[voxel] < 0.5:
            continue
        seeds.append(ras)
        voxels.add(voxel)
        if len(seeds) == count:
            break
    return seeds


def fk_rows(tissues, device: str, days: float = 65.0, batch: int = 8, reference: bool = True, *,
            seed_ras=SEED_RAS, seed_spacing_mm: float = 10.0, repeats: int = 2, targets: bool = True) -> list[dict]:
    """Measure the solvers on ``tissues`` (see the module docstring); one dict per row."""
    import torch

    from tumorgen.biophysics import fk

    params = fk.GrowthParams(**PARAMS)
    cuda = device == "cuda"
    rows: list[dict] = []
    fields: dict[str, np.ndarray] = {}
    grid = tissues.grid
    common = dict(device=device, grid="x".join(map(str, grid.size)), days=days)

    try:
        if cuda:
            torch.zeros(1, device="cuda").sum().item()  # start CUDA outside the timings
        d = fk.diffusivity(tissues, params)
        box = fk._domain_box(d > 0)
        stepped = int(np.prod([s.stop - s.start for s in box]))
    except Exception as exc:
        return [{**common, "section": "setup", "solver": "setup", "error": _error(exc), "traceback": traceback.format_exc()[-2000:]}]
    bandwidth = None
    if cuda:
        try:
            bandwidth = copy_bandwidth("cuda")
        except Exception as exc:
            common["bandwidth_error"] = _error(exc)
    # read c and the three conductance arrays, write c (float32)
    bytes_per_step = 5 * 4 * stepped

    def bound(row: dict, tumors: int = 1) -> None:
        if bandwidth is None or "steps_per_second" not in row:
            return
        row["copy_bandwidth_gb_s"] = bandwidth / 1e9
        row["bytes_per_step"] = bytes_per_step * tumors
        row["voxels_stepped"] = stepped * tumors
        row["bytes_per_step_full_grid"] = 5 * 4 * grid.num_voxels * tumors
        row["bound_steps_per_second"] = bandwidth / (bytes_per_step * tumors)
        row["achieved_fraction_of_bound"] = row["steps_per_second"] / row["bound_steps_per_second"]

    def measure(row: dict, run: Callable, warmup: bool):
        """Best-of-``repeats`` timing into ``row``; returns the last result."""
        times = []
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        if warmup:
            _, first = _timed(run, device)
            row["first_run_seconds"] = first
        for _ in range(max(1, repeats)):
            result, seconds = _timed(run, device)
            times.append(seconds)
        row["seconds"] = min(times)
        if cuda:
            row["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
        if warmup:
            row["compile_seconds"] = max(0.0, row["first_run_seconds"] - row["seconds"])
        return result

    solvers = {"numpy": dict(backend="numpy")}
    solvers["torch-eager"] = dict(backend="torch", device=device, fused=False)
    if cuda:
        solvers["torch-eager-box"] = dict(backend="torch", device=device, fused=False, whole_grid=False)
    solvers["torch-fused"] = dict(backend="torch", device=device, fused=True, whole_grid=True)
    whole = {"torch-eager": cuda, "torch-eager-box": False, "torch-fused": True, "numpy": False}
    results = {}
    # the batch and the single runs it is compared with use the same solver
    config = dict(device=device, threshold=THRESHOLD) if cuda else dict(device=device, fused=False, threshold=THRESHOLD)
    single = dict(backend="torch", device=device, fused=cuda, whole_grid=True, threshold=THRESHOLD)

    def measure_batch(row: dict, run_batch: Callable, run_single: Callable, n: int, best_of: bool):
        """Time the batch (best of ``repeats`` after a warm-up on CUDA when ``best_of``, else once) and ``n`` single runs."""
        if best_of:
            together = measure(row, run_batch, warmup=cuda)
        else:
            together, row["seconds"] = _timed(run_batch, device)
        singles, row["singles_seconds"] = _timed(lambda: [run_single(i) for i in range(n)], device)
        row["singles_solver"] = "torch-fused (whole grid)" if cuda else "torch-eager (whole grid)"
        row["singles_over_batch"] = row["singles_seconds"] / row["seconds"]
        row["steps_equal_singles"] = all(a.steps == b.steps for a, b in zip(together, singles))
        row["max_abs_vs_singles"] = float(max(np.abs(a.concentration.array - b.concentration.array).max() for a, b in zip(together, singles)))
        return together, singles

    # (a) a fixed time
    for name, kwargs in solvers.items():
        row = {**common, "section": "grow", "solver": name, "whole_grid": whole[name]}
        try:
            fused_before = fk._FUSED_FAILURE
            result = measure(row, lambda: fk.grow(tissues, params, seed_ras=seed_ras, days=days, threshold=THRESHOLD, **kwargs),
                             warmup=name == "torch-fused")
            results[name] = result
            fields[name] = result.concentration.array
            row.update(steps=result.steps, dt=result.dt, volume_cm3=result.volume_cm3, steps_per_second=result.steps / row["seconds"])
            if name == "torch-fused":
                row["compiled"] = fk._FUSED_FAILURE is None
                if fk._FUSED_FAILURE is not None and fused_before is None:
                    row["compile_error"] = fk._FUSED_FAILURE
            if whole[name]:
                bound(row)
            if name != "numpy" and "numpy" in fields:
                diff = fields[name] - fields["numpy"]
                row["max_abs_vs_numpy"] = float(np.abs(diff).max())
                row["rel_l2_vs_numpy"] = float(np.linalg.norm(diff) / max(np.linalg.norm(fields["numpy"]), 1e-30))
        except Exception as exc:
            row["error"] = _error(exc)
            row["traceback"] = traceback.format_exc()[-2000:]
        rows.append(row)

    # the same solvers stopping at the volume numpy reached
    if targets and "numpy" in results:
        target = results["numpy"].volume_cm3
        for name, kwargs in solvers.items():
            row = {**common, "section": "target", "solver": name, "whole_grid": whole[name], "target_cm3": target}
            try:
                result = measure(row, lambda: fk.grow(tissues, params, seed_ras=seed_ras, target_volume_cm3=target, threshold=THRESHOLD,
                                                      **kwargs), warmup=name == "torch-fused")
                row.update(steps=result.steps, days_reached=result.days, volume_cm3=result.volume_cm3,
                           steps_per_second=result.steps / row["seconds"])
                if name != "numpy":
                    row["steps_equal_numpy"] = result.steps == row_steps(rows, "target", "numpy")
                if whole[name]:
                    bound(row)
            except Exception as exc:
                row["error"] = _error(exc)
                row["traceback"] = traceback.format_exc()[-2000:]
            rows.append(row)

    # (b) a batch against single runs with the same solver
    if batch and batch > 0:
        row = {**common, "section": "batch", "solver": "grow_batch", "batch": batch}
        seeds = []
        try:
            seeds = white_matter_seeds(tissues, seed_ras, batch, seed_spacing_mm)
            row.update(batch=len(seeds), seeds_ras=seeds)
            together, _ = measure_batch(row, lambda: fk.grow_batch(tissues, params, seeds_ras=seeds, days=days, **config),
                                        lambda i: fk.grow(tissues, params, seed_ras=seeds[i], days=days, **single), len(seeds), True)
            row["steps"] = together[0].steps
            row["steps_per_second"] = row["steps"] / row["seconds"]
            bound(row, tumors=len(seeds))
        except Exception as exc:
            row["error"] = _error(exc)
            row["traceback"] = traceback.format_exc()[-2000:]
        rows.append(row)
        if targets and seeds:
            # per-tumor targets: each tumor's volume at half the time
            row = {**common, "section": "batch-target", "solver": "grow_batch", "batch": len(seeds)}
            try:
                half = fk.grow_batch(tissues, params, seeds_ras=seeds, days=days / 2, **config)
                goals = [max(r.volume_cm3, 0.1) for r in half]
                row["targets_cm3"] = goals
                together, _ = measure_batch(
                    row, lambda: fk.grow_batch(tissues, params, seeds_ras=seeds, target_volumes_cm3=goals, **config),
                    lambda i: fk.grow(tissues, params, seed_ras=seeds[i], target_volume_cm3=goals[i], **single), len(seeds), False)
                row["steps"] = [r.steps for r in together]
            except Exception as exc:
                row["error"] = _error(exc)
                row["traceback"] = traceback.format_exc()[-2000:]
            rows.append(row)

    # (c) the plain explicit-Euler reference
    if reference:
        row = {**common, "section": "reference", "solver": "reference"}
        try:
            from tumorgen.biophysics.fk_reference import grow_reference

            c0 = fk.seed_field(grid, fk.seed_index(grid, ras=seed_ras), d > 0)
            dt = results["numpy"].dt if "numpy" in results else fk._time_step(d, grid, params)
            (field, steps), row["seconds"] = _timed(lambda: grow_reference(d, c0, grid.spacing, params.rho, dt, days=days), "cpu")
            row["steps"] = steps
            row["steps_per_second"] = steps / row["seconds"]
            norm = max(float(np.linalg.norm(field)), 1e-30)
            for name, f in fields.items():
                row[f"rel_l2_{name}_vs_reference"] = float(np.linalg.norm(f - field) / norm)
            numpy_row = next((r for r in rows if r["section"] == "grow" and r["solver"] == "numpy" and "seconds" in r), None)
            if numpy_row is not None:
                row["reference_over_numpy"] = row["seconds"] / numpy_row["seconds"]
                numpy_row["speedup_vs_reference"] = row["reference_over_numpy"]
                numpy_row["rel_l2_vs_reference"] = row["rel_l2_numpy_vs_reference"]
        except Exception as exc:
            row["error"] = _error(exc)
            row["traceback"] = traceback.format_exc()[-2000:]
        rows.append(row)
    return rows


def row_steps(rows: list[dict], section: str, solver: str):
    return next((r.get("steps") for r in rows if r["section"] == section and r["solver"] == solver), None)


def environment(device: str) -> dict:
    """What the numbers were measured on."""
    import platform

    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "device": device}
    if device == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        try:
            import triton

            info["triton"] = triton.__version__
        except Exception as exc:
            info["triton"] = _error(exc)
    return info


def box_tissues(size=(240, 240, 155)):
    """The MNI152 sample's tissue maps resampled onto a 1 mm box of ``size`` centred on the brain (the BraTS/SRI24 size by default)."""
    from tumorgen.anatomy.template import load_mni152
    from tumorgen.anatomy.tissues import TissueMaps
    from tumorgen.resample import resample
    from tumorgen.volume import Grid, Volume

    template = load_mni152()
    brain = np.argwhere(template.brain.array)
    centre = template.tissues.grid.index_to_lps((brain.min(0) + brain.max(0)) / 2.0)
    direction = np.asarray(template.tissues.grid.direction).reshape(3, 3)
    origin = centre - direction @ ((np.asarray(size) - 1) / 2.0)
    grid = Grid(tuple(size), (1.0, 1.0, 1.0), tuple(origin), template.tissues.grid.direction)
    maps = [resample(m, grid) for m in (template.tissues.csf, template.tissues.gm, template.tissues.wm)]
    return TissueMaps(*(Volume(np.clip(m.array, 0, 1).astype(np.float32), grid) for m in maps))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if _cuda_available() else "cpu")
    parser.add_argument("--out", help="write {environment, rows} as JSON here")
    parser.add_argument("--days", type=float, default=65.0)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--no-reference", action="store_true", help="skip the plain explicit-Euler reference (minutes on a CPU)")
    parser.add_argument("--no-targets", action="store_true", help="skip the target-volume rows")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per row, the best is reported (default 2)")
    parser.add_argument("--size", type=int, nargs=3, default=(240, 240, 155), metavar=("X", "Y", "Z"), help="grid size (1 mm)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        env = environment(args.device)
        tissues = box_tissues(tuple(args.size))
        rows = fk_rows(tissues, args.device, days=args.days, batch=args.batch, reference=not args.no_reference,
                       targets=not args.no_targets, repeats=args.repeats)
    except Exception as exc:
        env = locals().get("env", {})
        rows = [{"section": "setup", "solver": "setup", "error": _error(exc), "traceback": traceback.format_exc()[-4000:]}]
    report = {"environment": env, "total_seconds": time.perf_counter() - started, "rows": rows}
    text = json.dumps(report, indent=1, default=float)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    for row in rows:
        brief = {k: v for k, v in row.items() if k != "traceback"}
        print(json.dumps(brief, default=float), file=sys.stderr, flush=True)
    return 1 if any("error" in r for r in rows) else 0


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:
        return False


if __name__ == "__main__":
    sys.exit(main())
