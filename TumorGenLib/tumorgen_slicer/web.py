"""TumorGen in the browser: a trame-slicer app with the desktop module's panels, bound to the same presenter.

    tumorgen web [--port 8080] [--host 127.0.0.1]

Slicer's own slice and 3D views render on the server (VTK offscreen, EGL or
OSMesa) and stream to the page. The page holds controls only: every button
calls one :class:`~tumorgen_slicer.presenter.TumorGenPresenter` method and every
field feeds :meth:`~tumorgen_slicer.presenter.TumorGenPresenter.configure`;
presenter notifications come back as page state. Nothing here decides anything.

The server binds 127.0.0.1 unless ``--host`` says otherwise. Uploads are checked
by the presenter like any other input (type, size, a readable 3D image with
finite values, the t1n's geometry for the other inputs) and a rejected one shows
its reason in the page and leaves the scene as it was.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from tumorgen_slicer.presenter import IMAGE_ROLES, MAX_UPLOAD_BYTES, TISSUE_ROLES, TumorGenPresenter

#: Page fields -> presenter.configure keys.
FIELDS = {
    "tg_mode": "mode", "tg_steps": "steps", "tg_resample": "resample", "tg_samples": "samples", "tg_sampling_seed": "sampling_seed",
    "tg_histogram": "histogram", "tg_poisson": "poisson", "tg_target_cm3": "target_volume_cm3", "tg_d_white": "d_white",
    "tg_rho": "rho", "tg_blob_sigma": "blob_sigma_mm", "tg_blob_amplitude": "blob_amplitude", "tg_scale": "scale_factor",
    "tg_smooth_sigma": "smooth_sigma_mm", "tg_box_margin": "box_margin_mm", "tg_device": "device",
}
DEFAULTS = {
    "tg_mode": "healthy", "tg_steps": 25, "tg_resample": 5, "tg_samples": 1, "tg_sampling_seed": 0, "tg_histogram": True,
    "tg_poisson": True, "tg_target_cm3": 12.0, "tg_d_white": 1.0, "tg_rho": 0.1, "tg_blob_sigma": 3.0, "tg_blob_amplitude": 0.5,
    "tg_scale": 0.5, "tg_smooth_sigma": 1.0, "tg_box_margin": 5.0, "tg_device": "auto",
}
POLL_SECONDS = 0.2


def _fmt_point(p) -> str:
    return "(" + ", ".join(f"{v:.1f}" for v in p) + ")"


class TumorGenWebApp:
    """The trame server, the Slicer views and the page, around one presenter."""

    def __init__(self, server=None, *, work_dir: str | Path | None = None, sample_spacing_mm: float = 1.0,
                 upload_limit_bytes: int = MAX_UPLOAD_BYTES):
        from trame.app import get_server
        from trame_slicer import module as trame_slicer_module
        from trame_slicer.core import LayoutManager, SlicerApp
        from trame_slicer.rca_view import register_rca_factories

        from tumorgen_slicer.context import SceneContext

        self.server = server or get_server(None, client_type="vue3")
        self.server.enable_module(trame_slicer_module)
        self.state, self.ctrl = self.server.state, self.server.controller
        self.sample_spacing_mm = float(sample_spacing_mm)
        self.upload_limit_bytes = int(upload_limit_bytes)
        self.slicer_app = SlicerApp()
        register_rca_factories(self.slicer_app.view_manager, self.server, slice_view_ui_f=self._view_ui("slice"),
                               three_d_view_ui_f=self._view_ui("3d"))
        self.layout_manager = LayoutManager(self.slicer_app.scene, self.slicer_app.view_manager, self.server)
        self.layout_manager.register_layout_dict(LayoutManager.default_grid_configuration())
        self.ctx = SceneContext.from_app(self.slicer_app)
        work = Path(work_dir) if work_dir else Path(tempfile.gettempdir()) / "TumorGen-web"
        self.presenter = TumorGenPresenter(self.ctx, work_dir=work)
        self.presenter.add_listener(self._on_presenter)
        self._tumor_cache: tuple = (None, "")  # ((node ID, image MTime), text)
        self._observed: dict[str, tuple[str, int]] = {}  # "box" or "seed" -> (node ID, observer tag)
        self._init_state()
        self._build_ui()
        self.layout_manager.set_layout("Axial Primary")
        self.ctrl.on_server_ready.add(self._on_ready)

    # -- page state ------------------------------------------------------------------------------------
    def _init_state(self) -> None:
        s = self.state
        s.trame__title = "TumorGen"
        for key, value in DEFAULTS.items():
            s[key] = value
        s.update({"tg_busy": False, "tg_progress": 0, "tg_message": "Load the sample or upload a t1n to start.", "tg_error": "",
                  "tg_log": "", "tg_running": "", "tg_inputs": "", "tg_box": "", "tg_seed": "", "tg_tumor": "", "tg_results": "",
                  "tg_has_result": False, "tg_has_std": False, "tg_show_before": False, "tg_show_std": True,
                  "tg_upload_role": "t1n", "tg_volume_count": 0, "tg_upload_limit": self.upload_limit_bytes})
        s.change(*FIELDS)(self._on_fields)
        s.change("tg_show_before")(lambda tg_show_before, **_: self.state.tg_has_result and self.presenter.show_result(not tg_show_before))
        s.change("tg_show_std")(lambda tg_show_std, **_: self.state.tg_has_std and self.presenter.show_uncertainty(tg_show_std))

    def _on_fields(self, **_changes) -> None:
        self.presenter.configure({setting: self.state[key] for key, setting in FIELDS.items()})

    def _on_presenter(self, kind: str, presenter: TumorGenPresenter) -> None:
        st, s = presenter.state, self.state
        with s:
            s.tg_busy = presenter.busy
            s.tg_running = st.running
            s.tg_progress = round(100 * st.progress)
            s.tg_message = st.message
            s.tg_error = st.error
            s.tg_log = "\n".join(list(st.log)[-200:])
            if kind in ("state", "finished", "error"):
                self._refresh_scene_text()
                self._render()
        if kind == "finished" and st.last_status == "done":
            self._after_run()

    def _refresh_scene_text(self) -> None:
        p, s = self.presenter, self.state
        s.tg_inputs = ", ".join(f"{role}: {p.input_node(role).GetName()}" for role in IMAGE_ROLES + TISSUE_ROLES if p.input_node(role))
        s.tg_volume_count = self.ctx.scene.GetNumberOfNodesByClass("vtkMRMLVolumeNode")
        self._observe(p.box, "box")
        self._observe(p.node(p.state.seed_points_id), "seed")
        s.tg_box = self._box_text()
        s.tg_seed = self._seed_text()
        s.tg_tumor = self._tumor_text()
        results = {k: p.node(v) for k, v in p.state.results.items()}
        s.tg_results = ", ".join(f"{k}: {n.GetName()}" for k, n in results.items() if n is not None)
        if "inpainted" in results:
            s.tg_results += " (the views show the " + ("result)" if p.state.showing_result else "input)")
        s.tg_has_result = "inpainted" in results
        s.tg_has_std = "std" in results

    def _tumor_text(self) -> str:
        """The tumor's volume, recomputed only when the field changed (it reads the whole field)."""
        node = self.presenter.concentration
        if node is None:
            return ""
        key = (node.GetID(), node.GetImageData().GetMTime() if node.GetImageData() is not None else 0)
        if self._tumor_cache[0] != key:
            from tumorgen_slicer.concentration import tumor_volume_cm3

            self._tumor_cache = (key, f"{node.GetName()}: {tumor_volume_cm3(node):.2f} cm³ with c ≥ 0.25")
        return self._tumor_cache[1]

    def _box_text(self) -> str:
        box = self.presenter.box
        if box is None or box.GetNumberOfControlPoints() == 0:
            return ""
        from tumorgen_slicer.box import box_geometry

        centre, size, _ = box_geometry(box)
        return f"centre {_fmt_point(centre)} mm, size {_fmt_point(size)} mm"

    def _seed_text(self) -> str:
        seed = self.presenter.seed()
        return f"seed at RAS {_fmt_point(seed)} mm" if seed is not None else ""

    def _observe(self, node, key: str) -> None:
        """Follow drags and clicks in the views: the box and the seed update the page as they move."""
        if node is None or self._observed.get(key, (None,))[0] == node.GetID():
            return
        import vtk

        def moved(*_):
            with self.state:
                self.state.tg_box = self._box_text()
                self.state.tg_seed = self._seed_text()

        tag = node.AddObserver(vtk.vtkCommand.ModifiedEvent, moved)
        self._observed[key] = (node.GetID(), tag)

    def _after_run(self) -> None:
        """New nodes are in the scene: frame the views on a new sample."""
        if self.presenter.state.last_task == "simulate":
            self._reset_views()
        self._render()

    def _render(self) -> None:
        """Layer and overlay changes do not always reach the views by themselves: ask every view for a frame."""
        for view in self.slicer_app.view_manager.get_views():
            view.schedule_render()

    def _reset_views(self) -> None:
        """Frame the data in every view and show the slices in 3D."""
        for view in self.slicer_app.view_manager.get_views():
            view.reset_view()
        for view in self.slicer_app.view_manager.get_slice_views():
            view.get_view_node().SetSliceVisible(True)

    async def _pump(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            if self.presenter.busy:
                self.presenter.poll()

    def _on_ready(self, **_) -> None:
        asyncio.get_event_loop().create_task(self._pump())

    # -- actions (each is one presenter call) -------------------------------------------------------------
    def _upload(self, files) -> None:
        from trame_slicer.utils import write_client_files_to_dir

        if not files:
            return
        with tempfile.TemporaryDirectory() as folder:
            paths = write_client_files_to_dir(files[:1], folder)
            self.presenter.load_volume_file(paths[0], self.state.tg_upload_role, max_bytes=self.upload_limit_bytes)
        self._reset_views()

    def _rejected(self, name: str, size: int) -> None:
        self.presenter.refuse_upload(name, int(size), self.upload_limit_bytes)

    # -- page ---------------------------------------------------------------------------------------------
    def _view_ui(self, kind: str):
        from trame.widgets import html
        from trame_slicer.app.ui import create_vertical_slice_view_gutter_ui, create_vertical_view_gutter_ui

        default = create_vertical_slice_view_gutter_ui if kind == "slice" else create_vertical_view_gutter_ui

        def populate(server, view_id, view):
            default(server, view_id, view)
            html.Div(classes="tg-view-marker", id=f"tg-view-{view_id}", style="display: none;")

        return populate

    def _build_ui(self) -> None:
        from trame.ui.vuetify3 import SinglePageWithDrawerLayout
        from trame.widgets import html
        from trame.widgets import vuetify3 as v

        p = self.presenter
        buttons = {
            "tg_load_sample": lambda: p.load_sample(spacing_mm=self.sample_spacing_mm),
            "tg_create_box": p.create_box, "tg_draw_box": p.draw_box, "tg_fit_box": p.fit_box_to_tumor,
            "tg_place_seed": p.place_seed, "tg_grow": p.grow, "tg_new_field": p.new_concentration,
            "tg_add_blob": p.add_blob, "tg_erase_blob": p.erase_blob, "tg_scale_box": p.scale_in_box, "tg_smooth": p.smooth,
            "tg_zero_box": p.zero_in_box, "tg_undo": p.undo, "tg_apply": p.apply, "tg_cancel": p.cancel,
            "tg_reset_views": self._reset_views,
        }
        for name, action in buttons.items():
            self.ctrl[name] = lambda action=action: action()
        self.server.trigger("tg_upload")(self._upload)
        self.server.trigger("tg_rejected")(self._rejected)

        def button(label, name, tip, **kw):
            with v.VBtn(label, click=self.ctrl[name], id=name, **{"size": "small", "classes": "ma-1", **kw}):
                v.VTooltip(tip, activator="parent", location="bottom")

        def number(label, key, tip, **kw):
            v.VTextField(v_model=(key,), label=label, id=key, type="number", density="compact", hide_details=True,
                         title=tip, classes="my-1", **kw)

        upload_js = (
            "if ($event.target.files.length && $event.target.files[0].size > tg_upload_limit) {"
            " trigger('tg_rejected', [$event.target.files[0].name, $event.target.files[0].size]); }"
            " else if ($event.target.files.length) { trigger('tg_upload', [$event.target.files]); }"
        )

        with SinglePageWithDrawerLayout(self.server, full_height=True) as layout:
            layout.title.set_text("TumorGen")
            layout.root.theme = "dark"
            with layout.toolbar:
                v.VSpacer()
                html.Div("{{ tg_running ? tg_running + ': ' + tg_message : tg_message }}", id="tg-message", classes="text-caption mr-4")
                v.VProgressLinear(model_value=("tg_progress",), id="tg-progress", active=("tg_busy",), height=6,
                                  style="max-width: 220px;", color="primary")
            with layout.drawer as drawer:
                drawer.width = 360
                with html.Div(classes="pa-2"):
                    v.VAlert(v_if="tg_error", text=("tg_error",), type="error", density="compact", id="tg-error", classes="mb-2")
                    with v.VExpansionPanels(multiple=True, model_value=("tg_panels", [0, 1, 2, 3]), variant="accordion"):
                        with v.VExpansionPanel(title="Inputs"):
                            with v.VExpansionPanelText():
                                button("Load the sample", "tg_load_sample",
                                       "Simulate the bundled sample (a healthy MNI152 subject) and use it as the inputs.")
                                v.VSelect(v_model=("tg_upload_role",), items=("tg_roles", list(IMAGE_ROLES + TISSUE_ROLES)),
                                          label="Upload as", density="compact", hide_details=True, classes="my-1", id="tg-upload-role")
                                v.VFileInput(label="Upload a volume (.nii.gz, .nii, .nrrd, .mha)", id="tg-upload",
                                             density="compact", hide_details=True, change=upload_js,
                                             title="Checked like any input: type, size, a 3D image, the t1n's geometry.")
                                html.Div("{{ tg_inputs }}", id="tg-inputs", classes="text-caption")
                                html.Div("{{ tg_volume_count }} volumes in the scene", id="tg-volume-count", classes="text-caption")
                        with v.VExpansionPanel(title="Resection box"):
                            with v.VExpansionPanelText():
                                button("Create box", "tg_create_box", "A box around the tumor, or 30 mm in the middle of the t1n; drag it in the views.")
                                button("Draw box", "tg_draw_box", "Then click one corner of a new box in a view and the opposite corner.")
                                button("Fit to tumor", "tg_fit_box", "Move the box around the tumor (c ≥ 0.25) plus the margin.")
                                number("Margin (mm)", "tg_box_margin", "Margin around the tumor when fitting the box.")
                                html.Div("{{ tg_box }}", id="tg-box", classes="text-caption")
                        with v.VExpansionPanel(title="Tumor concentration"):
                            with v.VExpansionPanelText():
                                button("Place seed", "tg_place_seed", "Then click in a view: the seed of the growth and where blobs go.")
                                html.Div("{{ tg_seed }}", id="tg-seed", classes="text-caption")
                                number("Target volume (cm³)", "tg_target_cm3", "Grow until the tumor (c ≥ 0.25) has this volume.")
                                number("White-matter diffusivity (mm²/day)", "tg_d_white", "Diffusivity in white matter.")
                                number("Proliferation (1/day)", "tg_rho", "Proliferation rate.")
                                button("Grow from seed", "tg_grow", "Fisher–Kolmogorov growth from the seed on the tissue maps.")
                                button("Empty field", "tg_new_field", "An empty concentration field to paint by hand.")
                                number("Blob sigma (mm)", "tg_blob_sigma", "Width of an added or erased blob.")
                                number("Blob strength", "tg_blob_amplitude", "Peak concentration a blob adds or removes.")
                                button("Add blob", "tg_add_blob", "Add a blob of concentration at the seed.")
                                button("Erase blob", "tg_erase_blob", "Remove a blob of concentration at the seed.")
                                number("Scale factor", "tg_scale", "Factor for Scale in box.")
                                button("Scale in box", "tg_scale_box", "Multiply the concentration inside the box.")
                                number("Smoothing sigma (mm)", "tg_smooth_sigma", "Gaussian smoothing width.")
                                button("Smooth", "tg_smooth", "Smooth the whole field.")
                                button("Resect", "tg_zero_box", "Set the concentration to 0 inside the box.")
                                button("Undo", "tg_undo", "Undo the last edit.")
                                html.Div("{{ tg_tumor }}", id="tg-tumor", classes="text-caption")
                        with v.VExpansionPanel(title="Inpainting"):
                            with v.VExpansionPanelText():
                                v.VSelect(v_model=("tg_mode",), items=("['healthy', 'tumor']",), label="Mode", density="compact",
                                          hide_details=True, id="tg_mode", classes="my-1")
                                number("Denoising steps", "tg_steps", "DDIM steps.")
                                number("Resampling", "tg_resample", "RePaint resample count per jump (1: none).")
                                number("Samples", "tg_samples", "More than one gives an uncertainty map.")
                                number("Random seed", "tg_sampling_seed", "The same seed gives the same result.")
                                v.VCheckbox(v_model=("tg_histogram",), label="Histogram matching", density="compact", hide_details=True)
                                v.VCheckbox(v_model=("tg_poisson",), label="Poisson blending", density="compact", hide_details=True)
                                v.VSelect(v_model=("tg_device",), items=("['auto', 'cpu', 'cuda']",), label="Device",
                                          density="compact", hide_details=True, classes="my-1")
                                button("Apply", "tg_apply", "Inpaint inside the box.", v_if="!tg_busy", color="primary", size="default")
                                button("Cancel", "tg_cancel", "Stop the run; nothing half-done is kept.", v_if="tg_busy", color="error",
                                       size="default")
                                v.VSwitch(v_model=("tg_show_before",), label="Show before", disabled=("!tg_has_result",),
                                          density="compact", hide_details=True, id="tg-before-after")
                                v.VSwitch(v_model=("tg_show_std",), label="Show uncertainty", disabled=("!tg_has_std",),
                                          density="compact", hide_details=True, id="tg-show-std")
                                html.Div("{{ tg_results }}", id="tg-results", classes="text-caption")
                    v.VTextarea(model_value=("tg_log",), label="Log", readonly=True, rows=6, density="compact", classes="mt-2",
                                id="tg-log", hide_details=True)
            with layout.content:
                with html.Div(style="position: relative; width: 100%; height: calc(100vh - 64px);"):
                    self.layout_manager.initialize_layout_grid(layout)
        self.ui = layout

    def start(self, host: str = "127.0.0.1", port: int = 8080, **kwargs) -> None:
        self.server.start(host=host, port=port, open_browser=False, **kwargs)


def serve(*, host: str = "127.0.0.1", port: int = 8080, work_dir: str | None = None, sample_spacing_mm: float = 1.0,
          upload_limit_bytes: int = MAX_UPLOAD_BYTES) -> int:
    """Build the app and serve it until interrupted (``tumorgen web``)."""
    app = TumorGenWebApp(work_dir=work_dir, sample_spacing_mm=sample_spacing_mm, upload_limit_bytes=upload_limit_bytes)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"tumorgen web: serving on {host}: anyone who reaches this address can run jobs and upload files", flush=True)
    print(f"TumorGen web app on http://{host}:{port}/ (Ctrl-C stops it)", flush=True)
    app.start(host=host, port=port)
    return 0
