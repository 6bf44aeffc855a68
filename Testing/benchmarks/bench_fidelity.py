#!/usr/bin/env python3
"""Healthy-inpainting fidelity out of the training distribution: TumorGen against classical fills.

Nothing here is a training subject or the training anatomy family. The bundled
models trained on simulated MNI152 subjects warped by 4 mm (RMS) random
diffeomorphisms with the simulator's default imaging; the cases here are

* **anatomy**: held-out seeds (7100 + n) warped by 7 mm diffeomorphisms and
  folded by a fine 2.5 mm one (σ 4 mm) that moves gyri and sulci, so that the
  template's folding pattern is not the subject's, as on a real brain;
* **intensity profiles**: ``standard`` (the simulator's imaging), ``bias`` (a
  ±35 % bias field instead of ±10 %), ``noise`` (Rician noise 6 % of white
  matter instead of 2.5 %), ``contrast`` (tissue intensities jittered ±20 %
  instead of ±5 %), ``gamma`` (intensities raised to 0.65 inside the brain) and
  ``blur`` (Gaussian blur, σ 1.2 mm);
* **masks**: cube, sphere, ellipsoid and an irregular blob of 10–40 cm³ in the
  frontal, parietal, temporal and occipital lobes of either side and in the deep
  grey matter;
* **tissue maps from registration**: TumorGen gets the voided T1 and its mask
  only, as ``tumorgen inpaint --t1n VOIDED --mask MASK`` does (the template is
  registered with the mask excluded); ``oracle`` runs it on the simulator's own
  tissue maps, which no user has, to show what the condition costs.

Methods: ``tumorgen`` (the default settings, or those given with ``--set``; its
self-check on known tissue is recorded too), ``oracle``, ``biharmonic``
(:func:`tumorgen.inpainting.baselines.biharmonic_fill`) and ``template``
(:func:`tumorgen.inpainting.baselines.template_paste`, the registered template's
T1). Metrics: the BraTS 2023 inpainting challenge's SSIM and PSNR inside the
mask (:mod:`tumorgen.inpainting.metrics`), per case, per case class and overall;
and the Dice of the registered tissue classes against the truth inside the mask.

    .venv/bin/python Testing/benchmarks/bench_fidelity.py --out fidelity.json          # 12 cases, ~10 min on 2 cores
    .venv/bin/python Testing/benchmarks/bench_fidelity.py --cases 4 --methods tumorgen,biharmonic
    .venv/bin/python Testing/benchmarks/bench_fidelity.py --methods tumorgen --set prior=noise --set histogram=true --cache regs
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

METHODS = ("tumorgen", "oracle", "biharmonic", "template")
PROFILES = ("standard", "bias", "noise", "contrast", "gamma", "blur")
SHAPES = ("cube", "sphere", "ellipsoid", "blob")
#: Mask centres in MNI152 millimetres (RAS), the subjects' space.
LOBES = {
    "frontal-left": (-28.0, 38.0, 28.0), "parietal-right": (30.0, -48.0, 44.0), "temporal-left": (-46.0, -16.0, -14.0),
    "occipital-right": (22.0, -80.0, 8.0), "deep-right": (22.0, -2.0, 4.0), "frontal-right": (26.0, 24.0, 44.0),
}
VOLUMES_CM3 = (10.0, 17.5, 25.0, 32.5, 40.0)
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

    @property
    def name(self) -> str:
        return f"A{self.anatomy}-{self.profile}-{self.shape}-{self.lobe}-{self.volume_cm3:g}cm3"


def cases(n: int) -> list[Case]:
    """``n`` cases cycling through the profiles, shapes, lobes and sizes; from 12 on every class twice or more,
    and each profile in two lobes (the lobe's cycle shifts by one after six cases, so no class stands for another)."""
    lobes = list(LOBES)
    return [Case(k // 4, PROFILES[k % len(PROFILES)], SHAPES[k % len(SHAPES)], lobes[(k * 5 + k // 6) % len(lobes)],
                 VOLUMES_CM3[k % len(VOLUMES_CM3)]) for k in range(n)]


def subject(case: Case):
    """The simulated healthy subject of a case, with its intensity profile applied (the ground truth)."""
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
    """The case's mask: its shape of the given volume around the lobe's centre, cut to the brain."""
    from scipy import ndimage

    spacing = np.asarray(grid.spacing)
    centre = np.asarray(grid.ras_to_index(LOBES[case.lobe]))
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


def run_case(case: Case, methods: list[str], model, settings: dict, cache_dir: Path) -> dict:
    from tumorgen.anatomy.registration import tissues_for_subject
    from tumorgen.inpainting.baselines import biharmonic_fill, template_paste
    from tumorgen.inpainting.core import InpaintSettings, inpaint
    from tumorgen.inpainting.metrics import inpainting_metrics

    truth, true_maps, brain = subject(case)
    rng = np.random.default_rng([ANATOMY_SEED, case.anatomy, SHAPES.index(case.shape)])
    mask = make_mask(brain, truth.grid, case, rng)
    voided = truth.with_array(np.where(mask, 0, truth.array).astype(np.float32))
    mask_volume = voided.with_array(mask)
    row: dict = {"case": case.name, **asdict(case), "mask_cm3": round(float(mask.sum() * np.prod(truth.spacing) / 1000), 2)}
    started = time.perf_counter()
    registered = tissues_for_subject(voided, mask_volume, cache_dir=cache_dir)
    row["register_seconds"] = round(time.perf_counter() - started, 1)
    row["tissue_dice"] = tissue_dice(registered, true_maps, mask)
    for method in methods:
        started = time.perf_counter()
        if method in ("tumorgen", "oracle"):
            maps = registered if method == "tumorgen" else true_maps
            tissues = {"csf": maps.csf, "gm": maps.gm, "wm": maps.wm}
            chosen = InpaintSettings(**settings) if method == "tumorgen" else InpaintSettings(**{**settings, "self_check": False})
            result = inpaint(model, voided, mask_volume, tissues, chosen, registered_maps=method == "tumorgen")
            pred = result.mean.array
            if method == "tumorgen":
                row["self_check"] = result.check.as_dict() if result.check is not None else None
                row["tumorgen_seconds"] = {k: round(v, 2) for k, v in result.timings.items()}
        elif method == "biharmonic":
            pred = biharmonic_fill(voided, mask_volume).array
        else:
            pred = template_paste(voided, mask_volume, cache_dir=cache_dir).array
        seconds = time.perf_counter() - started
        metrics = inpainting_metrics(pred, truth.array, mask, voided.array)
        row[method] = {"psnr": metrics["psnr"], "psnr_01": metrics["psnr_01"], "ssim": metrics["ssim"], "seconds": round(seconds, 1)}
    return row


def summarise(rows: list[dict], methods: list[str]) -> dict:
    """Mean PSNR and SSIM per method over all cases and per case class (profile, shape, lobe)."""
    def mean(subset, method, key):
        return float(np.mean([r[method][key] for r in subset]))

    out = {"all": {m: {"psnr": mean(rows, m, "psnr"), "ssim": mean(rows, m, "ssim"), "cases": len(rows)} for m in methods}}
    for field in ("profile", "shape", "lobe"):
        for value in sorted({r[field] for r in rows}):
            subset = [r for r in rows if r[field] == value]
            out[f"{field}={value}"] = {m: {"psnr": mean(subset, m, "psnr"), "ssim": mean(subset, m, "ssim"), "cases": len(subset)}
                                       for m in methods}
    dice = [r["tissue_dice"] for r in rows]
    out["tissue_dice_in_mask"] = {k: float(np.nanmean([d[k] for d in dice])) for k in ("csf", "gm", "wm")}
    checked = [r for r in rows if r.get("self_check")]
    if checked and "biharmonic" in methods and "tumorgen" in methods:
        # does the self-check's verdict (on known tissue) foretell TumorGen falling behind the classical fill in the mask?
        behind = [r["tumorgen"]["psnr"] < r["biharmonic"]["psnr"] for r in checked]
        flagged = [r["self_check"]["doubtful"] for r in checked]
        out["self_check"] = {"cases": len(checked), "flagged": int(sum(flagged)), "behind_biharmonic": int(sum(behind)),
                             "agree": int(sum(a == b for a, b in zip(flagged, behind)))}
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
        if key in ("tissue_dice_in_mask", "self_check"):
            continue
        cells = " | ".join(f"{value[m]['psnr']:.2f} / {value[m]['ssim']:.3f}" for m in methods)
        print(f"| {key} | {value[methods[0]]['cases']} | {cells} |")
    d = summary["tissue_dice_in_mask"]
    print(f"\nregistered tissue classes inside the masks, mean Dice: CSF {d['csf']:.3f}, GM {d['gm']:.3f}, WM {d['wm']:.3f}")
    checks = [r for r in rows if r.get("self_check")]
    if checks:
        print("\n| case | self-check placement | TumorGen PSNR / SSIM | harmonic PSNR / SSIM | doubtful |\n|---|---|---|---|---|")
        for r in checks:
            c = r["self_check"]
            print(f"| {r['case']} | {c['placement']} | {c['psnr']:.2f} / {c['ssim']:.3f} | {c['classical_psnr']:.2f} / "
                  f"{c['classical_ssim']:.3f} | {'yes' if c['doubtful'] else 'no'} |")
    if "self_check" in summary:
        c = summary["self_check"]
        print(f"\nself-check: flagged {c['flagged']} of {c['cases']} cases; TumorGen behind the biharmonic fill in the mask on "
              f"{c['behind_biharmonic']}; the verdict matched on {c['agree']}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=12, help="how many cases (default 12: every class at least twice)")
    parser.add_argument("--start", type=int, default=0, help="skip the first cases (a long run in parts: every case is "
                        "deterministic)")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated subset of {', '.join(METHODS)}")
    parser.add_argument("--weights", help="model folder (default: the bundled tiny models)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an inpainting setting for tumorgen and oracle (repeatable; default: the engine's defaults)")
    parser.add_argument("--cache", help="keep the registrations in this folder (default: a temporary one), to reuse between runs")
    parser.add_argument("--out", help="write every row and the summary as JSON")
    args = parser.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    from dataclasses import fields

    from tumorgen.inpainting.core import InpaintSettings
    from tumorgen.settings import INPAINTING

    known = [f.name for f in fields(InpaintSettings)]
    settings = {}
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in known or not value:
            parser.error(f"--set wants KEY=VALUE with an inpainting setting ({', '.join(known)}), got {item!r}")
        settings[key] = INPAINTING[key].convert(value)
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        parser.error(f"unknown method(s) {', '.join(unknown)} (known: {', '.join(METHODS)})")

    import torch

    from tumorgen.models.sampling import LatentDiffusion

    model = LatentDiffusion(args.weights, device="cpu")
    rows = []
    with tempfile.TemporaryDirectory(prefix="tumorgen-fidelity-") as scratch:
        cache = Path(args.cache) if args.cache else Path(scratch)
        for case in cases(args.cases)[args.start:]:
            started = time.perf_counter()
            row = run_case(case, methods, model, settings, cache)
            rows.append(row)
            scores = "  ".join(f"{m} {row[m]['psnr']:.2f}/{row[m]['ssim']:.3f}" for m in methods)
            print(f"{case.name}: {scores}  ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    summary = summarise(rows, methods)
    print_tables(rows, summary, methods)
    if args.out:
        record = {"command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])),
                  "weights": str(model.folder), "settings": settings,
                  "threads": torch.get_num_threads(), "summary": summary, "rows": rows}
        Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
