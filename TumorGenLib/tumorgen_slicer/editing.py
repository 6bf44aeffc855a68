"""Editing the tumor concentration node: one engine operation per edit, and an undo bounded in memory.

Each edit reads the node into an engine volume, applies one pure engine
function (:mod:`tumorgen.biophysics.edit`) and writes the result back into the
node, which TumorGen owns. Undo keeps, per edit, only the box of voxels the edit
changed (a blob or a box edit touches a few cm³, not the whole head) and drops
the oldest records beyond a depth or a memory budget, so twenty edits of a
1 mm field cost megabytes rather than twenty full copies.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Callable

import numpy as np

from tumorgen.errors import InputError
from tumorgen.volume import Volume
from tumorgen_slicer import concentration as fields
from tumorgen_slicer.nodes import set_volume, volume_of

UNDO_DEPTH = 20
#: The most memory undo records may hold together.
UNDO_BUDGET_BYTES = 256 * 2**20


@dataclass(frozen=True)
class UndoRecord:
    """The voxels at ``box`` as they were before one edit."""

    box: tuple[slice, slice, slice]
    values: np.ndarray

    @property
    def nbytes(self) -> int:
        return int(self.values.nbytes)


class UndoStack:
    """Undo records of the changed region of each edit, at most ``depth`` of them within ``budget_bytes``."""

    def __init__(self, depth: int = UNDO_DEPTH, budget_bytes: int = UNDO_BUDGET_BYTES) -> None:
        self.depth = depth
        self.budget_bytes = budget_bytes
        self._records: deque[UndoRecord] = deque()

    def __len__(self) -> int:
        return len(self._records)

    @property
    def nbytes(self) -> int:
        return sum(r.nbytes for r in self._records)

    def push(self, before: np.ndarray, after: np.ndarray) -> None:
        """Record what an edit from ``before`` to ``after`` changed (nothing when it changed nothing)."""
        changed = np.argwhere(before != after)
        if changed.size == 0:
            return
        low, high = changed.min(0), changed.max(0) + 1
        box = tuple(slice(int(lo), int(hi)) for lo, hi in zip(low, high))
        record = UndoRecord(box, np.array(before[box], copy=True))
        self._records.append(record)
        while len(self._records) > self.depth or (len(self._records) > 1 and self.nbytes > self.budget_bytes):
            self._records.popleft()
        if self.nbytes > self.budget_bytes:  # one edit larger than the whole budget cannot be undone
            self._records.clear()

    def pop_into(self, array: np.ndarray) -> None:
        """Undo the last edit in ``array`` (in place)."""
        record = self._records.pop()
        array[record.box] = record.values

    def clear(self) -> None:
        self._records.clear()


class ConcentrationEditor:
    """The concentration node being edited, its edits and their undo."""

    def __init__(self, ctx, undo: UndoStack | None = None) -> None:
        self.ctx = ctx
        self.node_id = ""
        self.undo_stack = undo or UndoStack()
        self._volume_cache: tuple[tuple[str, int, float], float] | None = None

    @property
    def node(self):
        return self.ctx.node(self.node_id)

    def take(self, node) -> None:
        """Edit ``node`` from now on (its undo history starts empty) and show it."""
        self.node_id = node.GetID() if node is not None else ""
        self.undo_stack.clear()
        if node is not None:
            fields.show_concentration(self.ctx, node)

    def apply(self, operation: Callable[[Volume], Volume]) -> None:
        """Apply an engine operation to the field and record it for undo."""
        node = self.node
        if node is None:
            raise InputError("no tumor concentration: grow one or start an empty one")
        before = volume_of(node)
        after = operation(before)
        if not after.grid.matches(before.grid):
            raise InputError("an edit changed the concentration's grid")
        after = after.with_array(np.asarray(after.array, dtype=np.float32))
        set_volume(node, after)
        fields.update_outlines(self.ctx, node, after)
        self.undo_stack.push(np.asarray(before.array, dtype=np.float32), after.array)

    def undo(self) -> None:
        node = self.node
        if node is None or not len(self.undo_stack):
            raise InputError("nothing to undo")
        field = volume_of(node)
        array = np.asarray(field.array, dtype=np.float32)
        self.undo_stack.pop_into(array)
        restored = field.with_array(array)
        set_volume(node, restored)
        fields.update_outlines(self.ctx, node, restored)

    def tumor_volume_cm3(self, threshold: float) -> float | None:
        """The tumor's volume (c ≥ ``threshold``), recomputed only when the field changed (it reads the whole field)."""
        node = self.node
        if node is None or node.GetImageData() is None:
            return None
        key = (node.GetID(), node.GetImageData().GetMTime(), threshold)
        if self._volume_cache is None or self._volume_cache[0] != key:
            self._volume_cache = (key, fields.tumor_volume_cm3(node, threshold))
        return self._volume_cache[1]
