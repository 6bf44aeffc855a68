"""The presenter: one method per user action, shared by the desktop module and the web app.

Front ends bind their controls to these methods, to :attr:`TumorGenPresenter.state`
(:class:`~tumorgen_slicer.state.PresenterState`) and to
:attr:`TumorGenPresenter.settings` (the panel fields of
:mod:`~tumorgen_slicer.panel_settings`), and refresh when a listener is told
something changed. They hold no logic of their own; nothing here imports Qt or trame.

The presenter (:class:`~tumorgen_slicer.presenter_core.PresenterCore` and one
mixin of actions per panel) composes small parts, each with one job: the panel settings, run
control (:mod:`~tumorgen_slicer.run_control`, with the job starter injected),
input checks (:mod:`~tumorgen_slicer.checks`), concentration editing with a
bounded undo (:mod:`~tumorgen_slicer.editing`) and the backend's environment
(:mod:`~tumorgen_slicer.backend_setup`). Long work runs as a backend job that
the front end polls from its timer (:meth:`poll`). Failures never raise into the
front end: they end up in ``state.error`` and are announced as ``"error"``.
"""

from __future__ import annotations

from tumorgen.errors import TumorGenError
from tumorgen_slicer import checks
from tumorgen_slicer.box_actions import BoxActions
from tumorgen_slicer.followup_actions import FollowupActions
from tumorgen_slicer.inpainting_actions import InpaintingActions
from tumorgen_slicer.input_actions import InputActions
from tumorgen_slicer.postop_actions import PostopActions
from tumorgen_slicer.presenter_core import TUMOR_THRESHOLD, PresenterCore
from tumorgen_slicer.synthesize_actions import SynthesizeActions
from tumorgen_slicer.tumor_actions import TumorActions

__all__ = ["TUMOR_THRESHOLD", "TumorGenPresenter"]


class TumorGenPresenter(InputActions, BoxActions, TumorActions, InpaintingActions, PostopActions, FollowupActions, SynthesizeActions,
                        PresenterCore):
    """User actions on a scene; see the module docstring for how front ends bind to it."""

    def configure(self, values: dict) -> bool:
        """Set many things at once by name (how a front end's parameter store feeds the presenter).

        Keys: the input roles, ``box``, ``seed_points``, ``concentration`` (nodes or IDs), ``python``,
        ``use_slicer_python`` (bool: the default backend — TumorGen's own environment inside Slicer, this
        interpreter outside — over the ``python`` path) and every panel field
        (:data:`~tumorgen_slicer.panel_settings.PANEL_FIELDS`). Each value is converted by its setting's rules;
        a bad one is reported by name and leaves that setting as it was.
        """
        with self._batch():
            return self._configure(dict(values))

    def _configure(self, values: dict) -> bool:
        if "use_slicer_python" in values:
            values["python"] = "" if values.pop("use_slicer_python") else str(values.get("python") or "")
        setters = {"box": self.set_box, "seed_points": self.set_seed_points, "concentration": self.set_concentration,
                   "python": self.set_python}
        ok = True
        for key, value in values.items():
            if key in checks.ROLES:
                if self._id(value) != self.state.inputs.get(key, ""):
                    ok &= self.set_input(key, value)
            elif key in setters:
                current = self.state.python if key == "python" else self._id(self.bound_nodes()[key])
                if (str(value or "") if key == "python" else self._id(value)) != current:
                    ok &= setters[key](value)
            elif key in self.settings:
                ok &= self._set_setting(key, value)
            else:
                ok &= self._fail(f"unknown setting {key!r}")
        return bool(ok)

    def _set_setting(self, key: str, value) -> bool:
        """Set one panel field; the panels hear of it only when its value changed."""
        try:
            changed = self.settings.set(key, value)
        except (TumorGenError, ValueError) as exc:
            return self._fail(str(exc))
        if changed:
            self.state.error = ""
            self._notify("state")
        return True
