#!/usr/bin/env python3
"""Benchmark: time and peak memory to simulate one 1 mm subject with all four contrasts.

Each subject is simulated in a fresh process (imports excluded from the time,
included in the peak resident memory, read from /proc VmHWM): MNI152 anatomy
(197×233×189) with a random diffeomorphic deformation, a Fisher–Kolmogorov
tumor of 8–60 cm³ with mass effect, labels and t1n/t1c/t2w/t2f. Writing the
case (ten NIfTI files) is timed separately.

    .venv/bin/python Testing/benchmarks/bench_simulate.py            # seeds 0 1 2
    .venv/bin/python Testing/benchmarks/bench_simulate.py --seeds 0 --spacing 1
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child(seed: int, spacing: float) -> None:
    from tumorgen.simulate import SimulationOptions, simulate_subject
    from tumorgen.simulate.writer import write_case

    started = time.perf_counter()
    subject = simulate_subject(seed, SimulationOptions(spacing_mm=spacing), case=f"bench-{seed}")
    simulated = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        write_case(subject, out)
        written = time.perf_counter() - started
    print(json.dumps({"seed": seed, "grid": list(subject.grid.size), "simulate_s": simulated, "write_s": written, "peak_mb": peak_rss_mb(),
                      "tumor_cm3": sum(subject.info["regions_cm3"].values()), "growth_days": subject.info["growth_days"]}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--spacing", type=float, default=1.0)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.spacing)
        return 0
    rows = []
    for seed in args.seeds:
        proc = subprocess.run([sys.executable, __file__, "--child", str(seed), "--spacing", str(args.spacing)], capture_output=True, text=True, check=True)
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print("| seed | grid | tumor cm³ | simulate s | write s | peak memory MB |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['seed']} | {'×'.join(map(str, r['grid']))} | {r['tumor_cm3']:.1f} | {r['simulate_s']:.1f} | {r['write_s']:.1f} | {r['peak_mb']:.0f} |")
    n = len(rows)
    print(f"| mean | | | {sum(r['simulate_s'] for r in rows) / n:.1f} | {sum(r['write_s'] for r in rows) / n:.1f} | {max(r['peak_mb'] for r in rows):.0f} (max) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
