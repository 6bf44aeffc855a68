"""``tumorgen library``: build or describe a case library for post-operative prediction."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from tumorgen.cli.progress import StageBar
from tumorgen.device import add_device_argument
from tumorgen.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "library",
        help="build or describe a case library of pre-/post-operative pairs (post-operative prediction)",
        description="A case library holds, per pre-/post-operative pair, the tumor mask in the template's space, the "
        "resection box, a patch of both scans around the cavity, and an image embedding; tumorgen postop retrieves the "
        "cases whose tumors overlap the query's most and pastes their resections into its composite prompt.",
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    build = sub.add_parser(
        "build", help="build a library from a folder of pairs",
        description="Build a case library from DIR: case folders <subject>-000 (pre-operative: -t1n, -seg) and <subject>-001 "
        "(post-operative: -t1n, -seg with the cavity as label 4, co-registered with the pre-operative scan), as tumorgen "
        "simulate --postop writes them; BraTS-format folders of real pairs named this way work the same. The resection box "
        "is read from the post-operative case's JSON when the simulator wrote one, else it is the cavity's box plus 5 mm.",
        epilog="example: tumorgen simulate --n 50 --postop --out pairs && tumorgen library build --data pairs --out library.npz",
    )
    build.add_argument("--data", required=True, help="folder of pre-/post-operative case folders")
    build.add_argument("--out", required=True, help="library file (.npz)")
    build.add_argument("--weights", help="model weights folder for the image embedding (default: the bundled tiny models)")
    add_device_argument(build)
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    build.set_defaults(func=run_build)
    info = sub.add_parser("info", help="describe a library", description="Print a library's format, cases and size as JSON.")
    info.add_argument("library", nargs="?", help="library file (default: the bundled one)")
    info.set_defaults(func=run_info)


def run_build(args: argparse.Namespace) -> int:
    from tumorgen.atomic import check_output_folder, staged_into
    from tumorgen.models.sampling import LatentDiffusion
    from tumorgen.postop.library import build_library, find_pairs

    out = Path(args.out)
    if out.suffix != ".npz":
        raise InputError(f"--out must be a .npz file, got {out}")
    find_pairs(args.data)  # a folder without pairs fails before the model loads
    check_output_folder(out.parent)
    started = time.perf_counter()
    model = LatentDiffusion(args.weights, device=args.device)
    with StageBar(args.quiet) as progress:
        library = build_library(args.data, model, progress=lambda fraction, message: progress("build", fraction, message))
    with staged_into(out.parent) as staging:  # the folder too is created only with the library
        library.save(staging / out.name)
    print(json.dumps({"library": str(out), "cases": len(library), "bytes": out.stat().st_size,
                      "seconds": round(time.perf_counter() - started, 1)}, indent=2))
    return 0


def run_info(args: argparse.Namespace) -> int:
    from tumorgen.postop.library import CaseLibrary, bundled_library

    path = Path(args.library) if args.library else bundled_library()
    library = CaseLibrary.load(path)
    print(json.dumps({"library": str(path), "format": library.header.get("format"), "version": library.header.get("version"),
                      "cases": len(library), "bytes": path.stat().st_size, "source": library.header.get("source"),
                      "names": library.names[:20] + (["..."] if len(library) > 20 else [])}, indent=2))
    return 0
