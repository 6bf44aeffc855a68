"""Concentration edits keep an undo that holds only what each edit changed, within a depth and a memory budget."""

from __future__ import annotations

import numpy as np

from tumorgen_slicer.editing import UNDO_BUDGET_BYTES, UndoStack


def _blob(shape, centre, radius=3, value=0.5):
    field = np.zeros(shape, np.float32)
    i, j, k = np.ogrid[: shape[0], : shape[1], : shape[2]]
    field[(i - centre[0]) ** 2 + (j - centre[1]) ** 2 + (k - centre[2]) ** 2 <= radius**2] = value
    return field


def test_an_edit_records_only_the_box_it_changed_and_undo_restores_it_exactly():
    shape = (120, 140, 100)
    stack = UndoStack()
    history = [np.zeros(shape, np.float32)]
    for n in range(5):
        history.append(history[-1] + _blob(shape, (30 + 10 * n, 50, 40)))
        stack.push(history[-2], history[-1])
    full = history[0].nbytes
    # five 7-voxel-wide blobs: five 7x7x7 boxes of float32, not five copies of a 6.7 MB field
    assert stack.nbytes == 5 * 7**3 * 4 and stack.nbytes < full / 500
    field = history[-1].copy()
    for expected in reversed(history[:-1]):
        stack.pop_into(field)
        np.testing.assert_array_equal(field, expected)
    assert len(stack) == 0
    stack.push(field, field.copy())  # an edit that changed nothing leaves nothing to undo
    assert len(stack) == 0


def test_the_oldest_records_go_beyond_the_depth_or_the_memory_budget():
    shape = (40, 40, 40)
    deep = UndoStack(depth=20)
    field = np.zeros(shape, np.float32)
    for n in range(30):
        new = field.copy()
        new[n % 40, 0, 0] = n + 1
        deep.push(field, new)
        field = new
    assert len(deep) == 20

    whole = shape[0] * shape[1] * shape[2] * 4
    small = UndoStack(depth=20, budget_bytes=3 * whole)
    field = np.zeros(shape, np.float32)
    for n in range(10):  # each edit changes the whole field (as smoothing a large tumor does)
        new = field + 1
        small.push(field, new)
        field = new
    assert len(small) == 3 and small.nbytes == 3 * whole
    small.pop_into(field)
    assert (field == 9).all()
    # one edit larger than the whole budget cannot be undone rather than blow the budget
    tiny = UndoStack(budget_bytes=whole // 2)
    tiny.push(np.zeros(shape, np.float32), np.ones(shape, np.float32))
    assert len(tiny) == 0
    assert UNDO_BUDGET_BYTES == 256 * 2**20


def test_twenty_edits_of_the_sample_hold_megabytes_not_twenty_fields(presenter):
    assert presenter.new_concentration()
    grid_points = [(-20.0 + 3 * n, 10.0, 20.0) for n in range(20)]
    for point in grid_points:
        assert presenter.add_blob(point), presenter.state.error
    stack = presenter.editor.undo_stack
    field_bytes = presenter.concentration.GetImageData().GetNumberOfPoints() * 4
    assert len(stack) == presenter.state.undo_depth == 20
    assert stack.nbytes < 2 * field_bytes  # the old undo held 20 whole copies
    assert presenter.state.tumor_cm3 is not None and presenter.state.tumor_cm3 > 0
