"""The values the panels set, by panel key, each backed by a setting of the engine's schemas.

The desktop module's parameter node, the web form and the presenter all take
their fields from :data:`PANEL_FIELDS`; defaults, ranges, choices and help come
from :mod:`tumorgen.settings`, never from here (the one exception, :data:`FOLLOWUP_PANEL`, is
a panel choice of which inputs a job gets, not a setting of any task).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tumorgen.schema import Schema, Setting
from tumorgen.settings import EDITING, FOLLOWUP, GROWTH, INPAINTING, POSTOP, RUN, SYNTHESIS


@dataclass(frozen=True)
class PanelField:
    """A panel key and the schema setting behind it (the key differs only where two settings share a name)."""

    key: str
    schema: Schema
    name: str

    @property
    def setting(self) -> Setting:
        return self.schema[self.name]


def _fields(schema: Schema, *names: str, keys: dict[str, str] | None = None) -> tuple[PanelField, ...]:
    return tuple(PanelField((keys or {}).get(n, n), schema, n) for n in names)


#: The post-operative prediction's panel keys that are not its setting names: those inpainting or the seed point also use, and
#: ``k``, which alone says nothing.
POSTOP_KEYS = {"k": "postop_k", "samples": "postop_samples", "seed": "postop_seed", "steps": "postop_steps",
               "strength": "postop_strength", "margin_mm": "postop_margin_mm", "library": "postop_library",
               "weights": "postop_weights"}

#: The follow-up's panel keys that are not its setting names: those other panels also use (``d_white`` and ``rho`` are the
#: growth's too, but here they only shape the regrown field).
FOLLOWUP_KEYS = {"day": "followup_day", "samples": "followup_samples", "seed": "followup_seed", "steps": "followup_steps",
                 "strength": "followup_strength", "margin_mm": "followup_margin_mm", "d_white": "followup_d_white",
                 "rho": "followup_rho", "library": "followup_library", "weights": "followup_weights"}
#: The synthesis's panel keys that are not its setting names: those other panels also use.
SYNTHESIS_KEYS = {"steps": "synthesis_steps", "seed": "synthesis_seed", "samples": "synthesis_samples", "weights": "synthesis_weights"}
#: Choices of the follow-up panel that are no task setting: they decide which inputs the job gets.
FOLLOWUP_PANEL = Schema("followup_panel", (
    Setting("resect", bool, False, "follow up after resecting the box: the post-operative prediction's cavity, the residual "
            "tumor outside it grown forward (the composed what-if)", label="After resection"),
))

#: What the panels show, in panel order. The sampling seed is ``sampling_seed``: ``seed`` is the tumor's seed point.
PANEL_FIELDS: tuple[PanelField, ...] = (
    *_fields(EDITING, "box_margin_mm"),
    *_fields(GROWTH, "d_white", "rho", "gm_ratio", "target_volume_cm3", "days"),
    *_fields(EDITING, "blob_sigma_mm", "blob_amplitude", "scale_factor", "smooth_sigma_mm"),
    *_fields(INPAINTING, "mode", "steps", "jump", "resample", "samples", "seed", "histogram", "poisson", "self_check", "method",
             "fallback", "weights",
             keys={"seed": "sampling_seed"}),
    *_fields(POSTOP, "k", "retrieval", "cfg", "samples", "seed", "steps", "strength", "margin_mm", "composite", "tumor_prompt",
             "library", "weights", keys=POSTOP_KEYS),
    *_fields(FOLLOWUP, *FOLLOWUP.names(), keys=FOLLOWUP_KEYS),
    *_fields(FOLLOWUP_PANEL, "resect", keys={"resect": "followup_resect"}),
    *_fields(SYNTHESIS, *SYNTHESIS.names(), keys=SYNTHESIS_KEYS),
    *_fields(RUN, *RUN.names()),
)
FIELDS_BY_KEY = {f.key: f for f in PANEL_FIELDS}


class PanelSettings:
    """The current value of every panel field (the schema defaults to start with)."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {f.key: f.setting.default for f in PANEL_FIELDS}

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def set(self, key: str, value: Any) -> bool:
        """Convert ``value`` by its setting's rules and store it; returns whether it changed.

        Raises InputError (one line naming the setting) for a value of the wrong type or out of range; the
        stored value stays as it was then.
        """
        field = FIELDS_BY_KEY.get(key)
        if field is None:
            raise KeyError(key)
        value = field.setting.convert(value)
        changed = value != self._values[key]
        self._values[key] = value
        return changed

    def params(self, schema: Schema) -> dict[str, Any]:
        """The values of one schema's fields, by the schema's setting names (a job's ``params``)."""
        return {f.name: self._values[f.key] for f in PANEL_FIELDS if f.schema is schema}

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)


def describe() -> list[dict[str, Any]]:
    """Every panel field with its setting's description (what the web form is built from)."""
    return [{**f.setting.describe(), "key": f.key} for f in PANEL_FIELDS]
