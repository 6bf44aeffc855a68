"""The tumor concentration: grow it from the seed, take an existing one, edit it by hand, undo."""

from __future__ import annotations

from tumorgen.errors import InputError
from tumorgen.settings import GROWTH
from tumorgen_slicer import checks
from tumorgen_slicer.nodes import show_in_slices
from tumorgen_slicer.presenter_core import TUMOR_THRESHOLD, PresenterCore
from tumorgen_slicer.result_view import centre_of
from tumorgen_slicer.runs import Run, RunSpec


class TumorActions(PresenterCore):
    """The tumor concentration: grow it from the seed, take an existing one, edit it by hand, undo."""

    def set_concentration(self, node) -> bool:
        """Use an existing scalar volume (or its ID; None clears) as the tumor concentration to edit."""
        def act():
            found = self._node_of(node, "vtkMRMLScalarVolumeNode", "a scalar volume", not_class="vtkMRMLLabelMapVolumeNode")
            if self._id(found) != self.editor.node_id:
                self._take_concentration(found)
        return self._action(act)

    def new_concentration(self) -> bool:
        """An empty concentration field on the t1n's grid, to paint by hand."""
        from tumorgen_slicer.concentration import new_concentration

        return self._action(lambda: self._take_concentration(new_concentration(self.ctx, self._reference())))

    def _take_concentration(self, node) -> None:
        from tumorgen_slicer.concentration import outlines_node

        self.editor.take(node)
        if node is not None:
            show_in_slices(self.ctx, background=self.input_node("t1n"), foreground=node, label=outlines_node(self.ctx, node),
                           foreground_opacity=0.6)

    def grow(self) -> bool:
        """Grow a tumor from the seed with the engine's Fisher–Kolmogorov solver (a backend job)."""
        try:
            self.runs.check_idle()
            reference = self._reference()
            seed = self.seed()
            if seed is None:
                raise InputError("place a tumor seed first (click in a view)")
        except InputError as exc:
            return self._fail(str(exc))
        tissues = {k: self.input_node(k) for k in checks.TISSUE_ROLES}
        spec = RunSpec("grow", self._run_name("Growth"), inputs=tissues if all(tissues.values()) else {"t1n": reference},
                       params={"seed_ras": list(seed), **self.settings.params(GROWTH)}, labelmaps=frozenset({"labels"}),
                       segmentations=frozenset({"labels"}), load=("concentration", "labels"))
        return self._start(spec, self._grown)

    def _grown(self, run: Run) -> None:
        self._take_concentration(run.nodes["concentration"])
        self._show_in_views(centre_of(run.nodes["concentration"], TUMOR_THRESHOLD) or self.seed(), run.segmentations.values())
        volume = self.editor.tumor_volume_cm3(TUMOR_THRESHOLD)
        if volume is not None:
            run.summary = f"tumor {volume:.1f} cm³ (c ≥ {TUMOR_THRESHOLD:g})"

    def _edit(self, operation) -> bool:
        return self._action(lambda: self.editor.apply(operation))

    def add_blob(self, ras=None) -> bool:
        """Add a Gaussian blob of concentration at ``ras`` (default: the seed)."""
        return self._blob(ras, erase=False)

    def erase_blob(self, ras=None) -> bool:
        """Remove a Gaussian blob of concentration at ``ras`` (default: the seed)."""
        return self._blob(ras, erase=True)

    def _blob(self, ras, erase: bool) -> bool:
        from tumorgen.biophysics.edit import add_blob

        point = ras if ras is not None else self.seed()
        if point is None:
            return self._fail("place a point first: blobs go where the seed is")
        sigma, amplitude = self.settings["blob_sigma_mm"], self.settings["blob_amplitude"]
        return self._edit(lambda f: add_blob(f, ras=point, sigma_mm=sigma, amplitude=amplitude, erase=erase))

    def scale_in_box(self) -> bool:
        from tumorgen.biophysics.edit import scale_region

        return self._edit(lambda f: scale_region(f, self._box_on(self.concentration), self.settings["scale_factor"]))

    def zero_in_box(self) -> bool:
        """Resect: set the concentration to 0 inside the box."""
        from tumorgen.biophysics.edit import zero_box

        return self._edit(lambda f: zero_box(f, self._box_on(self.concentration)))

    def smooth(self) -> bool:
        from tumorgen.biophysics.edit import smooth

        return self._edit(lambda f: smooth(f, self.settings["smooth_sigma_mm"]))

    def undo(self) -> bool:
        return self._action(self.editor.undo)

