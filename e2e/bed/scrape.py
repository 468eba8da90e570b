"""Makes the bed's Prometheus scrape a test's canaryd: one file_sd file per process in the bed's
``prometheus-targets/`` (the ``canaryd`` job of ``files.write_prometheus_config``), with labels that tell
the test's series apart from every other test's. A bed whose Prometheus was started with an older config
(no ``canaryd`` job yet) gets the current one written and reloaded (``--web.enable-lifecycle``): the
mesh job stays as it was."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from e2e.bed import files
from e2e.bed.errors import BedError

JOB = "canaryd"


def _has_job(config: Path) -> bool:
    doc = yaml.safe_load(config.read_text()) or {}
    return any(job.get("job_name") == JOB for job in doc.get("scrape_configs") or [])


def _reload(prometheus_url: str) -> None:
    req = urllib.request.Request(f"{prometheus_url}/-/reload", data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        if resp.status != 200:
            raise BedError("prometheus", f"reload answered {resp.status}")


def ensure_job(bed: Any) -> Path:
    """The directory of the ``canaryd`` job's file_sd files (the job added and reloaded when missing)."""
    config = Path(bed.dir) / "prometheus.yml"
    if not config.exists() or not bed.prometheus_url:
        raise BedError("prometheus",
                       "scraping canaryd needs the local bed's Prometheus (not an external cluster)")
    if not _has_job(config):
        mesh = (yaml.safe_load(config.read_text())["scrape_configs"][0].get("static_configs") or [{}])[0]
        targets = mesh.get("targets") or []
        port = int(targets[0].rsplit(":", 1)[1]) if targets else None
        files.write_prometheus_config(config, mesh_port=port, query_log=bed.prometheus_query_log)
        _reload(str(bed.prometheus_url))
    return config.parent / files.PROMETHEUS_TARGETS


def register(bed: Any, name: str, port: int, labels: dict[str, str]) -> Path:
    """Scrape ``127.0.0.1:port`` every second with ``labels`` added; returns the file to ``unregister``."""
    directory = ensure_job(bed)
    directory.mkdir(exist_ok=True)
    path = directory / f"{name}.json"
    tmp = path.with_suffix(".tmp")  # written whole, then renamed: Prometheus never reads half a file
    tmp.write_text(json.dumps([{"targets": [f"127.0.0.1:{port}"], "labels": labels}]))
    tmp.rename(path)
    return path


def unregister(path: Path) -> None:
    path.unlink(missing_ok=True)
