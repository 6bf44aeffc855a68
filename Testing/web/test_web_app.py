"""The web app end to end, in headless Chromium: uploads, the box, growth from a click, inpainting, cancel, the
post-operative prediction's panel (its runs are tested on the presenter: Testing/scene/test_postop_presenter.py), the
follow-up panel's series table, day and plot (its runs: Testing/scene/test_followup_presenter.py) and one synthesis.

One server and one browser for the whole module; the tests run in order and build on each other's scene. The server runs
the ``synthesize`` task as its stand-in (``test_synthesize``, Testing/support/tumorgen_test_tasks.py: the real task's
inputs, settings and outputs, without the model, whose sampling takes minutes on two CPU cores); every other task is real.
"""

from __future__ import annotations

import os
import re
import signal
import time

import numpy as np
import pytest
from browser_testing import click, free_port, image_of, require_browser, start_browser, start_server, wait_for
from tumorgen_testing import backend_env

require_browser()

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

POINT = r"\((-?[\d.]+), (-?[\d.]+), (-?[\d.]+)\)"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    work = tmp_path_factory.mktemp("web")
    port = free_port()
    server = start_server(port, work, "--sample-spacing", "2", "--upload-limit", "1",
                          env={**backend_env(), "TUMORGEN_STAND_IN_TASKS": "synthesize"})
    browser = start_browser(work / "profile")
    try:
        browser.get(f"http://127.0.0.1:{port}/")
        wait_for(lambda: len(browser.find_elements(By.CLASS_NAME, "tg-view-marker")) == 4, 60, what="the four views")
        yield browser, work
    finally:
        browser.quit()
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def text(browser, element_id: str) -> str:
    found = browser.find_elements(By.ID, element_id)
    return found[0].text if found else ""


def view(browser, name: str):
    return browser.find_element(By.ID, f"tg-view-{name}").find_element(By.XPATH, "..")


def volume_count(browser) -> int:
    return int(text(browser, "tg-volume-count").split()[0])


def set_field(browser, element_id: str, value) -> None:
    field = browser.find_element(By.ID, element_id)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", field)
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(str(value))
    field.send_keys(Keys.TAB)
    time.sleep(0.3)


def choose(browser, element_id: str, value: str) -> None:
    """Pick ``value`` in the select ``element_id``: open its menu and click the item."""
    field = browser.find_element(By.ID, element_id)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", field)
    ActionChains(browser).move_to_element(field.find_element(By.XPATH, "./ancestor::div[contains(@class, 'v-field')]")).click().perform()
    item = wait_for(lambda: [i for i in browser.find_elements(By.CSS_SELECTOR, ".v-list-item") if i.text.strip() == value and i.is_displayed()],
                    10, what=f"the item {value} of {element_id}")[0]
    time.sleep(0.5)  # the menu opens with a transition: its items move until it ends
    browser.execute_script("arguments[0].scrollIntoView({block: 'nearest'});", item)
    item.click()
    time.sleep(0.5)


def box_centre(browser) -> np.ndarray:
    match = re.search("centre " + POINT, text(browser, "tg-box"))
    assert match, text(browser, "tg-box")
    return np.array([float(g) for g in match.groups()])


def upload(browser, path) -> None:
    browser.find_element(By.CSS_SELECTOR, "#tg-upload, input[type=file]").send_keys(str(path))


def test_the_page_has_the_panels_and_binds_localhost(app):
    browser, work = app
    body = browser.find_element(By.TAG_NAME, "body").text
    for panel in ("Inputs", "Resection box", "Tumor concentration", "Inpainting", "Post-operative prediction", "Follow-up", "Synthesize"):
        assert panel in body
    assert {m.get_attribute("id") for m in browser.find_elements(By.CLASS_NAME, "tg-view-marker")} == {
        "tg-view-Red", "tg-view-Yellow", "tg-view-Green", "tg-view-ThreeD"}
    # the form is built from the settings schemas: every field shows its default and carries its range
    from tumorgen_slicer.panel_settings import FIELDS_BY_KEY
    from tumorgen_slicer.web import FORM_KEYS, page_key

    for key in FORM_KEYS:
        setting = FIELDS_BY_KEY[key].setting
        field = browser.find_element(By.ID, page_key(key))
        if setting.type in (int, float) and setting.choices is None and setting.default is None:  # optional: empty until set
            assert field.get_attribute("value") == "", key
        elif setting.type in (int, float) and setting.choices is None:
            assert float(field.get_attribute("value")) == setting.default, key
            assert float(field.get_attribute("min")) == setting.minimum and float(field.get_attribute("max")) == setting.maximum, key
        elif setting.type is bool:
            assert field.is_selected() == setting.default, key
    assert "http://127.0.0.1:" in (work / "server.log").read_text()
    assert volume_count(browser) == 0
    # bound to loopback only: the machine's other addresses do not answer on the app's port
    import socket
    from urllib.parse import urlparse

    port = urlparse(browser.current_url).port
    import psutil

    others = {a.address for addrs in psutil.net_if_addrs().values() for a in addrs
              if a.family == socket.AF_INET and not a.address.startswith("127.")}
    for address in others:
        with socket.socket() as probe:
            probe.settimeout(2)
            assert probe.connect_ex((address, port)) != 0, f"the app answers on {address}"


def test_bad_uploads_show_an_error_and_leave_the_scene_unchanged(app, tmp_path):
    import SimpleITK as sitk

    browser, _ = app
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    upload(browser, notes)
    wait_for(lambda: "unsupported file type" in text(browser, "tg-error"), 30, what="the type error")
    assert text(browser, "tg-error").startswith("notes.txt: unsupported file type")

    flat = tmp_path / "slice.nii.gz"
    sitk.WriteImage(sitk.Image(16, 16, sitk.sitkFloat32), str(flat))
    upload(browser, flat)
    wait_for(lambda: "3D" in text(browser, "tg-error"), 30, what="the dimension error")

    big = tmp_path / "big.nii"
    sitk.WriteImage(sitk.Image(128, 128, 32, sitk.sitkFloat32), str(big))  # 2 MiB, over the server's 1 MiB limit
    upload(browser, big)
    wait_for(lambda: "over the 1 MiB limit" in text(browser, "tg-error"), 30, what="the size error")
    assert volume_count(browser) == 0 and text(browser, "tg-inputs") == ""


def test_predict_says_what_it_lacks_and_has_no_case_to_compare_yet(app):
    browser, _ = app
    assert browser.find_element(By.ID, "tg_side_by_side").get_attribute("disabled") is not None
    click(browser, "tg_predict")
    wait_for(lambda: text(browser, "tg-error") == "choose a t1n input volume first (or load the sample)", 30,
             what="the prediction's error")
    assert browser.find_elements(By.ID, "tg_predict") and volume_count(browser) == 0


def test_load_the_sample_and_drag_the_box_in_a_view(app):
    browser, _ = app
    click(browser, "tg_load_sample")
    wait_for(lambda: "t1n: Sample t1n" in text(browser, "tg-inputs"), 120, what="the sample")
    assert volume_count(browser) == 7 and text(browser, "tg-error") == ""
    click(browser, "tg_create_box")
    wait_for(lambda: "centre" in text(browser, "tg-box"), 30, what="the box")
    before = box_centre(browser)
    time.sleep(1.5)
    red = view(browser, "Red")
    # The views frame the sample, and the new box sits in its middle: grab the box's centre handle and drag it.
    drag = ActionChains(browser).move_to_element_with_offset(red, 0, 0).pause(0.5).click_and_hold().pause(0.3)
    for _ in range(10):
        drag = drag.move_by_offset(6, 4).pause(0.05)
    drag.pause(0.3).release().perform()
    wait_for(lambda: np.any(np.abs(box_centre(browser) - before) > 1.0), 30, what="the box to move on the server")
    moved = box_centre(browser) - before
    # screen right is patient left (R decreases), screen down is posterior (A decreases); the axial drag keeps S
    assert moved[0] < -5 and moved[1] < -3 and abs(moved[2]) < 1e-6, moved


def test_grow_a_tumor_from_a_click(app):
    browser, _ = app
    set_field(browser, "tg_target_volume_cm3", 3)
    click(browser, "tg_place_seed")
    time.sleep(1.0)
    red = view(browser, "Red")
    ActionChains(browser).move_to_element_with_offset(red, -60, -80).pause(0.3).click().perform()
    wait_for(lambda: "seed at RAS" in text(browser, "tg-seed"), 30, what="the seed")
    seed = np.array([float(g) for g in re.search(POINT, text(browser, "tg-seed")).groups()])
    assert seed[0] > 5 and seed[1] > 5  # up and left of the middle: right (R > 0) and anterior
    before = {name: image_of(view(browser, name)) for name in ("Yellow", "Green")}
    click(browser, "tg_grow")
    wait_for(lambda: "cm³" in text(browser, "tg-tumor"), 120, what="the grown tumor")
    grown = float(re.search(r": ([\d.]+) cm³", text(browser, "tg-tumor")).group(1))
    assert 3.0 <= grown < 4.5 and text(browser, "tg-error") == ""
    # every view shows the tumor at once: the sagittal and coronal views moved to it (the axial one was through the
    # click already), and the 3D view shows it as a surface (its oedema green) instead of the slices
    time.sleep(2.0)
    for name, image in before.items():
        moved = np.abs(image_of(view(browser, name)) - image).mean(axis=-1) > 8
        assert moved.mean() > 0.05, (name, moved.mean())
    three_d = image_of(view(browser, "ThreeD"))
    h, w = three_d.shape[:2]
    middle = three_d[h // 4: 3 * h // 4, w // 4: 3 * w // 4]
    green = (middle[..., 1] > middle[..., 0] + 60) & (middle[..., 1] > middle[..., 2] + 60)
    assert green.mean() > 0.01, green.mean()


def test_healthy_inpainting_shows_the_result_in_the_views(app):
    browser, work = app
    set_field(browser, "tg_steps", 5)
    set_field(browser, "tg_resample", 1)
    set_field(browser, "tg_samples", 2)
    choose(browser, "tg_fallback", "off")  # untrained models fall behind the classical fill: both samples would be the fill
    red = view(browser, "Red")
    count = volume_count(browser)
    click(browser, "tg_apply")
    wait_for(lambda: browser.find_elements(By.ID, "tg_cancel"), 30, what="Apply to turn into Cancel")
    wait_for(lambda: browser.find_elements(By.ID, "tg_apply"), 300, what="the inpainting to finish")
    wait_for(lambda: "inpainted: Inpainting healthy 1 inpainted" in text(browser, "tg-results"), 30, what="the result node")
    assert "std: Inpainting healthy 1 std" in text(browser, "tg-results") and "mask" in text(browser, "tg-results")
    assert volume_count(browser) == count + 3 and text(browser, "tg-error") == ""
    assert "self-check on known tissue" in text(browser, "tg-check") and "FALLBACK" not in text(browser, "tg-check")
    time.sleep(2.0)
    after = image_of(red)
    if os.environ.get("TUMORGEN_WEB_SCREENSHOT"):
        browser.save_screenshot(os.environ["TUMORGEN_WEB_SCREENSHOT"])

    # the uncertainty overlay goes off, then the before/after toggle swaps the image under it (the views stay where they
    # are): the box's pixels change, the rest does not, and the views are centred on the box
    assert "(the views show the result)" in text(browser, "tg-results")
    click(browser, "tg-show-std")
    time.sleep(2.0)
    plain = image_of(red)
    assert (np.abs(plain - after).mean(axis=-1) > 8).mean() > 0.002
    click(browser, "tg-before-after")
    wait_for(lambda: "(the views show the input)" in text(browser, "tg-results"), 30, what="the before view")
    time.sleep(2.0)
    swapped = np.abs(image_of(red) - plain).mean(axis=-1) > 8
    assert 0.002 < swapped.mean() < 0.2, swapped.mean()
    rows, columns = np.nonzero(swapped)
    assert abs(rows.mean() / swapped.shape[0] - 0.5) < 0.15 and abs(columns.mean() / swapped.shape[1] - 0.5) < 0.15
    # and back to the result: as it was with the overlay off (the overlay follows its own switch only, not this one's)
    click(browser, "tg-before-after")
    wait_for(lambda: "(the views show the result)" in text(browser, "tg-results"), 30, what="the result again")
    time.sleep(2.0)
    back = np.abs(image_of(red) - plain).mean(axis=-1) > 8
    assert back.mean() < 0.001, back.mean()
    assert not browser.find_element(By.CSS_SELECTOR, "#tg-show-std").is_selected()
    click(browser, "tg-show-std")  # the overlay on again for what follows
    time.sleep(1.0)


def test_cancel_stops_a_run_and_loads_nothing(app):
    browser, _ = app
    set_field(browser, "tg_steps", 400)
    set_field(browser, "tg_resample", 5)
    count = volume_count(browser)
    click(browser, "tg_apply")
    cancel = wait_for(lambda: browser.find_elements(By.ID, "tg_cancel"), 30, what="the Cancel button")
    time.sleep(3.0)
    cancel[0].click()
    wait_for(lambda: "cancelled" in text(browser, "tg-message"), 60, what="the cancellation")
    assert browser.find_elements(By.ID, "tg_apply") and volume_count(browser) == count


def test_draw_a_box_with_two_clicks(app):
    browser, _ = app
    click(browser, "tg_draw_box")
    time.sleep(1.0)
    red = view(browser, "Red")
    place = ActionChains(browser).move_to_element_with_offset(red, -40, -40).pause(0.3).click().pause(0.3)
    for _ in range(10):
        place = place.move_by_offset(8, 8).pause(0.05)
    place.pause(0.3).click().perform()
    wait_for(lambda: "size" in text(browser, "tg-box") and "size (0.0" not in text(browser, "tg-box"), 30, what="the drawn box")
    size = np.array([float(g) for g in re.search("size " + POINT, text(browser, "tg-box")).groups()])
    # 80 px on each screen axis at the axial view's scale (about 2.8 px per mm): a box of about 28 mm
    assert np.all(size > 15) and np.all(size < 45), size


def test_the_followup_panel_keeps_the_series_in_day_order_plots_it_and_checks_it(app):
    browser, _ = app
    assert text(browser, "tg-followup-day-text") == "latest + 90 (add the series first)"
    set_field(browser, "tg_series_day", 60)
    click(browser, "tg_add_current")  # the tumor grown from the click
    wait_for(lambda: len(browser.find_elements(By.CLASS_NAME, "tg-series-row")) == 1, 30, what="the measured row")
    set_field(browser, "tg_series_day", 0)
    set_field(browser, "tg_series_size", 1.5)
    click(browser, "tg_add_row")
    wait_for(lambda: len(browser.find_elements(By.CLASS_NAME, "tg-series-row")) == 2, 30, what="the second row")
    rows = [r.text.split() for r in browser.find_elements(By.CLASS_NAME, "tg-series-row")]
    assert rows[0] == ["0", "1.5"] and rows[1][0] == "60" and 3.0 <= float(rows[1][1]) < 4.5, rows
    assert text(browser, "tg-followup-day-text") == "latest + 90 = day 150"
    # the day slider spans the latest scan (day 60) to a year after it, its thumb on day 150 a quarter of the way along
    thumb = browser.find_element(By.XPATH, "//*[@id='tg-followup-day']/ancestor::div[contains(@class, 'v-slider')][1]"
                                           "//div[contains(@class, 'v-slider-thumb') and @role='slider']")
    wait_for(lambda: thumb.get_attribute("aria-valuemin") == "60", 30, what="the slider's range")
    assert [thumb.get_attribute(f"aria-value{k}") for k in ("min", "max", "now")] == ["60", "420", "150"]
    assert "--v-slider-thumb-position: 25%" in thumb.get_attribute("style"), thumb.get_attribute("style")
    # the plot: the two measured sizes as points, the default day as a line
    plot = browser.find_element(By.ID, "tg-forecast-plot")
    assert len(plot.find_elements(By.CSS_SELECTOR, "circle.observed")) == 2 and plot.find_elements(By.CSS_SELECTOR, "line.day")

    click(browser, "tg-remove-row-0")
    wait_for(lambda: len(browser.find_elements(By.CLASS_NAME, "tg-series-row")) == 1, 30, what="the row to go")
    click(browser, "tg_predict_followup")
    wait_for(lambda: text(browser, "tg-error") == "the series table: a follow-up needs at least two time points, got 1", 30,
             what="the series' error")
    assert browser.find_elements(By.ID, "tg_predict_followup") and text(browser, "tg-followup") == ""


def test_synthesize_draws_the_tumor_into_four_contrasts_and_shows_them(app):
    browser, _ = app
    # the labels: no segmentation was chosen, so the tumor grown from the click
    assert text(browser, "tg-synthesis-labels") == "Labels: concentration: Growth 1 concentration"
    set_field(browser, "tg_synthesis_steps", 3)
    set_field(browser, "tg_synthesis_seed", 4)
    red = view(browser, "Red")
    before = image_of(red)
    count = volume_count(browser)
    click(browser, "tg_synthesize")
    wait_for(lambda: text(browser, "tg-synthesis").startswith("t1n, t1c, t2w, t2f from concentration 'Growth 1 concentration': "),
             120, what="the synthesis")
    assert text(browser, "tg-synthesis").endswith("cm³ (3 steps, seed 4)") and text(browser, "tg-error") == ""
    assert volume_count(browser) == count + 5 and browser.find_elements(By.ID, "tg_synthesize")
    results = text(browser, "tg-results")
    for key in ("t1n", "t1c", "t2w", "t2f", "seg"):
        assert f"{key}: Sample t1n synthetic {key}" in results, results
    assert results.endswith("(the views show the result)")
    time.sleep(2.0)
    changed = np.abs(image_of(red) - before).mean(axis=-1) > 8
    assert changed.mean() > 0.002, changed.mean()  # the synthetic t1c with the labels' outlines, through the tumor


def test_an_uploaded_label_map_brings_the_views_to_it(app, tmp_path):
    """Upload as seg: the slice views go through the labels at once (as after a run), not through the image's middle."""
    from tumorgen.volume_io import read_volume, write_volume

    browser, work = app
    t1n = read_volume(next(work.glob("*simulate*/outputs/*t1n*")))
    grid = t1n.grid
    labels = np.zeros(grid.size, np.uint8)
    # a 10 mm cube of label 4 (drawn light blue; no other label map here has it) in the brain, far below the middle and
    # beside it
    brain = np.argwhere(np.asarray(t1n.array) > 0)
    centre = np.round(np.percentile(brain, 30, axis=0)).astype(int)
    labels[tuple(slice(c - 2, c + 3) for c in centre)] = 4
    path = write_volume(t1n.with_array(labels), tmp_path / "offcentre-seg.nii.gz")
    choose(browser, "tg-upload-role", "seg")
    upload(browser, path)
    wait_for(lambda: "seg: offcentre-seg" in text(browser, "tg-inputs"), 60, what="the uploaded label map")
    assert text(browser, "tg-error") == ""
    time.sleep(2.5)
    for name in ("Red", "Yellow", "Green"):
        image = image_of(view(browser, name))
        blue = (image[..., 2] > image[..., 0] + 80) & (image[..., 2] > image[..., 1] + 30)
        assert blue.sum() > 20, (name, blue.sum())
        rows, columns = np.nonzero(blue)
        assert abs(rows.mean() / blue.shape[0] - 0.5) < 0.15 and abs(columns.mean() / blue.shape[1] - 0.5) < 0.15, name
