"""``tumorgen simulate``: simulated BraTS-style subjects from the MNI152 template."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

from tumorgen.cli.progress import StageBar
from tumorgen.errors import InputError


def _days(text: str) -> list[float]:
    try:
        return [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated days, got {text!r}") from None


def _range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH, got {text!r}") from None
    return lo, hi


#: The ranges --varied-imaging draws each subject's imaging from (uniformly, from the subject's seed).
VARIED = {"bias": (0.05, 0.35), "noise": (0.015, 0.06), "jitter": (0.05, 0.20)}


def varied_imaging(seed, reference: bool = False):
    """The imaging options of one subject under --varied-imaging, deterministic from its seed."""
    import numpy as np

    from tumorgen.simulate.contrasts import ImagingOptions

    rng = np.random.default_rng([*seed, 7])
    return ImagingOptions(reference=reference, **{k: float(rng.uniform(*v)) for k, v in VARIED.items()})


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="simulated subjects: MNI152 anatomy, tumor with mass effect, four contrasts, labels",
        description="Simulate BraTS-style subjects from the MNI152 template: a random diffeomorphic deformation of "
        "the anatomy, a Fisher–Kolmogorov tumor with mass effect, t1n/t1c/t2w/t2f with bias field and Rician noise, "
        "BraTS labels. Each case goes to DIR/<case>/ (docs/user/simulate.md lists the files); DIR/cases.json lists them. "
        "Subject i is deterministic from (--seed, i).",
        epilog="example: tumorgen simulate --n 20 --out sims --seed 0 --postop --preview",
    )
    p.add_argument("--n", type=int, default=1, help="number of subjects (default 1)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--spacing", type=float, default=1.0, metavar="MM", help="isotropic voxel size, mm (default 1: the template's grid)")
    p.add_argument("--prefix", default="TGSIM", help="case name prefix (default TGSIM: cases TGSIM-00000-000, ...)")
    tumor = p.add_argument_group("tumor")
    tumor.add_argument("--healthy", action="store_true", help="no tumor")
    tumor.add_argument("--volume", type=_range, default=(8.0, 60.0), metavar="LOW,HIGH", help="tumor volume range, cm³ (default 8,60)")
    tumor.add_argument("--d-white", type=_range, default=(0.1, 0.8), metavar="LOW,HIGH",
                       help="range of the white-matter diffusivity, mm²/day (default 0.1,0.8)")
    tumor.add_argument("--rho", type=_range, default=(0.08, 0.25), metavar="LOW,HIGH",
                       help="range of the proliferation rate, 1/day (default 0.08,0.25; slower tumors, e.g. 0.01,0.03, "
                            "keep a --series of months within the brain)")
    tumor.add_argument("--mass-effect", type=float, default=0.5, metavar="F",
                       help="tissue pushed aside as a fraction of the tumor's volume (default 0.5; 0 = none)")
    tumor.add_argument("--no-deform", action="store_true", help="keep the template's own anatomy")
    diversity = p.add_argument_group("diversity (training data unlike the template)")
    diversity.add_argument("--fold", type=float, default=0.0, metavar="MM",
                           help="RMS of a fine deformation (σ 4 mm) that moves gyri and sulci, mm (default 0: none)")
    diversity.add_argument("--varied-imaging", action="store_true",
                           help=f"draw each subject's imaging: bias field {VARIED['bias'][0]:g}–{VARIED['bias'][1]:g}, noise "
                                f"{VARIED['noise'][0]:g}–{VARIED['noise'][1]:g} of white matter, tissue intensities jittered "
                                f"±{VARIED['jitter'][0]:g}–{VARIED['jitter'][1]:g} (default: the standard imaging)")
    states = p.add_argument_group("post-operative state and time series")
    states.add_argument("--postop", action="store_true", help="also write the post-operative state (case ...-001): the core resected in a box around it")
    states.add_argument("--margin", type=float, default=3.0, metavar="MM", help="resection margin around the core, mm (default 3)")
    states.add_argument("--series", type=_days, metavar="D1,D2,...", help="also write follow-ups at these days after the scan (cases ...-001, ...)")
    states.add_argument("--rt-start", type=float, metavar="DAY", help="with --series: radiotherapy starts on this day")
    states.add_argument("--rt-alpha", type=float, default=0.7, help="with --rt-start: fraction of tumor cells lethally damaged (default 0.7)")
    p.add_argument("--noise-free-reference", action="store_true",
                   help="also write each contrast without its noise (<case>-t1n-noisefree.nii.gz, ...), on the same intensity scale: "
                        "the reference for measuring how much anatomy a model reproduces")
    p.add_argument("--healthy-reference", action="store_true",
                   help="also write the subject's healthy anatomy (before the tumor and its mass effect) imaged with the same draws: "
                        "<case>-t1n-healthy.nii.gz, ... (the pairs that label-map synthesis trains on)")
    p.add_argument("--preview", action="store_true", help="write <case>-preview.png (three planes × four contrasts + labels)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tumorgen.simulate.subject import SimulationOptions, auto_resection_box, postoperative, simulate_subject, time_series, spawn_rngs
    from tumorgen.atomic import check_output_folder, staged_into
    from tumorgen.simulate.writer import write_case

    if not 1 <= args.n <= 100_000:
        raise InputError(f"--n must be between 1 and 100000, got {args.n}")
    if args.seed < 0:
        raise InputError(f"--seed must be >= 0, got {args.seed}")
    if args.healthy and (args.postop or args.series):
        raise InputError("--postop and --series need a tumor; drop --healthy")
    if args.postop and args.series:
        raise InputError("give --postop or --series, not both")
    if args.rt_start is not None and not args.series:
        raise InputError("--rt-start applies to --series")
    if args.series is not None and (not args.series or min(args.series) <= 0 or sorted(set(args.series)) != args.series):
        raise InputError(f"--series days must be positive and increasing, got {args.series}")
    if not 0.0 <= args.mass_effect <= 2.0:
        raise InputError(f"--mass-effect must be between 0 and 2, got {args.mass_effect}")
    if not "".join(args.prefix.split("-")).isalnum():
        raise InputError(f"--prefix must be letters, digits and dashes, got {args.prefix!r}")
    from tumorgen.simulate.contrasts import ImagingOptions

    options = SimulationOptions(spacing_mm=args.spacing, deform=not args.no_deform, tumor=not args.healthy, volume_cm3=args.volume,
                                d_white=args.d_white, rho=args.rho,
                                mass_effect=args.mass_effect, fold_mm=args.fold, imaging=ImagingOptions(reference=args.noise_free_reference),
                                healthy_reference=args.healthy_reference)
    out = check_output_folder(args.out)
    started = time.perf_counter()
    cases = []
    # every case and the manifest go in together, so a failure half-way leaves --out as it was
    with staged_into(out) as staging, StageBar(args.quiet) as progress:
        for i in range(args.n):
            seed = [args.seed, i]
            case = f"{args.prefix}-{i:05d}-000"

            def report(fraction, message, i=i):
                progress("simulate", (i + 0.8 * fraction) / args.n, f"subject {i + 1}/{args.n}: {message}")

            if args.varied_imaging:
                options = dataclasses.replace(options, imaging=varied_imaging(seed, args.noise_free_reference))
            subject = simulate_subject(seed, options, case=case, progress=report)
            written = [subject]
            if args.postop:
                centre, size = auto_resection_box(subject, spawn_rngs([*seed, 1], 1)[0])
                written.append(postoperative(subject, centre, size, margin_mm=args.margin, seed=[*seed, 2], options=options,
                                             case=case[:-3] + "001"))
            if args.series:
                follow = time_series(subject, [0.0, *args.series], rt_start=args.rt_start, alpha=args.rt_alpha, seed=[*seed, 3], options=options)
                for n, later in enumerate(follow[1:], start=1):
                    later.case = f"{case[:-3]}{n:03d}"
                    written.append(later)
            report(0.9, "writing")
            for item in written:
                write_case(item, staging, preview=args.preview)
                cases.append({"case": item.case, "state": item.info.get("state", "pre-operative"), "day": item.info.get("day", 0.0),
                              "regions_cm3": item.info.get("regions_cm3")})
        manifest = {"seed": args.seed, "n": args.n, "spacing_mm": args.spacing, "cases": cases}
        (staging / "cases.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        progress("simulate", 1.0, "done")
    print(json.dumps({"cases": len(cases), "out": str(out), "seconds": round(time.perf_counter() - started, 2)}, indent=2))
    return 0
