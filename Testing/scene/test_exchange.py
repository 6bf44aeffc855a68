"""The raw NRRD files a run exchanges with the backend: written from a node, read into one, exact both ways.

Checked against SimpleITK (ITK's NRRD reader and writer, which the backend uses) on an oblique, anisotropic grid.
"""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from tumorgen.errors import InputError
from tumorgen.volume import Grid, Volume
from tumorgen.volume_io import read_volume, write_volume
from tumorgen_slicer import exchange
from tumorgen_slicer.nodes import add_volume, array_of, grid_of
from tumorgen_testing import assert_same_geometry

_C, _S = np.cos(0.3), np.sin(0.3)
OBLIQUE = Grid(size=(7, 5, 4), spacing=(0.9, 1.3, 2.5), origin=(12.5, -40.0, 7.25),
               direction=(_C, -_S, 0.0, _S, _C, 0.0, 0.0, 0.0, 1.0))


def _volume(dtype) -> Volume:
    values = np.arange(np.prod(OBLIQUE.size), dtype=np.float64).reshape(OBLIQUE.size)
    return Volume((values * (0.37 if np.dtype(dtype).kind == "f" else 1) % 251).astype(dtype), OBLIQUE)


@pytest.mark.parametrize("dtype", [np.float32, np.int16, np.uint8])
def test_a_node_written_here_reads_back_in_simpleitk_exactly(ctx, tmp_path, dtype):
    volume = _volume(dtype)
    node = add_volume(ctx, volume, "scan", labelmap=dtype == np.uint8)
    path = exchange.write_node(node, tmp_path / "scan.nrrd")
    assert b"encoding: raw" in path.read_bytes()[:400] and not list(tmp_path.glob(".*"))
    back = read_volume(path, role="image")
    assert_same_geometry(back.grid, OBLIQUE)
    assert np.array_equal(back.array, volume.array) and back.array.dtype == np.dtype(dtype)


def test_an_engine_volume_written_here_reads_back_exactly(tmp_path):
    volume = _volume(np.float32)
    back = read_volume(exchange.write_volume(volume, tmp_path / "v.nrrd"), role="image")
    assert_same_geometry(back.grid, OBLIQUE) and np.array_equal(back.array, volume.array)


@pytest.mark.parametrize("dtype,labelmap", [(np.float32, False), (np.uint8, True), (np.int16, False)])
def test_what_the_backend_writes_loads_into_a_node_exactly(ctx, tmp_path, dtype, labelmap):
    volume = _volume(dtype)
    path = write_volume(volume, tmp_path / "out.nrrd")  # ITK's writer, as the backend's outputs ("unsigned char", ...)
    node = exchange.load_node(ctx, path, "out", labelmap=labelmap)
    assert node.IsA("vtkMRMLLabelMapVolumeNode") == labelmap
    assert_same_geometry(grid_of(node), OBLIQUE)
    assert np.array_equal(array_of(node), volume.array)
    if not labelmap:  # the window from a sample, set once: no pass over every voxel later
        display = node.GetDisplayNode()
        assert not display.GetAutoWindowLevel() and display.GetWindow() > 0


def test_other_volume_files_load_through_slicers_reader(ctx, tmp_path):
    volume = _volume(np.float32)
    node = exchange.load_node(ctx, write_volume(volume, tmp_path / "out.nii.gz"), "out")
    assert np.allclose(array_of(node), volume.array)


def test_a_file_that_is_not_raw_nrrd_is_refused_in_one_line(ctx, tmp_path):
    volume = _volume(np.float32)
    path = exchange.write_volume(volume, tmp_path / "v.nrrd")
    header, _, data = path.read_bytes().partition(b"\n\n")
    packed = tmp_path / "gz.nrrd"
    packed.write_bytes(header.replace(b"encoding: raw", b"encoding: gzip") + b"\n\n" + gzip.compress(data))
    with pytest.raises(InputError, match=r"gz.nrrd: not a raw 3-D NRRD volume") as err:
        exchange.load_node(ctx, packed, "gz")
    assert "\n" not in str(err.value)
    short = tmp_path / "short.nrrd"
    short.write_bytes(header + b"\n\n" + data[:100])
    with pytest.raises(InputError, match=r"short.nrrd: holds 25 of its 140 voxels"):
        exchange.read_raw_nrrd(short)
    assert ctx.scene.GetFirstNodeByName("gz") is None


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    with pytest.raises(InputError, match="cannot exchange a 2-D"):
        exchange.write_raw_nrrd(tmp_path / "flat.nrrd", np.zeros((3, 3), np.float32), np.eye(4))
    assert list(tmp_path.iterdir()) == []
