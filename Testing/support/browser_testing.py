"""Driving the web app in Debian's headless Chromium (selenium with the system chromedriver; nothing is downloaded)."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def require_browser():
    """Skip without a browser, unless TUMORGEN_REQUIRE_BROWSER=1 (CI), where a missing browser is a failure."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    try:
        import selenium  # noqa: F401
        import trame_slicer  # noqa: F401
    except ImportError as exc:
        missing.append(str(exc))
    if missing:
        message = f"the browser tests need Debian's chromium and chromium-driver and the web extra: missing {missing}"
        if os.environ.get("TUMORGEN_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, work_dir: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``tumorgen web`` on ``port`` (``env``: the server's environment, which its backend jobs inherit; default this one's)."""
    log = open(work_dir / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "tumorgen.cli.main", "web", "--port", str(port), "--work-dir", str(work_dir), *extra],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the web app exited with {proc.returncode}: {(work_dir / 'server.log').read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("the web app did not answer within 120 s")


def start_browser(profile: Path, width: int = 1500, height: int = 950):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--window-size={width},{height}", f"--user-data-dir={profile}"):
        opts.add_argument(arg)
    opts.binary_location = CHROMIUM
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def wait_for(predicate, timeout: float = 120.0, interval: float = 0.25, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def image_of(element):
    """An element's pixels as a float array (H, W, 3)."""
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(element.screenshot_as_png)).convert("RGB"), dtype=np.float32)


def click(browser, element_id: str) -> None:
    """Scroll a control to the middle of its panel, then click it (the page footer can cover the panel's bottom)."""
    from selenium.webdriver.common.by import By

    element = browser.find_element(By.ID, element_id)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    time.sleep(0.2)
    element.click()
