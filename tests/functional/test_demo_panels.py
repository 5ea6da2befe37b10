"""`make demo`'s traffic lights every panel of the four dashboards (all but the TLS one), under another job name.

The site is rendered with ``prometheus_gateway_job_name=gw-pods`` (support.session variant "gw-pods"); the
local stack (tests/support/stack.py) runs the real Prometheus 3.14 with that render's rules, scraping the
gateway stand-in as job gw-pods, the real WireMock with the mock backend's mappings (chat, MCP server,
guardrail webhook, the flaky model) and kube-state-metrics' series for the proxy pod. The traffic role
(playbooks/traffic.yml) sends its defaults through the stand-in, as `make demo` does through the gateway,
and every panel of the rendered dashboards is then asked for data: every query of a Prometheus panel, with
every variable on "All" and the job constant the grafana role wrote, returns a finite value; the traces
panel's TraceQL finds a trace in the contract Tempo.

``PANEL_SOURCES`` names, for every panel, the traffic that feeds it; a new panel needs an entry.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

import pytest

from support.dashboards import (
    all_values,
    has_finite_value,
    query_variables,
    rendered_dashboards,
    substitute,
    variable_query,
)
from support.fixtures import REPO, load_rendered, run_playbook
from support.stack import LocalStack

pytestmark = pytest.mark.services

JOB = "gw-pods"
CHAT = "chat completions (traffic_requests, traffic_models)"
STREAMED = "streamed chat completions (traffic_stream_ratio)"
PRICED = "chat completions of priced models (gateway_observability's price catalog)"
MCP = "MCP session: initialize, tools/list, tools/call echo and fail (traffic_mcp_*)"
GUARD = "a prompt the regex guard rejects (traffic_guard_*)"
WEBHOOK = "every chat prompt checked by the guardrail webhook; one that fails open (traffic_guard_fail_open_*)"
RETRY = "requests to the flaky route, retried once (traffic_retry_*)"
PROXY = "the proxy's own gauges (build, config, tokio, smaps)"
CGROUP = "the proxy's cgroup v2 memory (any traffic; nodes with cgroup v2)"
XDS = "the controller's xDS stream to the proxy"
KSM = "kube-state-metrics: the proxy container's limits, requests and restarts"
SCRAPE = "the scrape of the gateway pods (up)"
TRACES = "the spans of the chat completions in Tempo"
TLS = None  # needs an HTTPS or TLS listener; the demo's Gateway listens on HTTP only

PANEL_SOURCES = {
    "agentgateway-cost": {
        "Spend rate (USD/h)": PRICED,
        "Spend in the last 24 hours": PRICED,
        "Cost per 1k tokens": PRICED,
        "Token efficiency (output/input)": CHAT,
        "Spend per hour by provider and model": PRICED,
        "Spend per hour by user": PRICED,
        "Spend per day by provider and model": PRICED,
        "Spend per day by user": PRICED,
        "Cost per 1k tokens by model": PRICED,
        "Token efficiency (output/input) by model": CHAT,
        "Cache hit ratio": CHAT,
        "Most expensive models": PRICED,
        "Most expensive users": PRICED,
        "Price catalog lookups by status": CHAT,
    },
    "agentgateway-genai-overview": {
        "GenAI requests/s": CHAT,
        "HTTP error ratio (5xx)": CHAT,
        "Tokens/s": CHAT,
        "Spend rate (USD/h)": PRICED,
        "Gateway pods up": SCRAPE,
        "GenAI request rate by provider and model": CHAT,
        "Errors by status": GUARD,
        "GenAI request latency p95 / p99 by model": CHAT,
        "HTTP latency p95 / p99 by route": CHAT,
        "Time to first token p50 / p95": STREAMED,
        "Output tokens per second": STREAMED,
        "Token rate by type and model": CHAT,
        "Provider error ratio (5xx and 429) by backend": CHAT,
        "Provider availability by backend": CHAT,
        "Recent GenAI traces": TRACES,
    },
    "agentgateway-mcp-guardrails": {
        "MCP calls/s": MCP,
        "Tool calls/s": MCP,
        "MCP error ratio (5xx)": MCP,
        "MCP servers called": MCP,
        "MCP calls by server and method": MCP,
        "MCP error ratio by route": MCP,
        "Most used tools, prompts and resources": MCP,
        "MCP answers by status and reason": MCP,
        "MCP calls by resource type": MCP,
        "MCP upstream call latency p50 / p95": MCP,
        "Guardrail checks/s": GUARD,
        "Checks that block": GUARD,
        "Requests blocked by a prompt guardrail": GUARD,
        "Checks that failed open/s": WEBHOOK,
        "Guardrail checks by phase and action": GUARD,
        "Share of checks that block, by phase": GUARD,
        "Requests blocked by a guardrail, by route": GUARD,
        "Guardrail call latency p50 / p95": WEBHOOK,
        "Retries/s by route": RETRY,
        "Retries per request by route": RETRY,
        "Most retried backends": RETRY,
    },
    "agentgateway-runtime": {
        "Gateway pods up": SCRAPE,
        "Version": PROXY,
        "Memory vs limit (fullest pod)": KSM,
        "Local config loaded": PROXY,
        "Container restarts (24h)": KSM,
        "Memory per pod against its limit": KSM,
        "Where the memory goes (cgroup)": CGROUP,
        "Process memory (smaps)": PROXY,
        "Major page faults/s": CGROUP,
        "Alive tasks": PROXY,
        "Global queue depth": PROXY,
        "Worker threads": PROXY,
        "xDS messages by type": XDS,
        "xDS bytes by type": XDS,
        "xDS stream terminations by reason": XDS,
        "xDS messages in the last hour, per pod": XDS,
        "New downstream connections/s": CHAT,
        "Downstream bytes/s": CHAT,
        "TLS handshake p50 / p95": TLS,
        "Inside the gateway vs upstream (p95)": CHAT,
        "Share of request time spent inside the gateway": CHAT,
        "Gateway processing p95 by route": CHAT,
        "Upstream calls p95 by kind": CHAT,
        "Upstream connect p95 by transport": CHAT,
        "Upstream calls/s by kind": CHAT,
        "HTTP response bytes/s by route": CHAT,
    },
}


def panels(board):
    out = []

    def walk(items):
        for panel in items:
            walk(panel.get("panels") or [])
            if panel.get("type") != "row":
                out.append(panel)

    walk(board.get("panels") or [])
    return out


@pytest.fixture(scope="module")
def demo(site_render, prometheus_binary, tmp_path_factory, mock_render, mock_wiremock):
    """The stack for a gw-pods render, after the traffic role's default traffic."""
    render = site_render("gw-pods")
    values = load_rendered(render, "helm/monitoring/prometheus.yaml")["values"]
    stack = LocalStack(prometheus_binary, tmp_path_factory.mktemp("demo"), mock_render, values,
                       wiremock=mock_wiremock, job=JOB)
    try:
        # the role's defaults but the pause between its two rounds: this Prometheus scrapes every second
        run_playbook(REPO / "playbooks" / "traffic.yml", {"traffic_base_url": stack.gateway.url, "traffic_round_pause": 3})
        yield stack, rendered_dashboards(render)
    finally:
        stack.stop()


def panel_has_data(stack, board, panel):
    """(True, "") when every query of the panel answers with a finite value, else (False, the query without)."""
    values = all_values(board)
    for target in panel.get("targets") or []:
        kind = (target.get("datasource") or panel.get("datasource") or {}).get("type")
        if kind == "tempo":
            query = target["query"]
            if not _tempo_search(stack, query):
                return False, query
        elif target.get("expr"):
            promql = substitute(target["expr"], values)
            if not has_finite_value(stack.prometheus.api("/api/v1/query", query=promql)["result"]):
                return False, promql
    return True, ""


def _tempo_search(stack, traceql):
    url = "%s/api/search?%s" % (stack.tempo.url, urllib.parse.urlencode({"q": traceql, "limit": 5}))
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())["traces"]


def test_every_panel_names_the_traffic_that_feeds_it(demo):
    _stack, boards = demo
    assert sorted(b["uid"] for b in boards.values()) == sorted(PANEL_SOURCES)
    for board in boards.values():
        titles = [p["title"] for p in panels(board)]
        assert sorted(titles) == sorted(PANEL_SOURCES[board["uid"]]), board["uid"]
        for panel in panels(board):
            if PANEL_SOURCES[board["uid"]][panel["title"]] is TLS:
                assert "TLS listener" in panel.get("description", ""), \
                    "%s / %s: say on the panel that it needs a TLS listener" % (board["uid"], panel["title"])


def test_the_demo_traffic_lights_every_panel_but_tls_under_another_job(demo):
    stack, boards = demo
    for board in boards.values():
        for text in (t.get("expr", "") for p in panels(board) for t in p.get("targets") or []):
            assert 'job="agentgateway"' not in text
        # the variables offer values under that job too (Grafana runs their label_values queries first)
        values = all_values(board)
        for variable in query_variables(board):
            selector, label = variable_query(variable)
            found = stack.prometheus.api("/api/v1/label/%s/values" % label, **{"match[]": substitute(selector, values)})
            assert found, "%s: variable %s offers no value under job %s" % (board["uid"], variable["name"], JOB)
    deadline = time.time() + 60
    while True:
        missing, lit, total = [], 0, 0
        for board in sorted(boards.values(), key=lambda b: b["uid"]):
            for panel in panels(board):
                if PANEL_SOURCES[board["uid"]][panel["title"]] is TLS:
                    continue
                total += 1
                ok, query = panel_has_data(stack, board, panel)
                if ok:
                    lit += 1
                else:
                    missing.append("%s / %s (fed by %s):\n  %s" % (
                        board["uid"], panel["title"], PANEL_SOURCES[board["uid"]][panel["title"]], query))
        if not missing or time.time() > deadline:
            break
        time.sleep(2)
    tls = sum(1 for p in PANEL_SOURCES.values() for source in p.values() if source is TLS)
    print("\npanels with data after the demo's traffic (job %s): %d/%d (and %d TLS panel(s) without a TLS listener)"
          % (JOB, lit, total, tls))
    assert not missing, "%d of %d panels show No data:\n%s" % (len(missing), total, "\n".join(missing))
