"""Every field of the three CRDs has a row in canaryd.model.coverage: a new field without one fails here,
as does a row naming a test that does not exist, a rejection whose message no test shows, or a scope
section of docs/compatibility.md that is not the table's rendering."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from canaryd.model import coverage
from canaryd.model.coverage import Coverage

ROOT = Path(__file__).resolve().parents[2]
CRDS = {"Canary": "canaries.yaml", "MetricTemplate": "metrictemplates.yaml",
        "AlertProvider": "alertproviders.yaml"}


def leaf_paths(schema: dict[str, Any], path: str = "") -> list[str]:
    """Every leaf of an OpenAPI schema: a scalar, a map (``additionalProperties``) or an opaque object."""
    if schema.get("type") == "array":
        return leaf_paths(schema.get("items") or {}, path + "[]")
    props = schema.get("properties")
    if props:
        return [p for key, sub in props.items() for p in leaf_paths(sub, f"{path}.{key}" if path else key)]
    return [path]


def crd_fields() -> list[tuple[str, str, str]]:
    out = []
    for kind, name in CRDS.items():
        for doc in yaml.safe_load_all((ROOT / "manifests" / "crd" / name).read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            for version in doc["spec"]["versions"]:
                if version.get("served"):
                    schema = version["schema"]["openAPIV3Schema"]
                    out += [(kind, version["name"], p) for p in leaf_paths(schema)]
    return out


FIELDS = crd_fields()


def test_the_walk_sees_every_served_version_and_nested_field() -> None:
    assert {(k, v) for k, v, _ in FIELDS} == {("Canary", "v1beta1"), ("Canary", "v1alpha3"),
                                              ("MetricTemplate", "v1beta1"), ("AlertProvider", "v1beta1")}
    paths = {p for _, _, p in FIELDS}
    assert "spec.analysis.metrics[].templateRef.namespace" in paths
    assert "spec.service.unmanagedMetadata.labels[]" in paths
    assert "spec.provider.insecureSkipVerify" in paths


@pytest.mark.parametrize(("kind", "version", "path"), FIELDS)
def test_every_crd_field_has_a_row(kind: str, version: str, path: str) -> None:
    assert coverage.rows_for(kind, path), f"{kind} {version} {path}: add a row to canaryd/model/coverage.py"


def test_a_new_field_without_a_row_is_caught() -> None:
    assert coverage.rows_for("Canary", "spec.service.someNewField") == []
    assert coverage.rows_for("Canary", "spec.analysis.metrics[].newKnob") == []


def test_every_row_names_a_crd_field() -> None:
    known = {(k, p) for k, _, p in FIELDS}
    for row in coverage.ROWS:
        assert any(k == row.kind and (p == row.path or p.startswith((row.path + ".", row.path + "[]")))
                   for k, p in known), row


@cache
def _test_functions(file: str) -> frozenset[str]:
    tree = ast.parse((ROOT / file).read_text())
    return frozenset(n.name for n in ast.walk(tree)
                     if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test_"))


@pytest.mark.parametrize("row", coverage.ROWS, ids=lambda r: f"{r.kind}:{r.path}:{r.when}")
def test_supported_and_rejected_rows_name_an_existing_test(row: coverage.Row) -> None:
    if row.coverage in (Coverage.SUPPORTED, Coverage.REJECTED):
        file, _, name = row.test.partition("::")
        assert (ROOT / file).is_file(), row
        assert name in _test_functions(file), f"{row.test} does not exist"
    else:
        assert row.note, f"{row.path}: say why it has no effect"


@pytest.mark.parametrize("row", [r for r in coverage.ROWS if r.coverage is Coverage.REJECTED],
                         ids=lambda r: f"{r.kind}:{r.path}:{r.when}")
def test_rejection_messages_are_shown_in_their_test(row: coverage.Row) -> None:
    texts = _strings(row.test.partition("::")[0])  # adjacent literals joined, as Python does
    fixed = [part.strip() for part in re.split(r"\{[a-z]+\}", row.note) if len(part.strip()) >= 8]
    assert fixed and all(any(part in t for t in texts) for part in fixed), (row.note, row.test)


@cache
def _strings(file: str) -> tuple[str, ...]:
    tree = ast.parse((ROOT / file).read_text())
    return tuple(n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str))


def test_ignored_fields_are_recorded_when_set() -> None:
    for row in (r for r in coverage.ROWS if r.coverage is Coverage.IGNORED):
        obj: dict[str, Any] = {}
        node = obj
        parts = row.path.split(".")
        for part in parts[:-1]:
            child: dict[str, Any] = {}
            node[part.removesuffix("[]")] = [child] if part.endswith("[]") else child
            node = child
        node[parts[-1].removesuffix("[]")] = ["x"] if parts[-1].endswith("[]") else "x"
        assert coverage.ignored_fields(obj) == (row.path,)


def test_present_walks_lists_and_ignores_empty_values() -> None:
    obj = {"spec": {"a": [{"b": 1}, {}], "e": {}, "f": []}}
    assert coverage._present(obj, "spec.a[].b") and not coverage._present(obj, "spec.a[].c")
    assert not coverage._present(obj, "spec.e") and not coverage._present(obj, "spec.f")


def test_compatibility_scope_section_is_the_rendering() -> None:
    doc = (ROOT / "docs" / "compatibility.md").read_text()
    assert coverage.BEGIN in doc and coverage.END in doc
    assert doc == coverage.with_rendering(doc), (
        "run: python3 -m canaryd.model.coverage --write docs/compatibility.md")
