"""The backend's Python: cheap choice, checks and installs that never block, Slicer's environment and packages left alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
from importlib import metadata
from pathlib import Path

import pytest

from tumorgen.errors import InputError
from tumorgen_slicer import backend_install, environment, interpreter
from tumorgen_slicer.environment import BackendEnvironment, EnvironmentReport

ROOT = Path(__file__).resolve().parents[2]


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def _fake_slicer(monkeypatch, *, startup_env=None, pytorch_logic=None) -> types.SimpleNamespace:
    """A stand-in for Slicer's ``slicer`` module: ``util.startupEnvironment`` and ``util.getModuleLogic``."""
    def get_module_logic(name):
        if name == "PyTorchUtils" and pytorch_logic is not None:
            return pytorch_logic
        raise RuntimeError(f"Could not find module with name '{name}'")

    util = types.SimpleNamespace(startupEnvironment=lambda: dict(startup_env or {}), getModuleLogic=get_module_logic)
    fake = types.SimpleNamespace(util=util)
    monkeypatch.setitem(sys.modules, "slicer", fake)
    return fake


class _Finished:
    """What a recording starter hands back: a process that has already exited with ``returncode``."""

    def __init__(self, returncode: int = 0, stderr: list[str] | None = None) -> None:
        self.returncode = returncode
        self._stderr = stderr or []

    def read(self):
        stderr, self._stderr = self._stderr, []
        return [], stderr, True

    def kill_tree(self) -> None:
        pass


class _RecordingStarter:
    def __init__(self, returncode: int = 0) -> None:
        self.calls: list[dict] = []
        self.returncode = returncode

    def __call__(self, args, *, log_dir, env):
        files = {p.name: p.read_text() for p in Path(log_dir).iterdir() if p.is_file()}
        self.calls.append({"args": list(args), "env": dict(env), "files": files})
        return _Finished(self.returncode)


def _no_process(*args, **kwargs):
    raise AssertionError("no process may start here")


# -- choosing the interpreter ------------------------------------------------------------------------------------
def test_choosing_an_interpreter_starts_no_process(tmp_path):
    env = BackendEnvironment(in_slicer=False, start=_no_process)
    assert env.python == "" and env.executable == sys.executable
    env.set_python(sys.executable)
    assert env.python == sys.executable
    with pytest.raises(InputError, match="not an executable file"):
        env.set_python(tmp_path / "python9")
    text = tmp_path / "python.txt"
    text.write_text("not a program")
    with pytest.raises(InputError, match="not an executable file"):
        env.set_python(text)
    assert env.python == sys.executable  # a refused choice changes nothing
    env.set_python("")
    assert env.python == "" and env.executable == sys.executable and not env.busy


# -- checking, without blocking -------------------------------------------------------------------------------------
def test_this_interpreter_is_a_ready_backend(tmp_path):
    env = BackendEnvironment(in_slicer=False, work_dir=tmp_path)
    env.start_check()
    report = env.wait(timeout=120)
    version = "%d.%d.%d" % sys.version_info[:3]
    assert report == EnvironmentReport("check", True, sys.executable, version, (), f"backend Python {sys.executable} ({version}) is ready")
    assert list(tmp_path.iterdir()) == [], "the check's output folder was left behind"
    assert env.poll() is None and not env.busy


def test_start_check_returns_while_a_slow_interpreter_still_runs(tmp_path):
    go, waited = tmp_path / "go", tmp_path / "waited"
    slow = _script(tmp_path / "python", textwrap.dedent(f"""\
        i=0
        while [ ! -e {go} ] && [ $i -lt 1000 ]; do sleep 0.02; i=$((i+1)); done
        touch {waited}
        exec {sys.executable} "$@"
    """))
    env = BackendEnvironment(in_slicer=False)
    env.set_python(slow)
    env.start_check()
    # start_check came back while the interpreter was still waiting for the test: it did not wait for it
    assert not waited.exists() and env.busy and env.poll() is None
    go.touch()
    report = env.wait(timeout=120)
    assert waited.exists() and report.kind == "check" and report.ok and report.python == str(slow)


def test_old_new_and_broken_interpreters_are_refused_in_one_line(tmp_path):
    env = BackendEnvironment(in_slicer=False)
    for name, version in (("python2", "2.7.18"), ("python39", "3.9.18"), ("python313", "3.13.1")):
        fake = _script(tmp_path / name, f"echo {version}\n")
        env.set_python(fake)
        env.start_check()
        report = env.wait(timeout=60)
        assert not report.ok and report.python_version == version
        assert report.message == f"TumorGen's engine needs Python 3.10-3.12; {fake} is {version}"
    broken = _script(tmp_path / "broken", "echo 'Traceback (most recent call last):' >&2\necho boom >&2\nexit 3\n")
    env.set_python(broken)
    env.start_check()
    report = env.wait(timeout=60)
    assert not report.ok and report.message == f"backend Python {broken} does not run: boom"


def test_missing_modules_are_reported_by_import_name(tmp_path):
    # a bare interpreter that sees none of the packages: -S ignores site-packages
    bare = _script(tmp_path / "python", f"exec {sys.base_prefix}/bin/python3 -S \"$@\"\n")
    env = BackendEnvironment(in_slicer=False)
    env.set_python(bare)
    env.start_check()
    report = env.wait(timeout=60)
    assert not report.ok and {"torch", "monai", "numpy"} <= set(report.missing)
    assert report.message.startswith(f"backend Python {bare} (") and "lacks" in report.message and "\n" not in report.message


def test_a_check_of_the_previous_interpreter_is_dropped_when_another_is_chosen(tmp_path):
    slow = _script(tmp_path / "python", "sleep 30\n")
    env = BackendEnvironment(in_slicer=False)
    env.set_python(slow)
    env.start_check()
    assert env.busy
    env.set_python(sys.executable)
    assert not env.busy and env.poll() is None


# -- the backend's environment ------------------------------------------------------------------------------------
SLICER_STARTUP = {"PATH": "/usr/bin:/bin", "HOME": "/home/ada", "PYTHONHOME": "/opt/Slicer/lib/Python",
                  "PYTHONNOUSERSITE": "1", "PYTHONPATH": "/opt/Slicer/lib/Python/site-packages"}


def test_another_interpreter_inside_slicer_starts_from_slicers_startup_environment(monkeypatch, tmp_path):
    _fake_slicer(monkeypatch, startup_env=SLICER_STARTUP)
    # what Slicer's launcher set for its own process
    monkeypatch.setenv("PYTHONHOME", "/opt/Slicer/lib/Python")
    monkeypatch.setenv("LD_LIBRARY_PATH", "/opt/Slicer/lib/Slicer-5.10")
    other = _script(tmp_path / "python3.11", f'exec {sys.executable} "$@"\n')
    env = BackendEnvironment(in_slicer=True, start=_no_process)
    env.set_python(other)
    assert not env.uses_slicer_python
    child = env.child_env()
    expected = {"PATH": "/usr/bin:/bin", "HOME": "/home/ada", "PYTHONPATH": str(environment.engine_root())}
    expected.update({k: v for k, v in os.environ.items() if k.startswith("TUMORGEN_")})
    assert child == expected
    runner = env.runner()
    assert runner.python == str(other) and "PYTHONHOME" not in runner.child_env()
    assert runner.child_env()["PYTHONPATH"] == str(environment.engine_root())


def test_slicers_own_python_keeps_slicers_environment(monkeypatch):
    _fake_slicer(monkeypatch, startup_env=SLICER_STARTUP)
    monkeypatch.setenv("PYTHONHOME", "/opt/Slicer/lib/Python")
    monkeypatch.setenv("PYTHONPATH", "/opt/Slicer/lib/Python/site-packages")
    env = BackendEnvironment(in_slicer=True, start=_no_process)
    assert env.uses_slicer_python and env.executable == interpreter.default_python()
    child = env.child_env()
    assert child["PYTHONHOME"] == "/opt/Slicer/lib/Python"
    assert child["PYTHONPATH"].split(os.pathsep) == [str(environment.engine_root()), "/opt/Slicer/lib/Python/site-packages"]


def test_the_engine_is_on_the_backend_path():
    root = environment.engine_root()
    assert environment.REQUIRED_MODULES["skimage"] == "scikit-image"  # import name -> distribution, for pip
    assert (root / "tumorgen" / "__init__.py").is_file() and (root / "tumorgen_slicer" / "presenter.py").is_file()
    assert BackendEnvironment(in_slicer=False).child_env()["PYTHONPATH"].split(os.pathsep)[0] == str(root)


# -- installing -----------------------------------------------------------------------------------------------------------
def test_installs_outside_slicer_use_the_pins():
    constraints = backend_install.constraints_file()
    assert constraints is not None and constraints.name == "constraints.txt"
    pins = dict(line.split("==") for line in constraints.read_text().splitlines() if "==" in line and not line.startswith("#"))
    assert backend_install.pinned_requirements(["torch", "skimage", "SimpleITK"]) == [
        f"torch=={pins['torch']}", f"scikit-image=={pins['scikit-image']}", f"SimpleITK=={pins['SimpleITK']}"]
    start = _RecordingStarter()
    env = BackendEnvironment(in_slicer=False, start=start)
    env.start_install(["torch", "skimage"])
    report = env.poll()
    (call,) = start.calls
    assert call["args"] == [sys.executable, "-m", "pip", "install", "-c", str(constraints),
                            f"torch=={pins['torch']}", f"scikit-image=={pins['scikit-image']}"]
    assert report.kind == "install" and report.ok


def test_installs_into_slicers_python_leave_slicers_packages_alone(monkeypatch):
    torch_calls = []
    logic = types.SimpleNamespace(installTorch=lambda **kwargs: torch_calls.append(kwargs) or types.SimpleNamespace())
    _fake_slicer(monkeypatch, pytorch_logic=logic)
    start = _RecordingStarter()
    env = BackendEnvironment(in_slicer=True, start=start)
    env.start_install(["numpy", "torch", "monai", "SimpleITK", "skimage", "scipy"])
    report = env.poll()
    assert torch_calls == [{"askConfirmation": False, "torchVersionRequirement": ">=2.8"}]
    (call,) = start.calls
    args = call["args"]
    assert args[:6] == [interpreter.default_python(), "-m", "pip", "install", "-c", args[5]]
    assert Path(args[5]).name == "slicer-packages.txt" and args[6:] == ["monai", "scikit-image"]
    assert str(backend_install.constraints_file()) not in args
    # pip is held to the versions Slicer has, so it can never replace them
    held = call["files"]["slicer-packages.txt"].splitlines()
    assert f"numpy=={metadata.version('numpy')}" in held and f"scipy=={metadata.version('scipy')}" in held
    assert report == EnvironmentReport("install", True, interpreter.default_python(), message=f"installed monai scikit-image into {interpreter.default_python()}")


def test_pythonslicer_chosen_by_its_path_is_still_slicers_own(monkeypatch):
    _fake_slicer(monkeypatch, pytorch_logic=types.SimpleNamespace(installTorch=lambda **kwargs: object()))
    start = _RecordingStarter()
    env = BackendEnvironment(in_slicer=True, start=start)
    env.set_python(interpreter.default_python())
    assert env.python and env.uses_slicer_python
    env.start_install(["numpy", "einops"])
    assert env.poll().ok
    (call,) = start.calls
    assert Path(call["args"][5]).name == "slicer-packages.txt" and call["args"][6:] == ["einops"]


def test_slicers_python_without_the_pytorch_extension_says_so_in_one_line(monkeypatch):
    _fake_slicer(monkeypatch, pytorch_logic=None)
    env = BackendEnvironment(in_slicer=True, start=_no_process)
    env.start_install(["torch", "monai"])
    report = env.poll()
    assert report.kind == "install" and not report.ok
    assert "PyTorch extension" in report.message and "\n" not in report.message
    assert env.poll() is None and not env.busy


def test_another_interpreter_inside_slicer_gets_pip_and_the_pins(monkeypatch, tmp_path):
    _fake_slicer(monkeypatch, startup_env=SLICER_STARTUP)  # no PyTorch extension: not needed for another interpreter
    start = _RecordingStarter()
    other = _script(tmp_path / "python3.11", f'exec {sys.executable} "$@"\n')
    env = BackendEnvironment(in_slicer=True, start=start)
    env.set_python(other)
    env.start_install(["torch"])
    assert env.poll().ok
    (call,) = start.calls
    assert call["args"][:6] == [str(other), "-m", "pip", "install", "-c", str(backend_install.constraints_file())]
    assert call["args"][6].startswith("torch==") and "PYTHONHOME" not in call["env"]


def test_a_pip_failure_is_one_line_without_its_traceback(tmp_path):
    pip = _script(tmp_path / "python", textwrap.dedent("""\
        echo 'Collecting torch==9.9'
        echo 'Traceback (most recent call last):' >&2
        echo '  File "pip/_internal/cli/base_command.py", line 105, in _run_wrapper' >&2
        echo 'ERROR: Could not find a version that satisfies the requirement torch==9.9' >&2
        echo 'ERROR: No matching distribution found for torch==9.9' >&2
        exit 1
    """))
    env = BackendEnvironment(in_slicer=False)
    env.set_python(pip)
    env.start_install(["einops"])
    report = env.wait(timeout=60)
    assert not report.ok and "\n" not in report.message and "Traceback" not in report.message
    assert report.message.startswith("pip could not install einops==") and report.message.endswith(
        f"into {pip}: No matching distribution found for torch==9.9")


# -- inside 3D Slicer's GUI process: no psutil, torch, monai, tqdm ----------------------------------------------------
def test_environment_imports_and_checks_without_psutil():
    script = textwrap.dedent("""
        import importlib.abc, json, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {"psutil", "torch", "monai", "tqdm"}:
                    raise ModuleNotFoundError(f"No module named {name!r}")
                return None
        sys.meta_path.insert(0, Block())
        from tumorgen_slicer.environment import BackendEnvironment
        env = BackendEnvironment(in_slicer=False)
        env.start_check()
        report = env.wait(timeout=120)
        print(json.dumps({"ok": report.ok, "missing": list(report.missing),
                          "loaded": sorted(m for m in ("psutil", "torch", "monai", "tqdm") if m in sys.modules)}))
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "TumorGenLib")}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr
    # the GUI process imports none of them; the interpreter it checks has them all
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"ok": True, "missing": [], "loaded": []}


def test_the_backend_check_covers_every_dependency_of_the_engine():
    import re
    from pathlib import Path

    from tumorgen_slicer.interpreter import REQUIRED_MODULES

    text = (Path(__file__).resolve().parents[2] / "TumorGenLib" / "pyproject.toml").read_text()
    block = text.split("dependencies = [", 1)[1].split("]", 1)[0]
    declared = {re.split(r"[<>=!~ ]", line.strip().strip('",'))[0].lower() for line in block.splitlines()
                if line.strip().startswith('"')}
    assert {d.lower() for d in REQUIRED_MODULES.values()} == declared
