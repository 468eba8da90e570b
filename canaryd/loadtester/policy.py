"""Which command lines the load tester will run, decided before anything starts.

Pure. A command line is split with :mod:`shlex` and executed without a shell, so shell syntax (``|``,
``;``, ``&&``, redirections) cannot work and is refused with a reason rather than passed to the program
as arguments. ``hey`` always means the built-in load generator; any other program must be listed by the
operator (``--allow-command PROG``; the name as written in the command, e.g. ``curl`` or
``/usr/bin/curl``).
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass

from canaryd.loadtester.heyflags import HeyOptions, HeyUsageError, parse_hey_args

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
        program, args = words[0], words[1:]
        if program == HEY:
            try:
                opts = parse_hey_args(args)
            except HeyUsageError as err:
                return Rejected(400, f"hey: {err}")
            return Command(text, (*self.hey_argv, *args), HEY, opts)
        if program not in self.allowed:
            listed = ", ".join(sorted(self.allowed)) or "none"
            return Rejected(403, f"command refused: {program!r} is not allowed; the load tester runs the "
                                 f"built-in hey and programs listed with --allow-command (listed: {listed})")
        return Command(text, tuple(words), program)
