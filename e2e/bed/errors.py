"""The bed's one error type: its message names the component and says why, in a line a human reads first."""

from __future__ import annotations


class BedError(RuntimeError):
    """A component could not be built, downloaded, started or reached."""

    def __init__(self, component: str, why: str, details: str = "") -> None:
        self.component = component
        self.why = why
        self.details = details
        head = f"test bed: {component}: {why}"
        super().__init__(head + (f"\n{details}" if details else ""))
