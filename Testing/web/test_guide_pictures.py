"""Testing/tools/guide_pictures.py draws the user guides' pictures from the running software.

The full run (all four guides) took 11 minutes on two CPU cores shared with a training job, most of it the
annotator's synthesis and dataset. So this test runs the cheapest guide that still makes every kind of picture the
script makes, the radiologist's (about 2 minutes): the web app in headless Chromium (the sample, growth, a series loaded
from a CSV file, two follow-ups, the time points), the command line and its plot (``tumorgen forecast``), a plot of a
benchmark file, and the desktop panels' diagram. ``TUMORGEN_GUIDE_PICTURES=all`` runs every guide instead. Each
expected picture must exist, be a PNG of a reasonable size, and not be blank. Like the other browser tests it is
skipped without Debian's chromium and chromium-driver, unless ``TUMORGEN_REQUIRE_BROWSER=1``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from browser_testing import require_browser

require_browser()

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "Testing" / "tools" / "guide_pictures.py"


def _pictures() -> dict[str, tuple[str, ...]]:
    spec = importlib.util.spec_from_file_location("guide_pictures", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PICTURES


def test_the_script_draws_every_picture_of_the_guide(tmp_path):
    from PIL import Image

    pictures = _pictures()
    guides = list(pictures) if os.environ.get("TUMORGEN_GUIDE_PICTURES") == "all" else ["radiologist"]
    out = tmp_path / "pictures"
    env = {**os.environ, "TUMORGEN_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), "--only", ",".join(guides), "--keep", str(tmp_path / "work")],
                          capture_output=True, text=True, env=env, timeout=600 * len(guides))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    expected = [name for guide in guides for name in pictures[guide]]
    assert expected and sorted(p.name for p in out.glob("*.png")) == sorted(expected)
    for name in expected:
        path = out / name
        with Image.open(path) as image:
            assert image.format == "PNG", name
            assert 300 <= image.width <= 2400 and 200 <= image.height <= 1600, (name, image.size)
            pixels = np.asarray(image.convert("L"), dtype=np.float32)
        # not blank: the grey levels vary (the diagrams and plots, mostly white, have a spread of 25-40; the app's
        # pictures 60-100), and no one grey level covers almost the whole picture (plots: at most about 93 %)
        assert pixels.std() > 12, (name, pixels.std())
        assert np.bincount(pixels.astype(np.uint8).ravel()).max() < 0.97 * pixels.size, name
    assert f"{len(expected)} pictures in" in proc.stdout
