"""docs/timeline.md's canaryd table is what decide() produces for the tutorial run."""

from __future__ import annotations

import itertools
from pathlib import Path

from .timeline import END, START, canaryd_table, tutorial_run

DOC = Path(__file__).resolve().parents[2] / "docs" / "timeline.md"


def test_doc_table_matches_simulation() -> None:
    text = DOC.read_text()
    documented = text[text.index(START) + len(START):text.index(END)].strip()
    w = tutorial_run()
    assert canaryd_table(w) == documented, "regenerate with: cd tests && python -m engine.timeline"
    weights = [r.weight for r in w.rows if r.phase == "Progressing" and r.weight]
    assert weights == list(range(5, 55, 5))
    steps = [r.t for r in w.rows if r.events and r.events[-1].startswith("Advance")]
    assert [b - a for a, b in itertools.pairwise(steps)] == [30.0] * 9  # exactly one interval apart
