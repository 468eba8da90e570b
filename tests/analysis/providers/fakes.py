"""Loopback servers speaking the SaaS metric providers' HTTP APIs, as their documentation describes
them, recording every request canaryd makes. Each checks the provider's own authentication (API keys in
headers; for CloudWatch the SigV4 signature, recomputed with the shared secret) and answers with a
queued answer, a 403 in the provider's words when authentication fails, or one of the hostile modes:

    fake.answer(status, body, headers)   the next request gets this (default: the documented example)
    fake.mode = "hang"                   never answer
"""

from __future__ import annotations

import asyncio
import base64
import re
import ssl
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from canaryd.analysis.providers import rs256, sigv4
from e2e.loopback import serve


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Fake:
    """Base: subclasses set ``route`` and implement ``authorized`` and ``default``."""

    seen: list[Seen] = field(default_factory=list)
    queued: list[Answer] = field(default_factory=list)
    mode: str = ""
    runner: web.AppRunner | None = None
    url: str = ""
    method: str = "GET"
    route: str = "/"

    async def start(self, tls: ssl.SSLContext | None = None) -> Fake:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner, port = await serve(app, tls, shutdown_timeout=0.1)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def answer(self, status: int, body: bytes | object, headers: dict[str, str] | None = None) -> None:
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        self.queued.append(Answer(status, raw, headers or {}))

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append(Seen(request.method, request.path, dict(request.query), dict(request.headers), body))
        if self.mode == "hang":
            await asyncio.sleep(3600)
        if request.method != self.method or re.fullmatch(self.route, request.path) is None:
            return web.Response(status=404, body=b'{"errors":["Not found"]}')
        denied = self.authorized(request, body)
        if denied is not None:
            return web.Response(status=denied.status, body=denied.body, headers=denied.headers)
        out = self.queued.pop(0) if self.queued else self.default()
        return web.Response(status=out.status, body=out.body, headers=out.headers)

    def authorized(self, request: web.Request, body: bytes) -> Answer | None:
        raise NotImplementedError

    def default(self) -> Answer:
        raise NotImplementedError


# https://docs.datadoghq.com/api/latest/metrics/#query-timeseries-points (v1, example response)
DATADOG_ANSWER = {
    "status": "ok", "res_type": "time_series", "query": "avg:system.cpu.idle{*}",
    "from_date": 1575317847000, "to_date": 1575318447000, "message": "", "group_by": [],
    "series": [{"metric": "system.cpu.idle", "display_name": "system.cpu.idle", "scope": "*",
                "expression": "avg:system.cpu.idle{*}", "aggr": "avg", "interval": 20, "length": 3,
                "start": 1575317847000, "end": 1575318447000, "unit": None,
                "pointlist": [[1575317847000.0, 99.5], [1575317867000.0, 98.25], [1575317887000.0, 12.0]],
                "tag_set": []}],
}


@dataclass
class DatadogFake(Fake):
    api_key: str = "dd-api-KEY-1234"
    app_key: str = "dd-app-KEY-5678"
    route: str = "/api/v1/query"

    def authorized(self, request: web.Request, body: bytes) -> Answer | None:
        if (request.headers.get("DD-API-KEY"), request.headers.get("DD-APPLICATION-KEY")) != (
                self.api_key, self.app_key):
            return Answer(403, b'{"errors":["Forbidden"]}')
        return None

    def default(self) -> Answer:
        return Answer(200, orjson.dumps(DATADOG_ANSWER))


# https://docs.newrelic.com/docs/apis/insights-apis/query-insights-event-data-api/ (JSON response:
# ``results`` holds one object per selected function, keyed by the function's name; an expression
# such as ``filter(...) / count(*) * 100`` is keyed ``result``)
NEWRELIC_ANSWER = {
    "results": [{"result": 1.25}],
    "metadata": {"eventTypes": ["Metric"], "eventType": "Metric", "openEnded": True,
                 "beginTime": "2024-01-01T00:00:00Z", "endTime": "2024-01-01T00:01:00Z",
                 "beginTimeMillis": 1704067200000, "endTimeMillis": 1704067260000,
                 "rawSince": "60 SECONDS AGO", "rawUntil": "NOW", "rawCompareWith": "",
                 "guid": "0b7e0d2c", "routerGuid": "0b7e0d2c", "messages": [],
                 "contents": [{"function": "alias", "alias": "result"}]},
}


@dataclass
class NewRelicFake(Fake):
    account: str = "1234567"
    key: str = "NRIQ-query-KEY-abc"
    route: str = r"/v1/accounts/[0-9]+/query"

    def authorized(self, request: web.Request, body: bytes) -> Answer | None:
        key = request.headers.get("X-Query-Key")
        if request.path != f"/v1/accounts/{self.account}/query" or key != self.key:
            return Answer(401, b'{"error":"Invalid query key"}')
        return None

    def default(self) -> Answer:
        return Answer(200, orjson.dumps(NEWRELIC_ANSWER))


# https://docs.dynatrace.com/docs/dynatrace-api/environment-api/metric-v2/get-data-points (response
# body: MetricData; with resolution=Inf one timestamp and one value per series)
DYNATRACE_ANSWER = {
    "totalCount": 2, "nextPageKey": None, "resolution": "Inf",
    "result": [{"metricId": "builtin:service.errors.total.rate:splitBy(\"dt.entity.service\")",
                "dataPointCountRatio": 0.0001, "dimensionCountRatio": 0.001,
                "data": [{"dimensions": ["SERVICE-1"], "dimensionMap": {"dt.entity.service": "SERVICE-1"},
                          "timestamps": [1704067260000], "values": [7.5]},
                         {"dimensions": ["SERVICE-2"], "dimensionMap": {"dt.entity.service": "SERVICE-2"},
                          "timestamps": [1704067260000], "values": [0.5]}]}],
}


@dataclass
class DynatraceFake(Fake):
    token: str = "dt0c01.TOKEN.secretpart"
    route: str = "/api/v2/metrics/query"

    def authorized(self, request: web.Request, body: bytes) -> Answer | None:
        if request.headers.get("Authorization") != f"Api-Token {self.token}":
            return Answer(401, b'{"error":{"code":401,"message":"Token Authentication failed"}}')
        return None

    def default(self) -> Answer:
        return Answer(200, orjson.dumps(DYNATRACE_ANSWER))


# https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html (query API,
# XML response) and https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CommonErrors.html
CLOUDWATCH_ANSWER = b"""<GetMetricDataResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/">
  <GetMetricDataResult>
    <MetricDataResults>
      <member>
        <Id>e1</Id><Label>ErrorRate</Label><StatusCode>Complete</StatusCode>
        <Timestamps><member>2024-01-01T00:09:00Z</member><member>2024-01-01T00:08:00Z</member></Timestamps>
        <Values><member>0.0421</member><member>0.5</member></Values>
      </member>
    </MetricDataResults>
    <Messages/>
  </GetMetricDataResult>
  <ResponseMetadata><RequestId>6f7b7c8e-0000-4e2b-9f5e-8d2c3b1a0f00</RequestId></ResponseMetadata>
</GetMetricDataResponse>"""


def aws_error(code: str, message: str) -> bytes:
    return (f'<ErrorResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><Error><Type>Sender'
            f'</Type><Code>{code}</Code><Message>{message}</Message></Error>'
            f'<RequestId>6f7b7c8e</RequestId></ErrorResponse>').encode()


_AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                   r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})")


@dataclass
class CloudWatchFake(Fake):
    access_key: str = "AKIDEXAMPLE"
    secret_key: str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    region: str = "eu-west-1"
    method: str = "POST"
    route: str = "/"

    def form(self, index: int = -1) -> dict[str, str]:
        return dict(parse_qsl(self.seen[index].body.decode()))

    def authorized(self, request: web.Request, body: bytes) -> Answer | None:
        """Recomputes the signature from what arrived, with the shared secret."""
        m = _AUTH.fullmatch(request.headers.get("Authorization", ""))
        if m is None:
            return Answer(403, aws_error("MissingAuthenticationToken", "Request is missing Authentication "
                                         "Token"))
        key, day, region, service, signed, sig = m.groups()
        if key != self.access_key:
            return Answer(403, aws_error("InvalidClientTokenId", "The security token included in the "
                                         "request is invalid."))
        amz_date = request.headers.get("X-Amz-Date", "")
        headers = {n: request.headers.get(n, "") for n in signed.split(";")}
        text = sigv4.canonical_request(request.method, request.path, "", headers, body)
        want = sigv4.signature(self.secret_key, amz_date, region, service, text)
        if (region, service, day) != (self.region, "monitoring", amz_date[:8]) or want != sig \
                or "host" not in headers:
            return Answer(403, aws_error("SignatureDoesNotMatch", "The request signature we calculated "
                                         "does not match the signature you provided."))
        return None

    def default(self) -> Answer:
        return Answer(200, CLOUDWATCH_ANSWER, {"Content-Type": "text/xml"})


# https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoleWithWebIdentity.html (query API,
# unsigned; XML answer)
@dataclass
class StsFake(Fake):
    web_token: str = "eyJhbGciOiJSUzI1NiJ9.projected-sa-token.sig"
    role: str = "arn:aws:iam::123456789012:role/canaryd"
    creds: tuple[str, str, str] = ("ASIAEXAMPLE", "sts-secret-KEY", "sts-session-TOKEN")
    expiration: str = "2099-01-01T00:00:00Z"
    method: str = "POST"
    route: str = "/"

    def authorized(self, request: web.Request, body: bytes) -> Answer | None:
        form = dict(parse_qsl(body.decode()))
        if (form.get("Action"), form.get("RoleArn"), form.get("WebIdentityToken")) != (
                "AssumeRoleWithWebIdentity", self.role, self.web_token):
            return Answer(400, b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
                               b'<Type>Sender</Type><Code>InvalidIdentityToken</Code>'
                               b'<Message>Incorrect token audience</Message></Error></ErrorResponse>')
        return None

    def default(self) -> Answer:
        key, secret, token = self.creds
        return Answer(200, f"""<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:flagger:canaryd</SubjectFromWebIdentityToken>
    <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/canaryd/canaryd</Arn>
      <AssumedRoleId>AROACLKWSDQRAOEXAMPLE:canaryd</AssumedRoleId></AssumedRoleUser>
    <Credentials><SessionToken>{token}</SessionToken><SecretAccessKey>{secret}</SecretAccessKey>
      <Expiration>{self.expiration}</Expiration><AccessKeyId>{key}</AccessKeyId></Credentials>
    <Audience>sts.amazonaws.com</Audience>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>""".encode())


# https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-service.html (IMDSv2)
# and https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-metadata-security-credentials.html;
# the container endpoint (EKS Pod Identity) answers the same JSON document
@dataclass
class MetadataFake(Fake):
    session_token: str = "AQAEAimds-session-TOKEN=="
    role: str = "canaryd-node-role"
    creds: tuple[str, str, str] = ("ASIAIMDS", "imds-secret-KEY", "imds-session-TOKEN")
    container_token: str = "pod-identity-auth-TOKEN"
    expiration: str = "2099-01-01T00:00:00Z"

    def _document(self) -> bytes:
        key, secret, token = self.creds
        return orjson.dumps({"Code": "Success", "LastUpdated": "2024-01-01T00:00:00Z", "Type": "AWS-HMAC",
                             "AccessKeyId": key, "SecretAccessKey": secret, "Token": token,
                             "Expiration": self.expiration})

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append(Seen(request.method, request.path, dict(request.query), dict(request.headers), body))
        path = request.path
        if path == "/latest/api/token":
            if request.method != "PUT" or "X-aws-ec2-metadata-token-ttl-seconds" not in request.headers:
                return web.Response(status=400)
            return web.Response(text=self.session_token)
        if path.startswith("/latest/meta-data/iam/security-credentials/"):
            if request.headers.get("X-aws-ec2-metadata-token") != self.session_token:
                return web.Response(status=401)
            role = path.removeprefix("/latest/meta-data/iam/security-credentials/")
            if not role:
                return web.Response(text=self.role + "\n")
            return web.Response(body=self._document()) if role == self.role else web.Response(status=404)
        if path == "/v1/credentials":  # EKS Pod Identity agent
            if request.headers.get("Authorization") != self.container_token:
                return web.Response(status=401, text='{"Message":"invalid token"}')
            return web.Response(body=self._document())
        return web.Response(status=404)


# A throwaway 1024-bit RSA key for the fake service account (generated for these tests only).
TEST_SA_PRIVATE_KEY = """\
-----BEGIN PRIVATE KEY-----
MIICdwIBADANBgkqhkiG9w0BAQEFAASCAmEwggJdAgEAAoGBALpEVtZ6Sv24FPMV
Vx0uTiiYyZ98PcANOq9mrxQGub4nMvtBg4LPKYdvV+JKSf3LgYwBIQzl2VqvG7Fg
tmdrKvCiEWWXKuPHJFKB3QF/3W57a5PWuNxzyNEmP7eRhzXsG68pndmyZQV8rX9z
knSIDqJXN2GEkxvyOskmXMqhItsnAgMBAAECgYBDOoM1KjKC3LwC+ILWr23aTTsI
aylGdf/mauNqEPtdXHyUHxM+VVMh5NgNfs6x4Y/CXm31X8hRaL5QCR4MuatnTQi8
mUWqTyj1R1scQFddtIHg6jx8w66GrxCRsldcPnsFjmJUwDm6njTE9ckr/eV/D4MZ
I+uQXI5xKIvGnu86kQJBAOAEg0qsZ2ol+6yQfwwzDvyYWm8ACNKL9rSvLcoaNDOx
V46cSq80mpgH8c1lSp/XMZsxBSbzddRZn6TB3jW7LEMCQQDU3Bloae1daab7kE6j
gYcWEOBl6QUnFC160LViddTqiEyNFt34A9Gk/oZeydtoy7NvRMHkqV1X95F1WAFH
LBlNAkEA3Nh2GsrmVMZHW/ND3OIFN053cRCmofLr72r4CFNW/VMrD2PTWPDSK2lB
n4zpSbUbqXRlMOY5VnRYp1Oc3nm9AwJAe3yEsPJi5gJZATAirvCB8ecwh267soQe
LlXOJKS/NKCF6IQPmcZ9ZP7T7UGlrBIgsrhs0779i/7vv+eiNiv7MQJBANo6WdBZ
jEOOLaAqb5+D3B/L5S4BclxYj8m+xqDupUEa/3CkJFEUwjcWpc30jCqV85QeLPLu
y2vBoOfoKtmyz5Y=
-----END PRIVATE KEY-----
"""


# https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.timeSeries/query (REST form of
# QueryTimeSeries: POST {"query": MQL} -> timeSeriesDescriptor, timeSeriesData[].pointData[].values[],
# nextPageToken) and https://developers.google.com/identity/protocols/oauth2/service-account#httprest
# (the JWT bearer grant at the key's token_uri)
GOOGLE_ANSWER = {
    "timeSeriesDescriptor": {"labelDescriptors": [{"key": "resource.service_name"}],
                             "pointDescriptors": [{"key": "value.ratio", "valueType": "DOUBLE",
                                                   "metricKind": "GAUGE"}]},
    "timeSeriesData": [{"labelValues": [{"stringValue": "podinfo"}],
                        "pointData": [{"values": [{"doubleValue": 0.93}],
                                       "timeInterval": {"startTime": "2024-01-01T00:09:00Z",
                                                        "endTime": "2024-01-01T00:10:00Z"}},
                                      {"values": [{"doubleValue": 0.5}],
                                       "timeInterval": {"startTime": "2024-01-01T00:08:00Z",
                                                        "endTime": "2024-01-01T00:09:00Z"}}]}],
}


@dataclass
class GoogleFake(Fake):
    project: str = "my-project"
    access_token: str = "ya29.fake-ACCESS-token"
    client_email: str = "canary@my-project.iam.gserviceaccount.com"
    assertions: list[dict[str, object]] = field(default_factory=list)

    def key_file(self) -> str:
        return orjson.dumps({"type": "service_account", "project_id": self.project, "private_key_id": "k1",
                             "private_key": TEST_SA_PRIVATE_KEY, "client_email": self.client_email,
                             "token_uri": self.url + "/token"}).decode()

    def _verify_jwt(self, jwt: str) -> bool:
        key = rs256.load_pem(TEST_SA_PRIVATE_KEY)
        try:
            head, claims, sig = jwt.split(".")
            signature = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
            doc = orjson.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
        except ValueError:
            return False
        self.assertions.append(doc)
        return rs256.verify(key.n, key.e, f"{head}.{claims}".encode(), signature) and \
            doc.get("iss") == self.client_email and doc.get("aud") == self.url + "/token"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append(Seen(request.method, request.path, dict(request.query), dict(request.headers), body))
        if self.mode == "hang":
            await asyncio.sleep(3600)
        if request.path == "/token" and request.method == "POST":
            form = dict(parse_qsl(body.decode()))
            if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" or \
                    not self._verify_jwt(form.get("assertion", "")):
                return web.Response(status=400, body=b'{"error":"invalid_grant","error_description":'
                                                     b'"Invalid JWT Signature."}')
            return web.Response(body=orjson.dumps({"access_token": self.access_token, "expires_in": 3599,
                                                   "token_type": "Bearer"}))
        if request.path == "/computeMetadata/v1/instance/service-accounts/default/token":
            if request.headers.get("Metadata-Flavor") != "Google":
                return web.Response(status=403)
            return web.Response(body=orjson.dumps({"access_token": self.access_token, "expires_in": 3599,
                                                   "token_type": "Bearer"}))
        if request.path != f"/v3/projects/{self.project}/timeSeries:query" or request.method != "POST":
            return web.Response(status=404, body=b'{"error":{"code":404,"status":"NOT_FOUND","message":'
                                                  b'"Requested entity was not found."}}')
        if request.headers.get("Authorization") != f"Bearer {self.access_token}":
            return web.Response(status=401, body=b'{"error":{"code":401,"status":"UNAUTHENTICATED",'
                                                  b'"message":"Request had invalid authentication '
                                                  b'credentials."}}')
        out = self.queued.pop(0) if self.queued else Answer(200, orjson.dumps(GOOGLE_ANSWER))
        return web.Response(status=out.status, body=out.body, headers=out.headers)
