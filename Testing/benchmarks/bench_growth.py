#!/usr/bin/env python3
"""Benchmark: Fisher–Kolmogorov growth on whole-brain 1 mm grids.

For each grid (the MNI152 sample at 197×233×189, and the same brain on a
240×240×155 box, the BraTS/SRI24 size) a tumor grows from a white-matter seed
to 40 cm³ (c ≥ 0.25) with D_w = 1 mm²/day, ρ = 0.1/day, D_g = D_w/10. Each
solver runs in its own process, so its wall time and peak memory (maximum
resident set size, imports included) are its own:

* ``reference``: tumorgen.biophysics.fk_reference, plain explicit Euler in numpy;
* ``numpy``: tumorgen's solver (the same update on the active box, threaded);
* ``torch-cpu`` and, when a GPU is present, ``torch-cuda``.

The fields are compared with the reference's: relative L2 difference, largest
absolute difference, and Dice of the c ≥ 0.25 regions.

    .venv/bin/python Testing/benchmarks/bench_growth.py            # everything
    .venv/bin/python Testing/benchmarks/bench_growth.py --skip-reference
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SEED_RAS = (-38.0, -4.0, 28.0)  # left frontal white matter of the MNI152 sample
TARGET_CM3 = 40.0
THRESHOLD = 0.25


def prepare(folder: Path) -> list[str]:
    """Write the tissue maps of both grids as .npy (plus grid JSON); return the grid names."""
    from tumorgen.anatomy.template import load_mni152
    from tumorgen.resample import resample
    from tumorgen.volume import Grid

    template = load_mni152()
    grids = {"mni-197x233x189": template.tissues.grid}
    # The same brain on a 240×240×155 box, centred on the brain's bounding box.
    brain = np.argwhere(template.brain.array)
    centre_index = (brain.min(0) + brain.max(0)) / 2.0
    centre = template.tissues.grid.index_to_lps(centre_index)
    size = (240, 240, 155)
    d = np.asarray(template.tissues.grid.direction).reshape(3, 3)
    origin = centre - d @ ((np.asarray(size) - 1) / 2.0)
    grids["box-240x240x155"] = Grid(size, (1.0, 1.0, 1.0), tuple(origin), template.tissues.grid.direction)
    for name, grid in grids.items():
        maps = [m if grid == m.grid else resample(m, grid) for m in (template.tissues.csf, template.tissues.gm, template.tissues.wm)]
        for tissue, m in zip(("csf", "gm", "wm"), maps):
            np.save(folder / f"{name}-{tissue}.npy", np.clip(m.array, 0, 1).astype(np.float32))
        (folder / f"{name}-grid.json").write_text(json.dumps(grid.__dict__))
    return list(grids)


def peak_rss_mb() -> float:
    """This process's peak resident memory, MB.

    VmHWM from /proc (Linux) is reset by exec; ``ru_maxrss`` is not (a child
    started by fork + exec inherits its parent's peak), so it is only the fallback.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child(folder: Path, name: str, solver: str, out: Path, dt: float | None, target_voxels: int | None) -> None:
    """Run one solver (in a fresh process) and write its field and measurements."""
    from tumorgen.anatomy.tissues import TissueMaps
    from tumorgen.volume import Grid, Volume

    grid = Grid(**json.loads((folder / f"{name}-grid.json").read_text()))
    arrays = [np.load(folder / f"{name}-{t}.npy") for t in ("csf", "gm", "wm")]
    tissues = TissueMaps(*(Volume(a, grid) for a in arrays))
    from tumorgen.biophysics import fk

    params = fk.GrowthParams(d_white=1.0, rho=0.1, gm_ratio=0.1)
    if solver == "reference":
        from tumorgen.biophysics.fk_reference import grow_reference

        d = fk.diffusivity(tissues, params)
        c0 = fk.seed_field(grid, fk.seed_index(grid, ras=SEED_RAS), d > 0)
        started = time.perf_counter()
        field, steps = grow_reference(d, c0, grid.spacing, params.rho, dt, target_voxels=target_voxels, threshold=THRESHOLD)
        seconds = time.perf_counter() - started
        days = steps * dt
    else:
        backend, device = {"numpy": ("numpy", None), "torch-cpu": ("torch", "cpu"), "torch-cuda": ("torch", "cuda")}[solver]
        if backend == "torch":
            import torch

            if device == "cuda":  # warm up CUDA outside the timing
                torch.zeros(1, device="cuda").sum().item()
        started = time.perf_counter()
        result = fk.grow(tissues, params, seed_ras=SEED_RAS, target_volume_cm3=TARGET_CM3, threshold=THRESHOLD, backend=backend, device=device)
        seconds = time.perf_counter() - started
        field, steps, days, dt = result.concentration.array, result.steps, result.days, result.dt
    peak_mb = peak_rss_mb()
    np.save(out, field.astype(np.float32))
    (out.with_suffix(".json")).write_text(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "steps": steps, "days": days, "dt": dt,
                                                      "volume_cm3": float(np.count_nonzero(field >= THRESHOLD)) * grid.voxel_volume_mm3 / 1000}))


def run_child(folder: Path, name: str, solver: str, dt=None, target_voxels=None) -> tuple[dict, np.ndarray]:
    out = folder / f"{name}-{solver}-field.npy"
    cmd = [sys.executable, __file__, "--child", str(folder), name, solver, str(out), json.dumps([dt, target_voxels])]
    subprocess.run(cmd, check=True)
    return json.loads(out.with_suffix(".json").read_text()), np.load(out)


def compare(field: np.ndarray, ref: np.ndarray) -> dict:
    a, b = field >= THRESHOLD, ref >= THRESHOLD
    return {
        "rel_l2": float(np.linalg.norm(field - ref) / np.linalg.norm(ref)),
        "max_abs": float(np.abs(field - ref).max()),
        "dice": float(2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))),
    }


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        folder, name, solver, out, extra = sys.argv[2:7]
        dt, target_voxels = json.loads(extra)
        child(Path(folder), name, solver, Path(out), dt, target_voxels)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-reference", action="store_true", help="do not run the (slow) reference")
    parser.add_argument("--grids", nargs="*", help="only these grids (default: both)")
    args = parser.parse_args()
    import torch

    solvers = ["numpy", "torch-cpu"] + (["torch-cuda"] if torch.cuda.is_available() else [])
    rows = []
    with tempfile.TemporaryDirectory(prefix="tumorgen-bench-") as tmp:
        folder = Path(tmp)
        for name in prepare(folder):
            if args.grids and name not in args.grids:
                continue
            results = {s: run_child(folder, name, s) for s in solvers}
            ref = None
            if not args.skip_reference:
                fast = results["numpy"][0]
                voxels = int(round(fast["volume_cm3"] * 1000))  # 1 mm³ voxels: stop where the fast solver stopped
                results["reference"] = run_child(folder, name, "reference", dt=fast["dt"], target_voxels=voxels)
                ref = results["reference"][1]
            base = results.get("reference", (None,))[0]
            for solver, (m, field) in results.items():
                row = {"grid": name, "solver": solver, **m}
                if ref is not None:
                    row.update(compare(field, ref))
                    row["speedup"] = base["seconds"] / m["seconds"]
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    print(f"\nFisher–Kolmogorov growth to {TARGET_CM3:g} cm³ (c ≥ {THRESHOLD}), D_w 1 mm²/day, ρ 0.1/day, D_g = D_w/10, seed RAS {SEED_RAS}")
    print("\n| grid | solver | days | steps | wall time (s) | peak memory (MB) | speed-up vs reference | rel. L2 vs reference | Dice c≥0.25 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['grid']} | {r['solver']} | {r['days']:.1f} | {r['steps']} | {r['seconds']:.2f} | {r['peak_mb']:.0f} | "
              f"{r.get('speedup', float('nan')):.1f}× | {r.get('rel_l2', float('nan')):.1e} | {r.get('dice', float('nan')):.4f} |")
    print("\ncommand: .venv/bin/python Testing/benchmarks/bench_growth.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
