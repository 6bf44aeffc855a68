"""Take the web app's screenshot for the README and the documentation: the 1 mm sample, a tumor grown from a click, the box around it, tumor inpainting,
and a tumor-size series in the Follow-up panel (an earlier scan and the grown tumor, plotted).

    .venv/bin/python Testing/tools/web_screenshot.py [--out Resources/Screenshots/web-app.png]

Needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Testing" / "support"))

from browser_testing import click, free_port, start_browser, start_server, wait_for  # noqa: E402


def type_into(browser, element_id: str, value) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    field = browser.find_element(By.ID, element_id)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", field)
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(str(value), Keys.TAB)
    time.sleep(0.3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "Resources" / "Screenshots" / "web-app.png"))
    args = parser.parse_args()
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        port = free_port()
        server = start_server(port, work)
        browser = start_browser(work / "profile")
        try:
            text = lambda i: browser.find_elements(By.ID, i)[0].text if browser.find_elements(By.ID, i) else ""  # noqa: E731
            browser.get(f"http://127.0.0.1:{port}/")
            wait_for(lambda: len(browser.find_elements(By.CLASS_NAME, "tg-view-marker")) == 4, 60)
            click(browser, "tg_load_sample")
            wait_for(lambda: "t1n: Sample t1n" in text("tg-inputs"), 300)
            time.sleep(2)
            red = browser.find_element(By.ID, "tg-view-Red").find_element(By.XPATH, "..")
            click(browser, "tg_place_seed")
            time.sleep(1)
            ActionChains(browser).move_to_element_with_offset(red, -60, -80).pause(0.3).click().perform()
            wait_for(lambda: "seed at" in text("tg-seed"), 30)
            click(browser, "tg_grow")
            wait_for(lambda: "cm³" in text("tg-tumor"), 300)
            click(browser, "tg_create_box")
            time.sleep(1)
            field = browser.find_element(By.ID, "tg_mode").find_element(By.XPATH, "./ancestor::div[contains(@class,'v-field')][1]")
            browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", field)
            field.click()
            time.sleep(0.5)
            browser.find_element(By.XPATH, "//div[contains(@class,'v-list-item')][.//text()[normalize-space()='tumor']]").click()
            time.sleep(0.5)
            click(browser, "tg_apply")
            wait_for(lambda: "inpainted" in text("tg-results"), 600)
            for element_id, value in (("tg_series_day", 0), ("tg_series_size", 5)):
                type_into(browser, element_id, value)
            click(browser, "tg_add_row")
            type_into(browser, "tg_series_day", 60)
            click(browser, "tg_add_current")
            wait_for(lambda: len(browser.find_elements(By.CLASS_NAME, "tg-series-row")) == 2, 30)
            plot = browser.find_element(By.ID, "tg-forecast-plot")
            browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", plot)
            ActionChains(browser).move_to_element_with_offset(red, 200, 300).perform()
            time.sleep(3)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            browser.save_screenshot(args.out)
            print(args.out, "|", text("tg-tumor"), "|", text("tg-box"), "|", text("tg-message"))
        finally:
            browser.quit()
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
