"""Commands from other packages: the entry-point group ``tumorgen.commands`` (how the scene package adds ``tumorgen web``)."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import EntryPoint

import pytest
from tumorgen_testing import backend_env

from tumorgen.cli import main as cli
from tumorgen.cli.main import COMMAND_GROUP, COMMANDS, command_entry_points, main


def tumorgen(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tumorgen.cli.main", *args], capture_output=True, text=True, env=backend_env(), timeout=120)


def test_the_web_command_comes_from_the_scene_package_through_its_entry_point():
    (web,) = [ep for ep in command_entry_points() if ep.name == "web"]
    assert web.value == "tumorgen_slicer.cli_web:register [web]" and web.extras == ["web"]
    assert "web" not in COMMANDS  # not one of the engine's own
    proc = tumorgen("web", "--help")
    assert proc.returncode == 0 and proc.stdout.startswith("usage: tumorgen web") and "--upload-limit MIB" in proc.stdout
    listing = tumorgen("--help").stdout
    assert "web       the TumorGen panels in a web browser (needs the web extra)" in listing


def test_the_web_command_module_loads_without_the_web_extra():
    """Its options are checked, and --help works, without trame or MRML: the app is imported only to serve."""
    code = ("import sys, tumorgen_slicer.cli_web; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'slicer', 'vtk', 'trame', 'trame_slicer', 'torch'}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=backend_env(), timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr


def _installed(monkeypatch, *extra: EntryPoint) -> None:
    """Make ``extra`` the entry points of the group, as if another package had installed them."""
    monkeypatch.setattr(cli, "entry_points", lambda group: list(extra) if group == COMMAND_GROUP else [])


def test_a_command_whose_entry_point_cannot_be_imported_says_which_extra_is_missing(monkeypatch, capsys):
    _installed(monkeypatch, EntryPoint("web", "tumorgen_slicer.not_installed:register [web]", COMMAND_GROUP))
    for argv in (["web"], ["web", "--port", "9000", "--host", "0.0.0.0"], ["web", "--help"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err == ("tumorgen web: error: the web extra is not installed (No module named 'tumorgen_slicer.not_installed'): "
                       "pip install -c constraints.txt './TumorGenLib[web]'\n")
    # the other commands are untouched, and the broken one is listed with what it needs
    assert main(["tasks"]) == 0 and "smoke: Backend self-check" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "web       (needs the web extra, which is not installed)" in capsys.readouterr().out


def test_an_entry_point_without_extras_that_fails_names_itself(monkeypatch, capsys):
    _installed(monkeypatch, EntryPoint("broken", "json:no_such_function", COMMAND_GROUP))
    assert main(["broken"]) == 2
    assert capsys.readouterr().err == ("tumorgen broken: error: the command cannot be loaded from json:no_such_function "
                                       "(AttributeError: module 'json' has no attribute 'no_such_function')\n")


def test_another_package_cannot_replace_an_engine_command(monkeypatch, capsys):
    _installed(monkeypatch, EntryPoint("tasks", "tumorgen_slicer.cli_web:register", COMMAND_GROUP))
    assert main(["tasks"]) == 0 and "smoke: Backend self-check" in capsys.readouterr().out


def test_unknown_arguments_to_a_working_command_are_still_an_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["tasks", "--nope"])
    assert exit_.value.code == 2 and "unrecognized arguments: --nope" in capsys.readouterr().err
