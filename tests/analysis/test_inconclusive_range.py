"""A metric's inconclusiveRange (canaryd): a value within it is ``inconclusive`` whatever the thresholds
say; outside it the thresholds decide as before. Bounds are inclusive; either may be left out."""

from __future__ import annotations

import pytest

from canaryd.analysis.thresholds import custom_result
from canaryd.model.spec import MetricSpec, ThresholdRange

BAND = ThresholdRange(min=1.0, max=5.0)
# (thresholdRange, threshold, inconclusiveRange, value) -> (verdict, threshold text, message)
TABLE = [
    (ThresholdRange(max=5.0), None, ThresholdRange(min=3.0), 2.0, "pass", "<= 5, inconclusive >= 3", ""),
    (ThresholdRange(max=5.0), None, ThresholdRange(min=3.0), 3.0, "inconclusive", "<= 5, inconclusive >= 3",
     "errors 3.00 within inconclusive range >= 3"),
    (ThresholdRange(max=5.0), None, ThresholdRange(min=3.0), 7.0, "inconclusive", "<= 5, inconclusive >= 3",
     "errors 7.00 within inconclusive range >= 3"),
    (ThresholdRange(max=5.0), None, ThresholdRange(min=3.0, max=6.0), 6.5, "fail",
     "<= 5, inconclusive >= 3 and <= 6", "errors 6.50 > 5"),
    (ThresholdRange(min=99.0), None, ThresholdRange(min=95.0, max=99.0), 97.0, "inconclusive",
     ">= 99, inconclusive >= 95 and <= 99", "errors 97.00 within inconclusive range >= 95 and <= 99"),
    (ThresholdRange(min=99.0), None, ThresholdRange(min=95.0, max=98.99), 99.0, "pass",
     ">= 99, inconclusive >= 95 and <= 98.99", ""),
    (ThresholdRange(min=99.0), None, ThresholdRange(min=95.0, max=98.99), 90.0, "fail",
     ">= 99, inconclusive >= 95 and <= 98.99", "errors 90.00 < 99"),
    (None, 1.0, BAND, 1.0, "inconclusive", "<= 1, inconclusive >= 1 and <= 5",
     "errors 1.00 within inconclusive range >= 1 and <= 5"),
    (None, 1.0, BAND, 0.5, "pass", "<= 1, inconclusive >= 1 and <= 5", ""),
    (None, 1.0, None, 3.0, "fail", "<= 1", "errors 3.00 > 1"),  # no range: as before
    (ThresholdRange(max=5.0), None, None, 3.0, "pass", "<= 5", ""),
]


@pytest.mark.parametrize(("tr", "threshold", "band", "value", "verdict", "text", "message"), TABLE)
def test_inconclusive_range_table(tr: ThresholdRange | None, threshold: float | None,
                                  band: ThresholdRange | None, value: float, verdict: str, text: str,
                                  message: str) -> None:
    metric = MetricSpec(name="errors", query="sum(x)", threshold=threshold, threshold_range=tr,
                        inconclusive_range=band)
    r = custom_result("errors", value, metric)
    assert (r.verdict, r.threshold, r.message, r.value) == (verdict, text, message, value)
