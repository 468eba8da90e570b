"""Rendering of Flagger's query templates: Go ``text/template`` *function* calls such as
``{{ namespace }}`` or ``{{ variables.reporter }}`` (no dot-data), with ``missingkey=error``.

Only the names Flagger defines are supported; anything else is a render error rather than a query
sent to Prometheus with a literal ``{{`` in it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from canaryd.model.references import SAFE_VALUE_PATTERN, is_safe_value

_ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.DOTALL)
_VARIABLE = re.compile(r"variables\.([A-Za-z0-9_]+)")
_WHITESPACE = re.compile(r"\s+")


class RenderError(ValueError):
    """The template uses an unknown function or a variable that is not set."""


@dataclass(frozen=True)
class TemplateVars:
    """The values behind Flagger's template functions."""

    name: str  # canary name
    namespace: str
    target: str  # targetRef.name
    service: str  # service.name or target
    interval: str  # metric interval as written ("" possible for templates)
    ingress: str = ""
    route: str = ""
    variables: Mapping[str, str] = field(default_factory=dict)

    def lookup(self, expr: str) -> str:
        simple = {"name": self.name, "namespace": self.namespace, "target": self.target,
                  "service": self.service, "interval": self.interval,
                  "ingress": self.ingress or self.target, "route": self.route or self.target}
        if expr in simple:
            return simple[expr]
        m = _VARIABLE.fullmatch(expr)
        if m:
            key = m.group(1)
            if key not in self.variables:
                raise RenderError(f'map has no entry for key "{key}"')
            return str(self.variables[key])
        words = expr.split(".")[0].split()
        raise RenderError(f'function "{words[0] if words else expr}" not defined')


def render(template: str, values: TemplateVars, *, only_safe: bool = False) -> str:
    """Substitute every ``{{ … }}`` action (``{{-``/``-}}`` trim markers honoured).

    ``only_safe`` (a template of another namespace than the Canary's): every value put in must match
    :data:`canaryd.model.references.SAFE_VALUE_PATTERN`, so the Canary cannot change the query's PromQL."""
    out: list[str] = []
    pos = 0
    for m in _ACTION.finditer(template):
        before = template[pos:m.start()]
        if m.group(1):
            before = before.rstrip()
        out.append(before)
        value = values.lookup(m.group(2))
        if only_safe and not is_safe_value(value):
            raise RenderError(f"the value of {{{{ {m.group(2)} }}}} is refused in a template of another "
                              f"namespace: it must match {SAFE_VALUE_PATTERN}")
        out.append(value)
        pos = m.end()
        if m.group(3):
            rest = template[pos:]
            pos += len(rest) - len(rest.lstrip())
    out.append(template[pos:])
    return "".join(out)


def collapse_whitespace(query: str) -> str:
    """Flagger sends builtin queries with every whitespace run replaced by one space."""
    return _WHITESPACE.sub(" ", query)
