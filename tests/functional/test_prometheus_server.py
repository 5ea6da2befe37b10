"""A real Prometheus runs the rendered rules and the rendered gateway scrape job.

Only service discovery is swapped: the job's kubernetes_sd_configs becomes a static_configs
entry whose targets carry the __meta_kubernetes_* labels the pod discovery would give a gateway
pod, so the rendered relabel_configs (keep by Gateway label and port 15020, labelmap, namespace,
pod) run for real against a local target that serves the gateway's metric names.
"""

from __future__ import annotations

import pytest
import yaml

pytestmark = pytest.mark.services

GATEWAY_POD = {
    "__meta_kubernetes_namespace": "agentgateway-system",
    "__meta_kubernetes_pod_name": "agentgateway-6f7d9c-x2x7q",
    "__meta_kubernetes_pod_phase": "Running",
    "__meta_kubernetes_pod_container_port_number": "15020",
    "__meta_kubernetes_pod_label_gateway_networking_k8s_io_gateway_name": "agentgateway-proxy",
    "__meta_kubernetes_pod_label_app_kubernetes_io_name": "agentgateway",
}


def gateway_metrics(scrape):
    """What a gateway pod's :15020/metrics shows after ``scrape`` scrapes: 10 % of chat answers are 5xx."""
    ok, failed, tokens = 9 * scrape, scrape, 120 * scrape
    labels = 'gateway="agentgateway-system/agentgateway-proxy",route="agentgateway-system/openai",' \
             'backend="agentgateway-system/mock-openai",method="POST",protocol="http",listener="http"'
    genai = 'gen_ai_operation_name="chat",gen_ai_system="openai",gen_ai_request_model="gpt-4o-mini",' \
            'gen_ai_response_model="gpt-4o-mini",route="agentgateway-system/openai",user="alice"'
    return "\n".join(
        [
            "# TYPE agentgateway_requests_total counter",
            'agentgateway_requests_total{%s,status="200"} %d' % (labels, ok),
            'agentgateway_requests_total{%s,status="500"} %d' % (labels, failed),
            "# TYPE agentgateway_gen_ai_client_token_usage histogram",
            'agentgateway_gen_ai_client_token_usage_bucket{%s,gen_ai_token_type="input",le="+Inf"} %d' % (genai, scrape),
            'agentgateway_gen_ai_client_token_usage_sum{%s,gen_ai_token_type="input"} %d' % (genai, tokens),
            'agentgateway_gen_ai_client_token_usage_count{%s,gen_ai_token_type="input"} %d' % (genai, scrape),
            "# TYPE agentgateway_gen_ai_client_cost_usd_total counter",
            "agentgateway_gen_ai_client_cost_usd_total{%s} %.4f" % (genai, 0.002 * scrape),
            # GuardrailLabels carry phase and action only (telemetry/metrics.rs@v1.4.1): the Gateway
            # comes from the pod label the scrape job maps
            "# TYPE agentgateway_guardrail_checks_total counter",
            'agentgateway_guardrail_checks_total{phase="Request",action="Allow"} %d' % (4 * scrape),
            'agentgateway_guardrail_checks_total{phase="Request",action="Reject"} %d' % scrape,
            "",
        ]
    )


def adapted_scrape_job(prometheus_values, address, other_address):
    jobs = yaml.safe_load(prometheus_values["extraScrapeConfigs"])
    assert [job["job_name"] for job in jobs] == ["agentgateway"]
    job = jobs[0]
    assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": ["agentgateway-system"]}}]
    del job["kubernetes_sd_configs"]
    readiness_port = dict(GATEWAY_POD, __meta_kubernetes_pod_container_port_number="15021")
    other_gateway = dict(GATEWAY_POD, __meta_kubernetes_pod_label_gateway_networking_k8s_io_gateway_name="other")
    job["static_configs"] = [
        {"targets": [address], "labels": GATEWAY_POD},
        {"targets": [other_address], "labels": readiness_port},
        {"targets": [other_address], "labels": other_gateway},
    ]
    job["scrape_interval"] = "1s"
    return job


def test_rendered_rules_and_scrape_job_on_a_real_prometheus(prometheus_values, prometheus_factory,
                                                            metrics_target_factory):
    target = metrics_target_factory(gateway_metrics)
    decoy = metrics_target_factory(lambda _n: "decoy_metric 1\n")
    server = prometheus_factory(
        {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [adapted_scrape_job(prometheus_values, target.address, decoy.address)],
        },
        rule_files={
            "alerting_rules.yml": prometheus_values["serverFiles"]["alerting_rules.yml"],
            "recording_rules.yml": prometheus_values["serverFiles"]["recording_rules.yml"],
        },
        # the role turns the remote-write receiver on for Tempo's metrics generator
        extra_flags=["--web.enable-remote-write-receiver"],
    )

    def gateway_target_up():
        targets = server.api("/api/v1/targets")
        active = [t for t in targets["activeTargets"] if t["scrapePool"] == "agentgateway"]
        return active if active and all(t["health"] == "up" for t in active) else None

    active = server.wait_for(gateway_target_up, what="gateway target up")
    assert len(active) == 1, "exactly the gateway pod on port 15020 is kept"
    labels = active[0]["labels"]
    assert labels["gateway_networking_k8s_io_gateway_name"] == "agentgateway-proxy"
    assert labels["namespace"] == "agentgateway-system"
    assert labels["pod"] == "agentgateway-6f7d9c-x2x7q"
    assert labels["job"] == "agentgateway"
    dropped = server.api("/api/v1/targets")["droppedTargets"]
    assert len([t for t in dropped if t["discoveredLabels"].get("job") == "agentgateway"]) == 2

    expected = sum(len(g["rules"]) for name in ("alerting_rules.yml", "recording_rules.yml")
                   for g in prometheus_values["serverFiles"][name]["groups"])
    assert expected == 22

    def all_rules_evaluated_ok():
        groups = server.api("/api/v1/rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        # before its first evaluation a rule reports health "unknown"
        return groups if len(rules) == expected and all(r["health"] == "ok" for r in rules) else None

    groups = server.wait_for(all_rules_evaluated_ok, what="every rule evaluated with health ok")
    assert {g["name"] for g in groups} == {"agentgateway.alerts", "agentgateway.recording"}
    for group in groups:
        for rule in group["rules"]:
            assert rule["health"] == "ok", (rule["name"], rule.get("lastError"))

    # Recording rules produce data from the scraped series, with the pod's namespace label.
    rate = server.wait_for(lambda: server.query("agentgateway:requests:rate5m"), what="recorded request rate")
    assert {s["metric"]["status"] for s in rate} == {"200", "500"}
    assert all(s["metric"]["namespace"] == "agentgateway-system" for s in rate)
    ratio = server.wait_for(lambda: server.query("agentgateway:request_errors:ratio_rate5m"), what="error ratio")
    assert abs(float(ratio[0]["value"][1]) - 0.1) < 0.01
    tokens = server.wait_for(lambda: server.query("agentgateway:gen_ai_tokens:rate5m"), what="token rate")
    assert tokens[0]["metric"]["user"] == "alice"
    assert server.wait_for(lambda: server.query("agentgateway:gen_ai_cost_usd:per_hour"), what="cost per hour")
    # Series without a gateway label get it from the relabelled pod label, in the proxy's own format.
    pod = server.wait_for(lambda: server.query("agentgateway:pod_gateway:info"), what="pod to Gateway mapping")
    assert [(s["metric"]["pod"], s["metric"]["gateway"]) for s in pod] == [
        ("agentgateway-6f7d9c-x2x7q", "agentgateway-system/agentgateway-proxy")]
    checks = server.wait_for(lambda: server.query("agentgateway:guardrail_checks:rate5m"), what="guardrail checks")
    assert {(s["metric"]["gateway"], s["metric"]["action"]) for s in checks} == {
        ("agentgateway-system/agentgateway-proxy", "Allow"), ("agentgateway-system/agentgateway-proxy", "Reject")}

    # 10 % 5xx is over the 5 % threshold: the alert is pending (it fires after `for: 5m`).
    def error_alert():
        alerts = server.api("/api/v1/alerts")["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == "AgentgatewayHighErrorRatio"]

    alert = server.wait_for(error_alert, what="AgentgatewayHighErrorRatio pending")
    assert alert[0]["state"] == "pending"
    assert alert[0]["labels"]["route"] == "agentgateway-system/openai"


def test_the_tests_run_the_charts_prometheus_version(prometheus_factory, promtool):
    """Every Prometheus-backed test runs 3.14.0, the prometheus chart's appVersion (not a distro build)."""
    import subprocess  # pylint: disable=import-outside-toplevel

    server = prometheus_factory({"global": {"scrape_interval": "15s"}})
    assert server.version == "3.14.0"
    assert server.api("/api/v1/status/buildinfo")["version"] == "3.14.0"
    out = subprocess.run([promtool, "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("promtool, version 3.14.0 "), out
