"""The ``influxdb`` provider: a Flux query sent to InfluxDB's ``/api/v2/query``, read as Flagger v1.44
reads it (docs/providers.md, "InfluxDB").

Flagger uses InfluxDB's Go client, which POSTs the query as JSON with the fully annotated CSV dialect
and reads the answer as annotated CSV; the value is the ``_value`` of the *first* record, and it must be
a ``double``. An answer without records is 0 in Flagger (not "no values"); a record without a value is
"no values".
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import aiohttp
import orjson
from yarl import URL

from canaryd.analysis.bounded import excerpt
from canaryd.analysis.providers.protocol import ProviderError, ProviderNoValues, ProviderSettings
from canaryd.analysis.providers.request import request, secret_pair, store_address
from canaryd.analysis.urls import host_of
from canaryd.model.providers import MetricTemplate

NAME = "influxdb"
# the Go client's default dialect: every annotation, a header row, comma-separated
DIALECT = {"annotations": ["datatype", "group", "default"], "delimiter": ",", "header": True}


def query_url(address: str, org: str) -> URL:
    """``api/v2/query?org=<org>`` resolved against the address as the Go client does (a relative
    reference: ``http://h/x`` gives ``http://h/api/v2/query``, ``http://h/x/`` gives
    ``http://h/x/api/v2/query``); ``org`` is sent even when empty."""
    base = URL(address)
    return base.join(URL("api/v2/query")).with_query({"org": org})


def credentials(template: MetricTemplate, secrets: Mapping[str, str]) -> tuple[str, str]:
    """(token, org): both required when the template has a ``secretRef``, none without one."""
    return secret_pair(NAME, secrets, bool(template.provider.secret_name),
                       (("token", "an authentication token"), ("org", "an organisation")))


@dataclass(frozen=True)
class InfluxDBProvider:
    """Stateless: one POST per query."""

    async def query(self, session: aiohttp.ClientSession, template: MetricTemplate, rendered_query: str,
                    secrets: Mapping[str, str], settings: ProviderSettings) -> float:
        address = store_address(NAME, template.provider.address)
        token, org = credentials(template, secrets)
        # spec.provider.headers are not sent, as in Flagger
        headers = {"Content-Type": "application/json", "Accept-Encoding": "gzip"}
        if token:
            headers["Authorization"] = f"Token {token}"
        body = orjson.dumps({"query": rendered_query, "type": "flux", "dialect": DIALECT})
        url = query_url(address, org)
        scrub = tuple(s for s in (token,) if s)
        try:
            answer = await request(session, "InfluxDB", "POST", url, headers=headers, secrets=scrub,
                                   timeout=settings.timeout, limit=settings.max_answer_bytes, data=body,
                                   ssl=not template.provider.insecure_skip_verify)
        except ProviderNoValues:
            raise
        except ProviderError as e:
            raise ProviderError(f"error accessing influxdb query api: {e}") from None
        return first_value(answer.decode("utf-8", "replace"), host_of(str(url)), scrub)


def _tables(text: str) -> Iterator[tuple[dict[str, str], dict[str, str], list[str], list[str]]]:
    """(datatypes, defaults, header, row) for each data row of an annotated CSV answer."""
    datatypes: list[str] = []
    defaults: list[str] = []
    header: list[str] = []
    for row in csv.reader(text.splitlines()):
        if not row or all(not cell for cell in row):  # a blank line ends a table
            datatypes, defaults, header = [], [], []
            continue
        first = row[0]
        if first == "#datatype":
            datatypes, header = row, []
        elif first == "#default":
            defaults = row
        elif first.startswith("#"):
            continue
        elif not header:
            header = row
        else:
            yield (dict(zip(header, datatypes, strict=False)), dict(zip(header, defaults, strict=False)),
                   header, row)


def first_value(text: str, host: str, secrets: tuple[str, ...] = ()) -> float:
    """The first record's ``_value`` as Flagger reads it: empty (and no default) is "no values", a
    type other than ``double`` is an invalid response, an error table is a query error, and an answer
    without records is 0."""
    for datatypes, defaults, header, row in _tables(text):
        record = dict(zip(header, row, strict=False))
        shown = excerpt(",".join(row), "", *secrets)
        if "error" in header and "_value" not in header:
            reason = excerpt(record.get("error", ""), "", *secrets)
            raise ProviderError(f"query error: InfluxDB {host}: {reason}")
        raw = record.get("_value", "") or defaults.get("_value", "")
        if not raw:
            raise ProviderNoValues(f"invalid response: {shown}: no values found")
        if datatypes.get("_value") != "double":
            raise ProviderError(f"invalid response: {shown}")
        try:
            return float(raw)
        except ValueError:
            raise ProviderError(f"invalid response: {shown}") from None
    return 0.0
