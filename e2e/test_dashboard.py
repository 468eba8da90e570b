"""``kubectl canary dashboard`` in a real browser (Debian's chromium + chromedriver, headless, through
Selenium) against the bed during a tutorial-style run of its own: canaryd runs for the test's namespace,
the demo's short tutorial Canary promotes a new image while the page is open. The list shows the
Canary; its page's weight chart (an SVG polyline, read through the DOM) gains points as the run
advances, with no reload, and its per-step table shows each check's value in more than one step; a
request naming another Host, or without the token, is refused. The abort
button, through its confirmation dialog, writes the CLI's request on the Canary and canaryd rolls the
run back; the page shows canaryd's answer.
Screenshots go to the test's log dir; with ``CANARYD_E2E_UPDATE_SCREENSHOT=1`` the one of the run in
progress is also copied to docs/img/dashboard.png (the README shows it), so a test run leaves the checkout
as it found it."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
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


def checkout_env(bed: Any) -> dict[str, str]:
    """This checkout's code and static files, whichever canaryd the script's environment installed."""
    return {**os.environ, "KUBECONFIG": bed.kubeconfig,
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}


@pytest.fixture
def dashboard(bed: Any, namespace: str, tmp_path: Path) -> Iterator[str]:
    with open_dashboard(bed, namespace, tmp_path / "dashboard.err") as url:
        yield url


@contextlib.contextmanager
def open_dashboard(bed: Any, namespace: str, log_path: Path) -> Iterator[str]:
    """``kubectl canary dashboard -n NS`` on a free port; yields the URL it prints (with the token)."""
    log = log_path.open("w")
    proc = subprocess.Popen([SCRIPT, "dashboard", "-n", namespace], env=checkout_env(bed),
                            stdout=subprocess.PIPE, stderr=log, text=True)
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


def step_values(driver: webdriver.Chrome, check: str) -> list[str]:
    """The per-step table's values of one check (one cell per analysis step, oldest first)."""
    got = driver.execute_script(
        "const r = document.querySelector(`#step-checks tr[data-check='${arguments[0]}']`);"
        "return r ? [...r.querySelectorAll('td')].slice(2).map((td) => td.textContent) : [];", check)
    return [str(v) for v in got or [] if v]


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
    # each check's value against its threshold per step (status.stepChecks): a column per analysis step
    # (the first step may find the canary's brand-new series without two samples yet: "no data", marked)
    wait.until(lambda d: len([v for v in step_values(d, "request-success-rate") if v.endswith("%")]) >= 2)
    per_step = step_values(browser, "request-success-rate")
    assert all(v.endswith("%") or v == "no data ✗" for v in per_step), per_step
    assert ">= 99%" in text(browser, "#step-checks"), text(browser, "#step-checks")
    assert text(browser, "#phase") == "Progressing"
    shot = tmp_path / "canary-in-progress.png"
    browser.save_screenshot(str(shot))
    if os.environ.get("CANARYD_E2E_UPDATE_SCREENSHOT") == "1":
        README_SHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, README_SHOT)
    wait.until(lambda d: text(d, "#phase") == "Succeeded")
    end = chart_points(browser)
    assert end > mid, (mid, end)
    # Events follow the status they report: the page shows the last one as its watch delivers it
    wait.until(lambda d: f"Promotion completed! Scaling down podinfo.{ns}" in text(d, "table.events"))
    buttons = browser.execute_script(
        "return [...document.querySelectorAll('button[id^=action-]')].map((b) => [b.id, b.disabled]);")
    assert buttons == [[f"action-{a}", False] for a in ("promote", "abort", "retry", "pause", "resume")]
    assert "promoted" in text(browser, "#history"), "the run history table shows the run"
    browser.save_screenshot(str(tmp_path / "canary-succeeded.png"))
    print(f"run followed live for {time.monotonic() - started:.1f}s; chart points {before} → {mid} → {end}; "
          f"screenshots in {tmp_path}")


def test_the_abort_button_rolls_the_run_back(bed: Any, namespace: str, operator: Operator, dashboard: str,
                                             browser: webdriver.Chrome, tmp_path: Path) -> None:
    ns = namespace
    bed.apply(yaml.safe_dump_all(tutorial_objects(ns)))
    browser.get(dashboard)
    browser.get(f"{dashboard.split('/?')[0]}/c/{ns}/podinfo")  # the cookie is set: straight to the page
    wait = WebDriverWait(browser, 90, poll_frequency=0.2)
    wait.until(lambda d: text(d, "#phase") == "Initialized")
    bed.kubectl("-n", ns, "set", "image", "deployment/podinfo", f"podinfod={IMAGE}:6.0.1")
    wait.until(lambda d: text(d, "#phase") == "Progressing")
    revision = bed.kubectl("-n", ns, "get", "canaries.flagger.app", "podinfo",
                           "-o", "jsonpath={.status.lastAppliedSpec}").stdout.strip()
    assert revision.startswith("cd1:")
    # two steps in, pause the run (the CLI's request), then a dashboard started now draws the chart
    # from status.weights: it saw none of those steps live
    wait.until(lambda d: "20% / 50%" in text(d, ".facts"))
    paused = subprocess.run([SCRIPT, "pause", "podinfo", "-n", ns, "--timeout", "60s"], env=checkout_env(bed),
                            capture_output=True, text=True, timeout=90, check=False)
    assert paused.returncode == 0 and "pause done" in paused.stdout, (paused.stdout, paused.stderr)
    weights = json.loads(bed.kubectl("-n", ns, "get", "canaries.flagger.app", "podinfo",
                                     "-o", "jsonpath={.status.weights}").stdout)
    assert len(weights) >= 2, weights
    with open_dashboard(bed, ns, tmp_path / "dashboard-2.err") as fresh:
        browser.get(fresh)
        browser.get(f"{fresh.split('/?')[0]}/c/{ns}/podinfo")
        wait.until(lambda d: text(d, "#phase") == "Progressing")
        assert chart_points(browser) >= 2 * len(weights) - 1, (chart_points(browser), weights)
        kept = json.loads(bed.kubectl("-n", ns, "get", "canaries.flagger.app", "podinfo",
                                      "-o", "jsonpath={.status.stepChecks}").stdout)
        assert len(step_values(browser, "request-success-rate")) == len(kept) >= 1, kept  # from status too
        browser.save_screenshot(str(tmp_path / "paused-after-reload.png"))
    browser.get(dashboard)  # cookies are per host, not per port: the first dashboard's token again
    browser.get(f"{dashboard.split('/?')[0]}/c/{ns}/podinfo")
    wait.until(lambda d: text(d, "#phase") == "Progressing")
    browser.execute_script("document.querySelector('#action-abort').click();")
    wait.until(lambda d: d.execute_script("return document.querySelector('#confirm').open;"))
    assert "Roll this run back now?" in text(browser, "#confirm")
    assert revision in text(browser, "#confirm"), "the dialog names the revision the request targets"
    browser.save_screenshot(str(tmp_path / "abort-confirm.png"))
    browser.execute_script("document.querySelector('#confirm-yes').click();")
    wait.until(lambda d: "abort requested (id " in text(d, "#action-result")
               or "abort done" in text(d, "#action-result"))
    raw = bed.kubectl("-n", ns, "get", "canaries.flagger.app", "podinfo",
                      "-o", "jsonpath={.metadata.annotations.canaryd\\.io/request}").stdout
    request = json.loads(raw)
    assert set(request) == {"id", "action", "revision"}
    assert (request["action"], request["revision"]) == ("abort", revision)
    assert uuid.UUID(request["id"]).version == 4
    # canaryd's side (canaryd/engine/requests.py): it answers this id and rolls the run back
    wait.until(lambda d: text(d, "#phase") == "Failed")
    wait.until(lambda d: "abort done" in text(d, "#action-result"))
    last = json.loads(bed.kubectl("-n", ns, "get", "canaries.flagger.app", "podinfo",
                                  "-o", "jsonpath={.status.lastRequest}").stdout)
    assert (last["id"], last["result"]) == (request["id"], "done")
    assert "0% / 50%" in text(browser, ".facts")
    wait.until(lambda d: "aborted" in text(d, "#history"))  # the run history's newest row
    browser.save_screenshot(str(tmp_path / "aborted.png"))
