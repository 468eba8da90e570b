"""``kubectl canary dashboard`` in a real browser (Debian's chromium + chromedriver, headless, through
Selenium) against the bed during a tutorial-style run of its own: canaryd runs for the test's namespace,
the demo's short tutorial Canary promotes a new image while the page is open. The list shows the
Canary; its page's weight chart (an SVG polyline, read through the DOM) gains points as the run
advances, with no reload; a request naming another Host, or without the token, is refused.
Screenshots go to the test's log dir; with ``CANARYD_E2E_UPDATE_SCREENSHOT=1`` the one of the run in
progress is also copied to docs/img/dashboard.png (the README shows it), so a test run leaves the checkout
as it found it."""

from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

from canaryd.demo.run import IMAGE, tutorial_objects
from e2e.operator import ROOT, Operator

SCRIPT = shutil.which("kubectl-canary") or str(Path(sys.executable).parent / "kubectl-canary")
README_SHOT = ROOT / "docs" / "img" / "dashboard.png"


@pytest.fixture
def dashboard(bed: Any, namespace: str, tmp_path: Path) -> Iterator[str]:
    """``kubectl canary dashboard -n NS`` on a free port; yields the URL it prints (with the token)."""
    env = {**os.environ, "KUBECONFIG": bed.kubeconfig}
    log = (tmp_path / "dashboard.err").open("w")
    proc = subprocess.Popen([SCRIPT, "dashboard", "-n", namespace], env=env, stdout=subprocess.PIPE,
                            stderr=log, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # blocks until it listens (or exits)
        assert first.startswith("canary dashboard: http://127.0.0.1:"), (first, proc.poll())
        yield first.split(": ", 1)[1].strip()
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def raw_get(url: str, path: str, headers: dict[str, str]) -> int:
    """One GET with exactly these headers (a browser would never send a forged Host)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_host=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        return conn.getresponse().status
    finally:
        conn.close()


def text(driver: webdriver.Chrome, selector: str) -> str:
    """An element's text, read in one script call (the page redraws on every event: no stale handles)."""
    got = driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : '';", selector)
    return str(got or "")


def chart_points(driver: webdriver.Chrome) -> int:
    """Points of the weight chart's SVG polyline."""
    got = driver.execute_script(
        "const e = document.querySelector('#weight-line'); return e ? e.getAttribute('points') : '';")
    return len(str(got or "").split())


def test_the_dashboard_shows_a_run_live_in_chromium(bed: Any, namespace: str, operator: Operator,
                                                     dashboard: str, browser: webdriver.Chrome,
                                                     tmp_path: Path) -> None:
    ns = namespace
    url = dashboard
    port = urlsplit(url).port
    token_path = f"/?{urlsplit(url).query}"
    # the guard, before the browser: wrong Host (DNS rebinding), no token, wrong token
    assert raw_get(url, token_path, {"Host": f"evil.example:{port}"}) == 421
    assert raw_get(url, token_path, {"Host": f"127.0.0.1:{port + 1 if port else 1}"}) == 421
    assert raw_get(url, "/", {"Host": f"127.0.0.1:{port}"}) == 401
    assert raw_get(url, "/?token=guessed", {"Host": f"localhost:{port}"}) == 401
    assert raw_get(url, token_path, {"Host": f"localhost:{port}"}) == 302

    bed.apply(yaml.safe_dump_all(tutorial_objects(ns)))
    browser.get(url)
    wait = WebDriverWait(browser, 90, poll_frequency=0.2)  # the browser's DOM, not the API server
    assert urlsplit(browser.current_url).query == "", "the token leaves the address bar"
    row = f'tr[data-canary="{ns}/podinfo"]'
    wait.until(lambda d: "Initialized" in text(d, row))
    browser.save_screenshot(str(tmp_path / "list.png"))
    browser.execute_script("document.querySelector(arguments[0]).click();", f"{row} a")
    wait.until(lambda d: text(d, "#phase") == "Initialized")
    assert urlsplit(browser.current_url).path == f"/c/{ns}/podinfo"
    before = chart_points(browser)
    assert before >= 1

    bed.kubectl("-n", ns, "set", "image", "deployment/podinfo", f"podinfod={IMAGE}:6.0.1")
    started = time.monotonic()
    wait.until(lambda d: "30% / 50%" in text(d, ".facts")
               and "request-success-rate" in text(d, "table.checks"))
    mid = chart_points(browser)
    assert mid > before, (before, mid)
    assert text(browser, "#phase") == "Progressing"
    shot = tmp_path / "canary-in-progress.png"
    browser.save_screenshot(str(shot))
    if os.environ.get("CANARYD_E2E_UPDATE_SCREENSHOT") == "1":
        README_SHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, README_SHOT)
    wait.until(lambda d: text(d, "#phase") == "Succeeded")
    end = chart_points(browser)
    assert end > mid, (mid, end)
    events = text(browser, "table.events")
    assert f"Promotion completed! Scaling down podinfo.{ns}" in events
    disabled = browser.execute_script(
        "return [...document.querySelectorAll('button')].map((b) => b.disabled);")
    assert disabled == [True, True, True, True]
    browser.save_screenshot(str(tmp_path / "canary-succeeded.png"))
    print(f"run followed live for {time.monotonic() - started:.1f}s; chart points {before} → {mid} → {end}; "
          f"screenshots in {tmp_path}")
