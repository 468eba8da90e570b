"""The crowded-cluster benchmark's pure parts (bench/crowd.py, bench/crowd_subjects.py): the report's rows and
its crowded ÷ empty ratios per operator, the namespaces each operator's canaries get, and the kubeconfig
that sends Flagger through the byte-counting proxy."""

from __future__ import annotations

from pathlib import Path

import yaml

from bench.crowd import Measure, namespaces, render
from bench.crowd_fill import Crowd
from bench.crowd_subjects import proxied_kubeconfig

MIB = 1024 * 1024


def measure(op: str, bed: str, *, init: float, mib: float, rss: float, relist_peak: float) -> Measure:
    return Measure(operator=op, bed=bed, canaries=20, ready_s=1.0, initialized_s=init,
                   bytes_to_ready=int(mib * MIB), bytes_to_settled=int(mib * MIB), rss_settled_mib=rss,
                   peak_rss_mib=rss, apiserver_cpu_start_s=2.0, relist_bytes=MIB, rss_after_relist_mib=rss,
                   peak_rss_after_relist_mib=relist_peak, steps=40, succeeded=20, cpu_ms_per_step=12.5)


def test_the_ratios_divide_each_operators_crowded_figures_by_its_own_empty_ones() -> None:
    results = [measure("canaryd", "empty", init=2.0, mib=0.8, rss=100.0, relist_peak=120.0),
               measure("flagger", "empty", init=20.0, mib=0.1, rss=50.0, relist_peak=50.0),
               measure("canaryd", "crowded", init=2.0, mib=1.2, rss=110.0, relist_peak=150.0),
               measure("flagger", "crowded", init=40.0, mib=0.1, rss=75.0, relist_peak=80.0)]
    doc = render(results, Crowd(), 1.0, {"total": 300.0}, 679.0, 20, 10)
    ratio_rows = {line.split(" | ")[0].strip("| "): line for line in doc.splitlines()
                  if "×" in line and line.startswith(("| canaryd | ", "| flagger | "))}
    assert ratio_rows["canaryd"] == "| canaryd | 1.00× | 1.50× | 1.10× | 1.50× | 1.00× | 1.00× |"
    assert ratio_rows["flagger"] == "| flagger | 2.00× | 1.00× | 1.50× | 1.60× | 1.00× | 1.00× |"
    assert "| canaryd | crowded | 1.0 | 2.0 | 1.20 / 1.20 | 110.0 / 110.0 |" in doc
    assert "20/20 |" in doc and "5000 Secrets of which 1000" in doc


def test_an_operator_measured_on_one_bed_only_gets_no_ratio_row() -> None:
    doc = render([measure("canaryd", "empty", init=2.0, mib=0.8, rss=100.0, relist_peak=120.0)],
                 Crowd(), 1.0, {}, 1.0, 20, 10)
    assert not [line for line in doc.splitlines() if "×" in line and line.startswith("| canaryd")]


def test_each_operator_and_bed_gets_namespaces_of_its_own() -> None:
    a, b, c = namespaces("canaryd", "e", 2), namespaces("flagger", "e", 2), namespaces("canaryd", "c", 2)
    assert a == ["cc-canaryd-e-00", "cc-canaryd-e-01"]
    assert not set(a) & set(b) and not set(a) & set(c)


def test_the_proxied_kubeconfig_changes_only_the_server(tmp_path: Path) -> None:
    src = tmp_path / "admin.kubeconfig"
    src.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "bed",
        "clusters": [{"name": "bed", "cluster": {"server": "https://127.0.0.1:6443",
                                                  "certificate-authority": "/ca.crt"}}],
        "users": [{"name": "admin", "user": {"client-certificate": "/a.crt"}}]}))
    out = yaml.safe_load(Path(proxied_kubeconfig(str(src), "https://127.0.0.1:40000",
                                                 tmp_path / "p.kubeconfig")).read_text())
    assert out["clusters"][0]["cluster"] == {"server": "https://127.0.0.1:40000",
                                             "certificate-authority": "/ca.crt"}
    assert out["users"] == [{"name": "admin", "user": {"client-certificate": "/a.crt"}}]
