"""``tumorgen``: the engine's command line.

Every subcommand module exposes ``register(subparsers)``, which adds its parser
and sets ``func(args) -> int``. Errors the user can fix print one line and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from tumorgen import __version__
from tumorgen.errors import InputError

#: Subcommand modules, in the order ``--help`` lists them.
COMMANDS = ("demo", "simulate", "grow", "forecast", "tissues", "inpaint", "evaluate", "train", "run", "tasks", "info", "web")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="tumorgen",
        description="Generate brain-tumor MRI under biophysical and clinical control.",
        epilog="Run 'tumorgen COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"tumorgen {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"tumorgen.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"tumorgen {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tumorgen {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
