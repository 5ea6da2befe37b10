"""The verification modules against a real Prometheus 3.14 and a real WireMock.

Prometheus scrapes local targets that serve what the gateway exports (tests/support/proxy_metrics.py:
agentgateway v1.4.1's families and label sets, OpenMetrics by negotiation) and runs the prometheus role's
rendered rules; WireMock serves the
mock_backend role's rendered mappings. The modules run in-process (their main(), which the
verification modules share: module_utils/checks.py run_checks_module).

A failing check is retried until the deadline (data may still be on its way), so the faulty
Prometheus is first waited for until every fault shows; then a short deadline is enough.
"""

from __future__ import annotations

import pytest

from ansible_collections.agentgateway.observability.plugins.modules import mcp_probe, prometheus_query, service_probe
from ansible_collections.agentgateway.observability.plugins.plugin_utils import verification as plan_mod
from support.modules import by_id, run_module
from support.services import free_port
from support.proxy_metrics import ProxyMetrics
from support.stack import GATEWAY_TARGET_LABELS, PRICES

pytestmark = pytest.mark.services

MODELS = ("gpt-4", "gpt-3.5-turbo")


# The families of the chat and of the MCP, guard and retry demo, as agentgateway v1.4.1 writes them
# (tests/support/proxy_metrics.py; plugins/plugin_utils/verification.py cites the source).
DEMO_ROUTES = {"mcp": "agentgateway-system/mock-openai-mcp", "guard": "agentgateway-system/mock-openai",
               "retry": "agentgateway-system/mock-openai-flaky"}


def gateway_metrics():
    """What the proxy exports after: 5 and 6 chats (25 input tokens per model), 3 MCP sessions, 2 prompts the
    guard rejects and 10 it lets through, 3 retries."""
    metrics = ProxyMetrics(prices=PRICES, process=False)
    chat = {"route": DEMO_ROUTES["guard"], "backend": "agentgateway-system/mock-openai"}
    for index, model in enumerate(MODELS):
        inputs = [5] * 5 if index == 0 else [5, 4, 4, 4, 4, 4]
        for tokens in inputs:
            metrics.llm_request(model=model, input_tokens=tokens, output_tokens=2, **chat)
    for _session in range(3):
        for method in ("initialize", "notifications/initialized", "tools/list"):
            metrics.mcp_request(DEMO_ROUTES["mcp"], method, backend="agentgateway-system/mock-openai-mcp")
    for tool in ("echo", "echo", "fail", "fail"):
        metrics.mcp_request(DEMO_ROUTES["mcp"], "tools/call", "tool", "mock-tools", tool,
                            backend="agentgateway-system/mock-openai-mcp")
    for _rejected in range(2):
        metrics.guardrail_check("Request", "Reject")
        # the guard runs before the LLM request is built: the proxy records model and provider "none"
        metrics.llm_request(model="none", provider="none", status=403, reason="Guardrail", answered=False, **chat)
    for _allowed in range(10):
        metrics.guardrail_check("Request", "Allow")
    metrics.retry(DEMO_ROUTES["retry"], "agentgateway-system/mock-openai-flaky", count=3, protocol="llm",
                  model="mock-flaky", provider="openai")
    return metrics


@pytest.fixture(scope="module")
def healthy_prometheus(prometheus_binary, prometheus_values, tmp_path_factory):
    from support.prometheus import MetricsTarget, PrometheusServer  # pylint: disable=import-outside-toplevel
    target = MetricsTarget(negotiate=gateway_metrics().answer)
    server = PrometheusServer(prometheus_binary, tmp_path_factory.mktemp("prom-healthy"), {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "agentgateway", "static_configs": [
            {"targets": [target.address], "labels": GATEWAY_TARGET_LABELS}]}],
    }, rule_files={"alerting_rules.yml": prometheus_values["serverFiles"]["alerting_rules.yml"],
                   "recording_rules.yml": prometheus_values["serverFiles"]["recording_rules.yml"]})
    yield server
    server.stop()
    target.stop()


@pytest.fixture(scope="module")
def faulty_prometheus(prometheus_binary, tmp_path_factory):
    """A gateway scraped twice, a gateway target that is down, and a rule that fails to evaluate."""
    from support.prometheus import MetricsTarget, PrometheusServer  # pylint: disable=import-outside-toplevel
    metrics = gateway_metrics()
    twice, first, second = (MetricsTarget(negotiate=metrics.answer) for _target in range(3))
    server = PrometheusServer(prometheus_binary, tmp_path_factory.mktemp("prom-faulty"), {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "agentgateway", "static_configs": [{"targets": [twice.address]}]},
            {"job_name": "kubernetes-pods", "static_configs": [{"targets": [twice.address]}]},
            {"job_name": "gateway-down", "static_configs": [{"targets": ["127.0.0.1:%d" % free_port()]}]},
            {"job_name": "multi", "static_configs": [{"targets": [first.address, second.address]}]},
        ],
    }, rule_files={"broken.yml": {"groups": [{"name": "broken", "rules": [
        # two series per job on each side: many-to-many matching fails at every evaluation
        {"record": "test:broken", "expr": 'up{job="multi"} * on(job) up{job="multi"}'}]}]}})

    def every_fault_shows():
        health = {t["scrapePool"]: t["health"] for t in server.api("/api/v1/targets")["activeTargets"]}
        rules = [r for g in server.api("/api/v1/rules")["groups"] for r in g["rules"]]
        return health.get("gateway-down") == "down" and health.get("agentgateway") == "up" and \
            [r["health"] for r in rules] == ["err"]

    server.wait_for(every_fault_shows, what="the target down and the rule failing")
    yield server
    server.stop()
    for target in (twice, first, second):
        target.stop()


def prom(server, capsys, **args):
    base = {"service": {"url": server.url}, "deadline": 20, "backoff": 0.2, "fail_on_error": False}
    base.update(args)
    return run_module(prometheus_query, base, capsys)


def test_queries_targets_rules_and_alerts_on_a_real_prometheus(healthy_prometheus, capsys):
    result = prom(healthy_prometheus, capsys, targets=[{"job": "agentgateway"}], rules=True,
                  rule_groups=["agentgateway.alerts", "agentgateway.recording"], alerts=True, queries=[
                      {"id": "requests", "query": "sum by (model) (agentgateway_requests_total)", "above": 0,
                       "per_label": {"label": "model", "values": list(MODELS)}},
                      {"id": "tokens", "query": 'sum by (gen_ai_request_model) (agentgateway_gen_ai_client_'
                                                'token_usage_sum{gen_ai_token_type="input"})',
                       "min_value": 25, "max_value": 25, "min_series": 2},
                      {"id": "cost",
                       "query": "sum by (gen_ai_request_model) (agentgateway_gen_ai_client_cost_usd_total)",
                       "per_label": {"label": "gen_ai_request_model", "values": ["gpt-4"]}, "above": 0}])
    checks = by_id(result)
    assert result["passed"], [c for c in result["checks"] if c["status"] != "passed"]
    assert checks["prometheus.ready"]["status"] == "passed"
    assert "1 target(s) up" in checks["prometheus.targets.agentgateway"]["saw"]
    assert "all healthy" in checks["prometheus.rules"]["saw"]
    # and the prompts the guard rejected, which the proxy records before it knows a model
    assert {s["metric"]["model"] for s in result["series"]["requests"]} == set(MODELS) | {"none"}
    assert "firing_alerts" in result


def test_a_query_that_misses_says_which_model(healthy_prometheus, capsys):
    result = prom(healthy_prometheus, capsys, ready=False, deadline=1, queries=[
        {"id": "requests", "query": "sum by (model) (agentgateway_requests_total)", "above": 0,
         "per_label": {"label": "model", "values": ["gpt-4", "claude-3"]}},
        {"id": "too-high", "query": "sum(agentgateway_requests_total)", "min_value": 1000},
        {"id": "nothing", "query": "agentgateway_no_such_metric"}])
    checks = by_id(result)
    assert checks["requests"]["cause"] == "no_data"
    assert "no fitting series for model=claude-3" in checks["requests"]["saw"]
    assert checks["too-high"]["cause"] == "expectation" and "value >= 1000" in checks["too-high"]["saw"]
    assert checks["nothing"]["cause"] == "no_data" and checks["nothing"]["saw"] == "no series"
    assert checks["requests"]["attempts"] > 1, "a missing series is waited for until the deadline"


def test_target_scraped_twice_down_and_a_broken_rule(faulty_prometheus, capsys):
    result = prom(faulty_prometheus, capsys, deadline=1, ready=False, rules=True,
                  targets=[{"job": "agentgateway"}, {"job": "gateway-down"}, {"job": "missing-job"}])
    checks = by_id(result)
    twice = checks["prometheus.targets.agentgateway"]
    assert twice["cause"] == "target_duplicate" and "also scraped by job(s) kubernetes-pods" in twice["saw"]
    down = checks["prometheus.targets.gateway-down"]
    assert down["cause"] == "target_down" and "connection refused" in down["saw"]
    assert "15020" in down["fix"]
    assert checks["prometheus.targets.missing-job"]["cause"] == "target_missing"
    rules = checks["prometheus.rules"]
    assert rules["cause"] == "rule_unhealthy" and "broken/test:broken" in rules["saw"]
    assert "many-to-many" in rules["saw"] or "duplicate series" in rules["saw"]


def test_fail_on_error_fails_the_task_with_every_cause(faulty_prometheus, capsys):
    """prometheus_query fails the task by default (fail_on_error), with every failed check's cause; the results
    come with the failure. grafana_info, an _info module, only reports by default: test_contract_grafana.py."""
    args = {"service": {"url": faulty_prometheus.url}, "deadline": 1, "backoff": 0.2, "ready": False,
            "targets": [{"job": "gateway-down"}, {"job": "missing-job"}]}
    result = run_module(prometheus_query, args, capsys)
    assert result["failed"] and result["msg"].startswith("2 Prometheus check(s) failed: "), result["msg"]
    assert "prometheus.targets.gateway-down (target_down)" in result["msg"]
    assert "prometheus.targets.missing-job (target_missing)" in result["msg"]
    assert [c["status"] for c in result["checks"]] == ["failed", "failed"] and result["passed"] is False
    assert not run_module(prometheus_query, dict(args, fail_on_error=False), capsys).get("failed")


def test_service_probe_against_the_real_wiremock(mock_wiremock, capsys):
    trace, span = "5" * 32, "6" * 16
    chat = {"id": "chat", "service": {"url": mock_wiremock.url}, "method": "POST", "path": "/v1/chat/completions",
            "headers": {"Authorization": "Bearer mock-key", "traceparent": "00-%s-%s-01" % (trace, span)},
            "body": {"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]},
            "json": [{"path": "choices[*].message.content", "min_count": 1}, {"path": "model", "equals": "gpt-4"},
                     {"path": "usage.total_tokens", "regex": "^[0-9]+$"}]}
    models = {"id": "models", "service": {"url": mock_wiremock.url}, "path": "/v1/models",
              "headers": {"Authorization": "Bearer mock-key"}, "json": [{"path": "data[*].id", "min_count": 2}]}
    wrong_key = {"id": "wrong-key", "service": {"url": mock_wiremock.url}, "path": "/v1/models",
                 "headers": {"Authorization": "Bearer nope"}}
    result = run_module(service_probe, {"checks": [chat, models, wrong_key], "deadline": 5, "fail_on_error": False},
                        capsys)
    checks = by_id(result)
    assert checks["chat"]["status"] == "passed" and checks["models"]["status"] == "passed", result["checks"]
    assert checks["wrong-key"]["cause"] == "unauthorized" and checks["wrong-key"]["attempts"] == 1
    find = {"id": "journal", "service": {"url": mock_wiremock.url}, "method": "POST", "path": "/__admin/requests/find",
            "body": {"method": "POST", "headers": {"traceparent": {"contains": trace}}},
            "json": [{"path": "requests[*].url", "equals": "/v1/chat/completions"}]}
    assert by_id(run_module(service_probe, {"checks": [find], "deadline": 5}, capsys))["journal"]["status"] == "passed"
    # in check mode the POSTs are not sent, the GETs are
    skipped = run_module(service_probe, {"checks": [chat, models], "deadline": 5}, capsys, check_mode=True)
    assert [c["status"] for c in skipped["checks"]] == ["skipped", "passed"] and skipped["changed"] is False


# ---- the MCP, guard and retry demo ------------------------------------------------------------------------
DEMO = {"mcp": {"path": "/mcp", "server": "mock-tools", "route": DEMO_ROUTES["mcp"], "tools": ["echo", "add", "fail"]},
        "guard": {"route": DEMO_ROUTES["guard"], "patterns": ["(?i)ignore (all )?previous instructions"],
                  "status": 403},
        "retry": {"path": "/flaky", "model": "mock-flaky", "route": DEMO_ROUTES["retry"], "attempts": 2,
                  "codes": [503]}}


def test_demo_counters_against_their_baseline_on_a_real_prometheus(healthy_prometheus, capsys):
    """The verification's baseline read and delta queries, evaluated by a real Prometheus: the counters as they are
    now grew by nothing since this baseline (every check fails, the queries parse), and by one since a baseline one
    lower (every check passes)."""
    specs = plan_mod.demo_specs(DEMO)
    read = prom(healthy_prometheus, capsys, deadline=20, queries=plan_mod.baseline_queries(specs))
    assert read["passed"], read["checks"]
    baseline = plan_mod.baseline_values(specs, read["series"])
    assert baseline["prometheus.mcp_calls"] == {"initialize": 3.0, "notifications/initialized": 3.0,
                                                "tools/list": 3.0, "tools/call": 4.0}
    assert baseline["prometheus.mcp_tool_calls"] == {"echo": 2.0, "fail": 2.0}
    assert baseline["prometheus.guardrail_rejections"] == 2.0 and baseline["prometheus.retries"] == 3.0
    assert baseline["prometheus.guardrail_rejected_requests"] == 2.0

    unchanged = prom(healthy_prometheus, capsys, ready=False, deadline=1,
                     queries=plan_mod.demo_queries(specs, read["series"]))
    assert [c["status"] for c in unchanged["checks"]] == ["failed"] * 5
    assert all(c["cause"] in ("no_data", "expectation") and "error" not in c["saw"].lower()
               for c in unchanged["checks"]), unchanged["checks"]

    def lower(series):
        return [dict(s, value=[s["value"][0], str(float(s["value"][1]) - 1)]) for s in series]

    earlier = {key: lower(series) for key, series in read["series"].items()}
    grown = prom(healthy_prometheus, capsys, ready=False, deadline=5, queries=plan_mod.demo_queries(specs, earlier))
    checks = by_id(grown)
    assert grown["passed"], [c for c in grown["checks"] if c["status"] != "passed"]
    assert set(checks) == {"prometheus.mcp_calls", "prometheus.mcp_tool_calls", "prometheus.guardrail_rejections",
                           "prometheus.guardrail_rejected_requests", "prometheus.retries"}
    assert {s["metric"]["method"]: s["value"][1] for s in grown["series"]["prometheus.mcp_calls"]} == {
        "initialize": "1", "notifications/initialized": "1", "tools/list": "1", "tools/call": "1"}


def test_mcp_probe_against_the_real_mock_mcp_server(mock_wiremock, capsys):
    """The verification's MCP session, straight to the mock backend's MCP server (JSON answers, its session id)."""
    args = {"service": {"url": mock_wiremock.url}, "path": "/mcp", "id_prefix": "mock_backend.mcp",
            "deadline": 5, "fail_on_error": False, "tools": [
                {"name": "echo", "arguments": {"text": "verification 42"}, "text_regex": "^verification 42$"},
                {"name": "add", "arguments": {"a": 1, "b": 1}, "text_regex": "^2$"},
                {"name": "fail", "expect_error": True}]}
    result = run_module(mcp_probe, args, capsys)
    assert result["passed"], result["checks"]
    assert [c["id"] for c in result["checks"]] == ["mock_backend.mcp.initialize", "mock_backend.mcp.tools_list",
                                                   "mock_backend.mcp.tools_call.echo", "mock_backend.mcp.tools_call.add",
                                                   "mock_backend.mcp.tools_call.fail"]
    assert result["session"]["session_id_given"] and result["session"]["protocol_version"] == "2025-06-18"
    assert "JSON-RPC error -32603" in by_id(result)["mock_backend.mcp.tools_call.fail"]["saw"]
    args["tools"] = [{"name": "fail"}]
    failed = by_id(run_module(mcp_probe, dict(args, deadline=0.5), capsys))["mock_backend.mcp.tools_call.fail"]
    assert failed["status"] == "failed" and failed["cause"] == "expectation"
