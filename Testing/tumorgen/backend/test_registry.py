"""The task registry and parameter checking."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

import pytest

from tumorgen.backend.registry import available_tasks, build_params, get_task
from tumorgen.errors import InputError


@dataclass
class Params:
    steps: int = 10
    rate: float = 0.1
    mode: Literal["healthy", "tumor"] = "healthy"
    seed_ras: Optional[tuple[float, float, float]] = None
    flag: bool = False

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError("steps must be at least 1")


def test_builtin_tasks_are_registered():
    assert "smoke" in [spec.name for spec in available_tasks()]
    assert get_task("smoke").inputs == ("image",)


def test_unknown_task_lists_the_known_ones():
    with pytest.raises(InputError, match=r"unknown task 'paint' \(known: .*smoke"):
        get_task("paint")


def test_params_are_typed_and_converted():
    p = build_params(Params, {"steps": 3, "rate": 1, "mode": "tumor", "seed_ras": [1, 2.5, -3], "flag": True}, context="t")
    assert p == Params(3, 1.0, "tumor", (1.0, 2.5, -3.0), True)
    assert isinstance(p.rate, float)


@pytest.mark.parametrize(
    "values, expected",
    [
        ({"stepz": 3}, "unknown parameter(s) stepz (known: steps, rate, mode, seed_ras, flag)"),
        ({"steps": "3"}, "parameter 'steps' must be an integer, got '3'"),
        ({"steps": 2.5}, "parameter 'steps' must be an integer"),
        ({"steps": True}, "parameter 'steps' must be an integer"),
        ({"rate": "fast"}, "parameter 'rate' must be a number"),
        ({"mode": "zombie"}, "parameter 'mode' must be one of 'healthy', 'tumor'"),
        ({"seed_ras": [1, 2]}, "parameter 'seed_ras' must have 3 values, got 2"),
        ({"flag": 1}, "parameter 'flag' must be true or false"),
        ({"steps": 0}, "steps must be at least 1"),
    ],
)
def test_bad_params(values, expected):
    with pytest.raises(InputError) as exc:
        build_params(Params, values, context="task 't'")
    assert expected in str(exc.value)


def test_inputs_are_checked_against_the_task():
    spec = get_task("smoke")
    with pytest.raises(InputError, match="needs input"):
        spec.check_inputs([])
    with pytest.raises(InputError, match=r"has no input\(s\) seg \(known: image, mask\)"):
        spec.check_inputs(["image", "seg"])
