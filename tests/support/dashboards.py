"""The grafana role's dashboards against a real Prometheus over backfilled gateway series.

``genai_prometheus`` (session scope) writes an hour of a gateway's metrics in OpenMetrics text, as
agentgateway v1.4.1 would have exported them: the series come from a ``ProxyMetrics`` registry
(tests/support/proxy_metrics.py: the proxy's families, label sets and bucket boundaries) fed with a
simulated traffic every scrape interval, and each scrape's snapshot is written with its timestamp
and the target labels the prometheus role's scrape job adds (job, namespace, pod, instance,
gateway_networking_k8s_io_gateway_name). The traffic: chat through an AI route to an OpenAI-style
and an Anthropic-style provider (cache reads; and cache writes for Anthropic), streamed and not,
answers 200/429/500, a prompt guard's rejections, retries, an MCP route, an HTTPS listener (TLS
handshakes), xDS from the controller, a cgroup v2 node; kube-state-metrics' container limits for
the proxy pod and ``up`` are written beside. It backfills them with ``promtool tsdb
create-blocks-from openmetrics``, then computes the series of the prometheus role's *rendered*
recording rules by evaluating each rule's expression over the window on a first Prometheus,
backfills those too, and starts the Prometheus the tests query. So a recording-rule series
carries exactly the labels the rule keeps.
"""

from __future__ import annotations

import json
import math
import pathlib
import random
import re
import subprocess
import time

import pytest

from support.fixtures import REPO, load_rendered, render_playbook
from support.prometheus import PrometheusServer
from support.proxy_metrics import PROCESS_GAUGES, ProxyMetrics, header_lines, sample_lines

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
GATEWAY = "agentgateway-system/agentgateway"  # bind "8080/agentgateway-system/agentgateway"
CHAT_ROUTE, MCP_ROUTE = "agentgateway-system/chat", "agentgateway-system/mcp"
PROVIDERS = [
    # provider, model, backend ("<namespace>/<AgentgatewayBackend>"), users
    ("openai", "gpt-4o-mini", "agentgateway-system/openai", ("alice", "bob")),
    ("anthropic", "claude-sonnet-4", "agentgateway-system/anthropic", ("alice",)),
]
# USD per 1M tokens, in gateway_observability_model_prices' shape (example prices)
PRICES = {"openai": {"gpt-4o-mini": {"input": "0.15", "output": "0.60", "cacheRead": "0.075"}},
          "anthropic": {"claude-sonnet-4": {"input": "3.00", "output": "15.00", "cacheRead": "0.30",
                                            "cacheWrite": "3.75"}}}
HTTPS_LISTENER, HTTPS_PORT = "https", 8443
MCP_BACKEND = "agentgateway-system/mcp-tools"
# (method, resource_type, server, resource, calls per scrape interval)
MCP_CALLS = (("tools/call", "tool", "github", "search_issues", 1.2), ("tools/call", "tool", "docs", "lookup", 0.8),
             ("prompts/get", "prompt", "docs", "summarize", 0.3), ("tools/list", None, None, None, 0.3))
# the proxy container in the controller's pods; kube-state-metrics names its series after it
CONTAINER = "agentgateway"
XDS_TYPES = (
    # crates/agentgateway/src/state_manager.rs@v1.4.1: the type URLs the proxy subscribes to
    "type.googleapis.com/agentgateway.dev.resource.Resource",
    "type.googleapis.com/istio.workload.Address",
)
# cgroup v2 memory.stat of the proxy's container (bytes): anon + file + kernel + sock = usage
CGROUP = {"anon": 70e6, "file": 18e6, "kernel": 6e6, "sock": 1e6, "shmem": 0.2e6, "inactive_file": 15e6,
          "active_file": 3e6, "inactive_anon": 60e6, "active_anon": 10e6, "file_mapped": 9e6, "kernel_stack": 0.5e6,
          "pagetables": 0.8e6, "percpu": 0.1e6, "slab": 4e6, "slab_reclaimable": 3e6, "slab_unreclaimable": 1e6}


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
    """OpenMetrics text of series that are not the proxy's (up, kube-state-metrics): each series' points in
    time order, after the proxy's families (``lines``)."""

    def __init__(self, timestamps, lines=()):
        self.ts = timestamps
        self.lines = list(lines)

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

    def text(self):
        return "\n".join(self.lines + ["# EOF", ""])


def _num(value):
    return repr(round(float(value), 6))


def _per_step(rate, step):
    """How many of ``rate`` events per scrape interval happen in interval ``step`` (integers, ``rate`` on average)."""
    return int(math.floor(rate * (step + 1)) - math.floor(rate * step))


def gateway_openmetrics(timestamps):
    """The proxy's exposition at every timestamp (with the target labels), then up and kube-state-metrics."""
    metrics = ProxyMetrics(GATEWAY, 8080, "http", PRICES, process=False)
    rng = random.Random(20260501)
    timelines = {}  # (family name, label items) -> [(ts, value)]
    for step, ts in enumerate(timestamps):
        chat_traffic(metrics, rng, step)
        mcp_traffic(metrics, rng, step)
        runtime_families(metrics, rng, step)
        for fam, series in metrics.snapshot():
            for labels, value in series:
                timelines.setdefault((fam.name, tuple(labels.items())), []).append((ts, value))
    lines = []
    for name, fam in metrics.families.items():
        keys = [key for key in timelines if key[0] == name]
        if keys:
            lines += header_lines(fam)
        for key in keys:
            for ts, value in timelines[key]:
                lines += sample_lines(fam, dict(key[1]), value, ts, extra=TARGET)
    w = _Writer(timestamps, lines)
    w.gauge("up", [(TARGET, 1)])
    # kube-state-metrics (docs/metrics/workload/pod-metrics.md), scraped by the chart's
    # kubernetes-service-endpoints job with honor_labels: the pod's own namespace and pod labels
    ksm = {"job": "kubernetes-service-endpoints", "instance": "10.244.0.5:8080", "namespace": TARGET["namespace"],
           "pod": TARGET["pod"], "container": CONTAINER, "node": "kind-control-plane",
           "uid": "4f0c2a9e-8d1b-4c51-9e0a-2b7d3c1f6a10"}
    w.gauge("kube_pod_container_resource_limits", [(dict(ksm, resource="memory", unit="byte"), 512 * 2 ** 20)])
    w.gauge("kube_pod_container_resource_requests", [(dict(ksm, resource="memory", unit="byte"), 128 * 2 ** 20)])
    w.counter("kube_pod_container_status_restarts", [(ksm, 0.0002)])
    return w.text()


def chat_traffic(metrics, rng, step):
    """One scrape interval of chat through the AI route, per provider and user, as the proxy records it."""
    for provider, model, backend, users in PROVIDERS:
        excludes_cache = provider == "anthropic"  # llm/mod.rs cache_convention_for: Anthropic's input excludes it
        for user in users:
            for _event in range(_per_step(4.0, step)):
                streamed = rng.random() < 0.4
                cached = rng.randint(0, 200)
                fresh, output = rng.randint(60, 500), rng.randint(20, 300)
                duration = rng.uniform(0.3, 3.0) if provider == "openai" else rng.uniform(0.6, 6.0)
                retried = rng.random() < 0.05  # a 429 retried by the route's retry policy, then answered
                metrics.guardrail_check("Request", "Allow")
                metrics.upstream_call("Policy", "Guardrail", rng.uniform(0.02, 0.3))
                metrics.llm_request(
                    CHAT_ROUTE, backend, model, 200, provider, model,
                    input_tokens=fresh if excludes_cache else fresh + cached, output_tokens=output,
                    cache_read=cached, cache_write=rng.randint(0, 100) if excludes_cache else None, duration=duration,
                    ttft=rng.uniform(0.05, 0.6) if streamed else None, response_bytes=rng.randint(600, 4000),
                    request_processing=rng.uniform(0.00008, 0.002), response_processing=rng.uniform(0.00005, 0.001),
                    retries=1 if retried else 0, user=user)
                metrics.guardrail_check("Response", "Allow")
            for status, rate in (("429", 0.5), ("500", 0.4 if provider == "openai" else 0.2)):
                for _event in range(_per_step(rate, step)):
                    metrics.llm_request(CHAT_ROUTE, backend, model, int(status), provider, None,
                                        duration=rng.uniform(0.05, 0.4), response_bytes=rng.randint(200, 400), user=user)
            for _event in range(_per_step(0.3, step)):  # a prompt guard rejects before any call: 403, reason Guardrail
                metrics.guardrail_check("Request", "Reject")
                metrics.llm_request(CHAT_ROUTE, backend, model, 403, provider, reason="Guardrail", answered=False,
                                    duration=rng.uniform(0.01, 0.1), response_bytes=54, user=user)
    for phase, action, rate in (("Request", "Mask", 0.4), ("Request", "FailOpen", 0.05), ("Response", "Reject", 0.1)):
        for _event in range(_per_step(rate, step)):
            metrics.guardrail_check(phase, action)
    for _event in range(_per_step(1.5, step)):  # plain HTTP keeps its connections: fewer than the requests
        metrics.downstream_connection("http")
    metrics.downstream_bytes(rng.randint(3000, 6000), rng.randint(15000, 30000), "http")
    for _event in range(_per_step(1.0, step)):  # the HTTPS listener: a handshake per connection
        metrics.downstream_connection("https", HTTPS_LISTENER, HTTPS_PORT)
        metrics.tls_handshake(rng.uniform(0.001, 0.02), HTTPS_LISTENER, port=HTTPS_PORT)
        metrics.downstream_bytes(rng.randint(2000, 4000), rng.randint(8000, 20000), "https", HTTPS_LISTENER,
                                 HTTPS_PORT)
        metrics.llm_request(CHAT_ROUTE, PROVIDERS[0][2], PROVIDERS[0][1], 200, "openai", PROVIDERS[0][1],
                            input_tokens=rng.randint(60, 400), output_tokens=rng.randint(20, 200),
                            duration=rng.uniform(0.3, 2.0), response_bytes=rng.randint(600, 3000),
                            listener=HTTPS_LISTENER, port=HTTPS_PORT, user="bob")
    for transport, rate, spread in (("plaintext", 1.0, (0.0004, 0.004)), ("tls", 1.0, (0.01, 0.2))):
        for _event in range(_per_step(rate, step)):  # new upstream connections (pooled ones are reused)
            metrics.upstream_connect(transport, rng.uniform(*spread))


def mcp_traffic(metrics, rng, step):
    """One scrape interval through the MCP route: JSON-RPC calls, and the proxy's own MCP errors."""
    for method, resource_type, server, resource, rate in MCP_CALLS:
        for _event in range(_per_step(rate, step)):
            metrics.mcp_request(MCP_ROUTE, method, resource_type, server, resource, backend=MCP_BACKEND,
                                duration=rng.uniform(0.01, 0.3), response_bytes=rng.randint(200, 2000))
    # proxy/mod.rs: MCP errors are reason "MCP" (NoBackends/Unavailable answer 503, InvalidParams 400)
    for status, rate in ((503, 0.1), (400, 0.05)):
        for _event in range(_per_step(rate, step)):
            metrics.mcp_request(MCP_ROUTE, "tools/call", "tool", "github", "search_issues", backend=MCP_BACKEND,
                                status=status, reason="MCP", duration=rng.uniform(0.001, 0.01))


def runtime_families(metrics, rng, step):
    """The proxy's own families for one scrape interval: xDS from the controller, the tokio runtime, a
    cgroup v2 container (pprof-alloc: gauges, and counters named ..._total), the process' smaps rollup."""
    for url in XDS_TYPES:
        for _event in range(_per_step(0.2, step)):
            metrics.xds_message(url, rng.randint(400, 4000))
    for reason, rate in (("Reconnect", 0.02), ("ConnectionError", 0.01)):
        for _event in range(_per_step(rate, step)):
            metrics.xds_termination(reason)
    metrics.set_gauge("tokio_num_workers", 2)
    metrics.set_gauge("tokio_num_alive_tasks", rng.randint(40, 80))
    metrics.set_gauge("tokio_global_queue_depth", rng.randint(0, 5))
    usage = CGROUP["anon"] + CGROUP["file"] + CGROUP["kernel"] + CGROUP["sock"]
    for name, value in dict(CGROUP, usage=usage, working_set=usage - CGROUP["inactive_file"]).items():
        metrics.set_gauge("cgroup_" + name, int(value))
    for name, rate in (("pgfault_total", 40.0), ("pgmajfault_total", 0.2), ("workingset_refault_anon_total", 0.1),
                       ("workingset_refault_file_total", 1.0), ("workingset_activate_anon_total", 0.1),
                       ("workingset_activate_file_total", 0.5), ("workingset_restore_anon_total", 0.05),
                       ("workingset_restore_file_total", 0.3)):
        metrics.count("cgroup_" + name, _per_step(rate, step))
    rollup = {"rss": 88e6, "pss": 86e6, "pss_dirty": 70e6, "private_dirty": 70e6, "private_clean": 16e6,
              "shared_clean": 2e6, "referenced": 87e6, "anonymous": 69e6}
    for name, _key, _help in PROCESS_GAUGES:
        metrics.set_gauge("process_" + name, int(rollup.get(name, 0)))


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


# ---- the job constant, and the dashboards as the grafana role provisions them ----------------------
def constant_values(board):
    """{name: value} of a dashboard's constant variables: ``job``, the scrape job the grafana role wrote in."""
    variables = (board.get("templating") or {}).get("list") or []
    return {v["name"]: v.get("query", "") for v in variables if v.get("type") == "constant"}


def query_variables(board):
    """The variables Grafana fills from a query (every one but the constants), in the dashboard's order."""
    return [v for v in (board.get("templating") or {}).get("list") or [] if v.get("type") != "constant"]


def all_values(board):
    """Values for ``substitute``: the built-ins, every query variable on "All", the constants as they are."""
    values = dict(BUILTINS, **{v["name"]: v.get("allValue") or ".*" for v in query_variables(board)})
    values.update(constant_values(board))
    return values


def rendered_dashboards(render_dir):
    """{file name: dashboard} of the dashboard ConfigMaps in a render (the grafana role's, or existing_stack's),
    as the sidecar would load them: with the job constant the role set."""
    from support.fixtures import rendered_manifests  # pylint: disable=import-outside-toplevel

    out = {}
    for rel, doc in rendered_manifests(render_dir).items():
        if not isinstance(doc, dict) or doc.get("kind") != "ConfigMap":
            continue
        for key, text in (doc.get("data") or {}).items():
            if key.endswith(".json"):
                board = json.loads(text)
                if isinstance(board, dict) and board.get("uid") and "panels" in board:
                    assert key not in out, "dashboard %s in two ConfigMaps (%s)" % (key, rel)
                    out[key] = board
    return out


def dashboard_queries(board):
    """Every PromQL text of a dashboard: its Prometheus targets' expressions and its query variables' queries."""
    texts = [target["expr"] for _title, target in prometheus_targets(board)]
    for variable in query_variables(board):
        query = variable.get("query")
        texts.append(query.get("query") if isinstance(query, dict) else query)
        texts.append(variable.get("definition"))
    return [text for text in texts if text]
