"""The judge's error rates, measured (run on demand: ``python3 bench/bench_judge.py``; needs numpy, which
the ``test`` extra brings with scipy).

Series are made as Prometheus would make them for the Istio presets: per rate window (= the range query's
step), a Poisson number of requests per side split by traffic share, each request failing with a fixed
probability and taking a lognormal time, counted into Istio's duration buckets; the success rate is
non-5xx / all x 100 and p50/p99 are ``histogram_quantile`` over the buckets (linear interpolation inside
the bucket, as Prometheus does). A run is ``--steps`` judgements, one per analysis interval, each over the
last ``n`` samples (a sliding window, so neighbouring judgements share most of their data, as they do in
a real run). A/A runs give the false-fail rate per run; the canary's latencies multiplied by 1.1, 1.2,
1.3 give the detection rate."""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from canaryd.judge.judge import JudgeConfig, Samples, judge
from canaryd.judge.presets import LATENCY_P50, LATENCY_P99, SUCCESS_RATE, istio

# Istio's default buckets for istio_request_duration_milliseconds (upper bounds; +Inf after them)
ISTIO_BUCKETS_MS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000,
                    600000, 1800000, 3600000)


@dataclass(frozen=True)
class Scenario:
    samples: int  # per side per judgement (lookback / step)
    share: float  # canary's share of the traffic
    shift: float  # canary latency multiplier - 1
    runs: int


@dataclass(frozen=True)
class Traffic:
    rps: float = 20.0  # both sides together
    step_s: float = 30.0  # range query step = rate window
    new_per_judgement: int = 2  # samples added between judgements (analysis interval 1m / step 30s)
    error_rate: float = 0.001
    median_ms: float = 50.0
    sigma: float = 0.6  # of log latency: p99 = median x e^(2.33 sigma), about 4x
    window_steps: int = 1  # rate window / step: above 1, neighbouring points share requests (refused by
    # canaryd.judge.samples.step_error; measured here to show why)


def bucket_probabilities(median_ms: float, sigma: float) -> np.ndarray:
    cdf = [0.5 * math.erfc(-(math.log(b / median_ms)) / (sigma * math.sqrt(2))) for b in ISTIO_BUCKETS_MS]
    edges = np.array([0.0, *cdf, 1.0])
    return np.diff(edges)  # one per finite bucket, then +Inf


def histogram_quantile(q: float, counts: np.ndarray) -> np.ndarray:
    """Prometheus's histogram_quantile over per-bucket counts (last axis; the last bucket is +Inf)."""
    bounds = np.array(ISTIO_BUCKETS_MS, dtype=float)
    cum = np.cumsum(counts, axis=-1).astype(float)
    total = cum[..., -1]
    rank = q * total
    idx = np.argmax(cum >= rank[..., None], axis=-1)
    finite = len(bounds)
    idx_c = np.minimum(idx, finite - 1)
    upper = bounds[idx_c]
    lower = np.where(idx_c > 0, bounds[np.maximum(idx_c - 1, 0)], 0.0)
    below = np.where(idx_c > 0, np.take_along_axis(cum, np.maximum(idx_c - 1, 0)[..., None], -1)[..., 0], 0.0)
    inside = np.take_along_axis(cum, idx_c[..., None], -1)[..., 0] - below
    with np.errstate(divide="ignore", invalid="ignore"):
        value = lower + (upper - lower) * (rank - below) / inside
    value = np.where(idx >= finite, bounds[-1], value)  # in +Inf: the highest finite bound
    return np.where(total > 0, value, np.nan)


def side(rng: np.random.Generator, shape: tuple[int, int], rps: float, t: Traffic,
         scale: float) -> dict[str, np.ndarray]:
    """Per-step success rate, p50 and p99 of one side, shape (runs, points)."""
    w = t.window_steps
    n = rng.poisson(rps * t.step_s, size=(shape[0], shape[1] + w - 1))
    errors = rng.binomial(n, t.error_rate)
    counts = rng.multinomial(n, bucket_probabilities(t.median_ms * scale, t.sigma))
    n, errors, counts = (window(a, w) for a in (n, errors, counts))
    with np.errstate(divide="ignore", invalid="ignore"):
        success = np.where(n > 0, (n - errors) / n * 100, np.nan)
    return {SUCCESS_RATE: success, LATENCY_P50: histogram_quantile(0.5, counts),
            LATENCY_P99: histogram_quantile(0.99, counts)}


def window(a: np.ndarray, w: int) -> np.ndarray:
    """Sums over the last ``w`` steps along axis 1 (what ``rate(x[w * step])`` sees at each step)."""
    c = np.concatenate([np.zeros_like(a[:, :1]), np.cumsum(a, axis=1)], axis=1)
    return c[:, w:] - c[:, :-w]


def run_scenario(s: Scenario, t: Traffic, cfg: JudgeConfig, steps: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    points = s.samples + (steps - 1) * t.new_per_judgement
    canary = side(rng, (s.runs, points), t.rps * s.share, t, 1 + s.shift)
    primary = side(rng, (s.runs, points), t.rps * (1 - s.share), t, 1.0)
    fails_per_run: list[int] = []
    inconclusive_runs = 0
    judgements = fails = 0
    for r in range(s.runs):
        fails_here = 0
        paused = False
        for k in range(steps):
            lo = k * t.new_per_judgement
            hi = lo + s.samples
            data = {name: Samples(tuple(canary[name][r, lo:hi].tolist()),
                                  tuple(primary[name][r, lo:hi].tolist())) for name in canary}
            verdict = judge(cfg, data).verdict
            judgements += 1
            if verdict == "fail":
                fails += 1
                fails_here += 1
            paused = paused or verdict == "inconclusive"
        fails_per_run.append(fails_here)
        inconclusive_runs += paused
    return {"samples": s.samples, "share": s.share, "shift": s.shift, "runs": s.runs,
            "judgement_fail": fails / judgements,
            "run_fail_t1": sum(f >= 1 for f in fails_per_run) / s.runs,
            "run_fail_t2": sum(f >= 2 for f in fails_per_run) / s.runs,
            "run_fail_t5": sum(f >= 5 for f in fails_per_run) / s.runs,
            "run_inconclusive": inconclusive_runs / s.runs}


def interval95(p: float, n: int) -> str:
    """Wilson 95 % upper bound, to say how far a rate of 0 hits in n runs can be trusted."""
    z = 1.96
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return f"{centre + half:.1%}"


def main() -> None:
    ap = argparse.ArgumentParser(description="The judge's false-fail and detection rates, generated series.")
    ap.add_argument("--aa-runs", type=int, default=1000)
    ap.add_argument("--shift-runs", type=int, default=200)
    ap.add_argument("--steps", type=int, default=10, help="judgements per run")
    ap.add_argument("--window-steps", type=int, default=1,
                    help="rate window / step (above 1: overlapping windows, which canaryd refuses)")
    ap.add_argument("--samples", type=int, nargs="+", default=[20, 60], help="per side per judgement")
    ap.add_argument("--shares", type=float, nargs="+", default=[0.1, 0.5])
    ap.add_argument("--shifts", type=float, nargs="*", default=[0.1, 0.2, 0.3])
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--traffic", nargs="+", default=["20@30", "2@120"],
                    help="RPS@STEP: requests per second to both sides together @ range query step (= rate "
                         "window) in seconds; the defaults give the canary about 60 and 24 requests per "
                         "point at a 10 %% share")
    ap.add_argument("--kayenta-tolerances", action="store_true",
                    help="Kayenta's effect-size defaults (1.0) instead of the presets' tolerances")
    args = ap.parse_args()
    configs = [istio(n).config for n in (SUCCESS_RATE, LATENCY_P50, LATENCY_P99)]
    if args.kayenta_tolerances:
        configs = [replace(c, allowed_increase=None, allowed_decrease=None) for c in configs]
    cfg = JudgeConfig(metrics=tuple(configs))
    for spec in args.traffic:
        rps, step = spec.split("@")
        table(args, Traffic(rps=float(rps), step_s=float(step), window_steps=args.window_steps), cfg)


def table(args: argparse.Namespace, t: Traffic, cfg: JudgeConfig) -> None:
    print(f"traffic: {t.rps:g} rps, step {t.step_s:g}s, rate window {t.window_steps} step(s), "
          f"{t.new_per_judgement} new samples per judgement, {args.steps} judgements per run, "
          f"errors {t.error_rate:.1%}, latency lognormal median "
          f"{t.median_ms:g} ms sigma {t.sigma:g}; judge: Istio presets, thresholds pass "
          f"{cfg.pass_threshold:g} / marginal {cfg.marginal_threshold:g}, min samples "
          f"{cfg.metrics[0].min_samples}, allowed increase "
          f"{cfg.metrics[-1].effect_thresholds()[1]:g}\n")
    print("| samples/side | canary share | latency shift | runs | judgements failed "
          "| runs failed, threshold 1 | threshold 2 | threshold 5 | runs paused (inconclusive) | seconds |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    seed = args.seed
    for n in args.samples:
        for share in args.shares:
            for shift in (0.0, *args.shifts):
                runs = args.aa_runs if shift == 0 else args.shift_runs
                started = time.perf_counter()
                out = run_scenario(Scenario(n, share, shift, runs), t, cfg, args.steps, seed)
                seed += 1
                took = time.perf_counter() - started
                t1 = f"{out['run_fail_t1']:.1%}"
                if shift == 0:
                    t1 += f" (≤ {interval95(out['run_fail_t1'], runs)})"
                print(f"| {n} | {share:.0%} | +{shift:.0%} | {runs} | {out['judgement_fail']:.2%} | {t1} | "
                      f"{out['run_fail_t2']:.1%} | {out['run_fail_t5']:.1%} | "
                      f"{out['run_inconclusive']:.1%} | {took:.0f} |", flush=True)
    print()


if __name__ == "__main__":
    main()
