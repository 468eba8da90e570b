"""hey's command line (``hey [options...] <url>``) read the way Go's ``flag`` package reads it.

Pure: argv in, :class:`HeyOptions` or :class:`HeyUsageError` out, so the load tester can refuse a bad
``hey`` command with 400 before it answers 202, instead of failing later in the background.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from canaryd.model.durations import DurationError, parse_go_duration

MAX_WORKERS = 1000  # hey has no limit; a typo such as -c 20000 should not exhaust the pod
MAX_REQUESTS = 10_000_000
MAX_DURATION = 24 * 3600.0
UNLIMITED = 2**31 - 1  # hey's math.MaxInt32 when -z is given

USAGE = """Usage: hey [options...] <url>

Options:
  -n  Number of requests to run. Default is 200.
  -c  Number of workers to run concurrently. Default is 50.
  -q  Rate limit, in queries per second (QPS) per worker. Default is no rate limit.
  -z  Duration of application to send requests (e.g. 10s, 3m). When given, -n is ignored.
  -m  HTTP method, one of GET, POST, PUT, DELETE, HEAD, OPTIONS, PATCH.
  -H  Custom HTTP header, repeatable: -H "Accept: text/html" -H "Content-Type: application/xml".
  -t  Timeout for each request in seconds. Default is 20, use 0 for infinite.
  -A  HTTP Accept header.
  -d  HTTP request body.
  -T  Content-type, defaults to "text/html".
  -a  Basic authentication, username:password.
  -x  HTTP Proxy address as host:port.
  -host  HTTP Host header.
  -disable-compression  Disable compression.
  -disable-keepalive    Disable keep-alive, prevents re-use of TCP connections between requests.
  -disable-redirects    Disable following of HTTP redirects.
  -h2   Accepted for compatibility; requests use HTTP/1.1.
  -cpus Accepted for compatibility; ignored.
"""

_BOOL = frozenset({"disable-compression", "disable-keepalive", "disable-redirects", "h2"})
_VALUE = frozenset({"n", "c", "q", "z", "m", "H", "t", "A", "d", "T", "a", "x", "host", "cpus"})
_HEADER = re.compile(r"^([\w-]+):\s*(.+)")
_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"})
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


class HeyUsageError(ValueError):
    """The arguments are not a valid hey command line; ``str()`` says why."""


@dataclass(frozen=True)
class HeyOptions:
    """One load run. ``requests`` is the total (split evenly over the workers, remainder dropped, as
    hey does); with ``duration`` > 0 it is :data:`UNLIMITED` and the run stops at the deadline."""

    url: str
    requests: int = 200
    concurrency: int = 50
    qps: float = 0.0  # per worker; 0 = no limit
    duration: float = 0.0  # seconds; 0 = run ``requests`` requests
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    content_type: str = "text/html"
    timeout: float = 20.0  # per request; 0 = none
    host: str = ""
    proxy: str = ""
    disable_compression: bool = False
    disable_keepalive: bool = False
    disable_redirects: bool = False
    notes: tuple[str, ...] = field(default=())  # flags accepted but without effect

    @property
    def per_worker(self) -> int:
        return self.requests // self.concurrency


def _split_flags(argv: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """Go ``flag`` semantics: ``-f``/``--f``, ``-f=v`` or ``-f v``; parsing stops at the first
    non-flag argument or after ``--``."""
    seen: dict[str, list[str]] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if len(arg) < 2 or arg[0] != "-":
            break
        if arg == "--":
            i += 1
            break
        name = arg[2:] if arg.startswith("--") else arg[1:]
        if not name or name[0] in "-=":
            raise HeyUsageError(f"bad flag syntax: {arg}")
        value: str | None = None
        if "=" in name:
            name, value = name.split("=", 1)
        if name in _BOOL:
            if value is None:
                value = "true"
            elif value not in _TRUE | _FALSE:
                raise HeyUsageError(f'invalid boolean value "{value}" for -{name}')
        elif name in _VALUE:
            if value is None:
                if i + 1 >= len(argv):
                    raise HeyUsageError(f"flag needs an argument: -{name}")
                i += 1
                value = argv[i]
        else:
            raise HeyUsageError(f"flag provided but not defined: -{name}")
        seen.setdefault(name, []).append(value)
        i += 1
    return seen, argv[i:]


def _int(flags: dict[str, list[str]], name: str, default: int) -> int:
    if name not in flags:
        return default
    text = flags[name][-1]
    try:
        return int(text, 0)
    except ValueError:
        raise HeyUsageError(f'invalid value "{text}" for flag -{name}: parse error') from None


def _float(flags: dict[str, list[str]], name: str, default: float) -> float:
    if name not in flags:
        return default
    text = flags[name][-1]
    try:
        return float(text)
    except ValueError:
        raise HeyUsageError(f'invalid value "{text}" for flag -{name}: parse error') from None


def _headers(flags: dict[str, list[str]]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for text in flags.get("H", []):
        m = _HEADER.match(text)
        if m is None:
            raise HeyUsageError(f"could not parse the provided input; input = {text}")
        out.append((m.group(1), m.group(2)))
    if "A" in flags:
        out.append(("Accept", flags["A"][-1]))
    if "a" in flags:
        auth = flags["a"][-1]
        if ":" not in auth:
            raise HeyUsageError(f"could not parse the provided input; input = {auth}")
        out.append(("Authorization", "Basic " + base64.b64encode(auth.encode()).decode()))
    return out


def _bool(flags: dict[str, list[str]], name: str) -> bool:
    return name in flags and flags[name][-1] in _TRUE


def parse_hey_args(argv: list[str]) -> HeyOptions:
    """Options of ``hey`` from its arguments (without the program name)."""
    flags, rest = _split_flags(argv)
    if not rest:
        raise HeyUsageError("missing URL: hey [options...] <url>")
    url = rest[0]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HeyUsageError(f"invalid URL {url!r}: expected http:// or https:// with a host")
    concurrency = _int(flags, "c", 50)
    requests = _int(flags, "n", 200)
    qps = _float(flags, "q", 0.0)
    timeout = float(_int(flags, "t", 20))
    duration = 0.0
    if "z" in flags:
        try:
            duration = parse_go_duration(flags["z"][-1])
        except DurationError as err:
            raise HeyUsageError(f'invalid value "{flags["z"][-1]}" for flag -z: {err}') from None
    if requests <= 0 or concurrency <= 0:
        raise HeyUsageError("-n and -c cannot be smaller than 1.")
    if concurrency > MAX_WORKERS:
        raise HeyUsageError(f"-c {concurrency} is more than the {MAX_WORKERS} workers allowed")
    if qps < 0 or timeout < 0 or duration < 0:
        raise HeyUsageError("-q, -t and -z cannot be negative.")
    if duration > MAX_DURATION:
        raise HeyUsageError(f"-z {flags['z'][-1]} is longer than the 24h allowed")
    if duration > 0:
        requests = UNLIMITED
    elif requests < concurrency:
        raise HeyUsageError("-n cannot be less than -c.")
    elif requests > MAX_REQUESTS:
        raise HeyUsageError(f"-n {requests} is more than the {MAX_REQUESTS} requests allowed")
    method = flags.get("m", ["GET"])[-1].upper()
    if method not in _METHODS:
        raise HeyUsageError(f"unsupported method {method}: one of {', '.join(sorted(_METHODS))}")
    notes = []
    if _bool(flags, "h2"):
        notes.append("-h2 ignored: requests use HTTP/1.1")
    if "cpus" in flags:
        notes.append("-cpus ignored")
    return HeyOptions(
        url=url,
        requests=requests,
        concurrency=concurrency,
        qps=qps,
        duration=duration,
        method=method,
        headers=tuple(_headers(flags)),
        body=flags.get("d", [""])[-1].encode(),
        content_type=flags.get("T", ["text/html"])[-1],
        timeout=timeout,
        host=flags.get("host", [""])[-1],
        proxy=flags.get("x", [""])[-1],
        disable_compression=_bool(flags, "disable-compression"),
        disable_keepalive=_bool(flags, "disable-keepalive"),
        disable_redirects=_bool(flags, "disable-redirects"),
        notes=tuple(notes),
    )
