"""TumorGen's own Python environment: where the backend's packages go inside 3D Slicer.

A virtual environment made on first use (with the user's consent) from
Slicer's own Python, so that the engine's exact pins apply and Slicer's own
packages are never touched. It lives in the user's data folder, one per
Python version (a Slicer with another Python gets its own):

- Linux: ``$XDG_DATA_HOME/TumorGen/backend-env-py3.12`` (``~/.local/share/...``)
- macOS: ``~/Library/Application Support/TumorGen/backend-env-py3.12``
- Windows: ``%LOCALAPPDATA%\\TumorGen\\backend-env-py3.12``

``TUMORGEN_BACKEND_ENV`` names another folder. Deleting the folder undoes the
install completely; the next run offers to make it again.
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

#: Environment variable naming the folder of TumorGen's environment.
LOCATION_ENV = "TUMORGEN_BACKEND_ENV"


@dataclass(frozen=True)
class ManagedEnvironment:
    """A virtual environment at ``folder`` made from the interpreter ``base``."""

    folder: Path
    base: str

    @property
    def python(self) -> Path:
        """The environment's interpreter (it exists once the environment is made)."""
        return python_in(self.folder)

    @property
    def exists(self) -> bool:
        return self.python.is_file()


def python_in(folder: str | os.PathLike) -> Path:
    """The interpreter of the virtual environment in ``folder``."""
    folder = Path(folder)
    return folder / "Scripts" / "python.exe" if os.name == "nt" else folder / "bin" / "python"


def default_folder(version: tuple[int, int] | None = None) -> Path:
    """Where TumorGen's environment lives (``TUMORGEN_BACKEND_ENV``, else the user's data folder; see above)."""
    named = os.environ.get(LOCATION_ENV, "").strip()
    if named:
        return Path(named).expanduser()
    major, minor = version or sys.version_info[:2]
    system = platform.system()
    if system == "Windows":
        root = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif system == "Darwin":
        root = Path.home() / "Library" / "Application Support"
    else:
        root = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return root / "TumorGen" / f"backend-env-py{major}.{minor}"
