"""``tumorgen.device``: the device choices are spelled once, and the module stays importable without PyTorch."""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

import pytest
from tumorgen_testing import backend_env

from tumorgen import device
from tumorgen.device import DEVICES, add_device_argument

ENGINE = Path(device.__file__).resolve().parent


def test_add_device_argument_offers_the_devices_with_auto_by_default():
    parser = argparse.ArgumentParser(prog="x")
    group = parser.add_argument_group("output")
    action = add_device_argument(group, help="device for the torch solver")
    assert DEVICES == ("auto", "cpu", "cuda")
    assert action.choices == DEVICES and action.default == "auto" and action.dest == "device"
    assert action.help.startswith("device for the torch solver: ")
    assert parser.parse_args([]).device == "auto" and parser.parse_args(["--device", "cpu"]).device == "cpu"
    with pytest.raises(SystemExit):
        parser.parse_args(["--device", "tpu"])


def test_every_command_with_a_device_takes_it_from_tumorgen_device():
    from tumorgen.cli.main import build_parser

    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    with_device = {}
    for name, parser in subparsers.choices.items():
        for action in parser._actions:
            if "--device" in action.option_strings:
                with_device[name] = (action.choices, action.default)
    assert with_device == {name: (DEVICES, "auto") for name in ("demo", "grow", "inpaint", "postop", "followup", "synthesize", "dataset", "train")}


def test_the_device_names_are_written_out_only_in_tumorgen_device():
    """No other engine module spells out ("auto", "cpu", "cuda"): they use DEVICES or add_device_argument."""
    spelled = []
    for path in sorted(ENGINE.rglob("*.py")):
        if path == ENGINE / "device.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                values = {elt.value for elt in node.elts if isinstance(elt, ast.Constant)}
                if {"cpu", "cuda"} <= values:
                    spelled.append(f"{path.relative_to(ENGINE)}:{node.lineno}")
    assert spelled == []


def test_the_device_choices_load_without_pytorch():
    """The Slicer GUI imports the device choices (and job files) in a process that has no PyTorch."""
    code = ("import sys, tumorgen.device, tumorgen.backend.job; "
            "print('torch' in sys.modules, tumorgen.backend.job.DEVICES is tumorgen.device.DEVICES)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=backend_env(), timeout=120)
    assert proc.returncode == 0 and proc.stdout.split() == ["False", "True"], proc.stderr
