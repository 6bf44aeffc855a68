"""The dataset builder: one seed per case, whole-or-absent cases, resume, failures, the datalist, Ray with a killed worker, the command.

A stand-in maker (``Testing/support/synthesis_stand_in.py``) writes five tiny
volumes per case from the case seed; the real recipe has its own tests. One
Ray run (two local workers, one of them SIGKILLed mid-case) is checked against
the single-process run byte for byte.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tumorgen.cli import dataset as dataset_cli
from tumorgen.errors import InputError
from tumorgen.synthesis.dataset import CONTRASTS, DATALIST, PARTIAL_PREFIX, build_dataset, case_files, case_name, case_seed

MAKER = "synthesis_stand_in:make_case"
N = 6


def digests(folder: Path) -> dict[str, str]:
    """sha256 of every case file under ``folder`` (the datalist and hidden files aside), by relative path."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.parent != folder}


def case_folders(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> tuple[Path, object]:
    """The reference: N cases made in this process (workers=0), no Ray."""
    out = tmp_path_factory.mktemp("single") / "data"
    reports = []
    summary = build_dataset(out, N, seed=7, maker=MAKER, settings={"sleep_s": 0.05}, workers=0,
                            progress=lambda fraction, message: reports.append((fraction, message)))
    return out, summary, reports


# -- seeds -----------------------------------------------------------------------------------
def test_one_seed_per_case_from_the_dataset_seed_and_the_index_alone():
    seeds = [case_seed(0, i) for i in range(200)]
    assert len(set(seeds)) == 200 and all(0 <= s < 2**63 for s in seeds)
    assert seeds[:5] == [case_seed(0, i) for i in range(5)]  # the same every time, whatever else is made
    assert case_seed(1, 3) != case_seed(0, 3) and case_seed(0, 3) != case_seed(3, 0)
    # the index-th child of SeedSequence(seed), as spawn gives it (not counting on how many were spawned)
    child = np.random.SeedSequence(0).spawn(4)[3]
    assert case_seed(0, 3) == int(child.generate_state(1, np.uint64)[0] >> np.uint64(1))
    assert case_name("TGSYN", 12) == "TGSYN-00012"


# -- this process -----------------------------------------------------------------------------
def test_a_single_process_run_writes_every_case_and_the_datalist(single):
    out, summary, reports = single
    names = [case_name("TGSYN", i) for i in range(N)]
    assert summary.made == names and summary.skipped == [] and summary.failed == []
    assert summary.mode == "process" and summary.workers == 1 and summary.ok and summary.cases_per_hour > 0
    assert case_folders(out) == names
    assert not [p for p in out.iterdir() if p.name.startswith(PARTIAL_PREFIX)]
    for name in names:
        assert sorted(p.name for p in (out / name).iterdir()) == sorted([*case_files(name), f"{name}.json"])
    datalist = json.loads((out / DATALIST).read_text())
    assert datalist["modality"] == {"0": "t1n", "1": "t1c", "2": "t2w", "3": "t2f"}
    assert datalist["labels"] == {"0": "background", "1": "necrotic core", "2": "edema", "3": "enhancing tumor"}
    assert datalist["numTraining"] == N and [e["case"] for e in datalist["training"]] == names
    for i, entry in enumerate(datalist["training"]):
        name = names[i]
        assert entry["image"] == [f"{name}/{name}-{c}.nii.gz" for c in CONTRASTS]
        assert entry["label"] == f"{name}/{name}-seg.nii.gz"
        assert entry["seed"] == case_seed(7, i) and entry["tumor_voxels"] > 0
        assert all((out / path).is_file() for path in [*entry["image"], entry["label"]])
    # the progress rises to 1, one report per case in between
    fractions = [f for f, _ in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(reports) == N + 2


def test_resume_makes_only_the_missing_case_and_removes_stale_staging(single, tmp_path):
    out = tmp_path / "data"
    shutil.copytree(single[0], out)
    shutil.rmtree(out / "TGSYN-00003")
    stale = out / f"{PARTIAL_PREFIX}x"
    (stale / "TGSYN-00003").mkdir(parents=True)
    (stale / "TGSYN-00003" / "TGSYN-00003-t1n.nii.gz").write_bytes(b"half")
    (out / DATALIST).unlink()
    summary = build_dataset(out, N, seed=7, maker=MAKER, settings={"sleep_s": 0.0}, workers=0)
    assert summary.made == ["TGSYN-00003"] and len(summary.skipped) == N - 1 and summary.failed == []
    assert not stale.exists()
    assert digests(out) == digests(single[0])
    assert json.loads((out / DATALIST).read_text()) == json.loads((single[0] / DATALIST).read_text())
    # another seed does not mix into a dataset
    with pytest.raises(InputError, match="another seed"):
        build_dataset(out, N, seed=8, maker=MAKER, workers=0)


def test_a_failing_case_is_reported_and_leaves_nothing_the_others_are_made(tmp_path):
    out = tmp_path / "data"
    summary = build_dataset(out, 4, seed=7, maker=MAKER, settings={"sleep_s": 0.0, "fail_index": 2}, workers=0)
    assert summary.failed == ["TGSYN-00002"] and not summary.ok
    assert summary.errors["TGSYN-00002"] == "ValueError: case 2 cannot be made (a second line)"
    assert summary.made == ["TGSYN-00000", "TGSYN-00001", "TGSYN-00003"]
    assert case_folders(out) == summary.made
    assert [e["case"] for e in json.loads((out / DATALIST).read_text())["training"]] == summary.made


def test_cancel_stops_cleanly_with_only_complete_cases(tmp_path):
    out = tmp_path / "data"
    reports = []
    summary = build_dataset(out, 5, seed=7, maker=MAKER, settings={"sleep_s": 0.0}, workers=0,
                            progress=lambda f, m: reports.append(m), cancel=lambda: len(reports) >= 3)
    assert summary.cancelled and summary.made == ["TGSYN-00000", "TGSYN-00001"]
    assert case_folders(out) == summary.made
    assert json.loads((out / DATALIST).read_text())["numTraining"] == 2


def test_bad_arguments_are_input_errors(tmp_path):
    for kwargs, match in [({"n": 0}, "between 1"), ({"workers": -1}, ">= 0"), ({"workers": 2, "ray_address": "auto"}, "not both"),
                          ({"maker": "no_such_module:make"}, "cannot import"), ({"prefix": "a/b"}, "prefix")]:
        with pytest.raises(InputError, match=match):
            build_dataset(tmp_path / "data", **{"n": 2, "maker": MAKER, "workers": 0, **kwargs})
    assert not (tmp_path / "data").exists()


# -- Ray ------------------------------------------------------------------------------------
def test_ray_with_a_worker_killed_mid_run_makes_every_case_once_and_the_same_bytes(single, tmp_path):
    pytest.importorskip("ray")
    out = tmp_path / "data"
    marker = tmp_path / "killed"
    reports = []
    summary = build_dataset(out, N, seed=7, maker=MAKER, workers=2,
                            settings={"sleep_s": 0.3, "kill_index": 2, "kill_marker": str(marker)},
                            progress=lambda fraction, message: reports.append(message))
    # a worker process really died, after writing two files of case 2 into its staging folder
    assert marker.exists() and int(marker.read_text()) > 0
    assert summary.mode == "ray-local" and summary.workers == 2
    assert summary.failed == [] and summary.made == [case_name("TGSYN", i) for i in range(N)]
    # each case reported finished exactly once, although case 2 ran twice
    finished = [m.split()[0] for m in reports if " made (" in m]
    assert sorted(finished) == summary.made
    assert case_folders(out) == summary.made and not [p for p in out.iterdir() if p.name.startswith(PARTIAL_PREFIX)]
    assert digests(out) == digests(single[0])
    assert json.loads((out / DATALIST).read_text())["training"] == json.loads((single[0] / DATALIST).read_text())["training"]


# -- the command ----------------------------------------------------------------------------
def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tumorgen")
    dataset_cli.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["dataset", *argv])


@pytest.mark.parametrize("argv, message", [
    (["--n", "0"], "--n must be between 1"),
    (["--n", "2", "--workers", "-1"], "--workers must be >= 0"),
    (["--n", "2", "--workers", "2", "--ray", "auto"], "give --workers or --ray, not both"),
    (["--n", "2", "--workers", "0", "--t1n", "missing.nii.gz"], "--t1n missing.nii.gz: no such file"),
])
def test_command_errors_are_one_line(tmp_path, argv, message):
    args = parse("--out", str(tmp_path / "data"), *argv)
    with pytest.raises(InputError, match=message) as error:
        args.func(args)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "data").exists()


def test_command_passes_the_recipe_settings_and_fails_with_a_failed_case(tmp_path, monkeypatch, capsys):
    from synthesis_stand_in import make_case

    seen = []

    def maker(index, seed, folder, settings):
        seen.append(settings)
        return make_case(index, seed, folder, {"sleep_s": 0.0, "fail_index": 1})

    monkeypatch.setattr(dataset_cli, "MAKER", maker)
    labels = tmp_path / "labels"
    labels.mkdir()
    args = parse("--out", str(tmp_path / "data"), "--n", "3", "--workers", "0", "--labels", str(labels), "--steps", "5", "--quiet")
    assert args.func(args) == 1
    assert seen[0] == {"t1n": None, "labels": str(labels.resolve()), "steps": 5, "device": "auto", "weights": None, "volume_cm3": [8.0, 60.0], "samples": 2}
    printed = json.loads(capsys.readouterr().out)
    assert printed["made"] == 2 and printed["failed"] == {"TGSYN-00001": "ValueError: case 1 cannot be made (a second line)"}
    assert printed["mode"] == "process"
