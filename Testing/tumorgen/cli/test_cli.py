"""The ``tumorgen`` command line, run as a user would: in a subprocess."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from tumorgen_testing import backend_env, small_models

from tumorgen.cli.main import COMMANDS
from tumorgen.volume_io import read_volume


#: A guard against a hung command, not a speed check: on a loaded machine the small demo alone takes minutes.
HANG_TIMEOUT_S = 1200


def tumorgen(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tumorgen.cli.main", *args], capture_output=True, text=True, cwd=cwd,
                          env=backend_env(), timeout=HANG_TIMEOUT_S)


def test_help_at_the_top_lists_every_command():
    proc = tumorgen("--help")
    assert proc.returncode == 0
    for command in COMMANDS:
        assert command in proc.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_help_for_every_command(command):
    proc = tumorgen(command, "--help")
    assert proc.returncode == 0 and proc.stdout.startswith(f"usage: tumorgen {command}")


def test_no_command_prints_help_and_fails():
    proc = tumorgen()
    assert proc.returncode == 2 and "usage: tumorgen" in proc.stderr


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    """Small untrained models on the 1 mm grid: the demo's inpainting steps run through them quickly."""
    return small_models(tmp_path_factory.mktemp("demo-models"), spacing_mm=1.0)


def test_demo_writes_its_outputs_and_says_what_it_ran(tmp_path, untrained):
    """Without --out the demo writes to tumorgen-demo/ in the working directory."""
    proc = tumorgen("demo", "--device", "cpu", "--spacing", "3", "--weights", str(untrained), "--steps", "4", "--resample", "1",
                    cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "simulate the healthy sample" in proc.stdout and "inpaint it away again" in proc.stdout
    demo = tmp_path / "tumorgen-demo"
    assert sorted(p.name for p in (demo / "grown").iterdir()) == ["concentration.nii.gz", "mask.nii.gz", "seg.nii.gz"]
    names = sorted(p.name for p in (demo / "sample").iterdir())
    assert "TGSIM-sample-t1n.nii.gz" in names and "TGSIM-sample-tissue-wm.nii.gz" in names
    t1n = read_volume(demo / "sample" / "TGSIM-sample-t1n.nii.gz")
    labels = read_volume(demo / "grown" / "seg.nii.gz")
    mask = read_volume(demo / "grown" / "mask.nii.gz").array > 0
    assert (labels.array > 0).sum() > 0 and mask.sum() > (labels.array > 0).sum() and mask[labels.array > 0].all()
    tumor = read_volume(demo / "tumor" / "inpainted.nii.gz")
    restored = read_volume(demo / "restored" / "inpainted.nii.gz")
    for volume in (tumor, restored):
        assert volume.grid == t1n.grid and np.array_equal(volume.array[~mask], t1n.array[~mask])
    assert not np.array_equal(tumor.array[mask], t1n.array[mask])
    rows = (demo / "timings.tsv").read_text().splitlines()
    assert rows[0] == "step\tseconds" and rows[-1].startswith("total\t") and len(rows) == 8
    assert (demo / "montage.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "%|" in proc.stderr  # the progress bar


def test_run_reports_outputs_and_exit_codes(tmp_path):
    from tumorgen.backend.job import Job

    ok = Job(task="test_print", output_dir=tmp_path / "out").write(tmp_path / "ok.json")
    proc = tumorgen("run", "--quiet", str(ok))
    assert proc.returncode == 0 and proc.stdout.startswith("ones\t")
    crash = Job(task="test_crash", output_dir=tmp_path / "out").write(tmp_path / "crash.json")
    proc = tumorgen("run", "--quiet", str(crash))
    assert proc.returncode == 1 and "failed: RuntimeError: the solver diverged at step 17" in proc.stderr


def test_run_with_a_malformed_job_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    proc = tumorgen("run", str(bad))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "is not valid JSON" in proc.stderr


def test_tasks_lists_the_smoke_task():
    proc = tumorgen("tasks")
    assert proc.returncode == 0 and "smoke: Backend self-check" in proc.stdout and "passes=4" in proc.stdout


def test_web_checks_its_options_before_starting(capsys):
    from tumorgen.cli.main import main

    assert main(["web", "--port", "0"]) == 2
    assert "--port must be in 1..65535" in capsys.readouterr().err
    assert main(["web", "--upload-limit", "-1"]) == 2
    assert "--upload-limit must be a positive" in capsys.readouterr().err
