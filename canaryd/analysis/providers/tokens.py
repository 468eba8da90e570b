"""Short-lived credentials kept between queries: a Google access token, AWS temporary credentials, an
IMDSv2 session token. Exchanging them on every query would add a round trip (and an STS or OAuth rate
limit) to each check; keeping them past their expiry would fail checks. So each is kept until
``margin`` seconds before it expires, then exchanged again by the next query that needs it.

One :class:`TokenCache` per process, owned by the MetricTemplate check factory (one per registry);
entries are keyed by a digest of everything the token was exchanged for (the key file, the role, the
projected token), so a rotated Secret or file is a new exchange, never a stale token.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

MARGIN = 300.0  # seconds before expiry a token is renewed (the AWS SDKs' 5-minute window)
MAX_ENTRIES = 256  # distinct credentials kept (templates x secrets); the oldest expiry goes first


@dataclass(frozen=True)
class Expiring(Generic[T]):
    """A token and when it expires (wall clock, seconds); ``expires_at`` None: not to be kept."""

    value: T
    expires_at: float | None


def digest(*parts: str) -> str:
    """A cache key that holds no secret: the SHA-256 of the parts."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()


class TokenCache:
    """Tokens by key, each renewed ``margin`` seconds (at most half its lifetime) before it expires."""

    def __init__(self, margin: float = MARGIN, max_entries: int = MAX_ENTRIES) -> None:
        self.margin = margin
        self.max_entries = max_entries
        self._entries: dict[str, tuple[object, float]] = {}  # key -> (token, renew at)
        self._locks: dict[str, asyncio.Lock] = {}
        self.exchanges = 0  # tokens fetched (exposed for tests and debugging)

    async def get(self, key: str, now: float, fetch: Callable[[], Awaitable[Expiring[T]]]) -> T:
        """The kept token for ``key`` while ``now`` is before its renewal time, else ``fetch()``'s
        (one fetch at a time per key: concurrent checks wait for it rather than exchange again)."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            kept = self._entries.get(key)
            if kept is not None and now < kept[1]:
                return kept[0]  # type: ignore[return-value]
            fresh = await fetch()
            self.exchanges += 1
            if fresh.expires_at is None or fresh.expires_at <= now:
                self._entries.pop(key, None)
            else:
                lifetime = fresh.expires_at - now
                self._entries[key] = (fresh.value, fresh.expires_at - min(self.margin, lifetime / 2))
        self._trim()
        return fresh.value

    def _trim(self) -> None:
        while len(self._entries) > self.max_entries:
            oldest = min(self._entries, key=lambda k: self._entries[k][1])
            self._entries.pop(oldest)
        if len(self._locks) > 2 * self.max_entries:  # keys never kept (no expiry) leave idle locks
            self._locks = {k: v for k, v in self._locks.items() if k in self._entries or v.locked()}
