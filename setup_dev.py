#!/usr/bin/env python3
"""Set up a TumorGen development environment and run the demo or the tests.

    python setup_dev.py          # create .venv and install the engine (pinned)
    python setup_dev.py demo     # set up if needed, then run `tumorgen demo`
    python setup_dev.py test     # set up if needed, then run the whole test suite

Extra arguments after the verb go to the command (`python setup_dev.py test -k volume`).

It needs only Python 3.10-3.12 with its `venv` module. Every dependency is
pinned in constraints.txt. PyTorch comes from pip's configured sources unless
--torch-index-url (or TUMORGEN_TORCH_INDEX_URL) names another index, e.g.
https://download.pytorch.org/whl/cpu for a CPU-only build, or
https://download.pytorch.org/whl/cu128 for a CUDA 12.8 build.

Re-running is safe: the install is skipped while the pins, the engine's
package metadata and the options are unchanged (a stamp in .venv records them).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / "tumorgen-setup.json"
CONSTRAINTS = ROOT / "constraints.txt"
ENGINE = ROOT / "TumorGenLib"
EXTRAS = "test,scene,web,docs"
SUPPORTED_PYTHONS = ((3, 10), (3, 11), (3, 12))


def say(message: str) -> None:
    print(f"[setup_dev] {message}", flush=True)


def fail(message: str, code: int = 1) -> None:
    print(f"[setup_dev] error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def check_python() -> None:
    if sys.version_info[:2] not in SUPPORTED_PYTHONS:
        fail(
            f"Python {sys.version_info.major}.{sys.version_info.minor} is not supported; "
            "run this script with Python 3.10, 3.11 or 3.12"
        )


def venv_works() -> bool:
    python = venv_python()
    if not python.exists():
        return False
    probe = subprocess.run([str(python), "-c", "import pip, sys; print(sys.version_info[:2])"], capture_output=True)
    return probe.returncode == 0


def create_venv() -> None:
    try:
        import ensurepip  # noqa: F401
        import venv  # noqa: F401
    except ImportError:
        fail(
            "Python's venv/ensurepip modules are missing. On Debian or Ubuntu install the system package "
            f"python{sys.version_info.major}.{sys.version_info.minor}-venv (apt-get install "
            f"python{sys.version_info.major}.{sys.version_info.minor}-venv), then run this again"
        )
    if VENV.exists():
        say(f"{VENV.name} is broken or from another Python; recreating it")
        shutil.rmtree(VENV)
    say(f"creating {VENV.relative_to(ROOT)} with Python {sys.version.split()[0]}")
    result = subprocess.run([sys.executable, "-m", "venv", str(VENV)])
    if result.returncode != 0 or not venv_python().exists():
        shutil.rmtree(VENV, ignore_errors=True)
        fail(
            "could not create the virtual environment; on Debian or Ubuntu install the system package "
            f"python{sys.version_info.major}.{sys.version_info.minor}-venv"
        )


def wanted_state(torch_index_url: str | None) -> dict:
    digest = hashlib.sha256()
    for path in (CONSTRAINTS, ENGINE / "pyproject.toml"):
        digest.update(path.read_bytes())
    return {
        "python": sys.version.split()[0],
        "inputs_sha256": digest.hexdigest(),
        "torch_index_url": torch_index_url or "",
        "extras": EXTRAS,
    }


def pinned(name: str) -> str:
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.lower().startswith(name.lower() + "=="):
            return line
    fail(f"{CONSTRAINTS.name} does not pin {name}")
    return ""


def pip(*args: str) -> None:
    command = [str(venv_python()), "-m", "pip", "--disable-pip-version-check", "install", "--progress-bar", "off", *args]
    result = subprocess.run(command)
    if result.returncode != 0:
        fail(f"pip failed (exit {result.returncode}): {' '.join(command[3:])}")


def setup(torch_index_url: str | None) -> None:
    check_python()
    state = wanted_state(torch_index_url)
    if venv_works() and STAMP.exists():
        try:
            if json.loads(STAMP.read_text()) == state:
                say(f"{VENV.name} is up to date")
                return
        except (OSError, json.JSONDecodeError):
            pass
    if not venv_works():
        create_venv()
    STAMP.unlink(missing_ok=True)
    torch_args = ["--index-url", torch_index_url] if torch_index_url else []
    say(f"installing {pinned('torch')}" + (f" from {torch_index_url}" if torch_index_url else ""))
    pip("-c", str(CONSTRAINTS), pinned("torch"), *torch_args)
    say(f"installing the engine (TumorGenLib[{EXTRAS}]) with the pins in {CONSTRAINTS.name}")
    pip("-c", str(CONSTRAINTS), "-e", f"{ENGINE}[{EXTRAS}]")
    STAMP.write_text(json.dumps(state, indent=2) + "\n")
    say("environment ready: " + str(venv_python().relative_to(ROOT)))


def run_in_venv(args: list[str]) -> int:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([str(venv_python()), *args], cwd=ROOT, env=env).returncode


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Set up TumorGen's .venv; 'demo' and 'test' set up if needed, then run.",
        epilog="Arguments after the verb are passed on (to 'tumorgen demo' or to pytest).",
    )
    parser.add_argument("verb", nargs="?", default="setup", choices=("setup", "demo", "test"))
    parser.add_argument(
        "--torch-index-url",
        default=os.environ.get("TUMORGEN_TORCH_INDEX_URL"),
        help="package index for PyTorch (e.g. https://download.pytorch.org/whl/cu128 for CUDA)",
    )
    args, rest = parser.parse_known_args()
    setup(args.torch_index_url)
    if args.verb == "demo":
        return run_in_venv(["-m", "tumorgen.cli.main", "demo", *rest])
    if args.verb == "test":
        return run_in_venv(["-m", "pytest", *rest])
    return 0


if __name__ == "__main__":
    sys.exit(main())
