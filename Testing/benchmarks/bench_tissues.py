#!/usr/bin/env python3
"""Benchmark: tissue maps for a T1 by registering the MNI152 template (full 1 mm).

For each seed, a synthetic subject is made from the 1 mm MNI152 sample
(197×233×189): a random affine (±6°, ±6 %, ±6 mm) composed with a B-spline
displacement (σ 3 mm at 40 mm control spacing), a bias field, a gamma change
and noise (tumorgen.anatomy.deform). Its true tissue maps are the template's
maps through the same transform. The template is then registered back to the
subject (affine only, and affine + demons, the default) with the cache off, and
the carried maps are compared with the truth: Dice of the hard CSF/GM/WM labels
and of the brain mask. Times are wall seconds on this machine: registration,
carrying the maps onto the 1 mm grid, and a second call that hits the cache.

    .venv/bin/python Testing/benchmarks/bench_tissues.py               # seeds 1 2 3
    .venv/bin/python Testing/benchmarks/bench_tissues.py --seeds 1 --json
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time

import numpy as np


def run(seeds: list[int]) -> list[dict]:
    from tumorgen.anatomy.deform import deformed_subject, tissue_dice
    from tumorgen.anatomy.registration import RegistrationSettings, register_template, tissues_for_subject, carry_tissues
    from tumorgen.anatomy.template import load_mni152

    template = load_mni152()
    rows = []
    for seed in seeds:
        subject = deformed_subject(template.t1, template.tissues, seed=seed)
        row = {"seed": seed, "identity": tissue_dice(template.tissues, subject.tissues)}
        for name, settings in (("affine", RegistrationSettings(deformable=False)), ("deformable", RegistrationSettings())):
            started = time.perf_counter()
            registration = register_template(subject.t1, None, settings=settings, use_cache=False)
            registered = time.perf_counter()
            maps = carry_tissues(registration.transform, subject.t1)
            done = time.perf_counter()
            row[name] = tissue_dice(maps, subject.tissues)
            row[f"{name}_register_s"] = registered - started
            row[f"{name}_carry_s"] = done - registered
        with tempfile.TemporaryDirectory() as cache:
            tissues_for_subject(subject.t1, None, cache_dir=cache)
            started = time.perf_counter()
            tissues_for_subject(subject.t1, None, cache_dir=cache)
            row["cached_call_s"] = time.perf_counter() - started
        rows.append(row)
        print(f"seed {seed}: " + json.dumps({k: (round(v, 3) if isinstance(v, float) else {a: round(b, 3) for a, b in v.items()} if isinstance(v, dict) else v) for k, v in row.items()}), file=sys.stderr, flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| seed | stage | CSF | GM | WM | brain | register s | carry s |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        for stage in ("identity", "affine", "deformable"):
            d = row[stage]
            times = ("", "") if stage == "identity" else (f"{row[f'{stage}_register_s']:.1f}", f"{row[f'{stage}_carry_s']:.1f}")
            lines.append(f"| {row['seed']} | {stage} | {d['csf']:.3f} | {d['gm']:.3f} | {d['wm']:.3f} | {d['brain']:.3f} | {times[0]} | {times[1]} |")
    mean = {s: {k: float(np.mean([r[s][k] for r in rows])) for k in ("csf", "gm", "wm", "brain")} for s in ("identity", "affine", "deformable")}
    for stage, d in mean.items():
        if stage == "identity":
            times = ("", "")
        else:
            times = (f"{np.mean([r[f'{stage}_register_s'] for r in rows]):.1f}", f"{np.mean([r[f'{stage}_carry_s'] for r in rows]):.1f}")
        lines.append(f"| mean | {stage} | {d['csf']:.3f} | {d['gm']:.3f} | {d['wm']:.3f} | {d['brain']:.3f} | {times[0]} | {times[1]} |")
    cached = np.mean([r["cached_call_s"] for r in rows])
    lines.append("")
    lines.append(f"second call with the cache: {cached:.1f} s; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="deformation seeds (default 1 2 3)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a Markdown table")
    args = parser.parse_args()
    rows = run(args.seeds)
    print(json.dumps(rows, indent=2) if args.json else table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
