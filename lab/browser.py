"""Debian's Chromium, driven by Selenium, the one way the lab starts a browser: the Selenium
integration tests (tests/integration/) and the notebooks that take screenshots of the site both
call `chrome()`.

    from lab.browser import chrome, save_screenshot
    with chrome() as driver:
        driver.get("http://127.0.0.1:8000/")
        save_screenshot(driver, "home.png")

Fully offline: the driver and the browser are Debian's (chromium, chromium-driver), named by
path, and Selenium Manager is told never to reach the network (SE_OFFLINE), so nothing is
downloaded and nothing phones home. The flags are the ones that work headless as root in a
container (see DESIGN.md, "What is known about this machine")."""
from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
from pathlib import Path

# Debian's packages; elsewhere (a CI image with Google Chrome, say) the environment can name
# another pair, which must be of the same major version.
CHROMIUM = os.environ.get("LAB_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("LAB_CHROMEDRIVER", "/usr/bin/chromedriver")
WINDOW_SIZE = (1280, 900)

FLAGS = [
    "--headless=new",
    "--no-sandbox",  # the sandbox needs user namespaces, which a root container lacks
    "--disable-gpu",
    "--disable-dev-shm-usage",  # /dev/shm is small in containers; use /tmp instead
    # nothing in the background: no updates, no sync, no field trials, no network of its own
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-features=Translate,OptimizationHints,MediaRouter",
    "--password-store=basic",  # no keyring prompt for the sign-up and log-in forms
    "--hide-scrollbars",  # screenshots without a scrollbar strip down their right edge
]


class BrowserMissing(RuntimeError):
    """Debian's chromium or chromium-driver is not installed."""


def _selenium():
    # Selenium Manager (which Selenium runs to find a driver) reads these; set before import.
    os.environ.setdefault("SE_OFFLINE", "true")
    os.environ.setdefault("SE_AVOID_STATS", "true")
    from selenium import webdriver

    return webdriver


def chrome(*, window_size: tuple[int, int] = WINDOW_SIZE, performance_log: bool = False,
           page_load_timeout: float = 60.0, extra_args: list[str] | None = None):
    """A new headless Chromium with its own throwaway profile (removed by `quit()`), usable as
    a context manager. `performance_log` records the DevTools network events, from which
    `document_responses()` reads response headers (X-Served-By, X-Cache) that a page's DOM
    cannot show."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            raise BrowserMissing(f"{path} is missing: `make setup` installs chromium and "
                                 f"chromium-driver (or set LAB_CHROMIUM, LAB_CHROMEDRIVER)")
    webdriver = _selenium()
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="lab-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, *(extra_args or [])]:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={window_size[0]},{window_size[1]}")
    if performance_log:
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
        # network events only: page and timeline events would flood the log
        options.add_experimental_option("perfLoggingPrefs", {"enableNetwork": True,
                                                             "enablePage": False})

    class LabChrome(webdriver.Chrome):
        def quit(self):
            try:
                super().quit()
            finally:
                shutil.rmtree(profile, ignore_errors=True)

    try:
        driver = LabChrome(options=options,
                           service=Service(executable_path=CHROMEDRIVER, log_output=os.devnull))
    except BaseException:
        shutil.rmtree(profile, ignore_errors=True)
        raise
    driver.set_page_load_timeout(page_load_timeout)
    return driver


def document_responses(driver) -> list[dict]:
    """The HTML documents the browser received since the last call (the performance log is
    drained by reading it): [{"url", "status", "headers"}] in order, header names lower-cased.
    Needs a driver made with chrome(performance_log=True)."""
    documents = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") != "Network.responseReceived":
            continue
        params = message["params"]
        if params.get("type") != "Document":
            continue
        response = params["response"]
        documents.append({
            "url": response["url"], "status": response["status"],
            "headers": {name.lower(): value for name, value in response["headers"].items()}})
    return documents


def save_screenshot(driver, path: str | Path, *, full_page: bool = True) -> Path:
    """A PNG of the page; with `full_page`, the whole page down to its footer, not only the
    window (Chrome DevTools Page.captureScreenshot beyond the viewport)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not full_page:
        driver.save_screenshot(str(path))
        return path
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    width = driver.execute_script("return document.documentElement.clientWidth")
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": size["height"], "scale": 1}})
    path.write_bytes(base64.b64decode(shot["data"]))
    return path
