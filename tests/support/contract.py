"""Contract servers for the APIs that cannot run here: Grafana, Tempo, Loki, and a gateway stand-in.

These are CONTRACT TESTS, not a substitute for the live run (molecule's kind scenario): each
server implements only the endpoints the collection calls, in the shape their API references
document, with the reference next to each handler. What the servers do *inside* (how Grafana
checks a datasource, how Tempo stores spans) is ours and kept minimal; the answers' shapes are
the contract.

``GatewayStandIn`` plays the agentgateway proxy between the verification and the real WireMock:
it forwards chat completions with the behaviour read from agentgateway's source (a new span in
the caller's trace written into the upstream ``traceparent``; the backend key from the backend's
auth policy in ``Authorization``), counts them under the gateway's real metric names (shared
reference: agentgateway.md "Metrics") on a separate metrics port that the real Prometheus scrapes,
and hands a span to the contract Tempo and an access log line to the contract Loki, as the proxy
would export them over OTLP.
"""

from __future__ import annotations

import base64
import datetime
import http.server
import json
import re
import secrets
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

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
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        for one in value if isinstance(value, list) else [value]:
                            self.send_header(key, one)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

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
class ContractLoki(JsonServer):
    """Loki's query API. Reference: https://grafana.com/docs/loki/latest/reference/loki-http-api/."""

    def __init__(self):
        super().__init__()
        self.entries = []  # (ns timestamp, stream labels, structured metadata, line)

    def push(self, labels, line, metadata=None):
        """What OTLP ingestion would store: resource attributes as stream labels (service.name ->
        service_name), the log record's trace id as structured metadata trace_id (Loki OTLP docs,
        "Format considerations")."""
        self.entries.append((_now_ns(), dict(labels), dict(metadata or {}), line))

    @staticmethod
    def _selector(text):
        matchers = re.findall(r'(\w+)\s*(=~|!=|=)\s*"((?:[^"\\]|\\.)*)"', text)
        if not matchers:
            raise ValueError("empty stream selector")
        return matchers

    def handle(self, method, path, query, headers, body):
        # "GET /ready": 200 when the instance is ready.
        if path == "/ready":
            return 200, "ready", {}
        # "Query logs within a range of time": GET /loki/api/v1/query_range
        # -> {"status": "success", "data": {"resultType": "streams", "result": [{"stream": {...}, "values": [[ns, line]]}]}}
        # Only a stream selector followed by `| key="value"` and `|= "text"` stages is understood.
        if path == "/loki/api/v1/query_range":
            logql = query.get("query", "")
            match = re.match(r"^\s*\{([^}]*)\}(.*)$", logql)
            if not match:
                return 400, {"status": "error", "error": "parse error: %s" % logql}, {}
            try:
                matchers = self._selector(match.group(1))
            except ValueError as exc:
                return 400, {"status": "error", "error": str(exc)}, {}
            stages = re.findall(r'\|\s*(=|(\w+)\s*=)\s*"([^"]*)"', match.group(2))
            start, end = int(query.get("start") or 0), int(query.get("end") or _now_ns())
            streams = {}
            for ts, labels, metadata, line in self.entries:
                if not start <= ts <= end:
                    continue
                ok = True
                for name, op, value in matchers:
                    actual = labels.get(name, "")
                    if (op == "=" and actual != value) or (op == "!=" and actual == value) or \
                            (op == "=~" and not re.fullmatch(value, actual)):
                        ok = False
                for whole, key, value in stages:
                    if whole == "=" and value not in line:
                        ok = False
                    elif key and metadata.get(key, labels.get(key)) != value:
                        ok = False
                if ok:
                    streams.setdefault(tuple(sorted(labels.items())), []).append([str(ts), line])
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
class GatewayStandIn(object):
    """Plays the agentgateway proxy for the verification tests (see the module docstring)."""

    LABELS = 'gateway="agentgateway-system/agentgateway-proxy",listener="http",route="agentgateway-system/mock-openai",' \
             'backend="agentgateway-system/mock-openai",method="POST",protocol="http",bind="8080/agentgateway-system/' \
             'agentgateway-proxy",route_rule="",reason="",provider="openai",user="anonymous"'

    def __init__(self, backend_url, backend_key, tempo=None, loki=None, prices=None):
        self.backend_url = backend_url.rstrip("/")
        self.backend_key = backend_key
        self.tempo, self.loki = tempo, loki
        self.prices = prices or {}
        self.lock = threading.Lock()
        self.requests = {}  # (model, status) -> count
        self.tokens = {}  # (model, type) -> [sum, count]
        self.cost = {}  # model -> usd
        outer = self

        class Listener(JsonServer):
            def handle(self, method, path, query, headers, body):
                return outer.forward(method, path, headers, body)

        class Metrics(JsonServer):
            def handle(self, method, path, query, headers, body):
                if path in ("/metrics", "/stats/prometheus"):
                    return 200, outer.exposition(), {"Content-Type": "text/plain; version=0.0.4"}
                return 404, "not found", {}

        self.listener = Listener()
        self.metrics = Metrics()
        self.url, self.metrics_url = self.listener.url, self.metrics.url
        self.metrics_address = "127.0.0.1:%d" % self.metrics.port

    def forward(self, method, path, headers, body):
        request = json.loads(body or b"{}")
        model = request.get("model", "unknown")
        # crates/agentgateway/src/proxy/httpproxy.rs: a request with a traceparent gets a new span in the
        # same trace (tp.new_span()), written into the upstream request (ns.insert_header); without one, a
        # new trace.
        incoming = re.match(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$", headers.get("traceparent") or "")
        trace_id = incoming.group(1) if incoming else secrets.token_hex(16)
        parent = incoming.group(2) if incoming else None
        span_id = secrets.token_hex(8)
        upstream = urllib.request.Request(self.backend_url + path, data=body, method=method, headers={
            "Content-Type": "application/json", "traceparent": "00-%s-%s-01" % (trace_id, span_id),
            # the backend policy's auth: the Secret's key replaces the client's Authorization
            "Authorization": "Bearer %s" % self.backend_key})
        usage = {}
        try:
            with urllib.request.urlopen(upstream, timeout=10) as resp:
                status, answer = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, answer = exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            status, answer = 503, ("upstream connect error: %s" % exc).encode()
        if status == 200:
            try:
                usage = json.loads(answer).get("usage") or {}
            except ValueError:
                usage = {}
        with self.lock:
            self.requests[(model, str(status))] = self.requests.get((model, str(status)), 0) + 1
            for kind, key in (("input", "prompt_tokens"), ("output", "completion_tokens")):
                if key in usage:
                    entry = self.tokens.setdefault((model, kind), [0, 0])
                    entry[0] += usage[key]
                    entry[1] += 1
            price = self.prices.get(model)
            if price and usage:
                self.cost[model] = self.cost.get(model, 0.0) + (usage.get("prompt_tokens", 0) * price[0]
                                                                + usage.get("completion_tokens", 0) * price[1]) / 1e6
        attributes = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                      "gen_ai.request.model": model, "http.response.status_code": status}
        if usage:
            attributes.update({"gen_ai.response.model": model, "gen_ai.usage.input_tokens": usage.get("prompt_tokens"),
                               "gen_ai.usage.output_tokens": usage.get("completion_tokens")})
        if self.tempo is not None:
            self.tempo.ingest(trace_id, span_id, parent, "POST /v1/*", attributes,
                              {"service.name": "agentgateway-proxy", "service.namespace": "agentgateway-system"})
        if self.loki is not None:
            line = json.dumps({"timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                               "http.status": status, "llm.request_model": model, "trace.id": trace_id})
            self.loki.push({"service_name": "agentgateway-proxy", "service_namespace": "agentgateway-system"}, line,
                           {"trace_id": trace_id, "span_id": span_id})
        return status, answer, {"Content-Type": "application/json"}

    def exposition(self):
        """The gateway's metric names and labels (shared reference agentgateway.md, "Metrics")."""
        lines = ["# TYPE agentgateway_requests_total counter"]
        with self.lock:
            for (model, status), count in sorted(self.requests.items()):
                lines.append('agentgateway_requests_total{%s,status="%s",model="%s"} %d'
                             % (self.LABELS, status, model, count))
            lines.append("# TYPE agentgateway_gen_ai_client_token_usage histogram")
            for (model, kind), (total, count) in sorted(self.tokens.items()):
                genai = ('gen_ai_operation_name="chat",gen_ai_system="openai",gen_ai_request_model="%s",'
                         'gen_ai_response_model="%s",gen_ai_token_type="%s",route="agentgateway-system/mock-openai",'
                         'gateway="agentgateway-system/agentgateway-proxy",user="anonymous"' % (model, model, kind))
                lines.append('agentgateway_gen_ai_client_token_usage_bucket{%s,le="+Inf"} %d' % (genai, count))
                lines.append("agentgateway_gen_ai_client_token_usage_sum{%s} %d" % (genai, total))
                lines.append("agentgateway_gen_ai_client_token_usage_count{%s} %d" % (genai, count))
                if kind == "input":
                    duration = genai.replace(',gen_ai_token_type="input"', "")
                    lines.append('agentgateway_gen_ai_server_request_duration_bucket{%s,le="+Inf"} %d' % (duration, count))
                    lines.append("agentgateway_gen_ai_server_request_duration_sum{%s} %.3f" % (duration, 0.1 * count))
                    lines.append("agentgateway_gen_ai_server_request_duration_count{%s} %d" % (duration, count))
            lines.append("# TYPE agentgateway_gen_ai_client_cost_usd_total counter")
            for model, usd in sorted(self.cost.items()):
                lines.append('agentgateway_gen_ai_client_cost_usd_total{gen_ai_operation_name="chat",'
                             'gen_ai_system="openai",gen_ai_request_model="%s",gen_ai_response_model="%s",'
                             'route="agentgateway-system/mock-openai",gateway="agentgateway-system/agentgateway-proxy",'
                             'user="anonymous"} %.8f' % (model, model, usd))
        return "\n".join(lines) + "\n"

    def stop(self):
        self.listener.stop()
        self.metrics.stop()


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


__all__ = ["ContractGrafana", "ContractLoki", "ContractTempo", "GatewayStandIn", "JsonServer", "free_port",
           "parse_relative", "self_signed_context"]
