"""``tumorgen web``: TumorGen's panels and Slicer's views in a web browser.

The ``tumorgen`` command line finds this command through the entry point
``web`` of the group ``tumorgen.commands`` (see ``TumorGenLib/pyproject.toml``
and :mod:`tumorgen.cli.main`), so the engine never imports the scene package.
This module needs only the standard library: the app itself
(:mod:`tumorgen_slicer.web`, on trame-slicer, the ``web`` extra) is imported
when the command runs, after its options are checked.
"""

from __future__ import annotations

import argparse

from tumorgen.errors import InputError

#: The largest accepted upload by default, MiB (the presenter's limit).
DEFAULT_UPLOAD_LIMIT_MIB = 512


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``web`` subcommand to the ``tumorgen`` command line."""
    p = subparsers.add_parser(
        "web",
        help="the TumorGen panels in a web browser (needs the web extra)",
        description="Serve TumorGen's panels and Slicer's slice and 3D views to a web browser. Binds 127.0.0.1 unless "
        "--host says otherwise: the app runs jobs and accepts uploads, so expose it only on networks you trust.",
    )
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--work-dir", help="where run folders go (default: the system's temporary folder)")
    p.add_argument("--sample-spacing", type=float, default=1.0, metavar="MM", help="voxel size of the sample, mm (default 1)")
    p.add_argument("--upload-limit", type=float, default=DEFAULT_UPLOAD_LIMIT_MIB, metavar="MIB",
                   help=f"largest accepted upload in MiB (default {DEFAULT_UPLOAD_LIMIT_MIB})")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check the options, then serve the app until interrupted."""
    if not 0 < args.port < 65536:
        raise InputError(f"--port must be in 1..65535, got {args.port}")
    if not args.upload_limit > 0:
        raise InputError(f"--upload-limit must be a positive number of MiB, got {args.upload_limit}")
    if not args.sample_spacing > 0:
        raise InputError(f"--sample-spacing must be a positive number of mm, got {args.sample_spacing}")
    try:
        import trame_slicer  # noqa: F401 - the app's framework, which only the web extra installs

        from tumorgen_slicer import web
    except ImportError as exc:
        raise InputError(f"the web extra is not installed ({exc}): pip install -c constraints.txt './TumorGenLib[web]'") from None
    return web.serve(host=args.host, port=args.port, work_dir=args.work_dir, sample_spacing_mm=args.sample_spacing,
                     upload_limit_bytes=int(args.upload_limit * 2**20))
