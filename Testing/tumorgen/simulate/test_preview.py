"""PNG montage previews: a valid PNG, the right layout, radiological orientation, true aspect."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tumorgen import atomic
from tumorgen.errors import InputError
from tumorgen.simulate import preview
from tumorgen.simulate.preview import LABEL_ALPHA, LABEL_COLOURS, SEPARATOR_PX, montage, write_png, write_preview
from tumorgen.volume import Grid, Volume

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_png(path) -> tuple[dict, np.ndarray]:
    """Decode a PNG with Pillow: (its format and mode, the pixel array)."""
    assert Path(path).read_bytes()[:8] == SIGNATURE
    with Image.open(path) as image:
        image.load()
        return {"format": image.format, "mode": image.mode, "width": image.width, "height": image.height}, np.asarray(image)


def tile(m: np.ndarray, row: int, col: int, size_px: int) -> np.ndarray:
    step = size_px + SEPARATOR_PX
    return m[row * step : row * step + size_px, col * step : col * step + size_px]


def is_grey(a: np.ndarray) -> np.ndarray:
    return (a[..., 0] == a[..., 1]) & (a[..., 1] == a[..., 2])


def bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(mask)
    return rows.min(), rows.max(), cols.min(), cols.max()


def ball(grid: Grid, centre_lps, radius_mm) -> np.ndarray:
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in grid.size], indexing="ij"), axis=-1).reshape(-1, 3)
    lps = ijk @ (grid.direction_matrix @ np.diag(grid.spacing)).T + np.asarray(grid.origin)
    return (np.linalg.norm(lps - np.asarray(centre_lps), axis=1) <= radius_mm).reshape(grid.size)


# -- PNG ----------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(7, 11, 3), (5, 9)])
def test_png_round_trip(tmp_path, shape):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    out = write_png(image, tmp_path / "x.png")
    assert out == tmp_path / "x.png"
    header, pixels = read_png(out)
    assert (header["height"], header["width"]) == shape[:2]
    assert header["format"] == "PNG" and header["mode"] == ("RGB" if len(shape) == 3 else "L")  # 8 bits per channel
    np.testing.assert_array_equal(pixels, image)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]


def test_png_is_written_by_pillow_not_by_hand():
    """The preview module leaves PNG encoding to Pillow (pinned), and the engine declares Pillow."""
    tree = ast.parse(Path(preview.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "PIL" in imported and not imported & {"zlib", "struct"}
    assert not hasattr(preview, "encode_png")
    from importlib.metadata import requires

    assert "pillow>=10" in requires("tumorgen")


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((4, 4, 3), dtype=np.float32), "uint8"),
        (np.zeros((4, 4, 4), dtype=np.uint8), "shape"),
        (np.zeros((4,), dtype=np.uint8), "shape"),
        (np.zeros((0, 4, 3), dtype=np.uint8), "empty"),
    ],
)
def test_png_rejects_bad_arrays(tmp_path, bad, match):
    with pytest.raises(ValueError, match=match):
        write_png(bad, tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_png_to_a_missing_folder_is_a_clear_error(tmp_path):
    target = tmp_path / "missing" / "x.png"
    with pytest.raises(InputError, match="does not exist"):
        write_png(np.zeros((2, 2, 3), np.uint8), target)
    assert list(tmp_path.iterdir()) == []


def test_failed_png_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    (tmp_path / "x.png").write_bytes(b"old")

    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", fail)
    with pytest.raises(InputError, match="No space left"):
        write_png(np.zeros((2, 2, 3), np.uint8), tmp_path / "x.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]
    assert (tmp_path / "x.png").read_bytes() == b"old"  # the old file is untouched


# -- layout and colours --------------------------------------------------------
def _phantom(grid: Grid, seed=0) -> Volume:
    rng = np.random.default_rng(seed)
    return Volume(rng.uniform(10.0, 100.0, grid.size).astype(np.float32), grid)


@pytest.mark.parametrize("with_labels", [False, True])
def test_montage_shape(with_labels):
    grid = Grid(size=(20, 16, 12), spacing=(1.0, 1.2, 2.0))
    images = {"t1": _phantom(grid, 0), "t2": _phantom(grid, 1)}
    labels = Volume(np.zeros(grid.size, np.uint8), grid) if with_labels else None
    size_px = 40
    m = montage(images, labels, size_px=size_px)
    n_cols = 2 + with_labels
    assert m.dtype == np.uint8
    assert m.shape == (3 * size_px + 2 * SEPARATOR_PX, n_cols * size_px + (n_cols - 1) * SEPARATOR_PX, 3)


def test_overlay_is_coloured_where_labels_are_and_images_are_grey():
    size_px = 48
    grid = Grid(size=(24, 24, 24))
    image = _phantom(grid)
    lab = np.zeros(grid.size, np.uint8)
    lab[4:10, 4:20, 4:20] = 1
    lab[10:16, 4:20, 4:20] = 2
    lab[16:20, 4:20, 4:20] = 3
    lab[20:22, 4:20, 4:20] = 4
    labels = Volume(lab, grid)
    m = montage({"t1": image, "t2": _phantom(grid, 5)}, labels, size_px=size_px)
    overlay_start = 2 * (size_px + SEPARATOR_PX)
    assert np.all(is_grey(m[:, : overlay_start - SEPARATOR_PX]))  # image columns and separators are grey
    for row in range(3):
        grey = tile(m, row, 0, size_px)
        over = tile(m, row, 2, size_px)
        coloured = ~is_grey(over)
        assert coloured.sum() > 0.1 * coloured.size
        # outside the labels the overlay column is the first image unchanged
        np.testing.assert_array_equal(over[~coloured], grey[~coloured])
        # inside, each pixel is the label colour blended over the grey image
        for value, colour in LABEL_COLOURS.items():
            expected = np.rint((1 - LABEL_ALPHA) * grey[..., :1] + LABEL_ALPHA * np.asarray(colour, float)).astype(np.uint8)
            hit = np.all(over == expected, axis=-1) & coloured
            if row == 0:  # the axial plane through the centroid (k=12) shows labels 1-4 along i
                assert hit.any(), (row, value)
    # the axial plane: labels run along i (L-R, columns); a 16-voxel square in j (rows), k-slice crosses it
    over = tile(m, 0, 2, size_px)
    r0, r1, c0, c1 = bbox(~is_grey(over))
    assert (r1 - r0 + 1, c1 - c0 + 1) == (32, 36)  # 2 px per voxel: j 4..19 → 32 rows, i 4..21 → 36 columns


def test_grid_mismatch_is_a_value_error():
    a = Volume(np.ones((8, 8, 8), np.float32), Grid(size=(8, 8, 8)))
    b = Volume(np.ones((8, 8, 8), np.float32), Grid(size=(8, 8, 8), spacing=(1.0, 1.0, 2.0)))
    with pytest.raises(ValueError, match=r"'t1' and image 't2'.*spacing"):
        montage({"t1": a, "t2": b})
    labels = Volume(np.zeros((8, 8, 9), np.uint8))
    with pytest.raises(ValueError, match=r"labels.*size"):
        montage({"t1": a}, labels)
    with pytest.raises(ValueError, match="at least one image"):
        montage({})
    with pytest.raises(ValueError, match="outside"):
        montage({"t1": a}, centre_voxel=(0, 0, 8))


def test_constant_and_empty_images_do_not_fail():
    grid = Grid(size=(6, 6, 6))
    m = montage({"zero": Volume(np.zeros(grid.size), grid), "five": Volume(np.full(grid.size, 5.0), grid)}, size_px=12)
    assert np.all(tile(m, 0, 0, 12) == 0)
    assert np.all(tile(m, 0, 1, 12) == 255)


# -- orientation -----------------------------------------------------------------
def _octant_case(direction):
    """A bright ball in the anterior-superior-left octant of a 40 mm cube centred on the origin."""
    grid = Grid(size=(40, 40, 40), direction=direction)
    # place the origin so that the volume is centred on (0, 0, 0) whatever the direction
    grid = Grid(size=grid.size, direction=direction, origin=tuple(-grid.direction_matrix @ np.full(3, 19.5)))
    centre_lps = (10.5, -9.5, 10.5)  # left, anterior, superior; on a voxel centre
    image = Volume(np.where(ball(grid, centre_lps, 5.0), 100.0, 1.0).astype(np.float32), grid)
    centre_voxel = np.rint(grid.lps_to_index(centre_lps)).astype(int)
    return image, tuple(centre_voxel)


@pytest.mark.parametrize(
    "direction",
    [
        (1, 0, 0, 0, 1, 0, 0, 0, 1),  # LPS
        (-1, 0, 0, 0, -1, 0, 0, 0, 1),  # RAS-stored
        (0, 0, 1, 1, 0, 0, 0, -1, 0),  # axes permuted: i → P, j → I, k → L
    ],
)
def test_radiological_orientation(direction):
    size_px = 40
    image, centre = _octant_case(direction)
    m = montage({"t1": image}, centre_voxel=centre, size_px=size_px)
    half = size_px // 2
    for row, plane in enumerate(("axial", "coronal", "sagittal")):
        bright = tile(m, row, 0, size_px)[..., 0] > 128
        assert bright.any(), plane
        top, bottom, left, right = bright[:half].sum(), bright[half:].sum(), bright[:, :half].sum(), bright[:, half:].sum()
        assert top > 0 and bottom == 0, plane  # axial: anterior up; coronal, sagittal: superior up
        if plane == "sagittal":
            assert left > 0 and right == 0  # anterior on the left
        else:
            assert right > 0 and left == 0  # radiological: the patient's left on the image's right


def test_patient_axes():
    assert preview.patient_axes((1, 0, 0, 0, 1, 0, 0, 0, 1)) == ((0, 1, 2), (1, 1, 1))
    assert preview.patient_axes((-1, 0, 0, 0, -1, 0, 0, 0, 1)) == ((0, 1, 2), (-1, -1, 1))
    # columns: i → +y (P), j → −z (I), k → +x (L)
    assert preview.patient_axes((0, 0, 1, 1, 0, 0, 0, -1, 0)) == ((2, 0, 1), (1, 1, -1))


def test_default_centre_is_the_label_centroid():
    size_px = 40
    image, centre = _octant_case((1, 0, 0, 0, 1, 0, 0, 0, 1))
    labels = Volume((image.array > 50).astype(np.uint8), image.grid)
    assert np.array_equal(montage({"t1": image}, labels, size_px=size_px), montage({"t1": image}, labels, centre_voxel=centre, size_px=size_px))
    # without labels the planes go through the volume centre and miss the ball
    m = montage({"t1": image}, size_px=size_px)
    assert np.all(m[..., 0] <= 128)


# -- physical aspect ---------------------------------------------------------------
@pytest.mark.parametrize("spacing", [(1.0, 1.0, 3.0), (3.0, 1.0, 1.0), (1.0, 2.0, 0.5)])
def test_anisotropic_voxels_keep_a_sphere_round(spacing):
    size_px = 96
    extent = 48.0
    size = tuple(int(extent / s) for s in spacing)
    grid = Grid(size=size, spacing=spacing)
    centre_lps = grid.index_to_lps((np.asarray(size) - 1) / 2)
    image = Volume(np.where(ball(grid, centre_lps, 15.0), 100.0, 10.0).astype(np.float32), grid)
    m = montage({"t1": image}, size_px=size_px)
    for row in range(3):
        bright = tile(m, row, 0, size_px)[..., 0] > 128  # half way between background and ball
        r0, r1, c0, c1 = bbox(bright)
        height, width = r1 - r0 + 1, c1 - c0 + 1
        assert abs(width - height) <= 0.1 * max(width, height), (row, width, height)
        assert 50 <= width <= 66  # 30 mm at 2 px/mm (48 mm over 96 px)


def test_write_preview(tmp_path):
    grid = Grid(size=(10, 12, 8), spacing=(1.0, 1.0, 1.5))
    lab = np.zeros(grid.size, np.uint8)
    lab[3:6, 4:8, 2:5] = 2
    out = write_preview({"t1": _phantom(grid)}, Volume(lab, grid), tmp_path / "p.png", size_px=32)
    header, pixels = read_png(out)
    assert header["mode"] == "RGB"
    np.testing.assert_array_equal(pixels, montage({"t1": _phantom(grid)}, Volume(lab, grid), size_px=32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png"]
    assert os.stat(out).st_mode & 0o777 == 0o666 & ~atomic._UMASK  # the umask, not mkstemp's 0600
