"""AWS Signature Version 4 for one request (what CloudWatch's query API requires), small enough to
read: https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html. Pure functions,
shared by canaryd's CloudWatch client and the test fake that verifies its signatures."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str = field(repr=False)
    token: str = field(default="", repr=False)  # session token of temporary credentials
    source: str = ""  # where they came from, for messages (``environment``, ``shared credentials file``)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def canonical_request(method: str, path: str, query: str, headers: Mapping[str, str], body: bytes) -> str:
    """``query`` must already be in canonical form (sorted, RFC 3986 encoded); POSTs use ``""``."""
    names = sorted(k.lower() for k in headers)
    lowered = {k.lower(): " ".join(v.strip().split()) for k, v in headers.items()}
    return "\n".join([method, quote(path or "/", safe="/-_.~"), query,
                      "".join(f"{n}:{lowered[n]}\n" for n in names), ";".join(names),
                      hashlib.sha256(body).hexdigest()])


def signature(secret_key: str, amz_date: str, region: str, service: str, request_text: str) -> str:
    day = amz_date[:8]
    scope = f"{day}/{region}/{service}/aws4_request"
    digest = hashlib.sha256(request_text.encode()).hexdigest()
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, digest])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret_key}".encode(), day), region), service), "aws4_request")
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def sign(creds: Credentials, method: str, path: str, headers: Mapping[str, str], body: bytes, *,
         region: str, service: str, amz_date: str) -> dict[str, str]:
    """``headers`` (which must include ``Host``) plus ``X-Amz-Date``, the session token if any, and
    ``Authorization``: the headers to send."""
    out = dict(headers)
    out["X-Amz-Date"] = amz_date
    if creds.token:
        out["X-Amz-Security-Token"] = creds.token
    text = canonical_request(method, path, "", out, body)
    names = ";".join(sorted(k.lower() for k in out))
    sig = signature(creds.secret_key, amz_date, region, service, text)
    out["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={creds.access_key}/{amz_date[:8]}/{region}/"
                            f"{service}/aws4_request, SignedHeaders={names}, Signature={sig}")
    return out
