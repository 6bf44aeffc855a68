"""One settings schema per task: the engine's dataclasses, the backend task and the CLI all take it from there."""

from __future__ import annotations

import argparse
import dataclasses
import math

import pytest

from tumorgen.backend.registry import get_task
from tumorgen.biophysics.fk import GrowthParams
from tumorgen.biophysics.labels import LabelThresholds
from tumorgen.errors import InputError
from tumorgen.inpainting.core import InpaintSettings
from tumorgen.schema import Setting
from tumorgen.settings import EDITING, GROWTH, INPAINTING, POSTOP, RUN, SCHEMAS
from tumorgen.tasks.grow import GrowTaskParams
from tumorgen.tasks.inpaint import InpaintTaskParams


def _defaults(cls) -> dict:
    return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}


@pytest.mark.parametrize("cls, schema, renames", [
    (GrowTaskParams, GROWTH, {}),
    (InpaintTaskParams, INPAINTING, {}),
    (InpaintSettings, INPAINTING, {}),
    (GrowthParams, GROWTH, {}),
    (LabelThresholds, GROWTH, {"edema": "edema_threshold", "core": "core_threshold", "necrosis": "necrosis_threshold"}),
])
def test_engine_dataclasses_take_their_defaults_from_the_schema(cls, schema, renames):
    defaults = _defaults(cls)
    shared = {name: value for name, value in defaults.items() if renames.get(name, name) in schema}
    assert shared, cls
    for name, value in shared.items():
        assert value == schema.default(renames.get(name, name)), (cls.__name__, name)


def test_the_backend_tasks_parse_their_parameters_through_the_schema_dataclasses():
    assert get_task("grow").params is GrowTaskParams and get_task("inpaint").params is InpaintTaskParams
    assert set(INPAINTING.names()) <= {f.name for f in dataclasses.fields(InpaintTaskParams)}
    assert set(GROWTH.names()) <= {f.name for f in dataclasses.fields(GrowTaskParams)}
    with pytest.raises(InputError, match=r"^task 'inpaint': steps must be a whole number in \[1, 1000\], got 0$"):
        get_task("inpaint").parse_params({"steps": 0})
    with pytest.raises(InputError, match=r"d_white must be a number in \[0.01, 10\] mm²/day, got 0.0"):
        get_task("grow").parse_params({"d_white": 0.0})


def _numeric(schema):
    return [s for s in schema if s.type in (int, float) and s.choices is None]


@pytest.mark.parametrize("setting", _numeric(GROWTH) + _numeric(INPAINTING), ids=lambda s: s.name)
def test_every_range_is_enforced_by_the_engine(setting):
    cls = GrowTaskParams if setting.name in GROWTH else InpaintTaskParams
    for bad in (setting.minimum - 1, setting.maximum + 1):
        with pytest.raises(InputError, match=f"^{setting.name} must be "):
            cls(**{setting.name: setting.type(bad)})
    if not setting.name.endswith("_threshold"):  # label thresholds must also increase, so not each at its minimum
        cls(**{setting.name: setting.type(setting.minimum)})


def _cli_defaults(command: str) -> dict:
    from tumorgen.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    return {a.dest: a.default for a in sub._actions}


def test_the_cli_options_are_the_schema_settings_with_their_defaults():
    inpaint = _cli_defaults("inpaint")
    for setting in INPAINTING:
        assert inpaint[setting.name] == setting.default, setting.name
    grow = _cli_defaults("grow")
    for setting in GROWTH:
        # --volume stays None when not given; the schema's default then applies (tested through the command)
        assert grow[setting.name] == (None if setting.name == "target_volume_cm3" else setting.default), setting.name


def test_cli_values_are_converted_and_a_bad_one_named_in_one_line(tmp_path, capsys):
    from tumorgen.cli.main import main

    code = main(["inpaint", "--t1n", "x.nii.gz", "--mask", "m.nii.gz", "--out", str(tmp_path / "o.nii.gz"), "--steps", "0"])
    assert code == 2
    assert capsys.readouterr().err.strip() == "tumorgen inpaint: error: steps must be a whole number in [1, 1000], got 0"
    assert not any(tmp_path.iterdir())


def test_conversion_rules():
    steps, rho, mode, days = INPAINTING["steps"], GROWTH["rho"], INPAINTING["mode"], GROWTH["days"]
    assert steps.convert("12") == 12 and steps.convert(12.0) == 12 and isinstance(steps.convert(12.0), int)
    assert rho.convert("0.25") == 0.25 and rho.convert(1) == 1.0
    assert days.convert("") is None and days.convert(None) is None and days.convert("30") == 30.0
    assert INPAINTING["histogram"].convert("false") is False
    for setting, value, message in [
        (steps, "many", "steps must be a number, got 'many'"),
        (steps, 2.5, "steps must be a whole number, got 2.5"),
        (steps, True, "steps must be a number, got True"),
        (steps, None, "steps must be set (a whole number in [1, 1000])"),
        (rho, math.nan, "rho must be a finite number, got nan"),
        (rho, 2.0, "rho must be a number in [0.001, 1] /day, got 2.0"),
        (mode, "fast", "mode must be one of healthy, tumor, got 'fast'"),
        (INPAINTING["poisson"], 1, "poisson must be true or false, got 1"),
    ]:
        with pytest.raises(InputError) as exc:
            setting.convert(value)
        assert str(exc.value) == message
    assert steps.convert(0, check=False) == 0  # the CLI converts first and checks where the parameters are built


def test_schemas_are_well_formed():
    assert set(SCHEMAS) == {"growth", "inpainting", "postop", "followup", "synthesis", "editing", "run"}
    for schema in (GROWTH, INPAINTING, POSTOP, EDITING, RUN):
        for setting in schema:
            assert setting.help and not setting.help.endswith(".")
            if setting.type in (int, float) and setting.choices is None:
                assert setting.minimum is not None and setting.maximum is not None and setting.minimum < setting.maximum
            described = setting.describe()
            assert described["default"] == setting.default and described["type"] == setting.type.__name__
    with pytest.raises(InputError):
        Setting("x", int, 5, "a number", minimum=0, maximum=3)
    with pytest.raises(TypeError):
        Setting("x", float, None, "a number")
    assert RUN["device"].choices == ("auto", "cpu", "cuda")


def test_the_run_settings_keep_run_folders_within_range():
    assert RUN.names() == ("device", "keep_runs", "clean_runs_on_close")
    keep = RUN["keep_runs"]
    assert (keep.type, keep.default, keep.minimum, keep.maximum) == (int, 10, 0, 1000)
    assert keep.convert("0") == 0 and keep.convert(1000.0) == 1000
    with pytest.raises(InputError) as exc:
        keep.convert(-1)
    assert str(exc.value) == "keep_runs must be a whole number in [0, 1000], got -1"
    clean = RUN["clean_runs_on_close"]
    assert (clean.type, clean.default, clean.cli_flag) == (bool, True, "--no-clean-runs-on-close")
    assert clean.convert("false") is False
