"""The dashboard's canary page shows the statistical judge's report in Chromium (headless, through
Selenium, as e2e/test_dashboard.py): a Canary whose status gains a judge check while the page is open
(written here through the status subresource, as canaryd writes it; no canaryd runs for the
namespace, so nothing else writes it) gets a table with, per judged metric, the samples per side, both
medians, the canary/primary ratio, the p-value and the classification, under the score and verdict."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from selenium import webdriver
from selenium.webdriver.support.ui import WebDriverWait

from e2e.canaries import canary
from e2e.test_dashboard import browser, open_dashboard, text

__all__ = ["browser"]

REPORT: dict[str, Any] = {
    "verdict": "inconclusive", "score": 50.0, "summary": "Marginal",
    "thresholds": {"pass": 95.0, "marginal": 40.0},
    "message": "judge: score 50 (marginal < 95): latency-p50 High (canary/primary 1.31, p=0.00041)",
    "metrics": [
        {"name": "success-rate", "classification": "Pass", "samples": {"canary": 12, "primary": 12},
         "canaryMedian": 100.0, "primaryMedian": 100.0, "ratio": 1.0, "pValue": 1.0},
        {"name": "latency-p50", "classification": "High", "samples": {"canary": 12, "primary": 11},
         "canaryMedian": 52.41, "primaryMedian": 40.07, "ratio": 1.3112, "pValue": 0.00041},
        {"name": "latency-p99", "classification": "Nodata", "samples": {"canary": 3, "primary": 11},
         "dryRun": True, "reason": "too few samples"},
    ],
}


@pytest.fixture
def dashboard(bed: Any, namespace: str, tmp_path: Path) -> Iterator[str]:
    with open_dashboard(bed, namespace, tmp_path / "dashboard.err") as url:
        yield url


def rows(driver: webdriver.Chrome) -> dict[str, list[str]]:
    """The judge table's cells per metric."""
    got = driver.execute_script(
        "return [...document.querySelectorAll('#judge-report tr[data-metric]')]"
        ".map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent));")
    return {str(r[0]): [str(v) for v in r[1:]] for r in got or []}


def test_the_canary_page_shows_the_judge_report_per_metric(bed: Any, namespace: str, dashboard: str,
                                                          browser: webdriver.Chrome, tmp_path: Path) -> None:
    ns = namespace
    bed.apply(yaml.safe_dump(canary(ns, judge={"step": "3s", "minSamples": 10, "metrics": [
        {"name": "success-rate", "preset": "request-success-rate"}]})))
    browser.get(dashboard)
    browser.get(f"{dashboard.split('?')[0].rstrip('/')}/c/{ns}/podinfo")
    wait = WebDriverWait(browser, 60, poll_frequency=0.2)
    wait.until(lambda d: f"{ns}/podinfo" in text(d, "h1"))
    assert urlsplit(browser.current_url).path == f"/c/{ns}/podinfo"
    assert text(browser, "#judge-report") == ""  # no judge check in status yet: no table

    check = {"name": "judge", "kind": "judge", "verdict": "inconclusive", "value": 50.0, "threshold": ">= 95",
             "message": REPORT["message"], "judge": REPORT}
    bed.kubectl("-n", ns, "patch", "canaries.flagger.app", "podinfo", "--subresource=status", "--type=merge",
                "-p", json.dumps({"status": {"phase": "Progressing", "canaryWeight": 20, "checks": [check]}}))
    wait.until(lambda d: len(rows(d)) == 3)  # live, with no reload
    got = rows(browser)
    assert got["latency-p50"] == ["12/11", "52.41", "40.07", "1.31", "0.00041", "High"], got
    assert got["success-rate"] == ["12/12", "100", "100", "1", "1", "Pass"], got
    assert got["latency-p99 [dry run]"] == ["3/11", "n/a", "n/a", "n/a", "n/a", "Nodata"], got
    score = text(browser, "#judge-score")
    assert score == "judge: score 50 — INCONCLUSIVE (pass ≥ 95, marginal ≥ 40)", score
    high = browser.execute_script(
        "const td = document.querySelector('#judge-report tr[data-metric=\"latency-p50\"] td.c-High');"
        "return td ? getComputedStyle(td).fontWeight : '';")
    assert str(high) in ("600", "bold"), high  # the failing classification stands out
    browser.save_screenshot(str(tmp_path / "judge-report.png"))
