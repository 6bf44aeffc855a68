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

from tumorgen_slicer.checks import MAX_UPLOAD_BYTES, ROLES
from tumorgen_slicer.forecast_plot import forecast_svg
from tumorgen_slicer.web_page import build_page, page_key
from tumorgen_slicer.panel_settings import PANEL_FIELDS
from tumorgen_slicer.presenter import TUMOR_THRESHOLD, TumorGenPresenter
from tumorgen_slicer.result_actions import RESULT_LAYERS

#: The panel fields the page has a form control for: growing for a number of days, and the paths (other weights, another case
#: library), are the CLI's; the follow-up's day has a slider of its own (until it moves, it shows the series' default day).
FORM_KEYS = tuple(f.key for f in PANEL_FIELDS
                  if f.key not in ("days", "followup_day") and not (f.setting.type is str and f.setting.choices is None))
POLL_SECONDS = 0.2
#: The page's view layouts: the usual one, and the prediction beside a retrieved case after and before its resection.
MAIN_LAYOUT, SIDE_BY_SIDE_LAYOUT = "Axial Primary", "Side by side"


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
        self.layout_manager.register_layout_dict({**LayoutManager.default_grid_configuration(), SIDE_BY_SIDE_LAYOUT: _side_by_side()})
        self.ctx = SceneContext.from_app(self.slicer_app)
        work = Path(work_dir) if work_dir else Path(tempfile.gettempdir()) / "TumorGen-web"
        self.presenter = TumorGenPresenter(self.ctx, work_dir=work)
        self.presenter.add_listener(self._on_presenter)
        self._observed: dict[str, tuple[str, int]] = {}  # "box" or "seed" -> (node ID, observer tag)
        self._init_state()
        self.ui = build_page(self)
        self.layout_manager.set_layout(MAIN_LAYOUT)
        self.ctrl.on_server_ready.add(self._on_ready)

    # -- page state ------------------------------------------------------------------------------------
    def _init_state(self) -> None:
        s = self.state
        s.trame__title = "TumorGen"
        for key in FORM_KEYS:
            s[page_key(key)] = self.presenter.settings[key]
        s.update({"tg_busy": False, "tg_progress": 0, "tg_message": "Load the sample or upload a t1n to start.", "tg_error": "",
                  "tg_log": "", "tg_running": "", "tg_inputs": "", "tg_box": "", "tg_seed": "", "tg_tumor": "", "tg_results": "",
                  "tg_has_result": False, "tg_has_std": False, "tg_check": "", "tg_check_doubtful": False, "tg_show_before": False,
                  "tg_show_std": True, "tg_postop": "", "tg_retrieved": [], "tg_retrieved_n": None, "tg_side_by_side": 0,
                  "tg_upload_role": "t1n", "tg_volume_count": 0, "tg_upload_limit": self.upload_limit_bytes,
                  "tg_series": [], "tg_series_day": 0, "tg_series_size": 1.0, "tg_followup_day": None, "tg_followup_day_text": "",
                  "tg_followup_day_range": list(self.presenter.followup_day_range()),
                  "tg_followup_custom_day": False, "tg_followup": "", "tg_forecast_svg": "", "tg_followup_days": [],
                  "tg_followup_shown": None, "tg_synthesis": "", "tg_synthesis_labels": "", "tg_synthesis_ready": False})
        s.change(*map(page_key, FORM_KEYS))(self._on_fields)
        s.change("tg_followup_day")(self._on_followup_day)
        s.change("tg_followup_shown")(lambda tg_followup_shown, **_: tg_followup_shown is not None
                                      and self.presenter.show_followup_day(tg_followup_shown))
        s.change("tg_show_before")(lambda tg_show_before, **_: self.state.tg_has_result and self.presenter.show_result(not tg_show_before))
        s.change("tg_show_std")(lambda tg_show_std, **_: self.state.tg_has_std and self.presenter.show_uncertainty(tg_show_std))

    def _on_fields(self, **_changes) -> None:
        self.presenter.configure({key: self.state[page_key(key)] for key in FORM_KEYS})

    def _on_followup_day(self, tg_followup_day, **_) -> None:
        """The slider moved: a day of its own, unless it shows the day already in force (the default, set by the page)."""
        if tg_followup_day is not None and float(tg_followup_day) != self._followup_day():
            self.presenter.configure({"followup_day": tg_followup_day})

    def _followup_day(self):
        day = self.presenter.settings["followup_day"]
        return day if day is not None else self.presenter.state.followup_default_day

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
        s.tg_inputs = ", ".join(f"{role}: {p.input_node(role).GetName()}" for role in ROLES if p.input_node(role))
        s.tg_volume_count = self.ctx.scene.GetNumberOfNodesByClass("vtkMRMLVolumeNode")
        self._observe(p.box, "box")
        self._observe(p.node(p.state.seed_points_id), "seed")
        s.tg_box = self._box_text()
        s.tg_seed = self._seed_text()
        s.tg_tumor = self._tumor_text()
        results = {k: p.node(v) for k, v in p.state.results.items()}
        # the retrieved cases' scans are listed with their cases in the post-operative panel
        s.tg_results = ", ".join(f"{k}: {n.GetName()}" for k, n in results.items() if n is not None and not k.startswith("retrieved-"))
        s.tg_has_result = any(key in results for key, _ in RESULT_LAYERS)
        if s.tg_has_result:
            s.tg_results += " (the views show the " + ("result)" if p.state.showing_result else "input)")
        s.tg_check, s.tg_check_doubtful = p.state.check, p.state.check_doubtful
        s.tg_has_std = "std" in results
        s.tg_show_std = p.state.showing_uncertainty
        s.tg_postop = p.state.postop_summary
        cases = [{"title": case["label"], "value": n} for n, case in enumerate(p.state.retrieved, start=1)]
        if cases != s.tg_retrieved:
            s.tg_retrieved, s.tg_retrieved_n = cases, 1 if cases else None
        self._refresh_followup()
        s.tg_synthesis, s.tg_synthesis_labels = p.state.synthesis_text, p.state.synthesis_labels
        s.tg_synthesis_ready = p.input_node("t1n") is not None and bool(p.state.synthesis_labels)
        if p.state.side_by_side != s.tg_side_by_side:
            s.tg_side_by_side = p.state.side_by_side
            self.layout_manager.set_layout(SIDE_BY_SIDE_LAYOUT if p.state.side_by_side else MAIN_LAYOUT)

    def _refresh_followup(self) -> None:
        p, s, st = self.presenter, self.state, self.presenter.state
        s.tg_series = [{"day": f"{row['day']:g}", "size": f"{row['size']:g}"} for row in st.series]
        day, default = p.settings["followup_day"], st.followup_default_day
        s.tg_followup_day_range = list(p.followup_day_range())  # the slider's ends, around the latest scan and the day
        s.tg_followup_day = self._followup_day()
        s.tg_followup_custom_day = day is not None
        default_text = f"latest + 90 = day {default:g}" if default is not None else "latest + 90 (add the series first)"
        s.tg_followup_day_text = default_text if day is None else f"day {day:g} ({default_text})"
        s.tg_followup = st.followup_text
        observed = [(row["day"], row["size"]) for row in st.series]
        s.tg_forecast_svg = forecast_svg(st.forecast_rows, observed, st.followup_summary.get("day", self._followup_day()))
        days = [{"title": f"day {d:g}", "value": d} for d in st.followup_days]
        if days != s.tg_followup_days:
            s.tg_followup_days, s.tg_followup_shown = days, None

    def _tumor_text(self) -> str:
        node, cm3 = self.presenter.concentration, self.presenter.state.tumor_cm3
        return f"{node.GetName()}: {cm3:.2f} cm³ with c ≥ {TUMOR_THRESHOLD:g}" if node is not None and cm3 is not None else ""

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
            self.reset_views()
        self._render()

    def _render(self) -> None:
        """Layer and overlay changes do not always reach the views by themselves: ask every view for a frame."""
        for view in self.slicer_app.view_manager.get_views():
            view.schedule_render()

    def reset_views(self) -> None:
        """Frame the data in every view; the slices show in 3D until there is a tumor surface to show there."""
        from tumorgen_slicer.result_view import show_slices_in_3d, shown_surfaces

        for view in self.slicer_app.view_manager.get_views():
            view.reset_view()
        show_slices_in_3d(self.ctx, not shown_surfaces(self.ctx))

    async def _pump(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            if self.presenter.busy:
                self.presenter.poll()

    def _on_ready(self, **_) -> None:
        asyncio.get_event_loop().create_task(self._pump())

    # -- actions (each is one presenter call) -------------------------------------------------------------
    def upload(self, files) -> None:
        from trame_slicer.utils import write_client_files_to_dir

        if not files:
            return
        with tempfile.TemporaryDirectory() as folder:
            paths = write_client_files_to_dir(files[:1], folder)
            loaded = self.presenter.load_volume_file(paths[0], self.state.tg_upload_role, max_bytes=self.upload_limit_bytes)
        if loaded and self.state.tg_upload_role == "t1n":  # a new image to frame; another input is on its grid, and a
            self.reset_views()  # reset would take the views off a label map the presenter centred them on
        self._render()

    def reject_upload(self, name: str, size: int) -> None:
        self.presenter.refuse_upload(name, int(size), self.upload_limit_bytes)

    def show_retrieved(self) -> None:
        self.presenter.show_retrieved(self.state.tg_retrieved_n)

    def load_series(self, files) -> None:
        from trame_slicer.utils import write_client_files_to_dir

        if files:
            with tempfile.TemporaryDirectory() as folder:
                self.presenter.load_series(write_client_files_to_dir(files[:1], folder)[0])

    # -- page ---------------------------------------------------------------------------------------------
    def _view_ui(self, kind: str):
        from trame.widgets import html
        from trame_slicer.app.ui import create_vertical_slice_view_gutter_ui, create_vertical_view_gutter_ui

        default = create_vertical_slice_view_gutter_ui if kind == "slice" else create_vertical_view_gutter_ui

        def populate(server, view_id, view):
            default(server, view_id, view)
            html.Div(classes="tg-view-marker", id=f"tg-view-{view_id}", style="display: none;")

        return populate

    def start(self, host: str = "127.0.0.1", port: int = 8080, **kwargs) -> None:
        self.server.start(host=host, port=port, open_browser=False, **kwargs)


def _side_by_side():
    """Three slice views in a row (red, yellow, green), for the prediction beside a retrieved case."""
    from trame_slicer.views import Layout, LayoutDirection, ViewLayoutDefinition

    return Layout(LayoutDirection.Horizontal, [ViewLayoutDefinition.axial_view(), ViewLayoutDefinition.sagittal_view(),
                                               ViewLayoutDefinition.coronal_view()])


def serve(*, host: str = "127.0.0.1", port: int = 8080, work_dir: str | None = None, sample_spacing_mm: float = 1.0,
          upload_limit_bytes: int = MAX_UPLOAD_BYTES) -> int:
    """Build the app and serve it until interrupted (``tumorgen web``)."""
    app = TumorGenWebApp(work_dir=work_dir, sample_spacing_mm=sample_spacing_mm, upload_limit_bytes=upload_limit_bytes)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"tumorgen web: serving on {host}: anyone who reaches this address can run jobs and upload files", flush=True)
    print(f"TumorGen web app on http://{host}:{port}/ (Ctrl-C stops it)", flush=True)
    app.start(host=host, port=port)
    return 0
