"""MkDocs hooks: what the documentation site generates instead of repeating by hand.

* Pictures: every PNG under ``Resources/Screenshots/`` is published as ``images/<same path>``, so a page links
  ``../images/demo-montage.png`` and a rerun of the script that drew it updates the site.
* ``changelog.md`` is the repository's ``CHANGELOG.md``.
* Markers a page may hold, each replaced at build time:

  ``<!-- tumorgen:cli -->``
      every ``tumorgen`` command and its options, from the command line's own parsers;
  ``<!-- tumorgen:settings -->``
      every task setting (name, option, meaning, default, range, unit), from :mod:`tumorgen.settings`;
  ``<!-- tumorgen:model-cards -->``
      the bundled weights' cards (what each network was trained on, its metrics, its file's SHA-256);
  ``<!-- tumorgen:benchmark NAME.json -->``
      the tables of ``Resources/Benchmarks/NAME.json`` (its command, machine, summary and per-case rows).

A marker that names a missing file, or an unknown marker, fails the build.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "Resources" / "Screenshots"
BENCHMARKS = ROOT / "Resources" / "Benchmarks"
MARKER = re.compile(r"<!--\s*tumorgen:([a-z-]+)(?:\s+(\S+))?\s*-->")

if str(ROOT / "TumorGenLib") not in sys.path:
    sys.path.insert(0, str(ROOT / "TumorGenLib"))


# ---------------------------------------------------------------- files


def on_files(files, config):
    from mkdocs.structure.files import File

    for picture in sorted(SCREENSHOTS.rglob("*.png")):
        uri = "images/" + picture.relative_to(SCREENSHOTS).as_posix()
        files.append(File.generated(config, uri, abs_src_path=str(picture)))
    changelog = ROOT / "CHANGELOG.md"
    if changelog.exists():
        files.append(File.generated(config, "changelog.md", content=changelog.read_text(encoding="utf-8")))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    def replace(match: re.Match) -> str:
        kind, argument = match.group(1), match.group(2)
        if kind == "cli":
            return cli_reference()
        if kind == "settings":
            return settings_reference()
        if kind == "model-cards":
            return model_cards()
        if kind == "benchmark":
            return benchmark_tables(argument)
        raise ValueError(f"{page.file.src_uri}: unknown marker tumorgen:{kind}")

    return MARKER.sub(replace, markdown)


# ---------------------------------------------------------------- command line


def _escape(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options_table(parser: argparse.ArgumentParser) -> list[str]:
    rows = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        names = ", ".join(f"`{o}`" for o in action.option_strings) or f"`{action.metavar or action.dest}`"
        if action.option_strings and action.nargs != 0:
            metavar = action.metavar or action.dest.upper()
            names += f" `{' '.join(metavar) if isinstance(metavar, tuple) else metavar}`"
        help_text = (action.help or "") if action.help != argparse.SUPPRESS else ""
        if "%(" in help_text:
            try:
                help_text = help_text % {**vars(action), "prog": parser.prog, "default": action.default}
            except (KeyError, TypeError, ValueError):
                pass
        default = action.default
        shown = "" if default in (None, argparse.SUPPRESS, False) or action.nargs == 0 else f"`{default}`"
        if action.choices and not isinstance(action.choices, dict):
            help_text += " Choices: " + ", ".join(f"`{c}`" for c in action.choices) + "."
        rows.append(f"| {names} | {_escape(help_text)} | {shown} |")
    if not rows:
        return []
    return ["| argument | meaning | default |", "|---|---|---|", *rows, ""]


def _command_section(name: str, parser: argparse.ArgumentParser, level: int) -> list[str]:
    lines = [f"{'#' * level} `{name}`", ""]
    if parser.description:
        lines += [parser.description.strip(), ""]
    lines += ["```text", parser.format_usage().strip(), "```", ""]
    lines += _options_table(parser)
    if parser.epilog:
        lines += [parser.epilog.strip(), ""]
    for child, subparser in _subparsers(parser).items():
        lines += _command_section(f"{name} {child}", subparser, min(level + 1, 4))
    return lines


def cli_reference() -> str:
    from tumorgen.cli.main import build_parser

    parser = build_parser()
    commands = _subparsers(parser)
    lines = ["Generated from the command line's own parsers (`tumorgen.cli.main.build_parser`); "
             "`tumorgen COMMAND --help` prints the same.", "",
             "| command | what it does |", "|---|---|"]
    for name, sub in commands.items():
        summary = (sub.description or "").strip().split("\n\n")[0].replace("\n", " ")
        lines.append(f"| [`tumorgen {name}`](#tumorgen-{name}) | {_escape(summary)} |")
    lines.append("")
    for name, sub in commands.items():
        lines += _command_section(f"tumorgen {name}", sub, 2)
    return "\n".join(lines)


# ---------------------------------------------------------------- settings


def _range(setting) -> str:
    if setting.choices:
        return ", ".join(f"`{c}`" for c in setting.choices)
    low, high = setting.minimum, setting.maximum
    if low is None and high is None:
        return ""
    return f"{'' if low is None else low} – {'' if high is None else high}"


def settings_reference() -> str:
    from tumorgen.settings import SCHEMAS

    lines = ["Generated from the one settings schema (`tumorgen.settings`): the command line's options, the backend's "
             "job parameters, the desktop panels, the Slicer parameter node and the web form all derive from it.", ""]
    for name, schema in SCHEMAS.items():
        lines += [f"## {name}", "", "| setting | option | meaning | default | range or choices | unit |",
                  "|---|---|---|---|---|---|"]
        for s in schema.settings:
            default = "not set" if s.default is None else f"`{s.default}`"
            lines.append(f"| `{s.name}` | `{s.cli_flag}` | {_escape(s.help)} | {default} | {_range(s)} | {s.unit} |")
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------- model cards


def _flat(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        out = []
        for key, item in value.items():
            out += _flat(item, f"{prefix}.{key}" if prefix else str(key))
        return out
    if isinstance(value, list) and len(value) > 8:
        return []  # curves and long lists: in the JSON, not in a table
    return [(prefix, value)]


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(v) for v in value)
    return _escape(value)


def model_cards() -> str:
    weights = ROOT / "TumorGenLib" / "tumorgen" / "models" / "weights"
    lines = ["Generated from the cards bundled beside the weights (`tumorgen/models/weights/<config>/<network>.json`); "
             "loss curves are in the cards themselves.", ""]
    for card_path in sorted(weights.glob("*/*.json")):
        card = json.loads(card_path.read_text())
        lines += [f"## {card_path.parent.name} / {card_path.stem}", ""]
        if card.get("model"):
            lines += [f"**Model**: {card['model']}", ""]
        if card.get("training_data"):
            lines += [f"**Trained on**: {card['training_data']}", ""]
        rows = [(k, v) for k, v in _flat({k: v for k, v in card.items() if k not in ("model", "training_data")})
                if not k.startswith("loss_curve")]
        lines += ["| field | value |", "|---|---|", *[f"| `{k}` | {_cell(v)} |" for k, v in rows], ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- benchmark tables


def _table(rows: list[dict[str, Any]], label: str = "") -> list[str]:
    """A Markdown table of dictionaries (scalar and short-list values; nested ones flattened as ``a.b``)."""
    columns: list[str] = [label] if label else []
    flat_rows = []
    for row in rows:
        flat = {k: v for k, v in _flat(row) if not isinstance(v, (dict, list))
                or all(not isinstance(i, (dict, list)) for i in v)}
        flat_rows.append(flat)
        columns += [k for k in flat if k not in columns]
    if len(columns) <= (1 if label else 0):
        return []
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(flat.get(c, "")) for c in columns) + " |" for flat in flat_rows]
    return lines + [""]


def _section(name: str, value: Any) -> list[str]:
    if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
        return [f"**{name}**", "", *_table([{name: k, **v} for k, v in value.items()], label=name)]
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [f"**{name}** ({len(value)})", "", *_table(value)]
    if isinstance(value, dict):
        flat = _flat(value)
        if not flat:
            return []
        return [f"**{name}**", "", "| field | value |", "|---|---|", *[f"| `{k}` | {_cell(v)} |" for k, v in flat], ""]
    return []


def benchmark_tables(name: str | None) -> str:
    if not name:
        raise ValueError("tumorgen:benchmark needs a file name")
    path = BENCHMARKS / name
    if not path.exists():
        raise FileNotFoundError(f"tumorgen:benchmark {name}: no such file under Resources/Benchmarks")
    data = json.loads(path.read_text())
    body: list[str] = []
    scalars = [(k, v) for k, v in data.items() if not isinstance(v, (dict, list))]
    commands = data.get("commands") or ([data["command"]] if isinstance(data.get("command"), str) else [])
    for command in commands:
        body += ["```bash", str(command), "```", ""]
    if scalars:
        body += ["| field | value |", "|---|---|",
                 *[f"| `{k}` | {_cell(v)} |" for k, v in scalars if k != "command"], ""]
    for key, value in data.items():
        if key in ("commands",) or not isinstance(value, (dict, list)):
            continue
        body += _section(key, value)
    indented = "\n".join(("    " + line) if line else "" for line in body)
    return f'??? info "The data: `Resources/Benchmarks/{name}` (generated from the file)"\n\n{indented}\n'
