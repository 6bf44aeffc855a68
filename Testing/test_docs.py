"""The documentation site builds with ``mkdocs build --strict`` and holds what it promises.

The build fails on a broken link, a missing page, a missing picture and a griffe warning from the API reference;
the checks below read the built site: every command and every task setting in the generated reference, every
benchmark file on a results page, three pictures per guide, and a short README.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDES = ("neurosurgeon", "radiologist", "annotator", "researcher")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (python setup_dev.py installs it)")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    build = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                           cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert build.returncode == 0, build.stderr[-4000:]
    return out


def text_of(page: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8")))


def commands(parser, prefix="tumorgen"):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix} {name}"
                yield from commands(sub, f"{prefix} {name}")


def test_every_command_and_its_options_are_in_the_command_line_reference(site):
    from tumorgen.cli.main import build_parser

    page = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    found = list(commands(build_parser()))
    assert {"tumorgen grow", "tumorgen inpaint", "tumorgen dataset", "tumorgen library build"} <= set(found)
    for command in found:
        assert f'id="{command.replace(" ", "-")}"' in page, f"{command} is not in the command-line reference"
    for option in ("--seed-ras", "--confidence", "--labels", "--resect-box", "--resume"):
        assert option in page


def test_every_task_setting_is_in_the_settings_reference(site):
    from tumorgen.settings import SCHEMAS

    page = text_of(site / "reference" / "settings" / "index.html")
    for schema in SCHEMAS.values():
        for setting in schema.settings:
            row = re.search(rf"\b{re.escape(setting.name)}\s+{re.escape(setting.cli_flag)}\b", page)
            assert row, f"{schema.name}.{setting.name} is not in the settings reference"


def test_every_benchmark_file_is_on_a_results_page_and_every_card_on_the_cards_page(site):
    marked = set()
    for page in (ROOT / "docs" / "results").glob("*.md"):
        marked |= set(re.findall(r"<!--\s*tumorgen:benchmark\s+(\S+)\s*-->", page.read_text(encoding="utf-8")))
    files = {p.name for p in (ROOT / "Resources" / "Benchmarks").glob("*.json")}
    assert files - marked == set(), f"benchmark files on no results page: {sorted(files - marked)}"
    data = json.loads((ROOT / "Resources" / "Benchmarks" / "fidelity-held-out.json").read_text())
    built = text_of(site / "results" / "fidelity" / "index.html")
    assert data["cpu"] in built  # the generated table carries the file's own values
    cards = text_of(site / "reference" / "model-cards" / "index.html")
    for card in (ROOT / "TumorGenLib" / "tumorgen" / "models" / "weights").glob("*/*.json"):
        assert f"{card.parent.name} / {card.stem}" in cards


@pytest.mark.parametrize("guide", GUIDES)
def test_each_guide_has_three_pictures_from_the_picture_script(site, guide):
    source = (ROOT / "docs" / "guides" / f"{guide}.md").read_text(encoding="utf-8")
    pictures = set(re.findall(r"\]\(\.\./images/(guides/[^)\s]+\.png)\)", source))
    assert len(pictures) >= 3, f"{guide}: {len(pictures)} pictures from Testing/tools/guide_pictures.py"
    for picture in pictures:
        assert (site / "images" / picture).stat().st_size > 5000


def test_the_readme_is_short_and_keeps_the_quick_start():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 300
    assert "python setup_dev.py demo" in readme and "python setup_dev.py test" in readme
    for name in ("CHANGELOG.md", "CITATION.cff"):
        assert (ROOT / name).is_file()
