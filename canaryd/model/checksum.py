"""Flagger's config checksum, shared by the watch cache (which keeps only checksums of ConfigMaps and
Secrets) and the engine (which compares them): one definition, matched against Go's output."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import orjson


def go_json(value: Any) -> str:
    """``json.Marshal`` as Go writes it: sorted map keys, no spaces, ``<`` ``>`` ``&`` U+2028 U+2029
    escaped as ``\\u003c`` etc., ``\\b``/``\\f`` short escapes (Go ≥ 1.22), other controls ``\\u00xx``."""
    try:  # orjson escapes exactly as Go does apart from the HTML-safe set below, and is 10x faster
        text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):  # e.g. lone surrogates: the slow, lenient path
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def config_checksum(data: Mapping[str, str] | None) -> str:
    """Flagger's checksum of a ConfigMap's or Secret's ``.data`` (Secret values are the base64 strings
    the API returns, which is what Go's ``[]byte`` marshals to): hex of the first 8 bytes of sha256.
    Absent data is Go's nil map, marshalled as ``null`` (the API server omits empty ``data``, so ``{}``
    only reaches us from hand-made objects; Go would marshal it as ``{}``)."""
    text = "null" if data is None else go_json(dict(data))
    return hashlib.sha256(text.encode("utf-8")).digest()[:8].hex()
