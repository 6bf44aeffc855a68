"""The backend's Python: checks, missing packages, pinned installs."""

from __future__ import annotations

import sys

import pytest

from tumorgen.errors import InputError
from tumorgen_slicer import environment


def test_this_interpreter_is_a_ready_backend():
    version = environment.check_python(sys.executable)
    assert version.startswith(f"{sys.version_info.major}.{sys.version_info.minor}.")
    assert environment.missing_modules(sys.executable) == []
    assert environment.default_python() == sys.executable


def test_the_engine_is_on_the_backend_path():
    root = environment.engine_root()
    assert (root / "tumorgen" / "__init__.py").is_file() and (root / "tumorgen_slicer" / "presenter.py").is_file()
    assert environment.backend_env()["PYTHONPATH"].split(":")[0] == str(root)


def test_installs_use_the_pins():
    constraints = environment.constraints_file()
    assert constraints is not None and constraints.name == "constraints.txt"
    pins = dict(line.split("==") for line in constraints.read_text().splitlines() if "==" in line and not line.startswith("#"))
    assert environment.pinned_requirements(["torch", "skimage", "SimpleITK"]) == [
        f"torch=={pins['torch']}", f"scikit-image=={pins['scikit-image']}", f"SimpleITK=={pins['SimpleITK']}"]


def test_a_missing_module_is_reported(tmp_path):
    # a bare interpreter that sees none of the packages: -I ignores site-packages and PYTHONPATH is ours only
    script = tmp_path / "python"
    script.write_text(f"#!/bin/sh\nexec {sys.base_prefix}/bin/python3 -S \"$@\"\n")
    script.chmod(0o755)
    missing = environment.missing_modules(script)
    assert "torch" in missing and "monai" in missing


def test_bad_interpreters_are_refused(tmp_path):
    with pytest.raises(InputError, match="not an executable file"):
        environment.check_python(tmp_path / "nothing")
    fake = tmp_path / "python2"
    fake.write_text("#!/bin/sh\necho 2.7.18\n")
    fake.chmod(0o755)
    with pytest.raises(InputError, match="needs 3.10, 3.11 or 3.12"):
        environment.check_python(fake)
    broken = tmp_path / "broken"
    broken.write_text("#!/bin/sh\necho boom >&2\nexit 3\n")
    broken.chmod(0o755)
    with pytest.raises(InputError, match="does not run: boom"):
        environment.check_python(broken)
