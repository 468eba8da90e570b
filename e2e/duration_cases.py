"""One table of duration texts for ``analysis.interval`` and ``metrics[].interval``, fed both to canaryd's
parser (tests/model/test_durations.py) and to the CRDs on the bed's API server (e2e/test_crds.py), so
the two cannot drift apart: whatever the API server stores, canaryd runs; whatever it refuses, canaryd
refuses too (an object that got past the CRD, e.g. under an older CRD, gets ``Valid=False``).

Both fields: whole numbers of ms, s, m or h in any combination (``1m30s``), 1 s to 24 h, 64 characters
at most. An empty or missing value means the default (60 s, 1 m) and is not in the table: the CRD
refuses the empty string, the parser reads it as missing, as Flagger's code does.
"""

from __future__ import annotations

ACCEPTED = [
    "1s", "30s", "1m", "1m30s", "30s1m", "1h", "24h", "1000ms", "1500ms", "23h59m60s", "86400s",
    "1440m", "0h1s", "001s", "1h0m0s", "1s" * 32,
]
REFUSED = [
    "500ms", "999ms", "0s", "0", "0h0m", "24h1ms", "25h", "86401s", "1441m",  # out of bounds
    "1.5s", "1.5m", "-1s", "+1s", "1d", "1w", "30", "s", "1us", "10ns", "1µs",  # not the CRD's syntax
    "30 s", " 30s", "30s ", "1m30", "1S", "１s", "1s\n",
    "9" * 40 + "s", "4" * 60 + "h",  # overflow: 40 nines, and a value Go's float parser makes infinite
    "1s" * 33,  # longer than 64 characters
]
CASES = [(text, True) for text in ACCEPTED] + [(text, False) for text in REFUSED]
