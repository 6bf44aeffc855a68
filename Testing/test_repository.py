"""The repository keeps its promises: layout, pins, CI and README agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_top_level_layout():
    for name in ("CMakeLists.txt", "TumorGen", "TumorGenLib", "Resources", "Testing", "README.md", "setup_dev.py", ".ci/run"):
        assert (ROOT / name).exists(), name


def test_every_engine_dependency_is_pinned():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "TumorGenLib" / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.lower()] = version
    for requirement in requirements:
        name = re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()
        assert name in pins, f"{name} is not pinned in constraints.txt"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python setup_dev.py test" in readme and "setup_dev.py test" in ci
    assert "python setup_dev.py demo" in readme


def test_the_engine_never_imports_slicer_qt_or_trame():
    import ast

    forbidden = {"slicer", "qt", "PythonQt", "ctk", "trame", "trame_slicer", "vtk", "tumorgen_slicer"}
    for path in (ROOT / "TumorGenLib" / "tumorgen").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.relative_to(ROOT)} imports {name}"
