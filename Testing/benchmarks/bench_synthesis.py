#!/usr/bin/env python3
"""Label-map synthesis on held-out simulated label maps: per-contrast fidelity, tumor-region contrasts, dataset throughput.

**Fidelity** (``--data``). Held-out subjects simulated with ``--healthy-reference``
(simulated here with ``--simulate DIR`` unless they exist; no subject of these
seeds trains anything):

* ``folded``: seeds 7500 + n, 2.5 mm folds and varied imaging (the generator
  trained on 1.5 mm folds, seeds 2300 + n);
* ``plain``: seeds 7501 + n, the simulator's standard anatomy and imaging.

Each case's healthy t1n (the same subject before its tumor, imaged with the
same draws) and its label map go to :func:`tumorgen.synthesis.synthesize.synthesize`;
the four synthesized contrasts are scored against the simulator's four
contrasts with the tumor (PSNR inside the brain; SSIM and MS-SSIM on the
brain's box, :mod:`tumorgen.synthesis.metrics`). Baselines that need no
generator: ``healthy-t1n`` (the healthy t1n given as every contrast: what
anatomy alone scores on structure metrics) and ``healthy-oracle`` (the
subject's own healthy t1c/t2w/t2f, which no user has: the score of everything
but the tumor). The tumor regions' mean intensity relative to normal-appearing
white matter is compared with the truth's, and the relationships of
:data:`tumorgen.synthesis.metrics.RELATIONS` are counted.

**Throughput** (``--throughput N``): ``tumorgen dataset``'s builder makes N
cases (new tumors grown by Fisher–Kolmogorov in the bundled sample) in this
process with all cores (``--workers 0``, PyTorch threads = cores), and on a local
Ray with 1, 2 and 4 workers of one thread each; cases per hour and the ratios,
measured in one run on this machine (its core count is reported).

    .venv/bin/python Testing/benchmarks/bench_synthesis.py --simulate /work/data --out synthesis.json --figure synthesis.png
    .venv/bin/python Testing/benchmarks/bench_synthesis.py --throughput 4 --out synthesis.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SETS = {"folded": dict(seed=7500, prefix="TGSH", folder="synth-held-folded", extra=["--varied-imaging", "--fold", "2.5"]),
        "plain": dict(seed=7501, prefix="TGSP", folder="synth-held-plain", extra=[])}
CONTRASTS = ("t1n", "t1c", "t2w", "t2f")


def simulate(root: Path, n: int) -> dict[str, Path]:
    folders = {}
    for name, spec in SETS.items():
        folder = root / spec["folder"]
        if not folder.is_dir():
            subprocess.run([sys.executable, "-m", "tumorgen.cli.main", "simulate", "--n", str(n), "--seed", str(spec["seed"]), "--prefix",
                            spec["prefix"], "--out", str(folder), "--healthy-reference", "--quiet", *spec["extra"]], check=True)
        folders[name] = folder
    return folders


def fidelity(folders: dict[str, Path], weights: str | None, steps: int, device: str, figure: Path | None, whole: bool = False,
             max_cases: int | None = None) -> dict:
    from tumorgen.synthesis.metrics import image_metrics, region_means, relations_hold
    from tumorgen.synthesis.synthesize import SynthesisModel, SynthesisSettings, synthesize
    from tumorgen.volume_io import read_volume

    model = SynthesisModel(weights, device=device)
    if whole:
        model.windows = False
    rows, shown = [], None
    for set_name, folder in folders.items():
        for case in sorted(p for p in folder.iterdir() if p.is_dir())[:max_cases]:
            read = lambda suffix: read_volume(case / f"{case.name}-{suffix}.nii.gz")  # noqa: E731
            healthy, seg = read("t1n-healthy"), read("seg")
            truth = {c: read(c).array for c in CONTRASTS}
            from tumorgen.synthesis.synthesize import normalise

            started = time.perf_counter()
            # the default (2 samples) is the mean of the draws with seeds 0 and 1: one pass scores both
            draws = [synthesize(model, healthy, seg, SynthesisSettings(steps=steps, seed=k, samples=1)) for k in range(2)]
            seconds = time.perf_counter() - started
            brain = (truth["t1n"] > 0) | (healthy.array > 0)
            wm = read("tissue-wm").array
            single = {c: draws[0].images[c].array for c in CONTRASTS}
            made = {c: (draws[0].images[c].array + draws[1].images[c].array) / 2 for c in CONTRASTS}
            for images in (single, made):  # the t1n comes back in the scan's units: BraTS-normalise it
                images["t1n"] = normalise(images["t1n"], images["t1n"] > 0)[0]
            healthy_norm = normalise(healthy.array, healthy.array > 0)[0]
            oracle = {c: read(f"{c}-healthy").array for c in CONTRASTS}
            row = {"set": set_name, "case": case.name, "seconds": round(seconds, 1), "tumor_cm3": round(float((seg.array > 0).sum()) / 1000, 1)}
            for method, images in (("tumorgen", made), ("tumorgen-1", single), ("healthy-t1n", {c: healthy_norm for c in CONTRASTS}),
                                   ("healthy-oracle", oracle)):
                row[method] = {c: {k: round(v, 4) for k, v in image_metrics(images[c], truth[c], brain).items()} for c in CONTRASTS}
            spacing = healthy.spacing
            means = {c: region_means(made[c], seg.array, wm, spacing) for c in CONTRASTS}
            true_means = {c: region_means(truth[c], seg.array, wm, spacing) for c in CONTRASTS}
            row["regions"] = {"tumorgen": {c: {k: round(v / means[c]["wm"], 3) for k, v in means[c].items()} for c in CONTRASTS},
                              "truth": {c: {k: round(v / true_means[c]["wm"], 3) for k, v in true_means[c].items()} for c in CONTRASTS}}
            row["relations"] = {"tumorgen": relations_hold(means), "truth": relations_hold(true_means)}
            rows.append(row)
            print(json.dumps({"case": case.name, "seconds": row["seconds"],
                              "ms_ssim": {c: row["tumorgen"][c]["ms_ssim"] for c in CONTRASTS}}), flush=True)
            if shown is None:
                shown = (case.name, truth, made, seg.array)
    summary = {}
    for set_name in [*folders, "all"]:
        chosen = [r for r in rows if set_name in ("all", r["set"])]
        summary[set_name] = {method: {c: {k: round(float(np.mean([r[method][c][k] for r in chosen])), 4) for k in ("psnr", "ssim", "ms_ssim")}
                                      for c in CONTRASTS} for method in ("tumorgen", "tumorgen-1", "healthy-t1n", "healthy-oracle")}
    relations: dict = {}
    for who in ("tumorgen", "truth"):
        keys = rows[0]["relations"][who].keys()
        relations[who] = {k: f"{sum(1 for r in rows if r['relations'][who][k])}/{sum(1 for r in rows if r['relations'][who][k] is not None)}"
                          for k in keys}
    region_ratio = {who: {c: {k: round(float(np.nanmean([r["regions"][who][c][k] for r in rows])), 3) for k in ("necrosis", "enhancing", "edema")}
                          for c in CONTRASTS} for who in ("tumorgen", "truth")}
    if figure is not None and shown is not None:
        draw_figure(figure, *shown)
    return {"cases": rows, "summary": summary, "relations": relations, "region_ratio_to_wm": region_ratio, "steps": steps,
            "generator_on": "windows" if model.windows else "whole box",
            "seconds_per_case_mean": round(float(np.mean([r["seconds"] for r in rows])), 1)}


def draw_figure(path: Path, case: str, truth: dict, made: dict, seg: np.ndarray) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    z = int(np.argwhere(seg > 0)[:, 2].mean())
    fig, axes = plt.subplots(2, 5, figsize=(12.5, 5.4))
    for row, (label, images) in enumerate((("simulated truth", truth), ("TumorGen", made))):
        for col, c in enumerate(CONTRASTS):
            ax = axes[row, col]
            ax.imshow(np.rot90(images[c][:, :, z]), cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"{label}: {c}", fontsize=9)
            ax.axis("off")
        ax = axes[row, 4]
        ax.imshow(np.rot90(seg[:, :, z]), cmap="viridis", vmin=0, vmax=3)
        ax.set_title("labels (input)", fontsize=9)
        ax.axis("off")
    fig.suptitle(f"Label map → four contrasts, held-out {case} (axial slice {z})", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def throughput(n: int, steps: int, samples: int = 2) -> dict:
    from tumorgen.synthesis.dataset import build_dataset

    cores = os.cpu_count() or 1
    rows = []
    digests: dict[str, str] = {}
    # the one-worker rows make half as many cases (the same cases' first half): their rate needs no more
    configs = [("process", 0, cores, max(1, n // 2)), ("ray", 1, 1, max(1, n // 2)), ("ray", 2, 1, n), ("ray", 4, 1, n)]
    for mode, workers, threads, count in configs:
        out = Path(tempfile.mkdtemp(prefix="tg-bench-synth-"))
        try:
            started = time.perf_counter()
            summary = build_dataset(out, count, seed=11, maker="tumorgen.synthesis.recipe:make_case",
                                    settings={"t1n": None, "labels": None, "steps": steps, "device": "cpu", "samples": samples},
                                    workers=workers, threads_per_case=threads)
            seconds = time.perf_counter() - started
            import hashlib

            first = sorted(summary.made)[: max(1, n // 2)]  # the cases every row made
            digest = hashlib.sha256(b"".join((out / c / f"{c}-t2w.nii.gz").read_bytes() for c in first)).hexdigest()[:16]
            digests[f"{mode}-{workers}"] = digest
            rows.append({"mode": mode, "workers": workers, "threads_per_case": threads, "cases": len(summary.made), "seconds": round(seconds, 1),
                         "cases_per_hour": round(3600.0 * len(summary.made) / seconds, 1), "failed": summary.failed, "t2w_digest": digest})
            print(json.dumps(rows[-1]), flush=True)
        finally:
            shutil.rmtree(out, ignore_errors=True)
    base = next(r for r in rows if r["mode"] == "ray" and r["workers"] == 1)["cases_per_hour"]
    single = rows[0]["cases_per_hour"]
    for r in rows:
        r["ratio_to_ray_1"] = round(r["cases_per_hour"] / base, 2)
        r["ratio_to_process"] = round(r["cases_per_hour"] / single, 2)
    return {"cores": cores, "cases": n, "steps": steps, "samples": samples, "rows": rows,
            "same_bytes_in_every_mode": len({r["t2w_digest"] for r in rows if r["threads_per_case"] == 1}) == 1}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--simulate", metavar="DIR", help="folder holding (or to hold) the held-out sets")
    p.add_argument("--n", type=int, default=6, help="subjects per held-out set when simulating (default 6)")
    p.add_argument("--sets", default="folded,plain", help="held-out sets to score (default folded,plain)")
    p.add_argument("--weights", help="model weights folder (default: the bundled tiny models)")
    p.add_argument("--steps", type=int, default=20, help="DDIM steps (default 20, the default of tumorgen synthesize)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--whole", action="store_true", help="run the generator on the whole box instead of its training windows")
    p.add_argument("--max-cases", type=int, help="score at most this many cases per set")
    p.add_argument("--throughput", type=int, metavar="N", help="also measure the dataset builder's throughput with N cases per mode")
    p.add_argument("--throughput-samples", type=int, default=2, help="draws per case in the throughput rows (default 2, the default)")
    p.add_argument("--no-fidelity", action="store_true", help="skip the fidelity part")
    p.add_argument("--out", help="write the results here (JSON; sections this run did not measure are kept)")
    p.add_argument("--figure", help="write a PNG: one held-out case, truth vs synthesized")
    args = p.parse_args()
    results: dict = json.loads(Path(args.out).read_text()) if args.out and Path(args.out).is_file() else {}
    if not args.no_fidelity:
        if not args.simulate:
            p.error("--simulate DIR is needed for the fidelity part (or --no-fidelity)")
        folders = {k: v for k, v in simulate(Path(args.simulate), args.n).items() if k in args.sets.split(",")}
        results["fidelity" + ("-whole" if args.whole else "")] = fidelity(folders, args.weights, args.steps, args.device,
                                                                          Path(args.figure) if args.figure else None, args.whole, args.max_cases)
        shown = results["fidelity" + ("-whole" if args.whole else "")]
        print(json.dumps({"summary": shown["summary"]["all"]["tumorgen"], "relations": shown["relations"]}, indent=1))
    if args.throughput:
        results["throughput"] = throughput(args.throughput, args.steps, args.throughput_samples)
        print(json.dumps(results["throughput"], indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
