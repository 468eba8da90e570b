"""runtime/gc_freeze.py: what start built leaves every later collection's walk; what is made afterwards
is collected as before. In a child process: a freeze is for the whole process and would hold on to the
test worker's objects."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent("""
    import gc, json, logging
    from canaryd.runtime.gc_freeze import freeze_start

    built = [{"n": [i]} for i in range(50_000)]  # what start built: 100,000 tracked containers
    before = len(gc.get_objects())
    frozen = freeze_start(logging.getLogger("t"))
    after = len(gc.get_objects())

    class Node:
        pass

    gc.disable()  # no automatic collection takes some before the count
    for _ in range(1000):  # made after the freeze: cycles the collector must still find
        a, b = Node(), Node()
        a.other, b.other = b, a
        del a, b
    found = gc.collect()
    print(json.dumps({"before": before, "frozen": frozen, "after": after, "found": found}))
""")


def test_start_s_objects_leave_the_walk_and_later_cycles_are_still_collected() -> None:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60,
                         check=True)
    got = json.loads(out.stdout)
    assert got["frozen"] >= 100_000
    assert got["after"] < got["before"] - 100_000  # a full collection no longer walks them
    assert got["found"] >= 2000  # both objects of every later cycle (and their instance dicts)
