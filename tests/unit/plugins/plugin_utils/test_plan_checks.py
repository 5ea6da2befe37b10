"""The checks that need a role's part of the desired state, or every part together.

- types and choices: each role's meta/argument_specs.yml, through Ansible's own ArgumentSpecValidator
  the way the entry point's implicit validation runs it;
- the builders' own rules (dashboards, the telemetry config, the scrape job's label values, the
  WireMock models): they fail the role's plan, naming the variable, before anything is written;
- across the roles (desired_state.Site, what the deploy action checks first): two roles on one
  release or object, one NodePort used twice, a path another role rendered before; and the kind
  port plan (a host port claimed twice).

The parts are the roles' real plans for the case's settings (support.planner).
"""

from __future__ import annotations

import pytest
import yaml
from ansible.errors import AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.agentgateway.observability.plugins.plugin_utils.desired_state import (
    DesiredStateError,
    Plan,
    claims_hint,
    merge_index,
)
from ansible_collections.agentgateway.observability.plugins.plugin_utils.kind_config import port_plan

from support import planner
from support.fixtures import REPO


# ---- argument specs ----------------------------------------------------------------------------------
def spec_errors(role, settings, entry_point="plan"):
    """What the role's implicit argument validation says about ``settings`` (as validate_argument_spec does)."""
    specs = yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))
    options = specs["argument_specs"][entry_point]["options"]
    values = {name: planner.value(role, name, settings) for name in options}
    result = ArgumentSpecValidator(options).validate(values, validate_role_argument_spec=True)
    return " ".join(result.error_messages)


@pytest.mark.parametrize("role, entry_point, settings, expects", [
    pytest.param("prometheus", "plan", {"prometheus_extra_values": "server: {retention: 1d}"},
                 ["'prometheus_extra_values' is of type str", "dict"], id="values-string"),
    pytest.param("grafana", "plan", {"grafana_extra_values": ["adminPassword"]},
                 ["'grafana_extra_values' is of type list"], id="values-list"),
    pytest.param("agw_obs", "main", {"agw_obs_profile": "staging"}, ["agw_obs_profile", "kind, production"],
                 id="profile"),
    pytest.param("tempo", "plan", {"tempo_metrics_generator_processors": ["span-metric"]},
                 ["tempo_metrics_generator_processors", "span-metrics"], id="tempo-processor"),
    pytest.param("prometheus", "plan", {"prometheus_service_type": "Ingress"},
                 ["prometheus_service_type", "NodePort, ClusterIP, LoadBalancer"], id="service-type"),
    pytest.param("gateway_observability", "plan", {"gateway_observability_tracing_protocol": "udp"},
                 ["gateway_observability_tracing_protocol", "grpc, http"], id="tracing-protocol"),
    pytest.param("kind_cluster", "main", {"kind_cluster_provider": "lxc"}, ["kind_cluster_provider"],
                 id="kind-provider"),
])
def test_the_argument_spec_refuses_wrong_types_and_choices(role, entry_point, settings, expects):
    errors = spec_errors(role, settings, entry_point)
    for text in expects:
        assert text in errors, (text, errors)
    assert spec_errors(role, {}, entry_point) == ""


# ---- the builders' own rules, when the role plans -----------------------------------------------
DASHBOARD = str(REPO / "roles" / "grafana" / "files" / "dashboards" / "agentgateway-cost.json")


@pytest.mark.parametrize("role, settings, expects", [
    pytest.param("grafana", {"grafana_extra_dashboard_files": [DASHBOARD]},
                 ["grafana_extra_dashboard_files", "same ConfigMap"], id="same-path-in-a-role"),
    pytest.param("grafana", {"grafana_gnet_dashboards": [{"name": "Node Exporter", "gnet_id": 1860}]},
                 ["grafana_gnet_dashboards", "lower-case"], id="gnet-name"),
    pytest.param("gateway_observability", {"gateway_observability_tracing_random_sampling": 1.5},
                 ["gateway_observability_tracing_random_sampling", "outside [0, 1]"], id="gateway-sampling"),
    pytest.param("prometheus", {"prometheus_gateway_pod_labels": {"gateway.networking.k8s.io/gateway-name": "agentgateway-.*"}},
                 ["prometheus_gateway_pod_labels[gateway.networking.k8s.io/gateway-name]",
                  "prometheus_kubernetes_pods_exclude_gateway"], id="pod-label-pattern"),
])
def test_a_builder_refuses_what_it_cannot_build_when_the_role_plans(role, settings, expects):
    with pytest.raises(AnsibleError) as failure:
        planner.plan(role, settings)
    for text in expects:
        assert text in str(failure.value), (text, str(failure.value)[-1500:])
    planner.plan(role)


def test_the_existing_stack_pod_monitor_refuses_a_pod_label_pattern_it_cannot_select():
    existing = {"agw_obs_stack_mode": "existing",
                "agw_obs_traces_url": "http://otel-collector.observability.svc.cluster.local:4317",
                "prometheus_gateway_pod_labels": {"gateway.networking.k8s.io/gateway-name": "agentgateway-.*"}}
    with pytest.raises(AnsibleError) as failure:
        planner.plan("existing_stack", existing)
    assert "prometheus_gateway_pod_labels" in str(failure.value) and "PodMonitor" in str(failure.value)


def test_the_seed_tutorials_raw_config_is_refused_naming_every_invented_key(seed_tutorial):
    from support.gateway import seed_raw_configs

    main, second = seed_raw_configs(seed_tutorial)[:2]
    raw = dict(main)
    raw["config"] = dict(main["config"])
    raw["config"]["metrics"] = dict(main["config"].get("metrics") or {},
                                    customMetrics=(second.get("config") or {}).get("metrics", {}).get("customMetrics"))
    with pytest.raises(AnsibleError) as failure:
        planner.plan("gateway_observability", {"gateway_observability_extra_raw_config": raw})
    message = str(failure.value)
    for key in ("metrics.enabled", "metrics.prefix", "metrics.tags", "metrics.customMetrics", "tracing.collector"):
        assert "gateway_observability_extra_raw_config.config.%s:" % key in message, (key, message[-2000:])
    for cel in ("llm.totalCost", "llm.inputCost", "llm.outputCost"):
        assert cel in message, cel
    # the tutorial's '//' starts a comment in CEL; the fix names the expression to write instead
    assert "uses '//' as a default operator, but '//' starts a comment in CEL" in message
    assert 'write default(jwt.sub, "anonymous")' in message


# ---- across the roles -----------------------------------------------------------------------------
def site_failure(settings, roles=None):
    parts = planner.plan_site(settings, roles)
    with pytest.raises(DesiredStateError) as failure:
        planner.site(parts)
    return str(failure.value)


@pytest.mark.parametrize("settings, expects", [
    pytest.param({"agw_obs_loki_enabled": True, "loki_release_name": "tempo"},
                 ["role loki", "role tempo", "loki_release_name", "tempo_release_name"], id="two-roles-one-release"),
    pytest.param({"gateway_observability_metrics_service_name": "mock-openai"},
                 ["role mock_backend", "role gateway_observability", "mock_backend_name",
                  "gateway_observability_metrics_service_name"], id="two-roles-one-object"),
    pytest.param({"gateway_observability_listener_node_port": 30080},
                 ["NodePort 30080", "grafana_node_port=30080 (Grafana)",
                  "gateway_observability_listener_node_port=30080 (gateway listener)"], id="node-port-grafana-gateway"),
    pytest.param({"prometheus_node_port": 30200},
                 ["NodePort 30200", "prometheus_node_port=30200 (Prometheus)",
                  "tempo_query_node_port=30200 (Tempo query API)"], id="node-port-prometheus-tempo"),
    pytest.param({"grafana_node_port": 30091},
                 ["NodePort 30091", "grafana_node_port=30091", "gateway_observability_metrics_node_port=30091 (gateway metrics)"],
                 id="node-port-grafana-gateway-metrics"),
])
def test_the_site_check_refuses_what_two_roles_would_both_do(settings, expects):
    message = site_failure(settings)
    for text in expects:
        assert text in message, (text, message)
    planner.site(planner.plan_site())


def test_a_role_planned_alone_is_checked_against_the_others_planned_in_the_run():
    """The ops play plans mock_backend, then gateway_observability on its own: the object both want is found."""
    parts = {"mock_backend": planner.plan("mock_backend"),
             "gateway_observability": planner.plan("gateway_observability",
                                                   {"gateway_observability_metrics_service_name": "mock-openai"})}
    with pytest.raises(DesiredStateError) as failure:
        planner.site(parts)
    assert "role gateway_observability would also render or apply Service mock-openai" in str(failure.value)


def test_a_path_another_role_rendered_before_is_refused_naming_the_settings():
    """Renamed mock backend, its old Service name given to the gateway metrics Service (an earlier render)."""
    earlier = planner.plan_site()
    index, _stale = merge_index(None, [Plan.from_part(planner.deployed(p)) for p in earlier.values()])
    now = planner.plan_site({"mock_backend_name": "mock-two", "gateway_observability_metrics_service_name": "mock-openai"})
    site = planner.site({"gateway_observability": now["gateway_observability"]})
    with pytest.raises(DesiredStateError) as failure:
        merge_index(index, site.plans)
    message = str(failure.value) + claims_hint(site.claims, str(failure.value))
    assert "manifests/agentgateway-system/Service-mock-openai.yaml is already rendered by role mock_backend" in message
    assert "named by agw_obs_gateway_namespace, gateway_observability_metrics_service_name" in message


@pytest.mark.parametrize("settings, expects", [
    pytest.param({"traffic_base_url": "http://localhost:30090"},
                 ["host port 30090", "prometheus_node_port=30090 (Prometheus)", "traffic_base_url"],
                 id="host-port-collision"),
])
def test_the_kind_port_plan_refuses_a_host_port_claimed_twice(settings, expects):
    def problems(site):
        return " ".join(port_plan(site.node_ports(), site.host_ports())["problems"])

    found = problems(planner.site(planner.plan_site(settings)))
    for text in expects:
        assert text in found, (text, found)
    assert problems(planner.site(planner.plan_site())) == ""
