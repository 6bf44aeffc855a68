#!/usr/bin/env python3
"""Healthy-inpainting fidelity out of the training distribution: TumorGen against classical fills.

Nothing here is a training subject or the training anatomy family. Two
benchmarks in one script:

* **the realistic parts** (``--part tuning`` and ``--part held-out``, the
  default): cases that differ from training the way real T1 scans do.
  Anatomy: ``folded`` single subjects (MNI152 warped by 7 mm diffeomorphisms,
  folded by a fine 2.5 mm one, then individual sulci and a sharp cortex drawn
  by :func:`tumorgen.simulate.realism.sharpen_tissues`: a folding pattern no
  template knows) and the ``average`` smooth population-average anatomy
  (warped, not folded). Contrast: per-class T1 intensities, texture, bias
  field, partial-volume blur, noise and gamma drawn per case from the ranges
  real scans show (:func:`tumorgen.simulate.realism.random_contrast`).
  Masks: cube, sphere, ellipsoid and blob of 5–40 cm³ in the cortex of the
  four lobes, in the deep grey matter, against the lateral ventricles and
  against the brain's edge (cut to the brain). The tuning part (anatomy seeds
  7100+) chooses the defaults; the held-out part (seeds 7300+) is never tuned
  on and is what predicts a real scan. The realism was set once, before any
  method was tuned, so that the biharmonic fill scores about as on the
  independent real-brain check (15.3 dB).
* **the previous benchmark** (``--part legacy``): 12 folded subjects with one
  intensity profile each (``standard``, ``bias``, ``noise``, ``contrast``,
  ``gamma``, ``blur``) and masks of 10–40 cm³, kept to compare with earlier
  releases.

TumorGen gets the voided T1 and its mask only, as ``tumorgen inpaint --t1n
VOIDED --mask MASK`` does (the template registered with the mask excluded);
``oracle`` runs it on the simulator's own tissue maps, which no user has.

Methods: ``tumorgen`` (the default settings, or those given with ``--set``; its
self-check is recorded too), variants of it (``--variant NAME:KEY=VALUE,...``),
``unet`` (the learned fill alone, ``--method unet``), ``oracle``,
``biharmonic`` (:func:`tumorgen.inpainting.baselines.biharmonic_fill`),
``harmonic`` (Laplace's equation, the self-check's classical fill) and
``template`` (the registered template's T1). Metrics: the BraTS 2023
inpainting challenge's SSIM and PSNR inside the mask, per case, per mask
size and case class, overall; and the Dice inside the mask of the registered
tissue classes and of the scan-continued ones
(:mod:`tumorgen.anatomy.tissue_fill`) against the truth.

    .venv/bin/python Testing/benchmarks/bench_fidelity.py --part held-out --out fidelity-held-out.json   # 12 cases, ~25 min on 2 cores
    .venv/bin/python Testing/benchmarks/bench_fidelity.py --part tuning --cases 12 --methods tumorgen,unet,biharmonic \\
        --variant harmonic:prior=harmonic --variant noblend:confidence_mm=0 --cache regs
    .venv/bin/python Testing/benchmarks/bench_fidelity.py --part legacy --out fidelity.json               # the previous 12 cases
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

METHODS = ("tumorgen", "unet", "oracle", "biharmonic", "harmonic", "template")
PARTS = ("tuning", "held-out", "legacy")
#: Anatomy seeds of each part (training anatomies use 9000+ and 9100+).
PART_SEEDS = {"tuning": 7100, "held-out": 7300, "legacy": 7100}
PROFILES = ("standard", "bias", "noise", "contrast", "gamma", "blur")
ANATOMIES = ("folded", "average")
SHAPES = ("cube", "sphere", "ellipsoid", "blob")
#: Mask centres in MNI152 millimetres (RAS), the subjects' space.
LOBES = {
    "frontal-left": (-28.0, 38.0, 28.0), "parietal-right": (30.0, -48.0, 44.0), "temporal-left": (-46.0, -16.0, -14.0),
    "occipital-right": (22.0, -80.0, 8.0), "deep-right": (22.0, -2.0, 4.0), "frontal-right": (26.0, 24.0, 44.0),
}
#: The realistic parts add masks against the lateral ventricles and against the brain's edge (cut to the brain).
PLACES = {**LOBES, "ventricle-left": (-20.0, -10.0, 22.0), "edge-temporal-right": (60.0, -22.0, -4.0),
          "ventricle-right": (22.0, -30.0, 16.0), "edge-frontal-left": (-36.0, 50.0, 30.0)}
VOLUMES_CM3 = (10.0, 17.5, 25.0, 32.5, 40.0)
REALISTIC_VOLUMES_CM3 = (5.0, 10.0, 17.5, 25.0, 32.5, 40.0)
ANATOMY_SEED = 7100
DEFORM_MM = 7.0
#: A fine deformation (σ 4 mm) on top that moves gyri and sulci: the template's folding pattern is not the subject's.
FOLD_MM = 2.5


@dataclass(frozen=True)
class Case:
    anatomy: int
    profile: str
    shape: str
    lobe: str
    volume_cm3: float
    part: str = "legacy"

    @property
    def name(self) -> str:
        prefix = "" if self.part == "legacy" else ("T" if self.part == "tuning" else "H")
        return f"{prefix}A{self.anatomy}-{self.profile}-{self.shape}-{self.lobe}-{self.volume_cm3:g}cm3"

    @property
    def seed(self) -> int:
        return PART_SEEDS[self.part] + self.anatomy


def cases(n: int, part: str = "legacy") -> list[Case]:
    """``n`` cases of a part. Legacy: cycling through the profiles, shapes, lobes and sizes (from 12 on every class
    twice or more, each profile in two lobes). Realistic parts: anatomy kinds alternate, every place and size comes
    round, shapes cycle; one subject per two cases."""
    if part == "legacy":
        lobes = list(LOBES)
        return [Case(k // 4, PROFILES[k % len(PROFILES)], SHAPES[k % len(SHAPES)], lobes[(k * 5 + k // 6) % len(lobes)],
                     VOLUMES_CM3[k % len(VOLUMES_CM3)]) for k in range(n)]
    places = list(PLACES)
    return [Case(k // 2, ANATOMIES[(k // 2) % 2], SHAPES[k % len(SHAPES)], places[(k * 3) % len(places)],
                 REALISTIC_VOLUMES_CM3[(k * 5 + k // 6) % len(REALISTIC_VOLUMES_CM3)], part) for k in range(n)]


def subject(case: Case):
    """The case's healthy subject (the ground truth T1), its tissue maps, its brain mask and (realistic parts) the
    contrast it was drawn with."""
    if case.part == "legacy":
        return _legacy_subject(case) + (None,)
    from tumorgen.anatomy.tissues import TissueMaps
    from tumorgen.simulate.realism import random_contrast, render_t1, sharpen_tissues
    from tumorgen.simulate.subject import SimulationOptions, subject_anatomy

    rng = np.random.default_rng([case.seed, 1])
    folded = case.profile == "folded"
    options = SimulationOptions(tumor=False, deform_mm=DEFORM_MM, fold_mm=FOLD_MM if folded else 0.0)
    anatomy, _ = subject_anatomy(rng, options)
    maps = np.stack([anatomy.csf.array, anatomy.gm.array, anatomy.wm.array])
    if folded:
        maps = sharpen_tissues(maps, rng, anatomy.csf.spacing)
    truth_maps = TissueMaps(*(v.with_array(a) for v, a in zip((anatomy.csf, anatomy.gm, anatomy.wm), maps)))
    brain = maps.sum(0) > 0.5
    contrast = random_contrast(np.random.default_rng([case.seed, 2, SHAPES.index(case.shape), int(case.volume_cm3 * 10)]))
    image = render_t1(maps, contrast, rng, anatomy.csf.spacing, brain)
    return anatomy.csf.with_array(image), truth_maps, brain, contrast


def _legacy_subject(case: Case):
    """The simulated healthy subject of a legacy case, with its intensity profile applied."""
    from scipy import ndimage

    from tumorgen.simulate.contrasts import ImagingOptions
    from tumorgen.simulate.subject import SimulationOptions, simulate_subject

    imaging = {"bias": ImagingOptions(bias=0.35), "noise": ImagingOptions(noise=0.06),
               "contrast": ImagingOptions(jitter=0.20)}.get(case.profile, ImagingOptions())
    options = SimulationOptions(tumor=False, deform_mm=DEFORM_MM, fold_mm=FOLD_MM, imaging=imaging)
    sim = simulate_subject([ANATOMY_SEED + case.anatomy, PROFILES.index(case.profile)], options, case=case.name)
    t1n = sim.images["t1n"]
    image = np.asarray(t1n.array, dtype=np.float32)
    brain = sim.tissues.brain_mask().array.astype(bool)
    if case.profile == "gamma":
        image = np.where(brain, np.clip(image, 0.0, None) ** 0.65, image).astype(np.float32)
    elif case.profile == "blur":
        sigma = [1.2 / s for s in t1n.spacing]
        image = np.where(brain, ndimage.gaussian_filter(image, sigma), 0.0).astype(np.float32)
    return t1n.with_array(image), sim.tissues, brain


def make_mask(brain: np.ndarray, grid, case: Case, rng: np.random.Generator) -> np.ndarray:
    """The case's mask: its shape of the given volume around its place's centre, cut to the brain."""
    from scipy import ndimage

    spacing = np.asarray(grid.spacing)
    centre = np.asarray(grid.ras_to_index(PLACES[case.lobe]))
    idx = np.indices(brain.shape, dtype=np.float32)
    offset = [(idx[a] - centre[a]) * spacing[a] for a in range(3)]  # mm along the grid's axes
    volume_mm3 = case.volume_cm3 * 1000.0
    if case.shape == "cube":
        half = volume_mm3 ** (1 / 3) / 2
        mask = np.all([np.abs(o) <= half for o in offset], axis=0)
    elif case.shape in ("sphere", "ellipsoid"):
        axes = np.array([1.0, 1.0, 1.0]) if case.shape == "sphere" else rng.uniform(0.6, 1.5, 3)
        axes *= (volume_mm3 / (4 / 3 * np.pi * np.prod(axes))) ** (1 / 3)
        mask = sum((o / a) ** 2 for o, a in zip(offset, axes)) <= 1.0
    else:  # a blob: smooth noise thresholded to the volume, inside a sphere twice as large
        reach = (2 * volume_mm3 / (4 / 3 * np.pi)) ** (1 / 3)
        inside = sum(o**2 for o in offset) <= reach**2
        noise = ndimage.gaussian_filter(rng.standard_normal(brain.shape).astype(np.float32), 4.0 / spacing)
        noise -= sum(o**2 for o in offset) / reach**2  # keep it around the centre
        voxels = int(round(volume_mm3 / np.prod(spacing)))
        threshold = np.sort(noise[inside])[-voxels]
        mask = inside & (noise >= threshold)
        labels, count = ndimage.label(mask)
        if count > 1:
            mask = labels == np.argmax(np.bincount(labels.ravel())[1:]) + 1
    return mask & brain


def tissue_dice(estimate, truth, mask: np.ndarray) -> dict[str, float]:
    """Dice of the hard tissue classes (argmax of CSF, GM, WM) inside ``mask``."""
    def classes(maps):
        return np.argmax(np.stack([maps.csf.array, maps.gm.array, maps.wm.array]), axis=0)[mask]

    a, b = classes(estimate), classes(truth)
    out = {}
    for k, name in enumerate(("csf", "gm", "wm")):
        both = np.count_nonzero(a == k) + np.count_nonzero(b == k)
        out[name] = float(2 * np.count_nonzero((a == k) & (b == k)) / both) if both else float("nan")
    return out


def prepared_case(case: Case, cache_dir: Path):
    """The case's truth, tissue maps, mask, voided image and registered maps; kept in ``cache_dir`` between runs."""
    from tumorgen.anatomy.registration import tissues_for_subject
    from tumorgen.anatomy.tissues import TissueMaps
    from tumorgen.simulate.subject import subject_grid
    from tumorgen.volume import Volume

    path = cache_dir / f"case-{case.name}.npz"
    if path.is_file():  # every case lies on the 1 mm subject grid
        saved = np.load(path)
        grid = subject_grid(1.0)
        truth = Volume(saved["truth"], grid)
        true_maps, registered = (TissueMaps(*(Volume(a, grid) for a in saved[key])) for key in ("maps", "registered"))
        return truth, true_maps, saved["mask"], registered, json.loads(str(saved["contrast"])), float(saved["register_seconds"])
    truth, true_maps, brain, contrast = subject(case)
    seed = [ANATOMY_SEED, case.anatomy, SHAPES.index(case.shape)] if case.part == "legacy" else [case.seed, 3, SHAPES.index(case.shape)]
    mask = make_mask(brain, truth.grid, case, np.random.default_rng(seed))
    voided = truth.with_array(np.where(mask, 0, truth.array).astype(np.float32))
    started = time.perf_counter()
    registered = tissues_for_subject(voided, voided.with_array(mask), cache_dir=cache_dir)
    seconds = time.perf_counter() - started
    contrast = contrast.as_dict() if contrast is not None else None
    np.savez_compressed(path, truth=truth.array, maps=np.stack([true_maps.csf.array, true_maps.gm.array, true_maps.wm.array]),
                        registered=np.stack([registered.csf.array, registered.gm.array, registered.wm.array]), mask=mask,
                        contrast=json.dumps(contrast), register_seconds=seconds)
    return truth, true_maps, mask, registered, contrast, seconds


def run_case(case: Case, methods: list[str], model, settings: dict, cache_dir: Path, variants: dict[str, dict] | None = None) -> dict:
    from tumorgen.anatomy.tissue_fill import continued_tissues
    from tumorgen.inpainting.baselines import biharmonic_fill, template_paste
    from tumorgen.inpainting.core import InpaintSettings, crop_box, inpaint
    from tumorgen.inpainting.metrics import inpainting_metrics
    from tumorgen.inpainting.selfcheck import harmonic_fill

    truth, true_maps, mask, registered, contrast, register_seconds = prepared_case(case, cache_dir)
    voided = truth.with_array(np.where(mask, 0, truth.array).astype(np.float32))
    mask_volume = voided.with_array(mask)
    row: dict = {"case": case.name, **asdict(case), "mask_cm3": round(float(mask.sum() * np.prod(truth.spacing) / 1000), 2),
                 "contrast": contrast, "register_seconds": round(register_seconds, 1)}
    row["tissue_dice"] = tissue_dice(registered, true_maps, mask)
    row["tissue_dice_continued"] = tissue_dice(continued_tissues(voided.array, mask, registered, truth.spacing), true_maps, mask)
    runs = [(m, None) for m in methods] + [(f"tumorgen[{name}]", extra) for name, extra in (variants or {}).items()]
    for method, extra in runs:
        started = time.perf_counter()
        if method in ("tumorgen", "oracle", "unet") or extra is not None:
            maps = true_maps if method == "oracle" else registered
            tissues = {"csf": maps.csf, "gm": maps.gm, "wm": maps.wm}
            chosen = {**settings, **(extra or {})}
            if method == "oracle":
                chosen["self_check"] = False
            if method == "unet":
                chosen["method"] = "unet"
            result = inpaint(model, voided, mask_volume, tissues, InpaintSettings(**chosen), registered_maps=method != "oracle")
            pred = result.mean.array
            if method != "oracle":
                check = result.check.as_dict() if result.check is not None else None
                row["self_check" if method == "tumorgen" else f"self_check[{method}]"] = check
                row[f"{method}_seconds"] = {k: round(v, 2) for k, v in result.timings.items()}
        elif method == "biharmonic":
            pred = biharmonic_fill(voided, mask_volume).array
        elif method == "harmonic":
            pred = harmonic_fill(voided.array, mask, crop_box(mask, (8, 8, 8), 1, mask.shape))
        else:
            pred = template_paste(voided, mask_volume, cache_dir=cache_dir).array
        seconds = time.perf_counter() - started
        metrics = inpainting_metrics(pred, truth.array, mask, voided.array)
        row[method] = {"psnr": metrics["psnr"], "psnr_01": metrics["psnr_01"], "ssim": metrics["ssim"], "seconds": round(seconds, 1)}
    return row


def size_class(volume_cm3: float) -> str:
    return "5-10 cm³" if volume_cm3 <= 10 else ("17.5-25 cm³" if volume_cm3 <= 25 else "32.5-40 cm³")


def summarise(rows: list[dict], methods: list[str]) -> dict:
    """Mean PSNR and SSIM per method over all cases, per mask size and per case class (profile or anatomy, shape, place);
    the worst case's margin under the biharmonic fill."""
    def mean(subset, method, key):
        return float(np.mean([r[method][key] for r in subset]))

    out = {"all": {m: {"psnr": mean(rows, m, "psnr"), "ssim": mean(rows, m, "ssim"), "cases": len(rows)} for m in methods}}
    for field in ("volume_cm3", "size", "profile", "shape", "lobe"):
        values = sorted({size_class(r["volume_cm3"]) if field == "size" else r[field] for r in rows}, key=str)
        for value in values:
            subset = [r for r in rows if (size_class(r["volume_cm3"]) if field == "size" else r[field]) == value]
            out[f"{field}={value}"] = {m: {"psnr": mean(subset, m, "psnr"), "ssim": mean(subset, m, "ssim"), "cases": len(subset)}
                                       for m in methods}
    dice = [r["tissue_dice"] for r in rows]
    out["tissue_dice_in_mask"] = {k: float(np.nanmean([d[k] for d in dice])) for k in ("csf", "gm", "wm")}
    continued = [r["tissue_dice_continued"] for r in rows if "tissue_dice_continued" in r]
    if continued:
        out["tissue_dice_continued_in_mask"] = {k: float(np.nanmean([d[k] for d in continued])) for k in ("csf", "gm", "wm")}
    if "biharmonic" in methods:
        out["under_biharmonic"] = {m: {"worst_db": float(min(r[m]["psnr"] - r["biharmonic"]["psnr"] for r in rows)),
                                       "cases_more_than_0.5_db_under": int(sum(r[m]["psnr"] < r["biharmonic"]["psnr"] - 0.5 for r in rows))}
                                   for m in methods if m != "biharmonic"}
    checked = [r for r in rows if r.get("self_check")]
    if checked and "biharmonic" in methods and "tumorgen" in methods:
        # does the self-check's verdict (on known tissue) foretell TumorGen falling behind the classical fill in the mask?
        behind = [r["tumorgen"]["psnr"] < r["biharmonic"]["psnr"] for r in checked]
        flagged = [r["self_check"]["doubtful"] for r in checked]
        out["self_check"] = {"cases": len(checked), "flagged": int(sum(flagged)), "behind_biharmonic": int(sum(behind)),
                             "agree": int(sum(a == b for a, b in zip(flagged, behind))),
                             "fell_back": int(sum(bool(r["self_check"].get("fallback")) for r in checked))}
    return out


def print_tables(rows: list[dict], summary: dict, methods: list[str]) -> None:
    head = " | ".join(f"{m} PSNR / SSIM" for m in methods)
    print(f"\n| case | mask cm³ | {head} | tissue Dice in mask (CSF/GM/WM) |")
    print("|---|---|" + "---|" * len(methods) + "---|")
    for r in rows:
        cells = " | ".join(f"{r[m]['psnr']:.2f} / {r[m]['ssim']:.3f}" for m in methods)
        d = r["tissue_dice"]
        print(f"| {r['case']} | {r['mask_cm3']:.1f} | {cells} | {d['csf']:.2f} / {d['gm']:.2f} / {d['wm']:.2f} |")
    print(f"\n| class | cases | {head} |\n|---|---|" + "---|" * len(methods))
    for key, value in summary.items():
        if key in ("tissue_dice_in_mask", "tissue_dice_continued_in_mask", "self_check", "under_biharmonic"):
            continue
        cells = " | ".join(f"{value[m]['psnr']:.2f} / {value[m]['ssim']:.3f}" for m in methods)
        print(f"| {key} | {value[methods[0]]['cases']} | {cells} |")
    for key, what in (("tissue_dice_in_mask", "registered"), ("tissue_dice_continued_in_mask", "scan-continued")):
        if key in summary:
            d = summary[key]
            print(f"\n{what} tissue classes inside the masks, mean Dice: CSF {d['csf']:.3f}, GM {d['gm']:.3f}, WM {d['wm']:.3f}")
    if "under_biharmonic" in summary:
        for m, v in summary["under_biharmonic"].items():
            print(f"{m}: worst case {v['worst_db']:+.2f} dB against the biharmonic fill; "
                  f"{v['cases_more_than_0.5_db_under']} cases more than 0.5 dB under it")
    checks = [r for r in rows if r.get("self_check")]
    if checks:
        print("\n| case | self-check placement | TumorGen PSNR / SSIM | harmonic PSNR / SSIM | learned PSNR | doubtful | fallback |\n"
              "|---|---|---|---|---|---|---|")
        for r in checks:
            c = r["self_check"]
            learned = f"{c['prior_psnr']:.2f}" if c.get("prior_psnr") is not None else "-"
            print(f"| {r['case']} | {c['placement']} | {c['psnr']:.2f} / {c['ssim']:.3f} | {c['classical_psnr']:.2f} / "
                  f"{c['classical_ssim']:.3f} | {learned} | {'yes' if c['doubtful'] else 'no'} | {c.get('fallback') or '-'} |")
    if "self_check" in summary:
        c = summary["self_check"]
        print(f"\nself-check: flagged {c['flagged']} of {c['cases']} cases; TumorGen behind the biharmonic fill in the mask on "
              f"{c['behind_biharmonic']}; the verdict matched on {c['agree']}; fell back on {c['fell_back']}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=PARTS, default="held-out",
                        help="tuning (choose settings here), held-out (never tuned on; the default) or legacy (the previous cases)")
    parser.add_argument("--cases", type=int, default=12, help="how many cases (default 12)")
    parser.add_argument("--start", type=int, default=0, help="skip the first cases (a long run in parts: every case is "
                        "deterministic)")
    parser.add_argument("--methods", default="tumorgen,unet,biharmonic,harmonic",
                        help=f"comma-separated subset of {', '.join(METHODS)} (default: tumorgen, unet, biharmonic, harmonic)")
    parser.add_argument("--weights", help="model folder (default: the bundled tiny models)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an inpainting setting for every TumorGen run (repeatable; default: the engine's defaults)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE[,KEY=VALUE]",
                        help="also run TumorGen with these settings, reported as tumorgen[NAME] (repeatable)")
    parser.add_argument("--cache", help="keep the cases and registrations in this folder (default: a temporary one), to "
                        "reuse between runs")
    parser.add_argument("--out", help="write every row and the summary as JSON")
    args = parser.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    from dataclasses import fields

    from tumorgen.inpainting.core import InpaintSettings
    from tumorgen.settings import INPAINTING

    known = [f.name for f in fields(InpaintSettings)]

    def parse(items, where):
        out = {}
        for item in items:
            key, _, value = item.partition("=")
            if key not in known or not value:
                parser.error(f"{where} wants KEY=VALUE with an inpainting setting ({', '.join(known)}), got {item!r}")
            out[key] = INPAINTING[key].convert(value)
        return out

    settings = parse(args.set, "--set")
    variants = {}
    for item in args.variant:
        name, _, rest = item.partition(":")
        if not name or not rest:
            parser.error(f"--variant wants NAME:KEY=VALUE[,KEY=VALUE], got {item!r}")
        variants[name] = parse(rest.split(","), "--variant")
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        parser.error(f"unknown method(s) {', '.join(unknown)} (known: {', '.join(METHODS)})")

    import torch

    from tumorgen.models.sampling import LatentDiffusion

    model = LatentDiffusion(args.weights, device="cpu")
    rows = []
    reported = methods + [f"tumorgen[{name}]" for name in variants]
    with tempfile.TemporaryDirectory(prefix="tumorgen-fidelity-") as scratch:
        cache = Path(args.cache) if args.cache else Path(scratch)
        cache.mkdir(parents=True, exist_ok=True)
        for case in cases(args.cases, args.part)[args.start:]:
            started = time.perf_counter()
            row = run_case(case, methods, model, settings, cache, variants)
            rows.append(row)
            scores = "  ".join(f"{m} {row[m]['psnr']:.2f}/{row[m]['ssim']:.3f}" for m in reported)
            print(f"{case.name}: {scores}  ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    summary = summarise(rows, reported)
    print_tables(rows, summary, reported)
    if args.out:
        from bench_gui_thread import cpu_name  # the CPU's model name, as the other benchmarks record it

        record = {"command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])),
                  "part": args.part, "weights": str(model.folder), "settings": settings, "variants": variants,
                  "cpu": cpu_name(), "threads": torch.get_num_threads(), "summary": summary, "rows": rows}
        Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
