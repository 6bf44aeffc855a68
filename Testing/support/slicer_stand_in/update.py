#!/usr/bin/env python3
"""Re-copy the vendored 3D Slicer files from one commit of Slicer's repository.

    python Testing/support/slicer_stand_in/update.py --repo /path/to/Slicer.git --commit <40-hex> [--tag v5.10.0]

``--repo`` is a local clone (bare or not) of https://github.com/Slicer/Slicer. The files are written
verbatim (``git show <commit>:<path>``) under ``vendor/``; nothing is edited. ``vendor/PINNED`` records
the commit and tag, ``vendor/MANIFEST`` each file's git blob id (the tests check the copies against it),
and ``vendor/SLICER_PYTHON_PACKAGES.txt`` lists the Python distributions that Slicer bundles at that
commit (read from ``SuperBuild/External_python-*.cmake``), which the import blocker allows.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENDOR = HERE / "vendor"

#: Whole files copied verbatim: repository path -> path under vendor/.
FILES = {
    "License.txt": "License.txt",
    "Base/Python/slicer/ScriptedLoadableModule.py": "slicer/ScriptedLoadableModule.py",
    "Base/Python/slicer/i18n.py": "slicer/i18n.py",
    "Base/Python/slicer/util.py": "slicer/util.py",
}
#: Folders whose *.py files are copied verbatim.
FOLDERS = {"Base/Python/slicer/parameterNodeWrapper": "slicer/parameterNodeWrapper"}
#: Python modules Slicer builds itself (not pip requirements): the Qt/CTK/MRML wrappers and the C++ toolkits.
BUILT_IN = ("SimpleITK", "vtk", "qt", "ctk", "slicer", "mrml", "vtkAddon", "vtkITK", "vtkSegmentationCore", "vtkTeem",
            "sitkUtils")


def git(repo: str, *args: str) -> bytes:
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True).stdout


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", required=True, help="local clone of https://github.com/Slicer/Slicer")
    parser.add_argument("--commit", required=True, help="the commit to copy from (full hash)")
    parser.add_argument("--tag", default="", help="the release tag of that commit, for the record")
    args = parser.parse_args(argv)
    commit = git(args.repo, "rev-parse", "--verify", f"{args.commit}^{{commit}}").decode().strip()

    if VENDOR.exists():
        shutil.rmtree(VENDOR)
    copies = dict(FILES)
    for source, target in FOLDERS.items():
        for name in git(args.repo, "ls-tree", "--name-only", f"{commit}:{source}").decode().split():
            if name.endswith(".py"):
                copies[f"{source}/{name}"] = f"{target}/{name}"
    manifest = []
    for source, target in copies.items():
        out = VENDOR / target
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(git(args.repo, "show", f"{commit}:{source}"))
        blob = git(args.repo, "rev-parse", f"{commit}:{source}").decode().strip()
        manifest.append(f"{blob}  {source}  {target}")
    (VENDOR / "MANIFEST").write_text("# git blob id, path in Slicer, path under vendor/ (verbatim copies)\n"
                                     + "\n".join(sorted(manifest, key=lambda l: l.split()[2])) + "\n")

    packages = {}
    for name in git(args.repo, "ls-tree", "--name-only", f"{commit}:SuperBuild").decode().split():
        if re.fullmatch(r"External_python-.*\.cmake", name):
            text = git(args.repo, "show", f"{commit}:SuperBuild/{name}").decode()
            for dist, version in re.findall(r"^\s*([A-Za-z0-9][A-Za-z0-9_.\-]*)==([^\s\\]+)", text, re.M):
                packages.setdefault(dist, (version, name))
    lines = [f"# Python distributions bundled with 3D Slicer at {commit} {args.tag}".rstrip(),
             "# pip requirements, from SuperBuild/External_python-*.cmake:"]
    lines += [f"{dist}=={version}  # {source}" for dist, (version, source) in sorted(packages.items(), key=lambda kv: kv[0].lower())]
    lines += ["# built by Slicer's superbuild itself (import names):"]
    lines += [f"{name}  # built-in" for name in BUILT_IN]
    (VENDOR / "SLICER_PYTHON_PACKAGES.txt").write_text("\n".join(lines) + "\n")
    (VENDOR / "PINNED").write_text(f"repository=https://github.com/Slicer/Slicer\ncommit={commit}\ntag={args.tag}\n")
    print(f"vendored {sum(1 for p in VENDOR.rglob('*') if p.is_file())} files from {commit} into {VENDOR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
