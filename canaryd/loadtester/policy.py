"""Which command lines the load tester will run, decided before anything starts.

Pure. A command line is split with :mod:`shlex` and executed without a shell, so shell syntax (``|``,
``;``, ``&&``, redirections) cannot work and is refused with a reason rather than passed to the program
as arguments. ``hey`` always means the built-in load generator, and its targets (URL, ``-x`` proxy) must be
in-cluster Services (:mod:`canaryd.loadtester.targets`; it follows no redirects then); any other program must
be listed by the operator (``--allow-command PROG``; the name as written in the command, e.g. ``curl`` or
``/usr/bin/curl``) and its arguments pass its shipped allow-list (:mod:`canaryd.loadtester.argpolicy`).
Arguments with a non-printable character (NUL, newline, escape …) are refused with 400.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field

from canaryd.loadtester.argpolicy import policy_for
from canaryd.loadtester.heyflags import HeyOptions, HeyUsageError, parse_hey_args
from canaryd.loadtester.targets import TargetRule

HEY = "hey"
_OPERATOR_CHARS = frozenset("();<>|&")


@dataclass(frozen=True)
class Command:
    """A command allowed to run: ``argv`` is what is executed (the built-in hey as a Python child)."""

    text: str
    argv: tuple[str, ...]
    program: str
    hey: HeyOptions | None = None


@dataclass(frozen=True)
class Rejected:
    """A command that will not run: ``status`` 400 (malformed) or 403 (refused by policy)."""

    status: int
    reason: str


def split_command(text: str) -> list[str]:
    """shlex words of ``text``; raises ``ValueError`` (e.g. ``No closing quotation``)."""
    return shlex.split(text, comments=False, posix=True)


def nonprintable(text: str) -> str | None:
    """The first character of ``text`` that is not printable (``U+0000`` …), or None."""
    for char in text:
        if not char.isprintable():
            return f"U+{ord(char):04X}"
    return None


def shell_operator(text: str) -> str | None:
    """The first unquoted shell operator (``|``, ``&&``, ``;``, ``>`` …) in ``text``, or None."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    for token in lexer:
        if token and set(token) <= _OPERATOR_CHARS:
            return token
    return None


@dataclass(frozen=True)
class CommandPolicy:
    """The operator's choices: the programs allowed besides hey, and how the built-in hey is started."""

    allowed: frozenset[str] = frozenset()
    hey_argv: tuple[str, ...] = (sys.executable, "-m", "canaryd.loadtester.hey")
    targets: TargetRule = field(default_factory=TargetRule)

    def resolve(self, text: str) -> Command | Rejected:
        """The command to execute for ``text``, or why not."""
        try:
            words = split_command(text)
        except ValueError as err:
            return Rejected(400, f"command {text!r} cannot be split: {err}")
        if not words:
            return Rejected(400, "cmd is empty")
        operator = shell_operator(text)
        if operator is not None:
            return Rejected(403, f"command refused: {operator!r} is shell syntax, and commands run without a "
                                 "shell; use type bash (needs --enable-bash) or one plain command")
        for n, word in enumerate(words):
            if bad := nonprintable(word):
                return Rejected(400, f"argument {n} of the command has a non-printable character {bad}")
        program, args = words[0], words[1:]
        if program == HEY:
            return self._hey(text, args)
        if program not in self.allowed:
            listed = ", ".join(sorted(self.allowed)) or "none"
            return Rejected(403, f"command refused: {program!r} is not allowed; the load tester runs the "
                                 f"built-in hey and programs listed with --allow-command (listed: {listed})")
        policy = policy_for(program)
        if policy is None:
            return Command(text, tuple(words), program)
        checked = policy.check(args, self.targets)
        if isinstance(checked, str):
            return Rejected(403, f"command refused: {program}: {checked}")
        return Command(text, (program, *checked), program)

    def _hey(self, text: str, args: list[str]) -> Command | Rejected:
        # in-cluster only: redirects not followed (a Service could redirect anywhere), forced first so a
        # later -disable-redirects=false shows as an override and is refused
        forced = () if self.targets.external else ("-disable-redirects",)
        try:
            opts = parse_hey_args([*forced, *args])
        except HeyUsageError as err:
            return Rejected(400, f"hey: {err}")
        if forced and not opts.disable_redirects:
            return Rejected(403, "command refused: hey: redirects are not followed; the operator allows them "
                                 "with --allow-external-targets")
        refusal = self.targets.url_refusal(opts.url)
        if refusal is None and opts.proxy:
            refusal = self.targets.url_refusal(opts.proxy, default_scheme="http")
        if refusal is not None:
            return Rejected(403, f"command refused: hey: {refusal}")
        return Command(text, (*self.hey_argv, *forced, *args), HEY, opts)
