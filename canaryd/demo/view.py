"""What the demo prints while a run goes on: one line per change of the Canary's progress and each new
Event once. The rendering is ``kubectl canary``'s (canaryd/console/render.py), shared so both show a run
the same way."""

from __future__ import annotations

from canaryd.console.render import Check, Progress, new_events, progress_of, render, render_check, unit

__all__ = ["Check", "Progress", "new_events", "progress_of", "render", "render_check", "unit"]
