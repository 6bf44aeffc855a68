"""The presenter's core: its parts, its listeners, how an action reports failure, the nodes it refers to, its runs.

The user actions live in one mixin per panel (:mod:`~tumorgen_slicer.input_actions`,
:mod:`~tumorgen_slicer.box_actions`, :mod:`~tumorgen_slicer.tumor_actions`,
:mod:`~tumorgen_slicer.inpainting_actions`, :mod:`~tumorgen_slicer.postop_actions`,
:mod:`~tumorgen_slicer.followup_actions`, :mod:`~tumorgen_slicer.synthesize_actions`; the last four share their inputs
and show their results through :mod:`~tumorgen_slicer.result_actions`), each built on this class;
:class:`~tumorgen_slicer.presenter.TumorGenPresenter` joins them.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from tumorgen.errors import InputError, TumorGenError
from tumorgen.settings import GROWTH
from tumorgen_slicer import checks
from tumorgen_slicer.backend_setup import BackendSetup
from tumorgen_slicer.editing import ConcentrationEditor
from tumorgen_slicer.panel_settings import PanelSettings
from tumorgen_slicer.run_control import JobStarter, RunControl
from tumorgen_slicer.runs import Run, RunSpec
from tumorgen_slicer.state import PresenterState

#: What counts as tumor: the growth's threshold (its target volume and the oedema label use the same one).
TUMOR_THRESHOLD = GROWTH.default("threshold")
Listener = Callable[[str, Any], None]


class PresenterCore:
    """The parts every action uses; see :mod:`tumorgen_slicer.presenter` for how front ends bind to them."""

    def __init__(self, ctx, *, work_dir: str | Path | None = None, starter: JobStarter | None = None,
                 backend: BackendSetup | None = None):
        self.ctx = ctx
        self.state = PresenterState()
        self.settings = PanelSettings()
        self.work_dir = Path(work_dir) if work_dir else Path(tempfile.gettempdir()) / "TumorGen-runs"
        self.backend = backend or BackendSetup(in_slicer=getattr(ctx, "in_slicer", False))
        self.backend.log = self.state.log.append  # what the backend's setup says goes into the panels' log
        self.runs = RunControl(ctx, self.state, self._notify, starter or self.backend.start_run, self.work_dir, gate=self.backend)
        self.editor = ConcentrationEditor(ctx)
        self._listeners: list[Listener] = []
        #: Notifications held back while a batch of changes is made (see :meth:`_batch`), in order, each once.
        self._held: list[str] | None = None

    # -- listeners and errors ---------------------------------------------------------------------------
    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _notify(self, kind: str) -> None:
        if self._held is not None:
            if kind not in self._held:
                self._held.append(kind)
            return
        for listener in list(self._listeners):
            listener(kind, self)

    @contextlib.contextmanager
    def _batch(self) -> Iterator[None]:
        """Hold the notifications of many changes and send each kind once at the end (a panel refreshes once)."""
        if self._held is not None:  # already inside a batch
            yield
            return
        self._held = []
        try:
            yield
        finally:
            held, self._held = self._held, None
            for kind in held:
                self._notify(kind)

    def _fail(self, message: str) -> bool:
        self.state.error = message
        self.state.log.append(message, "error")
        self._notify("error")
        self._notify("state")
        return False

    def _action(self, fn: Callable[[], Any]) -> Any:
        """Run one user action: errors become ``state.error``; returns the action's value or True (False on failure)."""
        self.state.error = ""
        try:
            value = fn()
        except (TumorGenError, ValueError, OSError) as exc:
            return self._fail(str(exc))
        self._refresh()
        self._notify("state")
        return True if value is None else value

    def _refresh(self) -> None:
        """State derived from the scene: what can be undone, the tumor's volume."""
        self.state.undo_depth = len(self.editor.undo_stack)
        self.state.tumor_cm3 = self.editor.tumor_volume_cm3(TUMOR_THRESHOLD)

    # -- nodes ------------------------------------------------------------------------------------------
    def node(self, node_id: str):
        return self.ctx.node(node_id) if node_id else None

    def _id(self, node_or_id) -> str:
        found = self.ctx.node(node_or_id)
        return found.GetID() if found is not None else ""

    def _node_of(self, node_or_id, mrml_class: str, what: str, *, not_class: str = ""):
        """The node (from itself or its ID; None for none) if it is a ``mrml_class``, else InputError naming it."""
        found = self.ctx.node(node_or_id)
        if found is not None and (not found.IsA(mrml_class) or (not_class and found.IsA(not_class))):
            raise InputError(f"{found.GetName()!r} is not {what}")
        return found

    def input_node(self, role: str):
        return self.node(self.state.inputs.get(role, ""))

    @property
    def box(self):
        return self.node(self.state.box_id)

    @property
    def concentration(self):
        return self.editor.node

    def _show_in_views(self, centre_ras, surfaces=()) -> None:
        """Every view on a result at ``centre_ras`` (RAS mm): the slice views through it, the segmentations ``surfaces`` in
        3D with the box and the seed, the 3D cameras framing them (:func:`~tumorgen_slicer.result_view.show_result`)."""
        from tumorgen_slicer.result_view import show_result

        show_result(self.ctx, centre_ras, surfaces=surfaces, markups=(self.box, self.node(self.state.seed_points_id)))

    def _reference(self):
        node = self.input_node("t1n")
        if node is None:
            raise InputError("choose a t1n input volume first (or load the sample)")
        return node

    def bound_nodes(self) -> dict[str, Any]:
        """The nodes a front end shows in its selectors, by :meth:`configure` key (None where unset)."""
        out = {role: self.input_node(role) for role in checks.ROLES}
        out.update(box=self.box, concentration=self.concentration, seed_points=self.node(self.state.seed_points_id))
        return out

    # -- the backend --------------------------------------------------------------------------------------
    @property
    def checks_backend(self) -> bool:
        """Whether a task's first run checks the backend's Python first and asks before installing what it lacks
        (the desktop module; off for the web app and scripts, which run on the engine's own environment)."""
        return self.backend.ask

    @checks_backend.setter
    def checks_backend(self, ask: bool) -> None:
        self.backend.ask = bool(ask)

    def answer_backend(self, yes: bool) -> bool:
        """Answer the backend's question (``state.question``): yes installs what it names, no leaves everything as it is."""
        try:
            self.runs.answer(bool(yes))
        except InputError as exc:
            return self._fail(str(exc))
        return True

    def set_python(self, python: str | None) -> bool:
        """Use the default backend ("" or None: TumorGen's own environment inside Slicer) or the interpreter at ``python``
        (checked before the next run of each task)."""
        def act():
            self.backend.set_python(str(python or ""))
            self.state.python = self.backend.python
        return self._action(act)

    def check_backend(self) -> bool:
        """Check the backend's Python now (and offer to install what it lacks); runs in other processes."""
        try:
            self.runs.check_idle()
            self.backend.reset()
            self.runs.start(None, None, self.settings["device"])
        except InputError as exc:
            return self._fail(str(exc))
        return True

    # -- runs ---------------------------------------------------------------------------------------------
    def _run_name(self, base: str) -> str:
        sh = self.ctx.subject_hierarchy
        n = 1
        while sh.GetItemChildWithName(sh.GetSceneItemID(), f"{base} {n}"):
            n += 1
        return f"{base} {n}"

    def _start(self, spec: RunSpec, on_done: Callable[[Run], None], *, keep_results: bool = False) -> bool:
        def done(run: Run) -> None:
            if not keep_results:  # the panels follow the last run's result: what an earlier one read goes with it
                self.state.results = {k: n.GetID() for k, n in run.nodes.items()}
                self.state.check, self.state.check_doubtful = "", False
                self.state.retrieved, self.state.postop_summary, self.state.side_by_side = [], "", 0
                self.state.forecast_rows, self.state.followup_summary, self.state.followup_text = [], {}, ""
                self.state.synthesis_text = ""
            on_done(run)
            self._refresh()

        try:
            self.runs.keep_runs = self.settings["keep_runs"]
            self.runs.start(spec, done, self.settings["device"])
        except InputError as exc:
            return self._fail(str(exc))
        return True

    def scene_closed(self) -> bool:
        """The scene was closed: stop the running job and, if the setting says so, remove every run folder it left."""
        self.runs.cancel()
        if self.settings["clean_runs_on_close"] and not self.busy:
            self.runs.prune(keep=0)
        return True

    def shutdown(self) -> None:
        """The front end goes away (the module is unloaded): kill any running job or install at once, without waiting."""
        self.runs.shutdown()

    @property
    def busy(self) -> bool:
        return self.runs.busy

    def poll(self) -> bool:
        """Forward the running job's events; load its outputs once it is done. Returns whether work is still going on."""
        return self.runs.poll()

    def cancel(self) -> bool:
        """Ask the running job to stop (returns at once); nothing it would have written is loaded or left behind."""
        return self.runs.cancel()

    def wait(self, timeout: float = 600.0, interval: float = 0.1, pump: Callable[[], Any] | None = None,
             answer: bool = False) -> str:
        """Poll until the running job ends (for scripts, tests and the self-test); returns its status.

        A question about installing the backend's packages gets ``answer`` (default no: a script has nobody to ask).
        """
        return self.runs.wait(timeout, interval, pump, answer)
