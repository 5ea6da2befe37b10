"""Scrape job and rule builders of the prometheus role: shapes and refusals."""

from __future__ import annotations

import re

import pytest

from ansible_collections.agentgateway.observability.plugins.filter import prometheus as prometheus_filters
from ansible_collections.agentgateway.observability.plugins.plugin_utils import prometheus_config as pc
from support import planner

# The thresholds' values live in the role's defaults/main.yml only.
DEFAULTS = {key: planner.value("prometheus", variable) for key, (variable, _rule) in pc.THRESHOLDS.items()}


def thresholds(**changes):
    return dict(DEFAULTS, **changes)


def test_label_names_are_sanitized_like_service_discovery_does():
    assert pc.sanitize_label_name("gateway.networking.k8s.io/gateway-name") == "gateway_networking_k8s_io_gateway_name"
    assert pc.sanitize_label_name("app.kubernetes.io/name") == "app_kubernetes_io_name"


def test_scrape_job_keeps_every_selector_label_and_the_port():
    job = pc.gateway_scrape_job("agw", ["a", "b"], {"app.kubernetes.io/name": "agentgateway", "tier": "edge|core"},
                                15020, scrape_interval="30s")
    assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": ["a", "b"]}}]
    keeps = [(r["source_labels"][0], r["regex"]) for r in job["relabel_configs"] if r["action"] == "keep"]
    assert keeps == [
        ("__meta_kubernetes_pod_label_app_kubernetes_io_name", "agentgateway"),
        ("__meta_kubernetes_pod_label_tier", "edge|core"),
        ("__meta_kubernetes_pod_container_port_number", "15020"),
    ]
    targets = {r.get("target_label") for r in job["relabel_configs"]}
    assert {"namespace", "pod"} <= targets
    assert job["scrape_interval"] == "30s"


@pytest.mark.parametrize(
    "args, message",
    [
        (("bad job!", ["a"], {"x": "y"}, 15020), "prometheus_gateway_job_name"),
        (("agw", [], {"x": "y"}, 15020), "prometheus_gateway_namespaces"),
        (("agw", ["a"], {}, 15020), "prometheus_gateway_pod_labels"),
        (("agw", ["a"], {"x": "y"}, 70000), "prometheus_gateway_metrics_port"),
    ],
)
def test_scrape_job_refuses_bad_input_naming_the_variable(args, message):
    with pytest.raises(pc.PrometheusConfigError, match=message):
        pc.gateway_scrape_job(*args)


def test_rules_select_the_job_and_use_the_thresholds():
    rules = pc.alerting_rules("gw-pods", thresholds(error_ratio=0.02, cost_usd_per_hour=2.5, **{"for": "10m"}))
    by_name = {r["alert"]: r for r in rules["groups"][0]["rules"]}
    assert 'job="gw-pods"' in by_name["AgentgatewayScrapeTargetDown"]["expr"]
    assert by_name["AgentgatewayHighErrorRatio"]["expr"].endswith(") > 0.02")
    assert by_name["AgentgatewayCostBurnRateHigh"]["expr"].endswith("* 3600 > 2.5")
    assert by_name["AgentgatewayHighErrorRatio"]["for"] == "10m"
    assert by_name["AgentgatewayScrapeTargetDown"]["for"] == "2m"
    assert "2%" in by_name["AgentgatewayHighErrorRatio"]["annotations"]["description"]


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"error_ratio": 0}, "prometheus_alert_error_ratio=0 must be a ratio in (0, 1]"),
        ({"backend_error_ratio": 1.5}, "prometheus_alert_backend_error_ratio=1.5 must be a ratio in (0, 1]"),
        ({"latency_p95_seconds": -1}, "prometheus_alert_latency_p95_seconds=-1 must be a positive number"),
        ({"for": "5 minutes"}, "prometheus_alert_for=5 minutes must be a Prometheus duration"),
        ({"errors": 0.1}, "unknown alert threshold errors"),
        ({"memory_limit_ratio": 1.2}, "prometheus_alert_memory_limit_ratio=1.2 must be a ratio in (0, 1]"),
        ({"mcp_error_ratio": 0}, "prometheus_alert_mcp_error_ratio=0 must be a ratio in (0, 1]"),
        ({"guardrail_block_ratio": "a lot"}, "prometheus_alert_guardrail_block_ratio=a lot must be a ratio"),
        ({"guardrail_block_spike_factor": 0.5}, "prometheus_alert_guardrail_block_spike_factor=0.5 must be at least 1"),
        ({"retry_ratio": 0}, "prometheus_alert_retry_ratio=0 must be a positive number"),
        ({"upstream_connect_p95_seconds": True}, "prometheus_alert_upstream_connect_p95_seconds=True must be a positive"),
        ({"xds_silence": 15}, "prometheus_alert_xds_silence=15 must be a Prometheus duration"),
    ],
)
def test_rules_refuse_bad_thresholds_naming_the_variable(changes, message):
    with pytest.raises(pc.PrometheusConfigError) as err:
        pc.alerting_rules("agw", thresholds(**changes))
    assert message in str(err.value)


def test_rules_need_every_threshold_and_have_no_defaults_of_their_own():
    partial = dict(DEFAULTS)
    del partial["cost_usd_per_hour"]
    with pytest.raises(pc.PrometheusConfigError, match="alert thresholds missing: cost_usd_per_hour"):
        pc.alerting_rules("agw", partial)


def test_runtime_alerts_use_their_thresholds():
    rules = pc.alerting_rules("gw-pods", thresholds(memory_limit_ratio=0.8, xds_silence="30m", mcp_error_ratio=0.1,
                                                    guardrail_block_ratio=0.5, guardrail_block_spike_factor=2,
                                                    retry_ratio=1.5, upstream_connect_p95_seconds=0.25))
    by_name = {r["alert"]: r for r in rules["groups"][0]["rules"]}
    assert by_name["AgentgatewayMemoryNearLimit"]["expr"].endswith(") > 0.8")
    assert by_name["AgentgatewayXdsSilent"]["expr"].count("[30m]") == 2
    assert "for 30m" in by_name["AgentgatewayXdsSilent"]["annotations"]["summary"]
    assert by_name["AgentgatewayMcpErrorRatioHigh"]["expr"].endswith(") > 0.1")
    spike = by_name["AgentgatewayGuardrailBlockSpike"]["expr"]
    assert ") > 0.5\nunless on (namespace, gateway)" in spike and ") <= 2 * (" in spike
    assert "[1d] offset 5m" in spike
    assert by_name["AgentgatewayRetryStorm"]["expr"].endswith(") > 1.5")
    assert by_name["AgentgatewayUpstreamConnectSlow"]["expr"].endswith(") > 0.25")
    records = {r["record"]: r["expr"] for r in pc.recording_rules("gw-pods")["groups"][0]["rules"]}
    for rule in by_name.values():
        # an alert on a recorded family selects the job through the recording rule
        expr = "\n".join([rule["expr"]] + [records[name] for name in re.findall(r"agentgateway:\w+:\w+", rule["expr"])])
        assert 'job="gw-pods"' in expr, rule["alert"]
        assert 'job="agentgateway"' not in expr, rule["alert"]


def test_series_without_a_gateway_label_get_it_from_the_pod():
    rules = {r["record"]: r["expr"] for r in pc.recording_rules("agw")["groups"][0]["rules"]}
    join = 'label_join(%s, "gateway", "/", "namespace", "gateway_networking_k8s_io_gateway_name")'
    assert rules["agentgateway:pod_gateway:info"] == join % (
        'group by (namespace, pod, gateway_networking_k8s_io_gateway_name) (up{job="agw"})')
    assert join % 'rate(agentgateway_guardrail_checks_total{job="agw"}[5m])' in rules["agentgateway:guardrail_checks:rate5m"]
    # the proxy labels guardrail checks with phase and action only (telemetry/metrics.rs GuardrailLabels)
    assert rules["agentgateway:guardrail_checks:rate5m"].startswith("sum by (namespace, gateway, phase, action)")


def test_tokens_are_recorded_once_with_the_cache_taken_out_of_input_where_it_is_in():
    """agentgateway:gen_ai_tokens:rate5m: "input" minus the model's cache reads and writes for providers
    whose input includes the cache (llm/mod.rs@v1.4.1 cache_convention_for), every other series as
    recorded; the token alert reads that family. promtool checks the values:
    tests/functional/promtool/tokens_rules_test.yml."""
    rules = {r["record"]: r["expr"] for r in pc.recording_rules("gw-pods", ["user"])["groups"][0]["rules"]}
    expr = rules["agentgateway:gen_ai_tokens:rate5m"]
    assert expr == pc.token_rate("gw-pods", ["user"])
    for matchers in pc.INPUT_INCLUDES_CACHE:
        assert ('{job="gw-pods",gen_ai_token_type="input",%s}[5m]' % matchers) in expr
    assert "- ignoring (gen_ai_token_type) group_left\n" in expr
    assert ('sum by (namespace, gateway, gen_ai_system, gen_ai_request_model, user) (rate(agentgateway_gen_ai_client_'
            'token_usage_sum{job="gw-pods",gen_ai_token_type=~"input_cache_read|input_cache_write"}[5m]))') in expr
    # the fallback: every other series, and the input of models without cache series, as recorded
    assert expr.endswith('\nor\nsum by (namespace, gateway, gen_ai_system, gen_ai_request_model, gen_ai_token_type, '
                         'user) (rate(agentgateway_gen_ai_client_token_usage_sum{job="gw-pods"}[5m]))')
    # Anthropic and Bedrock never lose their input; Vertex AI and Copilot only with other models than Claude
    assert 'gen_ai_system!~"anthropic|aws\\\\.bedrock|gcp\\\\.vertex_ai|copilot"' in expr
    alerts = {r["alert"]: r for r in pc.alerting_rules("gw-pods", thresholds())["groups"][0]["rules"]}
    assert alerts["AgentgatewayTokenBurnRateHigh"]["expr"] == (
        "sum by (namespace, gateway, gen_ai_system, gen_ai_request_model) (agentgateway:gen_ai_tokens:rate5m)"
        " * 3600 > %s" % pc._num(DEFAULTS["tokens_per_hour"]))  # pylint: disable=protected-access


@pytest.mark.parametrize("name, ok", [("agentgateway", True), ("gw-pods", True), ("_x9", True), ("9gw", False),
                                      ("-gw", False), ("gw pods", False), ("gw.pods", False), ("", False),
                                      (None, False)])
def test_job_names_follow_one_rule(name, ok):
    """The rule the prometheus role's scrape job and the grafana role's dashboards (their job constant) share."""
    assert pc.is_job_name(name) is ok
    assert bool(pc.scrape_job_problems(name, ["a"], {"x": "y"}, 15020, "/metrics")) is not ok


def test_recording_rules_keep_extra_labels_once():
    rules = pc.recording_rules("agw", ["user", "namespace"])["groups"][0]["rules"]
    cost = next(r for r in rules if r["record"] == "agentgateway:gen_ai_cost_usd:per_hour")
    assert "by (namespace, gateway, gen_ai_system, gen_ai_request_model, user)" in cost["expr"]


def test_numbers_are_written_plainly():
    assert pc._num(0.05) == "0.05"  # pylint: disable=protected-access
    assert pc._num(10.0) == "10"  # pylint: disable=protected-access
    assert pc._num(1000000) == "1000000"  # pylint: disable=protected-access


def test_filters_wrap_errors_for_ansible():
    filters = prometheus_filters.FilterModule().filters()
    assert set(filters) == {"prometheus_gateway_scrape_job", "prometheus_genai_rules", "prometheus_chart_pods_job_discovery",
                            "prometheus_gateway_pod_monitor", "prometheus_rule_object"}
    with pytest.raises(Exception, match=r"prometheus_chart_pods_job_discovery: prometheus_gateway_pod_labels\[app\]"):
        filters["prometheus_chart_pods_job_discovery"](["ns"], {"app": "agw.*"})
    with pytest.raises(Exception, match="prometheus_genai_rules: prometheus_alert_error_ratio=2 must be a ratio"):
        filters["prometheus_genai_rules"]("agw", thresholds(error_ratio=2))
    out = filters["prometheus_genai_rules"]("agw", DEFAULTS, ["user"])
    assert set(out) == {"alerting", "recording"}


def test_scrape_job_asks_for_protobuf_then_openmetrics():
    job = pc.gateway_scrape_job("agw", ["a"], {"app": "agw"}, 15020)
    assert job["scrape_protocols"][:2] == ["PrometheusProto", "OpenMetricsText1.0.0"]
    assert job["scrape_protocols"][-1] == "PrometheusText0.0.4"


def test_chart_pods_discovery_is_the_complement_of_the_gateway_job():
    discovery = pc.chart_pods_job_discovery(["gw", "gw2"], {"z/name": "proxy|proxy\\.v2", "app": "agw"})
    assert discovery == [
        {"role": "pod", "selectors": [{"role": "pod", "field": "metadata.namespace!=gw,metadata.namespace!=gw2"}]},
        {"role": "pod", "namespaces": {"names": ["gw", "gw2"]},
         "selectors": [{"role": "pod", "label": "app notin (agw)"}]},
        {"role": "pod", "namespaces": {"names": ["gw", "gw2"]},
         "selectors": [{"role": "pod", "label": "app in (agw),z/name notin (proxy,proxy.v2)"}]},
    ]


@pytest.mark.parametrize("value", ["agw-.*", "proxy.v2", "(a|b)", "", "a" * 64, "-a", "a|"])
def test_chart_pods_discovery_refuses_patterns_naming_the_variables(value):
    with pytest.raises(pc.PrometheusConfigError) as info:
        pc.chart_pods_job_discovery(["gw"], {"app": value})
    assert "prometheus_gateway_pod_labels[app]" in str(info.value)
    assert "prometheus_kubernetes_pods_exclude_gateway" in str(info.value)


# ---- agw_obs_stack_mode=existing: PodMonitor and PrometheusRule -------------------------------------

POD_LABELS = {"gateway.networking.k8s.io/gateway-name": "agentgateway-proxy"}


def test_pod_monitor_selects_the_gateway_pods_and_sets_the_rules_job():
    monitor = pc.gateway_pod_monitor("gw", "monitoring", {"release": "kps"}, "agentgateway", ["agentgateway-system"],
                                     POD_LABELS, 15020)
    assert monitor["metadata"]["labels"]["release"] == "kps"
    spec = monitor["spec"]
    assert spec["selector"] == {"matchLabels": POD_LABELS}
    assert spec["namespaceSelector"] == {"matchNames": ["agentgateway-system"]}
    assert spec["scrapeProtocols"] == pc.SCRAPE_PROTOCOLS
    endpoint = spec["podMetricsEndpoints"][0]
    assert endpoint["portNumber"] == 15020 and endpoint["path"] == "/metrics" and "interval" not in endpoint
    assert endpoint["relabelings"][-1] == {"action": "replace", "targetLabel": "job", "replacement": "agentgateway"}
    assert {"action": "labelmap", "regex": "__meta_kubernetes_pod_label_(.+)"} in endpoint["relabelings"]


def test_pod_monitor_turns_alternatives_into_a_set_selector():
    monitor = pc.gateway_pod_monitor("gw", "m", {}, "agentgateway", ["a"], {"gateway.networking.k8s.io/gateway-name": "a|b\\.c"},
                                     15020, scrape_interval="30s")
    assert monitor["spec"]["selector"] == {"matchExpressions": [
        {"key": "gateway.networking.k8s.io/gateway-name", "operator": "In", "values": ["a", "b.c"]}]}
    assert monitor["spec"]["podMetricsEndpoints"][0]["interval"] == "30s"


@pytest.mark.parametrize("pod_labels, namespaces, message", [
    ({"gateway.networking.k8s.io/gateway-name": "agentgateway-.*"}, ["a"], "agw_obs_stack_mode=install"),
    ({}, ["a"], "prometheus_gateway_pod_labels"),
    (POD_LABELS, [], "prometheus_gateway_namespaces"),
])
def test_pod_monitor_refuses_what_a_label_selector_cannot_say(pod_labels, namespaces, message):
    with pytest.raises(pc.PrometheusConfigError, match=message):
        pc.gateway_pod_monitor("gw", "m", {}, "agentgateway", namespaces, pod_labels, 15020)


def test_prometheus_rule_holds_the_groups_unchanged():
    groups = pc.alerting_rules("agentgateway", DEFAULTS)["groups"] + pc.recording_rules("agentgateway")["groups"]
    rule = pc.prometheus_rule("r", "monitoring", {"release": "kps"}, groups)
    assert rule["spec"]["groups"] == groups
    assert rule["metadata"]["labels"]["release"] == "kps"
    with pytest.raises(pc.PrometheusConfigError, match="no rule group"):
        pc.prometheus_rule("r", "monitoring", {}, [])


def test_the_new_filters_wrap_errors_for_ansible():
    from ansible.errors import AnsibleFilterError  # pylint: disable=import-outside-toplevel

    with pytest.raises(AnsibleFilterError, match="prometheus_gateway_pod_monitor"):
        prometheus_filters.prometheus_gateway_pod_monitor("agentgateway", "gw", "m", {}, ["a"], {}, 15020)
    with pytest.raises(AnsibleFilterError, match="prometheus_rule_object"):
        prometheus_filters.prometheus_rule_object([], "r", "m")
