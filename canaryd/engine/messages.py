"""The hook outcome Events (Go formatting of message texts is in :mod:`canaryd.gofmt`)."""

from __future__ import annotations

from canaryd.engine.types import Emit, HookResult

# ---- webhook outcome Events (flagger-reference.md §6.2) ----

_PASSED = {
    "confirm-rollout": "Confirm-rollout check {name} passed",
    "pre-rollout": "Pre-rollout check {name} passed",
    "confirm-traffic-increase": "Confirm-traffic-increase check {name} passed",
    "confirm-promotion": "Confirm-promotion check {name} passed",
    "post-rollout": "Post-rollout check {name} passed",
}


def hook_passed_events(hook_type: str, results: tuple[HookResult, ...]) -> tuple[Emit, ...]:
    """Normal Events for the passed hooks of a gate/pre-rollout/post-rollout type (none for others)."""
    template = _PASSED.get(hook_type)
    if template is None:
        return ()
    return tuple(Emit(template.format(name=r.name)) for r in results if r.passed)


def hook_events(hook_type: str, results: tuple[HookResult, ...]) -> tuple[Emit, ...]:
    """Events for fire-and-forget hooks (``RunHooks(wait=False)``, i.e. post-rollout): the runtime
    emits these after running them. A failure has no effect beyond its Warning."""
    out = list(hook_passed_events(hook_type, results))
    for r in results:
        if not r.passed and hook_type == "post-rollout":
            out.append(Emit(f"Post-rollout hook {r.name} failed {r.message}", warning=True))
    return tuple(out)
