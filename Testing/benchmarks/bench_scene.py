"""Time the presenter's user actions on a headless MRML scene (slicer-core), as the front ends run them.

    .venv/bin/python Testing/benchmarks/bench_scene.py [--spacing 1] [--out scene-timings.json]

Loads the sample, grows a 12 cm³ tumor from the demo's seed, fits the box to it,
makes one edit, and inpaints healthy tissue in the box with the default settings.
Each number is the wall time from the action to its nodes being in the scene.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spacing", type=float, default=1.0, help="sample voxel size, mm")
    parser.add_argument("--out", help="write the timings as JSON here")
    args = parser.parse_args()

    from tumorgen.cli.demo import DEMO_SEED_RAS
    from tumorgen_slicer.context import SceneContext
    from tumorgen_slicer.box import ras_bounds
    from tumorgen_slicer.presenter import TumorGenPresenter

    timings = {}
    ctx = SceneContext.headless()
    with tempfile.TemporaryDirectory() as work:
        p = TumorGenPresenter(ctx, work_dir=work)

        def timed(label, action, wait=True):
            started = time.perf_counter()
            assert action(), p.state.error
            if wait:
                assert p.wait(timeout=1800) == "done", p.state.error
            timings[label] = round(time.perf_counter() - started, 2)
            print(f"{label:<40} {timings[label]:7.2f} s", flush=True)

        timed("load the sample", lambda: p.load_sample(spacing_mm=args.spacing))
        p.set_seed(DEMO_SEED_RAS)
        p.configure({"target_volume_cm3": 12.0})
        timed("grow 12 cm³ from the seed", p.grow)
        timed("create the box around the tumor", p.create_box, wait=False)
        timed("add a blob (edit)", lambda: p.add_blob(DEMO_SEED_RAS), wait=False)
        timed("undo the edit", p.undo, wait=False)
        p.configure({"mode": "healthy"})
        timed("healthy inpainting in the box (defaults)", p.inpaint)
        bounds = ras_bounds(p.box)
        timings["box size mm"] = [round(bounds[1] - bounds[0], 1), round(bounds[3] - bounds[2], 1), round(bounds[5] - bounds[4], 1)]
    timings["spacing_mm"] = args.spacing
    if args.out:
        with open(args.out, "w") as f:
            json.dump(timings, f, indent=2)


if __name__ == "__main__":
    main()
