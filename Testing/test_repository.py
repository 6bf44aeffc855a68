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
    """Not by an import statement, nor by name at run time (importlib.import_module, __import__)."""
    import ast

    forbidden = {"slicer", "qt", "PythonQt", "ctk", "trame", "trame_slicer", "vtk", "tumorgen_slicer"}
    for path in (ROOT / "TumorGenLib" / "tumorgen").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if called in ("import_module", "__import__", "find_spec"):
                    names.append(node.args[0].value)
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.relative_to(ROOT)} imports {name}"


def test_the_engine_declares_what_it_draws_with_and_the_commands_other_packages_add():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "TumorGenLib" / "pyproject.toml").read_text())["project"]
    assert {"pillow>=10", "matplotlib>=3.8"} <= set(project["dependencies"])  # PNGs and loss curves, not by hand
    assert not any("matplotlib" in r for extra in project["optional-dependencies"].values() for r in extra)
    # the scene package plugs `tumorgen web` into the engine's command line; the engine does not reach for it
    assert project["entry-points"]["tumorgen.commands"] == {"web": "tumorgen_slicer.cli_web:register [web]"}
    assert "web" in project["optional-dependencies"]
