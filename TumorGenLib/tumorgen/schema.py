"""Typed settings schemas: each setting's name, type, range, default and help, written once.

A :class:`Setting` describes one user-facing value; a :class:`Schema` groups the
settings of one task. Every layer derives from these objects instead of
repeating the values:

* the engine's parameter dataclasses take their defaults from them and check
  ranges with :meth:`Schema.check`;
* the CLI builds its options with :meth:`Schema.add_arguments`;
* the backend parses job parameters through the same dataclasses;
* the presenter converts front-end values with :meth:`Setting.convert`;
* the Slicer parameter node annotates its fields with the ranges
  (``WithinRange``) and choices (``Choice``) found here;
* the web form reads defaults, ranges and choices from :meth:`Setting.describe`.

The schemas themselves (growth, inpainting, editing, …) live in
:mod:`tumorgen.settings`. This module is pure Python: the Slicer GUI process
imports it.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping

from tumorgen.errors import InputError

_TYPES = (bool, int, float, str)


@dataclass(frozen=True)
class Setting:
    """One user-facing value.

    Args:
        name: the setting's name in job parameters, the presenter and the parameter node.
        type: ``bool``, ``int``, ``float`` or ``str``.
        default: the default value (``None`` only when ``optional``).
        help: one sentence for tooltips and ``--help``.
        label: a short label for panels (default: the name).
        unit: shown after values (``mm``, ``cm³``, ``/day``).
        minimum: the lowest allowed number (inclusive).
        maximum: the highest allowed number (inclusive).
        choices: the allowed values of a string setting.
        optional: whether ``None`` (not set) is allowed.
        flag: the CLI option (default ``--name-with-dashes``); for a bool that defaults to true, the option
            that turns it off (``--no-histogram``).
        step: how far a spin box steps.
        decimals: how many decimals a spin box shows.
    """

    name: str
    type: type
    default: Any
    help: str
    label: str = ""
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    optional: bool = False
    flag: str | None = None
    step: float | None = None
    decimals: int | None = None

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise TypeError(f"setting {self.name}: type must be one of bool, int, float, str")
        if self.default is None and not self.optional:
            raise TypeError(f"setting {self.name}: only an optional setting may default to None")
        if self.default is not None:
            self.check(self.default)

    @property
    def cli_flag(self) -> str:
        if self.flag:
            return self.flag
        if self.type is bool and self.default:
            return "--no-" + self.name.replace("_", "-")
        return "--" + self.name.replace("_", "-")

    # -- values ----------------------------------------------------------------------------------------
    def convert(self, value: Any, *, check: bool = True) -> Any:
        """``value`` as this setting's type, checked against its range and choices (unless ``check`` is false).

        The one conversion rule for every layer: ``None`` is allowed only for optional settings; a bool must be
        a bool (or the text ``true``/``false``); an int accepts an integral number or its text; a float any
        finite number or its text (front ends' text fields send text). Raises InputError naming the setting.
        """
        where = self.name
        if value is None or (isinstance(value, str) and value.strip() == "" and self.type is not str):
            if self.optional:
                return None
            raise InputError(f"{where} must be set ({self._expected()})")
        if self.type is bool:
            if isinstance(value, str) and value.strip().lower() in ("true", "false"):
                value = value.strip().lower() == "true"
            if not isinstance(value, bool):
                raise InputError(f"{where} must be true or false, got {value!r}")
            return value
        if self.type is str:
            if not isinstance(value, str):
                raise InputError(f"{where} must be text, got {value!r}")
            return self.check(value) if check else value
        if isinstance(value, bool):
            raise InputError(f"{where} must be a number, got {value!r}")
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise InputError(f"{where} must be a number, got {value!r}") from None
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InputError(f"{where} must be a finite number, got {value!r}")
        if self.type is int:
            if float(value) != int(value):
                raise InputError(f"{where} must be a whole number, got {value!r}")
            value = int(value)
        else:
            value = float(value)
        return self.check(value) if check else value

    def check(self, value: Any) -> Any:
        """Raise InputError if an already-typed ``value`` is outside the range or choices; return it."""
        if value is None:
            if not self.optional:
                raise InputError(f"{self.name} must be set ({self._expected()})")
            return value
        if self.choices is not None and value not in self.choices:
            raise InputError(f"{self.name} must be one of {', '.join(self.choices)}, got {value!r}")
        if self.type in (int, float) and not isinstance(value, bool):
            low = self.minimum if self.minimum is not None else -math.inf
            high = self.maximum if self.maximum is not None else math.inf
            if not (isinstance(value, (int, float)) and math.isfinite(value) and low <= value <= high):
                raise InputError(f"{self.name} must be {self._expected()}, got {value!r}")
        return value

    def _expected(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(self.choices)
        kind = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}[self.type]
        if self.minimum is not None and self.maximum is not None:
            kind += f" in [{self.minimum:g}, {self.maximum:g}]"
        elif self.minimum is not None:
            kind += f" ≥ {self.minimum:g}"
        elif self.maximum is not None:
            kind += f" ≤ {self.maximum:g}"
        return kind + (f" {self.unit}" if self.unit else "")

    # -- front ends -------------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """A JSON-friendly description (the web form builds its fields from this)."""
        out: dict[str, Any] = {"name": self.name, "type": self.type.__name__, "default": self.default, "help": self.help,
                               "label": self.label or self.name, "unit": self.unit, "optional": self.optional}
        for key in ("minimum", "maximum", "choices", "step", "decimals"):
            value = getattr(self, key)
            if value is not None:
                out[key] = list(value) if key == "choices" else value
        return out

    def add_argument(self, parser: argparse._ActionsContainer, **overrides: Any) -> argparse.Action:
        """Add this setting to an argparse parser (``dest`` is the setting's name)."""
        unit = f" {self.unit}" if self.unit else ""
        help_text = self.help.replace("%", "%%")  # argparse formats help with %
        if self.type is bool:
            action = "store_false" if self.default else "store_true"
            text = f"turn off: {help_text} (on by default)" if self.default else f"{help_text} (off by default)"
            return parser.add_argument(self.cli_flag, dest=self.name, action=action, help=overrides.pop("help", text))
        kwargs: dict[str, Any] = {"dest": self.name, "default": self.default, "type": self._parse_cli}
        if self.choices is not None:
            kwargs.update(choices=self.choices, type=str)
        if self.default is None:
            kwargs["help"] = help_text + (" (none to leave unset)" if self.type is not str else "")
        else:
            default = f"{self.default:g}" if isinstance(self.default, float) else self.default
            kwargs["help"] = f"{help_text} (default {default}{unit})"
        if self.type in (int, float) and self.choices is None:
            kwargs["metavar"] = "N" if self.type is int else "X"
        kwargs.update(overrides)
        return parser.add_argument(self.cli_flag, **kwargs)

    def _parse_cli(self, text: str) -> Any:
        if self.optional and text.strip().lower() in ("none", "off"):
            return None
        try:
            # the range is checked where the command builds its parameters: one line, exit 2, like every input error
            return self.convert(text, check=False)
        except InputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None


@dataclass(frozen=True)
class Schema:
    """The settings of one task, in the order panels and ``--help`` show them."""

    name: str
    settings: tuple[Setting, ...]
    _by_name: dict[str, Setting] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for s in self.settings:
            if s.name in self._by_name:
                raise TypeError(f"schema {self.name}: {s.name} is defined twice")
            self._by_name[s.name] = s

    def __getitem__(self, name: str) -> Setting:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"schema {self.name} has no setting {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Setting]:
        return iter(self.settings)

    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.settings)

    def default(self, name: str) -> Any:
        return self[name].default

    def defaults(self, names: Iterable[str] | None = None) -> dict[str, Any]:
        return {s.name: s.default for s in self.settings if names is None or s.name in set(names)}

    def check(self, values: Any) -> None:
        """Check every setting present in ``values`` (a mapping or an object with attributes) against its range."""
        for s in self.settings:
            if isinstance(values, Mapping):
                if s.name in values:
                    s.check(values[s.name])
            elif hasattr(values, s.name):
                s.check(getattr(values, s.name))

    def convert(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Convert front-end values by name (unknown names are an InputError)."""
        unknown = sorted(set(values) - set(self._by_name))
        if unknown:
            raise InputError(f"{self.name}: unknown setting(s) {', '.join(unknown)}")
        return {name: self[name].convert(value) for name, value in values.items()}

    def add_arguments(self, parser: argparse._ActionsContainer, names: Iterable[str] | None = None) -> None:
        for s in self.settings:
            if names is None or s.name in set(names):
                s.add_argument(parser)

    def describe(self) -> list[dict[str, Any]]:
        return [s.describe() for s in self.settings]
