"""Argument allow-lists for programs the operator allows (``--allow-command``), where one ships.

Pure. Allowing a program by name would otherwise allow every one of its arguments, and most HTTP tools can
read and write local files (``curl -o``, ``-T``, ``-K``, ``--data @file``, ``file://`` URLs): a webhook
could read the load tester's token or ServiceAccount token and send it anywhere. A shipped policy lists the
flags a command may use; anything else is refused (403) before the program starts, and the policy's own
arguments are put first (for curl: ``-q`` so no ``.curlrc`` is read, ``--proto =http,https`` and
``--proto-redir =http,https``). URLs (positional or ``--url``, ``-x``) follow the load tester's target rule.

A program without a shipped policy (anything but curl today) gets its arguments unchecked: allowing it is
trusting every caller with it. ``--enable-bash`` voids all of this.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from canaryd.loadtester.targets import TargetRule

Check = Callable[[str, TargetRule], "str | None"]


def _any(_: str, __: TargetRule) -> str | None:
    return None


def _no_file(value: str, _: TargetRule) -> str | None:
    return "a value starting with @ reads a local file" if value.startswith("@") else None


def _urlencode(value: str, _: TargetRule) -> str | None:
    # content, =content, name=content, @file, name@file: an @ before the first = reads a file
    return "name@file reads a local file" if "@" in value.split("=", 1)[0] else None


def _cookie(value: str, _: TargetRule) -> str | None:
    return None if "=" in value else "a cookie without = names a file to read"


def _write_out(value: str, rule: TargetRule) -> str | None:
    if "%output{" in value or "%{output" in value:
        return "%output{} writes a local file"
    return _no_file(value, rule)


def _url(value: str, rule: TargetRule) -> str | None:
    scheme, sep, _ = value.partition("://")
    if sep and scheme.lower() not in ("http", "https"):
        return f"{value!r}: only http and https URLs"
    return rule.url_refusal(value, default_scheme="http")


@dataclass(frozen=True)
class ArgPolicy:
    """A program's permitted switches (no value), options (one value, checked) and leading arguments."""

    forced: tuple[str, ...]
    switches: frozenset[str]
    options: Mapping[str, Check]
    redirects: frozenset[str] = field(default_factory=frozenset)  # allowed with external targets only

    def check(self, args: list[str], rule: TargetRule) -> tuple[str, ...] | str:
        """The argv tail to run (forced arguments first), or why ``args`` are refused."""
        i = 0
        while i < len(args):
            arg = args[i]
            if not arg.startswith("-") or arg == "-":
                if refusal := _url(arg, rule):
                    return refusal
                i += 1
                continue
            names, value_at = self._names(arg)
            *leading, last = names
            for name in leading:
                if refusal := self._switch_refusal(name, rule):
                    return refusal
            if last not in self.options:
                if refusal := self._switch_refusal(last, rule):
                    return refusal
                i += 1
                continue
            check = self.options[last]
            if value_at is None:
                if i + 1 >= len(args):
                    return f"{last} needs a value"
                value, i = args[i + 1], i + 2
            else:
                value, i = value_at, i + 1
            if refusal := check(value, rule):
                return f"{last} {value!r}: {refusal}"
        return (*self.forced, *args)

    def _switch_refusal(self, name: str, rule: TargetRule) -> str | None:
        if name in self.switches or (name in self.redirects and rule.external):
            return None
        if name in self.redirects:
            return f"{name} follows redirects, allowed only with --allow-external-targets"
        return f"{name} is not a permitted flag"

    def _names(self, arg: str) -> tuple[list[str], str | None]:
        """``--long`` → [--long]; ``-sSd`` → [-s, -S, -d] (a value-taking letter ends the cluster, the
        rest being its value: ``-XPOST``)."""
        if arg.startswith("--"):
            return [arg], None
        names: list[str] = []
        for j, char in enumerate(arg[1:], start=1):
            name = f"-{char}"
            names.append(name)
            if name in self.options:
                rest = arg[j + 1:]
                return names, rest or None
        return names, None


_DATA = {name: _no_file for name in ("-d", "--data", "--data-ascii", "--data-binary", "--json")}

CURL = ArgPolicy(
    forced=("-q", "--proto", "=http,https", "--proto-redir", "=http,https"),
    switches=frozenset({
        "-s", "--silent", "-S", "--show-error", "-f", "--fail", "--fail-with-body", "--fail-early",
        "-i", "--include", "-I", "--head", "-v", "--verbose", "-k", "--insecure", "--compressed",
        "-N", "--no-buffer", "--http1.0", "--http1.1", "--http2", "--http2-prior-knowledge", "-4", "-6",
        "--ipv4", "--ipv6", "-G", "--get", "--no-progress-meter", "--retry-connrefused", "--retry-all-errors",
        "-g", "--globoff", "--no-keepalive", "--tcp-nodelay", "--raw", "--path-as-is",
    }),
    options={
        **_DATA,
        "--data-raw": _any,
        "--data-urlencode": _urlencode,
        "-H": _no_file, "--header": _no_file,
        "-X": _any, "--request": _any,
        "-A": _any, "--user-agent": _any,
        "-e": _any, "--referer": _any,
        "-u": _any, "--user": _any,
        "-b": _cookie, "--cookie": _cookie,
        "-m": _any, "--max-time": _any, "--connect-timeout": _any,
        "--retry": _any, "--retry-delay": _any, "--retry-max-time": _any, "--max-redirs": _any,
        "-w": _write_out, "--write-out": _write_out,
        "--url": _url,
        "-x": _url, "--proxy": _url,
    },
    redirects=frozenset({"-L", "--location"}),
)

POLICIES: Mapping[str, ArgPolicy] = {"curl": CURL}


def policy_for(program: str) -> ArgPolicy | None:
    """The shipped policy of ``program`` (by its base name: ``curl``, ``/usr/bin/curl``), or None."""
    return POLICIES.get(os.path.basename(program))
