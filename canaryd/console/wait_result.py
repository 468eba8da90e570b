"""``kubectl canary wait``'s decision, pure: has *this* revision's run ended, and how?

A revision is what canaryd records in ``status.lastAppliedSpec`` — the hash of the target's pod template
(canaryd/engine/revision.py). The run of the wanted revision has ended when status names it and the
phase is final: promoted (``Succeeded``, or ``Initialized`` with it as ``lastPromotedSpec``) or rolled
back (``Failed``). Status naming another revision after ours is a superseded run. Until canaryd has
seen the wanted revision at all, status still describes an older one: the wait goes on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from canaryd.console.render import progress_of
from canaryd.engine.revision import pod_template_hash

PROMOTED, FAILED, PENDING = 0, 1, None
EXIT_TIMEOUT, EXIT_INVALID = 2, 3


class RevisionError(Exception):
    """The revision asked for cannot be named (not this target's, ambiguous): exit 3."""


@dataclass(frozen=True)
class Verdict:
    code: int | None  # PROMOTED, FAILED, or None while the run goes on
    seen: bool  # status has named the wanted revision at least once
    reason: str


def revision_of(deployment: Mapping[str, Any], wanted: str | None) -> str:
    """The revision to wait for: the target's current one when ``wanted`` is empty; a hash as given
    (``cd1:…``, or its 16 hex digits); an image when it is the target's first container's image (or
    that image's tag or digest alone). Raises :class:`RevisionError` saying why otherwise."""
    template = ((deployment.get("spec") or {}).get("template")) or {}
    current = pod_template_hash(template)
    if not wanted:
        return current
    if wanted.startswith("cd1:"):
        return wanted
    if len(wanted) == 16 and all(ch in "0123456789abcdef" for ch in wanted):
        return "cd1:" + wanted
    containers = ((template.get("spec") or {}).get("containers")) or []
    image = str(containers[0].get("image") or "") if containers and isinstance(containers[0], dict) else ""
    if _same_image(image, wanted):
        return current
    name = (deployment.get("metadata") or {}).get("name", "")
    raise RevisionError(f"image {wanted} is not the one Deployment {name} runs now ({image or 'none'}); "
                        "give the revision hash (status.lastAppliedSpec) to wait for an older one")


def _same_image(image: str, wanted: str) -> bool:
    if not image:
        return False
    if image == wanted:
        return True
    # a tag (":6.0.1") or a digest ("@sha256:…") alone
    return wanted.startswith((":", "@")) and image.endswith(wanted)


def judge(canary: Mapping[str, Any], revision: str, seen: bool) -> Verdict:
    """Where the wanted ``revision``'s run stands in this Canary object."""
    p = progress_of(canary)
    if p.revision != revision:
        if seen and p.revision:
            return Verdict(FAILED, True, f"superseded: canaryd now runs revision {p.revision}")
        return Verdict(PENDING, seen, f"waiting for canaryd to start revision {revision} "
                       f"(status: {p.phase} {p.revision or 'no revision'})")
    if not p.generation_seen:  # a spec edit canaryd has not looked at yet
        return Verdict(PENDING, True, f"{p.phase}: canaryd has not seen the latest spec yet")
    if p.phase == "Succeeded" or (p.phase == "Initialized" and p.promoted == revision):
        return Verdict(PROMOTED, True, f"revision {revision} promoted")
    if p.phase == "Failed":
        return Verdict(FAILED, True, f"revision {revision} rolled back: {failure_reason(canary)}")
    return Verdict(PENDING, True, f"{p.phase} weight {p.weight}% failed checks {p.failed}/{p.threshold}")


def failure_reason(canary: Mapping[str, Any]) -> str:
    """Why a run failed: the failing checks' last values, else status.message, else the condition's."""
    from canaryd.console.render import render_check

    p = progress_of(canary)
    failing = [render_check(c) for c in p.checks if c.verdict in ("fail", "error", "nodata") and c.counted]
    if failing:
        return "; ".join(failing)
    if p.message:
        return p.message
    for cond in ((canary.get("status") or {}).get("conditions") or []):
        if isinstance(cond, dict) and cond.get("type") == "Promoted" and cond.get("message"):
            return str(cond["message"])
    return "no reason recorded"
