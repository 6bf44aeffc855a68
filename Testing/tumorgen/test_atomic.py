"""``tumorgen.atomic``: whole-or-absent files, folders and sets of outputs, and the one place that makes them."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from tumorgen import atomic
from tumorgen.atomic import check_output_folder, replace_dir, staged_file, staged_into, write_bytes, write_text
from tumorgen.errors import InputError

ENGINE = Path(atomic.__file__).resolve().parent


def _tree(root: Path) -> dict[str, bytes | None]:
    return {p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def test_write_text_and_bytes_replace_a_file_whole_with_the_umask(tmp_path):
    (tmp_path / "a.txt").write_text("old")
    assert write_text(tmp_path / "a.txt", "new\r\nline\n") == tmp_path / "a.txt"
    assert (tmp_path / "a.txt").read_bytes() == b"new\r\nline\n"  # line endings as given
    write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert _tree(tmp_path) == {"a.txt": b"new\r\nline\n", "b.bin": b"\x00\x01"}  # no temporary file left
    assert os.stat(tmp_path / "b.bin").st_mode & 0o777 == 0o666 & ~atomic._UMASK


def test_a_failed_staged_file_leaves_the_old_file(tmp_path):
    (tmp_path / "x.nii.gz").write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with staged_file(tmp_path / "x.nii.gz", suffix=".nii.gz") as tmp:
            assert tmp.parent == tmp_path and tmp.name.startswith(".x.partial-") and tmp.name.endswith(".nii.gz")
            tmp.write_bytes(b"half")
            raise RuntimeError("the writer failed")
    assert _tree(tmp_path) == {"x.nii.gz": b"old"}


def test_staged_into_publishes_files_and_replaces_folders_whole(tmp_path):
    out = tmp_path / "out"
    (out / "case").mkdir(parents=True)
    (out / "case" / "stale.nii.gz").write_bytes(b"from the last run")
    (out / "result.json").write_text("old")
    (out / "notes.txt").write_text("mine")
    with staged_into(out) as staging:
        assert staging.parent == out and staging.name.startswith(atomic.STAGING_PREFIX) and list(staging.iterdir()) == []
        (staging / "case").mkdir()
        (staging / "case" / "t1n.nii.gz").write_bytes(b"image")
        (staging / "result.json").write_text("new")
    assert _tree(out) == {"case": None, "case/t1n.nii.gz": b"image", "notes.txt": b"mine", "result.json": b"new"}


def test_staged_into_creates_the_folder_and_a_failure_removes_what_it_created(tmp_path):
    out = tmp_path / "a" / "b" / "out"
    with pytest.raises(KeyboardInterrupt):
        with staged_into(out) as staging:
            assert out.is_dir()
            (staging / "half.nii.gz").write_bytes(b"half")
            raise KeyboardInterrupt  # an interruption counts as a failure too
    assert list(tmp_path.iterdir()) == []
    with staged_into(out) as staging:
        (staging / "whole.nii.gz").write_bytes(b"whole")
    assert _tree(tmp_path) == {"a": None, "a/b": None, "a/b/out": None, "a/b/out/whole.nii.gz": b"whole"}


def test_a_failure_leaves_an_existing_folder_as_it_was(tmp_path):
    (tmp_path / "result.json").write_text("old")
    before = _tree(tmp_path)
    with pytest.raises(ValueError):
        with staged_into(tmp_path) as staging:
            (staging / "result.json").write_text("new")
            raise ValueError
    assert _tree(tmp_path) == before


def test_a_clash_of_file_and_folder_publishes_nothing(tmp_path):
    (tmp_path / "b.nii.gz").mkdir()
    with pytest.raises(InputError, match=r"cannot write .*b\.nii\.gz: a folder of that name is in the way"):
        with staged_into(tmp_path) as staging:
            (staging / "a.nii.gz").write_bytes(b"a")
            (staging / "b.nii.gz").write_bytes(b"b")
    assert _tree(tmp_path) == {"b.nii.gz": None}


def test_a_fixed_staging_name_replaces_a_stale_one(tmp_path):
    stale = tmp_path / ".tumorgen-staging-42"
    stale.mkdir()
    (stale / "left-by-a-killed-job").write_bytes(b"x")
    with staged_into(tmp_path, staging_name=stale.name) as staging:
        assert staging == stale and list(staging.iterdir()) == []
        (staging / "out.nii.gz").write_bytes(b"y")
    assert _tree(tmp_path) == {"out.nii.gz": b"y"}


def test_replace_dir_is_whole_or_absent(tmp_path):
    def write(version):
        def fill(folder: Path) -> None:
            (folder / "v.txt").write_text(version)
            if version == "broken":
                raise RuntimeError("failed half-way")

        return fill

    replace_dir(tmp_path / "cache" / "entry", write("1"))
    replace_dir(tmp_path / "cache" / "entry", write("2"))
    with pytest.raises(RuntimeError):
        replace_dir(tmp_path / "cache" / "entry", write("broken"))
    assert _tree(tmp_path) == {"cache": None, "cache/entry": None, "cache/entry/v.txt": b"2"}


def test_check_output_folder_creates_nothing(tmp_path):
    assert check_output_folder(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="output folder .* cannot be created: .*file is a file"):
        check_output_folder(tmp_path / "file" / "out")
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_output_folder(tmp_path / "file")
    assert _tree(tmp_path) == {"file": b"x"}


def test_the_engine_writes_atomically_only_through_tumorgen_atomic():
    """Temporary names and renames live in tumorgen/atomic.py; every other module uses its helpers."""
    primitives = {"replace", "rename", "mkstemp", "mkdtemp", "NamedTemporaryFile"}
    offenders = []
    for path in sorted(ENGINE.rglob("*.py")):
        if path.name == "atomic.py" and path.parent == ENGINE:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in primitives and isinstance(node.value, ast.Name) \
                    and node.value.id in ("os", "tempfile"):
                offenders.append(f"{path.relative_to(ENGINE)}:{node.lineno} {node.value.id}.{node.attr}")
    assert offenders == []
