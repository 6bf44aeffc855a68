"""What to install into the backend's Python for a task, from where, and how big it is.

TumorGen never installs into 3D Slicer's own Python: inside Slicer the backend
runs in **TumorGen's own environment**, a virtual environment made on first
use from Slicer's Python (:mod:`~tumorgen_slicer.managed_env`), or in a Python
the user chose. Either way the exact versions of ``constraints.txt`` apply, and
only what the requested task imports is installed (each backend task declares
it: :attr:`tumorgen.backend.registry.TaskSpec.requirements`).

An install is an :class:`InstallPlan`: a few commands run one after the other
(make the environment, PyTorch from the index that fits the machine, the rest,
packages TumorGen only reads data from), each as a polled process
(:class:`~tumorgen_slicer.environment.BackendEnvironment`), so nothing here
waits for pip. PyTorch comes as a CUDA build where an NVIDIA driver is present
and as a CPU build otherwise, the way the PyTorch extension and
``light-the-torch`` choose it; ``TUMORGEN_TORCH_INDEX_URL`` names another index
and ``TUMORGEN_WHEELS`` a local folder of wheels to install from alone, offline.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from tumorgen.errors import InputError
from tumorgen_slicer.interpreter import REQUIRED_MODULES, engine_root, last_line

#: A local folder of wheels: every install uses it alone (``--no-index --find-links``), for machines without internet.
WHEELS_ENV = "TUMORGEN_WHEELS"
#: The package index PyTorch is installed from (default: chosen for the machine, see :func:`torch_source`).
TORCH_INDEX_ENV = "TUMORGEN_TORCH_INDEX_URL"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
TORCH_CUDA_INDEX = "https://download.pytorch.org/whl/cu128"
#: Packages TumorGen reads data from and never imports (the MNI152 template in nilearn's wheel): their own
#: dependencies are not needed and not installed.
DATA_ONLY = ("nilearn",)
#: Roughly what each package downloads, with the dependencies it pulls in (MB; Linux x86-64 wheels, Python 3.11).
DOWNLOAD_MB = {
    "numpy": 17, "scipy": 35, "SimpleITK": 53, "nilearn": 11, "PIL": 7, "matplotlib": 17, "monai": 3, "einops": 0.1,
    "safetensors": 0.5, "inpainting": 2, "torchmetrics": 1, "psutil": 0.2, "tqdm": 0.1, "skimage": 14, "ray": 75,
}
#: PyTorch's download with its dependencies, and what it takes on disk: the CPU build (measured), and the CUDA build
#: with NVIDIA's libraries (roughly).
TORCH_DOWNLOAD_MB = {"CPU": 200, "CUDA": 3000}
TORCH_DISK_MB = {"CPU": 800, "CUDA": 7000}
#: Installed packages other than PyTorch take about this many times their download on disk (measured on Linux x86-64:
#: what growth needs, 112 MB of wheels, takes 0.53 GB with the environment's own pip).
DISK_PER_DOWNLOAD = 4.5


@dataclass(frozen=True)
class InstallStep:
    """One command of an install and what it does, in words for the panel."""

    command: list[str]
    what: str


@dataclass(frozen=True)
class InstallPlan:
    """The commands that give ``python`` the ``modules`` (import names), and what they cost."""

    python: str
    modules: tuple[str, ...]
    steps: tuple[InstallStep, ...]
    #: The PyTorch build installed ("CUDA", "CPU"), or "" when PyTorch is not part of it.
    torch_build: str = ""
    #: The folder of the environment the first step makes ("" when it exists already or none is made).
    creates: str = ""

    @property
    def download_mb(self) -> float:
        torch = TORCH_DOWNLOAD_MB[self.torch_build] if self.torch_build else 0
        return torch + self._others_mb()

    @property
    def disk_mb(self) -> float:
        torch = TORCH_DISK_MB[self.torch_build] if self.torch_build else 0
        return torch + self._others_mb() * DISK_PER_DOWNLOAD

    def _others_mb(self) -> float:
        return sum(DOWNLOAD_MB.get(m, 1) for m in self.modules if m != "torch")

    def describe(self) -> str:
        """What will be installed, where, and roughly how big it is, in a few sentences for the question."""
        names = [distribution(m) + (f" ({self.torch_build} build)" if m == "torch" else "") for m in self.modules]
        where = (f"into a new Python environment for TumorGen at {self.creates} (Slicer's own Python is not touched)"
                 if self.creates else f"into {self.python}")
        return (f"This installs {', '.join(names)} {where}: about {_size(self.download_mb)} to download and "
                f"{_size(self.disk_mb)} on disk.")


def distribution(module: str) -> str:
    """The distribution (pip) name of an import name."""
    return REQUIRED_MODULES.get(module, module)


def constraints_file() -> Path | None:
    """The project's pins (``constraints.txt`` beside the engine or one folder up), or None if there are none."""
    root = engine_root()
    for candidate in (root / "constraints.txt", root.parent / "constraints.txt"):
        if candidate.is_file():
            return candidate
    return None


def pinned_requirements(modules: Sequence[str]) -> list[str]:
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
        dist = distribution(module)
        out.append(f"{dist}=={pins[dist.lower()]}" if dist.lower() in pins else dist)
    return out


def torch_source(cuda_driver: bool, system: str | None = None) -> tuple[str, list[str]]:
    """The PyTorch build for this machine ("CUDA" or "CPU") and the pip arguments that choose its index.

    An NVIDIA driver means the CUDA build (on Linux and Windows); without one, Linux takes the CPU index (PyPI's
    Linux wheel is the multi-GB CUDA build), while PyPI's Windows and macOS wheels are CPU builds already.
    ``TUMORGEN_TORCH_INDEX_URL`` overrides the choice.
    """
    system = system or platform.system()
    build = "CUDA" if cuda_driver and system in ("Linux", "Windows") else "CPU"
    index = os.environ.get(TORCH_INDEX_ENV, "").strip()
    if not index:
        if build == "CUDA":
            index = TORCH_CUDA_INDEX
        elif system == "Linux":
            index = TORCH_CPU_INDEX
    return build, (["--index-url", index, "--extra-index-url", "https://pypi.org/simple"] if index else [])


def plan_install(python: str, modules: Sequence[str], *, create_from: str = "", folder: str | os.PathLike = "",
                 cuda_driver: bool = False) -> InstallPlan:
    """The commands that install ``modules`` (import names) into ``python``, pinned by constraints.txt.

    Args:
        python: the interpreter that gets the packages (the environment's, once made).
        modules: what to install; the order is kept.
        create_from: a Python to make the environment ``folder`` with first (``-m venv``); "" when it exists.
        folder: the environment's folder (with ``create_from``).
        cuda_driver: whether an NVIDIA driver is present (picks PyTorch's build).
    """
    wanted = list(dict.fromkeys(modules))
    wheels = os.environ.get(WHEELS_ENV, "").strip()
    if wheels and not Path(wheels).is_dir():
        raise InputError(f"{WHEELS_ENV}={wheels} is not a folder of wheels")
    local = ["--no-index", "--find-links", wheels] if wheels else []
    constraints = constraints_file()
    pins = ["-c", str(constraints)] if constraints else []
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"]
    steps: list[InstallStep] = []
    if create_from:
        steps.append(InstallStep([create_from, "-m", "venv", str(folder)], f"making TumorGen's Python environment in {folder}"))
    build = ""
    if "torch" in wanted:
        build, index = torch_source(cuda_driver)
        steps.append(InstallStep(pip + (local or index) + pins + pinned_requirements(["torch"]),
                                 f"installing PyTorch ({build} build)"))
    rest = [m for m in wanted if m != "torch" and m not in DATA_ONLY]
    if rest:
        steps.append(InstallStep(pip + local + pins + pinned_requirements(rest), f"installing {', '.join(map(distribution, rest))}"))
    data = [m for m in wanted if m in DATA_ONLY]
    if data:
        steps.append(InstallStep(pip + ["--no-deps"] + local + pinned_requirements(data),
                                 f"installing {', '.join(map(distribution, data))} (its data only)"))
    return InstallPlan(python, tuple(wanted), tuple(steps), build, str(folder) if create_from else "")


def pip_error(lines: Sequence[str]) -> str:
    """The line of pip's output that says what went wrong (its last ``ERROR:`` line), never a traceback."""
    errors = [line.strip() for line in lines if line.strip().startswith("ERROR:")]
    if errors:
        return errors[-1][len("ERROR:"):].strip()[:200]
    return last_line(lines)


def _size(mb: float) -> str:
    return f"{mb / 1000:.1f} GB" if mb >= 1000 else f"{max(1, round(mb, -1 if mb >= 100 else 0)):.0f} MB"
