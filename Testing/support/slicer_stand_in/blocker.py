"""Make third-party packages that 3D Slicer does not ship unimportable (an allow-list, not a deny-list).

A top-level import is allowed when the module is built in or in the standard library, is found outside
the interpreter's site-packages (the project's own packages, the stand-ins), or comes from a
distribution 3D Slicer bundles at the pinned commit (``vendor/SLICER_PYTHON_PACKAGES.txt``: numpy,
scipy, requests, pydicom, pillow, ... plus SimpleITK and VTK, which Slicer builds itself) or from
``slicer-core`` (what stands in for Slicer's own MRML libraries here). Anything else from site-packages
raises ``ModuleNotFoundError`` (torch, monai, psutil, tqdm, matplotlib, pandas, trame, selenium, ...).

Use it in a fresh interpreter (``python -m slicer_stand_in.run_module``): a module that pytest or an
earlier import already loaded is in ``sys.modules`` and no finder is asked again.
"""

from __future__ import annotations

import importlib.metadata
import re
import site
import sys
import sysconfig
from pathlib import Path

VENDOR = Path(__file__).resolve().parent / "vendor"
#: Distributions that stand in for Slicer's own compiled libraries in this environment.
STAND_IN_DISTRIBUTIONS = ("slicer-core", "slicer-layer-dm")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def slicer_distributions() -> set[str]:
    """Canonical names of the distributions 3D Slicer bundles (pinned list) plus the slicer-core stand-in."""
    names = set(STAND_IN_DISTRIBUTIONS)
    for line in (VENDOR / "SLICER_PYTHON_PACKAGES.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(line.split("==", 1)[0])
    return {_canonical(n) for n in names}


def allowed_modules() -> set[str]:
    """Top-level import names of the allowed distributions that are installed here."""
    allowed_dists = slicer_distributions()
    out = set()
    for module, dists in importlib.metadata.packages_distributions().items():
        if any(_canonical(d) in allowed_dists for d in dists):
            out.add(module)
    for line in (VENDOR / "SLICER_PYTHON_PACKAGES.txt").read_text().splitlines():  # built-in import names
        if line.rstrip().endswith("# built-in"):
            out.add(line.split("#", 1)[0].strip())
    return out


def _site_dirs() -> list[str]:
    dirs = set(site.getsitepackages() if hasattr(site, "getsitepackages") else [])
    dirs.add(site.getusersitepackages() if hasattr(site, "getusersitepackages") else "")
    for key in ("purelib", "platlib"):
        dirs.add(sysconfig.get_paths().get(key, ""))
    return sorted(str(Path(d).resolve()) for d in dirs if d)


class SlicerImportBlocker:
    """A ``sys.meta_path`` finder; use as a context manager or call install()/uninstall()."""

    def __init__(self, extra_allowed=()):
        self.allowed = allowed_modules() | set(extra_allowed)
        self.site_dirs = _site_dirs()
        self.blocked: list[str] = []

    def _in_site_packages(self, spec) -> bool:
        locations = list(spec.submodule_search_locations or []) + ([spec.origin] if spec.origin else [])
        for location in locations:
            try:
                resolved = str(Path(location).resolve())
            except (OSError, ValueError):
                continue
            if any(resolved == d or resolved.startswith(d + "/") for d in self.site_dirs):
                return True
        return False

    def find_spec(self, fullname, path=None, target=None):
        if "." in fullname or fullname in sys.builtin_module_names or fullname in sys.stdlib_module_names:
            return None
        if fullname in self.allowed:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if self._in_site_packages(spec):
            self.blocked.append(fullname)
            raise ModuleNotFoundError(
                f"No module named {fullname!r} (blocked by the Slicer stand-in: 3D Slicer 5.10 does not ship it; "
                f"see {VENDOR / 'SLICER_PYTHON_PACKAGES.txt'})", name=fullname)
        return None

    def install(self) -> "SlicerImportBlocker":
        sys.meta_path.insert(0, self)
        return self

    def uninstall(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)

    __enter__ = install

    def __exit__(self, *exc) -> None:
        self.uninstall()

    def loaded_but_not_allowed(self) -> list[str]:
        """Third-party modules already imported that the blocker would refuse (they got in before it)."""
        out = []
        for name, module in list(sys.modules.items()):
            if "." in name or name in self.allowed or name in sys.builtin_module_names or name in sys.stdlib_module_names:
                continue
            spec = getattr(module, "__spec__", None)
            if spec is not None and self._in_site_packages(spec) and not name.startswith("_"):
                out.append(name)
        return sorted(out)

