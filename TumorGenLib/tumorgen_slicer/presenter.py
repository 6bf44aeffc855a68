"""The presenter: one method per user action, shared by the desktop module and the web app.

Front ends bind their controls to these methods and to :attr:`TumorGenPresenter.state`,
and refresh when a listener is told something changed. They hold no logic of
their own. Nothing here imports Qt or trame.

Long work (loading the sample, growing, inpainting) runs as a backend job; the
front end calls :meth:`TumorGenPresenter.poll` from its timer (the desktop
module's QTimer, the web app's event loop), which forwards progress and log
lines and, when the job is done, loads its outputs as new nodes. Failures never
raise into the front end: they end up in ``state.error`` and are announced to
the listeners as ``"error"``.

Listeners are called as ``listener(kind, presenter)`` with ``kind`` one of
``"state"`` (anything in the state changed), ``"progress"``, ``"log"``,
``"error"`` and ``"finished"`` (a run ended; see ``state.last_status``).
"""

from __future__ import annotations

import tempfile
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from tumorgen.backend.events import ErrorEvent, LogEvent, ProgressEvent
from tumorgen.backend.runner import JobRunner
from tumorgen.errors import InputError, TumorGenError
from tumorgen_slicer import box as boxes
from tumorgen_slicer import concentration as fields
from tumorgen_slicer import environment
from tumorgen_slicer.nodes import UNCERTAINTY_COLORS, add_volume, show_colormap, show_in_slices, volume_of
from tumorgen_slicer.runs import Run, RunSpec, group, start_run

#: Input roles, in the order the Inputs panel shows them.
IMAGE_ROLES = ("t1n", "t1c", "t2w", "t2f")
TISSUE_ROLES = ("csf", "gm", "wm")
DEVICES = ("auto", "cpu", "cuda")
MODES = ("healthy", "tumor")
LOG_LINES = 500
#: Limits on a loaded or uploaded volume file.
MAX_UPLOAD_BYTES = 512 * 2**20
MAX_VOXELS = 512**3
#: What counts as tumor (the growth's target volume and the oedema label use the same threshold).
TUMOR_THRESHOLD = 0.25
UNDO_DEPTH = 20


@dataclass
class GrowSettings:
    #: Diffusivity in white matter (mm²/day), proliferation (1/day), grey/white diffusivity ratio.
    d_white: float = 1.0
    rho: float = 0.1
    gm_ratio: float = 0.1
    #: Stop at this tumor volume (cm³, c ≥ 0.25) or, when set, after ``days``.
    target_volume_cm3: float = 12.0
    days: Optional[float] = None


@dataclass
class EditSettings:
    blob_sigma_mm: float = 3.0
    blob_amplitude: float = 0.5
    scale_factor: float = 0.5
    smooth_sigma_mm: float = 1.0
    #: Margin around the tumor when the box is fitted to it.
    box_margin_mm: float = 5.0


@dataclass
class InpaintSettings:
    mode: str = "healthy"
    steps: int = 25
    jump: int = 5
    resample: int = 5
    samples: int = 1
    seed: int = 0
    histogram: bool = True
    poisson: bool = True
    #: Model weights folder (None: the bundled models).
    weights: Optional[str] = None

    def params(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if v is not None}
        out["jump"] = min(self.jump, self.steps)
        return out


@dataclass
class PresenterState:
    #: role -> node ID (t1n, t1c, t2w, t2f, csf, gm, wm).
    inputs: dict[str, str] = field(default_factory=dict)
    box_id: str = ""
    concentration_id: str = ""
    seed_ras: Optional[tuple[float, float, float]] = None
    #: A markups point list whose first point is the seed (the desktop module places it in the views).
    seed_points_id: str = ""
    device: str = "auto"
    #: The backend's Python: "" for Slicer's own (this interpreter outside Slicer), else a path.
    python: str = ""
    #: The running job's name ("" when idle), its progress and current message.
    running: str = ""
    progress: float = 0.0
    message: str = ""
    log: deque = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    error: str = ""
    #: The backend task of the last run that ended, and how it ended: done, bad_input, failed or cancelled.
    last_task: str = ""
    last_status: str = ""
    #: The last finished run's nodes: output name -> node ID.
    results: dict[str, str] = field(default_factory=dict)
    #: Whether the views show the last result (True) or its input (False).
    showing_result: bool = True
    undo_depth: int = 0


class TumorGenPresenter:
    """User actions on a scene; see the module docstring for how front ends bind to it."""

    def __init__(self, ctx, *, work_dir: str | Path | None = None):
        self.ctx = ctx
        self.state = PresenterState()
        self.grow_settings = GrowSettings()
        self.edit_settings = EditSettings()
        self.inpaint_settings = InpaintSettings()
        self.work_dir = Path(work_dir) if work_dir else Path(tempfile.gettempdir()) / "TumorGen-runs"
        self.run: Run | None = None
        self._on_done: Callable[[Run], None] | None = None
        self._listeners: list[Callable[[str, TumorGenPresenter], None]] = []
        self._undo: deque = deque(maxlen=UNDO_DEPTH)
        self._result_input_id = ""
        #: How the front end asks the user a yes/no question (None: never ask, never install).
        #: When set, the first run checks the backend's Python and offers to install what it lacks.
        self.confirm: Callable[[str], bool] | None = None
        self._backend_ready = False

    # -- listeners ------------------------------------------------------------------------------------
    def add_listener(self, listener: Callable[[str, "TumorGenPresenter"], None]) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _notify(self, kind: str) -> None:
        for listener in list(self._listeners):
            listener(kind, self)

    def _fail(self, message: str) -> bool:
        self.state.error = message
        self.state.log.append(f"error: {message}")
        self._notify("error")
        self._notify("state")
        return False

    def _action(self, fn: Callable[[], Any]) -> Any:
        """Run one user action: errors become ``state.error``; returns the action's value or False."""
        self.state.error = ""
        try:
            value = fn()
        except (InputError, TumorGenError, ValueError, OSError) as exc:
            return self._fail(str(exc))
        self._notify("state")
        return True if value is None else value

    # -- nodes ------------------------------------------------------------------------------------------
    def node(self, node_id: str):
        return self.ctx.node(node_id) if node_id else None

    def input_node(self, role: str):
        return self.node(self.state.inputs.get(role, ""))

    @property
    def box(self):
        return self.node(self.state.box_id)

    @property
    def concentration(self):
        return self.node(self.state.concentration_id)

    def _reference(self):
        node = self.input_node("t1n")
        if node is None:
            raise InputError("choose a t1n input volume first (or load the sample)")
        return node

    # -- inputs -----------------------------------------------------------------------------------------
    def set_input(self, role: str, node) -> bool:
        """Use ``node`` (or its ID; None clears) as the input of ``role``."""
        def act():
            _check_role(role)
            found = self.ctx.node(node)
            if found is None:
                self.state.inputs.pop(role, None)
                return
            if not found.IsA("vtkMRMLScalarVolumeNode"):
                raise InputError(f"{found.GetName()!r} is not a scalar volume")
            self.state.inputs[role] = found.GetID()
            if role == "t1n":
                show_in_slices(self.ctx, background=found)
        return self._action(act)

    def load_sample(self, spacing_mm: float = 1.0) -> bool:
        """Simulate the bundled sample (a healthy MNI152 subject) and use it as the inputs, with its tissue maps."""
        spec = RunSpec("simulate", "Sample", params={"spacing_mm": float(spacing_mm), "tumor": False},
                       load=(*IMAGE_ROLES, *(f"tissue-{k}" for k in TISSUE_ROLES)))

        def loaded(run: Run) -> None:
            for key, node in run.nodes.items():
                role = key.replace("tissue-", "")
                node.SetName(f"Sample {key}")
                self.state.inputs[role] = node.GetID()
            show_in_slices(self.ctx, background=self.input_node("t1n"))

        return self._start(spec, loaded)

    def set_box(self, node) -> bool:
        """Use an existing ROI node (or its ID; None clears) as the resection box."""
        def act():
            found = self.ctx.node(node)
            if found is not None and not found.IsA("vtkMRMLMarkupsROINode"):
                raise InputError(f"{found.GetName()!r} is not a box (markups ROI)")
            self.state.box_id = found.GetID() if found is not None else ""
        return self._action(act)

    def set_concentration(self, node) -> bool:
        """Use an existing scalar volume (or its ID; None clears) as the tumor concentration to edit."""
        def act():
            found = self.ctx.node(node)
            if found is None:
                self.state.concentration_id = ""
                return
            if not found.IsA("vtkMRMLScalarVolumeNode") or found.IsA("vtkMRMLLabelMapVolumeNode"):
                raise InputError(f"{found.GetName()!r} is not a scalar volume")
            if found.GetID() != self.state.concentration_id:
                self._take_concentration(found)
        return self._action(act)

    def set_seed_points(self, node) -> bool:
        """Take the tumor seed (and where blobs go) from the first point of a markups point list."""
        def act():
            found = self.ctx.node(node)
            if found is not None and not found.IsA("vtkMRMLMarkupsFiducialNode"):
                raise InputError(f"{found.GetName()!r} is not a point list")
            self.state.seed_points_id = found.GetID() if found is not None else ""
        return self._action(act)

    def bound_nodes(self) -> dict[str, Any]:
        """The nodes a front end shows in its selectors, by :meth:`configure` key (None where unset)."""
        out = {role: self.input_node(role) for role in IMAGE_ROLES + TISSUE_ROLES}
        out.update(box=self.box, concentration=self.concentration, seed_points=self.node(self.state.seed_points_id))
        return out

    def seed(self):
        """The seed in RAS mm: the point list's first point when one is set, else the last clicked seed."""
        points = self.node(self.state.seed_points_id)
        if points is not None and points.GetNumberOfControlPoints() > 0:
            import numpy as np

            ras = np.zeros(3)
            points.GetNthControlPointPositionWorld(0, ras)
            return tuple(float(v) for v in ras)
        return self.state.seed_ras

    def configure(self, values: dict) -> bool:
        """Set many things at once by name (how a front end's parameter store feeds the presenter).

        Keys: the input roles, ``box``, ``seed_points``, ``concentration`` (nodes or IDs), ``device``,
        ``python``, and any field of :class:`GrowSettings`, :class:`EditSettings` or :class:`InpaintSettings`
        (the sampling seed is ``sampling_seed``). ``use_slicer_python`` (bool) picks Slicer's own Python
        over the ``python`` path.
        """
        values = dict(values)
        if "use_slicer_python" in values:
            use_slicer = bool(values.pop("use_slicer_python"))
            values["python"] = "" if use_slicer else (values.get("python") or "")
        setters = {"box": self.set_box, "seed_points": self.set_seed_points, "concentration": self.set_concentration,
                   "device": self.set_device, "python": self.set_python}
        groups = [(self.grow_settings, GrowSettings), (self.edit_settings, EditSettings), (self.inpaint_settings, InpaintSettings)]
        ok = True
        for key, value in values.items():
            if key in IMAGE_ROLES + TISSUE_ROLES:
                found = self.ctx.node(value)
                if (found.GetID() if found is not None else "") != self.state.inputs.get(key, ""):
                    ok &= self.set_input(key, value)
            elif key in setters:
                if key == "python" and (value or "") == self.state.python:
                    continue
                ok &= setters[key](value)
            else:
                name = "seed" if key == "sampling_seed" else key
                for target, cls in groups:
                    if name in cls.__dataclass_fields__ and not (cls is InpaintSettings and key == "seed"):
                        try:
                            setattr(target, name, _coerce(value, cls.__dataclass_fields__[name]))
                        except (TypeError, ValueError):
                            ok &= self._fail(f"{key} must be a number, got {value!r}")
                        break
                else:
                    ok &= self._fail(f"unknown setting {key!r}")
        return bool(ok)

    def ensure_backend(self, confirm: Callable[[str], bool]) -> bool:
        """Check the backend's Python; offer to install what it lacks (``confirm(question)`` asks the user)."""
        missing = self.missing_packages()
        if self.state.error:
            return False
        if not missing:
            return True
        question = (f"The backend Python ({self.backend_python()}) lacks {', '.join(missing)}. "
                    "Install the pinned versions now? This downloads packages and can take several minutes.")
        if not confirm(question):
            return self._fail(f"the backend needs {', '.join(missing)}; install them or choose another Python")
        return self.install_packages(missing) and not self.missing_packages()

    def load_volume_file(self, path: str | Path, role: str = "t1n", *, name: str | None = None,
                         max_bytes: int = MAX_UPLOAD_BYTES) -> bool:
        """Check a volume file (type, size, readable 3D image, finite values, geometry) and load it as an input.

        Nothing enters the scene unless every check passes. A file for any role but t1n must have the t1n's geometry.
        """
        def act():
            from tumorgen.volume_io import read_volume
            from tumorgen_slicer.runs import VOLUME_SUFFIXES

            file = Path(path)
            label = name or file.name
            _check_role(role)
            if not file.name.lower().endswith(VOLUME_SUFFIXES):
                raise InputError(f"{label}: unsupported file type; use NIfTI (.nii, .nii.gz), NRRD (.nrrd) or MetaImage (.mha, .mhd)")
            if not file.is_file():
                raise InputError(f"{label}: no such file")
            _check_size(label, file.stat().st_size, max_bytes)
            volume = read_volume(file, role=role)
            if volume.grid.num_voxels > MAX_VOXELS:
                raise InputError(f"{label}: {volume.grid.size} is too many voxels (at most {MAX_VOXELS:,})")
            t1n = self.input_node("t1n")
            if role != "t1n" and t1n is not None:
                from tumorgen_slicer.nodes import grid_of

                differences = grid_of(t1n).differences(volume.grid)
                if differences:
                    raise InputError(f"{label} does not match the t1n's geometry: {'; '.join(differences)}")
            stem = next((label[: -len(sfx)] for sfx in VOLUME_SUFFIXES if label.lower().endswith(sfx)), label)
            node = add_volume(self.ctx, volume, stem)
            self.state.inputs[role] = node.GetID()
            if role == "t1n":
                show_in_slices(self.ctx, background=node)
            self.state.log.append(f"loaded {label} as {role}: {volume.grid.size} voxels of {volume.grid.spacing} mm")
        return self._action(act)

    def refuse_upload(self, name: str, size: int, max_bytes: int = MAX_UPLOAD_BYTES) -> bool:
        """A front end that knows a file's size before sending it reports an oversized one here (returns False then)."""
        return self._action(lambda: _check_size(name, size, max_bytes))

    def place_seed(self) -> bool:
        """Put the views in place mode for the seed: the next click in a view sets it."""
        def act():
            points = self.node(self.state.seed_points_id)
            if points is None:
                points = self.ctx.scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "Tumor seed")
                points.CreateDefaultDisplayNodes()
                self.state.seed_points_id = points.GetID()
            points.RemoveAllControlPoints()
            points.SetMaximumNumberOfControlPoints(1)
            self._start_placing(points)
        return self._action(act)

    def draw_box(self) -> bool:
        """Put the views in place mode for a new resection box: click one corner in a view, then the opposite one."""
        def act():
            self._reference()
            roi = boxes.new_box_node(self.ctx)
            self.state.box_id = roi.GetID()
            self._start_placing(roi)
        return self._action(act)

    def _start_placing(self, node) -> None:
        from slicer import vtkMRMLInteractionNode

        markups = self.ctx.app_logic.GetModuleLogic("Markups")
        interaction = self.ctx.scene.GetNodeByID("vtkMRMLInteractionNodeSingleton")
        if markups is None or interaction is None:
            raise InputError("this scene has no views to place points in")
        markups.SetActiveList(node)
        interaction.SetPlaceModePersistence(0)
        interaction.SetCurrentInteractionMode(vtkMRMLInteractionNode.Place)

    def show_uncertainty(self, visible: bool) -> bool:
        """Show or hide the last result's uncertainty (std) overlay."""
        def act():
            std = self.node(self.state.results.get("std", ""))
            if std is None:
                raise InputError("the last result has no uncertainty map (run with more than one sample)")
            show_in_slices(self.ctx, foreground=std, foreground_opacity=0.4 if visible else 0.0)
            self.state.log.append("uncertainty overlay " + ("shown" if visible else "hidden"))
        return self._action(act)

    def set_device(self, device: str) -> bool:
        def act():
            if device not in DEVICES:
                raise InputError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
            self.state.device = device
        return self._action(act)

    def set_python(self, python: str) -> bool:
        """Use Slicer's own Python ("") or the interpreter at ``python`` for the backend."""
        def act():
            if python:
                version = environment.check_python(python)
                self.state.log.append(f"backend Python {python} ({version})")
            if (python or "") != self.state.python:
                self._backend_ready = False
            self.state.python = python or ""
        return self._action(act)

    def backend_python(self) -> str:
        return self.state.python or environment.default_python()

    def missing_packages(self) -> list[str]:
        """What the backend's Python lacks (import names); empty when it is ready."""
        result = self._action(lambda: environment.missing_modules(self.backend_python()) or [])
        return result if isinstance(result, list) else []

    def install_packages(self, modules: list[str]) -> bool:
        """Install ``modules`` into the backend's Python (only after the user agreed)."""
        return self._action(lambda: environment.install(self.backend_python(), modules, in_slicer=self.ctx.in_slicer,
                                                        log=self.state.log.append))

    # -- the resection box --------------------------------------------------------------------------------
    def create_box(self) -> bool:
        """A new resection box: around the tumor when there is one, else 30 mm in the middle of the t1n."""
        def act():
            import numpy as np

            reference = self._reference()
            roi = boxes.create_box(self.ctx)
            self.state.box_id = roi.GetID()
            conc = self.concentration
            if conc is not None and float(np.max(volume_of(conc).array)) >= TUMOR_THRESHOLD:
                boxes.fit_box(roi, conc, threshold=TUMOR_THRESHOLD, margin_mm=self.edit_settings.box_margin_mm)
            else:
                grid = volume_of(reference).grid
                centre = grid.index_to_ras((np.asarray(grid.size) - 1) / 2.0)
                boxes.place_box(roi, centre, (30.0, 30.0, 30.0))
        return self._action(act)

    def fit_box_to_tumor(self) -> bool:
        """Move the box around the current tumor (concentration ≥ 0.25) with the margin of the settings."""
        def act():
            if self.box is None:
                raise InputError("no resection box: create one first")
            if self.concentration is None:
                raise InputError("no tumor concentration to fit the box to")
            boxes.fit_box(self.box, self.concentration, threshold=TUMOR_THRESHOLD, margin_mm=self.edit_settings.box_margin_mm)
        return self._action(act)

    def box_bounds(self) -> tuple[float, ...] | None:
        return boxes.ras_bounds(self.box) if self.box is not None else None

    def box_mask(self):
        """The box as a mask on the t1n's grid (an engine volume)."""
        return boxes.box_mask(self.box, self._reference())

    # -- the tumor concentration -----------------------------------------------------------------------------
    def set_seed(self, ras) -> bool:
        def act():
            point = tuple(float(v) for v in ras)
            if len(point) != 3:
                raise InputError("a seed needs 3 coordinates (RAS mm)")
            self.state.seed_ras = point
        return self._action(act)

    def grow(self) -> bool:
        """Grow a tumor from the seed with the engine's Fisher–Kolmogorov solver (a backend job)."""
        try:
            self._check_idle()
            reference = self._reference()
            seed = self.seed()
            if seed is None:
                raise InputError("place a tumor seed first (click in a view)")
        except InputError as exc:
            return self._fail(str(exc))
        s = self.grow_settings
        params = {"seed_ras": list(seed), "d_white": s.d_white, "rho": s.rho, "gm_ratio": s.gm_ratio}
        params.update({"days": s.days} if s.days is not None else {"target_volume_cm3": s.target_volume_cm3})
        tissues = {k: self.input_node(k) for k in TISSUE_ROLES}
        inputs = tissues if all(tissues.values()) else {"t1n": reference}
        spec = RunSpec("grow", self._run_name("Growth"), inputs=inputs, params=params, labelmaps=frozenset({"labels"}),
                       load=("concentration",))

        def grown(run: Run) -> None:
            node = run.nodes["concentration"]
            self._take_concentration(node)

        return self._start(spec, grown)

    def new_concentration(self) -> bool:
        """An empty concentration field on the t1n's grid, to paint by hand."""
        return self._action(lambda: self._take_concentration(fields.new_concentration(self.ctx, self._reference())))

    def _take_concentration(self, node) -> None:
        self.state.concentration_id = node.GetID()
        self._undo.clear()
        self.state.undo_depth = 0
        fields.show_concentration(self.ctx, node)
        show_in_slices(self.ctx, background=self.input_node("t1n"), foreground=node, label=fields.outlines_node(self.ctx, node),
                       foreground_opacity=0.6)

    def _edit(self, operation) -> bool:
        def act():
            node = self.concentration
            if node is None:
                raise InputError("no tumor concentration: grow one or start an empty one")
            self._undo.append(fields.edit(self.ctx, node, operation))
            self.state.undo_depth = len(self._undo)
        return self._action(act)

    def add_blob(self, ras=None) -> bool:
        """Add a Gaussian blob of concentration at ``ras`` (default: the seed)."""
        return self._blob(ras, erase=False)

    def erase_blob(self, ras=None) -> bool:
        """Remove a Gaussian blob of concentration at ``ras`` (default: the seed)."""
        return self._blob(ras, erase=True)

    def _blob(self, ras, erase: bool) -> bool:
        from tumorgen.biophysics.edit import add_blob

        s = self.edit_settings
        point = ras if ras is not None else self.seed()
        if point is None:
            return self._fail("place a point first: blobs go where the seed is")
        return self._edit(lambda f: add_blob(f, ras=point, sigma_mm=s.blob_sigma_mm, amplitude=s.blob_amplitude, erase=erase))

    def scale_in_box(self) -> bool:
        from tumorgen.biophysics.edit import scale_region

        return self._edit(lambda f: scale_region(f, self._box_on(f), self.edit_settings.scale_factor))

    def zero_in_box(self) -> bool:
        """Resect: set the concentration to 0 inside the box."""
        from tumorgen.biophysics.edit import zero_box

        return self._edit(lambda f: zero_box(f, self._box_on(f)))

    def smooth(self) -> bool:
        from tumorgen.biophysics.edit import smooth

        return self._edit(lambda f: smooth(f, self.edit_settings.smooth_sigma_mm))

    def undo(self) -> bool:
        def act():
            if not self._undo or self.concentration is None:
                raise InputError("nothing to undo")
            fields.restore(self.ctx, self.concentration, self._undo.pop())
            self.state.undo_depth = len(self._undo)
        return self._action(act)

    def _box_on(self, field):
        if self.box is None:
            raise InputError("no resection box: create one first")
        mask = boxes.box_mask(self.box, self.concentration)
        if not mask.array.any():
            raise InputError("the resection box holds no voxel of the concentration's grid")
        return mask

    # -- inpainting -------------------------------------------------------------------------------------------
    def inpaint(self) -> bool:
        """Inpaint inside the box: healthy tissue, or (tumor mode) a tumor from the concentration."""
        s = self.inpaint_settings
        try:
            self._check_idle()
            if s.mode not in MODES:
                raise InputError(f"inpainting mode must be healthy or tumor, got {s.mode!r}")
            t1n = self._reference()
            mask = self.box_mask()
            if not mask.array.any():
                raise InputError("the resection box holds no voxel of the t1n: move it onto the image")
            inputs: dict[str, Any] = {"t1n": t1n, "mask": mask}
            if s.mode == "tumor":
                if self.concentration is None:
                    raise InputError("tumor inpainting needs a tumor concentration: grow or paint one first")
                inputs["concentration"] = self.concentration
            for role in TISSUE_ROLES:
                if self.input_node(role) is not None:
                    inputs[role] = self.input_node(role)
        except InputError as exc:
            return self._fail(str(exc))
        load = ("inpainted", "std") if s.samples > 1 else ("inpainted",)
        spec = RunSpec("inpaint", self._run_name(f"Inpainting {s.mode}"), inputs=inputs, params=s.params(), load=load)

        def inpainted(run: Run) -> None:
            mask_node = add_volume(self.ctx, mask, f"{run.name} mask", labelmap=True)
            group(self.ctx, run.name, [mask_node])
            run.nodes["mask"] = mask_node
            self.state.results["mask"] = mask_node.GetID()
            self._result_input_id = t1n.GetID()
            std = run.nodes.get("std")
            if std is not None:
                import numpy as np

                # zero (outside the mask) stays transparent; the colours span the run's own range
                peak = float(np.max(volume_of(std).array))
                show_colormap(self.ctx, std, UNCERTAINTY_COLORS, window=(0.0, peak if peak > 0 else 1.0))
            self._show_result(True)

        return self._start(spec, inpainted)

    def apply(self) -> bool:
        """The panel's Apply: inpainting (later work adds post-op, follow-up and synthesis)."""
        return self.inpaint()

    def show_result(self, after: bool) -> bool:
        """Toggle the views between the last result (after) and its input (before)."""
        return self._action(lambda: self._show_result(after))

    def _show_result(self, after: bool) -> None:
        result = self.node(self.state.results.get("inpainted", ""))
        if result is None:
            raise InputError("no inpainting result to show yet")
        before = self.node(self._result_input_id)
        std = self.node(self.state.results.get("std", ""))
        mask = self.node(self.state.results.get("mask", ""))
        show_in_slices(self.ctx, background=result if after or before is None else before, foreground=std, label=mask,
                       foreground_opacity=0.4, clear_foreground=std is None)
        self.state.showing_result = after

    # -- runs -------------------------------------------------------------------------------------------------
    def _run_name(self, base: str) -> str:
        sh = self.ctx.subject_hierarchy
        n = 1
        while sh.GetItemChildWithName(sh.GetSceneItemID(), f"{base} {n}"):
            n += 1
        return f"{base} {n}"

    def _check_idle(self) -> None:
        if self.run is not None:
            raise InputError(f"{self.run.name} is still running; wait for it or cancel it")

    def _start(self, spec: RunSpec, on_done: Callable[[Run], None]) -> bool:
        if self.run is not None:
            return self._fail(f"{self.run.name} is still running; wait for it or cancel it")
        if self.confirm is not None and not self._backend_ready:
            if not self.ensure_backend(self.confirm):
                return False
            self._backend_ready = True
        self.state.error = ""
        try:
            runner = JobRunner(python=self.backend_python(), env=environment.backend_env())
            self.run = start_run(self.ctx, spec, self.work_dir, runner, self.state.device)
        except (InputError, TumorGenError, ValueError, OSError) as exc:
            return self._fail(f"{spec.name}: {exc}")
        self._on_done = on_done
        self.state.running, self.state.progress, self.state.message = spec.name, 0.0, "starting"
        self.state.log.append(f"{spec.name}: started in {self.run.folder}")
        self._notify("state")
        return True

    @property
    def busy(self) -> bool:
        return self.run is not None

    def poll(self) -> bool:
        """Forward the running job's events; load its outputs once it is done. Returns whether a job is still running."""
        run = self.run
        if run is None:
            return False
        for event in run.poll():
            if isinstance(event, ProgressEvent):
                self.state.progress, self.state.message = float(event.fraction), event.message or event.stage
                self._notify("progress")
            elif isinstance(event, LogEvent):
                if event.level != "debug":
                    self.state.log.append(event.message)
                    self._notify("log")
            elif isinstance(event, ErrorEvent):
                self.state.log.append(f"{event.kind}: {event.message}")
                self._notify("log")
        if not run.done:
            return True
        self._finish(run)
        return False

    def _finish(self, run: Run) -> None:
        self.run = None
        on_done, self._on_done = self._on_done, None
        outcome = run.outcome
        self.state.running = ""
        self.state.last_task, self.state.last_status = run.spec.task, outcome.status
        if outcome.ok:
            try:
                run.load_outputs(self.ctx)
                if run.spec.task != "simulate":
                    self.state.results = {k: n.GetID() for k, n in run.nodes.items()}
                if on_done is not None:
                    on_done(run)
            except (InputError, TumorGenError, ValueError, OSError) as exc:
                self._fail(f"{run.name}: loading the results failed: {exc}")
                self._notify("finished")
                return
            self.state.error = ""
            self.state.progress, self.state.message = 1.0, f"{run.name} done in {run.seconds:.1f} s"
            self.state.log.append(self.state.message)
            self._notify("state")
        elif outcome.status == "cancelled":
            self.state.progress, self.state.message = 0.0, f"{run.name} cancelled"
            self.state.log.append(self.state.message)
            self._notify("state")
        else:
            self._fail(f"{run.name} failed: {outcome.message}")
        self._notify("finished")

    def cancel(self) -> bool:
        """Stop the running job; nothing it would have written is loaded or left behind."""
        if self.run is None:
            return False
        run = self.run
        run.cancel()
        run.poll()
        self._finish(run)
        return True

    def wait(self, timeout: float = 600.0, interval: float = 0.1, pump: Callable[[], Any] | None = None) -> str:
        """Poll until the running job ends (for scripts, tests and the self-test); returns its status."""
        deadline = time.monotonic() + timeout
        while self.poll():
            if time.monotonic() > deadline:
                self.cancel()
                self._fail(f"gave up after {timeout:g} s")
                return "cancelled"
            if pump is not None:
                pump()
            time.sleep(interval)
        return self.state.last_status


def _check_size(label: str, size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise InputError(f"{label}: {size / 2**20:.0f} MiB is over the {max_bytes / 2**20:.0f} MiB limit")


def _coerce(value, field):
    """A setting from a front end (spin box, text field) as its field's type; empty means the default (or None)."""
    kind = str(field.type)
    if value is None or (isinstance(value, str) and value.strip() == "" and "str" not in kind):
        return None if "Optional" in kind else field.default
    if "bool" in kind:
        return bool(value)
    if "int" in kind:
        number = float(value)
        if not number.is_integer():
            raise ValueError(value)
        return int(number)
    if "float" in kind:
        return float(value)
    return value


def _check_role(role: str) -> None:
    if role not in IMAGE_ROLES + TISSUE_ROLES:
        raise InputError(f"unknown input {role!r}; choose one of {', '.join(IMAGE_ROLES + TISSUE_ROLES)}")
