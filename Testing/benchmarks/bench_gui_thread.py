"""How long the desktop module holds the GUI thread: every call Slicer's event loop makes into it during runs.

    PYTHONPATH=Testing/support .venv/bin/python Testing/benchmarks/bench_gui_thread.py [--spacing 1] \
        [--out Resources/Benchmarks/gui-thread.json]

Runs TumorGen's module in the Slicer stand-in (Testing/support/slicer_stand_in: Slicer's own Python, stand-in Qt
widgets, the real MRML scene) with this interpreter as the backend, and clicks through the run path as a user
would: *Load the sample* at 1 mm (this interpreter chosen as the backend, so the first run of each task checks it), *Grow* from the demo's seed, *Create box*, *Apply* (healthy inpainting, few
steps) and *Synthesize* (few steps). Each button click and each event-loop pass (the 100 ms poll timer: job
events, loading one output, refreshing the panel) is timed on its own; the target is that none takes more than
100 ms. Slicer's own rendering of the new nodes is not part of it (the stand-in has no views).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "Testing" / "support"), str(ROOT / "TumorGenLib")]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spacing", type=float, default=1.0, help="the sample's voxel size, mm")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()

    from slicer_stand_in import SlicerStandIn
    from slicer_stand_in import qt as stand_in_qt
    from slicer_stand_in.testing import module_paths

    from tumorgen.cli.demo import DEMO_SEED_RAS

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as work, SlicerStandIn() as env:
        module = env.load_module(module_paths()[0])
        module.create_widget()
        module.setup()
        module.enter()
        widget = module.widget
        presenter = widget.presenter
        presenter.runs.work_dir = Path(work)
        widget._parameterNode.use_slicer_python = False  # Backend > Other interpreter: this one
        widget._parameterNode.python = Path(sys.executable)
        assert presenter.state.python == sys.executable, presenter.state.error

        def action(label: str, click) -> None:
            calls: list[tuple[str, float]] = []
            started = time.perf_counter()
            click()
            calls.append(("click", time.perf_counter() - started))
            assert presenter.busy and not presenter.state.error, f"{label} did not start: {presenter.state.error}"
            while presenter.busy:
                time.sleep(0.01)
                begin = time.perf_counter()
                fired = stand_in_qt.process_timers()
                if fired:
                    calls.append((presenter.state.message[:60], time.perf_counter() - begin))
            assert presenter.state.last_status == "done", presenter.state.error
            ms = [1000 * seconds for _, seconds in calls]
            worst = max(range(len(calls)), key=lambda n: calls[n][1])
            results[label] = {"calls": len(calls), "max_ms": round(max(ms), 1), "median_ms": round(statistics.median(ms), 1),
                              "over_100_ms": sum(m > 100 for m in ms), "slowest": calls[worst][0] or "poll",
                              "wall_s": round(time.perf_counter() - started, 1)}
            print(f"{label:<34} {len(calls):5d} calls  max {max(ms):6.1f} ms  median {statistics.median(ms):5.1f} ms  "
                  f"over 100 ms: {results[label]['over_100_ms']}  (slowest: {results[label]['slowest']})", flush=True)

        ui = widget.ui
        action("load the sample", lambda: presenter.load_sample(spacing_mm=args.spacing))
        presenter.set_seed(DEMO_SEED_RAS)
        widget._parameterNode.target_volume_cm3 = 12.0
        action("grow 12 cm³ (Grow)", ui.growButton.click)
        ui.createBoxButton.click()
        widget._parameterNode.mode = "healthy"
        widget._parameterNode.steps = 5
        action("healthy inpainting, 5 steps (Apply)", ui.applyButton.click)
        widget._parameterNode.synthesis_steps = 5
        action("synthesis, 5 steps (Synthesize)", ui.synthesizeButton.click)
        module.exit()
        module.unload()
    report = {"spacing_mm": args.spacing, "cpu": cpu_name(), "cores": __import__("os").cpu_count(), "actions": results,
              "max_ms": max(r["max_ms"] for r in results.values())}
    print(f"worst GUI-thread call: {report['max_ms']} ms on {report['cpu']}")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
