"""A command that fails leaves the file system as it found it.

Every ``tumorgen`` command that writes into an output folder is run with an
input that fails late (after the checks that come before any work): an output
folder that did not exist must not exist afterwards (nor its missing parents),
and an existing one, with an earlier result in it, must be unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from tumorgen_testing import brain_phantom

from tumorgen.cli.main import main
from tumorgen.volume_io import write_volume


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Tiny inputs that each make one command fail after its early checks."""
    folder = tmp_path_factory.mktemp("inputs")
    tissues = brain_phantom(size=(24, 22, 20))
    tissues.write(folder)  # tissue-csf/gm/wm.nii.gz
    write_volume(tissues.csf.with_array(np.ones(tissues.csf.shape, np.float32)), folder / "constant.nii.gz")
    write_volume(tissues.csf.with_array(np.zeros(tissues.csf.shape, np.uint8)), folder / "empty-mask.nii.gz")
    (folder / "bad-series.csv").write_text("day,size\n0,12.1\n28,x\n")
    (folder / "no-cases").mkdir()
    return folder


def _job(inputs: Path, out: Path) -> str:
    """A job whose task fails on its input (an empty mask), which it reads after the output folder is set up."""
    job = inputs / f"job-{out.parent.name}.json"
    job.write_text(json.dumps({"task": "smoke", "inputs": {"image": str(inputs / "constant.nii.gz"), "mask": str(inputs / "empty-mask.nii.gz")},
                               "device": "cpu", "output_dir": str(out)}))
    return str(job)


#: command → (its arguments for the inputs folder and the output folder; the output file it would write, relative to
#: the output folder; the exit code; a piece of the error message)
FAILURES: dict[str, tuple[Callable[[Path, Path], list[str]], str, int, str]] = {
    "grow": (lambda i, o: ["grow", "--csf", str(i / "tissue-csf.nii.gz"), "--gm", str(i / "tissue-gm.nii.gz"), "--wm", str(i / "tissue-wm.nii.gz"),
                           "--seed-voxel", "500,500,500", "--days", "5", "--out", str(o), "--quiet"],
             "tumorgen-seg.nii.gz", 2, "is outside the image"),
    "simulate": (lambda i, o: ["simulate", "--spacing", "8", "--series", "10", "--rt-start", "5", "--rt-alpha", "2", "--out", str(o), "--quiet"],
                 "cases.json", 2, "alpha"),
    "tissues": (lambda i, o: ["tissues", "--t1n", str(i / "constant.nii.gz"), "--out", str(o), "--no-cache", "--quiet"],
                "tissue-csf.nii.gz", 2, "t1n is constant"),
    "inpaint": (lambda i, o: ["inpaint", "--t1n", str(i / "missing.nii.gz"), "--mask", str(i / "empty-mask.nii.gz"),
                              "--out", str(o / "inpainted.nii.gz"), "--quiet"],
                "inpainted.nii.gz", 2, "t1n file not found"),
    "forecast": (lambda i, o: ["forecast", str(i / "bad-series.csv"), "--out", str(o / "forecast.csv"), "--quiet"],
                 "forecast.csv", 2, "is not a number"),
    "evaluate": (lambda i, o: ["evaluate", "--pred", str(i / "missing.nii.gz"), "--gt", str(i / "constant.nii.gz"),
                               "--mask", str(i / "empty-mask.nii.gz"), "--out", str(o / "metrics.json")],
                 "metrics.json", 2, ""),
    "train": (lambda i, o: ["train", "autoencoder", "--data", str(i / "no-cases"), "--out", str(o), "--steps", "1", "--quiet"],
              "autoencoder-loss.csv", 2, "no case folders"),
    "demo": (lambda i, o: ["demo", "--spacing", "0", "--device", "cpu", "--out", str(o), "--quiet"],
             "timings.tsv", 1, "spacing must be between"),
    "run": (lambda i, o: ["run", "--quiet", _job(i, o)], "smoothed.nii.gz", 2, "is empty"),
}


def _snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) under ``root``, by relative path."""
    return {p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("command", FAILURES)
def test_a_failed_command_creates_no_output_folder(tmp_path, inputs, command, capsys):
    arguments, _, code, message = FAILURES[command]
    out = tmp_path / "new" / "out"  # neither the folder nor its parent exists
    assert main(arguments(inputs, out)) == code
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [], f"tumorgen {command} left {_snapshot(tmp_path)}"


@pytest.mark.parametrize("command", FAILURES)
def test_a_failed_command_leaves_an_existing_output_folder_unchanged(tmp_path, inputs, command, capsys):
    arguments, output, code, message = FAILURES[command]
    out = tmp_path / "existing" / "out"
    out.mkdir(parents=True)
    (out / "notes.txt").write_text("not TumorGen's\n")
    (out / output).write_bytes(b"the result of an earlier run")
    before = _snapshot(tmp_path)
    assert main(arguments(inputs, out)) == code
    assert message in capsys.readouterr().err
    assert _snapshot(tmp_path) == before
