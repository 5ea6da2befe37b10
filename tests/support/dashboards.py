"""The grafana role's dashboards against a real Prometheus over backfilled gateway series.

``genai_prometheus`` (session scope) writes three hours of synthetic gateway metrics in
OpenMetrics text with the gateway's real metric and label names (shared/reference/agentgateway.md,
crates' HTTPLabels / GenAILabels with the flattened route identifier), plus the target labels the
prometheus role's scrape job adds (job, namespace, pod, gateway_networking_k8s_io_gateway_name).
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

STEP = 30  # seconds between samples
WINDOW = 3 * 3600  # seconds of data

# Grafana's built-in variables, as the tests substitute them.
BUILTINS = {"__rate_interval": "2m", "__interval": "1m", "__range": "3h", "__range_s": "10800"}

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
        base.update({"backend": backend, "protocol": "http", "method": "POST", "reason": "Upstream"})
        for status, rate in (("200", 9.0), ("429", 0.5), ("500", 0.5 if provider == "openai" else 0.2)):
            http.append((dict(base, status=status), rate))
    w.counter("agentgateway_requests", http)
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
    return w.text()


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
def stack_render(tmp_path_factory):
    """The stack with defaults (kind profile, Loki off), rendered once per session; read-only."""
    out = tmp_path_factory.mktemp("stack-render")
    render_stack(out)
    return out


@pytest.fixture(scope="session")
def stack_render_loki(tmp_path_factory):
    """The stack with Loki on, rendered once per session; read-only."""
    out = tmp_path_factory.mktemp("stack-render-loki")
    render_stack(out, {"agw_obs_loki_enabled": True})
    return out


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
