"""The task registry: task names mapped to engine functions.

A task is a function ``run(ctx: TaskContext) -> None`` registered with the
inputs it takes and a dataclass of its parameters. The protocol looks tasks up
here, so adding one means writing a module under :mod:`tumorgen.tasks` (or a
plugin module named in ``TUMORGEN_TASK_MODULES``) and nothing else.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping, get_args, get_origin

from tumorgen.errors import InputError

#: What the backend itself imports for every task (``python -m tumorgen.backend``: volumes and their files).
BACKEND_REQUIRES = ("numpy", "SimpleITK")
#: Environment variable listing extra task modules to import (comma-separated).
PLUGIN_ENV = "TUMORGEN_TASK_MODULES"


@dataclass(frozen=True)
class TaskSpec:
    name: str
    run: Callable[..., None]
    summary: str
    inputs: tuple[str, ...] = ()
    optional_inputs: tuple[str, ...] = ()
    params: type | None = None
    #: What the task imports (import names, e.g. ``SimpleITK``, ``torch``): the packages the backend's Python must have
    #: before a front end may start it (:data:`BACKEND_REQUIRES` are added). Only what this task needs, so that a first
    #: run installs no more than it uses.
    requires: tuple[str, ...] = ()
    #: What the task uses when present and does without otherwise (``torch`` for growth on CUDA): never installed for it.
    optional_requires: tuple[str, ...] = ()

    @property
    def requirements(self) -> tuple[str, ...]:
        """Every import name the backend's Python needs to run this task, the backend's own first."""
        return tuple(dict.fromkeys(BACKEND_REQUIRES + self.requires))

    def parse_params(self, values: Mapping[str, Any]) -> Any:
        """Check job params against the task's dataclass and build it (InputError if wrong)."""
        if self.params is None:
            if values:
                raise InputError(f"task '{self.name}' takes no parameters, got {', '.join(sorted(values))}")
            return None
        return build_params(self.params, values, context=f"task '{self.name}'")

    def check_inputs(self, names: typing.Iterable[str]) -> None:
        names = set(names)
        missing = [n for n in self.inputs if n not in names]
        if missing:
            raise InputError(f"task '{self.name}' needs input(s) {', '.join(missing)}")
        unknown = sorted(names - set(self.inputs) - set(self.optional_inputs))
        if unknown:
            known = ", ".join(self.inputs + self.optional_inputs) or "none"
            raise InputError(f"task '{self.name}' has no input(s) {', '.join(unknown)} (known: {known})")


_REGISTRY: dict[str, TaskSpec] = {}
_loaded = False


def register_task(
    name: str,
    *,
    summary: str,
    inputs: tuple[str, ...] = (),
    optional_inputs: tuple[str, ...] = (),
    params: type | None = None,
    requires: tuple[str, ...] = (),
    optional_requires: tuple[str, ...] = (),
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Decorator that registers ``fn`` as the task ``name``.

    ``requires`` names what the task imports beyond :data:`BACKEND_REQUIRES` (import names, not distributions), and
    ``optional_requires`` what it uses only when present; a test checks both against the imports the task can reach.
    """
    if params is not None and not dataclasses.is_dataclass(params):
        raise TypeError(f"params of task {name!r} must be a dataclass")

    def decorate(fn: Callable[..., None]) -> Callable[..., None]:
        if name in _REGISTRY and _REGISTRY[name].run is not fn:
            raise ValueError(f"task {name!r} is registered twice")
        _REGISTRY[name] = TaskSpec(name, fn, summary, tuple(inputs), tuple(optional_inputs), params, tuple(requires),
                                   tuple(optional_requires))
        return fn

    return decorate


def load_tasks() -> None:
    """Import the built-in tasks and any plugin modules named in ``TUMORGEN_TASK_MODULES``."""
    global _loaded
    if _loaded:
        return
    importlib.import_module("tumorgen.tasks")
    for module in filter(None, (m.strip() for m in os.environ.get(PLUGIN_ENV, "").split(","))):
        importlib.import_module(module)
    _loaded = True


def declared_requirements() -> dict[str, tuple[str, ...]]:
    """What each built-in task requires (:attr:`TaskSpec.requirements`), read from the task modules' source without
    importing them: task name -> import names (a declaration that is not plain literals is left out).

    A front end asks this before a job, on its GUI thread: importing the tasks (numpy, scipy, SimpleITK and every
    task module) would hold that thread for about 0.4 s the first time. A test checks that it agrees with the registry.
    """
    import ast
    from pathlib import Path

    if not _DECLARED:
        for source in sorted((Path(__file__).resolve().parent.parent / "tasks").glob("*.py")):
            for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
                if not (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "register_task" and node.args):
                    continue
                try:
                    task = ast.literal_eval(node.args[0])
                    keywords = {k.arg: k.value for k in node.keywords}
                    requires = tuple(ast.literal_eval(keywords["requires"])) if "requires" in keywords else ()
                except (ValueError, TypeError, SyntaxError):
                    continue
                _DECLARED[task] = tuple(dict.fromkeys(BACKEND_REQUIRES + requires))
    return dict(_DECLARED)


_DECLARED: dict[str, tuple[str, ...]] = {}


def get_task(name: str) -> TaskSpec:
    load_tasks()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InputError(f"unknown task '{name}' (known: {', '.join(sorted(_REGISTRY))})") from None


def available_tasks() -> list[TaskSpec]:
    load_tasks()
    return [_REGISTRY[n] for n in sorted(_REGISTRY)]


# -- parameter checking -------------------------------------------------------


def build_params(cls: type, values: Mapping[str, Any], *, context: str) -> Any:
    """Build dataclass ``cls`` from JSON values, checking names and types."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise InputError(f"{context}: unknown parameter(s) {', '.join(unknown)} (known: {', '.join(fields)})")
    hints = typing.get_type_hints(cls)
    kwargs = {name: _coerce(value, hints[name], f"{context}: parameter '{name}'") for name, value in values.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise InputError(f"{context}: {exc}") from None
    except ValueError as exc:
        raise InputError(f"{context}: {exc}") from None


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, where)
            except InputError as exc:
                errors.append(str(exc))
        raise InputError(errors[0] if errors else f"{where} has the wrong type")
    if origin is Literal:
        if value not in args:
            raise InputError(f"{where} must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise InputError(f"{where} must be a list, got {type(value).__name__}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise InputError(f"{where} must have {len(args)} values, got {len(value)}")
            items = [_coerce(v, a, where) for v, a in zip(value, args)]
        else:
            item_type = args[0] if args else Any
            items = [_coerce(v, item_type, where) for v in value]
        return tuple(items) if origin is tuple else items
    if hint is bool:
        if not isinstance(value, bool):
            raise InputError(f"{where} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{where} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{where} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise InputError(f"{where} must be a string, got {value!r}")
        return value
    return value
