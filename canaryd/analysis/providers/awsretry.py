"""Retries of a CloudWatch call that AWS asked to slow down or failed on its side, as the AWS SDK's
default retryer (which Flagger's CloudWatch provider goes through) retries them: throttling error codes
(400 ``Throttling``, ``ThrottlingException``, …), 429, and 5xx other than 501; up to three retries with
exponential backoff and jitter. canaryd also stops when the next wait would pass the check's time
budget, so a throttled check ends with AWS's own error, never with the step's timeout."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar
from xml.etree import ElementTree

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, stop_before_delay
from tenacity.wait import wait_exponential, wait_random

from canaryd.analysis.providers.protocol import ProviderError
from canaryd.analysis.providers.request import StatusError

T = TypeVar("T")

MAX_ATTEMPTS = 4  # the first call and the SDK's three retries
FIRST_WAIT = 0.5  # seconds before the first retry (the SDK's throttle base delay), doubled each time
MAX_WAIT = 5.0  # seconds, at most, between two attempts
# the AWS SDKs' throttling error codes
THROTTLE_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
    "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled",
    "SlowDown", "PriorRequestNotComplete", "EC2ThrottledException",
})


def error_code(body: bytes) -> str:
    """The ``<Error><Code>`` of an AWS query-API error answer, "" when it has none."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return ""
    code = next((el for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "Code"), None)
    return (code.text or "").strip() if code is not None else ""


def retryable(e: BaseException) -> bool:
    if not isinstance(e, StatusError):
        return False
    if e.status == 429 or (e.status >= 500 and e.status != 501):
        return True
    return e.status == 400 and error_code(e.body) in THROTTLE_CODES


async def with_retries(call: Callable[[float], Awaitable[T]], budget: float, *,
                       attempts: int = MAX_ATTEMPTS, first_wait: float = FIRST_WAIT,
                       max_wait: float = MAX_WAIT) -> T:
    """``call(seconds left)``, retried as described above within ``budget`` seconds; the last error
    says how many attempts were made."""
    deadline = time.monotonic() + budget
    tried = 0

    def count(_: RetryCallState) -> None:
        nonlocal tried
        tried += 1

    retrying = AsyncRetrying(
        retry=retry_if_exception(retryable),
        stop=stop_after_attempt(attempts) | stop_before_delay(budget),
        wait=wait_exponential(multiplier=first_wait, max=max_wait) + wait_random(0, first_wait),
        after=count, reraise=True)
    try:
        async for attempt in retrying:
            with attempt:
                return await call(max(0.05, deadline - time.monotonic()))
    except StatusError as e:
        if tried <= 1:
            raise
        raise ProviderError(f"{e} (gave up after {tried} attempts)") from None
    raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover
