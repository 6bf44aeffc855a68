"""``tumorgen tissues``: CSF/GM/WM maps for a T1 from the registered MNI152 template."""

from __future__ import annotations

import argparse
import json
import time

from tumorgen.cli.progress import StageBar


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "tissues",
        help="tissue maps for a T1: register the MNI152 template and carry its CSF/GM/WM maps",
        description="Register the bundled MNI152 template to the subject's T1 (affine, then deformable; "
        "an --exclude mask such as the tumor is kept out of the metric) and carry its tissue maps onto the "
        "T1's exact grid. Writes tissue-csf/gm/wm.nii.gz (probabilities) and tissue-labels.nii.gz "
        "(1 CSF, 2 GM, 3 WM) to --out. The registration is cached per input "
        "($TUMORGEN_CACHE_DIR/tissues or ~/.cache/tumorgen/tissues), so a repeated call takes seconds.",
        epilog="example: tumorgen tissues --t1n case-t1n.nii.gz --exclude case-seg.nii.gz --out case-tissues",
    )
    p.add_argument("--t1n", required=True, help="the subject's T1 (NIfTI, NRRD, MHA)")
    p.add_argument("--exclude", help="binary mask on the T1's grid kept out of the registration (tumor, cavity)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--affine-only", action="store_true", help="skip the deformable stage (faster, less exact)")
    p.add_argument("--no-cache", action="store_true", help="neither reuse nor store the registration")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tumorgen.anatomy.registration import RegistrationSettings, register_template, carry_tissues
    from tumorgen.anatomy.tissues import FILE_NAMES, LABEL_FILE_NAME, TISSUE_NAMES
    from tumorgen.atomic import check_output_folder, staged_into
    from tumorgen.volume_io import read_mask, read_volume, write_volume

    started = time.perf_counter()
    t1n = read_volume(args.t1n, role="t1n")
    exclude = read_mask(args.exclude, reference=t1n, reference_name="t1n", role="exclude") if args.exclude else None
    out = check_output_folder(args.out)  # created only with the outputs, so a failure leaves none
    settings = RegistrationSettings(deformable=not args.affine_only)
    with StageBar(args.quiet) as progress:
        registration = register_template(t1n, exclude, settings=settings, use_cache=not args.no_cache, progress=progress)
        progress("carry", 0.95, "carrying the tissue maps")
        maps = carry_tissues(registration.transform, t1n, exclude)
        progress("carry", 1.0, "tissue maps ready")
    files = {**{name: out / FILE_NAMES[name] for name in TISSUE_NAMES}, "labels": out / LABEL_FILE_NAME}
    with staged_into(out) as staging:  # all four files or none
        for name in TISSUE_NAMES:
            write_volume(getattr(maps, name), staging / FILE_NAMES[name])
        write_volume(maps.labels(), staging / LABEL_FILE_NAME)
    from tumorgen.anatomy.tissues import CSF, GM, WM

    labels = maps.labels().array
    voxel_cm3 = float(t1n.grid.spacing[0] * t1n.grid.spacing[1] * t1n.grid.spacing[2]) / 1000.0
    summary = {
        "registration": "affine" if args.affine_only else "affine + deformable",
        "cached": registration.cached,
        "registration_seconds": round(registration.seconds, 2),
        "intensity_mse_affine": round(registration.mse_affine, 5),
        "intensity_mse_final": round(registration.mse_final, 5),
        "volumes_cm3": {name: round(float((labels == value).sum()) * voxel_cm3, 2) for name, value in (("csf", CSF), ("gm", GM), ("wm", WM))},
        "seconds": round(time.perf_counter() - started, 2),
        "outputs": {k: str(v) for k, v in files.items()},
    }
    print(json.dumps(summary, indent=2))
    return 0


