"""Bad input stops site.yml before anything is written or applied: the wiring, end to end.

Every rule and its message is unit-tested where it lives (tests/unit/plugins/plugin_utils/
test_settings.py and test_plan_checks.py). Here a few cases of each kind of check run through
site.yml, to prove that each kind stops the run before the deploy step: a role's settings check,
its argument spec, a builder's own check while the role plans, and the site's check across the
roles inside the deploy action. Render mode: nothing is written, and an earlier render stays as it
was. Apply mode, against the session's real control plane: nothing appears on the API server.
"""

from __future__ import annotations

import pytest

from support.fixtures import REPO, assert_rejected_before_writing, render_playbook, render_site, snapshot
from support.kube import apply_site

DASHBOARD = str(REPO / "roles" / "grafana" / "files" / "dashboards" / "agentgateway-cost.json")

# (extra vars, strings the output must hold: the variable first)
RENDER_CASES = [
    pytest.param({"prometheus_node_port": 80}, ["prometheus_node_port=80", "30000-32767"], id="settings-check"),
    pytest.param({"tempo_retention": "7d"}, ["tempo_retention=7d", "168h"], id="settings-check-later-role"),
    pytest.param({"agw_obs_monitoring_namespace": "Monitoring"}, ["Shared settings", "agw_obs_monitoring_namespace"],
                 id="shared-settings"),
    pytest.param({"prometheus_extra_values": "server: {retention: 1d}"},
                 ["'prometheus_extra_values' is of type str"], id="argument-spec"),
    pytest.param({"grafana_extra_dashboard_files": [DASHBOARD]}, ["grafana_extra_dashboard_files", "same ConfigMap"],
                 id="builder-check"),
    pytest.param({"agw_obs_loki_enabled": True, "loki_release_name": "tempo"},
                 ["role loki", "role tempo", "loki_release_name", "tempo_release_name"], id="two-roles-one-release"),
    pytest.param({"gateway_observability_listener_node_port": 30080},
                 ["NodePort 30080", "grafana_node_port=30080", "gateway_observability_listener_node_port=30080"],
                 id="one-node-port-two-settings"),
]


@pytest.mark.parametrize("extra_vars, names", RENDER_CASES)
def test_render_mode_writes_nothing(tmp_path, extra_vars, names):
    out = tmp_path / "render"
    proc = render_site(out, extra_vars, check=False)
    assert_rejected_before_writing(proc, out, *names)


def test_an_earlier_render_is_checked_and_left_as_it_was(tmp_path):
    """A role deployed on its own must not take a file another role rendered: the gateway's telemetry
    alone (playbooks/gateway.yml without the install), its metrics Service named like the mock
    backend's Service of the earlier site render. The deploy step refuses before any write."""
    render_site(tmp_path)
    before = snapshot(tmp_path)
    proc = render_playbook(REPO / "playbooks" / "gateway.yml", tmp_path,
                           {"agw_obs_install_gateway": False, "gateway_observability_metrics_service_name": "mock-openai"},
                           check=False)
    assert proc.returncode != 0
    assert "manifests/agentgateway-system/Service-mock-openai.yaml is already rendered by role mock_backend" in proc.stdout
    assert "named by agw_obs_gateway_namespace, gateway_observability_metrics_service_name" in proc.stdout
    assert snapshot(tmp_path) == before


def test_the_whole_site_may_move_a_name_from_one_role_to_another(tmp_path):
    """In one site render every role's part is replaced together: the mock backend renamed frees its
    Service name for the gateway's metrics Service, and the old files go."""
    render_site(tmp_path)
    render_site(tmp_path, {"mock_backend_name": "mock-two", "gateway_observability_metrics_service_name": "mock-openai"})
    service = (tmp_path / "manifests/agentgateway-system/Service-mock-openai.yaml").read_text()
    assert "role gateway_observability" in service
    assert (tmp_path / "manifests/agentgateway-system/Service-mock-two.yaml").is_file()


APPLY_CASES = [
    pytest.param({"gateway_observability_policy_name": "Policy"}, ["gateway_observability_policy_name=Policy"],
                 id="settings-check-late-role"),
    pytest.param({"agw_obs_loki_enabled": True, "loki_release_name": "tempo"},
                 ["role loki", "role tempo", "loki_release_name", "tempo_release_name"], id="two-roles-one-release"),
    pytest.param({"grafana_chart_version": "latest"}, ["grafana_chart_version=latest", "pinned"], id="chart-pin"),
]


@pytest.mark.services
@pytest.mark.parametrize("extra_vars, names", APPLY_CASES)
def test_apply_mode_changes_nothing_on_the_api_server(controlplane, cluster_snapshot, module_namespace, extra_vars,
                                                      names):
    namespaces = {module_namespace + "-mon", module_namespace + "-gw"}
    variables = dict({"agw_obs_monitoring_namespace": module_namespace + "-mon",
                      "agw_obs_gateway_namespace": module_namespace + "-gw",
                      "agentgateway_namespace": module_namespace + "-gw"}, **extra_vars)
    before = cluster_snapshot(namespaces)
    proc = apply_site(controlplane.kubeconfig_path, variables, check=False)
    assert proc.returncode != 0, proc.stdout[-3000:]
    for name in names:
        assert name in proc.stdout, (name, proc.stdout[-3000:])
    after = cluster_snapshot(namespaces)
    assert after == before == set(), "the cluster changed: %s" % sorted(after ^ before)


@pytest.mark.services
def test_the_snapshot_sees_what_the_site_would_have_created(controlplane, cluster_snapshot, module_namespace):
    """Guard for the guard: a namespace and an object created through the API show up in the comparison."""
    from support.kubeapi import Api

    api = Api(controlplane)
    name = module_namespace + "-guard"
    before = cluster_snapshot({name})
    api.request("/api/v1/namespaces", "POST", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    api.request("/api/v1/namespaces/%s/configmaps" % name, "POST",
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "guard"}})
    try:
        assert cluster_snapshot({name}) - before >= {"core/Namespace %s" % name, "core/ConfigMap %s/guard" % name}
    finally:
        api.request("/api/v1/namespaces/%s" % name, "DELETE")
