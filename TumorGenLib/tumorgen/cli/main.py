"""``tumorgen``: the engine's command line.

Every subcommand module exposes ``register(subparsers)``, which adds its parser
and sets ``func(args) -> int``. Errors the user can fix print one line and exit 2.

Other packages add commands through the entry-point group
:data:`COMMAND_GROUP`: each entry point is named after its command and points
at such a ``register`` function, and may name the extras it needs
(``web = "tumorgen_slicer.cli_web:register [web]"``). That is how the scene
package adds ``tumorgen web`` without the engine importing it. An entry point
that cannot be loaded does not break the other commands: its command is still
listed, and running it says in one line what is missing.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import EntryPoint, entry_points
from typing import Sequence

from tumorgen import __version__
from tumorgen.errors import InputError

#: The engine's own subcommand modules, in the order ``--help`` lists them (other packages' commands follow).
COMMANDS = ("demo", "simulate", "grow", "forecast", "tissues", "inpaint", "postop", "followup", "synthesize", "dataset", "library", "evaluate", "train", "run", "tasks", "info")
#: Commands that do no numerical work: they skip measuring the free cores (a tenth of a second).
LIGHT_COMMANDS = ("tasks", "info", "web")
#: The entry-point group through which other packages add commands.
COMMAND_GROUP = "tumorgen.commands"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tumorgen",
        description="Generate brain-tumor MRI under biophysical and clinical control.",
        epilog="Run 'tumorgen COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"tumorgen {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"tumorgen.cli.{name}").register(subparsers)
    taken = set(COMMANDS)
    for entry_point in command_entry_points():
        if entry_point.name in taken:  # another package cannot replace a command, nor two packages share one
            continue
        taken.add(entry_point.name)
        try:
            register = entry_point.load()
        except Exception as exc:  # noqa: BLE001 - a broken or partial install of one package must not take the others down
            _register_unavailable(subparsers, entry_point, exc)
        else:
            register(subparsers)
    return parser


def command_entry_points() -> list[EntryPoint]:
    """The installed entry points of :data:`COMMAND_GROUP`, by name."""
    return sorted(entry_points(group=COMMAND_GROUP), key=lambda entry_point: entry_point.name)


def _register_unavailable(subparsers: argparse._SubParsersAction, entry_point: EntryPoint, exc: Exception) -> None:
    """Add ``entry_point``'s command as one that, whatever its arguments, says what is missing."""
    reason = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ImportError) else str(exc)
    extras = ",".join(entry_point.extras)
    if extras:
        distribution = entry_point.dist.name if entry_point.dist is not None else "tumorgen"
        target = "./TumorGenLib" if distribution == "tumorgen" else distribution
        message = f"the {extras} extra is not installed ({reason}): pip install -c constraints.txt '{target}[{extras}]'"
        summary = f"(needs the {extras} extra, which is not installed)"
    else:
        message = f"the command cannot be loaded from {entry_point.value} ({reason})"
        summary = "(cannot be loaded)"

    def fail(args: argparse.Namespace) -> int:  # noqa: ARG001
        raise InputError(message)

    p = subparsers.add_parser(entry_point.name, help=summary, description=message, add_help=False)
    p.set_defaults(func=fail, accepts_any_arguments=True)


def main(argv: Sequence[str] | None = None) -> int:
    from tumorgen.threads import configure_threads, prepare_environment

    prepare_environment()  # passive OpenMP waiting, before anything imports PyTorch
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "accepts_any_arguments", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")  # what parse_args says
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        if args.command not in LIGHT_COMMANDS:
            configure_threads()  # PyTorch's threads: the cores other processes leave free
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"tumorgen {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tumorgen {args.command}: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """The ``tumorgen`` console script: :func:`main`, then the process ends without the interpreter's slow
    finalisation (:func:`tumorgen.shutdown.exit_now`)."""
    from tumorgen.shutdown import exit_now

    code = 1
    try:
        code = main()
    except SystemExit as exc:  # argparse's errors and --help
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
    except KeyboardInterrupt:
        code = 130
    except BaseException:  # a bug: its traceback, as Python would print it, then exit 1
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        exit_now(code)


if __name__ == "__main__":
    entry()
