#!/usr/bin/env python3
"""Post-operative prediction on held-out simulated pairs: retrieval and prompt ablations (paper 004's Table 2 in 3D) and baselines.

The held-out pairs are simulated here (``--simulate``) unless they exist: none
is a training pair or in the bundled library.

* ``plain``: seeds 7300 + n, the simulator's default anatomy and imaging (the
  training distribution);
* ``folded``: seeds 7301 + n, folded by a fine 2.5 mm deformation (σ 4 mm) and
  with varied imaging (bias field, noise, tissue contrast drawn per subject),
  unlike the training pairs.

Each pair's resection box is the one the simulator resected; the truth is its
post-operative scan (as simulated, with its own noise) and its noise-free
version, and its cavity (label 4). The simulator's post-operative model: the
cavity is the box ∩ the tumor core dilated by 3 mm, the tissue around it pulled
in by 15 % of the cavity's volume, a 1.5 mm blood-product rim, post-operative
oedema decaying over ~4 mm, infiltration outside the box left in place.

Methods: ``tumorgen`` (the defaults: tumor-guided retrieval, k 1, composite and
tumor prompts), the retrieval ablations ``random`` and ``image``, the prompt
ablations ``no-composite``, ``no-tumor-prompt`` and ``no-prompts`` (the same
network with those condition channels zeroed, as trained with prompt dropout),
and two non-learned baselines: ``unchanged`` (the pre-operative scan) and
``naive`` (the box ∩ the tumor core filled with a CSF-like intensity — the
median of the darkest 3 % of the brain outside the tumor — nothing else changed). ``reference`` scores the
noise-free truth itself: against the scan (which has its own noise) it is the ceiling any prediction can reach.

Scores (:mod:`tumorgen.postop.metrics`): PSNR, SSIM and MS-SSIM inside the
dilated box (the box grown by 5 mm, where a prediction may differ from the
pre-operative scan) and PSNR/SSIM over the brain, against the scan and against
its noise-free version; cavity Dice against the simulated cavity.

``--timing`` also measures one what-if end to end as the panels run it (the
backend job: read, register, retrieve, generate with the default settings,
write) for a 40 mm box, with an empty registration cache and again after
moving the box by 5 mm (the what-if loop), and retrieval alone on a library of
1,000 cases.

    .venv/bin/python Testing/benchmarks/bench_postop.py --simulate /tmp/postop-held --out postop.json --figure postop.png --timing
    .venv/bin/python Testing/benchmarks/bench_postop.py --simulate /tmp/postop-held --methods tumorgen,naive --cases 3
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

METHODS = ("tumorgen", "random", "image", "no-composite", "no-tumor-prompt", "no-prompts", "unchanged", "naive", "reference")
VARIANTS = {"tumorgen": {}, "random": {"retrieval": "random"}, "image": {"retrieval": "image"}, "no-composite": {"composite": False},
            "no-tumor-prompt": {"tumor_prompt": False}, "no-prompts": {"composite": False, "tumor_prompt": False}}
SETS = {"plain": dict(seed=7300, extra=[]), "folded": dict(seed=7301, extra=["--fold", "2.5", "--varied-imaging"])}
PREFIX = {"plain": "TGHP", "folded": "TGHF"}
DILATION_MM = 5.0


def simulate(root: Path, n: int) -> dict[str, Path]:
    folders = {}
    for name, spec in SETS.items():
        folder = root / name
        if not folder.is_dir():
            subprocess.run([sys.executable, "-m", "tumorgen.cli.main", "simulate", "--n", str(n), "--seed", str(spec["seed"]), "--prefix",
                            PREFIX[name], "--out", str(folder), "--postop", "--noise-free-reference", "--quiet", *spec["extra"]],
                           check=True, stdout=subprocess.DEVNULL)
        folders[name] = folder
    return folders


def read_case(pair) -> dict:
    from tumorgen.biophysics.edit import box_mask
    from tumorgen.volume_io import read_volume

    pre = read_volume(pair.file("pre", "t1n"))
    box = pair.box()
    return {"name": pair.name, "pre": pre, "seg": read_volume(pair.file("pre", "seg")), "post": read_volume(pair.file("post", "t1n")).array,
            "clean": read_volume(pair.file("post", "t1n-noisefree")).array, "cavity": read_volume(pair.file("post", "seg")).array == 4,
            "box": box_mask(pre.grid, box["centre_ras_mm"], box["size_mm"]), "box_mm": box}


def naive(case) -> tuple[np.ndarray, np.ndarray]:
    pre = case["pre"].array
    seg = np.rint(case["seg"].array).astype(int)
    brain = (pre > 0) & (seg == 0)
    values = np.sort(pre[brain].astype(np.float64))
    csf = float(np.median(values[: max(1, int(0.03 * values.size))]))
    cut = case["box"].array & np.isin(seg, (1, 3))
    out = pre.astype(np.float32).copy()
    out[cut] = csf
    return out, cut


def score(prediction: np.ndarray, cavity: np.ndarray, case: dict, region: np.ndarray) -> dict:
    from tumorgen.postop.metrics import dice, region_scores

    brain = (case["post"] > 0) | (case["pre"].array > 0)
    out = {}
    for truth_name in ("post", "clean"):
        inside = region_scores(prediction, case[truth_name], region)
        whole = region_scores(prediction, case[truth_name], brain)
        suffix = "" if truth_name == "post" else "_clean"
        out.update({f"box_{k}{suffix}": round(v, 4) for k, v in inside.items()})
        out.update({f"brain_{k}{suffix}": round(whole[k], 4) for k in ("psnr", "ssim")})
    out["cavity_dice"] = round(dice(cavity, case["cavity"]), 4)
    return out


def run(args) -> dict:
    from tumorgen.models.sampling import LatentDiffusion
    from tumorgen.postop.library import CaseLibrary, bundled_library, find_pairs, register_affine
    from tumorgen.postop.predict import PostopSettings, generated_region, predict_postop

    methods = [m.strip() for m in args.methods.split(",")]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"unknown method(s) {unknown}; choose from {METHODS}")
    overrides = dict(item.split("=", 1) for item in args.set)
    folders = simulate(Path(args.simulate), args.cases) if args.simulate else {p.name: p for p in map(Path, args.data)}
    model = LatentDiffusion(args.weights, device="cpu")
    library = CaseLibrary.load(args.library or bundled_library())
    base = PostopSettings()
    results: dict = {"library": str(Path(args.library or bundled_library()).name), "library_cases": len(library),
                     "settings": {**base.__dict__, **overrides}, "sets": {}}
    figure_data = None
    for set_name, folder in folders.items():
        rows = []
        for pair in find_pairs(folder)[: args.cases]:
            case = read_case(pair)
            region = generated_region(case["box"].array, case["pre"].array > 0, DILATION_MM, case["pre"].spacing)
            tumor = np.isin(np.rint(case["seg"].array).astype(int), (1, 2, 3))
            clock = time.perf_counter()
            affine = register_affine(case["pre"], tumor)
            row = {"case": case["name"], "register_s": round(time.perf_counter() - clock, 2), "box_mm": case["box_mm"],
                   "cavity_cm3": round(float(case["cavity"].sum()) / 1000.0, 2), "methods": {}}
            for method in methods:
                clock = time.perf_counter()
                extra = {}
                if method == "unchanged":
                    prediction, cavity = case["pre"].array, np.zeros(case["cavity"].shape, bool)
                elif method == "naive":
                    prediction, cavity = naive(case)
                elif method == "reference":  # the truth without its noise: the ceiling of the scores against the scan
                    prediction, cavity = case["clean"], case["cavity"]
                else:
                    settings = PostopSettings(**{**{k: _parse(v) for k, v in overrides.items()}, **VARIANTS[method]})
                    result = predict_postop(model, case["pre"], case["box"], library, settings, seg=case["seg"], affine=affine)
                    prediction, cavity = result.mean.array, result.cavity.array == 4
                    extra = {"retrieved": [m.as_dict() for m in result.matches],
                             "seconds": {k: round(v, 2) for k, v in result.timings.items()}}
                    if method == "tumorgen" and figure_data is None:
                        figure_data = (case, result)
                scores = score(prediction, cavity, case, region)
                row["methods"][method] = {**scores, **extra, "wall_s": round(time.perf_counter() - clock, 2)}
                print(f"{set_name} {case['name']} {method:16s} " + " ".join(f"{k} {v}" for k, v in scores.items()
                      if k in ("box_ssim", "box_psnr", "box_ms_ssim", "cavity_dice")), flush=True)
            rows.append(row)
        results["sets"][set_name] = {"cases": rows, "mean": _means(rows, methods)}
    if args.timing:
        results["timing"] = timing(folders, library, args)
    if args.figure and figure_data is not None:
        figure(*figure_data, args.figure)
    return results


def _parse(value: str):
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(value.lower(), value)


def _means(rows: list[dict], methods: list[str]) -> dict:
    out = {}
    for method in methods:
        keys = [k for k, v in rows[0]["methods"][method].items() if isinstance(v, float) and k != "wall_s"]
        out[method] = {k: round(float(np.mean([r["methods"][method][k] for r in rows])), 4) for k in keys}
        out[method]["wall_s"] = round(float(np.mean([r["methods"][method]["wall_s"] for r in rows])), 2)
    return out


def timing(folders: dict, library, args) -> dict:
    """One what-if through the backend (cold and warm registration cache), and retrieval on 1,000 cases."""
    import os

    from tumorgen.biophysics.edit import box_mask
    from tumorgen.postop.library import CaseLibrary, LibraryCase, find_pairs
    from tumorgen.volume_io import read_volume, write_volume

    pair = find_pairs(next(iter(folders.values())))[0]
    pre = read_volume(pair.file("pre", "t1n"))
    seg = read_volume(pair.file("pre", "seg"))
    core = np.argwhere(np.isin(np.rint(seg.array).astype(int), (1, 3)))
    centre = pre.grid.index_to_ras(core.mean(0))
    out: dict = {"case": pair.name, "box_mm": 40.0}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = dict(os.environ, TUMORGEN_CACHE_DIR=str(tmp / "cache"))
        for label, shift in (("cold_s", 0.0), ("warm_s", 5.0)):
            box = box_mask(pre.grid, [centre[0] + shift, centre[1], centre[2]], [40.0, 40.0, 40.0])
            box_path = write_volume(box.with_array(box.array.astype(np.uint8)), tmp / f"box-{label}.nii.gz")
            job = {"task": "postop", "inputs": {"t1n": str(pair.file("pre", "t1n")), "seg": str(pair.file("pre", "seg")), "box": str(box_path)},
                   "params": {"library": args.library} if args.library else {}, "device": "cpu", "output_dir": str(tmp / f"out-{label}")}
            if args.weights:
                job["params"]["weights"] = args.weights
            (tmp / "job.json").write_text(json.dumps(job))
            clock = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "tumorgen.backend", str(tmp / "job.json")], capture_output=True, text=True, env=env)
            out[label] = round(time.perf_counter() - clock, 2)
            if proc.returncode != 0:
                raise SystemExit(f"the backend job failed: {proc.stderr.strip()[-400:]}")
            summary = json.loads((tmp / f"out-{label}" / "postop.json").read_text())
            out[label.replace("_s", "_stages")] = summary["seconds"]
    # retrieval alone: the library's cases repeated, each shifted on the mask grid, up to 1,000
    rng = np.random.default_rng(0)
    from tumorgen.postop.library import template_grids

    shape = template_grids()[1].size
    cases = []
    while len(cases) < 1000:
        base = library.cases[len(cases) % len(library)]
        idx = np.array(np.unravel_index(base.tumor.astype(np.int64), shape))
        idx = np.clip(idx + rng.integers(-4, 5, (3, 1)), 0, np.asarray(shape)[:, None] - 1)
        cases.append(LibraryCase(f"c{len(cases)}", np.unique(np.ravel_multi_index(idx, shape)).astype(np.uint32), base.patch_start, base.pre,
                                 base.post, base.cavity, base.embedding, base.box))
    big = CaseLibrary(cases)
    query = np.zeros(shape, bool).ravel()
    query[library.cases[0].tumor] = True
    query = query.reshape(shape)
    big.retrieve(5, "tumor", tumor=query)  # the first call concatenates the masks once
    times = []
    for _ in range(5):
        clock = time.perf_counter()
        big.retrieve(5, "tumor", tumor=query)
        times.append(time.perf_counter() - clock)
    out["retrieval_1000_cases_s"] = round(float(np.median(times)), 4)
    clock = time.perf_counter()
    fresh = CaseLibrary(cases)
    fresh.retrieve(5, "tumor", tumor=query)
    out["retrieval_1000_cases_first_call_s"] = round(time.perf_counter() - clock, 4)
    return out


def figure(case: dict, result, path: str) -> None:
    """One held-out case on the box's centre slice: what went in, what guided it, what came out, the truth."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    centre = np.argwhere(case["box"].array).mean(0).astype(int)
    k = int(centre[2])
    lo, hi = np.percentile(case["pre"].array[case["pre"].array > 0], (0.5, 99.5))
    panels = [("pre-operative", case["pre"].array, None), ("composite prompt", result.composite.array, None),
              ("retrieved post-op", result.retrieved[0]["post"].array if result.retrieved else case["pre"].array, None),
              ("prediction (cavity)", result.mean.array, result.cavity.array == 4), ("uncertainty (std)", result.std.array, None),
              ("post-operative truth (cavity)", case["post"], case["cavity"])]
    fig = Figure(figsize=(15, 3.2), dpi=100)
    FigureCanvasAgg(fig)
    box = np.argwhere(case["box"].array[:, :, k])
    view = (slice(max(0, box[:, 0].min() - 30), box[:, 0].max() + 30), slice(max(0, box[:, 1].min() - 30), box[:, 1].max() + 30))
    for n, (title, array, contour) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), n + 1)
        image = array[:, :, k][view].T
        if title.startswith("uncertainty"):
            ax.imshow(image, origin="lower", cmap="magma")
        else:
            ax.imshow(image, origin="lower", cmap="gray", vmin=lo, vmax=hi)
        if contour is not None and contour[:, :, k].any():
            ax.contour(contour[:, :, k][view].T.astype(float), levels=[0.5], colors="magenta", linewidths=1.0)
        ax.contour(case["box"].array[:, :, k][view].T.astype(float), levels=[0.5], colors="yellow", linewidths=0.8)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle(f"{case['name']}: retrieved {result.matches[0].name} (IoU {result.matches[0].score:.2f})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--simulate", metavar="DIR", help="simulate the held-out sets into DIR (kept for the next run)")
    parser.add_argument("--data", nargs="*", default=[], help="folders of pairs instead of --simulate")
    parser.add_argument("--cases", type=int, default=10, help="pairs per set (default 10)")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a setting of every TumorGen run (e.g. cfg=2)")
    parser.add_argument("--library", help="case library (default: the bundled one)")
    parser.add_argument("--weights", help="model weights folder (default: the bundled ones)")
    parser.add_argument("--timing", action="store_true", help="also time a what-if end to end and retrieval on 1,000 cases")
    parser.add_argument("--figure", help="write a PNG of the first case")
    parser.add_argument("--out", help="write the results as JSON")
    args = parser.parse_args(argv)
    if not args.simulate and not args.data:
        parser.error("give --simulate DIR or --data FOLDER ...")
    results = run(args)
    for set_name, block in results["sets"].items():
        print(f"\n{set_name}: mean over {len(block['cases'])} pairs")
        for method, values in block["mean"].items():
            print(f"  {method:16s} " + " ".join(f"{k} {v}" for k, v in values.items() if not k.endswith("_clean")))
    if "timing" in results:
        print("\ntiming:", json.dumps(results["timing"]))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
