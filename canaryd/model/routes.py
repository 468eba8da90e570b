"""The traffic a router puts in place for one Canary: a value the engine decides (canaryd.engine.desired)
and a writer builds objects from (canaryd.actuators.routing), so neither imports the other."""

from __future__ import annotations

from dataclasses import dataclass

# the routes a router reads back from its object: (primary weight, canary weight, mirrored)
ObservedRoutes = tuple[int, int, bool]


@dataclass(frozen=True)
class Cookies:
    """Session-affinity cookies as ``name=value`` pairs; "" = none. ``canary``/``primary`` while the
    canary gets traffic, ``previous`` (to expire) once it is back at 0 %."""

    canary: str = ""
    primary: str = ""
    previous: str = ""


@dataclass(frozen=True)
class Routes:
    """The split of one Canary's traffic: the canary's share (the primary gets the rest), whether the
    primary's traffic is mirrored to the canary, and the session-affinity cookies (None: no affinity)."""

    canary: int
    mirror: bool = False
    cookies: Cookies | None = None

    @property
    def primary(self) -> int:
        return 100 - self.canary
