"""A first run on a machine that has nothing yet, made here: bare virtual environments and local wheel folders.

The first-use tests run the real install path (check → ask → install → check → job) against these instead of
the network: pip installs from a folder of wheels (``TUMORGEN_WHEELS``), which is either a tiny wheel written
here or the engine's own pinned wheels fetched once per session through pip's configured sources.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def make_wheel(folder: Path, name: str, version: str, body: str = "VALUE = 42\n") -> Path:
    """Write a pure-Python wheel for the package ``name`` (one ``__init__.py``) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": body,
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tumorgen-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{dist_info}/RECORD"] = "\n".join(record + [f"{dist_info}/RECORD,,"]) + "\n"
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def base_python() -> str:
    """The interpreter virtual environments are made from (the one running the tests)."""
    return sys.executable


def make_venv(folder: Path) -> str:
    """A bare virtual environment (pip and nothing else) at ``folder``; returns its interpreter."""
    subprocess.run([base_python(), "-m", "venv", str(folder)], check=True, capture_output=True, timeout=300)
    python = folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    return str(python)


def engine_wheels(folder: Path, distributions: list[str]) -> Path:
    """The pinned wheels of ``distributions`` (and what they depend on) in ``folder``, through pip's configured sources.

    ``nilearn`` is fetched without its dependencies, as TumorGen installs it (its data only).
    """
    constraints = ROOT / "constraints.txt"
    folder.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q", "-d", str(folder), "-c", str(constraints)]
    data_only = [d for d in distributions if d == "nilearn"]
    rest = [d for d in distributions if d not in data_only]
    for args in ([*rest], ["--no-deps", *data_only]):
        names = [a for a in args if not a.startswith("--")]
        if names:
            done = subprocess.run(pip + args, capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                raise RuntimeError(f"pip download {' '.join(names)} failed: {done.stderr.strip().splitlines()[-1:]}")
    return folder
