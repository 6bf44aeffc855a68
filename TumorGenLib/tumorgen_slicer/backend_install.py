"""What to install into the backend's Python, and how.

Installs go into the chosen interpreter (``<python> -m pip install``). Into
Slicer's own Python they never pin or replace Slicer's packages
(:data:`SLICER_PACKAGES` are skipped, and pip is held to the versions Slicer
has), and PyTorch comes from the PyTorch extension, which picks the CUDA build
that fits the machine. Anywhere else the exact versions of ``constraints.txt``
are used. Nothing here waits for pip:
:class:`~tumorgen_slicer.environment.BackendEnvironment` runs it as a polled
process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from tumorgen.errors import InputError
from tumorgen_slicer.interpreter import REQUIRED_MODULES, engine_root, last_line

#: What Slicer's own Python ships (import name -> distribution): never installed, upgraded or pinned there.
SLICER_PACKAGES = {"numpy": "numpy", "scipy": "scipy", "SimpleITK": "SimpleITK", "vtk": "vtk", "requests": "requests",
                   "PIL": "pillow"}
#: The PyTorch the PyTorch extension is asked for.
TORCH_REQUIREMENT = ">=2.8"
#: The constraints file (in the install's folder) that holds pip to the versions of Slicer's own packages.
SLICER_CONSTRAINTS = "slicer-packages.txt"


@dataclass(frozen=True)
class PipInstall:
    """One ``pip install``: its arguments (after ``-m pip install``) and the requirements it names."""

    args: list[str]
    requirements: list[str]


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
        dist = REQUIRED_MODULES.get(module, module)
        out.append(f"{dist}=={pins[dist.lower()]}" if dist.lower() in pins else dist)
    return out


def pip_install(modules: Sequence[str], *, slicer_python: bool, folder: Path) -> PipInstall:
    """The pip install of ``modules`` (import names); into Slicer's Python it writes its constraints into ``folder``.

    ``modules`` must not hold Slicer's own packages or, for Slicer's Python, PyTorch (see :func:`for_slicer_python`).
    """
    if not slicer_python:
        requirements = pinned_requirements(modules)
        pins = constraints_file()
        return PipInstall((["-c", str(pins)] if pins else []) + requirements, requirements)
    requirements = [REQUIRED_MODULES.get(m, m) for m in modules]
    # Not the project's pins: pip is held to the versions Slicer has, so it never replaces them.
    held = _installed_versions(SLICER_PACKAGES.values())
    if not held:
        return PipInstall(list(requirements), requirements)
    constraints = folder / SLICER_CONSTRAINTS
    constraints.write_text("".join(f"{name}=={version}\n" for name, version in held.items()), encoding="utf-8")
    return PipInstall(["-c", str(constraints), *requirements], requirements)


def for_slicer_python(modules: Sequence[str]) -> tuple[list[str], bool]:
    """What pip installs into Slicer's own Python of ``modules``, and whether PyTorch is wanted (from the extension)."""
    wanted = [m for m in dict.fromkeys(modules) if m not in SLICER_PACKAGES]
    return [m for m in wanted if m != "torch"], "torch" in wanted


def install_torch_through_extension() -> str:
    """Install PyTorch into Slicer's Python with the PyTorch extension; returns "" or a one-line failure.

    This one call waits: the extension installs in the GUI process, showing its progress in Slicer's log.
    """
    import slicer

    try:
        logic = slicer.util.getModuleLogic("PyTorchUtils")
    except (RuntimeError, AttributeError):
        logic = None
    if logic is None:
        return "PyTorch for Slicer's Python comes from the PyTorch extension: install it with the Extensions Manager and restart Slicer"
    # PyTorchUtilsLogic.installTorch(askConfirmation=False, forceComputationBackend=None, torchVersionRequirement=None,
    # torchvisionVersionRequirement=None) returns the torch module, or None if the user declined
    # (fepegar/SlicerPyTorch @ f677db994c800ac527a06f4716144e502245bbf2, PyTorchUtils/PyTorchUtils.py).
    try:
        torch = logic.installTorch(askConfirmation=False, torchVersionRequirement=TORCH_REQUIREMENT)
    except Exception as exc:  # the extension runs pip: any failure of it is the user's to see, in one line
        return str(InputError(f"the PyTorch extension could not install PyTorch: {type(exc).__name__}: {exc}"))
    if torch is None:
        return "the PyTorch extension did not install PyTorch"
    return ""


def pip_error(lines: Sequence[str]) -> str:
    """The line of pip's output that says what went wrong (its last ``ERROR:`` line), never a traceback."""
    errors = [line.strip() for line in lines if line.strip().startswith("ERROR:")]
    if errors:
        return errors[-1][len("ERROR:"):].strip()[:200]
    return last_line(lines)


def _installed_versions(distributions: Iterable[str]) -> dict[str, str]:
    """The versions of ``distributions`` installed in this process's Python (inside Slicer: Slicer's own)."""
    from importlib import metadata

    versions = {}
    for name in distributions:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions
