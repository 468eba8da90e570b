"""canaryd's timeline of the tutorial run, as the Markdown table in docs/timeline.md.

Regenerate the doc's table with ``python -m tests.engine.timeline`` (from the checkout root)."""

from __future__ import annotations

from canaryd.engine.types import Phase

from .world import World, change_image, initialized_world, passing_checks

START = "<!-- canaryd-timeline:start -->"
END = "<!-- canaryd-timeline:end -->"


def tutorial_run() -> World:
    w = initialized_world(check_results=passing_checks)
    change_image(w)
    w.run(0.0, 2000.0,
          stop=lambda w: w.status.phase == Phase.SUCCEEDED and w.status.last_applied_spec == "cd1:v2")
    return w


def canaryd_table(w: World) -> str:
    lines = ["| t (s) | phase | weight | checks | Events |", "|---:|---|---:|---|---|"]
    for r in w.rows:
        events = "<br>".join(f"`{e}`" for e in r.events) or "—"
        lines.append(f"| {r.t:g} | {r.phase} | {r.weight} | {r.checks or '—'} | {events} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(canaryd_table(tutorial_run()))
