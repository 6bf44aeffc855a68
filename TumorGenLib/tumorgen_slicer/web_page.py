"""The web app's page: the panels of the desktop module as Vuetify controls, and Slicer's views.

Every button calls one presenter action; every form field is built from the
panel field's setting (label, unit, help, range, choices: :mod:`tumorgen.settings`).
"""

from __future__ import annotations

from tumorgen.settings import FOLLOWUP
from tumorgen_slicer.checks import ROLES
from tumorgen_slicer.panel_settings import FIELDS_BY_KEY

#: The follow-up's settings under its Advanced sub-panel.
FOLLOWUP_ADVANCED = ("rt_start", "followup_seed", "draws", "n_boot", "interval", "recalibrate", "followup_d_white", "followup_rho", "followup_steps",
                     "guided_steps", "guidance", "followup_strength", "followup_margin_mm")


def page_key(key: str) -> str:
    """The page-state name of a panel field."""
    return f"tg_{key}"


def build_page(app):
    """Lay out the page of ``app`` (a :class:`~tumorgen_slicer.web.TumorGenWebApp`) and return the layout."""
    from trame.ui.vuetify3 import SinglePageWithDrawerLayout
    from trame.widgets import html
    from trame.widgets import vuetify3 as v

    p = app.presenter
    buttons = {
        "tg_load_sample": lambda: p.load_sample(spacing_mm=app.sample_spacing_mm),
        "tg_create_box": p.create_box, "tg_draw_box": p.draw_box, "tg_fit_box": p.fit_box_to_tumor,
        "tg_place_seed": p.place_seed, "tg_grow": p.grow, "tg_new_field": p.new_concentration,
        "tg_add_blob": p.add_blob, "tg_erase_blob": p.erase_blob, "tg_scale_box": p.scale_in_box, "tg_smooth": p.smooth,
        "tg_zero_box": p.zero_in_box, "tg_undo": p.undo, "tg_apply": p.apply, "tg_cancel": p.cancel,
        "tg_predict": p.predict_postop, "tg_cancel_postop": p.cancel, "tg_side_by_side": app.show_retrieved,
        "tg_show_prediction": lambda: p.show_result(True), "tg_reset_views": app.reset_views,
        "tg_add_row": lambda: p.add_series_row(app.state.tg_series_day, app.state.tg_series_size),
        "tg_add_current": lambda: p.add_current_to_series(app.state.tg_series_day), "tg_predict_followup": p.predict_followup,
        "tg_cancel_followup": p.cancel, "tg_default_day": lambda: p.configure({"followup_day": None}),
        "tg_synthesize": p.synthesize, "tg_cancel_synthesis": p.cancel,
    }
    for name, action in buttons.items():
        app.ctrl[name] = lambda action=action: action()
    app.server.trigger("tg_upload")(app.upload)
    app.server.trigger("tg_rejected")(app.reject_upload)
    app.server.trigger("tg_series_upload")(app.load_series)
    app.server.trigger("tg_remove_row")(lambda row: p.remove_series_row(int(row)))

    def button(label, name, tip, **kw):
        with v.VBtn(label, click=app.ctrl[name], id=name, **{"size": "small", "classes": "ma-1", **kw}):
            v.VTooltip(tip, activator="parent", location="bottom")

    def field(key):
        """The control of one panel field, built from its setting: label, help, range and choices."""
        setting = FIELDS_BY_KEY[key].setting
        label = (setting.label or key) + (f" ({setting.unit})" if setting.unit else "")
        common = dict(v_model=(page_key(key),), label=label, id=page_key(key), density="compact", hide_details=True,
                      title=setting.help[:1].upper() + setting.help[1:] + ".", classes="my-1")
        if setting.type is bool:
            v.VCheckbox(**common)
        elif setting.choices is not None:
            v.VSelect(items=(repr(list(setting.choices)),), **common)
        else:
            # the browser's own number input enforces the range (raw attributes reach the <input>)
            v.VTextField(type="number", raw_attrs=[f'min="{setting.minimum!r}"', f'max="{setting.maximum!r}"',
                                                   f'step="{setting.step or 1!r}"'], **common)

    upload_js = (
        "if ($event.target.files.length && $event.target.files[0].size > tg_upload_limit) {"
        " trigger('tg_rejected', [$event.target.files[0].name, $event.target.files[0].size]); }"
        " else if ($event.target.files.length) { trigger('tg_upload', [$event.target.files]); }"
    )

    with SinglePageWithDrawerLayout(app.server, full_height=True) as layout:
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
                with v.VExpansionPanels(multiple=True, model_value=("tg_panels", [0, 1, 2, 3, 4, 5, 6]), variant="accordion"):
                    with v.VExpansionPanel(title="Inputs"):
                        with v.VExpansionPanelText():
                            button("Load the sample", "tg_load_sample",
                                   "Simulate the bundled sample (a healthy MNI152 subject) and use it as the inputs.")
                            v.VSelect(v_model=("tg_upload_role",), items=("tg_roles", list(ROLES)),
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
                            field("box_margin_mm")
                            html.Div("{{ tg_box }}", id="tg-box", classes="text-caption")
                    with v.VExpansionPanel(title="Tumor concentration"):
                        with v.VExpansionPanelText():
                            button("Place seed", "tg_place_seed", "Then click in a view: the seed of the growth and where blobs go.")
                            html.Div("{{ tg_seed }}", id="tg-seed", classes="text-caption")
                            field("target_volume_cm3")
                            field("d_white")
                            field("rho")
                            field("gm_ratio")
                            button("Grow from seed", "tg_grow", "Fisher–Kolmogorov growth from the seed on the tissue maps.")
                            button("Empty field", "tg_new_field", "An empty concentration field to paint by hand.")
                            field("blob_sigma_mm")
                            field("blob_amplitude")
                            button("Add blob", "tg_add_blob", "Add a blob of concentration at the seed.")
                            button("Erase blob", "tg_erase_blob", "Remove a blob of concentration at the seed.")
                            field("scale_factor")
                            button("Scale in box", "tg_scale_box", "Multiply the concentration inside the box.")
                            field("smooth_sigma_mm")
                            button("Smooth", "tg_smooth", "Smooth the whole field.")
                            button("Resect", "tg_zero_box", "Set the concentration to 0 inside the box.")
                            button("Undo", "tg_undo", "Undo the last edit.")
                            html.Div("{{ tg_tumor }}", id="tg-tumor", classes="text-caption")
                    with v.VExpansionPanel(title="Inpainting"):
                        with v.VExpansionPanelText():
                            field("mode")
                            field("steps")
                            field("jump")
                            field("resample")
                            field("samples")
                            field("sampling_seed")
                            field("histogram")
                            field("poisson")
                            field("self_check")
                            field("method")
                            field("fallback")
                            field("device")
                            field("keep_runs")
                            field("clean_runs_on_close")
                            button("Apply", "tg_apply", "Inpaint inside the box.", v_if="!tg_busy", color="primary", size="default")
                            button("Cancel", "tg_cancel", "Stop the run; nothing half-done is kept.", v_if="tg_busy", color="error",
                                   size="default")
                            v.VSwitch(v_model=("tg_show_before",), label="Show before", disabled=("!tg_has_result",),
                                      density="compact", hide_details=True, id="tg-before-after")
                            v.VSwitch(v_model=("tg_show_std",), label="Show uncertainty", disabled=("!tg_has_std",),
                                      density="compact", hide_details=True, id="tg-show-std")
                            html.Div("{{ tg_results }}", id="tg-results", classes="text-caption")
                            html.Div("{{ tg_check }}", id="tg-check", classes=("tg_check_doubtful ? 'text-caption text-error' : 'text-caption'",))
                    with v.VExpansionPanel(title="Post-operative prediction"):
                        with v.VExpansionPanelText():
                            for key in ("postop_k", "retrieval", "cfg", "postop_samples", "postop_seed", "postop_steps",
                                        "postop_strength", "postop_margin_mm", "composite", "tumor_prompt"):
                                field(key)
                            button("Predict", "tg_predict", "Predict the scan after resecting the box (the tumor: the concentration, "
                                   "else the segmentation), guided by similar cases from the case library.", v_if="!tg_busy",
                                   color="primary", size="default")
                            button("Cancel", "tg_cancel_postop", "Stop the run; nothing half-done is kept.", v_if="tg_busy",
                                   color="error", size="default")
                            html.Div("{{ tg_postop }}", id="tg-postop", classes="text-caption")
                            v.VSelect(v_model=("tg_retrieved_n",), items=("tg_retrieved",), label="Retrieved case", id="tg-retrieved",
                                      disabled=("!tg_retrieved.length",), density="compact", hide_details=True, classes="my-1")
                            button("Side by side", "tg_side_by_side", "The prediction, the chosen case after its resection and "
                                   "before it, in three views through the cavity.", disabled=("!tg_retrieved.length",))
                            button("Show prediction", "tg_show_prediction", "Back to the prediction with its uncertainty and the "
                                   "cavity's outline.", disabled=("!tg_retrieved.length",))
                    with v.VExpansionPanel(title="Follow-up"):
                        with v.VExpansionPanelText():
                            followup_panel(app, button, field)
                    with v.VExpansionPanel(title="Synthesize"):
                        with v.VExpansionPanelText():
                            synthesis_panel(button, field)
                v.VTextarea(model_value=("tg_log",), label="Log", readonly=True, rows=6, density="compact", classes="mt-2",
                            id="tg-log", hide_details=True)
        with layout.content:
            with html.Div(style="position: relative; width: 100%; height: calc(100vh - 64px);"):
                app.layout_manager.initialize_layout_grid(layout)
    return layout


def followup_panel(app, button, field) -> None:
    """The Follow-up panel: the series table, the day slider, the settings, Predict / Cancel, the summary, the forecast plot
    (inline SVG) and the time points to step through."""
    from trame.widgets import html
    from trame.widgets import vuetify3 as v

    with v.VTable(density="compact", id="tg-series", classes="my-1"):
        with html.Thead():
            with html.Tr():
                html.Th("Day")
                html.Th("Size (cm³)")
                html.Th("")
        with html.Tbody():
            with html.Tr(v_for="(row, i) in tg_series", key="i", classes="tg-series-row"):
                html.Td("{{ row.day }}")
                html.Td("{{ row.size }}")
                with html.Td():
                    v.VBtn(icon="mdi-close", size="x-small", variant="text", click="trigger('tg_remove_row', [i])",
                           id=("`tg-remove-row-${i}`",), title="Remove this row.")
    with html.Div(classes="d-flex"):
        v.VTextField(v_model=("tg_series_day",), label="Day", type="number", id="tg_series_day", density="compact",
                     hide_details=True, classes="mr-1", title="Day of the measurement (days on the series' own time axis).")
        v.VTextField(v_model=("tg_series_size",), label="Size (cm³)", type="number", id="tg_series_size", density="compact",
                     hide_details=True, title="Tumor volume measured on that day.")
    button("Add", "tg_add_row", "Add the measurement (the table stays in day order).")
    button("Add current", "tg_add_current", "Add the current tumor's volume on the measurement's day: the concentration (c ≥ 0.25), "
           "else the segmentation.")
    v.VFileInput(label="Load a series (.csv: day,size[,rt_start])", id="tg-series-upload", density="compact", hide_details=True,
                 accept=".csv", change="$event.target.files.length && trigger('tg_series_upload', [$event.target.files])")
    day = FOLLOWUP["day"]
    # its ends (the latest scan, a year after it: the presenter's followup_day_range) labelled, the day on the thumb
    v.VSlider(v_model=("tg_followup_day",), min=("tg_followup_day_range[0]",), max=("tg_followup_day_range[1]",), step=day.step,
              ticks=("Object.fromEntries(tg_followup_day_range.map(d => [d, String(d)]))",), show_ticks="always", tick_size=0,
              label="Day", thumb_label="always", id="tg-followup-day", density="compact", hide_details=True, classes="mt-8 mb-2",
              title=day.help[:1].upper() + day.help[1:] + ".")
    with html.Div(classes="d-flex align-center"):
        html.Div("{{ tg_followup_day_text }}", id="tg-followup-day-text", classes="text-caption mr-2")
        button("Latest + 90", "tg_default_day", "Back to the default day: 90 days after the latest scan.", disabled=("!tg_followup_custom_day",))
    for key in ("growth_law", "route", "followup_samples", "followup_resect"):
        field(key)
    with v.VExpansionPanels(classes="my-1"):
        with v.VExpansionPanel(title="Advanced", eager=True):  # rendered while closed: every field is on the page
            with v.VExpansionPanelText():
                for key in FOLLOWUP_ADVANCED:
                    field(key)
    button("Predict follow-up", "tg_predict_followup", "Predict the follow-up scan at the day from the series and the tumor (the "
           "concentration, else the segmentation).", v_if="!tg_busy", color="primary", size="default")
    button("Cancel", "tg_cancel_followup", "Stop the run; nothing half-done is kept.", v_if="tg_busy", color="error", size="default")
    html.Div("{{ tg_followup }}", id="tg-followup", classes="text-caption")
    html.Div(v_html=("tg_forecast_svg",), id="tg-forecast-plot", classes="my-1")
    v.VSelect(v_model=("tg_followup_shown",), items=("tg_followup_days",), label="Time point", id="tg-followup-days",
              disabled=("!tg_followup_days.length",), density="compact", hide_details=True, classes="my-1",
              title="Step the views through the series: the latest scan and each predicted day, each with its own tumor "
              "probability (colour; 1 inside the latest scan's tumor) and labels (outlines, and surfaces in 3D).")


def synthesis_panel(button, field) -> None:
    """The Synthesize panel: the labels it will use, its settings, Synthesize / Cancel and the last synthesis in one line."""
    from trame.widgets import html

    html.Div("Labels: {{ tg_synthesis_labels || 'none: choose a segmentation (seg), or grow or paint a tumor' }}",
             id="tg-synthesis-labels", classes="text-caption")
    for key in ("synthesis_steps", "synthesis_seed", "synthesis_samples", "blend_mm"):
        field(key)
    button("Synthesize", "tg_synthesize", "Synthesize t1n, t1c, t2w and t2f with the tumor of the labels (the segmentation, else "
           "the concentration's labels) in the t1n.", v_if="!tg_busy", disabled=("!tg_synthesis_ready",), color="primary",
           size="default")
    button("Cancel", "tg_cancel_synthesis", "Stop the run; nothing half-done is kept.", v_if="tg_busy", color="error", size="default")
    html.Div("{{ tg_synthesis }}", id="tg-synthesis", classes="text-caption")
