"""Every role's settings rules, one case each, with the message users see (plugins/plugin_utils/*_settings.py).

The settings are the roles' real defaults (defaults/main.yml, vars/main.yml), templated by Ansible
the way a play templates them, with the case's values on top, read through the same lazy mapping
the check_settings action hands to the validators (support.planner). Each case asserts that the
check fails, that the message names the variable (and the fix), and that the same settings without
the mistake pass: a case that would fail anyway proves nothing.

This is the acceptance list of the bad input the collection refuses before anything is written or
applied; the end-to-end runs (tests/functional/test_site_bad_input.py) prove the wiring for a few.
"""

from __future__ import annotations

import pytest

from support import planner
from support.fixtures import REPO

EXISTING = {
    "agw_obs_stack_mode": "existing",
    "agw_obs_traces_url": "http://otel-collector.observability.svc.cluster.local:4317",
    "agw_obs_loki_enabled": True,
    "agw_obs_logs_url": "http://loki-gateway.logging.svc:80/otlp/v1/logs",
}


def case(role, settings, *expects, entry_point="plan", base=None, id=None):  # pylint: disable=redefined-builtin
    return pytest.param(role, entry_point, dict(base or {}), settings, expects, id=id)


CASES = [
    # ---- shared settings (agw_obs_*), checked first by every role's check ----------------------------
    case("prometheus", {"agw_obs_monitoring_namespace": "Monitoring"}, "Shared settings",
         "agw_obs_monitoring_namespace=Monitoring", "Kubernetes name", id="shared-namespace"),
    case("tempo", {"agw_obs_wait_timeout": "ten minutes"}, "agw_obs_wait_timeout=ten minutes", "duration",
         id="shared-wait-timeout"),
    case("grafana", {"agw_obs_image_registry": "https://registry.example.internal/"}, "agw_obs_image_registry",
         "no scheme", id="shared-image-registry"),
    case("verification", {"agw_obs_access": "url", "agw_obs_service_urls": {"prometheus": "localhost:9090"}},
         "agw_obs_service_urls.prometheus=localhost:9090 is not a URL", id="shared-service-url"),
    case("gateway_observability", dict(EXISTING, agw_obs_traces_url="http://tempo.example.com:4317"),
         "agw_obs_traces_url", "in-cluster Service", id="shared-traces-url-outside"),
    case("gateway_observability", dict(EXISTING, agw_obs_logs_url=""), "agw_obs_logs_url", "agw_obs_loki_enabled",
         id="shared-existing-without-logs-url"),
    case("prometheus", {"agw_obs_chart_repository_mirror": "charts.example.internal"},
         "agw_obs_chart_repository_mirror", "oci://", id="shared-chart-mirror"),
    case("tempo", {"agw_obs_network_policy_allowed_namespaces": ["Ingress_NGINX"]},
         "agw_obs_network_policy_allowed_namespaces holds 'Ingress_NGINX'", "DNS-1123 label", id="shared-fence-namespace"),
    case("grafana", {"agw_obs_network_policy_allowed_cidrs": ["10.0.0.1/8"]},
         "agw_obs_network_policy_allowed_cidrs holds '10.0.0.1/8'", "no host bits set", id="shared-fence-cidr"),
    # ---- charts: pinned, from a repository, named as Helm and Kubernetes allow --------------------
    case("grafana", {"grafana_chart_version": "latest"}, "grafana_chart_version=latest", "pinned", id="version-latest"),
    case("grafana", {"grafana_gateway_job_name": "gw pods"}, "grafana_gateway_job_name=gw pods", "valid job name",
         id="grafana-job-name"),
    case("prometheus", {"prometheus_chart_version": "~29.27"}, "prometheus_chart_version=~29.27", "pinned",
         id="version-range"),
    case("agentgateway", {"agentgateway_chart_version": "latest"}, "agentgateway_chart_version=latest", "pinned",
         id="version-oci-chart"),
    case("tempo", {"tempo_chart_repo": ""}, "tempo_chart_repo=", "http(s) URL", id="no-repo"),
    case("loki", {"agw_obs_loki_enabled": True, "loki_chart_repo": "oci://ghcr.io/grafana-community/helm-charts"},
         "loki_chart_repo=oci://", "http(s) URL", id="repo-not-http"),
    case("agentgateway", {"agentgateway_chart_oci": "https://cr.agentgateway.dev/charts"},
         "agentgateway_chart_oci=https://cr.agentgateway.dev/charts", "oci://", id="oci-not-oci"),
    case("prometheus", {"prometheus_chart_name": ""}, "prometheus_chart_name=", "chart's name", id="no-chart-name"),
    case("grafana", {"grafana_release_name": "Grafana"}, "grafana_release_name=Grafana", "Helm release name",
         id="release-name"),
    case("tempo", {"tempo_release_name": "t" * 54}, "tempo_release_name=" + "t" * 54, "at most 53",
         id="release-name-length"),
    case("tempo", {"tempo_namespace": "Monitoring"}, "tempo_namespace=Monitoring", "Kubernetes namespace",
         id="release-namespace"),
    case("agentgateway", {"agentgateway_gateway_api_url": "ftp://mirror.example.internal/standard-install.yaml"},
         "agentgateway_gateway_api_url must be", "file:///", id="remote-manifest-url"),
    case("agentgateway", {"agentgateway_gateway_api_version": "latest"}, "agentgateway_gateway_api_version=latest",
         "v1.6.1", id="gateway-api-version"),
    # ---- names of objects ------------------------------------------------------------------------
    case("mock_backend", {"mock_backend_namespace": "Mock_NS"}, "mock_backend_namespace=Mock_NS", id="object-namespace"),
    case("mock_backend", {"mock_backend_name": "Mock"}, "mock_backend_name=Mock", "42 characters", id="mock-name"),
    case("grafana", {"grafana_admin_secret_name": "Grafana_Admin"}, "grafana_admin_secret_name=Grafana_Admin",
         "Secret name", id="object-name"),
    case("tempo", {"tempo_query_node_port_service_name": "tempo.query"}, "tempo_query_node_port_service_name=tempo.query",
         "Service name", id="service-name"),
    case("gateway_observability", {"gateway_observability_policy_name": "Policy"},
         "gateway_observability_policy_name=Policy", "Kubernetes name", id="custom-resource-name"),
    case("agentgateway", {"agentgateway_namespace": "Agentgateway"}, "agentgateway_namespace=Agentgateway",
         id="controller-namespace"),
    case("existing_stack", {"existing_stack_rule_name": "Rules"}, "existing_stack_rule_name=Rules", base=EXISTING,
         id="existing-rule-name"),
    # ---- NodePorts, ports --------------------------------------------------------------------------
    case("prometheus", {"prometheus_node_port": 80}, "prometheus_node_port=80", "30000-32767", id="node-port"),
    case("grafana", {"grafana_node_port": 3000}, "grafana_node_port=3000", "30000-32767", id="grafana-node-port"),
    case("tempo", {"tempo_query_node_port": 3200}, "tempo_query_node_port=3200", "30000-32767",
         "tempo_query_node_port_enabled=false", id="tempo-node-port"),
    case("gateway_observability", {"gateway_observability_metrics_node_port": 15020},
         "gateway_observability_metrics_node_port=15020", "30000-32767", id="gateway-metrics-node-port"),
    case("gateway_observability", {"gateway_observability_listener_port": 15020},
         "gateway_observability_listener_port=15020", "15000, 15020 and 15021", id="gateway-listener-port"),
    case("gateway_observability", {"gateway_observability_tracing_port": 70000},
         "gateway_observability_tracing_port=70000", "1-65535", id="tracing-port"),
    case("agentgateway", {"agentgateway_listener_port": 15021}, "agentgateway_listener_port=15021", "readiness",
         id="agentgateway-listener-port"),
    case("mock_backend", {"mock_backend_service_port": 0}, "mock_backend_service_port=0", "1-65535", id="mock-port"),
    # ---- durations, sizes ------------------------------------------------------------------------
    case("prometheus", {"prometheus_retention": "15 days"}, "prometheus_retention=15 days", "Prometheus duration",
         id="retention"),
    case("prometheus", {"prometheus_scrape_interval": "15"}, "prometheus_scrape_interval=15", "Prometheus duration",
         id="scrape-interval"),
    case("tempo", {"tempo_retention": "7d"}, "tempo_retention=7d", "168h", id="tempo-retention-days"),
    case("loki", {"agw_obs_loki_enabled": True, "loki_retention_period": "a month"}, "loki_retention_period=a month",
         id="loki-retention"),
    case("loki", {"agw_obs_loki_enabled": True, "loki_schema_from": "2025"}, "loki_schema_from=2025", "YYYY-MM-DD",
         id="loki-schema-from"),
    case("loki", {"agw_obs_loki_enabled": True, "agw_obs_profile": "production", "loki_chunks_cache_memory_mb": 32},
         "loki_chunks_cache_memory_mb=32", "64 MB", id="loki-cache"),
    case("prometheus", {"agw_obs_profile": "production", "prometheus_persistence_size": "50 gigabytes"},
         "prometheus_persistence_size=50 gigabytes", "quantity", id="persistence-size"),
    case("grafana", {"grafana_persistence_enabled": True, "grafana_persistence_size": "big"},
         "grafana_persistence_size=big", "10Gi", id="grafana-persistence-size"),
    # ---- images, resources -------------------------------------------------------------------------
    case("prometheus", {"prometheus_server_image_repository": "quay.io/prometheus/prometheus:v3"},
         "prometheus_server_image_repository=quay.io/prometheus/prometheus:v3", "without scheme or tag",
         id="image-tag"),
    case("tempo", {"tempo_image_repository": "docker.io/grafana/tempo:2.10"}, "tempo_image_repository",
         "without registry, scheme or tag", id="tempo-image"),
    case("loki", {"agw_obs_loki_enabled": True, "loki_image_repository": "grafana/loki:3"}, "loki_image_repository",
         id="loki-image"),
    case("grafana", {"grafana_sidecar_image_repository": "https://kiwigrid/k8s-sidecar"},
         "grafana_sidecar_image_repository", id="grafana-image"),
    case("mock_backend", {"mock_backend_image": {"registry": "docker.io", "repository": "wiremock/wiremock",
                                                 "tag": "latest"}},
         "mock_backend_image", "pinned WireMock 3.x tag", id="mock-image-latest"),
    case("prometheus", {"prometheus_resources": {"request": {"cpu": "1"}}}, "prometheus_resources",
         "requests, limits and claims", id="resources-key"),
    case("gateway_observability", {"gateway_observability_resources": {"cpu": "1"}},
         "gateway_observability_resources", id="gateway-resources"),
    case("agentgateway", {"agentgateway_controller_resources": {"limit": {}}}, "agentgateway_controller_resources",
         id="controller-resources"),
    # ---- alert thresholds and the gateway scrape job (also what existing_stack takes) ---------------
    case("prometheus", {"prometheus_alert_error_ratio": 5}, "prometheus_alert_error_ratio=5", "(0, 1]",
         id="error-ratio"),
    case("prometheus", {"prometheus_alert_memory_limit_ratio": 90}, "prometheus_alert_memory_limit_ratio=90", "(0, 1]",
         id="memory-ratio"),
    case("prometheus", {"prometheus_alert_guardrail_block_spike_factor": 0.5},
         "prometheus_alert_guardrail_block_spike_factor=0.5", "at least 1", id="spike-factor"),
    case("prometheus", {"prometheus_alert_xds_silence": "15 minutes"}, "prometheus_alert_xds_silence=15 minutes",
         "Prometheus duration", id="xds-silence"),
    case("prometheus", {"prometheus_alert_cost_usd_per_hour": 0}, "prometheus_alert_cost_usd_per_hour=0",
         "positive", id="cost-threshold"),
    case("prometheus", {"prometheus_gateway_pod_labels": {}}, "prometheus_gateway_pod_labels", "at least one pod label",
         id="selector"),
    case("prometheus", {"prometheus_gateway_job_name": "agent gateway"}, "prometheus_gateway_job_name=agent gateway",
         id="job-name"),
    case("prometheus", {"prometheus_gateway_metrics_path": "metrics"}, "prometheus_gateway_metrics_path=metrics",
         "starting with /", id="metrics-path"),
    case("prometheus", {"prometheus_alert_error_ratio": 5}, "prometheus_alert_error_ratio=5", entry_point="export",
         base=EXISTING, id="existing-error-ratio"),
    # ---- Tempo -------------------------------------------------------------------------------------
    case("tempo", {"tempo_extra_values": {"storage": {"trace": {"backend": "local"}}}}, "tempo_extra_values",
         "ignores", id="tempo-top-level-storage"),
    case("tempo", {"tempo_extra_values": {"compactor": {"retention": "24h"}}}, "tempo_extra_values", "tempo_retention",
         id="tempo-compactor"),
    case("tempo", {"tempo_metrics_generator_remote_write_url": "prometheus:9090"},
         "tempo_metrics_generator_remote_write_url=prometheus:9090", "/api/v1/write", id="tempo-remote-write"),
    case("tempo", {"tempo_metrics_generator_processors": []}, "tempo_metrics_generator_processors",
         "at least one", id="tempo-processors-empty"),
    # ---- Grafana -----------------------------------------------------------------------------------
    case("grafana", {"grafana_tempo_url": "http://tempo.monitoring:3100"}, "grafana_tempo_url", "3200",
         id="grafana-tempo-port"),
    case("grafana", {"grafana_prometheus_url": "prometheus-server"}, "grafana_prometheus_url=prometheus-server",
         id="grafana-prometheus-url"),
    case("grafana", {"grafana_extra_values": {"adminPassword": "admin"}}, "grafana_extra_values",
         "grafana_admin_existing_secret", id="admin-password"),
    case("grafana", {"grafana_extra_values": {"env": {"GF_SECURITY_ADMIN_PASSWORD": "admin"}}}, "grafana_extra_values",
         "grafana_admin_existing_secret", id="admin-password-env"),
    case("grafana", {"grafana_extra_values": {"grafana.ini": {"security": {"admin_password": "admin"}}}},
         "grafana_extra_values", "grafana_admin_existing_secret", id="admin-password-ini"),
    case("grafana", {"grafana_admin_password_length": 8}, "grafana_admin_password_length=8", "at least 16",
         id="admin-password-length"),
    case("grafana", {"grafana_admin_user": ""}, "grafana_admin_user must not be empty", id="admin-user"),
    case("grafana", {"grafana_admin_password_key": "admin password"}, "grafana_admin_password_key=admin password",
         id="admin-password-key"),
    case("grafana", {"grafana_extra_dashboard_files": ["/nonexistent/board.json"]}, "grafana_extra_dashboard_files",
         "/nonexistent/board.json", ".json file", id="dashboard-file-missing"),
    case("grafana", {"grafana_extra_dashboard_files": ["/nonexistent/board.json"]}, "grafana_extra_dashboard_files",
         entry_point="export", base=EXISTING, id="existing-dashboard-file-missing"),
    # ---- the gateway ---------------------------------------------------------------------------------
    case("agentgateway", {"agw_obs_gateway_name": "agentgateway"}, "agw_obs_gateway_name=agentgateway",
         "agentgateway_release_name", id="gateway-name"),
    case("agentgateway", {"agw_obs_gateway_variant": "enterprise", "agentgateway_controller_enabled": True},
         "agentgateway_controller_enabled",
         "enterprise", id="controller-enterprise"),
    case("gateway_observability", dict(EXISTING, agw_obs_traces_url=""), "agw_obs_traces_url",
         "gateway_observability_tracing_enabled", id="existing-traces-to-nowhere"),
    case("gateway_observability", {"gateway_observability_metric_labels": ["model"]},
         "gateway_observability_metric_labels must be a mapping", id="metric-labels-mapping"),
    case("gateway_observability", {"gateway_observability_replicas": 0}, "gateway_observability_replicas=0",
         "at least 1", id="replicas"),
    # ---- mock backend ----------------------------------------------------------------------------
    case("mock_backend", {"mock_backend_models": []}, "mock_backend_models", "non-empty", id="mock-models-empty"),
    case("mock_backend", {"mock_backend_models": ["mock-error-429"]}, "mock_backend_models", "reserved",
         id="mock-model-reserved"),
    case("mock_backend", {"mock_backend_route_prefix": "openai"}, "mock_backend_route_prefix=openai", "/openai",
         id="mock-route-prefix"),
    case("mock_backend", {"mock_backend_route_prefix": "/v1"}, "mock_backend_route_prefix=/v1", "not /v1",
         id="mock-route-prefix-v1"),
    case("mock_backend", {"mock_backend_route_prefix": "", "mock_backend_route_v1_paths": False},
         "mock_backend_route_v1_paths", "match nothing", id="mock-route-nothing"),
    case("mock_backend", {"mock_backend_delay_ms": -1}, "mock_backend_delay_ms=-1", "at least 0", id="mock-delay"),
    case("mock_backend", {"mock_backend_api_key": "two\nlines"}, "mock_backend_api_key", "single-line",
         id="mock-api-key"),
    case("mock_backend", {"mock_backend_models": ["mock-flaky"]}, "mock_backend_models", "reserved for the retry demo",
         id="mock-model-flaky"),
    case("mock_backend", {"mock_backend_mcp_path": "/openai/mcp"}, "mock_backend_mcp_path=/openai/mcp",
         "overlaps the path /openai of mock_backend_route_prefix", id="mock-mcp-path-overlap"),
    case("mock_backend", {"mock_backend_retry_path": "/v1/flaky"}, "mock_backend_retry_path=/v1/flaky",
         "not /v1 or under it", id="mock-retry-path-v1"),
    case("mock_backend", {"mock_backend_retry_path": "/mcp"}, "mock_backend_retry_path=/mcp",
         "overlaps the path /mcp of mock_backend_mcp_path", id="mock-retry-path-mcp"),
    case("mock_backend", {"mock_backend_mcp_server": "Mock_Tools"}, "mock_backend_mcp_server=Mock_Tools",
         "lower-case DNS name", id="mock-mcp-server"),
    case("mock_backend", {"mock_backend_prompt_guard_patterns": []}, "mock_backend_prompt_guard_patterns",
         "non-empty list", id="mock-guard-empty"),
    case("mock_backend", {"mock_backend_prompt_guard_patterns": ["(?<!not )secret"]},
         "mock_backend_prompt_guard_patterns[0]=(?<!not )secret", "look-around", "Rust regex syntax",
         id="mock-guard-lookbehind"),
    case("mock_backend", {"mock_backend_prompt_guard_patterns": ["[unclosed"]}, "mock_backend_prompt_guard_patterns[0]",
         "does not compile", id="mock-guard-compile"),
    case("mock_backend", {"mock_backend_prompt_guard_message": ""}, "mock_backend_prompt_guard_message must not be empty",
         id="mock-guard-message"),
    case("mock_backend", {"mock_backend_prompt_guard_enabled": False}, "mock_backend_guard_webhook_enabled=true needs "
         "mock_backend_prompt_guard_enabled=true", "Set mock_backend_guard_webhook_enabled=false as well",
         id="mock-guard-webhook-without-guard"),
    case("mock_backend", {"mock_backend_mcp_path": "/request"}, "mock_backend_mcp_path=/request",
         "guardrail webhook", id="mock-mcp-path-webhook"),
    case("mock_backend", {"mock_backend_retry_attempts": 0}, "mock_backend_retry_attempts=0", "between 1 and 10",
         id="mock-retry-attempts"),
    case("mock_backend", {"mock_backend_retry_backoff": "0.1s"}, "mock_backend_retry_backoff=0.1s",
         "Gateway API duration", id="mock-retry-backoff"),
    # ---- traffic -----------------------------------------------------------------------------------
    case("traffic", {"traffic_base_url": "http://localhost:8080/openai"}, "traffic_base_url=http://localhost:8080/openai",
         "without a path", id="traffic-base-url"),
    case("traffic", {"traffic_path": "openai"}, "traffic_path=openai", "starting with /", id="traffic-path"),
    case("traffic", {"traffic_rounds": 0}, "traffic_rounds=0", "at least 1", id="traffic-rounds"),
    case("traffic", {"traffic_round_pause": -1}, "traffic_round_pause=-1", "at least 0", id="traffic-round-pause"),
    case("traffic", {"traffic_stream_ratio": 2}, "traffic_stream_ratio=2", "between 0 and 1", id="traffic-ratio"),
    case("traffic", {"traffic_concurrency": 0}, "traffic_concurrency=0", "at least 1", id="traffic-concurrency"),
    case("traffic", {"traffic_models": []}, "traffic_models", "non-empty", id="traffic-models"),
    case("traffic", {"traffic_mcp_path": "mcp"}, "traffic_mcp_path=mcp", "MCP route", id="traffic-mcp-path"),
    case("traffic", {"traffic_mcp_tool_calls": [{"tool": "echo"}]}, "traffic_mcp_tool_calls must be a list of {name, "
         "arguments, expect_error}", id="traffic-mcp-calls"),
    case("traffic", {"traffic_guard_prompt": " "}, "traffic_guard_prompt must not be empty", "traffic_guard_enabled=false",
         id="traffic-guard-prompt"),
    case("traffic", {"traffic_retry_requests": -1}, "traffic_retry_requests=-1", "between 0 and 100",
         id="traffic-retry-requests"),
    case("traffic", {"traffic_guard_fail_open_requests": 101}, "traffic_guard_fail_open_requests=101",
         "between 0 and 100", id="traffic-fail-open-requests"),
    # ---- verification ------------------------------------------------------------------------------
    case("verification", {"agw_obs_access": "url", "agw_obs_service_urls": {"prometheus": "http://localhost:9090"}},
         "agw_obs_access=url needs agw_obs_service_urls.gateway", id="verification-url-access"),
    case("verification", {"verification_deadline": 0}, "verification_deadline=0", "positive", id="verification-deadline"),
    case("verification", {"verification_grafana_panel": {"dashboard_uid": "x"}}, "verification_grafana_panel must be",
         id="verification-panel"),
    case("verification", {"verification_models": []}, "verification_models", "non-empty", id="verification-models"),
    case("verification", {"verification_guard_prompt": ""}, "verification_guard_prompt must not be empty",
         "verification_guard_enabled=false", id="verification-guard-prompt"),
    case("verification", {"verification_retry_requests": 0}, "verification_retry_requests=0", "between 1 and 10",
         id="verification-retry-requests"),
    case("verification", {"verification_services": {"gateway": {"name": "gw", "nodePort": 30088}}},
         "verification_services.gateway=", "namespace, name, port, scheme, host_port", id="verification-services"),
    case("verification", {"verification_services": {"jaeger": {"name": "jaeger"}}}, "verification_services.jaeger",
         "not a service the verification reaches", id="verification-services-key"),
    # in existing mode the stack is the user's: a URL of it may be missing (that hop is skipped), the gateway's may not
    case("verification", {"agw_obs_access": "url", "agw_obs_service_urls": {"prometheus": "http://localhost:9090"}},
         "agw_obs_access=url needs agw_obs_service_urls.gateway", base=EXISTING, id="verification-url-existing"),
    case("verification", {"agw_obs_render_dir": "/tmp/render"}, "playbooks/diagnose.yml reads a live cluster",
         entry_point="diagnose", id="diagnose-render-mode"),
    case("verification", {"verification_diagnose_log_lines": 0}, "verification_diagnose_log_lines=0",
         entry_point="diagnose", id="diagnose-log-lines"),
    # ---- existing stack ----------------------------------------------------------------------------
    case("existing_stack", {"existing_stack_prometheus_labels": {"release": "kube prometheus"}},
         "existing_stack_prometheus_labels", base=EXISTING, id="existing-labels"),
    case("existing_stack", {"existing_stack_tempo_datasource_url": "tempo:3200"},
         "existing_stack_tempo_datasource_url=tempo:3200", base=EXISTING, id="existing-datasource-url"),
    case("existing_stack", {"existing_stack_dashboard_label": "grafana dashboard"}, "existing_stack_dashboard_label",
         base=EXISTING, id="existing-dashboard-label"),
    case("existing_stack", {"existing_stack_prometheus_url": "http://prometheus.example.com:9090"},
         "existing_stack_prometheus_url=http://prometheus.example.com:9090", "in-cluster Service URL",
         base=EXISTING, id="existing-prometheus-url"),
    case("existing_stack", {"existing_stack_grafana_url": "grafana.monitoring.svc"},
         "existing_stack_grafana_url=grafana.monitoring.svc", "<service>.<namespace>.svc", base=EXISTING,
         id="existing-grafana-url"),
    # ---- the kind cluster --------------------------------------------------------------------------
    case("kind_cluster", {"kind_cluster_node_image": "kindest/node:v1.36.1"}, "kind_cluster_node_image",
         "pinned by digest", id="kind-image-tag"),
    case("kind_cluster", {"kind_cluster_name": "Agw_Obs"}, "kind_cluster_name=Agw_Obs", id="kind-name"),
    case("kind_cluster", {"kind_cluster_listen_address": "localhost"}, "kind_cluster_listen_address=localhost",
         "IP address", id="kind-listen-address"),
    case("kind_cluster", {"kind_cluster_wait": "five minutes"}, "kind_cluster_wait=five minutes", id="kind-wait"),
    case("kind_cluster", {"kind_cluster_kind_version": "0.32"}, "kind_cluster_kind_version=0.32", id="kind-version"),
    case("kind_cluster", {"kind_cluster_kubeconfig": str(REPO)}, "kind_cluster_kubeconfig", "not a directory",
         id="kind-kubeconfig-dir"),
]


@pytest.mark.parametrize("role, entry_point, base, settings, expects", CASES)
def test_bad_setting_is_refused_with_a_message_naming_it(role, entry_point, base, settings, expects):
    what, problems = planner.check(role, dict(base, **settings), entry_point)
    assert problems, "%s accepted %s" % (role, settings)
    message = " ".join(problems)
    for text in expects:
        assert text in "%s: %s" % (what, message), (text, what, problems)
    # the same settings without the mistake pass: the case fails because of the bad value
    assert planner.check(role, base, entry_point)[1] == []


@pytest.mark.parametrize("role, entry_point", [
    ("agw_obs", "main"), ("prometheus", "plan"), ("prometheus", "export"), ("tempo", "plan"), ("loki", "plan"),
    ("grafana", "plan"), ("grafana", "export"), ("existing_stack", "plan"), ("agentgateway", "plan"),
    ("gateway_observability", "plan"), ("mock_backend", "plan"), ("traffic", "plan"), ("verification", "plan"),
    ("verification", "diagnose"), ("kind_cluster", "plan")])
@pytest.mark.parametrize("settings", [
    {}, {"agw_obs_profile": "production", "agw_obs_loki_enabled": True},
    {"agw_obs_gateway_variant": "enterprise", "agentgateway_controller_enabled": False}, EXISTING],
    ids=["kind", "production-loki", "enterprise", "existing"])
def test_the_defaults_pass(role, entry_point, settings):
    assert planner.check(role, settings, entry_point)[1] == []


def test_every_problem_of_a_role_is_reported_at_once():
    what, problems = planner.check("prometheus", {"prometheus_node_port": 80, "prometheus_retention": "7 days",
                                                  "prometheus_alert_error_ratio": 2})
    assert what == "Role prometheus" and len(problems) == 3, problems
    from ansible_collections.agentgateway.observability.plugins.plugin_utils.rules import message

    text = message(what, problems)
    assert text.startswith("Role prometheus: 3 settings need a fix: (1) ")
    assert "(3) " in text


def test_a_bad_shared_setting_is_reported_as_itself_not_as_the_role_setting_built_from_it():
    what, problems = planner.check("prometheus", {"agw_obs_monitoring_namespace": "Monitoring"})
    assert what == "Shared settings"
    assert not any(p.startswith("prometheus_namespace") for p in problems), problems


def test_only_what_a_validator_reads_is_templated():
    """An unrelated broken variable does not matter: the lazy mapping templates what the rules read."""
    settings = planner.settings_of("tempo", {"grafana_tempo_url": "{{ undefined_variable }}"})
    from ansible_collections.agentgateway.observability.plugins.plugin_utils import tempo_settings

    assert tempo_settings.validate(settings) == []
    assert "tempo_retention" in list(settings) and "grafana_tempo_url" not in list(settings)


def test_url_access_in_existing_mode_needs_no_url_of_the_users_stack():
    """Its hops without a URL are skipped with the reason (test_site_services.py); the gateway's are needed."""
    urls = {key: "http://localhost:%d" % port for key, port in
            (("gateway", 8080), ("gateway_metrics", 15020), ("mock_backend", 8081))}
    assert planner.check("verification", dict(EXISTING, agw_obs_access="url", agw_obs_service_urls=urls))[1] == []


def test_a_demo_part_turned_off_is_not_checked():
    """The settings of a part that is off may be anything: nothing is built from them."""
    assert planner.check("mock_backend", {"mock_backend_retry_enabled": False, "mock_backend_retry_backoff": "soon",
                                          "mock_backend_mcp_enabled": False, "mock_backend_mcp_path": "x",
                                          "mock_backend_prompt_guard_enabled": False,
                                          "mock_backend_guard_webhook_enabled": False,
                                          "mock_backend_prompt_guard_patterns": []})[1] == []
    assert planner.check("mock_backend", {"mock_backend_guard_webhook_enabled": False,
                                          "mock_backend_mcp_path": "/request"})[1] == []
    assert planner.check("traffic", {"traffic_guard_enabled": False, "traffic_guard_prompt": "",
                                     "traffic_guard_fail_open_requests": -1})[1] == []
    assert planner.check("verification", {"verification_retry_enabled": False, "verification_retry_requests": 0})[1] == []
