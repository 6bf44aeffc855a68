"""The job file: reading, checking, relative paths."""

from __future__ import annotations

import json

import pytest

from tumorgen.backend.job import Job
from tumorgen.errors import InputError


def test_round_trip_and_relative_paths(tmp_path):
    folder = tmp_path / "job1"
    folder.mkdir()
    (folder / "job.json").write_text(json.dumps({"task": "smoke", "inputs": {"image": "in/t1n.nii.gz"}, "output_dir": "out"}))
    job = Job.load(folder / "job.json")
    assert job.inputs["image"] == folder / "in" / "t1n.nii.gz"
    assert job.output_dir == folder / "out"
    assert job.device == "auto" and job.params == {}
    again = Job.load(job.write(tmp_path / "copy.json"))
    assert again == job


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"task": "smoke", ', "is not valid JSON: Expecting property name enclosed in double quotes at line 1 column 19"),
        ("[1, 2]", "a job is a JSON object, got list"),
        ('{"output_dir": "o"}', "missing 'task'"),
        ('{"task": "smoke"}', "missing 'output_dir'"),
        ('{"task": 3, "output_dir": "o"}', "'task' must be a non-empty string"),
        ('{"task": "smoke", "output_dir": "o", "inputs": ["a"]}', "'inputs' must map names to file paths"),
        ('{"task": "smoke", "output_dir": "o", "params": 5}', "'params' must be an object"),
        ('{"task": "smoke", "output_dir": "o", "device": "tpu"}', "device must be one of auto, cpu, cuda, got 'tpu'"),
        ('{"task": "smoke", "output_dir": "o", "colour": "red"}', "unknown key(s) colour"),
    ],
)
def test_malformed_jobs(tmp_path, text, expected):
    path = tmp_path / "job.json"
    path.write_text(text)
    with pytest.raises(InputError) as exc:
        Job.load(path)
    assert expected in str(exc.value)
    assert "\n" not in str(exc.value)


def test_missing_job_file(tmp_path):
    with pytest.raises(InputError, match="job file not found"):
        Job.load(tmp_path / "nope.json")
