"""`tumorgen tissues`, the `tissues` backend task, and `tumorgen grow --t1n`."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from scipy.ndimage import distance_transform_edt
from tumorgen_testing import assert_same_geometry, backend_env, run_backend

from tumorgen.anatomy.deform import deformed_subject, tissue_dice
from tumorgen.anatomy.template import load_mni152
from tumorgen.anatomy.tissues import TissueMaps
from tumorgen.resample import resample, working_grid
from tumorgen.volume_io import read_volume, write_volume


@pytest.fixture(scope="module")
def subject_files(tmp_path_factory):
    template = load_mni152()
    grid = working_grid(template.t1.grid, 3.0)
    tissues = TissueMaps(*(resample(getattr(template.tissues, n), grid) for n in ("csf", "gm", "wm")))
    subject = deformed_subject(resample(template.t1, grid), tissues, seed=3)
    folder = tmp_path_factory.mktemp("subject")
    lesion = np.zeros(grid.size, bool)
    lesion[18:26, 36:44, 34:42] = True
    return subject, {
        "t1n": write_volume(subject.t1, folder / "case-t1n.nii.gz"),
        "exclude": write_volume(subject.t1.with_array(lesion), folder / "case-lesion.nii.gz"),
    }


def tumorgen(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "tumorgen.cli.main", *args], capture_output=True, text=True, cwd=cwd, env=backend_env(), timeout=300)


def test_tissues_cli_writes_maps_and_reuses_the_cache(tmp_path, subject_files):
    subject, files = subject_files
    out = tmp_path / "out"
    proc = tumorgen("tissues", "--t1n", str(files["t1n"]), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["registration"] == "affine + deformable" and summary["cached"] is False
    assert summary["intensity_mse_final"] < summary["intensity_mse_affine"]
    assert "%|" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["tissue-csf.nii.gz", "tissue-gm.nii.gz", "tissue-labels.nii.gz", "tissue-wm.nii.gz"]
    maps = TissueMaps.read_folder(out)
    assert_same_geometry(maps.grid, subject.t1.grid)
    scores = tissue_dice(maps, subject.tissues)
    assert scores["gm"] >= 0.85 and scores["wm"] >= 0.85, scores
    labels = read_volume(out / "tissue-labels.nii.gz")
    assert np.array_equal(labels.array, maps.labels().array)
    assert summary["volumes_cm3"]["wm"] == pytest.approx((labels.array == 3).sum() * 27 / 1000, abs=0.01)

    again = tumorgen("tissues", "--t1n", str(files["t1n"]), "--out", str(tmp_path / "again"), "--quiet")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["cached"] is True and again.stderr == ""
    repeat = TissueMaps.read_folder(tmp_path / "again")
    assert np.abs(repeat.wm.array - maps.wm.array).max() < 1e-4


def test_tissues_task_with_an_exclude_mask(tmp_path, subject_files):
    subject, files = subject_files
    job = {"task": "tissues", "inputs": {"t1n": str(files["t1n"]), "exclude": str(files["exclude"])},
           "params": {"use_cache": False}, "device": "cpu", "output_dir": "out"}
    code, events, stderr = run_backend(job, tmp_path, timeout=300)
    assert code == 0, stderr
    stages = [e for e in events if e["type"] == "progress"]
    assert any(e["message"].startswith("deformable") for e in stages)
    assert all(a["fraction"] <= b["fraction"] for a, b in zip(stages, stages[1:]))
    outputs = events[-1]["outputs"]
    assert set(outputs) == {"csf", "gm", "wm", "labels"}
    wm = read_volume(outputs["wm"])
    assert_same_geometry(wm.grid, subject.t1.grid)
    assert tissue_dice(TissueMaps(*(read_volume(outputs[n]) for n in ("csf", "gm", "wm"))), subject.tissues)["wm"] >= 0.85


def test_grow_on_a_t1(tmp_path, subject_files):
    subject, files = subject_files
    deep = distance_transform_edt(subject.tissues.wm.array > 0.9)
    seed = np.unravel_index(np.argmax(deep), deep.shape)
    proc = tumorgen("grow", "--t1n", str(files["t1n"]), "--exclude", str(files["exclude"]), "--seed-voxel", ",".join(map(str, seed)),
                    "--volume", "3", "--quiet", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["tissues"] == "template registered to the T1" and summary["volume_cm3_c>=0.25"] >= 3.0
    conc = read_volume(tmp_path / "tumorgen-concentration.nii.gz")
    assert_same_geometry(conc.grid, subject.t1.grid)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda t1, f: ["--t1n", str(f / "missing.nii.gz")], "not found"),
        (lambda t1, f: ["--t1n", str(write_volume(t1.with_array(np.zeros(t1.grid.size, np.float32)), f / "flat.nii.gz"))], "constant"),
        (lambda t1, f: ["--t1n", str(write_volume(t1, f / "t1.nii.gz")),
                        "--exclude", str(write_volume(t1.with_array(np.ones(t1.grid.size, np.uint8)), f / "all.nii.gz"))], "too little anatomy"),
    ],
)
def test_tissues_cli_bad_input(tmp_path, subject_files, make, message):
    subject, _ = subject_files
    args = make(subject.t1, tmp_path)
    proc = tumorgen("tissues", *args, "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
