"""``python -m tumorgen.backend JOB.json`` in a subprocess: events, exit codes, outputs."""

from __future__ import annotations

import numpy as np
import pytest
from tumorgen_testing import assert_same_geometry, run_backend

from tumorgen.volume import Volume
from tumorgen.volume_io import read_volume, write_volume


@pytest.fixture
def oblique_input(tmp_path, oblique_grid):
    """A head-like blob on an oblique grid, plus a mask on the same grid."""
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in oblique_grid.size], indexing="ij"), -1)
    centre = (np.asarray(oblique_grid.size) - 1) / 2
    r = np.linalg.norm((idx - centre) / centre, axis=-1)
    image = Volume(np.where(r < 0.8, 100.0 + 10 * r, 0.0).astype(np.float32), oblique_grid)
    mask = Volume((r < 0.3).astype(np.uint8), oblique_grid)
    (tmp_path / "in").mkdir()
    return write_volume(image, tmp_path / "in" / "t1n.nii.gz"), write_volume(mask, tmp_path / "in" / "mask.nii.gz")


def _job(image, **extra):
    job = {"task": "smoke", "inputs": {"image": str(image)}, "params": {"passes": 2}, "device": "cpu", "output_dir": "out"}
    job.update(extra)
    return job


def test_smoke_job_round_trip(tmp_path, oblique_input):
    image, mask = oblique_input
    code, events, stderr = run_backend(_job(image, inputs={"image": str(image), "mask": str(mask)}), tmp_path)
    assert code == 0, stderr
    progress = [e for e in events if e["type"] == "progress"]
    fractions = [e["fraction"] for e in progress]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert {"start", "read", "resample", "smooth", "normalise", "write", "done"} <= {e["stage"] for e in progress}
    assert all(set(e) == {"type", "stage", "fraction", "message"} for e in progress)
    assert any(e["type"] == "log" and "mask covers" in e["message"] for e in events)
    result = events[-1]
    assert result["type"] == "result" and set(result["outputs"]) == {"smoothed", "head_mask"}
    source = read_volume(image)
    for path in result["outputs"].values():
        assert_same_geometry(read_volume(path).grid, source.grid)
    smoothed = read_volume(result["outputs"]["smoothed"]).array
    head = read_volume(result["outputs"]["head_mask"]).array.astype(bool)
    assert abs(float(smoothed[head].mean())) < 0.1 and float(smoothed[head].std()) == pytest.approx(1.0, abs=0.15)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["head_mask.nii.gz", "smoothed.nii.gz"]


def test_stdout_chatter_from_a_task_does_not_corrupt_the_event_stream(tmp_path):
    code, events, stderr = run_backend({"task": "test_print", "output_dir": "out"}, tmp_path)
    assert code == 0
    assert events[-1]["type"] == "result" and list(events[-1]["outputs"]) == ["ones"]
    assert "some library chatter on stdout" in stderr


def _bad_input_case(tmp_path, oblique_input, case):
    image, mask = oblique_input
    folder = tmp_path / "in"
    if case == "missing file":
        return _job(folder / "nope.nii.gz"), "input 'image' file not found"
    if case == "corrupt file":
        (folder / "bad.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
        return _job(folder / "bad.nii.gz"), "cannot read image"
    if case == "2D image":
        import SimpleITK as sitk

        sitk.WriteImage(sitk.Image(5, 5, sitk.sitkFloat32), str(folder / "flat.nii.gz"))
        return _job(folder / "flat.nii.gz"), "is 2D"
    if case == "4D image":
        import SimpleITK as sitk

        sitk.WriteImage(sitk.Image([4, 4, 4, 2], sitk.sitkFloat32), str(folder / "four.nii.gz"))
        return _job(folder / "four.nii.gz"), "is 4D"
    if case == "NaN voxels":
        v = read_volume(image)
        a = v.array.copy()
        a[0, 0, 0] = np.nan
        return _job(write_volume(v.with_array(a), folder / "nan.nii.gz")), "1 NaN or Inf voxels"
    if case == "empty mask":
        v = read_volume(mask)
        empty = write_volume(v.with_array(np.zeros(v.shape, np.uint8)), folder / "empty.nii.gz")
        return _job(image, inputs={"image": str(image), "mask": str(empty)}), "is empty"
    if case == "non-binary mask":
        v = read_volume(mask)
        labels = write_volume(v.with_array(v.array * 3), folder / "labels.nii.gz")
        return _job(image, inputs={"image": str(image), "mask": str(labels)}), "is not binary"
    if case == "geometry mismatch":
        v = read_volume(mask)
        other = write_volume(Volume(v.array, type(v.grid)(v.grid.size, (1, 1, 1), v.grid.origin, v.grid.direction)), folder / "m2.nii.gz")
        return _job(image, inputs={"image": str(image), "mask": str(other)}), "different geometry: spacing"
    if case == "unknown task":
        return {"task": "teleport", "output_dir": "out"}, "unknown task 'teleport'"
    if case == "malformed JSON":
        return '{"task": "smoke", "inputs": {', "is not valid JSON"
    if case == "output folder not writable":
        (tmp_path / "blocker").write_text("a file where the output folder should go")
        return _job(image, output_dir=str(tmp_path / "blocker" / "out")), "cannot be created"
    if case == "bad parameter":
        return _job(image, params={"passes": "many"}), "parameter 'passes' must be an integer"
    if case == "cuda without a GPU":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
        return _job(image, device="cuda"), "no CUDA GPU"
    raise AssertionError(case)


BAD_INPUTS = [
    "missing file",
    "corrupt file",
    "2D image",
    "4D image",
    "NaN voxels",
    "empty mask",
    "non-binary mask",
    "geometry mismatch",
    "unknown task",
    "malformed JSON",
    "output folder not writable",
    "bad parameter",
]


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_error_line_exit_2_and_nothing_written(tmp_path, oblique_input, case):
    job, expected = _bad_input_case(tmp_path, oblique_input, case)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.name != "job.json")
    code, events, stderr = run_backend(job, tmp_path)
    assert code == 2, stderr
    errors = [e for e in events if e["type"] == "error"]
    assert len(errors) == 1 and errors[0] is events[-1]
    assert errors[0]["kind"] == "bad_input"
    assert expected in errors[0]["message"] and "\n" not in errors[0]["message"]
    assert not any(e["type"] == "result" for e in events)
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.name != "job.json")
    assert after == before  # not even the output folder, when the job had to create it


def test_cuda_requested_on_a_machine_without_one(tmp_path, oblique_input):
    job, expected = _bad_input_case(tmp_path, oblique_input, "cuda without a GPU")
    code, events, _ = run_backend(job, tmp_path)
    assert code == 2 and events[-1]["kind"] == "bad_input" and expected in events[-1]["message"]


def test_crash_inside_a_task_is_an_internal_error_event(tmp_path):
    code, events, stderr = run_backend({"task": "test_crash", "output_dir": "out"}, tmp_path)
    assert code == 1
    assert events[-1] == {"type": "error", "kind": "internal", "message": "RuntimeError: the solver diverged at step 17"}
    assert "Traceback" in stderr and "run_crash" in stderr
    assert not (tmp_path / "out").exists()  # the job created it, and took it away again


def test_crash_leaves_an_existing_output_folder_as_it_was(tmp_path):
    out = tmp_path / "results" / "out"
    out.mkdir(parents=True)
    (out / "never.nii.gz").write_bytes(b"an earlier result of the same name")
    code, events, _ = run_backend({"task": "test_crash", "output_dir": str(out)}, tmp_path)
    assert code == 1 and events[-1]["kind"] == "internal"
    assert [p.name for p in out.iterdir()] == ["never.nii.gz"]
    assert (out / "never.nii.gz").read_bytes() == b"an earlier result of the same name"


def test_bad_input_from_inside_the_task_removes_the_folders_the_job_created(tmp_path, oblique_input):
    image, _ = oblique_input
    empty = tmp_path / "empty-mask.nii.gz"
    write_volume(read_volume(image).with_array(np.zeros(read_volume(image).shape, np.uint8)), empty)
    job = {"task": "smoke", "inputs": {"image": str(image), "mask": str(empty)}, "output_dir": "a/b/out"}
    code, events, _ = run_backend(job, tmp_path)
    assert code == 2 and "is empty" in events[-1]["message"]
    assert not (tmp_path / "a").exists()


def test_usage_error_without_a_job_file(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "tumorgen.backend"], capture_output=True, text=True)
    assert proc.returncode == 2 and '"kind":"bad_input"' in proc.stdout and "usage" in proc.stdout
