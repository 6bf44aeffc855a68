"""The ``tumorgen`` command line, run as a user would: in a subprocess."""

from __future__ import annotations

import subprocess
import sys

import pytest
from tumorgen_testing import backend_env

from tumorgen.cli.main import COMMANDS
from tumorgen.volume_io import read_volume


def tumorgen(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tumorgen.cli.main", *args], capture_output=True, text=True, cwd=cwd, env=backend_env(), timeout=120
    )


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


def test_demo_writes_its_outputs_and_says_what_it_ran(tmp_path):
    proc = tumorgen("demo", "--out", str(tmp_path / "demo"), "--device", "cpu", "--spacing", "3")
    assert proc.returncode == 0, proc.stderr
    assert "simulating the bundled sample" in proc.stdout
    sample = tmp_path / "demo" / "sample"
    names = sorted(p.name for p in sample.iterdir())
    assert names == sorted(f"TGSIM-sample-{s}.nii.gz" for s in ("t1n", "t1c", "t2w", "t2f", "seg", "concentration", "tissue-csf", "tissue-gm", "tissue-wm"))
    before = read_volume(sample / "TGSIM-sample-concentration.nii.gz")
    grown = read_volume(tmp_path / "demo" / "grown" / "concentration.nii.gz")
    assert grown.grid == before.grid
    assert (grown.array >= 0.25).sum() > (before.array >= 0.25).sum()  # 30 more days of growth
    assert "%|" in proc.stderr  # the progress bar


def test_demo_default_output_folder_is_relative_to_the_working_directory(tmp_path):
    proc = tumorgen("demo", "--quiet", "--device", "cpu", "--spacing", "4", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "tumorgen-demo" / "grown").iterdir()) == ["concentration.nii.gz", "seg.nii.gz"]


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
