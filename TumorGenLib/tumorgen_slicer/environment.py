"""Which Python runs the backend, and whether it has what the engine needs.

The backend runs as ``<python> -m tumorgen.backend job.json`` with the folder
that holds the ``tumorgen`` package on ``PYTHONPATH``. The Python is either
Slicer's own (``PythonSlicer``; outside Slicer, this interpreter) or one the
user chooses. Missing packages are installed only when the user agrees, with the
exact versions of ``constraints.txt``; inside Slicer, PyTorch comes from the
PyTorch extension when it is installed (it picks the CUDA build that fits).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tumorgen.errors import InputError

#: Import name -> distribution name, for everything the backend imports.
REQUIRED_MODULES = {
    "numpy": "numpy", "scipy": "scipy", "SimpleITK": "SimpleITK", "torch": "torch", "monai": "monai", "psutil": "psutil",
    "tqdm": "tqdm", "nilearn": "nilearn", "einops": "einops", "safetensors": "safetensors", "skimage": "scikit-image",
    "inpainting": "inpainting", "torchmetrics": "torchmetrics",
}
SUPPORTED_PYTHONS = ((3, 10), (3, 11), (3, 12))


def engine_root() -> Path:
    """The folder that holds the ``tumorgen`` package (goes on the backend's PYTHONPATH)."""
    import tumorgen

    return Path(tumorgen.__file__).resolve().parent.parent


def constraints_file() -> Path | None:
    root = engine_root()
    for candidate in (root / "constraints.txt", root.parent / "constraints.txt"):
        if candidate.is_file():
            return candidate
    return None


def backend_env() -> dict[str, str]:
    root = str(engine_root())
    existing = os.environ.get("PYTHONPATH", "")
    return {"PYTHONPATH": root + (os.pathsep + existing if existing else "")}


def default_python() -> str:
    """Slicer's own Python (PythonSlicer) inside 3D Slicer, this interpreter elsewhere."""
    exe = Path(sys.executable)
    if exe.name.lower().startswith(("slicer", "slicerapp")):  # the application binary, not an interpreter
        for candidate in (exe.parent / "PythonSlicer", exe.parent / "bin" / "PythonSlicer", exe.parent / "PythonSlicer.exe"):
            if candidate.is_file():
                return str(candidate)
        found = shutil.which("PythonSlicer")
        if found:
            return found
    return str(exe)


def check_python(python: str | os.PathLike) -> str:
    """Check that ``python`` is a supported interpreter; returns its version (``3.11.9``) or raises InputError."""
    path = Path(python)
    if not path.is_file() or not os.access(path, os.X_OK):
        raise InputError(f"backend Python {python} is not an executable file")
    try:
        probe = subprocess.run([str(path), "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                               capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InputError(f"backend Python {python} does not run: {exc}") from None
    if probe.returncode != 0:
        raise InputError(f"backend Python {python} does not run: {probe.stderr.strip()[-200:]}")
    version = probe.stdout.strip()
    if tuple(int(v) for v in version.split(".")[:2]) not in SUPPORTED_PYTHONS:
        raise InputError(f"backend Python {python} is {version}; TumorGen needs 3.10, 3.11 or 3.12")
    return version


def missing_modules(python: str | os.PathLike) -> list[str]:
    """The required modules ``python`` cannot import (by import name), checked without importing them."""
    code = (
        "import importlib.util, json, sys\n"
        f"names = {sorted(REQUIRED_MODULES)!r}\n"
        "print(json.dumps([n for n in names if importlib.util.find_spec(n) is None]))\n"
    )
    probe = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120,
                           env={**os.environ, **backend_env()})
    if probe.returncode != 0:
        raise InputError(f"could not check the packages of {python}: {probe.stderr.strip()[-200:]}")
    return json.loads(probe.stdout.strip().splitlines()[-1])


def pinned_requirements(modules: list[str]) -> list[str]:
    """``name==version`` for the distributions behind ``modules``, from constraints.txt (bare names if it is missing)."""
    pins: dict[str, str] = {}
    constraints = constraints_file()
    if constraints is not None:
        for line in constraints.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if "==" in line:
                name, version = line.split("==", 1)
                pins[name.strip().lower()] = version.strip()
    out = []
    for module in modules:
        dist = REQUIRED_MODULES.get(module, module)
        out.append(f"{dist}=={pins[dist.lower()]}" if dist.lower() in pins else dist)
    return out


def install(python: str | os.PathLike, modules: list[str], *, in_slicer: bool = False, log=print) -> None:
    """Install what is missing (call only after the user agreed). Raises InputError if pip fails."""
    modules = list(modules)
    if in_slicer and "torch" in modules:
        try:
            import PyTorchUtils  # noqa: F401  (the PyTorch extension)
            import slicer

            log("installing PyTorch through the PyTorch extension")
            if slicer.util.getModuleLogic("PyTorchUtils").installTorch(askConfirmation=False) is not None:
                modules.remove("torch")
        except ImportError:
            pass
    requirements = pinned_requirements(modules)
    if not requirements:
        return
    constraints = constraints_file()
    args = (["-c", str(constraints)] if constraints else []) + requirements
    log("installing " + " ".join(requirements))
    if in_slicer:
        import slicer

        slicer.util.pip_install(args)
        return
    result = subprocess.run([str(python), "-m", "pip", "install", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise InputError(f"pip could not install {' '.join(requirements)}: {result.stderr.strip()[-300:]}")
