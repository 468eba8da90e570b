"""canaryd's benchmarks (run on demand, never part of the normal test run): ``python3 -m bench --help``.

``bench_cache.py`` is the watch cache micro-benchmark; the rest is the side-by-side comparison with the
real Flagger on one test bed (issue 6)."""
