"""`tumorgen grow` and the `grow` backend task, end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from tumorgen_testing import PHANTOM_SEED, assert_same_geometry, backend_env, brain_phantom, run_backend

from tumorgen.volume_io import read_volume, write_volume


@pytest.fixture
def tissue_files(tmp_path):
    tissues = brain_phantom()
    folder = tmp_path / "tissues"
    return tissues, tissues.write(folder)


def tumorgen(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "tumorgen.cli.main", *args], capture_output=True, text=True, cwd=cwd, env=backend_env(), timeout=300)


def test_grow_cli_with_tissue_maps(tmp_path, tissue_files):
    tissues, files = tissue_files
    proc = tumorgen("grow", "--csf", str(files["csf"]), "--gm", str(files["gm"]), "--wm", str(files["wm"]),
                    "--seed-voxel", ",".join(map(str, PHANTOM_SEED)), "--volume", "5", "--case", "case1", "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["tissues"] == "user tissue maps" and summary["volume_cm3_c>=0.25"] >= 5.0
    conc = read_volume(tmp_path / "out" / "case1-concentration.nii.gz")
    seg = read_volume(tmp_path / "out" / "case1-seg.nii.gz")
    assert_same_geometry(conc.grid, tissues.grid) and assert_same_geometry(seg.grid, tissues.grid)
    assert set(np.unique(seg.array)) <= {0, 1, 2, 3} and (seg.array > 0).sum() == (conc.array >= 0.25).sum()
    assert "%|" in proc.stderr


def test_grow_cli_on_the_bundled_sample(tmp_path):
    proc = tumorgen("grow", "--seed-ras=-38,-4,28", "--days", "20", "--quiet", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["tissues"] == "bundled MNI152 sample"
    conc = read_volume(tmp_path / "tumorgen-concentration.nii.gz")
    assert conc.grid.size == (197, 233, 189) and 0 < conc.array.max() <= 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--days", "5"], "exactly one start"),
        (["--seed-voxel", "1,2,3", "--days", "5", "--volume", "3"], "one stop: --days or --volume, not both"),
        (["--seed-ras=0,0,0", "--days", "5", "--csf", "x.nii.gz"], "all three tissue maps"),
        (["--seed-voxel", "0,0,0", "--days", "5"], "not in brain tissue"),
        (["--seed-ras=-38,-4,28", "--days", "5", "--rho", "-1"], "rho must be"),
        (["--seed-ras=-38,-4,28", "--days", "5", "--edema", "0.9"], "label thresholds"),
        (["--seed-ras=-38,-4,28", "--days", "5", "--tissue-labels", "missing.nii.gz"], "not found"),
    ],
)
def test_grow_cli_bad_input(tmp_path, args, message):
    proc = tumorgen("grow", *args, "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_grow_task_round_trip_with_a_label_map_and_regrow(tmp_path, tissue_files):
    tissues, files = tissue_files
    job = {"task": "grow", "inputs": {"tissue_labels": str(files["labels"])},
           "params": {"seed_voxel": list(PHANTOM_SEED), "days": 40.0, "solver": "numpy"}, "device": "cpu", "output_dir": "out"}
    code, events, stderr = run_backend(job, tmp_path)
    assert code == 0, stderr
    grow_steps = [e for e in events if e["type"] == "progress" and e["stage"] == "grow"]
    assert len(grow_steps) > 10 and all(a["fraction"] <= b["fraction"] for a, b in zip(grow_steps, grow_steps[1:]))
    outputs = events[-1]["outputs"]
    first = read_volume(outputs["concentration"])
    assert_same_geometry(first.grid, tissues.grid)
    # regrow the result for 10 more days, as the GUI does after an edit
    again = tmp_path / "again"
    again.mkdir()
    job2 = {"task": "grow", "inputs": {"tissue_labels": str(files["labels"]), "initial": outputs["concentration"]},
            "params": {"days": 10.0}, "device": "cpu", "output_dir": "out"}
    code, events, stderr = run_backend(job2, again)
    assert code == 0, stderr
    second = read_volume(events[-1]["outputs"]["concentration"])
    assert (second.array >= 0.25).sum() > (first.array >= 0.25).sum()


def test_grow_task_rejects_an_initial_field_on_another_grid(tmp_path, tissue_files):
    _, files = tissue_files
    other = write_volume(brain_phantom(size=(30, 30, 30)).wm, tmp_path / "other.nii.gz")
    job = {"task": "grow", "inputs": {"tissue_labels": str(files["labels"]), "initial": str(other)},
           "params": {"days": 5.0}, "device": "cpu", "output_dir": "out"}
    code, events, _ = run_backend(job, tmp_path)
    assert code == 2 and "different geometry" in events[-1]["message"]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
