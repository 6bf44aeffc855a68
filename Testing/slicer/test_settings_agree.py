"""Every layer takes its defaults and ranges from the engine's settings schemas.

The CLI, the backend tasks and the engine's dataclasses are checked in Testing/tumorgen/test_settings.py and the web
form's rendered fields in Testing/web/test_web_app.py; here the presenter, the Slicer parameter node (built by Slicer's
own parameterNodeWrapper), the .ui's widgets and the web form's field list.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from slicer_stand_in.testing import module_paths

from tumorgen.settings import EDITING, FOLLOWUP, GROWTH, INPAINTING, POSTOP, RUN, SCHEMAS, SYNTHESIS
from tumorgen_slicer.panel_settings import FIELDS_BY_KEY, PANEL_FIELDS, PanelSettings

UI = module_paths()[1]


def _ui_widgets() -> dict[str, ET.Element]:
    out = {}
    for widget in ET.parse(UI).getroot().iter("widget"):
        props = {p.get("name"): p for p in widget.findall("property")}
        if "SlicerParameterName" in props:
            out["".join(props["SlicerParameterName"].itertext()).strip()] = widget
    return out


def _prop(widget: ET.Element, name: str):
    for p in widget.findall("property"):
        if p.get("name") == name:
            return float("".join(p.itertext()).strip())
    return None


def test_the_presenter_starts_from_the_schema_defaults():
    settings = PanelSettings()
    for field in PANEL_FIELDS:
        assert settings[field.key] == field.schema.default(field.name), field.key
    used = {(f.schema.name, f.name) for f in PANEL_FIELDS}
    for schema, names in ((EDITING, EDITING.names()), (RUN, RUN.names()), (GROWTH, ("d_white", "rho", "gm_ratio", "target_volume_cm3")),
                          (INPAINTING, ("mode", "steps", "jump", "resample", "samples", "seed", "histogram", "poisson", "self_check")),
                          (POSTOP, POSTOP.names()), (FOLLOWUP, FOLLOWUP.names()), (SYNTHESIS, SYNTHESIS.names())):
        assert {(schema.name, n) for n in names} <= used
    # every task schema has a panel: a new one fails here until its panel fields are added
    assert {f.schema.name for f in PANEL_FIELDS} >= set(SCHEMAS)


def test_panel_keys_are_unique_and_give_each_task_its_own_setting_names():
    keys = [f.key for f in PANEL_FIELDS]
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)
    settings = PanelSettings()
    assert settings.params(POSTOP) == {name: POSTOP.default(name) for name in POSTOP.names()}
    settings.set("postop_samples", 2)
    settings.set("postop_seed", 7)
    assert settings.params(POSTOP)["samples"] == 2 and settings.params(POSTOP)["seed"] == 7
    assert settings.params(INPAINTING)["samples"] == INPAINTING.default("samples") and settings.params(INPAINTING)["seed"] == 0
    assert settings.params(FOLLOWUP) == {name: FOLLOWUP.default(name) for name in FOLLOWUP.names()}
    settings.set("followup_samples", 3)
    settings.set("followup_day", 200)
    settings.set("followup_resect", True)  # a panel choice (which inputs the job gets), not a task setting
    assert settings.params(FOLLOWUP)["samples"] == 3 and settings.params(FOLLOWUP)["day"] == 200.0
    assert "resect" not in settings.params(FOLLOWUP) and settings.params(POSTOP)["samples"] == 2
    assert settings.params(SYNTHESIS) == SYNTHESIS.defaults()
    settings.set("synthesis_steps", 5)
    settings.set("synthesis_seed", 3)
    settings.set("blend_mm", 2)
    assert settings.params(SYNTHESIS) == {"steps": 5, "seed": 3, "samples": 2, "blend_mm": 2.0, "weights": None}
    assert settings.params(INPAINTING)["steps"] == INPAINTING.default("steps") and settings.params(POSTOP)["seed"] == 7


def test_the_parameter_node_fields_are_the_panel_fields_with_their_defaults_ranges_and_choices(wrapper):
    from slicer.parameterNodeWrapper import Choice, WithinRange, findFirstAnnotation, splitAnnotations  # Slicer's, vendored

    params = wrapper.allParameters
    for field in PANEL_FIELDS:
        setting = field.setting
        if setting.optional:  # no control in the panels: not in the parameter node
            assert field.key not in params
            continue
        info = params[field.key]
        assert info.default.value == setting.default, field.key
        kind, annotations = splitAnnotations(info.unalteredType)
        if setting.choices is not None:
            assert kind is str and list(findFirstAnnotation(annotations, Choice).choices) == list(setting.choices), field.key
        elif setting.type is bool:
            assert kind is bool
        else:
            within = findFirstAnnotation(annotations, WithinRange)
            assert kind is setting.type and (within.minimum, within.maximum) == (setting.minimum, setting.maximum), field.key


def test_the_ui_widgets_show_the_schema_ranges_and_choices():
    widgets = _ui_widgets()
    for key, widget in widgets.items():
        field = FIELDS_BY_KEY.get(key)
        if field is None:
            continue
        setting = field.setting
        if widget.get("class") in ("QSpinBox", "QDoubleSpinBox"):
            assert (_prop(widget, "minimum"), _prop(widget, "maximum")) == (setting.minimum, setting.maximum), key
            if setting.step is not None:
                assert _prop(widget, "singleStep") == setting.step, key
            if setting.decimals is not None:
                assert _prop(widget, "decimals") == setting.decimals, key
        elif widget.get("class") == "QComboBox":
            items = ["".join(i.itertext()).strip() for i in widget.findall("item")]
            assert items == list(setting.choices), key


def test_the_web_form_fields_are_panel_fields():
    from tumorgen_slicer.web_page import page_key
    from tumorgen_slicer.web import FORM_KEYS

    assert set(FORM_KEYS) <= set(FIELDS_BY_KEY)
    assert {f.key for f in PANEL_FIELDS if not f.setting.optional and f.key != "weights"} <= set(FORM_KEYS)
    # the CLI's: a number of days, paths; the follow-up's day has a slider of its own (its default depends on the series)
    assert not {"days", "weights", "postop_weights", "postop_library", "followup_weights", "followup_library",
                "followup_day", "synthesis_weights"} & set(FORM_KEYS)
    assert {"synthesis_steps", "synthesis_seed", "synthesis_samples", "blend_mm"} <= set(FORM_KEYS)
    assert page_key("steps") == "tg_steps"
