"""The load tester's token: read from a file (a Secret mounted as a volume), never from the environment
(children inherit it and ``/proc/<pid>/environ`` shows it), and kept out of reach of the commands it runs
by making the process non-dumpable (``prctl(PR_SET_DUMPABLE, 0)``: a child of the same user can no longer
read its ``/proc/<pid>/environ``, ``mem`` or ``fd``).

Callers present the token as a bearer token, or as the password of HTTP basic auth, which is what a webhook
URL with user info sends (``http://token:<T>@flagger-loadtester.test/``; Flagger's Go client and canaryd's
both turn user info into an ``Authorization: Basic`` header, and canaryd never shows user info in status,
Events or logs). The token must be URL-safe so it can be written in such a URL as it is.
"""

from __future__ import annotations

import base64
import binascii
import ctypes
import ctypes.util
import re
import sys
from collections.abc import Mapping
from pathlib import Path

DEFAULT_TOKEN_FILE = Path("/var/run/secrets/canaryd-loadtester/token")
MIN_LENGTH = 16
_TOKEN = re.compile(r"^[A-Za-z0-9._~-]+$")  # RFC 3986 unreserved: valid as-is in user info and bearer
_PR_SET_DUMPABLE = 4
_PR_GET_DUMPABLE = 3


class TokenError(ValueError):
    """The token file cannot serve; ``str()`` says why and what to do."""


def read_token(path: Path) -> str:
    """The token in ``path`` (surrounding whitespace, e.g. a trailing newline, removed)."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise TokenError(f"no token file at {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise TokenError(f"cannot read the token file {path}: {err}") from None
    if not text:
        raise TokenError(f"the token file {path} is empty")
    if len(text) < MIN_LENGTH:
        raise TokenError(f"the token in {path} is shorter than {MIN_LENGTH} characters")
    if not _TOKEN.match(text):
        raise TokenError(f"the token in {path} has characters other than A-Z a-z 0-9 . _ ~ - (it must be "
                         "usable as-is in a webhook URL); e.g. openssl rand -hex 32")
    return text


def presented_token(headers: Mapping[str, str]) -> str:
    """The bearer token, or the password of basic auth, of a request; empty when there is none."""
    scheme, _, value = headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value.strip(), validate=True).decode().partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return ""
    return ""


def _libc() -> ctypes.CDLL | None:
    """The C library: the interpreter's own symbols first (glibc and musl alike), else by name."""
    for name in (None, ctypes.util.find_library("c")):
        try:
            libc = ctypes.CDLL(name, use_errno=True)
        except OSError:
            continue
        if hasattr(libc, "prctl"):
            return libc
    return None


def set_nondumpable() -> str:
    """Make this process non-dumpable (Linux); returns what happened, for the start-up log."""
    if not sys.platform.startswith("linux"):
        return f"not on Linux ({sys.platform}): the process stays dumpable"
    libc = _libc()
    if libc is None:
        return "libc not found: the process stays dumpable"
    if libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        return f"prctl(PR_SET_DUMPABLE, 0) failed: errno {ctypes.get_errno()}"
    return "non-dumpable: commands cannot read this process's memory or environment"


def is_dumpable() -> bool | None:
    """``prctl(PR_GET_DUMPABLE)`` of this process; None where it cannot be asked."""
    libc = _libc() if sys.platform.startswith("linux") else None
    if libc is None:
        return None
    return bool(libc.prctl(_PR_GET_DUMPABLE, 0, 0, 0, 0))
