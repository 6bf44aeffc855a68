"""Draw the pictures of the user guides (docs/guides/*.md) from the running software.

    .venv/bin/python Testing/tools/guide_pictures.py [--out Resources/Screenshots/guides] [--only neurosurgeon,radiologist,...]
                                                     [--keep DIR]   (keep the runs' files there)

Each guide's pictures come from what a user of that guide runs, with small, fast settings (few denoising steps, one or
two samples) so that everything runs in minutes on two CPU cores:

* the web app (``tumorgen web`` in Debian's headless Chromium, driven as Testing/tools/web_screenshot.py drives it): the
  sample, a seed, growth, an edit, a drawn box, the post-operative prediction, the follow-up panel with a size series,
  with and without radiotherapy, synthesis from an uploaded label map; each picture is cropped to the panel and the
  views the step is about;
* the desktop module's panels as Testing/tools/panel_diagram.py draws them from TumorGen/Resources/UI/TumorGen.ui, with
  each field's default from the settings schema (no 3D Slicer runs on the build machines);
* the command line on small inputs (``tumorgen forecast``, ``grow``, ``dataset --n 2`` on a local Ray, ``simulate``,
  ``train``, ``inpaint``, ``evaluate``) and its outputs plotted with matplotlib; the calibration plot is drawn from
  Resources/Benchmarks/followup.json.

Guides: neurosurgeon, radiologist and annotator need the web app (Debian's chromium and chromium-driver and the web
extra); researcher needs the command line only. Progress goes to stdout with the time of each step; the run ends with
the number of pictures written (exit status 1 when one is missing). All four guides took 11 minutes on two CPU cores
shared with a training job (neurosurgeon 3, radiologist 2, annotator 4.5, researcher 1.5). Every picture a guide links is in :data:`PICTURES` (Testing/web/test_guide_pictures.py
checks them).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Testing" / "support"))
sys.path.insert(0, str(ROOT / "Testing" / "tools"))
sys.path.insert(0, str(ROOT / "TumorGenLib"))

DEFAULT_OUT = ROOT / "Resources" / "Screenshots" / "guides"

#: The pictures of each guide, in the order the guide shows them (file names under --out).
PICTURES: dict[str, tuple[str, ...]] = {
    "neurosurgeon": (
        "neurosurgeon-1-sample.png", "neurosurgeon-2-seed.png", "neurosurgeon-3-grow.png", "neurosurgeon-4-edit.png",
        "neurosurgeon-5-box.png", "neurosurgeon-6-postop.png", "neurosurgeon-7-uncertainty.png", "neurosurgeon-8-side-by-side.png",
        "neurosurgeon-9-whatif.png", "neurosurgeon-panels.png",
    ),
    "radiologist": (
        "radiologist-1-series.png", "radiologist-2-forecast.png", "radiologist-3-followup.png", "radiologist-4-radiotherapy.png",
        "radiologist-5-time-points.png", "radiologist-6-calibration.png", "radiologist-panels.png",
    ),
    "annotator": (
        "annotator-1-labels.png", "annotator-2-synthesize.png", "annotator-3-contrasts.png", "annotator-4-augment.png",
        "annotator-5-dataset.png", "annotator-panels.png",
    ),
    "researcher": (
        "researcher-1-case.png", "researcher-2-loss.png", "researcher-3-evaluate.png", "researcher-4-weights.png",
    ),
}
WEB_GUIDES = ("neurosurgeon", "radiologist", "annotator")

#: Label colours of the matplotlib pictures (BraTS: 1 necrotic core, 2 oedema, 3 enhancing, 4 cavity), as the simulator's previews.
LABEL_COLOURS = {1: (0.9, 0.15, 0.15), 2: (0.2, 0.85, 0.3), 3: (0.25, 0.45, 1.0), 4: (0.85, 0.3, 0.85)}
BACKGROUND = (18, 18, 18)
START = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - START:6.1f} s] {message}", flush=True)


def font(size: int):
    from matplotlib import font_manager
    from PIL import ImageFont

    return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)


def compose(parts, out: Path, title: str | None = None, gap: int = 10) -> Path:
    """Paste images side by side on the app's dark background, each with an optional caption above it."""
    from PIL import Image, ImageDraw

    caption_font, title_font = font(15), font(17)
    caption_h = 26 if any(c for _, c in parts) else 0
    title_h = 30 if title else 0
    width = sum(im.width for im, _ in parts) + gap * (len(parts) + 1)
    height = max(im.height for im, _ in parts) + caption_h + title_h + 2 * gap
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((gap, gap), title, font=title_font, fill=(235, 235, 235))
    x = gap
    for image, caption in parts:
        if caption:
            draw.text((x + 2, gap + title_h + 3), caption, font=caption_font, fill=(210, 210, 210))
        canvas.paste(image.convert("RGB"), (x, gap + title_h + caption_h))
        x += image.width + gap
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out)
    say(f"wrote {out.name} ({canvas.width}×{canvas.height})")
    return out


def coloured_box(image, spread: int = 50) -> tuple[int, int, int, int]:
    """The box around what is coloured in a view's picture (overlays, outlines, the box): grey anatomy is not."""
    import numpy as np
    from scipy import ndimage

    pixels = np.asarray(image.convert("RGB"), dtype=int)
    mask = ndimage.binary_dilation(pixels.max(axis=2) - pixels.min(axis=2) > spread, iterations=6)
    mask[:60, :60] = False  # the view's own corner icons
    labels, n = ndimage.label(mask)
    if n == 0:
        return 0, 0, image.width, image.height
    largest = 1 + int(np.argmax(ndimage.sum(mask, labels, range(1, n + 1))))
    rows, cols = np.nonzero(labels == largest)
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


def zoom(image, box, margin: int = 60, scale: float = 1.8):
    """``image`` cut to ``box`` plus ``margin`` pixels and enlarged ``scale`` times (nearest pixels stay sharp)."""
    from PIL import Image

    left, top, right, bottom = box
    cut = image.crop((max(0, left - margin), max(0, top - margin), min(image.width, right + margin), min(image.height, bottom + margin)))
    return cut.resize((round(cut.width * scale), round(cut.height * scale)), Image.LANCZOS)


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> str:
    """One ``tumorgen`` command in its own process, as a user runs it; its stdout."""
    command = [sys.executable, "-m", "tumorgen.cli.main", *map(str, args)]
    say("$ tumorgen " + " ".join(map(str, args)))
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"tumorgen {args[0]} failed ({proc.returncode}): {(proc.stderr or proc.stdout)[-2000:]}")
    return proc.stdout


# ----------------------------------------------------------------------------------------------- the web app


class WebApp:
    """``tumorgen web`` and a headless Chromium on it, with the helpers the pictures need."""

    def __init__(self, work: Path, width: int = 1500, height: int = 1150):
        from browser_testing import free_port, start_browser, start_server, wait_for
        from selenium.webdriver.common.by import By

        self.By, self.wait_for = By, wait_for
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        port = free_port()
        say("starting tumorgen web and Chromium")
        self.server = start_server(port, work)
        self.browser = None
        try:
            self.browser = start_browser(work / "profile", width, height)
            self.browser.get(f"http://127.0.0.1:{port}/")
            self.wait(lambda: len(self.browser.find_elements(By.CLASS_NAME, "tg-view-marker")) == 4, 60, "the four views")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        try:
            if self.browser is not None:
                self.browser.quit()
        finally:
            os.killpg(self.server.pid, signal.SIGTERM)
            self.server.wait(timeout=30)

    # -- finding and reading
    def wait(self, predicate, timeout: float, what: str):
        return self.wait_for(predicate, timeout, what=what)

    def el(self, element_id: str):
        return self.browser.find_element(self.By.ID, element_id)

    def text(self, element_id: str) -> str:
        """A line of the page; for one in a closed panel, the page state behind it (``tg-tumor`` → ``tg_tumor``)."""
        found = self.browser.find_elements(self.By.ID, element_id)
        if found:
            return found[0].text
        value = self.state(element_id.replace("-", "_"))
        return value if isinstance(value, str) else ""

    def state(self, key: str):
        return self.browser.execute_script("return window.trame.state.get(arguments[0])", key)

    def view(self, name: str):
        return self.el(f"tg-view-{name}").find_element(self.By.XPATH, "..")

    def panel(self, title: str):
        for panel in self.browser.find_elements(self.By.CSS_SELECTOR, ".v-expansion-panel"):
            if panel.find_element(self.By.CSS_SELECTOR, ".v-expansion-panel-title").text.strip() == title:
                return panel
        raise LookupError(f"no panel {title!r}")

    # -- acting
    def open_panels(self, *titles: str) -> None:
        """Open these panels of the drawer and close the others (a closed panel's controls are not on the page)."""
        order = ["Inputs", "Resection box", "Tumor concentration", "Inpainting", "Post-operative prediction", "Follow-up", "Synthesize"]
        self.browser.execute_script("window.trame.state.set('tg_panels', arguments[0])", [order.index(t) for t in titles])
        time.sleep(1.0)

    def scroll(self, element, block: str = "center") -> None:
        self.browser.execute_script(f"arguments[0].scrollIntoView({{block: '{block}'}});", element)
        time.sleep(0.3)

    def click(self, element_id: str) -> None:
        element = self.el(element_id)
        self.scroll(element)
        element.click()
        self.rest()

    def rest(self, seconds: float = 0.6) -> None:
        """Move the pointer onto the title bar, so that no tooltip or hover shows in a picture."""
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(self.browser).move_to_element(self.browser.find_element(self.By.TAG_NAME, "header")).perform()
        self.browser.execute_script("document.activeElement && document.activeElement.blur && document.activeElement.blur();")
        time.sleep(seconds)

    def set_field(self, element_id: str, value) -> None:
        from selenium.webdriver.common.keys import Keys

        field = self.el(element_id)
        self.scroll(field)
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(str(value))
        field.send_keys(Keys.TAB)
        time.sleep(0.3)

    def choose(self, element_id: str, value: str) -> None:
        from selenium.webdriver.common.action_chains import ActionChains

        field = self.el(element_id)
        self.scroll(field)
        ActionChains(self.browser).move_to_element(field.find_element(self.By.XPATH, "./ancestor::div[contains(@class, 'v-field')]")).click().perform()
        self.wait(lambda: [i for i in self.browser.find_elements(self.By.CSS_SELECTOR, ".v-list-item") if i.text.strip() == value and i.is_displayed()],
                  10, f"the item {value} of {element_id}")[0].click()
        self.rest(0.5)

    def click_view(self, name: str, dx: int, dy: int) -> None:
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(self.browser).move_to_element_with_offset(self.view(name), dx, dy).pause(0.3).click().perform()

    def run(self, button_id: str, what: str, timeout: float = 900) -> float:
        """Press a run button and wait until the run has ended; its error, if any, stops the script."""
        started = time.monotonic()
        self.click(button_id)
        self.wait(lambda: self.state("tg_busy") or self.state("tg_error") or time.monotonic() - started > 5, 30, f"{what} to start")
        self.wait(lambda: not self.state("tg_busy"), timeout, f"{what} to finish")
        if self.state("tg_error"):
            raise RuntimeError(f"{what}: {self.state('tg_error')}")
        time.sleep(2.5)  # the views' next frames
        self.rest()
        seconds = time.monotonic() - started
        say(f"{what}: {seconds:.0f} s — {self.text('tg-message')}")
        return seconds

    # -- pictures
    def screen(self, show: str | None = None):
        """The page as shown; ``show``: first scroll this control to the top of the drawer."""
        from PIL import Image

        if show is not None:
            self.scroll(self.el(show), "start")
        self.rest(0.3)
        return Image.open(io.BytesIO(self.browser.get_screenshot_as_png())).convert("RGB")

    def rect(self, element) -> tuple[float, float, float, float]:
        r = self.browser.execute_script("const r = arguments[0].getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom];", element)
        return tuple(r)

    def crop(self, screen, *elements, pad: int = 4, clip=None):
        """The part of ``screen`` that holds ``elements`` (their union), inside ``clip`` (an element) when given."""
        rects = [self.rect(e) for e in elements]
        left, top = min(r[0] for r in rects) - pad, min(r[1] for r in rects) - pad
        right, bottom = max(r[2] for r in rects) + pad, max(r[3] for r in rects) + pad
        if clip is not None:
            c = self.rect(clip)
            left, top, right, bottom = max(left, c[0]), max(top, c[1]), min(right, c[2]), min(bottom, c[3])
        footer = self.browser.find_elements(self.By.TAG_NAME, "footer")
        floor = self.rect(footer[0])[1] if footer else screen.height
        left, top = max(0, int(left)), max(0, int(top))
        right, bottom = min(screen.width, int(right)), min(screen.height, int(floor), int(bottom))
        return screen.crop((left, top, right, bottom))

    def drawer(self):
        return self.browser.find_element(self.By.CSS_SELECTOR, "nav.v-navigation-drawer")

    def panel_part(self, screen, *ids: str):
        """The drawer's controls ``ids`` (their union, each with its label), as shown."""
        elements = []
        for element_id in ids:
            element = self.el(element_id)
            if element.tag_name in ("input", "textarea"):  # a form field: the whole control, its label included
                element = element.find_element(self.By.XPATH, "./ancestor::div[contains(@class, 'v-input')][1]")
            elements += [element, *element.find_elements(self.By.TAG_NAME, "svg")]
        return self.crop(screen, *elements, pad=8, clip=self.drawer())

    def zoomed(self, screen, *views: tuple[str, str], scale: float = 1.6):
        """Each view of ``views`` ((name, caption) pairs) cut to what is coloured in it (the result's overlays and
        outlines, the box) and enlarged: (image, caption) parts for :func:`compose`."""
        parts = []
        for name, caption in views:
            image = self.views(screen, name)
            parts.append((zoom(image, coloured_box(image), margin=50, scale=scale), caption))
        return parts

    def views(self, screen, *names: str):
        return self.crop(screen, *[self.view(n) for n in names], pad=0)

    def tumor_on_screen(self, view: str = "Red") -> tuple[int, int, int, int]:
        """Where the tumor's colour map shows in a view: its box (left, top, right, bottom) in page pixels."""
        import numpy as np
        from scipy import ndimage

        element = self.view(view)
        left, top, right, bottom = map(int, self.rect(element))
        pixels = np.asarray(self.screen().crop((left, top, right, bottom)), dtype=int)
        r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
        labels, n = ndimage.label((r >= g) & (r > b + 60) & (r > 110))  # the red-to-yellow colour map; grey, green, blue are not
        if n == 0:
            raise RuntimeError(f"no tumor to be seen in the {view} view")
        largest = 1 + int(np.argmax(ndimage.sum(np.ones_like(labels), labels, range(1, n + 1))))
        rows, cols = np.nonzero(labels == largest)
        return left + int(cols.min()), top + int(rows.min()), left + int(cols.max()), top + int(rows.max())

    def offset(self, view: str, x: float, y: float) -> tuple[int, int]:
        """Page point (x, y) as an offset from the view's centre (what selenium's pointer moves take)."""
        left, top, right, bottom = self.rect(self.view(view))
        return int(round(x - (left + right) / 2)), int(round(y - (top + bottom) / 2))

    def scaled(self, dx: float, dy: float) -> tuple[int, int]:
        """An offset from the axial view's centre given for a view 791 px high (a 1500×1000 window), in this window: the
        views frame the sample to their height, so the same offset is the same place in the brain."""
        factor = self.view("Red").rect["height"] / 791.0
        return int(round(dx * factor)), int(round(dy * factor))

    def place_seed(self, dx: int, dy: int) -> str:
        """Place the seed with a click ``(dx, dy)`` pixels from the axial view's centre."""
        before = self.text("tg-seed")
        self.click("tg_place_seed")
        time.sleep(0.7)
        self.click_view("Red", dx, dy)
        self.wait(lambda: "seed at" in self.text("tg-seed") and self.text("tg-seed") != before, 30, "the seed")
        self.rest()
        return self.text("tg-seed")

    def load_sample(self) -> None:
        self.open_panels("Inputs")
        self.run("tg_load_sample", "load the sample", 300)
        self.wait(lambda: "t1n: Sample t1n" in self.text("tg-inputs"), 60, "the sample's inputs")

    def grow_tumor(self) -> None:
        """A 12 cm³ tumor from a seed in the right frontal white matter (the screen's left: radiological convention)."""
        self.open_panels("Tumor concentration")
        self.place_seed(*self.scaled(-60, -80))
        self.run("tg_grow", "grow from the seed", 300)


# ----------------------------------------------------------------------------------------------- desktop panels


def draw_panels(titles: tuple[str, ...], out: Path, caption: str) -> Path:
    """The desktop module's panels ``titles`` as Testing/tools/panel_diagram.py draws them, with each field's default."""
    import xml.etree.ElementTree as ET

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    import panel_diagram
    from tumorgen_slicer.panel_settings import FIELDS_BY_KEY

    root = ET.parse(panel_diagram.UI).getroot()
    defaults = {}
    for widget in root.iter("widget"):
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                key = "".join(prop.itertext()).strip()
                if key in FIELDS_BY_KEY and FIELDS_BY_KEY[key].setting.default is not None:
                    defaults[widget.get("name")] = FIELDS_BY_KEY[key].setting.default

    original = panel_diagram.describe

    def describe(widget) -> str:  # the diagram's text, with the schema's default in place of the placeholder
        text = original(widget)
        value = defaults.get(widget.get("name"))
        if value is None:
            return text
        if widget.get("class") in ("QSpinBox", "QDoubleSpinBox"):
            return text.replace("0.0", f"{value:g}", 1)
        if widget.get("class") == "QCheckBox":
            return "[x]" if value else "[ ]"
        if widget.get("class") == "QComboBox":
            return text.replace(f"< {value}", f"< *{value}*", 1)
        return text

    panel_diagram.describe = describe
    try:
        blocks = [b for b in panel_diagram.panels() if b[0] in titles]
    finally:
        panel_diagram.describe = original
    blocks = [(t, False, lines) for t, _, lines in blocks]  # drawn open: the guide is about their fields
    n_lines = sum(1 + len(lines) for _, _, lines in blocks) + 0.6 * len(blocks) + 1.5
    fig = plt.figure(figsize=(7.5, 0.22 * n_lines + 0.5), dpi=110)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, 1)
    ax.set_ylim(n_lines + 0.5, 0)
    ax.axis("off")
    ax.text(0.03, 0.5, caption, fontsize=8.5, color="#444", va="center", style="italic")
    y = 1.9
    for title, _, lines in blocks:
        height = 1 + len(lines)
        ax.add_patch(FancyBboxPatch((0.02, y - 0.4), 0.96, height + 0.2, boxstyle="round,pad=0.01", fc="#eef2f7", ec="#5b7aa6"))
        ax.text(0.04, y + 0.1, "▾ " + title, fontsize=9.5, weight="bold", color="#1d3557", va="center")
        for i, line in enumerate(lines):
            ax.text(0.07, y + 1.1 + i, line, fontsize=7.2, family="monospace", va="center")
        y += height + 0.6
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    say(f"wrote {out.name} (desktop panels: {', '.join(titles)})")
    return out


# ----------------------------------------------------------------------------------------------- image helpers


def read(path):
    from tumorgen.volume_io import read_volume

    return read_volume(str(path))


def axial(volume, k: int):
    """Axial slice ``k`` as the views show it: anterior at the top, the patient's right on the left (radiological)."""
    import numpy as np

    plane = np.asarray(volume.array[:, :, k], dtype=float)  # [i, j]; the grid's direction says where i and j point (LPS)
    direction = volume.grid.direction
    if direction[0] < 0:  # i points to the patient's right: flip, so that columns run right → left
        plane = plane[::-1, :]
    if direction[4] < 0:  # j points anterior: flip, so that rows run anterior → posterior
        plane = plane[:, ::-1]
    return plane.T


def label_overlay(ax, labels2d, alpha: float = 0.55) -> None:
    import numpy as np

    rgba = np.zeros(labels2d.shape + (4,))
    for value, colour in LABEL_COLOURS.items():
        rgba[labels2d == value] = (*colour, alpha)
    ax.imshow(rgba, interpolation="nearest")


def tumor_slice(labels) -> int:
    import numpy as np

    counts = (np.asarray(labels.array) > 0).sum(axis=(0, 1))
    return int(np.argmax(counts)) if counts.any() else labels.array.shape[2] // 2


def bbox_2d(mask2d, margin: int, shape):
    import numpy as np

    rows, cols = np.nonzero(mask2d)
    r0, r1 = max(0, rows.min() - margin), min(shape[0], rows.max() + margin + 1)
    c0, c1 = max(0, cols.min() - margin), min(shape[1], cols.max() + margin + 1)
    return slice(r0, r1), slice(c0, c1)


def brain_box(image2d, margin: int = 4):
    import numpy as np

    return bbox_2d(image2d > np.percentile(image2d[image2d > 0], 5) if (image2d > 0).any() else image2d >= 0, margin, image2d.shape)


def figure(n_cols: int, n_rows: int = 1, size: float = 2.6, images: bool = True):
    """A matplotlib figure of ``n_rows`` × ``n_cols`` panels; ``images``: without axes ticks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(n_rows, n_cols, figsize=(size * n_cols, size * n_rows + 0.35), dpi=110, squeeze=False)
    for ax in axes.ravel() if images else ():
        ax.set_xticks([])
        ax.set_yticks([])
    return fig, axes


def save(fig, out: Path, what: str) -> Path:
    import matplotlib.pyplot as plt

    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, bbox_inches="tight")
    plt.close(fig)
    say(f"wrote {out.name} ({what})")
    return out


# ----------------------------------------------------------------------------------------------- the guides


def neurosurgeon(out: Path, work: Path) -> None:
    app = WebApp(work / "web")
    try:
        app.load_sample()
        screen = app.screen()
        compose([(screen.crop((0, 0, screen.width, screen.height - 24)), None)], out / "neurosurgeon-1-sample.png")

        app.open_panels("Tumor concentration")
        app.place_seed(*app.scaled(-60, -80))
        screen = app.screen(show="tg_place_seed")
        compose([(app.panel_part(screen, "tg_place_seed", "tg-seed", "tg_target_volume_cm3"), "Tumor concentration"),
                 (app.views(screen, "Red"), "click in a view: the seed")], out / "neurosurgeon-2-seed.png")

        app.run("tg_grow", "grow from the seed", 300)
        screen = app.screen(show="tg_place_seed")
        compose([(app.panel_part(screen, "tg_place_seed", "tg_grow", "tg_new_field"), "Grow from seed"),
                 (app.views(screen, "Red", "Yellow", "Green", "ThreeD"), app.text("tg-tumor"))], out / "neurosurgeon-3-grow.png")

        # an edit: the seed moved to the tumor's front edge, a blob added there
        before = app.views(app.screen(), "Red")
        left, top, right, bottom = app.tumor_on_screen()
        app.place_seed(*app.offset("Red", left + 0.35 * (right - left), top + 2))
        app.set_field("tg_blob_sigma_mm", 4)
        app.set_field("tg_blob_amplitude", 0.8)
        volume = app.text("tg-tumor")
        app.click("tg_add_blob")
        app.wait(lambda: app.text("tg-tumor") != volume, 30, "the edit")
        time.sleep(2.5)
        screen = app.screen(show="tg_blob_sigma_mm")
        compose([(app.panel_part(screen, "tg_blob_sigma_mm", "tg_erase_blob", "tg_undo", "tg-tumor"), "Add blob, Smooth, Undo …"),
                 (before, "before the edit"), (app.views(screen, "Red"), "the seed moved, Add blob (σ 4 mm, 0.8)")],
                out / "neurosurgeon-4-edit.png")

        # the box: two clicks at opposite corners around the tumor as the axial view shows it
        from selenium.webdriver.common.action_chains import ActionChains

        app.open_panels("Resection box")
        app.click("tg_draw_box")
        time.sleep(1.5)  # the views settle after the drawer changed
        left, top, right, bottom = app.tumor_on_screen()  # the tumor's bright part: the colour map's largest patch
        (x0, y0), (x1, y1) = app.offset("Red", left - 10, top - 10), app.offset("Red", right + 10, bottom + 10)
        drag = ActionChains(app.browser).move_to_element_with_offset(app.view("Red"), x0, y0).pause(0.3).click().pause(0.3)
        for i in range(1, 11):
            drag = drag.move_to_element_with_offset(app.view("Red"), x0 + (x1 - x0) * i // 10, y0 + (y1 - y0) * i // 10).pause(0.05)
        drag.pause(0.3).click().perform()
        app.wait(lambda: "size" in app.text("tg-box") and "size (0.0" not in app.text("tg-box"), 30, "the drawn box")
        time.sleep(1.5)
        screen = app.screen(show="tg_create_box")
        compose([(app.panel_part(screen, "tg_create_box", "tg_draw_box", "tg_fit_box", "tg-box"), "Resection box"),
                 (app.views(screen, "Red"), "Draw box: two opposite corners")], out / "neurosurgeon-5-box.png")

        app.open_panels("Post-operative prediction")
        app.set_field("tg_postop_samples", 2)
        app.set_field("tg_postop_steps", 10)
        app.run("tg_predict", "post-operative prediction", 900)
        screen = app.screen(show="tg_cfg")
        compose([(app.panel_part(screen, "tg_cfg", "tg_predict", "tg-postop", "tg-retrieved", "tg_side_by_side"), "Post-operative prediction"),
                 (app.views(screen, "Red", "Yellow", "Green", "ThreeD"), app.text("tg-postop"))], out / "neurosurgeon-6-postop.png")
        with_std = app.views(screen, "Red")
        region = coloured_box(with_std)
        app.open_panels("Inpainting")
        app.click("tg-show-std")
        time.sleep(2.0)
        screen = app.screen(show="tg-before-after")
        compose([(app.panel_part(screen, "tg-before-after", "tg-show-std", "tg-results"), "Inpainting panel: the toggles"),
                 (zoom(with_std, region), "Show uncertainty on: the std of the samples"),
                 (zoom(app.views(screen, "Red"), region), "off: the prediction, the cavity's outline (blue)")],
                out / "neurosurgeon-7-uncertainty.png")
        app.click("tg-show-std")

        app.open_panels("Post-operative prediction")
        app.click("tg_side_by_side")
        time.sleep(3.0)
        screen = app.screen(show="tg_predict")
        views = [app.views(screen, name) for name in ("Red", "Yellow", "Green")]
        compose([(app.panel_part(screen, "tg_predict", "tg-postop", "tg-retrieved", "tg_side_by_side"), "Side by side"),
                 *[(zoom(view, coloured_box(view), margin=50, scale=1.5), caption) for view, caption in
                   zip(views, ("the prediction", "the retrieved case after", "and before its resection"))]],
                out / "neurosurgeon-8-side-by-side.png")
        app.click("tg_show_prediction")
        time.sleep(1.5)

        # the what-if: resect the box, then follow the residual to day 150
        app.open_panels("Follow-up")
        app.set_field("tg_series_day", 0)
        app.set_field("tg_series_size", 6)
        app.click("tg_add_row")
        app.set_field("tg_series_day", 60)
        app.click("tg_add_current")
        app.wait(lambda: len(app.browser.find_elements(app.By.CLASS_NAME, "tg-series-row")) == 2, 30, "two rows")
        app.set_field("tg_followup_samples", 1)
        box = app.el("tg_followup_resect")
        app.scroll(box)
        box.click()
        app.run("tg_predict_followup", "follow-up after resection", 900)
        screen = app.screen(show="tg-series")
        compose([(app.panel_part(screen, "tg-series", "tg_followup_resect", "tg-followup", "tg-forecast-plot"), "Follow-up, After resection"),
                 *app.zoomed(screen, ("Red", "axial, day 150"), ("Green", "coronal"))], out / "neurosurgeon-9-whatif.png")
    finally:
        app.close()
    draw_panels(("Resection box", "Tumor concentration", "Post-operative prediction"), out / "neurosurgeon-panels.png",
                "The desktop module's panels (drawn from TumorGen.ui, defaults from the settings schema)")


def write_series(path: Path, rows, rt_start=None) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["day", "size"] + (["rt_start"] if rt_start is not None else []))
        for day, size in rows:
            w.writerow([day, size] + ([rt_start] if rt_start is not None else []))
    return path


def radiologist(out: Path, work: Path) -> None:
    app = WebApp(work / "web")
    try:
        app.load_sample()
        app.grow_tumor()
        # the series: three scans, the latest the tumor in the scan (12 cm³ on day 60)
        series = write_series(work / "series.csv", [(0, 5.0), (30, 8.0), (60, 12.0)])
        app.open_panels("Follow-up")
        upload = app.browser.find_element(app.By.CSS_SELECTOR, "#tg-series-upload")
        if upload.tag_name != "input":
            upload = upload.find_element(app.By.CSS_SELECTOR, "input[type=file]")
        upload.send_keys(str(series))
        app.wait(lambda: len(app.browser.find_elements(app.By.CLASS_NAME, "tg-series-row")) == 3, 30, "the series")
        time.sleep(1.0)
        app.scroll(app.el("tg-series"), "start")
        screen = app.screen()
        compose([(app.panel_part(screen, "tg-series", "tg_add_row", "tg-followup-day-text", "tg-forecast-plot"), "the series (series.csv), the day"),
                 (app.views(screen, "Red"), app.text("tg-tumor"))], out / "radiologist-1-series.png")

        app.set_field("tg_followup_samples", 1)
        app.run("tg_predict_followup", "follow-up without radiotherapy", 900)
        untreated_text = app.text("tg-followup")
        screen = app.screen(show="tg_predict_followup")
        untreated_plot = app.panel_part(screen, "tg_predict_followup", "tg-followup", "tg-forecast-plot")
        untreated_view = app.views(screen, "Red")
        region = coloured_box(untreated_view)
        compose([(app.panel_part(screen, "tg_predict_followup", "tg-followup", "tg-forecast-plot", "tg-followup-days"), "Predict follow-up"),
                 *app.zoomed(screen, ("Red", "day 150: T1, tumor probability, labels"), ("Yellow", "sagittal"), ("ThreeD", "3D"))],
                out / "radiologist-3-followup.png")

        # the time points: the latest scan (day 60) and the prediction (day 150), as a sequence
        parts = []
        for day in ("day 60", "day 150"):
            app.choose("tg-followup-days", day)
            time.sleep(2.5)
            screen = app.screen(show="tg_predict_followup")
            parts.append((zoom(app.views(screen, "Red"), region, margin=90, scale=1.5), f"Time point: {day}"))
        compose([(app.panel_part(screen, "tg-forecast-plot", "tg-followup-days"), None), *parts], out / "radiologist-5-time-points.png")

        # the same with a radiotherapy that starts on day 70, after the latest scan
        advanced = [t for t in app.browser.find_elements(app.By.CSS_SELECTOR, ".v-expansion-panel-title") if t.text.strip() == "Advanced"][0]
        app.scroll(advanced)
        advanced.click()
        time.sleep(0.8)
        app.set_field("tg_rt_start", 70)
        app.run("tg_predict_followup", "follow-up with radiotherapy from day 70", 900)
        screen = app.screen(show="tg_predict_followup")
        compose([(untreated_plot, "no radiotherapy"),
                 (app.panel_part(screen, "tg_predict_followup", "tg-followup", "tg-forecast-plot"), "RT start: day 70 (Advanced)"),
                 (zoom(untreated_view, region, margin=90, scale=1.3), "day 150, no radiotherapy"),
                 (zoom(app.views(screen, "Red"), region, margin=90, scale=1.3), "day 150, radiotherapy from day 70")],
                out / "radiologist-4-radiotherapy.png")
        say(f"untreated: {untreated_text} | radiotherapy: {app.text('tg-followup')}")
    finally:
        app.close()

    # the command line: tumorgen forecast with and without a radiotherapy in the series (the command's own example)
    untreated = write_series(work / "untreated.csv", [(0, 12.1), (28, 16.0), (56, 21.3)])
    treated = write_series(work / "treated.csv", [(0, 12.1), (28, 16.0), (56, 21.3), (70, 17.2), (98, 11.9), (126, 10.4)])
    run_cli("forecast", untreated, "--law", "radial", "--horizon", "180", "--step", "10", "--out", work / "untreated-forecast.csv", "--quiet")
    run_cli("forecast", treated, "--rt-start", "60", "--horizon", "180", "--step", "10", "--out", work / "treated-forecast.csv", "--quiet")
    plot_forecasts(out / "radiologist-2-forecast.png", [
        ("no radiotherapy (--law radial)", untreated, work / "untreated-forecast.csv", None),
        ("radiotherapy from day 60 (--rt-start 60)", treated, work / "treated-forecast.csv", 60)])
    plot_calibration(out / "radiologist-6-calibration.png")
    draw_panels(("Follow-up", "Follow-up › Advanced"), out / "radiologist-panels.png",
                "The desktop module's Follow-up panel (drawn from TumorGen.ui, defaults from the settings schema)")


def _rows(path: Path):
    with open(path) as f:
        return list(csv.DictReader(f))


def plot_forecasts(out: Path, series) -> Path:
    fig, axes = figure(len(series), size=3.6, images=False)
    for ax, (title, observed_csv, forecast_csv, rt) in zip(axes[0], series):
        obs = _rows(observed_csv)
        rows = _rows(forecast_csv)
        days = [float(r["day"]) for r in rows]
        ax.fill_between(days, [float(r["low"]) for r in rows], [float(r["high"]) for r in rows], color="#f4a261", alpha=0.35,
                        label="90 % interval")
        ax.plot(days, [float(r["median"]) for r in rows], color="#e76f51", label="median forecast")
        ax.plot([float(r["day"]) for r in obs], [float(r["size"]) for r in obs], "o", color="#264653", label="measured")
        if rt is not None:
            ax.axvline(rt, color="#2a9d8f", ls="--", label=f"radiotherapy, day {rt}")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("day", fontsize=8)
        ax.set_ylabel("tumor volume (cm³)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_xticks([0, 60, 120, 180, 240, 300])
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("tumorgen forecast SERIES.csv --horizon 180 --step 10", fontsize=9, family="monospace")
    return save(fig, out, "tumorgen forecast, plotted")


def plot_calibration(out: Path) -> Path:
    """The probability map's reliability on the 48 held-out series of Resources/Benchmarks/followup.json."""
    import numpy as np

    data = json.loads((ROOT / "Resources" / "Benchmarks" / "followup.json").read_text())
    fig, axes = figure(1, size=4.2, images=False)
    ax = axes[0][0]
    ax.set_xticks(np.linspace(0, 1, 6))
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.plot([0, 1], [0, 1], color="#999", lw=1, label="perfect calibration")
    pooled = data["reliability"]
    predicted = np.array([b["predicted"] for b in pooled])
    observed = np.array([b["observed"] for b in pooled])
    band = np.array(data["reliability_interval"]["gap_5_95"])
    ax.errorbar(predicted, observed, yerr=[observed - (predicted + band[:, 0]), (predicted + band[:, 1]) - observed], fmt="o-",
                color="#264653", ms=4, capsize=2, label="all 48 series (5–95 % over resampled sets)")
    for name, colour in (("untreated", "#e76f51"), ("radiotherapy", "#2a9d8f")):
        sums = np.zeros((3, len(pooled)))
        for case in data["sets"][name]["cases"]:
            sums += np.array([case["bins"]["sum_p"], case["bins"]["sum_y"], case["bins"]["n"]])
        ax.plot(sums[0] / sums[2], sums[1] / sums[2], ".--", color=colour, lw=1, label=f"{name} ({len(data['sets'][name]['cases'])})")
    ax.set_xlabel("predicted tumor probability (bin mean)", fontsize=8)
    ax.set_ylabel("observed tumor frequency", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title("The probability map's reliability, held-out simulated series (day 135)", fontsize=8.5)
    return save(fig, out, "reliability from Resources/Benchmarks/followup.json")


def annotator(out: Path, work: Path) -> None:
    import numpy as np

    # a label map, as an annotator would have one: here grown by the command line on the bundled sample
    grown = work / "labels"
    run_cli("grow", "--seed-ras=-38,-4,28", "--volume", "35", "--d-white", "0.5", "--rho", "0.25", "--case", "tumor", "--out", grown)
    seg = grown / "tumor-seg.nii.gz"
    app = WebApp(work / "web")
    try:
        app.load_sample()
        app.open_panels("Inputs", "Synthesize")
        app.choose("tg-upload-role", "seg")
        upload = app.browser.find_element(app.By.CSS_SELECTOR, "#tg-upload")
        if upload.tag_name != "input":
            upload = upload.find_element(app.By.CSS_SELECTOR, "input[type=file]")
        upload.send_keys(str(seg))
        app.wait(lambda: "seg:" in app.text("tg-inputs") or app.state("tg_error"), 60, "the uploaded labels")
        if app.state("tg_error"):
            raise RuntimeError(f"upload: {app.state('tg_error')}")
        time.sleep(2.5)
        app.rest()
        screen = app.screen()
        compose([(app.panel_part(screen, "tg-upload-role", "tg-upload", "tg-inputs", "tg-volume-count"), "Upload as seg"),
                 (app.panel_part(screen, "tg-synthesis-labels", "tg_synthesize"), "Synthesize"),
                 (app.views(screen, "Red"), "the label map over the t1n")], out / "annotator-1-labels.png")
        app.open_panels("Synthesize")
        app.set_field("tg_synthesis_steps", 3)
        app.set_field("tg_synthesis_samples", 1)
        app.run("tg_synthesize", "synthesis from the label map", 900)
        screen = app.screen()
        compose([(app.panel_part(screen, "tg-synthesis-labels", "tg_synthesize", "tg-synthesis"), "Synthesize"),
                 (app.views(screen, "Red", "Yellow", "Green", "ThreeD"), "the synthetic t1c with the labels' outlines")],
                out / "annotator-2-synthesize.png")
    finally:
        app.close()
    job = sorted((work / "web").glob("*-synthesize-*"))[-1] / "outputs"
    contrasts = {c: read(job / f"synthetic-{c}.nrrd") for c in ("t1n", "t1c", "t2w", "t2f", "seg")}
    montage_case(out / "annotator-3-contrasts.png", contrasts, "the synthesis's outputs (3 steps, 1 sample: the web run above)")

    # mask augmentation: the same label map rotated, scaled, deformed and moved in the sample brain
    from tumorgen.synthesis.augment import augment_labels_with_info
    from tumorgen.synthesis.recipe import sample_scan

    say("mask augmentation (tumorgen.synthesis.augment)")
    t1n, tissues = sample_scan()
    labels = read(seg)
    fig, axes = figure(4, size=2.6)
    items = [(labels, "the label map")]
    for s in (1, 2, 3):
        augmented, info = augment_labels_with_info(labels, tissues, np.random.default_rng(s))
        items.append((augmented, f"augmented, seed {s}: ×{info['scale']:.2f}, {info['volume_cm3']['output']:.1f} cm³"))
    for ax, (lab, title) in zip(axes[0], items):
        k = tumor_slice(lab)
        image = axial(t1n, k)
        rows, cols = brain_box(image)
        ax.imshow(image[rows, cols], cmap="gray", vmin=0, vmax=1)
        label_overlay(ax, axial(lab, k)[rows, cols])
        ax.set_title(title, fontsize=7.5)
    save(fig, out / "annotator-4-augment.png", "mask augmentation")

    # a dataset of two cases on a local Ray, from the label map augmented
    data = work / "synth"
    stdout = run_cli("dataset", "--n", "2", "--out", data, "--labels", grown, "--workers", "2", "--steps", "2", "--samples", "1",
                     "--seed", "0", "--quiet")
    try:
        summary = json.loads(stdout[stdout.index("{"):])
        say("dataset: " + ", ".join(f"{k} {v}" for k, v in summary.items() if not isinstance(v, (dict, list))))
    except ValueError:
        say("dataset: " + " ".join(stdout.split())[-300:])
    cases = sorted(p for p in data.iterdir() if p.is_dir() and not p.name.startswith("."))
    fig, axes = figure(5, len(cases), size=2.3)
    for row, case in zip(axes, cases):
        images = {c: read(case / f"{case.name}-{c}.nii.gz") for c in ("t1n", "t1c", "t2w", "t2f", "seg")}
        _montage_row(row, images, case.name)
    save(fig, out / "annotator-5-dataset.png", "tumorgen dataset --n 2")
    draw_panels(("Inputs", "Synthesize"), out / "annotator-panels.png",
                "The desktop module's Inputs and Synthesize panels (drawn from TumorGen.ui, defaults from the settings schema)")


def _montage_row(axes, images, name: str) -> None:
    seg = images["seg"]
    k = tumor_slice(seg)
    reference = axial(images["t1n"], k)
    rows, cols = brain_box(reference)
    for ax, contrast in zip(axes, ("t1n", "t1c", "t2w", "t2f", "seg")):
        if contrast == "seg":
            ax.imshow(reference[rows, cols], cmap="gray")
            label_overlay(ax, axial(seg, k)[rows, cols], alpha=0.8)
        else:
            ax.imshow(axial(images[contrast], k)[rows, cols], cmap="gray")
        ax.set_title(f"{name}-{contrast}", fontsize=7)


def montage_case(out: Path, images: dict, what: str) -> Path:
    fig, axes = figure(5, size=2.5)
    _montage_row(axes[0], images, "synthetic")
    return save(fig, out, what)


def researcher(out: Path, work: Path) -> None:
    import numpy as np

    # training data: two simulated subjects in BraTS layout (2 mm, to be quick; the tiny config resamples to 1 mm)
    sims = work / "sims"
    run_cli("simulate", "--n", "2", "--seed", "100", "--spacing", "2", "--out", sims, "--quiet")
    case = sorted(p for p in sims.iterdir() if p.is_dir())[0]
    images = {c: read(case / f"{case.name}-{c}.nii.gz") for c in ("t1n", "t1c", "t2w", "t2f", "seg")}
    fig, axes = figure(5, size=2.4)
    _montage_row(axes[0], images, case.name)
    fig.suptitle(f"{sims.name}/{case.name}/{case.name}-{{t1n,t1c,t2w,t2f,seg}}.nii.gz  (+ -concentration, -tissue-csf/-gm/-wm)",
                 fontsize=8, family="monospace")
    save(fig, out / "researcher-1-case.png", "a case folder")

    # a short training run of the autoencoder (the first network), then the loss plot it writes
    run_dir = work / "run"
    run_cli("train", "autoencoder", "--data", sims, "--config", "tiny", "--out", run_dir, "--steps", "40", "--batch", "2", "--lr", "1e-3",
            "--checkpoint-every", "20", "--quiet")
    shutil.copy2(run_dir / "autoencoder-loss.png", out / "researcher-2-loss.png")  # the plot the command writes itself
    say("wrote researcher-2-loss.png (run/autoencoder-loss.png, as tumorgen train wrote it)")

    # evaluate: inpaint a healthy cube of a held-out subject, then the challenge's metrics inside it
    held = work / "held"
    run_cli("simulate", "--n", "1", "--seed", "900", "--prefix", "TGHELD", "--out", held, "--quiet")
    case = sorted(p for p in held.iterdir() if p.is_dir())[0]
    t1n_path = case / f"{case.name}-t1n.nii.gz"
    t1n, seg = read(t1n_path), read(case / f"{case.name}-seg.nii.gz")
    tumor = np.argwhere(np.asarray(seg.array) > 0)
    centre = tumor.mean(axis=0).round().astype(int)
    centre[0] = t1n.array.shape[0] - 1 - centre[0]  # the mirror position, in the other hemisphere
    half = 12
    mask = np.zeros(t1n.array.shape, np.uint8)
    mask[tuple(slice(c - half, c + half) for c in centre)] = 1
    mask &= (np.asarray(t1n.array) > 0.05).astype(np.uint8)
    mask[np.asarray(seg.array) > 0] = 0
    from tumorgen.volume_io import write_volume

    mask_path = work / "mask.nii.gz"
    write_volume(t1n.with_array(mask), mask_path)
    maps = ["--csf", case / f"{case.name}-tissue-csf.nii.gz", "--gm", case / f"{case.name}-tissue-gm.nii.gz",
            "--wm", case / f"{case.name}-tissue-wm.nii.gz"]
    fast = ["--steps", "10", "--resample", "2", "--no-self-check", "--quiet"]
    results = {}
    weights = work / "my-weights"
    shutil.copytree(ROOT / "TumorGenLib" / "tumorgen" / "models" / "weights" / "tiny", weights)
    for name in ("autoencoder.safetensors", "autoencoder.json"):
        shutil.copy2(run_dir / name, weights / name)
    for label, extra in (("bundled", []), ("my-weights", ["--weights", weights])):
        pred = work / f"inpainted-{label}.nii.gz"
        run_cli("inpaint", "--t1n", t1n_path, "--mask", mask_path, "--mode", "healthy", *maps, *fast, *extra, "--out", pred)
        run_cli("evaluate", "--pred", pred, "--gt", t1n_path, "--mask", mask_path, "--out", work / f"metrics-{label}.json")
        results[label] = (read(pred), json.loads((work / f"metrics-{label}.json").read_text()))

    k = int(centre[2])
    truth = axial(t1n, k)
    m2 = axial(read(mask_path), k) > 0
    rows, cols = bbox_2d(m2, 22, truth.shape)
    voided = np.where(m2, 0.0, truth)

    def metric_text(metrics):
        flat = {key.lower(): value for key, value in _flatten(metrics).items()}
        ssim = next((v for key, v in flat.items() if key.endswith("ssim") and "ms" not in key), None)
        psnr = next((v for key, v in flat.items() if key.endswith("psnr")), None)
        return f"PSNR {psnr:.2f} dB, SSIM {ssim:.3f}" if ssim is not None and psnr is not None else json.dumps(metrics)[:40]

    bundled, bundled_metrics = results["bundled"]
    fig, axes = figure(4, size=2.7)
    panels = [(truth, "ground truth (--gt)"), (voided, "what the method sees (mask voided)"),
              (axial(bundled, k), "inpainted (--pred)\n" + metric_text(bundled_metrics)),
              (np.abs(axial(bundled, k) - truth) * m2, "|pred − gt| inside the mask")]
    for ax, (image, title) in zip(axes[0], panels):
        ax.imshow(image[rows, cols], cmap="gray" if "|" not in title else "magma", vmin=0, vmax=1 if "|" not in title else 0.25)
        ax.contour(m2[rows, cols], levels=[0.5], colors="#2a9d8f", linewidths=0.8)
        ax.set_title(title, fontsize=7.5)
    fig.suptitle("tumorgen evaluate --pred P --gt G --mask M  (the BraTS inpainting challenge's metrics inside the mask)", fontsize=8,
                 family="monospace")
    save(fig, out / "researcher-3-evaluate.png", "tumorgen evaluate")

    fig, axes = figure(3, size=2.9)
    mine, mine_metrics = results["my-weights"]
    panels = [(truth, "ground truth"), (axial(bundled, k), "bundled tiny weights\n" + metric_text(bundled_metrics)),
              (axial(mine, k), "--weights my-weights (the 40-step autoencoder)\n" + metric_text(mine_metrics))]
    for ax, (image, title) in zip(axes[0], panels):
        ax.imshow(image[rows, cols], cmap="gray", vmin=0, vmax=1)
        ax.contour(m2[rows, cols], levels=[0.5], colors="#2a9d8f", linewidths=0.8)
        ax.set_title(title, fontsize=7.5)
    fig.suptitle("tumorgen inpaint … --weights DIR, then tumorgen evaluate", fontsize=8, family="monospace")
    save(fig, out / "researcher-4-weights.png", "swapped weights")


def _flatten(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value} if isinstance(value, (int, float)) else {}


GUIDE_FUNCTIONS = {"neurosurgeon": neurosurgeon, "radiologist": radiologist, "annotator": annotator, "researcher": researcher}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="folder for the pictures (default: Resources/Screenshots/guides)")
    parser.add_argument("--only", default=",".join(PICTURES), help="comma-separated guides (default: all): " + ", ".join(PICTURES))
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (default: a temporary folder, removed)")
    args = parser.parse_args(argv)
    guides = [g.strip() for g in args.only.split(",") if g.strip()]
    unknown = [g for g in guides if g not in PICTURES]
    if unknown:
        parser.error(f"unknown guide(s) {', '.join(unknown)}; choose from {', '.join(PICTURES)}")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TUMORGEN_CACHE_DIR", str(Path(tempfile.gettempdir()) / "tumorgen-guide-cache"))
    with tempfile.TemporaryDirectory(prefix="tumorgen-guides-") as temp:
        base = Path(args.keep).resolve() if args.keep else Path(temp)
        for guide in guides:
            started = time.monotonic()
            say(f"== {guide}")
            work = base / guide
            if work.exists():
                shutil.rmtree(work)
            work.mkdir(parents=True)
            GUIDE_FUNCTIONS[guide](out, work)
            say(f"== {guide} done in {time.monotonic() - started:.0f} s")
    missing = [name for g in guides for name in PICTURES[g] if not (out / name).is_file()]
    say(f"{sum(len(PICTURES[g]) for g in guides) - len(missing)} pictures in {out}" + (f"; missing {missing}" if missing else ""))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
