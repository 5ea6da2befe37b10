"""Bad input for site.yml: one case per check the deploy path makes, each set from a role variable.

The checks are those of plugins/plugin_utils/desired_state.py (pinned chart versions, chart repo
xor oci, DNS names of releases, namespaces and objects, values mappings, two entries on one path)
and, across roles, two roles claiming one release or object. Each case: (extra vars, strings the
failure must print, starting with the variable's name). Used in render mode
(test_bad_input_render.py) and in apply mode against the real control plane
(test_bad_input_apply_mode.py).
"""

from __future__ import annotations

import pytest

from support.fixtures import REPO

BUNDLED_DASHBOARD = str(REPO / "roles" / "grafana" / "files" / "dashboards" / "agentgateway-cost.json")

CASES = [
    # chart.version must be pinned
    pytest.param({"grafana_chart_version": "latest"}, ["grafana_chart_version=latest", "pinned"], id="version-latest"),
    pytest.param({"prometheus_chart_version": "~29.27"}, ["prometheus_chart_version=~29.27"], id="version-range"),
    pytest.param({"agentgateway_chart_version": "latest"}, ["agentgateway_chart_version=latest"], id="version-oci-chart"),
    # exactly one of chart.repo (http/https) or chart.oci (oci://), and a chart name
    pytest.param({"tempo_chart_repo": ""}, ["tempo_chart_repo=", "http(s) URL"], id="no-repo"),
    pytest.param({"agw_obs_loki_enabled": True, "loki_chart_repo": "oci://ghcr.io/grafana-community/helm-charts"},
                 ["loki_chart_repo=oci://"], id="repo-not-http"),
    pytest.param({"agentgateway_chart_oci": "https://cr.agentgateway.dev/charts"}, ["agentgateway_chart_oci"],
                 id="oci-not-oci"),
    pytest.param({"prometheus_chart_name": ""}, ["prometheus_chart_name="], id="no-chart-name"),
    # release names: DNS-1123 labels of at most 53 characters
    pytest.param({"grafana_release_name": "Grafana"}, ["grafana_release_name=Grafana"], id="release-name"),
    pytest.param({"tempo_release_name": "t" * 54}, ["tempo_release_name=" + "t" * 54, "at most 53"],
                 id="release-name-length"),
    # namespaces: DNS-1123 labels
    pytest.param({"tempo_namespace": "Monitoring"}, ["tempo_namespace=Monitoring"], id="release-namespace"),
    pytest.param({"mock_backend_namespace": "Mock_NS"}, ["mock_backend_namespace=Mock_NS"], id="object-namespace"),
    # object names: DNS-1123 subdomains (Services: DNS-1035 labels)
    pytest.param({"grafana_admin_secret_name": "Grafana_Admin"}, ["grafana_admin_secret_name"], id="object-name"),
    pytest.param({"tempo_query_node_port_service_name": "tempo.query"}, ["tempo_query_node_port_service_name"],
                 id="service-name"),
    pytest.param({"gateway_observability_policy_name": "Policy"}, ["gateway_observability_policy_name"],
                 id="custom-resource-name"),
    # remote manifests: https://, an http:// mirror or a file:/// copy
    pytest.param({"agentgateway_gateway_api_url": "ftp://mirror.example.internal/standard-install.yaml"},
                 ["agentgateway_gateway_api_url must be", "file:///"], id="remote-manifest-url"),
    # values: a mapping (the roles' argument specs refuse anything else, naming the variable)
    pytest.param({"prometheus_extra_values": "server: {retention: 1d}"},
                 ["'prometheus_extra_values' is of type str", "dict"], id="values-string"),
    pytest.param({"grafana_extra_values": ["adminPassword"]}, ["'grafana_extra_values' is of type list"],
                 id="values-list"),
    # two entries of one role on one path
    pytest.param({"grafana_extra_dashboard_files": [BUNDLED_DASHBOARD]},
                 ["grafana_extra_dashboard_files", "same ConfigMap"], id="same-path-in-a-role"),
    # two roles on one release or object (deploy would overwrite the first with the second)
    pytest.param({"agw_obs_loki_enabled": True, "loki_release_name": "tempo"},
                 ["role loki", "role tempo", "loki_release_name", "tempo_release_name"], id="two-roles-one-release"),
    pytest.param({"gateway_observability_metrics_service_name": "mock-openai"},
                 ["role mock_backend", "role gateway_observability", "mock_backend_name",
                  "gateway_observability_metrics_service_name"], id="two-roles-one-object"),
]
