"""The tests README.md and docs/ cite as the proof of a behaviour exist, so a claim cannot outlive its test.

What the docs cite, and what is checked (read with ast, nothing imported; paths themselves are checked by
tests/test_repository.py):

* ``path.py::name`` (also ``path.py::Class::name`` and ``name[param]``): ``name`` is defined in that
  file — a test, or the function that does the checking (e.g. a session hook);
* a bare ``test_name``: a test function of that name exists under ``tests/``, ``e2e/`` or ``bench/``;
* a cited test file (``e2e/test_x.py``, globs such as ``e2e/test_flagger_suite*.py``): it holds at least
  one test function.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ("README.md", "e2e/README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")))
TEST_DIRS = ("tests", "e2e", "bench")
QUALIFIED = re.compile(r"`((?:tests|e2e|bench)/[\w/*.-]+\.py)::([\w:]+)(?:\[[^\]`]*\])?`")
BARE = re.compile(r"`(test_\w+)(?:\[[^\]`]*\])?`")
TEST_FILE = re.compile(r"`((?:tests|e2e|bench)/(?:[\w*-]+/)*test_[\w*-]*\.py)`")


def defined(path: Path) -> set[str]:
    """Functions and classes of a module, as ``name`` and ``Class::name``."""
    out: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            out.add(node.name)
        elif isinstance(node, ast.ClassDef):
            out.add(node.name)
            out |= {f"{node.name}::{item.name}" for item in node.body
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)}
    return out


def defined_tests(path: Path) -> set[str]:
    names = {name.rpartition("::")[2] for name in defined(path)}
    return {name for name in names if name.startswith("test_")}


ALL_TESTS = {name for top in TEST_DIRS for path in sorted((ROOT / top).rglob("test_*.py"))
             if "__pycache__" not in path.parts for name in defined_tests(path)}


def cited() -> Iterator[tuple[str, int, str]]:
    """(doc, line number, line) of every line of the docs."""
    for doc in DOCS:
        path = ROOT / doc
        if path.exists():
            for number, line in enumerate(path.read_text().splitlines(), 1):
                yield doc, number, line


def test_docs_cite_tests() -> None:
    """The convention is in use (the checks below are not vacuous)."""
    lines = [line for _, _, line in cited()]
    assert any(QUALIFIED.search(line) for line in lines)
    assert sum(len(BARE.findall(line)) for line in lines) >= 10


def test_qualified_citations_name_what_the_file_defines() -> None:
    missing = []
    for doc, number, line in cited():
        for file, name in QUALIFIED.findall(line):
            paths = sorted(ROOT.glob(file))
            if not paths:
                missing.append(f"{doc}:{number}: {file} does not exist")
            elif not any(name in defined(p) for p in paths):
                missing.append(f"{doc}:{number}: {file} defines no {name}")
    assert not missing, "cited tests that do not exist:\n" + "\n".join(missing)


def test_bare_test_names_are_tests() -> None:
    missing = [f"{doc}:{number}: {name}" for doc, number, line in cited() for name in BARE.findall(line)
               if name not in ALL_TESTS]
    assert not missing, "cited test names that no test file defines:\n" + "\n".join(missing)


def test_cited_test_files_hold_tests() -> None:
    empty = []
    for doc, number, line in cited():
        for file in TEST_FILE.findall(line):
            paths = sorted(ROOT.glob(file))
            if paths and not any(defined_tests(p) for p in paths):
                empty.append(f"{doc}:{number}: {file} holds no test function")
    assert not empty, "\n".join(empty)


@pytest.mark.parametrize(("text", "found"), [
    ("see `e2e/test_readme.py::test_readme_tutorial_commands`", [("e2e/test_readme.py",
                                                                  "test_readme_tutorial_commands")]),
    ("`tests/a/test_b.py::TestX::test_y[case-1]`", [("tests/a/test_b.py", "TestX::test_y")]),
    ("`e2e/test_x.py` and `docs/y.md`", []),
])
def test_the_citation_pattern(text: str, found: list[tuple[str, str]]) -> None:
    assert QUALIFIED.findall(text) == found
