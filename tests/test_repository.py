"""The repository explains itself: no reference leads outside it, the code the docs name exists, the
paths they cite exist, and every ``flagger-reference.md §x.y`` cited has its section.

Conventions the docs follow (and this test reads):

* a backticked call, ``name(...)`` or ``qualifier.name(...)``, and every call in a ``python`` block of a
  doc names code: the function, method or class must exist; when the qualifier is a module or class
  (``readiness.deployment_view(...)``, ``KubeClient.from_config(...)``) it must exist right there, and
  the argument names written in the call must be parameters of it;
* a backticked dotted name starting with a package (``canaryd.``, ``e2e.``, ``bench.``, or a package of
  canaryd such as ``engine.finalize.decide_finalize``) or with a class (``KubeClient.write_guard``)
  names code too, with or without ``()``;
* ``from M import a, b`` lines in ``python`` blocks must name what ``M`` defines;
* a capitalised method of something that is not ours (Go's ``Duration.String()``) is not checked;
* a backticked path whose first part exists in the repository (relative to the repository, the doc's
  directory, or ``canaryd/``) must exist (globs allowed).
"""

from __future__ import annotations

import ast
import builtins
import keyword
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("canaryd", "tests", "e2e", "bench", "docs", "README.md", "manifests", "image", "pyproject.toml",
           "tox.ini", "Dockerfile", ".ci/run")
TEXT_SUFFIXES = {".py", ".md", ".sh", ".yaml", ".yml", ".toml", ".txt", ".cfg", ".ini", ".json"}
# spelled in pieces so this file does not find itself
OUTSIDE = tuple(
    re.compile(pattern)
    for pattern in (
        r"\.\./" + "shared",
        "flagger-" + "behaviour",
        "testbed-" + "recipe",
        r"testbed\." + "md",
        r"peers\." + "md",
        "shared/" + "(reference|design)",
        "/" + "work/",
    )
)
CODE_DOCS = ("docs/contracts.md", "docs/architecture.md")
PATH_DOCS = ("README.md", "e2e/README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")))
PACKAGES = {"canaryd", "e2e", "bench", "engine", "runtime", "cache", "kube", "model", "analysis", "actuators",
            "notify", "loadtester", "demo"}
REFERENCE = ROOT / "docs" / "flagger-reference.md"


def _files() -> Iterator[Path]:
    for name in SCANNED:
        path = ROOT / name
        if path.is_file():
            yield path
            continue
        for found in sorted(path.rglob("*")):
            if found.is_file() and found.suffix in TEXT_SUFFIXES and "__pycache__" not in found.parts:
                yield found


def test_no_reference_leaves_the_repository() -> None:
    found = []
    for path in _files():
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if any(pattern.search(line) for pattern in OUTSIDE):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "references outside the repository:\n" + "\n".join(found)


def _cited_sections(text: str) -> Iterator[str]:
    """The section numbers of every ``flagger-reference.md §a.b, §c–d`` citation in ``text``."""
    cited = r"flagger-reference\.md`?((?:[ ,]*(?:and )?§[\d.]+(?:[-–]§?[\d.]+)?)+)"
    for match in re.finditer(cited, text):
        for start, end in re.findall(r"§(\d+(?:\.\d+)*)(?:[-–]§?(\d+(?:\.\d+)*))?", match.group(1)):
            yield from (number for number in (start, end) if number)


def test_cited_reference_sections_exist() -> None:
    headings = set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", REFERENCE.read_text(), re.M))
    assert {"1.3", "3.2", "4.4", "5.1", "6.1", "8"} <= headings  # the page has numbered sections
    missing = [f"{path.relative_to(ROOT)}: §{number}" for path in _files()
               for number in _cited_sections(path.read_text(errors="replace")) if number not in headings]
    assert not missing, "cited sections missing from docs/flagger-reference.md:\n" + "\n".join(missing)


# ---- an index of what the code defines (read with ast, nothing imported) ----

@dataclass
class Module:
    names: set[str] = field(default_factory=set)  # top level: defs, classes, assignments, imports
    classes: dict[str, set[str]] = field(default_factory=dict)  # class -> members (incl. self.x)
    functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = field(default_factory=dict)
    methods: dict[tuple[str, str], ast.FunctionDef | ast.AsyncFunctionDef] = field(default_factory=dict)


def _targets(node: ast.AST) -> Iterator[str]:
    if isinstance(node, ast.Name):
        yield node.id
    elif isinstance(node, ast.Tuple | ast.List):
        for element in node.elts:
            yield from _targets(element)


def _read_module(path: Path) -> Module:
    module = Module()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            module.names.add(node.name)
            module.functions[node.name] = node
        elif isinstance(node, ast.ClassDef):
            module.names.add(node.name)
            members = module.classes.setdefault(node.name, set())
            for item in ast.walk(node):
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    members.add(item.name)
                    module.methods.setdefault((node.name, item.name), item)
                elif isinstance(item, ast.AnnAssign | ast.Assign):
                    for target in [item.target] if isinstance(item, ast.AnnAssign) else item.targets:
                        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) \
                                and target.value.id == "self":
                            members.add(target.attr)
                        members.update(_targets(target))
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                module.names.update(_targets(target))
        elif isinstance(node, ast.AnnAssign):
            module.names.update(_targets(node.target))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            module.names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.If | ast.Try):  # TYPE_CHECKING blocks, optional imports
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    module.names.update((alias.asname or alias.name).split(".")[0] for alias in inner.names)
    return module


def _index() -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for top in ("canaryd", "e2e", "bench", "tests"):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = _read_module(path)
    for name in list(modules):  # a package also offers its submodules
        parent, _, child = name.rpartition(".")
        if parent in modules:
            modules[parent].names.add(child)
    return modules


INDEX = _index()
CLASSES = {cls for module in INDEX.values() for cls in module.classes}
MEMBERS = {member for module in INDEX.values() for members in module.classes.values() for member in members}
CALLABLES = {name for module in INDEX.values() for name in module.functions} | CLASSES | MEMBERS
IGNORED_CALLS = set(dir(builtins)) | set(keyword.kwlist) | {"await", "lambda"}


def _modules_named(dotted: str) -> list[Module]:
    return [module for name, module in INDEX.items() if name == dotted or name.endswith("." + dotted)]


def _resolve(parts: list[str]) -> tuple[bool, ast.FunctionDef | ast.AsyncFunctionDef | None, bool]:
    """(exists, the function when it is known exactly, whether the qualifier was a module or class)."""
    for cut in range(len(parts), 0, -1):
        modules = _modules_named(".".join(parts[:cut]))
        if not modules:
            continue
        rest = parts[cut:]
        for module in modules:
            if not rest:
                return True, None, True
            if rest[0] not in module.names:
                # ``client.get``: an instance named like its module, whose class the module defines
                if len(rest) == 1 and any(rest[0] in members for members in module.classes.values()):
                    return True, None, False
                continue
            if len(rest) == 1:
                return True, module.functions.get(rest[0]), True
            if rest[0] in module.classes and rest[1] in module.classes[rest[0]]:
                return True, module.methods.get((rest[0], rest[1])), True
            if rest[0] not in module.classes:
                return True, None, True  # an imported name: not followed
        return False, None, True
    if parts[0] in CLASSES and len(parts) == 2:
        for module in INDEX.values():
            if parts[1] in module.classes.get(parts[0], set()):
                return True, module.methods.get((parts[0], parts[1])), True
        return False, None, True
    if len(parts) == 1:  # a bare name defined once, as a function and not a method, is that function
        defined = [module.functions[parts[0]] for module in INDEX.values() if parts[0] in module.functions]
        if len(defined) == 1 and parts[0] not in CLASSES | MEMBERS:
            return True, defined[0], True
    return parts[-1] in CALLABLES, None, False


def _arguments(text: str) -> list[str]:
    """Names written as arguments at the call's top level: ``a``, ``b=…`` → a, b."""
    depth, current, out = 0, "", []
    for char in text:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        if char == "," and depth == 0:
            out.append(current)
            current = ""
        else:
            current += char
    out.append(current)
    names = []
    for argument in out:
        match = re.fullmatch(r"\s*\**([A-Za-z_]\w*)\s*(?:(?::[^=]*)?=.*|:.*)?", argument, re.S)
        if match and not argument.strip().startswith("*"):
            names.append(match.group(1))
    return names


def _parameters(function: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[set[str], bool]:
    args = function.args
    names = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)} - {"self", "cls"}
    return names, args.kwarg is not None or args.vararg is not None


def _calls(text: str) -> Iterator[tuple[str, str]]:
    """(dotted name, argument text) of each call in ``text``."""
    for match in re.finditer(r"(?<![\w.\"'])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\(", text):
        depth, end = 1, match.end()
        while end < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            end += 1
        yield match.group(1), text[match.end():end - 1]


def _doc_parts(text: str) -> tuple[list[str], list[str]]:
    """(python blocks, backticked spans outside blocks)."""
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    return blocks, re.findall(r"`([^`\n]+)`", prose)


def _check_call(name: str, argument_text: str, where: str, problems: list[str]) -> None:
    parts = name.split(".")
    if name in IGNORED_CALLS:
        return
    if len(parts) > 1 and parts[-1][:1].isupper() and parts[0] not in PACKAGES and parts[-1] not in CLASSES:
        return  # another language's method (Go's ``Duration.String()``): Python methods are lower case
    exists, function, qualified = _resolve(parts)
    if not exists:
        problems.append(f"{where}: `{name}(…)` names nothing in the code")
    elif function is not None and qualified:
        params, open_ended = _parameters(function)
        unknown = [arg for arg in _arguments(argument_text) if arg not in params]
        if unknown and not open_ended:
            problems.append(f"{where}: `{name}` has no parameter {', '.join(unknown)}")


def _import_lines(block: str) -> Iterator[tuple[str, list[str]]]:
    for module, names in re.findall(r"^from ([\w.]+) import (\([^)]*\)|[^\n]*)", block, re.M):
        names = re.sub(r"#[^\n]*", "", names).strip("() \n")
        listed = (n.split(" as ")[0].strip() for n in names.split(","))
        yield module, [n for n in listed if n not in ("", "...", "…")]


@pytest.mark.parametrize("doc", CODE_DOCS)
def test_code_named_by_the_docs_exists(doc: str) -> None:
    blocks, spans = _doc_parts((ROOT / doc).read_text())
    problems: list[str] = []
    for block in blocks:
        for module, names in _import_lines(block):
            if module not in INDEX:
                problems.append(f"{doc}: module {module} does not exist")
                continue
            problems += [f"{doc}: {module} has no {n}" for n in names if n not in INDEX[module].names]
        code = "\n".join(line.split("#")[0] for line in block.splitlines() if not line.startswith("from "))
        for name, arguments in _calls(code):
            _check_call(name, arguments, doc, problems)
    for span in spans:
        for name, arguments in _calls(span):
            _check_call(name, arguments, doc, problems)
        dotted = re.fullmatch(r"([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)(?:\(.*\))?", span)
        if dotted and (dotted.group(1).split(".")[0] in PACKAGES | CLASSES):
            exists, _, _ = _resolve(dotted.group(1).split("."))
            if not exists:
                problems.append(f"{doc}: `{span}` names nothing in the code")
    assert not problems, "\n".join(problems)


def _path_candidates(span: str) -> Iterator[str]:
    for word in re.split(r"[\s,()]+", span):
        word = word.rstrip(".:;")
        if "/" in word and re.fullmatch(r"[\w.*\-/]+", word) and not word.startswith(("/", ".", "~")):
            yield word


@pytest.mark.parametrize("doc", PATH_DOCS)
def test_paths_cited_by_the_docs_exist(doc: str) -> None:
    bases = (ROOT, (ROOT / doc).parent, ROOT / "canaryd")
    missing = []
    for span in _doc_parts((ROOT / doc).read_text())[1]:
        for path in _path_candidates(span):
            first = path.split("/")[0]
            if not any((base / first).exists() for base in bases):
                continue  # not a repository path (a URL part, a placeholder, another project's file)
            if not any(list(base.glob(path.rstrip("/"))) for base in bases):
                missing.append(f"{doc}: `{path}`")
    assert not missing, "paths cited but missing:\n" + "\n".join(missing)


def test_the_checks_catch_what_they_should() -> None:
    """The rules above fail on the mistakes they exist for."""
    problems: list[str] = []
    _check_call("readiness.no_such_function", "", "doc", problems)
    _check_call("routing.ensure_routing", "client, store, spec, no_such_parameter", "doc", problems)
    _check_call("no_such_function_anywhere", "", "doc", problems)
    assert len(problems) == 3, problems
    assert _resolve(["engine", "finalize", "decide_finalize"])[0]
    assert not _resolve(["engine", "finalize", "no_such_name"])[0]
    assert [m for m, _ in _import_lines("from canaryd.engine.decide import (decide,\n    x)\n")] == [
        "canaryd.engine.decide"]
    assert list(_path_candidates("see e2e/mesh/ and docs/x.md, ~/x/y")) == ["e2e/mesh/", "docs/x.md"]
    assert any(p.search("../" + "shar" + "ed/x.md") for p in OUTSIDE)
    cited = "(flagger-reference.md §3.2-§3.10, §4.) and flagger-reference.md §5.1–5.3."
    assert list(_cited_sections(cited)) == ["3.2", "3.10", "4", "5.1", "5.3"]
