"""The backend's interpreter: where the engine is, which Python runs it, and the probe that asks a Python what it has.

Slicer's own Python is ``PythonSlicer`` inside 3D Slicer (outside it, this
interpreter). One short child process, :func:`probe_command`, tells both the
interpreter's version and which :data:`REQUIRED_MODULES` it lacks;
:func:`read_probe` turns its output into a :class:`ProbeAnswer`. Nothing here
starts a process or waits: :class:`~tumorgen_slicer.environment.BackendEnvironment` does.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from tumorgen.errors import InputError

#: Import name -> distribution name, for everything the backend imports.
REQUIRED_MODULES = {
    "numpy": "numpy", "scipy": "scipy", "SimpleITK": "SimpleITK", "torch": "torch", "monai": "monai", "psutil": "psutil",
    "tqdm": "tqdm", "nilearn": "nilearn", "einops": "einops", "safetensors": "safetensors", "skimage": "scikit-image",
    "inpainting": "inpainting", "torchmetrics": "torchmetrics", "PIL": "pillow", "matplotlib": "matplotlib", "ray": "ray",
}
SUPPORTED_PYTHONS = ((3, 10), (3, 11), (3, 12))

# The version comes first, in syntax every Python understands, so that a Python 2 still says what it is;
# the missing modules come second, found without importing them (importing torch would take seconds).
_PROBE = """\
import sys
sys.stdout.write("%d.%d.%d\\n" % tuple(sys.version_info[:3]))
sys.stdout.flush()
import importlib.util, json
names = {names!r}
sys.stdout.write(json.dumps([n for n in names if importlib.util.find_spec(n) is None]) + "\\n")
"""


def engine_root() -> Path:
    """The folder that holds the ``tumorgen`` package (goes on the backend's PYTHONPATH)."""
    import tumorgen

    return Path(tumorgen.__file__).resolve().parent.parent


def default_python() -> str:
    """Slicer's own Python (PythonSlicer) inside 3D Slicer, this interpreter elsewhere."""
    exe = Path(sys.executable)
    # Slicer sets sys.executable to the application binary, which is no interpreter.
    if exe.name.lower().startswith(("slicer", "slicerapp")):
        for candidate in (exe.parent / "PythonSlicer", exe.parent / "bin" / "PythonSlicer", exe.parent / "PythonSlicer.exe"):
            if candidate.is_file():
                return str(candidate)
        found = shutil.which("PythonSlicer")
        if found:
            return found
    return str(exe)


def check_executable(python: str | os.PathLike) -> Path:
    """The interpreter's path if it is an executable file (no process is started); raises InputError otherwise."""
    path = Path(python).expanduser()
    if not path.is_file() or not os.access(path, os.X_OK):
        raise InputError(f"backend Python {python} is not an executable file")
    return path


def probe_command(python: str, modules: Sequence[str] | None = None) -> list[str]:
    """The command that makes ``python`` print its version, then which of ``modules`` it lacks (default: all the
    engine's), then the NVIDIA GPUs it sees (``nvidia-smi``, a few seconds at most; none without a driver)."""
    from tumorgen.gpu_info import PROBE_SNIPPET

    names = sorted(REQUIRED_MODULES) if modules is None else list(dict.fromkeys(modules))
    return [python, "-c", _PROBE.format(names=names) + PROBE_SNIPPET]


@dataclass(frozen=True)
class ProbeAnswer:
    """What the probe found: the version ("" if unknown), the missing import names, or a one-line problem."""

    version: str = ""
    missing: tuple[str, ...] = ()
    problem: str = ""
    #: The NVIDIA GPUs the interpreter's machine has (:class:`tumorgen.gpu_info.GpuInfo`).
    gpus: tuple = ()


def read_probe(python: str, returncode: int, stdout: Sequence[str], stderr: Sequence[str]) -> ProbeAnswer:
    """Read the probe's output; ``problem`` says in one line why ``python`` cannot run the backend, if it cannot."""
    lines = [line.strip() for line in stdout if line.strip()]
    version = lines[0] if lines and _version_tuple(lines[0]) else ""
    if version and _version_tuple(version) not in SUPPORTED_PYTHONS:
        lo, hi = SUPPORTED_PYTHONS[0], SUPPORTED_PYTHONS[-1]
        return ProbeAnswer(version, problem=f"TumorGen's engine needs Python {lo[0]}.{lo[1]}-{hi[0]}.{hi[1]}; {python} is {version}")
    if returncode != 0 or len(lines) < 2:
        detail = last_line(stderr) or f"exit code {returncode}"
        return ProbeAnswer(version, problem=str(InputError(f"backend Python {python} does not run: {detail}")))
    try:
        missing = tuple(str(name) for name in json.loads(lines[1]))
    except (json.JSONDecodeError, TypeError):
        return ProbeAnswer(version, problem=str(InputError(f"backend Python {python} gave an unreadable answer: {lines[1][:120]}")))
    from tumorgen.gpu_info import gpus_from_probe_json

    gpus = tuple(gpus_from_probe_json(lines[2])) if len(lines) > 2 else ()
    return ProbeAnswer(version, missing, gpus=gpus)


def last_line(lines: Sequence[str]) -> str:
    """The last non-blank line, shortened to 200 characters ("" if there is none)."""
    text = [line.strip() for line in lines if line.strip()]
    return text[-1][:200] if text else ""


def _version_tuple(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        return ()
