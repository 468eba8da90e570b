"""Flagger v1.44's command-line flags, read with Go's ``flag`` rules and turned into ``canaryd run``'s own.

Why: a Flagger Deployment (its Helm chart, its kustomize base) passes Go-style single-dash flags
(``-mesh-provider=istio -enable-leader-election=true``); swapping only the image must not crash-loop.
Every flag Flagger v1.44 defines (its own and klog's, as ``flagger -h`` lists them) is accepted: the ones
canaryd implements are translated, the others are reported back so ``canaryd run`` logs one warning
naming them. Go's spellings: ``-flag=value``, ``--flag=value``, ``-flag value`` (not for booleans),
``-flag`` or ``-flag=true|false`` for booleans. Pure: argv in, argv out."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType


class Kind(Enum):
    """How Go's ``flag`` package reads the flag's value."""

    BOOL = "bool"  # no separate value; =true/=false
    STRING = "string"
    INT = "int"
    UINT = "uint"
    DURATION = "duration"
    VALUE = "value"  # a klog flag.Value: any text, checked by klog only


@dataclass(frozen=True)
class GoFlag:
    kind: Kind
    option: str = ""  # the canaryd run option it becomes ("" = accepted, ignored with a warning)


_S, _B = Kind.STRING, Kind.BOOL
# every flag of Flagger v1.44.0's binary: cmd/flagger/main.go's own, then those klog.InitFlags adds
FLAGGER_FLAGS: Mapping[str, GoFlag] = MappingProxyType({
    "kubeconfig": GoFlag(_S, "--kubeconfig"),
    "kubeconfig-qps": GoFlag(Kind.INT),
    "kubeconfig-burst": GoFlag(Kind.INT),
    "master": GoFlag(_S, "--master"),
    "metrics-server": GoFlag(_S, "--metrics-server"),
    "control-loop-interval": GoFlag(Kind.DURATION),
    "log-level": GoFlag(_S, "--log-level"),
    "port": GoFlag(_S, "--port"),
    "slack-url": GoFlag(_S, "--slack-url"),
    "slack-token": GoFlag(_S, "--slack-token"),
    "slack-proxy-url": GoFlag(_S, "--slack-proxy-url"),
    "slack-user": GoFlag(_S, "--slack-user"),
    "slack-channel": GoFlag(_S, "--slack-channel"),
    "event-webhook": GoFlag(_S, "--event-webhook"),
    "msteams-url": GoFlag(_S, "--msteams-url"),
    "msteams-proxy-url": GoFlag(_S, "--msteams-proxy-url"),
    "include-label-prefix": GoFlag(_S, "--include-label-prefix"),
    "threadiness": GoFlag(Kind.INT),
    "zap-replace-globals": GoFlag(_B),
    "zap-encoding": GoFlag(_S),
    "namespace": GoFlag(_S, "--namespace"),
    "mesh-provider": GoFlag(_S, "mesh-provider"),  # checked here: istio only
    "selector-labels": GoFlag(_S, "--selector-labels"),
    "ingress-annotations-prefix": GoFlag(_S),
    "ingress-class": GoFlag(_S),
    "enable-leader-election": GoFlag(_B, "--leader-elect"),
    "leader-election-namespace": GoFlag(_S, "--leader-election-namespace"),
    "enable-config-tracking": GoFlag(_B, "--enable-config-tracking"),
    "version": GoFlag(_B, "version"),
    "kubeconfig-service-mesh": GoFlag(_S, "kubeconfig-service-mesh"),  # checked here
    "cluster-name": GoFlag(_S, "--cluster-name"),
    "no-cross-namespace-refs": GoFlag(_B, "--no-cross-namespace-refs"),
    # klog's (they shape klog's own output, which canaryd does not have)
    "add_dir_header": GoFlag(_B),
    "alsologtostderr": GoFlag(_B),
    "alsologtostderrthreshold": GoFlag(Kind.VALUE),
    "legacy_stderr_threshold_behavior": GoFlag(_B),
    "log_backtrace_at": GoFlag(Kind.VALUE),
    "log_dir": GoFlag(_S),
    "log_file": GoFlag(_S),
    "log_file_max_size": GoFlag(Kind.UINT),
    "logtostderr": GoFlag(_B),
    "one_output": GoFlag(_B),
    "skip_headers": GoFlag(_B),
    "skip_log_headers": GoFlag(_B),
    "stderrthreshold": GoFlag(Kind.VALUE),
    "v": GoFlag(Kind.VALUE),
    "vmodule": GoFlag(Kind.VALUE),
})
SUPPORTED_MESH = "istio"
# Flagger's (zap's) level names -> canaryd's
LOG_LEVELS: Mapping[str, str] = MappingProxyType({
    "debug": "debug", "info": "info", "warn": "warning", "warning": "warning", "error": "error",
    "fatal": "error", "panic": "error",
})
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})  # Go's strconv.ParseBool
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_GO_DURATION = re.compile(r"^[-+]?(0|(\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$")


class FlagError(ValueError):
    """A flag canaryd cannot run with; the text is the one line printed before exiting."""


@dataclass
class Translation:
    argv: list[str]  # ``canaryd run``'s own spelling, canaryd-only arguments passed through unchanged
    ignored: list[str] = field(default_factory=list)  # Flagger flags given that canaryd has no use for
    version: bool = False  # -version: print the version and exit


def _go_bool(name: str, text: str) -> bool:
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise FlagError(f'invalid boolean value "{text}" for -{name}: want true or false')


def _check(name: str, kind: Kind, text: str) -> None:
    """Refuse what Go's flag package would refuse, for the ignored numeric flags too: a typo fails loudly."""
    want = {Kind.INT: "an integer", Kind.UINT: "an unsigned integer", Kind.DURATION: "a duration such as 10s"}
    try:
        if kind is Kind.INT:
            int(text, 0)
        elif kind is Kind.UINT and int(text, 0) < 0:
            raise ValueError(text)
        elif kind is Kind.DURATION and not _GO_DURATION.match(text):
            raise ValueError(text)
    except ValueError:
        raise FlagError(f'invalid value "{text}" for -{name}: want {want[kind]}') from None


def translate(argv: Sequence[str], takes_value: Callable[[str], bool] = lambda _: False) -> Translation:
    """Flagger's flags in ``argv`` -> canaryd's; other arguments pass through for ``canaryd run``'s own
    parser (``takes_value(option)`` says whether a canaryd option eats the next argument). Raises
    ``FlagError``."""
    out = Translation(argv=[])
    values: dict[str, str] = {}
    leader: bool | None = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        name, eq, value = arg.lstrip("-").partition("=") if arg.startswith("-") else ("", "", "")
        dashes = len(arg) - len(arg.lstrip("-"))
        spec = FLAGGER_FLAGS.get(name) if 1 <= dashes <= 2 and name else None
        if spec is None:
            out.argv.append(arg)
            if not eq and arg.startswith("--") and takes_value(arg) and i < len(argv):
                out.argv.append(argv[i])
                i += 1
            continue
        if spec.kind is Kind.BOOL:
            flag = _go_bool(name, value) if eq else True
            value = "true" if flag else "false"
        else:
            if not eq:
                if i >= len(argv):
                    raise FlagError(f"flag needs an argument: -{name}")
                value = argv[i]
                i += 1
            _check(name, spec.kind, value)
        if not spec.option:
            out.ignored.append(f"-{name}={value}")
            continue
        values[name] = value
        if name == "version":
            out.version = value == "true"
        elif name == "enable-leader-election":
            leader = value == "true"
            out.argv.append("--leader-elect" if leader else "--no-leader-elect")
        elif name == "enable-config-tracking":
            out.argv.append("--enable-config-tracking" if value == "true" else "--no-enable-config-tracking")
        elif name == "log-level":
            level = LOG_LEVELS.get(value)
            if level is None:
                raise FlagError(f'invalid value "{value}" for -log-level: want debug, info, warn or error')
            out.argv.append(f"--log-level={level}")
        elif spec.option.startswith("--"):
            out.argv.append(f"{spec.option}={value}")
    _check_mesh(values)
    if leader and values.get("namespace"):
        # as Flagger: a namespaced install elects in the namespace it watches
        out.argv.append(f"--leader-election-namespace={values['namespace']}")
    return out


def _check_mesh(values: Mapping[str, str]) -> None:
    provider = values.get("mesh-provider", "")
    if provider not in ("", SUPPORTED_MESH):
        raise FlagError(f"-mesh-provider={provider} is not supported: canaryd drives Istio only "
                        f"(-mesh-provider={SUPPORTED_MESH})")
    mesh_config = values.get("kubeconfig-service-mesh", "")
    if mesh_config and mesh_config != values.get("kubeconfig", ""):
        raise FlagError("-kubeconfig-service-mesh is not supported: canaryd writes VirtualServices "
                        "to the cluster it watches (drop the flag or set it to -kubeconfig's path)")
