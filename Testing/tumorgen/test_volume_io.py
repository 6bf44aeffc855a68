"""Reading and writing volumes: geometry round trips and every kind of bad file."""

from __future__ import annotations

import gzip
import hashlib
import os

import numpy as np
import pytest
import SimpleITK as sitk

from tumorgen_testing import assert_same_geometry
from tumorgen.errors import InputError
from tumorgen.volume import Volume
from tumorgen.volume_io import check_writable_dir, read_mask, read_volume, write_volume


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd"])
def test_round_trip_keeps_oblique_geometry_and_data(tmp_path, oblique_volume, suffix):
    path = write_volume(oblique_volume, tmp_path / f"img{suffix}")
    back = read_volume(path)
    assert_same_geometry(back.grid, oblique_volume.grid)
    assert back.grid.spacing != (1.0, 1.0, 1.0)
    np.testing.assert_array_equal(back.array, oblique_volume.array)
    assert back.dtype == np.float32


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd"])
def test_output_written_on_the_input_grid_reads_back_with_that_grid(tmp_path, oblique_volume, suffix):
    source = read_volume(write_volume(oblique_volume, tmp_path / f"in{suffix}"))
    result = source.with_array((source.array > 100).astype(np.uint8))
    again = read_volume(write_volume(result, tmp_path / f"out{suffix}"))
    assert_same_geometry(again.grid, source.grid)
    np.testing.assert_array_equal(again.array, result.array)


def test_dtype_conversion_on_write(tmp_path, oblique_volume):
    back = read_volume(write_volume(oblique_volume, tmp_path / "x.nii.gz", dtype=np.int16))
    assert back.dtype == np.int16


def test_writing_leaves_no_temporary_files_and_never_touches_the_input(tmp_path, oblique_volume):
    src = write_volume(oblique_volume, tmp_path / "in.nii.gz")
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    volume = read_volume(src)
    write_volume(volume.with_array(volume.array * 2), tmp_path / "out.nii.gz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.nii.gz", "out.nii.gz"]
    assert hashlib.sha256(src.read_bytes()).hexdigest() == digest


def test_a_failed_write_leaves_nothing_behind(tmp_path, oblique_volume, monkeypatch):
    def broken_writer(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(sitk, "WriteImage", broken_writer)
    with pytest.raises(RuntimeError, match="disk full"):
        write_volume(oblique_volume, tmp_path / "out.nii.gz")
    assert list(tmp_path.iterdir()) == []


# -- bad input ---------------------------------------------------------------


def _one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    return message


def test_missing_file(tmp_path):
    with pytest.raises(InputError) as exc:
        read_volume(tmp_path / "nope.nii.gz")
    assert "not found" in _one_line(exc) and "nope.nii.gz" in str(exc.value)


@pytest.mark.parametrize(
    "name, payload",
    [
        ("garbage.nii.gz", b"this is not an image at all" * 10),
        ("garbage.nii", b"\x00" * 10),
        ("truncated.nii.gz", None),
    ],
)
def test_unreadable_or_corrupt_file(tmp_path, oblique_volume, name, payload):
    path = tmp_path / name
    if payload is None:  # a valid header whose voxel data stops half-way
        full = gzip.decompress(write_volume(oblique_volume, tmp_path / "ok.nii.gz").read_bytes())
        path.write_bytes(gzip.compress(full[: len(full) // 2]))
    else:
        path.write_bytes(payload)
    with pytest.raises(InputError) as exc:
        read_volume(path)
    assert _one_line(exc).startswith("cannot read image") and name in str(exc.value)


def test_unsupported_extension(tmp_path):
    path = tmp_path / "scan.png"
    path.write_bytes(b"png")
    with pytest.raises(InputError, match="unsupported volume format"):
        read_volume(path)


def test_2d_image_is_rejected(tmp_path):
    path = tmp_path / "slice.nii.gz"
    sitk.WriteImage(sitk.Image(8, 8, sitk.sitkFloat32), str(path))
    with pytest.raises(InputError) as exc:
        read_volume(path)
    assert "2D" in _one_line(exc) and "expected a 3D volume" in str(exc.value)


def test_4d_image_is_rejected(tmp_path):
    path = tmp_path / "series.nii.gz"
    sitk.WriteImage(sitk.Image([6, 6, 6, 3], sitk.sitkFloat32), str(path))
    with pytest.raises(InputError) as exc:
        read_volume(path)
    assert "4D" in _one_line(exc)


def test_vector_image_is_rejected(tmp_path):
    path = tmp_path / "rgb.nrrd"
    sitk.WriteImage(sitk.Image([6, 6, 6], sitk.sitkVectorFloat32, 3), str(path))
    with pytest.raises(InputError, match="3 values per voxel"):
        read_volume(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_voxels_are_rejected(tmp_path, oblique_volume, bad):
    array = oblique_volume.array.copy()
    array[1, 2, 3] = bad
    array[4, 5, 6] = bad
    path = write_volume(oblique_volume.with_array(array), tmp_path / "nan.nii.gz")
    with pytest.raises(InputError) as exc:
        read_volume(path)
    assert "2 NaN or Inf voxels" in _one_line(exc)
    read_volume(path, allow_non_finite=True)  # accepted when asked (ITK's NIfTI reader maps them to 0)
    nrrd = write_volume(oblique_volume.with_array(array), tmp_path / "nan.nrrd")
    with pytest.raises(InputError, match="2 NaN or Inf voxels"):
        read_volume(nrrd)
    assert not np.isfinite(read_volume(nrrd, allow_non_finite=True).array[1, 2, 3])


def test_mask_is_read_as_boolean(tmp_path, oblique_volume):
    array = np.zeros(oblique_volume.shape, np.uint8)
    array[2:5, 3:6, 4:7] = 1
    path = write_volume(oblique_volume.with_array(array), tmp_path / "mask.nii.gz")
    mask = read_mask(path, reference=oblique_volume)
    assert mask.dtype == bool and int(mask.array.sum()) == 27


def test_empty_mask(tmp_path, oblique_volume):
    path = write_volume(oblique_volume.with_array(np.zeros(oblique_volume.shape, np.uint8)), tmp_path / "m.nii.gz")
    with pytest.raises(InputError) as exc:
        read_mask(path)
    assert "is empty" in _one_line(exc)


def test_non_binary_mask(tmp_path, oblique_volume):
    array = np.zeros(oblique_volume.shape, np.uint8)
    array[0, 0, 0], array[1, 1, 1] = 1, 2
    path = write_volume(oblique_volume.with_array(array), tmp_path / "labels.nii.gz")
    with pytest.raises(InputError) as exc:
        read_mask(path)
    assert "not binary" in _one_line(exc) and "0, 1, 2" in str(exc.value)


def test_mask_with_another_geometry(tmp_path, oblique_volume):
    from tumorgen.volume import Grid

    grid = oblique_volume.grid
    shifted = Grid(grid.size, grid.spacing, (grid.origin[0] + 5.0, grid.origin[1], grid.origin[2]), grid.direction)
    array = np.ones(grid.size, np.uint8)
    path = write_volume(Volume(array, shifted), tmp_path / "mask.nii.gz")
    with pytest.raises(InputError) as exc:
        read_mask(path, reference=oblique_volume, reference_name="t1n")
    message = _one_line(exc)
    assert "t1n and mask" in message and "different geometry" in message and "origin" in message


def test_output_folder_that_cannot_be_created(tmp_path, oblique_volume):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(InputError) as exc:
        write_volume(oblique_volume, blocker / "out" / "x.nii.gz")
    assert "cannot be created" in _one_line(exc)
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_writable_dir(blocker)


def test_output_folder_that_refuses_new_files(tmp_path, oblique_volume, monkeypatch):
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    with pytest.raises(InputError) as exc:
        write_volume(oblique_volume, tmp_path / "x.nii.gz")
    assert _one_line(exc) == f"output folder {tmp_path} is not writable: Permission denied"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_output_folder(tmp_path, oblique_volume):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(InputError, match="is not writable"):
            write_volume(oblique_volume, folder / "x.nii.gz")
    finally:
        folder.chmod(0o700)
