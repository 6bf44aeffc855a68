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

from backend_fakes import RecordingStarter
from tumorgen.errors import InputError
from tumorgen_slicer import backend_install, environment, interpreter
from tumorgen_slicer.environment import BackendEnvironment, EnvironmentReport
from tumorgen_slicer.managed_env import LOCATION_ENV, ManagedEnvironment, default_folder, python_in

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


_RecordingStarter = RecordingStarter


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


def test_pythonslicer_chosen_by_its_path_keeps_slicers_environment(monkeypatch):
    _fake_slicer(monkeypatch, startup_env=SLICER_STARTUP)
    monkeypatch.setenv("PYTHONHOME", "/opt/Slicer/lib/Python")
    monkeypatch.setenv("PYTHONPATH", "/opt/Slicer/lib/Python/site-packages")
    env = BackendEnvironment(in_slicer=True, start=_no_process)
    env.set_python(interpreter.default_python())
    assert env.uses_slicer_python and not env.uses_managed and env.executable == interpreter.default_python()
    child = env.child_env()
    assert child["PYTHONHOME"] == "/opt/Slicer/lib/Python"
    assert child["PYTHONPATH"].split(os.pathsep) == [str(environment.engine_root()), "/opt/Slicer/lib/Python/site-packages"]


def test_inside_slicer_the_backend_is_tumorgens_own_environment_made_from_slicers_python(monkeypatch, tmp_path):
    _fake_slicer(monkeypatch, startup_env=SLICER_STARTUP)
    monkeypatch.setenv("PYTHONHOME", "/opt/Slicer/lib/Python")
    monkeypatch.setenv(LOCATION_ENV, str(tmp_path / "env"))
    env = BackendEnvironment(in_slicer=True, start=_no_process)
    assert env.uses_managed and not env.uses_slicer_python
    assert env.managed == ManagedEnvironment(tmp_path / "env", interpreter.default_python())
    assert env.executable == str(python_in(tmp_path / "env"))
    assert "PYTHONHOME" not in env.child_env()  # a virtual environment must not load Slicer's standard library


def test_the_engine_is_on_the_backend_path():
    root = environment.engine_root()
    assert environment.REQUIRED_MODULES["skimage"] == "scikit-image"  # import name -> distribution, for pip
    assert (root / "tumorgen" / "__init__.py").is_file() and (root / "tumorgen_slicer" / "presenter.py").is_file()
    assert BackendEnvironment(in_slicer=False).child_env()["PYTHONPATH"].split(os.pathsep)[0] == str(root)


# -- installing ----------------------------------------------------------------------------------------------------------
PIP = ["-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"]


def _pins() -> dict[str, str]:
    constraints = backend_install.constraints_file()
    return dict(line.split("==") for line in constraints.read_text().splitlines() if "==" in line and not line.startswith("#"))


def test_installs_outside_slicer_use_the_pins(monkeypatch):
    monkeypatch.delenv(backend_install.TORCH_INDEX_ENV, raising=False)
    monkeypatch.delenv(backend_install.WHEELS_ENV, raising=False)
    constraints, pins = backend_install.constraints_file(), _pins()
    assert constraints is not None and constraints.name == "constraints.txt"
    assert backend_install.pinned_requirements(["torch", "skimage", "SimpleITK"]) == [
        f"torch=={pins['torch']}", f"scikit-image=={pins['scikit-image']}", f"SimpleITK=={pins['SimpleITK']}"]
    start = _RecordingStarter()
    env = BackendEnvironment(in_slicer=False, start=start, cuda_driver=False)
    env.start_install(["skimage"])
    report = env.poll()
    (call,) = start.calls
    assert call["args"] == [sys.executable, *PIP, "-c", str(constraints), f"scikit-image=={pins['scikit-image']}"]
    assert report.kind == "install" and report.ok and report.message == f"installed scikit-image into {sys.executable}"


def test_a_first_install_makes_the_environment_then_pytorch_for_the_machine_then_the_rest(monkeypatch, tmp_path):
    monkeypatch.delenv(backend_install.TORCH_INDEX_ENV, raising=False)
    monkeypatch.delenv(backend_install.WHEELS_ENV, raising=False)
    monkeypatch.setattr(backend_install.platform, "system", lambda: "Linux")
    constraints, pins = str(backend_install.constraints_file()), _pins()
    managed = ManagedEnvironment(tmp_path / "env", "/opt/Slicer/bin/PythonSlicer")
    python = str(managed.python)
    for cuda, index in ((False, backend_install.TORCH_CPU_INDEX), (True, backend_install.TORCH_CUDA_INDEX)):
        plan = BackendEnvironment(managed=managed, start=_no_process, cuda_driver=cuda).install_plan(["numpy", "torch", "nilearn", "monai"])
        assert [step.command for step in plan.steps] == [
            ["/opt/Slicer/bin/PythonSlicer", "-m", "venv", str(tmp_path / "env")],
            [python, *PIP, "--index-url", index, "--extra-index-url", "https://pypi.org/simple", "-c", constraints,
             f"torch=={pins['torch']}"],
            [python, *PIP, "-c", constraints, f"numpy=={pins['numpy']}", f"monai=={pins['monai']}"],
            [python, *PIP, "--no-deps", f"nilearn=={pins['nilearn']}"],  # its template data only
        ]
        assert plan.torch_build == ("CUDA" if cuda else "CPU") and plan.creates == str(tmp_path / "env")
        assert plan.describe() == (f"This installs numpy, torch ({plan.torch_build} build), nilearn, monai into a new Python "
                                   f"environment for TumorGen at {tmp_path / 'env'} (Slicer's own Python is not touched): "
                                   f"about {'3.0 GB' if cuda else '230 MB'} to download and "
                                   f"{'7.1 GB' if cuda else '940 MB'} on disk.")


def test_a_wheel_folder_or_another_index_replaces_the_network(monkeypatch, tmp_path):
    monkeypatch.setattr(backend_install.platform, "system", lambda: "Linux")
    monkeypatch.setenv(backend_install.TORCH_INDEX_ENV, "https://mirror.example/torch")
    monkeypatch.delenv(backend_install.WHEELS_ENV, raising=False)
    plan = backend_install.plan_install("/py", ["torch"], cuda_driver=True)
    assert plan.steps[0].command[len(PIP) + 1:len(PIP) + 3] == ["--index-url", "https://mirror.example/torch"]
    monkeypatch.setenv(backend_install.WHEELS_ENV, str(tmp_path))
    for step in backend_install.plan_install("/py", ["torch", "numpy", "nilearn"]).steps:
        assert step.command[step.command.index("--no-index") + 1:][:2] == ["--find-links", str(tmp_path)]
        assert "--index-url" not in step.command
    monkeypatch.setenv(backend_install.WHEELS_ENV, str(tmp_path / "missing"))
    with pytest.raises(InputError, match=r"TUMORGEN_WHEELS=.*missing is not a folder of wheels"):
        backend_install.plan_install("/py", ["numpy"])


def test_a_failed_or_cancelled_first_install_leaves_no_environment_behind(tmp_path):
    managed = ManagedEnvironment(tmp_path / "env", sys.executable)
    env = BackendEnvironment(managed=managed, start=_RecordingStarter(returncode=1), cuda_driver=False)
    (tmp_path / "env").mkdir()  # what `python -m venv` had made when pip failed
    env.start_install(["einops"])
    report = env.poll()
    assert not report.ok and not (tmp_path / "env").exists()
    assert report.message.startswith(f"could not install einops into {managed.python} (making TumorGen's Python environment")

    slow = _script(tmp_path / "python", "sleep 30\n")
    env = BackendEnvironment(managed=ManagedEnvironment(tmp_path / "env", str(slow)), cuda_driver=False)
    env.start_install(["einops"])
    (tmp_path / "env").mkdir()
    assert env.busy and "making TumorGen's Python environment" in env.activity
    env.cancel()
    assert not env.busy and not (tmp_path / "env").exists()


def test_before_the_environment_is_made_its_python_is_asked_and_everything_is_missing(tmp_path):
    managed = ManagedEnvironment(tmp_path / "env", sys.executable)
    env = BackendEnvironment(managed=managed, work_dir=tmp_path / "work", cuda_driver=False)
    env.start_check(["numpy", "scipy"])
    report = env.wait(timeout=60)
    version = "%d.%d.%d" % sys.version_info[:3]
    assert report == EnvironmentReport("check", False, str(managed.python), version, ("numpy", "scipy"),
                                       f"TumorGen's Python environment ({tmp_path / 'env'}) is not made yet")


def test_the_environment_lives_in_the_users_data_folder_one_per_python(monkeypatch, tmp_path):
    monkeypatch.delenv(LOCATION_ENV, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    monkeypatch.setattr(Path, "home", lambda: tmp_path / "home")
    from tumorgen_slicer import managed_env

    for system, expected in (("Linux", tmp_path / "data"), ("Windows", tmp_path / "local"),
                             ("Darwin", tmp_path / "home" / "Library" / "Application Support")):
        monkeypatch.setattr(managed_env.platform, "system", lambda system=system: system)
        assert default_folder((3, 12)) == expected / "TumorGen" / "backend-env-py3.12"
    monkeypatch.setenv(LOCATION_ENV, str(tmp_path / "elsewhere"))
    assert default_folder() == tmp_path / "elsewhere"


def test_nothing_is_installed_into_slicers_own_python(monkeypatch):
    _fake_slicer(monkeypatch)
    env = BackendEnvironment(in_slicer=True, start=_no_process)
    env.set_python(interpreter.default_python())  # PythonSlicer chosen by its path is still Slicer's own
    assert env.uses_slicer_python
    env.start_install(["numpy", "einops"])
    report = env.poll()
    assert report.kind == "install" and not report.ok and "\n" not in report.message
    assert report.message.startswith("TumorGen does not install packages into Slicer's own Python")
    assert env.poll() is None and not env.busy


def test_another_interpreter_inside_slicer_gets_pip_and_the_pins(monkeypatch, tmp_path):
    _fake_slicer(monkeypatch, startup_env=SLICER_STARTUP)
    monkeypatch.delenv(backend_install.WHEELS_ENV, raising=False)
    monkeypatch.delenv(backend_install.TORCH_INDEX_ENV, raising=False)
    start = _RecordingStarter()
    other = _script(tmp_path / "python3.11", f'exec {sys.executable} "$@"\n')
    env = BackendEnvironment(in_slicer=True, start=start, cuda_driver=False)
    env.set_python(other)
    env.start_install(["einops"])
    assert env.poll().ok
    (call,) = start.calls
    assert call["args"][: len(PIP) + 3] == [str(other), *PIP, "-c", str(backend_install.constraints_file())]
    assert call["args"][-1].startswith("einops==") and "PYTHONHOME" not in call["env"]


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
    assert report.message == f"could not install einops into {pip} (installing einops): No matching distribution found for torch==9.9"


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
