"""The scale curve (issue 16): one operator at one interval over N, from the scale runs — CPU per canary
step, RSS (total and per canary), step lateness p50/p99 — with the growth fitted as a + b·N by least
squares, so "how far one process goes" is read off a line rather than guessed (docs/scaling.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bench.scenario import RunResult
from bench.sidebyside import cpu_per_step
from bench.stats import median, percentile


@dataclass(frozen=True)
class Point:
    n: int
    runs: int
    cpu_ms_per_step: float | None
    rss_mib: float | None
    lateness_p50: float | None
    lateness_p99: float | None
    succeeded: str  # "N/N" of the median run's


@dataclass(frozen=True)
class Fit:
    a: float
    b: float  # per canary

    def __call__(self, n: float) -> float:
        return self.a + self.b * n


def fit(points: Sequence[tuple[float, float]]) -> Fit | None:
    """Least squares of y = a + b·x; None with fewer than two distinct x."""
    if len({x for x, _ in points}) < 2:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    b = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)
    return Fit(my - b * mx, b)


def points(results: Sequence[RunResult], operator: str, interval: int) -> list[Point]:
    """One point per N: medians over that N's runs."""
    by_n: dict[int, list[RunResult]] = {}
    for r in results:
        if r.operator == operator and r.interval == interval:
            by_n.setdefault(r.n, []).append(r)
    out = []
    for n, rs in sorted(by_n.items()):
        cpu = [v for r in rs if (v := cpu_per_step(r)) is not None]
        rss = [r.peak_rss_mib for r in rs if r.peak_rss_mib is not None]
        lateness = [x for r in rs for x in r.lateness]
        out.append(Point(n, len(rs), median(cpu), median(rss), median(lateness), percentile(lateness, 99),
                         f"{sum(r.succeeded for r in rs)}/{sum(r.expected for r in rs)}"))
    return out


def _f(value: float | None, digits: int, unit: str = "") -> str:
    return "–" if value is None else f"{value:.{digits}f}{unit}"


def markdown(results: Sequence[RunResult], operator: str, interval: int) -> list[str]:
    pts = points(results, operator, interval)
    if len(pts) < 2:
        return []
    lines = [f"### {operator}, {interval} s", "",
             "| N | runs | ended Succeeded | CPU ms per canary step | peak RSS | RSS per canary | "
             "step lateness p50 / p99 |", "|---|---|---|---|---|---|---|"]
    for p in pts:
        per = None if p.rss_mib is None else 1024 * p.rss_mib / p.n
        lines.append(f"| {p.n} | {p.runs} | {p.succeeded} | {_f(p.cpu_ms_per_step, 1)} | "
                     f"{_f(p.rss_mib, 0, ' MiB')} | {_f(per, 0, ' KiB')} | "
                     f"{_f(p.lateness_p50, 2, ' s')} / {_f(p.lateness_p99, 2, ' s')} |")
    rss = fit([(p.n, p.rss_mib) for p in pts if p.rss_mib is not None])
    cpu = fit([(p.n, p.cpu_ms_per_step) for p in pts if p.cpu_ms_per_step is not None])
    lines.append("")
    if rss is not None:
        slope = _signed(1024 * rss.b, 1)
        lines.append(f"RSS ≈ {rss.a:.0f} MiB {slope} KiB × N (least squares over the points).")
    if cpu is not None:
        lines.append(f"CPU per canary step ≈ {cpu.a:.1f} ms {_signed(1000 * cpu.b, 2)} µs × N.")
    return [*lines, ""]


def _signed(value: float, digits: int) -> str:
    """``+ 1.50`` or ``− 1.50``: a fitted slope as the term of a sum."""
    return f"{'−' if value < 0 else '+'} {abs(value):.{digits}f}"
