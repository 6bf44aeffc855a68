"""``tumorgen dataset``: a synthetic training set in BraTS layout with its datalist, in this process or on Ray."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tumorgen.cli.progress import StageBar
from tumorgen.device import add_device_argument
from tumorgen.errors import InputError

#: The per-case recipe the command runs (imported by every worker).
MAKER = "tumorgen.synthesis.recipe:make_case"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "dataset",
        help="a synthetic dataset: N cases in BraTS layout and a MONAI/nnU-Net datalist, on local workers or a Ray cluster",
        description="Make N synthetic cases (t1n, t1c, t2w, t2f and BraTS labels) into DIR/<case>/ and list them in "
        "DIR/dataset.json (a MONAI / Decathlon datalist, paths relative to DIR). Case i is deterministic from "
        "(--seed, i), whatever the number of workers. Re-running the same command resumes: complete cases are kept, "
        "a half-written case never remains. The cases run as Ray tasks on a local Ray (default: one worker per CPU) "
        "or on a cluster joined with --ray; --workers 0 runs them in this process without Ray. "
        "Exit status 1 when a case failed (the others are still made).",
        epilog="example: tumorgen dataset --n 100 --out synth --seed 0 --workers 4",
    )
    p.add_argument("--n", type=int, required=True, help="number of cases")
    p.add_argument("--out", required=True, metavar="DIR", help="dataset folder (created if missing; resumed if it holds cases)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the dataset (default 0)")
    p.add_argument("--prefix", default="TGSYN", help="case name prefix (default TGSYN: cases TGSYN-00000, ...)")
    where = p.add_argument_group("where the cases run (one of; default: a local Ray with one worker per CPU)")
    where.add_argument("--workers", type=int, metavar="K", help="a local Ray with K workers; 0: in this process, without Ray")
    where.add_argument("--ray", metavar="ADDRESS", help="join the Ray cluster at ADDRESS (auto, host:6379, ray://host:10001); "
                       "its nodes need TumorGen installed and DIR on a shared file system")
    p.add_argument("--threads-per-case", type=int, default=1, metavar="T", help="PyTorch threads of each case (default 1)")
    recipe = p.add_argument_group("recipe")
    recipe.add_argument("--t1n", metavar="PATH", help="the healthy T1 scan the tumors go into (default: the bundled sample); "
                        "its tissue maps are <case>-tissue-csf/-gm/-wm.nii.gz beside a <case>-t1n.nii.gz, else the registered template's")
    recipe.add_argument("--labels", metavar="DIR", help="a folder of label maps to augment (default: new tumors grown by Fisher–Kolmogorov)")
    recipe.add_argument("--steps", type=int, default=20, help="sampling steps of the generative model (default 20)")
    recipe.add_argument("--samples", type=int, default=2, help="draws averaged into each case (default 2, as tumorgen synthesize)")
    recipe.add_argument("--volume", metavar="LOW,HIGH", default="8,60",
                        help="without --labels: range of the grown tumors' volume, cm³ (default 8,60)")
    recipe.add_argument("--weights", metavar="DIR", help="model weights folder (default: the bundled tiny models)")
    add_device_argument(recipe, help="device of each case")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def settings_from(args: argparse.Namespace) -> dict:
    """The recipe's settings: ``t1n``, ``labels`` and ``weights`` as absolute paths (None: the recipe's default), ``steps``, ``device``."""
    if args.t1n is not None and not Path(args.t1n).is_file():
        raise InputError(f"--t1n {args.t1n}: no such file")
    if args.labels is not None and not Path(args.labels).is_dir():
        raise InputError(f"--labels {args.labels}: no such folder")
    if args.weights is not None and not Path(args.weights).is_dir():
        raise InputError(f"--weights {args.weights}: no such folder")
    try:
        volume = [float(v) for v in args.volume.split(",")]
    except ValueError:
        volume = []
    if len(volume) != 2 or not 0 < volume[0] <= volume[1] <= 500:
        raise InputError(f"--volume must be LOW,HIGH with 0 < LOW <= HIGH <= 500 cm³, got {args.volume!r}")
    if not 1 <= args.samples <= 16:
        raise InputError(f"--samples must be between 1 and 16, got {args.samples}")
    if args.steps < 1:
        raise InputError(f"--steps must be >= 1, got {args.steps}")
    return {
        "t1n": None if args.t1n is None else str(Path(args.t1n).expanduser().resolve()),
        "labels": None if args.labels is None else str(Path(args.labels).expanduser().resolve()),
        "steps": args.steps,
        "device": args.device,
        "weights": None if args.weights is None else str(Path(args.weights).expanduser().resolve()),
        "volume_cm3": volume,
        "samples": args.samples,
    }


def run(args: argparse.Namespace) -> int:
    from tumorgen.synthesis.dataset import MAX_CASES, build_dataset

    if not 1 <= args.n <= MAX_CASES:
        raise InputError(f"--n must be between 1 and {MAX_CASES}, got {args.n}")
    if args.seed < 0:
        raise InputError(f"--seed must be >= 0, got {args.seed}")
    if args.workers is not None and args.ray is not None:
        raise InputError("give --workers or --ray, not both")
    if args.workers is not None and args.workers < 0:
        raise InputError(f"--workers must be >= 0, got {args.workers}")
    if args.threads_per_case < 1:
        raise InputError(f"--threads-per-case must be >= 1, got {args.threads_per_case}")
    if not "".join(args.prefix.split("-")).isalnum():
        raise InputError(f"--prefix must be letters, digits and dashes, got {args.prefix!r}")
    settings = settings_from(args)
    with StageBar(args.quiet) as bar:
        summary = build_dataset(args.out, args.n, seed=args.seed, prefix=args.prefix, maker=MAKER, settings=settings,
                                workers=args.workers, ray_address=args.ray, threads_per_case=args.threads_per_case,
                                progress=lambda fraction, message: bar("dataset", fraction, message))
    print(json.dumps(summary.as_dict(), indent=2))
    return 0 if summary.ok else 1
