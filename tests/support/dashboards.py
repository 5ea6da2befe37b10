"""The grafana role's dashboards against a real Prometheus over backfilled gateway series.

``genai_prometheus`` (session scope) writes an hour of synthetic gateway metrics in
OpenMetrics text with the gateway's real metric and label names (shared/reference/agentgateway.md,
crates' HTTPLabels / GenAILabels with the flattened route identifier), plus the target labels the
prometheus role's scrape job adds (job, namespace, pod, gateway_networking_k8s_io_gateway_name).
``runtime_families`` adds every other family the proxy exports at v1.4.1 (process, cgroup, tokio,
xDS, downstream, TLS, processing, upstream, MCP, guardrail, retry), each written from the source
file cited next to it, and kube-state-metrics' container limits for the proxy pod.
It backfills them with ``promtool tsdb create-blocks-from openmetrics``, then computes the series
of the prometheus role's *rendered* recording rules by evaluating each rule's expression over the
window on a first Prometheus, backfills those too, and starts the Prometheus the tests query. So
a recording-rule series carries exactly the labels the rule keeps.
"""

from __future__ import annotations

import json
import math
import pathlib
import re
import subprocess
import time

import pytest

from support.fixtures import REPO, load_rendered, render_playbook
from support.prometheus import PrometheusServer

DASHBOARD_DIR = REPO / "roles" / "grafana" / "files" / "dashboards"

STEP = 30  # seconds between samples (the prometheus role's scrape interval)
# Seconds of data: every range of the dashboards finds samples in it ([1h]; [24h] and [1d] over what there is).
WINDOW = 3600

# Grafana's built-in variables, as the tests substitute them (a dashboard over the last hour).
BUILTINS = {"__rate_interval": "2m", "__interval": "1m", "__range": "1h", "__range_s": "3600"}

TARGET = {
    "job": "agentgateway",
    "namespace": "agentgateway-system",
    "pod": "agentgateway-6f7d9c-x2x7q",
    "instance": "10.244.0.12:15020",
    "gateway_networking_k8s_io_gateway_name": "agentgateway",
}
ROUTE = {
    "bind": "8080",
    "gateway": "agentgateway-system/agentgateway",
    "listener": "http",
    "route": "agentgateway-system/chat",
    "route_rule": "",
}
PROVIDERS = [
    # provider, model, backend, users
    ("openai", "gpt-4o-mini", "agentgateway-system/openai", ("alice", "bob")),
    ("anthropic", "claude-sonnet-4", "agentgateway-system/anthropic", ("alice",)),
]
LATENCY_BUCKETS = ("0.1", "0.5", "1", "2.5", "5", "10", "+Inf")
TOKEN_BUCKETS = ("16", "64", "256", "1024", "4096", "+Inf")
SMALL_BUCKETS = ("0.01", "0.05", "0.1", "0.5", "1", "+Inf")


def dashboard_paths():
    return sorted(DASHBOARD_DIR.glob("*.json"))


def load_dashboards():
    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in dashboard_paths()}


def _labels(*dicts, **extra):
    merged = {}
    for d in dicts:
        merged.update(d)
    merged.update(extra)
    return "{" + ",".join('%s="%s"' % (k, v) for k, v in sorted(merged.items())) + "}"


class _Writer(object):
    """OpenMetrics text: one family at a time, each series' points in time order."""

    def __init__(self, timestamps):
        self.ts = timestamps
        self.lines = []

    def counter(self, family, series):
        """``series``: list of (labels dict, increment per step)."""
        self.lines.append("# TYPE %s counter" % family)
        for labels, step in series:
            text = _labels(labels)
            for i, ts in enumerate(self.ts):
                self.lines.append("%s_total%s %s %d" % (family, text, _num(step * (i + 1)), ts))

    def gauge(self, family, series):
        self.lines.append("# TYPE %s gauge" % family)
        for labels, value in series:
            text = _labels(labels)
            for ts in self.ts:
                self.lines.append("%s%s %s %d" % (family, text, _num(value), ts))

    def info(self, family, label_sets):
        """An OpenMetrics info family: samples ``<family>_info{...} 1``."""
        self.lines.append("# TYPE %s info" % family)
        for labels in label_sets:
            text = _labels(labels)
            for ts in self.ts:
                self.lines.append("%s_info%s 1 %d" % (family, text, ts))

    def histogram(self, family, series, buckets):
        """``series``: list of (labels, count per step, mean value, share of observations per bucket)."""
        self.lines.append("# TYPE %s histogram" % family)
        for labels, count, mean, shares in series:
            for i, ts in enumerate(self.ts):
                n = count * (i + 1)
                cumulative = 0.0
                for le, share in zip(buckets, shares):
                    cumulative = n if le == "+Inf" else cumulative + n * share
                    self.lines.append("%s_bucket%s %s %d" % (family, _labels(labels, le=le), _num(cumulative), ts))
                self.lines.append("%s_sum%s %s %d" % (family, _labels(labels), _num(n * mean), ts))
                self.lines.append("%s_count%s %s %d" % (family, _labels(labels), _num(n), ts))

    def text(self):
        return "\n".join(self.lines + ["# EOF", ""])


def _num(value):
    return repr(round(float(value), 6))


def gateway_openmetrics(timestamps):
    """The gateway's metrics for two providers, three users, 200/429/500 answers."""
    w = _Writer(timestamps)
    http = []
    for provider, _model, backend, _users in PROVIDERS:
        base = dict(TARGET, **ROUTE)
        # protocol: Backend::backend_protocol() is "llm" for AI backends (types/agent.rs@v1.4.1)
        base.update({"backend": backend, "protocol": "llm", "method": "POST", "reason": "Upstream"})
        for status, rate in (("200", 9.0), ("429", 0.5), ("500", 0.5 if provider == "openai" else 0.2)):
            http.append((dict(base, status=status), rate))
        # a prompt guardrail's rejection: ProxyResponseReason::Guardrail (proxy/mod.rs@v1.4.1)
        http.append((dict(base, status="403", reason="Guardrail"), 0.3))
    w.counter("agentgateway_requests", http + mcp_http_series())
    w.histogram(
        "agentgateway_request_duration_seconds",
        [(labels, rate, 0.8, (0.2, 0.3, 0.3, 0.1, 0.05, 0.05, 0.0)) for labels, rate in http],
        LATENCY_BUCKETS,
    )

    genai, usage, cost, lookups = [], [], [], []
    for provider, model, _backend, users in PROVIDERS:
        for user in users:
            labels = dict(TARGET, **ROUTE)
            labels.update({"gen_ai_operation_name": "chat", "gen_ai_system": provider,
                           "gen_ai_request_model": model, "gen_ai_response_model": model, "user": user})
            genai.append(labels)
            usage.append((dict(labels, gen_ai_token_type="input"), 4.0, 300.0, (0.0, 0.1, 0.6, 0.3, 0.0, 0.0)))
            usage.append((dict(labels, gen_ai_token_type="output"), 4.0, 120.0, (0.1, 0.3, 0.5, 0.1, 0.0, 0.0)))
            cost.append((labels, 0.0004 if provider == "openai" else 0.003))
            lookups.append((dict(labels, status="Exact"), 4.0))
            lookups.append((dict(labels, status="Missing"), 0.1))
    w.histogram("agentgateway_gen_ai_client_token_usage", usage, TOKEN_BUCKETS)
    w.histogram("agentgateway_gen_ai_server_request_duration",
                [(labels, 4.0, 1.4, (0.0, 0.2, 0.3, 0.4, 0.1, 0.0, 0.0)) for labels in genai], LATENCY_BUCKETS)
    w.histogram("agentgateway_gen_ai_server_time_to_first_token",
                [(labels, 4.0, 0.3, (0.1, 0.3, 0.3, 0.2, 0.1, 0.0, 0.0)) for labels in genai], LATENCY_BUCKETS)
    w.histogram("agentgateway_gen_ai_server_time_per_output_token",
                [(labels, 4.0, 0.02, (0.3, 0.6, 0.1, 0.0, 0.0, 0.0)) for labels in genai], SMALL_BUCKETS)
    w.counter("agentgateway_gen_ai_client_cost_usd", cost)
    w.counter("agentgateway_cost_catalog_lookups", lookups)
    w.gauge("up", [(TARGET, 1)])
    runtime_families(w, http)
    return w.text()


# ---- the rest of what the proxy exports (agentgateway v1.4.1) ---------------------------------
MCP_ROUTE = dict(ROUTE, route="agentgateway-system/mcp")
MCP_BACKEND = "agentgateway-system/mcp-tools"
# the proxy container in the controller's pods; kube-state-metrics names its series after it
CONTAINER = "agentgateway"
# crates/agentgateway/src/telemetry/metrics.rs@v1.4.1 CONNECT_DURATION_BUCKET, PROCESSING_DURATION_BUCKETS,
# HTTP_REQUEST_DURATION_BUCKET (trimmed to the buckets the shares below fill)
CONNECT_BUCKETS = ("0.0015", "0.0043", "0.0126", "0.0368", "0.108", "0.316", "+Inf")
PROCESSING_BUCKETS = ("0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "+Inf")
CALL_BUCKETS = ("0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "+Inf")
XDS_TYPES = (
    # crates/agentgateway/src/state_manager.rs@v1.4.1: the type URLs the proxy subscribes to
    "type.googleapis.com/agentgateway.dev.resource.Resource",
    "type.googleapis.com/istio.workload.Address",
)


def mcp_http_series():
    """HTTP answers of an MCP backend: protocol "mcp" (types/agent.rs@v1.4.1 backend_protocol)."""
    base = dict(TARGET, **MCP_ROUTE)
    base.update({"backend": MCP_BACKEND, "protocol": "mcp", "method": "POST"})
    # proxy/mod.rs@v1.4.1: MCP errors are reason "MCP"; NoBackends/Unavailable answer 503
    return [(dict(base, status="200", reason="Upstream"), 3.0),
            (dict(base, status="503", reason="MCP"), 0.1),
            (dict(base, status="400", reason="MCP"), 0.05)]


def runtime_families(w, http):
    """Every family of the proxy that the GenAI part above does not write, with its real labels."""
    # telemetry/metrics.rs@v1.4.1 Metrics::new: registry.register("build", Info(BuildLabel {tag}))
    w.info("agentgateway_build", [dict(TARGET, tag="v1.4.1")])
    # xds/src/metrics.rs@v1.4.1: config_synchronized (Gauge), xds_message / xds_message (Unit::Bytes)
    # counters by TypeUrl {url}, xds_connection_terminations by {reason} (ConnectionTerminationReason)
    w.gauge("agentgateway_config_synchronized", [(TARGET, 1)])
    w.counter("agentgateway_xds_message", [(dict(TARGET, url=url), 0.02) for url in XDS_TYPES])
    w.counter("agentgateway_xds_message_bytes", [(dict(TARGET, url=url), 120.0) for url in XDS_TYPES])
    w.counter("agentgateway_xds_connection_terminations",
              [(dict(TARGET, reason="Reconnect"), 0.001), (dict(TARGET, reason="ConnectionError"), 0.0005)])
    # crates/core/src/tokio_metrics.rs@v1.4.1 TokioCollector: "tokio_" + RuntimeMetrics method, ConstGauge
    w.gauge("agentgateway_tokio_num_workers", [(TARGET, 2)])
    w.gauge("agentgateway_tokio_num_alive_tasks", [(TARGET, 57)])
    w.gauge("agentgateway_tokio_global_queue_depth", [(TARGET, 3)])
    # pprof-alloc 0.5.0 src/stats/cgroups.rs PrometheusCollector (registered in app.rs@v1.4.1): ConstGauge
    # bytes from the container's cgroup v2 memory.current / memory.stat ...
    for name, value in (("usage", 96e6), ("working_set", 81e6), ("anon", 70e6), ("file", 18e6),
                        ("inactive_file", 15e6), ("kernel", 6e6), ("sock", 1e6), ("shmem", 0.2e6)):
        w.gauge("agentgateway_cgroup_" + name, [(TARGET, value)])
    # ... and ConstCounters whose names already end in _total, so the encoder appends a second one
    w.counter("agentgateway_cgroup_pgmajfault_total", [(TARGET, 0.2)])
    # pprof-alloc 0.5.0 src/stats/smaps.rs PrometheusCollector: /proc/self/smaps_rollup, bytes, ConstGauge
    for name, value in (("rss", 88e6), ("pss", 86e6), ("anonymous", 69e6)):
        w.gauge("agentgateway_process_" + name, [(TARGET, value)])

    # telemetry/metrics.rs@v1.4.1 TCPLabels {bind, gateway, listener, protocol}: downstream_connections,
    # downstream_received / downstream_sent (Unit::Bytes), tls_handshake_duration (Unit::Seconds)
    tcp = dict(TARGET, bind=ROUTE["bind"], gateway=ROUTE["gateway"], listener=ROUTE["listener"])
    w.counter("agentgateway_downstream_connections", [(dict(tcp, protocol="http"), 1.5),
                                                      (dict(tcp, protocol="https"), 0.5)])
    w.counter("agentgateway_downstream_received_bytes", [(dict(tcp, protocol="http"), 4096.0)])
    w.counter("agentgateway_downstream_sent_bytes", [(dict(tcp, protocol="http"), 20480.0)])
    w.histogram("agentgateway_tls_handshake_duration_seconds",
                [(dict(tcp, protocol="https"), 0.5, 0.004, (0.1, 0.5, 0.3, 0.1, 0.0, 0.0, 0.0))], CONNECT_BUCKETS)

    # HTTPLabels: response (Unit::Bytes) and retries counters; MinimalHTTPLabels {backend, route..., custom}:
    # request_processing / response_processing (Unit::Seconds) histograms
    ok = [(labels, rate) for labels, rate in http if labels["status"] == "200"]
    w.counter("agentgateway_response_bytes", [(labels, rate * 1800.0) for labels, rate in ok])
    w.counter("agentgateway_retries", [(labels, rate * 0.05) for labels, rate in ok])
    minimal = [(dict(TARGET, backend=labels["backend"], **ROUTE), rate) for labels, rate in ok]
    w.histogram("agentgateway_request_processing_seconds",
                [(labels, rate, 0.0004, (0.1, 0.4, 0.3, 0.15, 0.05, 0.0, 0.0)) for labels, rate in minimal],
                PROCESSING_BUCKETS)
    w.histogram("agentgateway_response_processing_seconds",
                [(labels, rate, 0.0002, (0.3, 0.4, 0.2, 0.1, 0.0, 0.0, 0.0)) for labels, rate in minimal],
                PROCESSING_BUCKETS)

    # ConnectLabels {transport} (client/mod.rs@v1.4.1 Transport::name: plaintext, tls, hbone, ...)
    w.histogram("agentgateway_upstream_connect_duration_seconds",
                [(dict(TARGET, transport="plaintext"), 0.3, 0.002, (0.6, 0.3, 0.1, 0.0, 0.0, 0.0, 0.0)),
                 (dict(TARGET, transport="tls"), 0.2, 0.06, (0.0, 0.0, 0.1, 0.3, 0.5, 0.1, 0.0))],
                CONNECT_BUCKETS)
    # OutboundCallLabels {kind: Primary|Policy|Mirror, subtype: Http|Llm|Mcp|ExtAuthz|ExtProc|Guardrail|...}
    w.histogram("agentgateway_upstream_call_duration_seconds",
                [(dict(TARGET, kind="Primary", subtype="Llm"), 8.0, 0.9, (0.0, 0.1, 0.2, 0.3, 0.3, 0.1, 0.0)),
                 (dict(TARGET, kind="Primary", subtype="Mcp"), 3.0, 0.08, (0.5, 0.3, 0.2, 0.0, 0.0, 0.0, 0.0)),
                 (dict(TARGET, kind="Policy", subtype="Guardrail"), 8.0, 0.12, (0.2, 0.3, 0.4, 0.1, 0.0, 0.0, 0.0))],
                CALL_BUCKETS)

    # GuardrailLabels {phase: Request|Response, action: Allow|Mask|Reject|FailOpen}: no route, no gateway
    w.counter("agentgateway_guardrail_checks",
              [(dict(TARGET, phase="Request", action="Allow"), 7.0),
               (dict(TARGET, phase="Request", action="Mask"), 0.4),
               (dict(TARGET, phase="Request", action="Reject"), 0.3),
               (dict(TARGET, phase="Request", action="FailOpen"), 0.02),
               (dict(TARGET, phase="Response", action="Allow"), 7.5),
               (dict(TARGET, phase="Response", action="Reject"), 0.1)])
    # MCPCall {method, resource_type, server, resource, route identifier, custom} (telemetry/log.rs@v1.4.1:
    # target_name() is the server, metric_resource_name() the tool/prompt/resource; MCPOperation Display)
    mcp = dict(TARGET, **MCP_ROUTE)
    w.counter("agentgateway_mcp_requests", [
        (dict(mcp, method="tools/call", resource_type="tool", server="github", resource="search_issues"), 1.2),
        (dict(mcp, method="tools/call", resource_type="tool", server="docs", resource="lookup"), 0.8),
        (dict(mcp, method="prompts/get", resource_type="prompt", server="docs", resource="summarize"), 0.1),
        (dict(mcp, method="tools/list", resource_type="unknown", server="unknown", resource="unknown"), 0.3),
    ])

    # kube-state-metrics (docs/metrics/workload/pod-metrics.md), scraped by the chart's
    # kubernetes-service-endpoints job with honor_labels: the pod's own namespace and pod labels
    ksm = {"job": "kubernetes-service-endpoints", "instance": "10.244.0.5:8080", "namespace": TARGET["namespace"],
           "pod": TARGET["pod"], "container": CONTAINER, "node": "kind-control-plane",
           "uid": "4f0c2a9e-8d1b-4c51-9e0a-2b7d3c1f6a10"}
    w.gauge("kube_pod_container_resource_limits", [(dict(ksm, resource="memory", unit="byte"), 512 * 2 ** 20)])
    w.gauge("kube_pod_container_resource_requests", [(dict(ksm, resource="memory", unit="byte"), 128 * 2 ** 20)])
    w.counter("kube_pod_container_status_restarts", [(ksm, 0.0002)])


def recording_openmetrics(server, groups, start, end):
    """Evaluate every recording rule over [start, end] and write the results as gauges."""
    lines = []
    for group in groups:
        for rule in group["rules"]:
            if "record" not in rule:
                continue
            result = server.api("/api/v1/query_range", query=rule["expr"], start=start, end=end, step=STEP)["result"]
            assert result, "recording rule %s gives no data over the backfilled series" % rule["record"]
            lines.append("# TYPE %s gauge" % rule["record"])
            for series in result:
                labels = dict(series["metric"])
                text = _labels(labels)
                for ts, value in series["values"]:
                    if value not in ("NaN", "+Inf", "-Inf"):
                        lines.append("%s%s %s %d" % (rule["record"], text, value, int(ts)))
    return "\n".join(lines + ["# EOF", ""])


def backfill(promtool, text, path, data_dir):
    path.write_text(text, encoding="utf-8")
    proc = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(path), str(data_dir)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


class GenAIPrometheus(object):
    """A running Prometheus with the backfilled series; ``at`` is the evaluation time the tests use."""

    def __init__(self, server, start, end):
        self.server, self.start, self.at = server, start, end

    def query(self, promql):
        return self.server.api("/api/v1/query", query=promql, time=self.at)["result"]

    def label_values(self, match, label):
        return self.server.api("/api/v1/label/%s/values" % label, **{"match[]": match, "start": self.start,
                                                                     "end": self.at})


@pytest.fixture(scope="session")
def genai_prometheus(tmp_path_factory, promtool, prometheus_binary, recording_rule_groups):
    """Prometheus over backfilled gateway series and the recording rules' series (see module doc)."""
    root = tmp_path_factory.mktemp("genai-prometheus")
    end = (int(time.time()) // STEP) * STEP - 600
    start = end - WINDOW
    timestamps = list(range(start, end + 1, STEP))
    config = {"global": {"scrape_interval": "30s", "evaluation_interval": "30s"}, "scrape_configs": []}

    backfill(promtool, gateway_openmetrics(timestamps), root / "raw.om", root / "data")
    first = PrometheusServer(prometheus_binary, root, config)
    try:
        recorded = recording_openmetrics(first, recording_rule_groups, start + 300, end)
    finally:
        first.stop()
    # PrometheusServer keeps its TSDB in <workdir>/data: add the recorded series and start again.
    backfill(promtool, recorded, root / "recorded.om", root / "data")
    server = PrometheusServer(prometheus_binary, root, config)
    yield GenAIPrometheus(server, start, end)
    server.stop()


STACK_PLAYBOOK = REPO / "playbooks" / "stack.yml"


def render_stack(render_dir, extra_vars=None, check=True, args=()):
    """playbooks/stack.yml (prometheus, tempo, loki, grafana) in render mode."""
    return render_playbook(STACK_PLAYBOOK, render_dir, extra_vars, check=check, args=args)


@pytest.fixture(scope="session")
def stack_render(site_render):
    """The site with defaults (kind profile, Loki off), rendered once per session (support.session); read-only."""
    return site_render("default")


@pytest.fixture(scope="session")
def stack_render_loki(site_render):
    """The site with Loki on, rendered once per session (support.session); read-only."""
    return site_render("loki")


@pytest.fixture(scope="session")
def recording_rule_groups(stack_render):
    values = load_rendered(stack_render, "helm/monitoring/prometheus.yaml")["values"]
    return values["serverFiles"]["recording_rules.yml"]["groups"]


@pytest.fixture(scope="session")
def provisioned_datasources(stack_render_loki):
    values = load_rendered(stack_render_loki, "helm/monitoring/grafana.yaml")["values"]
    return values["datasources"]["datasources.yaml"]["datasources"]


# ---- dashboard helpers ----------------------------------------------------------------------
_VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def substitute(expr, values):
    """Replace $var, ${var} and ${var:fmt} with ``values[var]``; unknown variables are an error."""

    def repl(match):
        name = match.group(1) or match.group(2) or match.group(3)
        if name.isdigit():
            # label_replace's "$1": Grafana leaves names that are no variable alone, and none is a number
            return match.group(0)
        if name not in values:
            raise KeyError("unknown dashboard variable $%s in %r" % (name, expr))
        return values[name]

    return _VAR.sub(repl, expr)


def prometheus_targets(board):
    """(panel title, target) for every Prometheus query of a dashboard, nested rows included."""
    out = []

    def walk(panels):
        for panel in panels:
            walk(panel.get("panels") or [])
            for target in panel.get("targets") or []:
                ds = target.get("datasource") or panel.get("datasource") or {}
                if ds.get("type") == "prometheus" and target.get("expr"):
                    out.append((panel["title"], target))

    walk(board.get("panels") or [])
    return out


def variable_query(variable):
    """``label_values(<selector>, <label>)`` of a query variable, as (selector, label)."""
    query = variable["query"]
    query = query.get("query") if isinstance(query, dict) else query
    match = re.match(r"^\s*label_values\((.*),\s*(\w+)\)\s*$", query, re.S)
    assert match, "variable %s: only label_values(selector, label) queries are supported, got %r" % (
        variable["name"], query)
    return match.group(1), match.group(2)


def has_finite_value(result):
    for series in result:
        values = [series["value"]] if "value" in series else series.get("values", [])
        for _ts, value in values:
            if not math.isnan(float(value)) and not math.isinf(float(value)):
                return True
    return False


def datasource_refs(node, path="$"):
    """Every (json path, datasource reference) in a dashboard: panels, targets, variables."""
    refs = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource" and value is not None:
                refs.append(("%s.%s" % (path, key), value))
            else:
                refs.extend(datasource_refs(value, "%s.%s" % (path, key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            refs.extend(datasource_refs(value, "%s[%d]" % (path, i)))
    return refs


def link_urls(node):
    """Every link URL in a dashboard (panel links, data links, dashboard links)."""
    urls = []
    if isinstance(node, dict):
        if isinstance(node.get("url"), str) and ("title" in node or "targetBlank" in node):
            urls.append(node["url"])
        for value in node.values():
            urls.extend(link_urls(value))
    elif isinstance(node, list):
        for value in node:
            urls.extend(link_urls(value))
    return urls


def repo_path(*parts):
    return pathlib.Path(REPO, *parts)
