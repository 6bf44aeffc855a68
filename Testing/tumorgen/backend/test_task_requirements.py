"""Each task declares what it imports, and the declaration covers every import the task can reach.

The reach is read from the source (``ast``), transitively through the engine's own modules and including imports
inside functions, so a lazy ``import torch`` counts. Imports inside ``try: … except ImportError`` are optional by
construction and do not count. A third-party package the task reaches must be in its ``requires`` (installed before
it runs) or ``optional_requires`` (used only when present).
"""

from __future__ import annotations

import ast
import sys
from functools import lru_cache
from pathlib import Path

import pytest

from tumorgen.backend.registry import BACKEND_REQUIRES, available_tasks, get_task

ENGINE = Path(__file__).resolve().parents[3] / "TumorGenLib"
#: Packages the project's own modules are named after, or that are never third-party.
NOT_THIRD_PARTY = set(sys.stdlib_module_names) | {"__future__", "tumorgen"}


def _module_file(name: str) -> Path | None:
    path = ENGINE.joinpath(*name.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    return None


def _guarded(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Whether ``node`` sits in the body of a ``try`` that catches ImportError (or ModuleNotFoundError)."""
    child, parent = node, parents.get(node)
    while parent is not None:
        if isinstance(parent, ast.Try) and child in parent.body:
            names = {ast.unparse(h.type) for h in parent.handlers if h.type is not None}
            if any(n in names or f"({n}" in " ".join(names) for n in ("ImportError", "ModuleNotFoundError")) or \
                    any("ImportError" in n or "ModuleNotFoundError" in n for n in names):
                return True
        child, parent = parent, parents.get(parent)
    return False


@lru_cache(maxsize=None)
def _imports(name: str) -> tuple[frozenset[str], frozenset[str]]:
    """The engine modules and the third-party top-level packages ``name`` imports (unguarded)."""
    path = _module_file(name)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and _guarded(node, parents):
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    engine, third = set(), set()
    for imported in found:
        parts = imported.split(".")
        if parts[0] == "tumorgen":
            for k in range(len(parts), 0, -1):  # the longest prefix that is a module, and the packages above it
                if _module_file(".".join(parts[:k])):
                    engine.update(".".join(parts[:j]) for j in range(1, k + 1) if _module_file(".".join(parts[:j])))
                    break
        elif parts[0] not in NOT_THIRD_PARTY:
            third.add(parts[0])
    return frozenset(engine), frozenset(third)


def reached_packages(module: str) -> set[str]:
    """Third-party packages reachable from ``module`` through the engine's own imports."""
    seen, todo, third = set(), [module, "tumorgen.backend.protocol", "tumorgen.backend.__main__"], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        engine, packages = _imports(name)
        third |= packages
        todo.extend(engine - seen)
    return third


@pytest.mark.parametrize("task", [spec.name for spec in available_tasks()])
def test_a_task_declares_every_package_it_can_import(task):
    spec = get_task(task)
    declared = set(spec.requirements) | set(spec.optional_requires)
    reached = reached_packages(spec.run.__module__)
    assert reached <= declared, f"task {task!r} can import {sorted(reached - declared)} but does not declare them"


def test_growth_needs_neither_ray_torchmetrics_nor_the_generative_models():
    growth = get_task("grow").requirements
    assert set(growth) == {"numpy", "SimpleITK", "scipy", "nilearn"}
    assert not {"ray", "torchmetrics", "inpainting", "monai", "torch", "matplotlib"} & set(growth)
    assert "torch" in get_task("grow").optional_requires  # the CUDA solver, when PyTorch is there


def test_the_backend_core_is_part_of_every_task():
    for spec in available_tasks():
        assert spec.requirements[: len(BACKEND_REQUIRES)] == BACKEND_REQUIRES


def test_the_requirements_read_without_importing_agree_with_the_registry():
    from tumorgen.backend.registry import declared_requirements

    declared = declared_requirements()
    built_in = {spec.name: spec.requirements for spec in available_tasks() if spec.run.__module__.startswith("tumorgen.tasks.")}
    assert declared == built_in
