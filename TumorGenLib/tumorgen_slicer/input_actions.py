"""The Inputs panel's actions: choose input volumes, load checked files, load the sample."""

from __future__ import annotations

from pathlib import Path

from tumorgen_slicer import checks
from tumorgen_slicer.nodes import add_volume, grid_of, jump_slices, show_in_slices
from tumorgen_slicer.presenter_core import PresenterCore
from tumorgen_slicer.result_view import labels_centre
from tumorgen_slicer.runs import Run, RunSpec


class InputActions(PresenterCore):
    """The Inputs panel's actions: choose input volumes, load checked files, load the sample."""

    def set_input(self, role: str, node) -> bool:
        """Use ``node`` (or its ID; None clears) as the input of ``role``: a scalar volume, or for ``seg`` a label map or a
        segmentation node (its segments, named as in :mod:`~tumorgen_slicer.segmentations`, go to a run as labels on the
        t1n's grid; their names are checked when a run starts, so they can still be renamed after choosing it)."""
        def act():
            found = self.ctx.node(node)
            checks.check_input_node(role, found)
            if found is None:
                self.state.inputs.pop(role, None)
                return
            self.state.inputs[role] = found.GetID()
            self._show_input(role, found)
        return self._action(act)

    def _show_input(self, role: str, node) -> None:
        """The t1n as the slice views' background; a label map or segmentation (``seg``) over it, every slice view centred
        on its labels (as on a run's result), so that they go through it rather than graze it."""
        if role == "t1n":
            show_in_slices(self.ctx, background=node)
        elif role in checks.LABEL_ROLES:
            if node.IsA("vtkMRMLLabelMapVolumeNode"):
                show_in_slices(self.ctx, label=node)
            centre = labels_centre(node)
            if centre is not None:
                jump_slices(self.ctx, centre)

    def load_volume_file(self, path: str | Path, role: str = "t1n", *, name: str | None = None,
                         max_bytes: int = checks.MAX_UPLOAD_BYTES) -> bool:
        """Check a volume file (type, size, readable 3D image, the t1n's geometry for other roles) and load it as an input."""
        def act():
            label = name or Path(path).name
            t1n = self.input_node("t1n")
            volume = checks.read_volume_file(path, role, label=label, max_bytes=max_bytes,
                                             reference=grid_of(t1n) if t1n is not None else None)
            node = add_volume(self.ctx, volume, checks.stem(label), labelmap=role in checks.LABEL_ROLES)
            self.state.inputs[role] = node.GetID()
            self._show_input(role, node)
            self.state.log.append(f"loaded {label} as {role}: {volume.grid.size} voxels of {volume.grid.spacing} mm")
        return self._action(act)

    def refuse_upload(self, name: str, size: int, max_bytes: int = checks.MAX_UPLOAD_BYTES) -> bool:
        """A front end that knows a file's size before sending it reports an oversized one here (returns False then)."""
        return self._action(lambda: checks.check_size(name, size, max_bytes))

    def load_sample(self, spacing_mm: float = 1.0) -> bool:
        """Simulate the bundled sample (a healthy MNI152 subject) and use it as the inputs, with its tissue maps."""
        spec = RunSpec("simulate", "Sample", params={"spacing_mm": float(spacing_mm), "tumor": False},
                       load=(*checks.IMAGE_ROLES, *(f"tissue-{k}" for k in checks.TISSUE_ROLES)))

        def loaded(run: Run) -> None:
            for key, node in run.nodes.items():
                node.SetName(f"Sample {key}")
                self.state.inputs[key.replace("tissue-", "")] = node.GetID()
            show_in_slices(self.ctx, background=self.input_node("t1n"))

        return self._start(spec, loaded, keep_results=True)

