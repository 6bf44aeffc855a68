"""``tumorgen_slicer.run_history``: the expected time of a run from the last of its kind, and pruning old run folders.

No scene is needed; the module has no Qt and no Slicer.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from tumorgen.errors import InputError
from tumorgen_slicer.run_history import HISTORY_FILE, PastRun, RunHistory, describe_expected, prune_run_folders


@pytest.fixture
def history(tmp_path) -> RunHistory:
    return RunHistory.in_folder(tmp_path / "runs")


# -- expected time ----------------------------------------------------------------------------------------------------
def test_no_run_of_the_kind_means_no_expectation(history):
    assert history.expected_seconds("inpaint", 1_000_000, "cuda") is None
    assert history.record("inpaint", 40.0, 1_000_000, "cuda")
    assert history.expected_seconds("inpaint", 1_000_000, "cpu") is None  # another device
    assert history.expected_seconds("grow", 1_000_000, "cuda") is None  # another task


def test_the_last_run_of_the_kind_sets_the_expectation_scaled_by_the_voxels(history):
    history.record("inpaint", 40.0, 1_000_000, "cuda")
    history.record("inpaint", 300.0, 1_000_000, "cpu")
    assert history.expected_seconds("inpaint", 1_000_000, "cuda") == 40.0
    assert history.expected_seconds("inpaint", 2_000_000, "cuda") == 80.0
    assert history.expected_seconds("inpaint", 250_000, "cpu") == 75.0
    history.record("inpaint", 60.0, 500_000, "cuda")  # the last run counts, not the first
    assert history.expected_seconds("inpaint", 1_000_000, "cuda") == 120.0
    assert history.expected_seconds("inpaint", 500_000, "cuda") == 60.0


def test_the_history_is_a_json_file_another_instance_reads(tmp_path, history):
    history.record("grow", 12.5, 884_736, "cpu")
    assert history.path == tmp_path / "runs" / HISTORY_FILE
    assert os.listdir(tmp_path / "runs") == [HISTORY_FILE]  # written through a temporary name, none left behind
    data = json.loads(history.path.read_text())
    assert data["version"] == 1 and len(data["runs"]) == 1
    run = data["runs"][0]
    assert {k: run[k] for k in ("task", "device", "seconds", "voxels")} == {"task": "grow", "device": "cpu", "seconds": 12.5,
                                                                            "voxels": 884_736}
    assert RunHistory(history.path).expected_seconds("grow", 884_736 * 2, "cpu") == 25.0


def test_only_the_last_few_runs_of_each_kind_are_kept(tmp_path):
    history = RunHistory(tmp_path / "history.json", runs_per_kind=3)
    for seconds in range(1, 8):
        history.record("inpaint", float(seconds), 1000, "cuda")
        if seconds in (2, 5):
            history.record("grow", 100.0 + seconds, 1000, "cuda")
    runs = history.runs()
    assert [r.seconds for r in runs if r.task == "inpaint"] == [5.0, 6.0, 7.0]
    assert [r.seconds for r in runs if r.task == "grow"] == [102.0, 105.0]
    assert [r.finished for r in runs] == sorted(r.finished for r in runs)
    assert history.expected_seconds("inpaint", 1000, "cuda") == 7.0


@pytest.mark.parametrize("content", [b"", b"{", b"[]", b'{"runs": 3}', b'{"runs": {"inpaint": 1}}', b"\xff\xfe\x00garbage",
                                     b'"just text"', b"null"])
def test_a_corrupt_file_reads_as_an_empty_history_and_is_replaced_by_the_next_record(history, content):
    history.path.parent.mkdir(parents=True)
    history.path.write_bytes(content)
    assert history.runs() == []
    assert history.expected_seconds("inpaint", 1000, "cuda") is None
    assert history.record("inpaint", 3.0, 1000, "cuda")
    assert history.expected_seconds("inpaint", 1000, "cuda") == 3.0


def test_damaged_records_are_left_out_and_the_others_kept(history):
    good = {"task": "inpaint", "device": "cuda", "seconds": 10.0, "voxels": 1000, "finished": 2.0}
    bad = [{**good, "seconds": -1}, {**good, "voxels": 0}, {**good, "voxels": 2.5}, {**good, "task": ""}, {**good, "device": 3},
           {**good, "seconds": "ten"}, {**good, "seconds": True}, "inpaint", None, {"task": "inpaint"}]
    history.path.parent.mkdir(parents=True)
    history.path.write_text(json.dumps({"version": 1, "runs": [*bad, good]}))
    assert history.runs() == [PastRun("inpaint", "cuda", 10.0, 1000, 2.0)]
    history.path.write_text('{"version": 1, "runs": [{"task": "x", "device": "cpu", "seconds": NaN, "voxels": 5}]}')
    assert history.runs() == []


def test_an_unreadable_or_unwritable_history_never_raises(tmp_path):
    folder_in_the_way = RunHistory(tmp_path)  # the "file" is a folder
    assert folder_in_the_way.runs() == [] and folder_in_the_way.expected_seconds("grow", 10, "cpu") is None
    (tmp_path / "a-file").write_text("x")
    blocked = RunHistory(tmp_path / "a-file" / HISTORY_FILE)
    assert blocked.record("grow", 1.0, 10, "cpu") is False
    assert blocked.runs() == []


@pytest.mark.parametrize("task, seconds, voxels, device, message", [
    ("", 1.0, 10, "cpu", "a run's task must be a name, got ''"),
    ("grow", 1.0, 10, "", "a run's device must be a name, got ''"),
    ("grow", -0.5, 10, "cpu", "a run's time must be a finite number of seconds ≥ 0, got -0.5"),
    ("grow", math.inf, 10, "cpu", "a run's time must be a finite number of seconds ≥ 0, got inf"),
    ("grow", 1.0, 0, "cpu", "a run's voxel count must be a whole number ≥ 1, got 0"),
    ("grow", 1.0, 2.5, "cpu", "a run's voxel count must be a whole number ≥ 1, got 2.5"),
    ("grow", 1.0, True, "cpu", "a run's voxel count must be a whole number ≥ 1, got True"),
])
def test_record_rejects_what_is_not_a_run(history, task, seconds, voxels, device, message):
    with pytest.raises(InputError) as exc:
        history.record(task, seconds, voxels, device)
    assert str(exc.value) == message
    assert not history.path.exists()


@pytest.mark.parametrize("seconds, text", [(None, ""), (math.nan, ""), (-3.0, ""), (0.2, "about 1 s"), (41.7, "about 42 s"),
                                           (89.0, "about 89 s"), (90.0, "about 2 min"), (180.0, "about 3 min"),
                                           (41 * 60.0, "about 41 min"), (5400.0, "about 1.5 h"), (3 * 3600.0, "about 3 h")])
def test_describe_expected(seconds, text):
    assert describe_expected(seconds) == text


# -- pruning run folders ----------------------------------------------------------------------------------------------
def _job_folder(work_dir: Path, name: str, started: float) -> Path:
    """A job folder as a run leaves it, its job file dated ``started`` (seconds since the epoch)."""
    folder = work_dir / name
    (folder / "outputs").mkdir(parents=True)
    (folder / "outputs" / "result.nii.gz").write_bytes(b"result")
    job = folder / "job.json"
    job.write_text('{"task": "grow", "output_dir": "outputs"}')
    os.utime(job, (started, started))
    return folder


@pytest.fixture
def work_dir(tmp_path) -> Path:
    """Five job folders, named against their age (the newest has the smallest name), and what else lives there."""
    work = tmp_path / "runs"
    for n, name in enumerate(["e", "d", "c", "b", "a"]):
        _job_folder(work, f"run-{name}", started=1_700_000_000 + 60 * n)
    (work / "notes").mkdir()  # a folder with no job file
    (work / "notes" / "readme.txt").write_text("mine")
    (work / "half-made").mkdir()  # a run still writing its inputs: no job file yet
    (work / "half-made" / "inputs").mkdir()
    (work / "odd").mkdir()  # job.json is a folder here, not a job file
    (work / "odd" / "job.json").mkdir()
    (work / HISTORY_FILE).write_text('{"version": 1, "runs": []}')
    elsewhere = _job_folder(tmp_path / "elsewhere", "run-linked", started=1_600_000_000)
    (work / "linked").symlink_to(elsewhere, target_is_directory=True)
    return work


def _left(work: Path) -> list[str]:
    return sorted(os.listdir(work))


OTHERS = sorted([HISTORY_FILE, "half-made", "linked", "notes", "odd"])


def test_prune_keeps_the_newest_job_folders_by_the_time_of_their_job_file(work_dir):
    deleted = prune_run_folders(work_dir, keep=2)
    assert deleted == [work_dir / "run-e", work_dir / "run-d", work_dir / "run-c"]  # oldest first
    assert _left(work_dir) == sorted(OTHERS + ["run-a", "run-b"])
    assert (work_dir / "notes" / "readme.txt").read_text() == "mine"
    assert (work_dir / "linked" / "job.json").is_file()  # a link is not deleted, nor what it points to
    assert prune_run_folders(work_dir, keep=2) == []


def test_prune_never_deletes_a_protected_folder_and_counts_it_as_kept(work_dir):
    running = work_dir / "run-e"  # the oldest, say a long run still going
    deleted = prune_run_folders(work_dir, keep=2, protect=[work_dir / "notes" / ".." / "run-e"])
    assert deleted == [work_dir / "run-d", work_dir / "run-c", work_dir / "run-b"]
    assert running.is_dir() and _left(work_dir) == sorted(OTHERS + ["run-a", "run-e"])


def test_keep_zero_deletes_every_job_folder_but_the_protected(work_dir):
    assert len(prune_run_folders(work_dir, keep=0, protect=[work_dir / "run-a"])) == 4
    assert _left(work_dir) == sorted(OTHERS + ["run-a"])
    assert prune_run_folders(work_dir, keep=0) == [work_dir / "run-a"]
    assert _left(work_dir) == OTHERS


def test_keeping_more_than_there_are_deletes_nothing(work_dir):
    assert prune_run_folders(work_dir, keep=5) == [] and prune_run_folders(work_dir, keep=1000) == []
    assert len(_left(work_dir)) == len(OTHERS) + 5


def test_prune_a_missing_work_folder_and_a_bad_keep(tmp_path, work_dir):
    assert prune_run_folders(tmp_path / "never-made", keep=0) == []
    for keep in (-1, 2.5, True):
        with pytest.raises(InputError) as exc:
            prune_run_folders(work_dir, keep=keep)
        assert str(exc.value) == f"keep must be a whole number of run folders ≥ 0, got {keep!r}"
    assert len(_left(work_dir)) == len(OTHERS) + 5


def test_the_module_loads_without_slicer_qt_or_numpy():
    import subprocess
    import sys

    code = ("import sys, tumorgen_slicer.run_history; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'slicer', 'qt', 'vtk', 'ctk', 'numpy', 'torch'}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr
