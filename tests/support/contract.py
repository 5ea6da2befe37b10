"""Contract servers for the APIs that cannot run here: Grafana, Tempo, Loki, kube-state-metrics, and a gateway stand-in.

These are CONTRACT TESTS, not a substitute for the live run (molecule's kind scenario): each
server implements only the endpoints the collection calls, in the shape their API references
document, with the reference next to each handler. What the servers do *inside* (how Grafana
checks a datasource, how Tempo stores spans) is ours and kept minimal; the answers' shapes are
the contract.

``GatewayStandIn`` plays the agentgateway v1.4.1 proxy between the verification and the real WireMock:
it routes by the rendered HTTPRoutes and the policies attached to them and forwards requests with the
behaviour read from agentgateway's source (a new span in the caller's trace written into the upstream
``traceparent``; the backend key from the backend's auth policy in ``Authorization``; the models route
answered 501 by the proxy itself, as measured; the prompt guard's regex and webhook, the retry policy,
the MCP backend's stateful streamable HTTP sessions), records them in a
``ProxyMetrics`` registry (tests/support/proxy_metrics.py: the families, label sets and buckets of
v1.4.1) served on a separate metrics port with v1.4.1's content negotiation, which the real
Prometheus scrapes, and hands a span to the contract Tempo and an access log record to the contract
Loki, as the proxy exports them over OTLP (the record has no body: Loki keeps an empty line and the
fields as structured metadata).
"""

from __future__ import annotations

import base64
import collections
import decimal
import http.client
import http.server
import json
import math
import pathlib
import re
import secrets
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

from support.proxy_metrics import ProxyMetrics, cgroup_stats
from support.services import free_port


class JsonServer(object):
    """A threaded HTTP(S) server on 127.0.0.1; subclasses implement ``handle``."""

    def __init__(self, tls_context=None):
        self.delay = 0.0
        self.calls = []
        outer = self

        self._connections = set()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                outer._connections.add(self.connection)
                outer.connected()

            def finish(self):
                outer._connections.discard(self.connection)
                super().finish()

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parsed = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
                outer.calls.append((self.command, parsed.path, dict(self.headers)))
                if outer.delay:
                    time.sleep(outer.delay)
                try:
                    status, payload, headers = outer.handle(self.command, parsed.path, query, self.headers, body)
                except Exception as exc:  # noqa: BLE001 - a test server reports its own bugs as 500
                    status, payload, headers = 500, {"message": "contract server error: %s" % exc}, {}
                if isinstance(payload, (dict, list)):
                    data = json.dumps(payload).encode("utf-8")
                    headers = dict({"Content-Type": "application/json"}, **(headers or {}))
                else:
                    data = payload.encode("utf-8") if isinstance(payload, str) else (payload or b"")
                    headers = dict({"Content-Type": "text/plain; charset=utf-8"}, **(headers or {}))
                sent = ["%s %d\r\n" % (self.protocol_version, status), "Content-Length: %d\r\n\r\n" % len(data)]
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        for one in value if isinstance(value, list) else [value]:
                            self.send_header(key, one)
                            sent.append("%s: %s\r\n" % (key, one))
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                # bytes on the wire, about: request line, headers and body each way
                outer.exchanged(len(self.requestline) + 2 + len(str(self.headers)) + len(body),
                                sum(len(part) for part in sent) + len(data))

            do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls_context is not None:
            self.server.socket = tls_context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = "%s://127.0.0.1:%d" % ("https" if tls_context else "http", self.port)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def handle(self, method, path, query, headers, body):  # pragma: no cover - overridden
        return 404, {"message": "not found"}, {}

    def connected(self):
        """A client connection was accepted (a hook for subclasses)."""

    def exchanged(self, received, sent):
        """One request was answered: about ``received`` bytes in, ``sent`` out (a hook for subclasses)."""

    def stop(self):
        """Stop listening and cut open keep-alive connections too (a stopped service answers nothing)."""
        self.server.shutdown()
        self.server.server_close()
        for conn in list(self._connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _now_ns():
    return time.time_ns()


def parse_relative(value, now=None):
    """Grafana's ``now-15m`` / epoch milliseconds -> unix seconds."""
    now = now or time.time()
    value = str(value)
    if value.isdigit():
        return int(value) / 1000.0
    match = re.match(r"^now(?:-(\d+)([smhd]))?$", value)
    if not match:
        raise ValueError("time %r" % value)
    if not match.group(1):
        return now
    return now - int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


# ---- Tempo -------------------------------------------------------------------------------------
class ContractTempo(JsonServer):
    """Tempo's query API. Reference: https://grafana.com/docs/tempo/latest/api_docs/ (Tempo 2.x/3.x)."""

    def __init__(self):
        super().__init__()
        self.ready = True
        self.spans = {}  # trace id -> [(resource attributes, span)]

    @staticmethod
    def _kv(attributes):
        out = []
        for key, value in attributes.items():
            if isinstance(value, bool):
                out.append({"key": key, "value": {"boolValue": value}})
            elif isinstance(value, int):
                out.append({"key": key, "value": {"intValue": str(value)}})  # protobuf JSON: int64 as string
            elif isinstance(value, float):
                out.append({"key": key, "value": {"doubleValue": value}})
            else:
                out.append({"key": key, "value": {"stringValue": str(value)}})
        return out

    def ingest(self, trace_id, span_id, parent_span_id, name, attributes, resource):
        """What the distributor would store from an OTLP export (not part of the query contract)."""
        span = {"traceId": base64.b64encode(bytes.fromhex(trace_id)).decode(),
                "spanId": base64.b64encode(bytes.fromhex(span_id)).decode(),
                "parentSpanId": base64.b64encode(bytes.fromhex(parent_span_id)).decode() if parent_span_id else "",
                "name": name, "kind": "SPAN_KIND_SERVER",
                "startTimeUnixNano": str(_now_ns()), "endTimeUnixNano": str(_now_ns()),
                "attributes": self._kv(attributes)}
        self.spans.setdefault(trace_id, []).append((dict(resource), span))

    def _batches(self, trace_id):
        return [{"resource": {"attributes": self._kv(res)}, "scopeSpans": [{"scope": {"name": "agentgateway"},
                                                                            "spans": [span]}]}
                for res, span in self.spans[trace_id]]

    def handle(self, method, path, query, headers, body):
        # "Readiness probe": GET /ready returns 200 when Tempo is ready to serve traffic.
        if path == "/ready":
            return (200, "ready", {}) if self.ready else (503, "not ready", {})
        # "Query V2": GET /api/v2/traces/<traceid> -> query response with an OpenTelemetry JSON trace.
        match = re.match(r"^/api/v2/traces/([0-9a-fA-F]+)$", path)
        if match:
            trace_id = match.group(1).lower().rjust(32, "0")
            if trace_id not in self.spans:
                return 404, "trace not found", {}
            return 200, {"trace": {"resourceSpans": self._batches(trace_id)}}, {}
        # "Query": GET /api/traces/<traceid> -> the (mostly OTLP-compatible) JSON trace, "batches" in Tempo 2.
        match = re.match(r"^/api/traces/([0-9a-fA-F]+)$", path)
        if match:
            trace_id = match.group(1).lower().rjust(32, "0")
            if trace_id not in self.spans:
                return 404, "trace not found", {}
            return 200, {"batches": self._batches(trace_id)}, {}
        # "Search" (TraceQL): GET /api/search?q=&limit=&start=&end= -> {"traces": [...], "metrics": {...}}.
        # Only the TraceQL this collection sends is understood: { span.<attr> = "<v>" }, { span.<attr> != nil }, {}.
        if path == "/api/search":
            q = (query.get("q") or "{}").strip()
            match = re.match(r'^\{\s*(?:span\.([\w.]+)\s*(=|!=)\s*("([^"]*)"|nil))?\s*\}$', q)
            if not match:
                return 400, "contract server: unsupported TraceQL %r" % q, {}
            attr, op, value = match.group(1), match.group(2), match.group(4)
            found = []
            for trace_id, spans in self.spans.items():
                hits = []
                for res, span in spans:
                    attrs = {kv["key"]: list(kv["value"].values())[0] for kv in span["attributes"]}
                    if attr is None or (op == "!=" and attr in attrs) or (op == "=" and str(attrs.get(attr)) == value):
                        hits.append(span)
                if hits:
                    found.append({"traceID": trace_id, "rootServiceName": spans[0][0].get("service.name"),
                                  "rootTraceName": spans[0][1]["name"], "startTimeUnixNano": hits[0]["startTimeUnixNano"],
                                  "durationMs": 1, "spanSets": [{"spans": [{"spanID": s["spanId"]} for s in hits],
                                                                 "matched": len(hits)}]})
            return 200, {"traces": found[:int(query.get("limit") or 20)], "metrics": {"inspectedTraces": len(self.spans)}}, {}
        return 404, "404 page not found", {}


# ---- Loki --------------------------------------------------------------------------------------
# pkg/logql/syntax/parser.go validateMatchers, through logqlmodel.NewParseError: a selector whose every
# matcher matches the empty string would touch every stream.
LOKI_EMPTY_COMPATIBLE = ('parse error : queries require at least one regexp or equality matcher that does not have '
                         'an empty-compatible value. For instance, app=~".*" does not meet this requirement, but '
                         'app=~".+" will')


class ContractLoki(JsonServer):
    """Loki's query API. Reference: https://grafana.com/docs/loki/latest/reference/loki-http-api/."""

    _MATCHER = re.compile(r'\s*(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
    _STAGE = re.compile(r'\s*(?:(\|=|!=|\|~|!~)\s*"((?:[^"\\]|\\.)*)"|\|\s*(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)")')

    def __init__(self):
        super().__init__()
        self.entries = []  # (ns timestamp, stream labels, structured metadata, line)

    def push(self, labels, line, metadata=None):
        """What OTLP ingestion would store (Loki OTLP docs, "Format considerations"): some resource
        attributes as stream labels (service.name -> service_name), the others, the log record's
        attributes and its trace and span ids as structured metadata (dots become underscores:
        trace_id, span_id, http_status ...), the record's body as the line ("" without one)."""
        self.entries.append((_now_ns(), dict(labels), {k: str(v) for k, v in (metadata or {}).items()}, line))

    @staticmethod
    def _matches(op, value, actual):
        if op in ("=", "!="):
            hit = actual == value
        else:
            hit = re.fullmatch(value, actual) is not None
        return hit if op in ("=", "=~") else not hit

    @classmethod
    def _stage(cls, key, op, value, line, fields):
        if key != "line":  # a label filter: stream labels and structured metadata
            return cls._matches(op, value, fields.get(key, ""))
        hit = (value in line) if op in ("=", "!=") else re.search(value, line) is not None  # line filters: substring
        return hit if op in ("=", "=~") else not hit

    @classmethod
    def parse(cls, logql):
        """(stream matchers, stages) of ``<selector> <stages>``; ValueError with Loki's parse error otherwise.

        Understood: matchers = != =~ !~; line filters |= != |~ !~ "text"; label filters | key=|!=|=~|!~"v"."""
        match = re.match(r"^\s*\{([^}]*)\}(.*)$", logql, re.S)
        if not match:
            raise ValueError("parse error : syntax error: unexpected input in %r" % logql)
        body, matchers = match.group(1), []
        while body.strip():
            found = cls._MATCHER.match(body)
            if not found:
                raise ValueError("parse error : syntax error in stream selector {%s}" % match.group(1))
            matchers.append((found.group(1), found.group(2), found.group(3).replace('\\"', '"')))
            body = body[found.end():]
        # util.SplitFiltersAndMatchers: a matcher that matches "" only filters
        if not any(not cls._matches(op, value, "") for _name, op, value in matchers):
            raise ValueError(LOKI_EMPTY_COMPATIBLE)
        rest, stages = match.group(2), []
        while rest.strip():
            found = cls._STAGE.match(rest)
            if not found:
                raise ValueError("parse error : contract server: unsupported pipeline %r" % rest.strip())
            if found.group(1):
                op = {"|=": "=", "!=": "!=", "|~": "=~", "!~": "!~"}[found.group(1)]
                stages.append(("line", op, found.group(2)))
            else:
                stages.append((found.group(3), found.group(4), found.group(5)))
            rest = rest[found.end():]
        return matchers, stages

    def handle(self, method, path, query, headers, body):
        # "GET /ready": 200 when the instance is ready.
        if path == "/ready":
            return 200, "ready", {}
        # "Query logs within a range of time": GET /loki/api/v1/query_range
        # -> {"status": "success", "data": {"resultType": "streams", "result": [{"stream": {...}, "values": [[ns, line]]}]}}
        # A query Loki cannot parse answers 400 with the error as text. Without the categorize-labels
        # encoding flag a stream's labels in the answer include the entries' structured metadata.
        if path == "/loki/api/v1/query_range":
            try:
                matchers, stages = self.parse(query.get("query", ""))
            except (ValueError, re.error) as exc:
                return 400, str(exc), {}
            start, end = int(query.get("start") or 0), int(query.get("end") or _now_ns())
            streams = {}
            for ts, labels, metadata, line in self.entries:
                if not start <= ts <= end:
                    continue
                if not all(self._matches(op, value, labels.get(name, "")) for name, op, value in matchers):
                    continue
                fields = dict(labels, **metadata)
                if all(self._stage(key, op, value, line, fields) for key, op, value in stages):
                    streams.setdefault(tuple(sorted(fields.items())), []).append([str(ts), line])
            result = [{"stream": dict(k), "values": sorted(v, reverse=True)} for k, v in streams.items()]
            return 200, {"status": "success", "data": {"resultType": "streams", "result": result}}, {}
        return 404, "404 page not found", {}


# ---- Grafana -----------------------------------------------------------------------------------
class ContractGrafana(JsonServer):
    """Grafana's HTTP API. Reference: https://grafana.com/docs/grafana/latest/developer-resources/api-reference/http-api/."""

    def __init__(self, password, datasources, dashboards, user="admin"):
        super().__init__()
        self.user, self.password = user, password
        self.datasources = list(datasources)  # [{uid, name, type, url}]
        self.dashboards = dict(dashboards)  # uid -> dashboard JSON
        self.sessions = set()

    def _authorized(self, headers):
        auth = headers.get("Authorization") or ""
        if auth.startswith("Basic "):
            user, _sep, password = base64.b64decode(auth[6:]).decode().partition(":")
            return user == self.user and password == self.password
        cookie = headers.get("Cookie") or ""
        match = re.search(r"grafana_session=([0-9a-f]+)", cookie)
        return bool(match and match.group(1) in self.sessions)

    def _ds_health(self, ds):
        """Stand-in health check: can Grafana reach the datasource? (the check itself is plugin code)."""
        probe = {"prometheus": "/api/v1/query?query=1%2B1", "tempo": "/ready", "loki": "/ready"}.get(ds["type"], "/")
        try:
            with urllib.request.urlopen(ds["url"] + probe, timeout=3) as resp:
                resp.read()
            return True, "Successfully queried the %s API." % ds["type"]
        except (urllib.error.URLError, OSError) as exc:
            return False, "%s: %s" % (ds["type"], getattr(exc, "reason", exc))

    def _query_prometheus(self, ds, query, start, end):
        step = max(float(query.get("intervalMs") or 15000) / 1000.0, 1.0)
        params = urllib.parse.urlencode({"query": query["expr"], "start": start, "end": end, "step": step})
        with urllib.request.urlopen("%s/api/v1/query_range?%s" % (ds["url"], params), timeout=10) as resp:
            data = json.loads(resp.read())["data"]["result"]
        frames = []
        for series in data:
            frames.append({"schema": {"refId": query["refId"], "fields": [
                {"name": "Time", "type": "time", "typeInfo": {"frame": "time.Time"}},
                {"name": "Value", "type": "number", "labels": series["metric"],
                 "typeInfo": {"frame": "float64", "nullable": True}}]},
                "data": {"values": [[int(float(v[0]) * 1000) for v in series["values"]],
                                    [float(v[1]) for v in series["values"]]]}})
        return frames

    def handle(self, method, path, query, headers, body):
        # Other HTTP API, "Health API": GET /api/health -> {"commit", "database": "ok", "version"}; no auth.
        if path == "/api/health":
            return 200, {"commit": "contract", "database": "ok", "version": "13.2.0"}, {}
        # Web login (pkg/api/login.go LoginPost; not in the API reference): POST /login {"user", "password"}
        # -> 200 {"message": "Logged in"} with the grafana_session cookie; 401 on bad credentials.
        if path == "/login" and method == "POST":
            data = json.loads(body or b"{}")
            if data.get("user") == self.user and data.get("password") == self.password:
                token = secrets.token_hex(16)
                self.sessions.add(token)
                return 200, {"message": "Logged in"}, {"Set-Cookie": [
                    "grafana_session=%s; Path=/; HttpOnly; SameSite=Lax" % token,
                    "grafana_session_expiry=%d; Path=/; SameSite=Lax" % (time.time() + 3600)]}
            return 401, {"message": "Invalid username or password"}, {}
        if not self._authorized(headers):
            # Authentication: a request without valid credentials gets 401 {"message": "Unauthorized"}.
            return 401, {"message": "Unauthorized"}, {}
        # Data source API, "Get all data sources": GET /api/datasources -> [{id, uid, name, type, url, ...}].
        if path == "/api/datasources":
            return 200, [dict(ds, id=i + 1, orgId=1, access="proxy") for i, ds in enumerate(self.datasources)], {}
        # Data source API, "Check data source health": GET /api/datasources/uid/:uid/health
        # -> 200 {"status": "OK", "message"}; a failed check answers 400 {"status": "ERROR", "message"}.
        match = re.match(r"^/api/datasources/uid/([^/]+)/health$", path)
        if match:
            ds = next((d for d in self.datasources if d["uid"] == match.group(1)), None)
            if ds is None:
                return 404, {"message": "Data source not found"}, {}
            ok, message = self._ds_health(ds)
            return (200 if ok else 400), {"status": "OK" if ok else "ERROR", "message": message}, {}
        # Dashboard API, "Get dashboard by uid": GET /api/dashboards/uid/:uid -> {"dashboard": {...}, "meta": {...}};
        # 404 {"message": "Dashboard not found"}.
        match = re.match(r"^/api/dashboards/uid/([^/]+)$", path)
        if match:
            dashboard = self.dashboards.get(match.group(1))
            if dashboard is None:
                return 404, {"message": "Dashboard not found"}, {}
            return 200, {"dashboard": dashboard, "meta": {"folderTitle": "AgentGateway", "slug": match.group(1)}}, {}
        # Data source API, "Query a data source": POST /api/ds/query {"queries": [...], "from", "to"}
        # -> {"results": {refId: {"frames": [{schema, data: {values}}]}}}; 400 when a query failed (reason in the body).
        if path == "/api/ds/query" and method == "POST":
            data = json.loads(body or b"{}")
            start, end = parse_relative(data.get("from", "now-5m")), parse_relative(data.get("to", "now"))
            results, status = {}, 200
            for q in data.get("queries") or []:
                uid = (q.get("datasource") or {}).get("uid")
                ds = next((d for d in self.datasources if d["uid"] == uid), None)
                if ds is None:
                    return 404, {"message": "data source not found"}, {}
                try:
                    results[q.get("refId", "A")] = {"status": 200, "frames": self._query_prometheus(ds, q, start, end)}
                except (urllib.error.URLError, OSError, KeyError, ValueError) as exc:
                    status = 400
                    results[q.get("refId", "A")] = {"status": 400, "error": str(exc), "frames": []}
            return status, {"results": results}, {}
        return 404, {"message": "Not found"}, {}


# ---- the gateway -------------------------------------------------------------------------------
# What the stand-in routes, read from the rendered objects the way the controller translates them
# (controller/pkg/agentgateway/translator/conversion.go@v1.4.1: one route per HTTPRoute rule, named
# "<namespace>/<HTTPRoute>" with the rule's name as route_rule) and the policies attached to them.
NAMESPACE = "agentgateway-system"
DEFAULT_REJECTION = "The request was rejected due to inappropriate content"  # the CRD's promptGuard default
MCP_ACCEPT = "application/json, text/event-stream"

# One request guard of spec.backend.ai.promptGuard.request, in order. kind "regex": ``patterns``, ``action``
# Reject|Mask, the rejection's ``status``/``message``; kind "webhook": ``failure_mode`` FailOpen|FailClosed
# (the CRD's default FailClosed), answered by the mock's Service (WireMock, POST /request).
Guard = collections.namedtuple("Guard", "kind patterns action status message failure_mode")
# spec.traffic.retry: ``attempts`` retries after the first try (the controller passes the number through and
# proxy/httpproxy.rs@v1.4.1 makes attempts + 1 tries), on the status ``codes``, ``backoff`` seconds apart.
Retry = collections.namedtuple("Retry", "attempts codes backoff")
# ``name``: "<namespace>/<HTTPRoute>"; ``rule``: the rule's name (None: "unknown"); ``prefix``: the PathPrefix;
# ``rewrite``: (ReplaceFullPath|ReplacePrefixMatch, value) or None; ``protocol``: "llm" (spec.ai) or "mcp"
# (spec.mcp); ``backend``: "<namespace>/<AgentgatewayBackend>"; ``provider``/``model``: the AI provider and the
# model it pins (None: the request's); ``targets``: the MCP targets ((name, path), ...).
Route = collections.namedtuple("Route", "name rule prefix rewrite protocol backend provider model targets guards "
                                        "retry")

_GUARD_MESSAGE = "Rejected by the prompt guard of the mock backend's route (agentgateway.observability demo)."
_DEFAULT_GUARDS = (Guard("regex", ("(?i)ignore (all )?previous instructions",), "Reject", 403, _GUARD_MESSAGE, None),
                   Guard("webhook", (), None, None, None, "FailOpen"))
_CHAT = ("ReplaceFullPath", "/v1/chat/completions")
# The mock_backend role's objects with its defaults (what routes_from_render reads from a default render).
DEFAULT_ROUTES = (
    Route(NAMESPACE + "/mock-openai", "openai-prefix", "/openai", _CHAT, "llm", NAMESPACE + "/mock-openai", "openai",
          None, (), _DEFAULT_GUARDS, None),
    Route(NAMESPACE + "/mock-openai", "openai-v1", "/v1", None, "llm", NAMESPACE + "/mock-openai", "openai", None, (),
          _DEFAULT_GUARDS, None),
    Route(NAMESPACE + "/mock-openai-flaky", "flaky", "/flaky", _CHAT, "llm", NAMESPACE + "/mock-openai-flaky",
          "openai", "mock-flaky", (), (), Retry(2, (503,), 0.1)),
    Route(NAMESPACE + "/mock-openai-mcp", "mcp", "/mcp", None, "mcp", NAMESPACE + "/mock-openai-mcp", None, None,
          (("mock-tools", "/mcp"),), (), None),
)


def parse_duration(text):
    """Seconds of a Gateway API duration ("100ms", "1s", "1m30s"); None for none."""
    if not text:
        return None
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", str(text))
    return sum(float(n) * units[u] for n, u in parts) if parts else None


def _guards(specs):
    out = []
    for spec in specs:
        guard = (((spec.get("backend") or {}).get("ai") or {}).get("promptGuard") or {})
        for entry in guard.get("request") or []:
            if "regex" in entry:
                regex, response = entry["regex"] or {}, entry.get("response") or {}
                out.append(Guard("regex", tuple(regex.get("matches") or ()), regex.get("action") or "Reject",
                                 int(response.get("statusCode") or 403), response.get("message") or DEFAULT_REJECTION,
                                 None))
            elif "webhook" in entry:
                out.append(Guard("webhook", (), None, None, None, (entry["webhook"] or {}).get("failureMode")
                                 or "FailClosed"))
    return tuple(out)


def _retry(specs):
    for spec in specs:
        retry = (spec.get("traffic") or {}).get("retry")
        if retry:
            return Retry(int(retry.get("attempts") or 1), tuple(int(c) for c in retry.get("codes") or ()),
                         parse_duration(retry.get("backoff")) or 0.0)
    return None


def _rewrite(rule):
    for item in rule.get("filters") or []:
        path = ((item.get("urlRewrite") or {}).get("path") or {}) if item.get("type") == "URLRewrite" else {}
        if path.get("type") == "ReplaceFullPath":
            return ("ReplaceFullPath", path["replaceFullPath"])
        if path.get("type") == "ReplacePrefixMatch":
            return ("ReplacePrefixMatch", path["replacePrefixMatch"])
    return None


def routes_from_objects(objects):
    """The route table of rendered objects: every HTTPRoute rule leading to an AgentgatewayBackend, with the
    prompt guard and retry of the AgentgatewayPolicies that target its HTTPRoute (or that rule, by sectionName)."""
    objects = [o for o in objects if isinstance(o, dict) and o.get("metadata")]

    def key(obj):
        return obj["metadata"].get("namespace") or NAMESPACE, obj["metadata"]["name"]

    backends = {key(o): o.get("spec") or {} for o in objects if o.get("kind") == "AgentgatewayBackend"}
    policies = [o for o in objects if o.get("kind") == "AgentgatewayPolicy"]
    routes = []
    for obj in sorted((o for o in objects if o.get("kind") == "HTTPRoute"), key=key):
        namespace, name = key(obj)
        attached = [(ref.get("sectionName"), policy.get("spec") or {}) for policy in policies
                    if key(policy)[0] == namespace for ref in (policy.get("spec") or {}).get("targetRefs") or []
                    if ref.get("kind") == "HTTPRoute" and ref.get("name") == name]
        for rule in (obj.get("spec") or {}).get("rules") or []:
            specs = [spec for section, spec in attached if section in (None, rule.get("name"))]
            ref = next((r for r in rule.get("backendRefs") or [] if r.get("kind") == "AgentgatewayBackend"), None)
            backend = backends.get(((ref or {}).get("namespace") or namespace, (ref or {}).get("name")))
            if backend is None:
                continue
            provider = ((backend.get("ai") or {}).get("provider") or {})
            kind = next((k for k in provider if k not in ("host", "port", "path", "tls")), None)
            targets = tuple((t.get("name"), (t.get("static") or {}).get("path") or "/mcp")
                            for t in (backend.get("mcp") or {}).get("targets") or [])
            for match in rule.get("matches") or [{}]:
                path = match.get("path") or {}
                routes.append(Route(
                    "%s/%s" % (namespace, name), rule.get("name"), path.get("value") or "/", _rewrite(rule),
                    "mcp" if "mcp" in backend else "llm", "%s/%s" % ((ref.get("namespace") or namespace), ref["name"]),
                    kind, (provider.get(kind) or {}).get("model") if kind else None, targets, _guards(specs),
                    _retry(specs)))
    return tuple(routes)


def routes_from_render(render_dir):
    """``routes_from_objects`` of a render's manifests (agw_obs_render_dir); DEFAULT_ROUTES without HTTPRoutes."""
    objects = []
    for path in sorted(pathlib.Path(render_dir, "manifests").rglob("*.yaml")):
        objects += list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    return routes_from_objects(objects) or DEFAULT_ROUTES


def message_texts(message):
    """The text of one chat message as the guards see it: a string, or its parts' texts joined by a space."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def webhook_verdict(body):
    """What the proxy makes of a guardrail webhook's answer (llm/policy/webhook.rs@v1.4.1: the body parsed as
    GuardrailsPromptResponse, whatever the status; ``action`` an untagged Mask | Reject | Pass): ("Mask",
    messages), ("Reject", status, body), ("Pass",), or None when it does not parse (the guard's failureMode
    decides then)."""
    try:
        document = json.loads(body or b"")
    except ValueError:
        return None
    action = document.get("action") if isinstance(document, dict) else None
    if not isinstance(action, dict) or not isinstance(action.get("reason", ""), (str, type(None))):
        return None
    masked = action.get("body")
    if isinstance(masked, dict) and isinstance(masked.get("messages"), list):
        return ("Mask", masked["messages"])
    if isinstance(masked, str) and isinstance(action.get("status_code"), int) and 0 <= action["status_code"] < 65536:
        return ("Reject", action["status_code"], masked)
    return ("Pass",)


class GatewayStandIn(object):
    """Plays the agentgateway v1.4.1 proxy for the verification tests (see the module docstring).

    The names are the ones the proxy writes under the Kubernetes controller: Gateway
    agentgateway-system/agentgateway-proxy, listener "http" on 8080, the routes of the mock_backend role
    (``render``: a site or role render, agw_obs_render_dir, read with ``routes_from_render``; without one,
    ``DEFAULT_ROUTES``, the role's defaults). A request takes the route with the longest matching prefix and
    its rewrite, then, by the route's backend:

    - an AI backend (``_llm``): the models route answered 501 by the proxy itself; a chat completion through
      the prompt guard's request guards in order (regex, then the webhook); the model the backend pins; the
      retry policy's attempts, each retried one with ``x-retry-attempt: <n>``;
    - an MCP backend (``_mcp``): the stateful streamable HTTP transport, one session of its own per client
      session with the target's session behind it.

    ``routes``: a route table of one's own (``Route`` tuples) instead. ``prices``: the price catalog in
    gateway_observability_model_prices' shape (None: none). ``kubernetes``:
    also write what a proxy fed by the controller on a cgroup v2 node writes (xDS, cgroup). ``metrics`` is the
    ProxyMetrics registry the metrics port renders; ``served`` the content types of its answers.
    """

    GATEWAY, PORT, LISTENER = "agentgateway-system/agentgateway-proxy", 8080, "http"
    RESOURCE = {"service.name": "agentgateway-proxy", "service.namespace": "agentgateway-system"}
    # the client's headers go upstream, but for these (hop-by-hop, or set by the proxy)
    NOT_FORWARDED = {"host", "content-length", "content-type", "authorization", "traceparent", "tracestate",
                     "connection", "keep-alive", "transfer-encoding", "te", "upgrade", "proxy-authorization"}
    NOT_RETURNED = {"content-length", "content-type", "transfer-encoding", "connection", "keep-alive", "date", "server"}

    def __init__(self, backend_url, backend_key, tempo=None, loki=None, prices=None, render=None, kubernetes=False,
                 routes=None):
        self.backend = urllib.parse.urlsplit(backend_url.rstrip("/"))
        self.backend_key = backend_key
        self.tempo, self.loki = tempo, loki
        routes = routes or (routes_from_render(render) if render else DEFAULT_ROUTES)
        self.routes = tuple(sorted(routes, key=lambda r: -len(r.prefix.rstrip("/"))))
        self.sessions = {}  # the stand-in's MCP session id -> {"upstream": the target's id, "version": ...}
        self.metrics = ProxyMetrics(self.GATEWAY, self.PORT, self.LISTENER, prices)
        self.kubernetes = kubernetes
        if kubernetes:
            # app.rs@v1.4.1 registers the xDS metrics and pprof-alloc's cgroup collector; the controller's stream
            # delivers the state once per subscribed type (state_manager.rs@v1.4.1)
            self.metrics.xds_initial_state()
            self.metrics.watch_cgroup()
        self.served = []
        outer = self

        class Listener(JsonServer):
            def handle(self, method, path, query, headers, body):
                return outer.forward(method, path, headers, body)

            def connected(self):
                outer.metrics.downstream_connection("http")

            def exchanged(self, received, sent):
                outer.metrics.downstream_bytes(received, sent, "http")

        class MetricsPort(JsonServer):
            def handle(self, method, path, query, headers, body):
                if path in ("/metrics", "/stats/prometheus"):
                    content_type, data = outer.metrics.answer(headers.get("Accept"))
                    outer.served.append(content_type.split(";", maxsplit=1)[0])
                    return 200, data, {"Content-Type": content_type}
                return 404, "not found", {}

        self.listener = Listener()
        self.metrics_server = MetricsPort()
        self.url, self.metrics_url = self.listener.url, self.metrics_server.url
        self.metrics_address = "127.0.0.1:%d" % self.metrics_server.port

    # -- routing ---------------------------------------------------------------------------------------
    def route_for(self, path):
        """The route whose PathPrefix matches ``path`` (whole segments), the longest first; None: no route."""
        bare = urllib.parse.urlsplit(path).path
        for route in self.routes:
            prefix = route.prefix.rstrip("/")
            if not prefix or bare == prefix or bare.startswith(prefix + "/"):
                return route
        return None

    @staticmethod
    def rewritten(route, path):
        """The upstream path of ``path`` through the route's URLRewrite (the query string kept)."""
        parts = urllib.parse.urlsplit(path)
        bare = parts.path
        if route.rewrite and route.rewrite[0] == "ReplaceFullPath":
            bare = route.rewrite[1]
        elif route.rewrite and route.rewrite[0] == "ReplacePrefixMatch":
            bare = route.rewrite[1].rstrip("/") + bare[len(route.prefix.rstrip("/")):] or "/"
        return bare + ("?" + parts.query if parts.query else "")

    def forward(self, method, path, headers, body):
        start = time.monotonic()
        # crates/agentgateway/src/proxy/httpproxy.rs: a request with a traceparent gets a new span in the
        # same trace (tp.new_span()), written into the upstream request (ns.insert_header); without one, a
        # new trace.
        incoming = re.match(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$", headers.get("traceparent") or "")
        trace = {"trace_id": incoming.group(1) if incoming else secrets.token_hex(16),
                 "parent": incoming.group(2) if incoming else None, "span_id": secrets.token_hex(8)}
        route = self.route_for(path)
        fields = {"gateway": self.GATEWAY, "listener": self.LISTENER, "route": route.name if route else None,
                  "http.method": method, "http.host": headers.get("Host"), "http.path": path,
                  "http.version": "HTTP/1.1", "trace.id": trace["trace_id"], "span.id": trace["span_id"],
                  "protocol": route.protocol if route else None}
        if route is None:  # ProxyError::RouteNotFound: 404, reason NotFound, before any backend
            answer = b"route not found"
            self.metrics.http_request("unknown", "unknown", 404, "unknown", method, "NotFound",
                                      duration=time.monotonic() - start, response_bytes=len(answer))
            self._export(trace, dict(fields, **{"http.status": 404, "reason": "NotFound"}), "%s /*" % method)
            return 404, answer, {"Content-Type": "text/plain"}
        handler = self._mcp if route.protocol == "mcp" else self._llm
        status, answer, returned = handler(route, method, path, headers, body, start, trace, fields)
        self._export(trace, fields, "%s %s/*" % (method, route.prefix.rstrip("/")))
        return status, answer, returned

    # -- AI backends -----------------------------------------------------------------------------------
    def _llm(self, route, method, path, headers, body, start, trace, fields):
        upstream_path = self.rewritten(route, path)
        labels = {"route_rule": route.rule}
        if method == "GET" and urllib.parse.urlsplit(upstream_path).path.rstrip("/").endswith("/v1/models"):
            # An AI route answers the OpenAI models route itself (measured on v1.4.1: 501, reason Upstream,
            # never at the backend, no GenAI series).
            answer = b"Route 'Models' not implemented"
            self.metrics.http_request(route.name, route.backend, 501, "llm", "GET",
                                      duration=time.monotonic() - start, response_bytes=len(answer), **labels)
            fields.update({"http.status": 501, "reason": "Upstream"})
            return 501, answer, {"Content-Type": "text/plain"}
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            request = {}
        request = request if isinstance(request, dict) else {}
        if route.model and request:  # the provider's pinned model replaces the request's
            request["model"] = route.model
            body = json.dumps(request).encode("utf-8")
        model, streamed = request.get("model") or "unknown", bool(request.get("stream"))
        chat = urllib.parse.urlsplit(upstream_path).path.endswith("/chat/completions")
        tries = 1 + (route.retry.attempts if route.retry else 0)
        for attempt in range(tries):
            # attempt_upstream prepares the LLM request, prompt guards included, for every attempt
            if chat and route.guards:
                verdict = self._guard(route, request)
                if verdict is not None:  # rejected: the guard's answer, no LLM request was built (model "none")
                    status, answer, reason = verdict
                    self.metrics.llm_request(route.name, route.backend, None, status, None, reason=reason,
                                             duration=time.monotonic() - start, response_bytes=len(answer),
                                             answered=False, retries=attempt, **labels)
                    fields.update({"http.status": status, "reason": reason})
                    return status, answer, {}
                body = json.dumps(request).encode("utf-8") if request else body  # a guard may have masked it
            # proxy/httpproxy.rs@v1.4.1: attempt n > 0 carries x-retry-attempt: n (WireMock's mock-flaky
            # scenario answers a retried attempt by it) and sets the log's retry_attempt
            extra = {"x-retry-attempt": str(attempt)} if attempt else {}
            call = self.call(method, upstream_path, headers, body,
                             "00-%s-%s-01" % (trace["trace_id"], trace["span_id"]), extra)
            retry = attempt < tries - 1 and (not call["answered"] or call["status"] in route.retry.codes)
            if not retry:
                break
            self.metrics.upstream_call("Primary", "Llm", time.monotonic() - (call["dial"] or start))
            time.sleep(route.retry.backoff)
        status, answer, answered, first_byte = call["status"], call["body"], call["answered"], call["first_byte"]
        end = time.monotonic()
        usage, response_model = self._usage(answer, streamed) if answered and status == 200 else ({}, None)
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
        reason = "Upstream" if answered else "UpstreamFailure"
        cost = self.metrics.llm_request(
            route.name, route.backend, model, status, route.provider or "openai", response_model,
            usage.get("prompt_tokens"), usage.get("completion_tokens"), cached, duration=end - start,
            ttft=(first_byte - start) if streamed and status == 200 and first_byte else None, reason=reason,
            response_bytes=len(answer), request_processing=(call["dial"] or end) - start,
            response_processing=end - (call["response_at"] or end), upstream_call=end - (call["dial"] or end),
            answered=answered, retries=attempt, **labels)
        fields.update({"http.status": status, "reason": reason, "gen_ai.operation.name": "chat",
                       "gen_ai.provider.name": route.provider or "openai", "gen_ai.request.model": model,
                       "gen_ai.response.model": response_model, "gen_ai.usage.input_tokens": usage.get("prompt_tokens"),
                       "gen_ai.usage.cache_read.input_tokens": cached,
                       "gen_ai.usage.output_tokens": usage.get("completion_tokens"),
                       "duration": "%dms" % ((end - start) * 1000), "llm.cost.total_usd": cost,
                       "retry.attempt": attempt or None})
        if answered:
            fields["endpoint"] = self.backend.netloc
        return status, answer, call["headers"]

    def _guard(self, route, request):
        """The route's request guards in order (llm/policy/mod.rs@v1.4.1 apply_prompt_guard): one guardrail check
        per guard that ran (Allow, Mask, FailOpen), the first Reject ends it. None: the request goes on (``request``
        masked in place); else (status, body, reason) of the proxy's answer."""
        messages = [m for m in request.get("messages") or [] if isinstance(m, dict)]
        for guard in route.guards:
            if guard.kind == "regex":
                # apply_regex: every message's text but tool results' (completions.rs visit_text_mut)
                texts = [m for m in messages if m.get("role") != "tool"]
                if guard.action == "Reject":
                    if any(re.search(p, message_texts(m)) for p in guard.patterns for m in texts):
                        self.metrics.guardrail_check("Request", "Reject")
                        return guard.status, guard.message.encode("utf-8"), "Guardrail"
                    self.metrics.guardrail_check("Request", "Allow")
                    continue
                masked = False
                for message in texts:
                    if isinstance(message.get("content"), str):
                        for pattern in guard.patterns:
                            message["content"], hits = re.subn(pattern, "<masked>", message["content"])
                            masked = masked or bool(hits)
                self.metrics.guardrail_check("Request", "Mask" if masked else "Allow")
                continue
            # webhook.rs send_request: {"body": {"messages": [{role, content}]}} to <webhook>/request, an
            # outbound call of kind Policy, subtype Guardrail
            payload = {"body": {"messages": [{"role": m.get("role") or "", "content": message_texts(m)}
                                             for m in messages]}}
            began = time.monotonic()
            call = self._send("POST", "/request", {"Content-Type": "application/json"},
                              json.dumps(payload).encode("utf-8"))
            self.metrics.upstream_call("Policy", "Guardrail", time.monotonic() - began)
            verdict = webhook_verdict(call["body"]) if call["answered"] else None
            if verdict is None:
                if guard.failure_mode != "FailOpen":  # the error ends the request: AIError::PromptWebhookError
                    return 503, b"failed to call prompt guard webhook", "Internal"
                self.metrics.guardrail_check("Request", "FailOpen")
            elif verdict[0] == "Reject":
                self.metrics.guardrail_check("Request", "Reject")
                return verdict[1], verdict[2].encode("utf-8"), "Guardrail"
            elif verdict[0] == "Mask":
                request["messages"] = messages = [dict(m) for m in verdict[1] if isinstance(m, dict)]
                self.metrics.guardrail_check("Request", "Mask")
            else:
                self.metrics.guardrail_check("Request", "Allow")
        return None

    # -- MCP backends ----------------------------------------------------------------------------------
    def _mcp(self, route, method, path, headers, body, start, trace, fields):
        """The stateful streamable HTTP transport (mcp/streamablehttp.rs@v1.4.1 handle_post/handle_delete, the
        session's relay in mcp/session.rs) in front of the route's first target."""
        target, target_path = route.targets[0]
        session_id = headers.get("Mcp-Session-Id")
        session = self.sessions.get(session_id)

        def refuse(status, text):  # the proxy's own MCP error: reason MCP, nothing upstream, not an MCP call
            self.metrics.mcp_request(route.name, None, backend=route.backend, status=status, reason="MCP",
                                     duration=time.monotonic() - start, response_bytes=len(text),
                                     route_rule=route.rule, http_method=method)
            fields.update({"http.status": status, "reason": "MCP"})
            return status, text.encode("utf-8"), {"Content-Type": "text/plain"}

        upstream = {"Accept": MCP_ACCEPT, "Content-Type": "application/json",
                    "traceparent": "00-%s-%s-01" % (trace["trace_id"], trace["span_id"])}
        if session:
            upstream["Mcp-Session-Id"] = session["upstream"]
            upstream.update({"MCP-Protocol-Version": session["version"]} if session.get("version") else {})
        if method == "DELETE":
            if not session_id:
                return refuse(400, "Session ID is required")
            if session is None:  # delete_session finds nothing: 202 Accepted
                return refuse(202, "")
            del self.sessions[session_id]
            call = self._send("DELETE", target_path, upstream, b"") if session.get("upstream") else None
            status = call["status"] if call and call["answered"] else 202
            self.metrics.mcp_request(route.name, None, backend=route.backend, status=status,
                                     duration=time.monotonic() - start, route_rule=route.rule, http_method="DELETE")
            fields.update({"http.status": status, "reason": "Upstream", "mcp.session.id": session_id})
            return status, b"", {}
        if method != "POST":
            return refuse(405, "Method Not Allowed")
        accept = headers.get("Accept") or ""
        if "application/json" not in accept or "text/event-stream" not in accept:
            return refuse(406, "Not Acceptable: Client must accept both application/json and text/event-stream")
        if not (headers.get("Content-Type") or "").startswith("application/json"):
            return refuse(415, "Unsupported Media Type: Content-Type must be application/json")
        try:
            message = json.loads(body or b"")
        except ValueError:
            message = None
        if not isinstance(message, dict) or not isinstance(message.get("method"), str):
            return refuse(400, "Bad Request: invalid JSON-RPC message")
        name, is_request = message["method"], "id" in message
        if session_id and session is None:
            return refuse(404, "Session not found")
        if not session_id and not (is_request and name == "initialize"):
            return refuse(400, "Bad Request: Session ID is required")
        call = self._send("POST", target_path, upstream, body)
        tool = ((message.get("params") or {}).get("name") if name == "tools/call" else None) or None
        returned = {}
        if not call["answered"]:
            status, reason, answer = 500, "MCP", call["body"]
        elif call["status"] >= 400:  # the target's error answer, passed on: mcp::Error::UpstreamError
            status, reason, answer = call["status"], "MCP", call["body"]
        elif not is_request:  # a notification: 202 Accepted
            status, reason, answer = 202, "Upstream", b""
        else:
            status, reason = 200, "Upstream"
            messages = list(parse_mcp_messages(call["headers"].get("Content-Type"), call["body"]))
            answer = "".join("event: message\ndata: %s\n\n" % json.dumps(m) for m in messages).encode("utf-8")
            returned = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
            if name == "initialize":
                session_id = secrets.token_hex(16)
                result = next((m.get("result") for m in messages if m.get("id") == message.get("id")), None) or {}
                upstream_id = next((v[0] for k, v in call["headers"].items() if k.lower() == "mcp-session-id"), None)
                self.sessions[session_id] = {"upstream": upstream_id, "version": result.get("protocolVersion")}
                returned["Mcp-Session-Id"] = session_id
        self.metrics.mcp_request(route.name, name, "tool" if tool else None, target if tool else None, tool,
                                 backend=route.backend, status=status, reason=reason,
                                 duration=time.monotonic() - start, response_bytes=len(answer),
                                 route_rule=route.rule, upstream_call=time.monotonic() - (call["dial"] or start))
        fields.update({"http.status": status, "reason": reason, "mcp.method.name": name,
                       "mcp.target": target if tool else None, "gen_ai.tool.name": tool, "mcp.session.id": session_id})
        return status, answer, returned

    # -- upstream calls --------------------------------------------------------------------------------
    def call(self, method, path, headers, body, traceparent, extra=None):
        """The primary call to an AI backend: the client's request (its headers but the proxy's own) with the
        proxy's traceparent, the backend key from the backend's auth policy, and ``extra`` headers. See
        ``_send``."""
        upstream = {k: v for k, v in headers.items() if k.lower() not in self.NOT_FORWARDED}
        upstream.update({"Content-Type": "application/json", "traceparent": traceparent,
                         # the backend policy's auth: the Secret's key replaces the client's Authorization
                         "Authorization": "Bearer %s" % self.backend_key}, **(extra or {}))
        return self._send(method, path, upstream, body)

    def _send(self, method, path, headers, body):
        """One call to the backend (the mock's Service: WireMock) on a new connection (recorded as one).
        {"status", "body", "headers" (what goes back to the client: a list per name), "answered" (False: no answer,
        status 503), and the monotonic times "dial", "response_at" (headers received), "first_byte" (of the body:
        a streamed answer's first event)}."""
        out = {"status": 503, "body": b"", "headers": {"Content-Type": "text/plain"}, "answered": False,
               "dial": None, "response_at": None, "first_byte": None}
        connection = http.client.HTTPConnection(self.backend.hostname, self.backend.port, timeout=10)
        try:
            out["dial"] = time.monotonic()
            connection.connect()
            self.metrics.upstream_connect("plaintext", time.monotonic() - out["dial"])
            connection.request(method, self.backend.path + path, body=body, headers=headers)
            response = connection.getresponse()
            out.update(status=response.status, response_at=time.monotonic())
            returned = {}
            for key, value in response.getheaders():  # back to the client: Retry-After ...
                if key.lower() not in self.NOT_RETURNED:
                    returned.setdefault(key, []).append(value)
            returned["Content-Type"] = response.getheader("Content-Type") or "application/json"
            parts = []
            while True:  # read as it comes
                part = response.read1(65536)
                if not part:
                    break
                out["first_byte"] = out["first_byte"] or time.monotonic()
                parts.append(part)
            out.update(body=b"".join(parts), headers=returned, answered=True)
        except (OSError, http.client.HTTPException) as exc:
            out.update(status=503, body=("upstream connect error or disconnect/reset before headers: %s" % exc).encode())
        finally:
            connection.close()
        return out

    @staticmethod
    def _usage(answer, streamed):
        """(usage, response model) of an OpenAI answer: one JSON object, or SSE events (the usage chunk counts)."""
        usage, model = {}, None
        try:
            if streamed:
                for line in answer.decode("utf-8").splitlines():
                    if line.startswith("data:") and line[5:].strip() != "[DONE]":
                        event = json.loads(line[5:])
                        model, usage = event.get("model") or model, event.get("usage") or usage
            else:
                document = json.loads(answer)
                usage, model = document.get("usage") or {}, document.get("model")
        except (ValueError, AttributeError):
            return {}, None
        return usage, model

    def _export(self, trace, fields, name):
        """The request's span to Tempo and its access log record to Loki, as the proxy exports them over OTLP
        (telemetry/log.rs, trc.rs): the same fields on both; the log record has no body, so Loki stores an
        empty line with the record's attributes (dots made underscores) and trace context as structured
        metadata; the span carries the collection's tracing attributes too."""
        fields = {k: v for k, v in fields.items() if v is not None}
        if self.tempo is not None:
            attributes = dict(fields, **{"url.scheme": "http", "network.protocol.version": "1.1"})
            attributes["llm.cost.total_usd"] = fields.get("llm.cost.total_usd", 0.0)
            self.tempo.ingest(trace["trace_id"], trace["span_id"], trace["parent"], name, attributes, self.RESOURCE)
        if self.loki is not None:
            record = dict(fields, severity_text="INFO", **{
                # the collection's access log fields (gateway_observability_access_log_fields)
                "llm.provider": fields.get("gen_ai.provider.name"), "llm.request_model": fields.get("gen_ai.request.model"),
                "llm.response_model": fields.get("gen_ai.response.model"),
                "llm.input_tokens": fields.get("gen_ai.usage.input_tokens"),
                "llm.output_tokens": fields.get("gen_ai.usage.output_tokens"),
                "llm.cost_usd": fields.get("llm.cost.total_usd", 0.0), "user": "anonymous"})
            record.pop("llm.cost.total_usd", None)
            metadata = {re.sub(r"[^A-Za-z0-9_]", "_", k): v for k, v in record.items() if v is not None}
            self.loki.push({"service_name": "agentgateway-proxy", "service_namespace": "agentgateway-system"}, "",
                           metadata)

    # -- Kubernetes --------------------------------------------------------------------------------------
    def memory_limit(self):
        """The memory limit of the stand-in's own cgroup (memory.max), None when unreadable or unlimited: under
        Kubernetes the kubelet sets the container's limit there, so kube-state-metrics reports this one."""
        stats = cgroup_stats() if self.kubernetes else None
        return (stats or {}).get("max")

    def xds_reconnect(self, reason="Reconnect"):
        """The controller ended the xDS stream (a restart: gRPC Unavailable "transport is closing" counts as
        Reconnect, xds/src/client.rs@v1.4.1 run_loop); the new stream delivers the state again."""
        self.metrics.xds_termination(reason)
        self.metrics.xds_initial_state()

    def exposition(self):
        """The metrics port's body (OpenMetrics text, both content types)."""
        return self.metrics.render()

    def stop(self):
        self.listener.stop()
        self.metrics_server.stop()


def parse_mcp_messages(content_type, body):
    """The JSON-RPC messages of an MCP answer: a JSON document (one or a batch) or an SSE stream's data lines.
    ``content_type``: the header's value or the list ``_send`` returns."""
    if isinstance(content_type, list):
        content_type = content_type[0] if content_type else ""
    text = (body or b"").decode("utf-8", errors="replace")
    try:
        if (content_type or "").startswith("text/event-stream"):
            return [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]
        document = json.loads(text)
    except ValueError:
        return []
    return [m for m in (document if isinstance(document, list) else [document]) if isinstance(m, dict)]


# ---- kube-state-metrics ------------------------------------------------------------------------------
def go_float(value):
    """A float as Go's strconv.FormatFloat(v, 'g', -1, 64) writes it (the Prometheus client's text format):
    the shortest digits, with an exponent when it is below -4 or at least 6 (268435456 -> 2.68435456e+08)."""
    value = float(value)
    if value == 0 or math.isinf(value) or math.isnan(value):
        return {0.0: "0"}.get(value, "+Inf" if value > 0 else ("-Inf" if value < 0 else "NaN"))
    digits, exponent = decimal.Decimal(repr(abs(value))).normalize().as_tuple()[1:]
    digits = "".join(str(d) for d in digits)
    point = len(digits) + exponent  # the decimal point's position after the first digits
    sign = "-" if value < 0 else ""
    if point - 1 < -4 or point - 1 >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return "%s%se%s%02d" % (sign, mantissa, "-" if point - 1 < 0 else "+", abs(point - 1))
    if point <= 0:
        return "%s0.%s%s" % (sign, "0" * -point, digits)
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return "%s%s.%s" % (sign, digits[:point], digits[point:])


class ContractKubeStateMetrics(JsonServer):
    """kube-state-metrics' /metrics for one pod's container: the series of docs/metrics/workload/pod-metrics.md
    that the collection reads (kube_pod_container_resource_limits and _requests with resource and unit,
    kube_pod_container_status_restarts_total), in the Prometheus text format kube-state-metrics writes.
    ``limits``/``requests``: {resource: value} in the units kube-state-metrics reports (memory bytes, cpu
    cores)."""

    UNITS = {"memory": "byte", "cpu": "core"}
    HELP = {
        "kube_pod_container_resource_limits": "The number of requested limit resource by a container. It is "
        "recommended to use the kube_pod_resource_limits metric exposed by kube-scheduler instead, as it is more "
        "precise.",
        "kube_pod_container_resource_requests": "The number of requested request resource by a container. It is "
        "recommended to use the kube_pod_resource_requests metric exposed by kube-scheduler instead, as it is more "
        "precise.",
        "kube_pod_container_status_restarts_total": "The number of container restarts per container.",
    }

    def __init__(self, namespace, pod, uid, node, limits, requests, container="agentgateway", restarts=0):
        super().__init__()
        self.pod = {"namespace": namespace, "pod": pod, "uid": uid}
        self.container, self.node = container, node
        self.limits, self.requests, self.restarts = dict(limits), dict(requests), restarts

    def exposition(self):
        def labels(**extra):
            return ",".join('%s="%s"' % kv for kv in list(self.pod.items()) + list(extra.items()))

        lines = []
        for name, values in (("kube_pod_container_resource_limits", self.limits),
                             ("kube_pod_container_resource_requests", self.requests)):
            lines += ["# HELP %s %s" % (name, self.HELP[name]), "# TYPE %s gauge" % name]
            for resource, value in sorted(values.items()):
                lines.append("%s{%s} %s" % (name, labels(container=self.container, node=self.node,
                                                         resource=resource, unit=self.UNITS.get(resource, "")),
                                            go_float(value)))
        name = "kube_pod_container_status_restarts_total"
        lines += ["# HELP %s %s" % (name, self.HELP[name]), "# TYPE %s counter" % name,
                  "%s{%s} %d" % (name, labels(container=self.container), self.restarts)]
        return "\n".join(lines) + "\n"

    def handle(self, method, path, query, headers, body):
        if path == "/metrics":
            return 200, self.exposition(), {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
        if path in ("/healthz", "/livez", "/readyz"):
            return 200, "OK", {}
        return 404, "404 page not found", {}


def self_signed_context(tmp_path, name="localhost"):
    """A server TLS context with a self-signed certificate for 127.0.0.1 (for the TLS fault)."""
    from support.controlplane import _cert, _pem_key  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives import serialization  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives.asymmetric import ec  # pylint: disable=import-outside-toplevel

    key = ec.generate_private_key(ec.SECP256R1())
    cert = _cert(name, None, None, key, sans=("127.0.0.1", name))
    cert_path, key_path = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(_pem_key(key))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert_path), str(key_path))
    return context, str(cert_path)


__all__ = ["DEFAULT_ROUTES", "LOKI_EMPTY_COMPATIBLE", "ContractGrafana", "ContractKubeStateMetrics", "ContractLoki",
           "ContractTempo", "GatewayStandIn", "Guard", "JsonServer", "Retry", "Route",
           "free_port", "parse_relative", "self_signed_context"]
