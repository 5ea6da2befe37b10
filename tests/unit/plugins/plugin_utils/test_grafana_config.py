"""Unit tests of plugin_utils/grafana_config.py: dashboard ConfigMaps and grafana.com values."""

from __future__ import annotations

import json

import pytest

from ansible_collections.agentgateway.observability.plugins.plugin_utils.grafana_config import (
    GrafanaConfigError,
    check_dashboard,
    dashboard_configmaps,
    gnet_values,
)

BOARD = json.dumps({"uid": "abc", "title": "A", "panels": []})


def test_configmap_per_file_with_sidecar_label_and_folder():
    cms = dashboard_configmaps([{"path": "/x/My_Board.json", "content": BOARD}], "monitoring", "grafana_dashboard",
                               "1", "grafana_folder", "AgentGateway")
    assert cms == [{
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "grafana-dashboard-my-board", "namespace": "monitoring",
                     "labels": {"grafana_dashboard": "1", "app.kubernetes.io/part-of": "agentgateway-observability",
                                "app.kubernetes.io/managed-by": "agentgateway.observability"},
                     "annotations": {"grafana_folder": "AgentGateway"}},
        "data": {"My_Board.json": BOARD},
    }]


@pytest.mark.parametrize(
    "content, message",
    [("{not json", "not valid JSON"), ("[]", "JSON object"), (json.dumps({"title": "A"}), "'uid'"),
     (json.dumps({"uid": "a", "title": "A", "gnetId": 21703}), "gnetId"),
     (json.dumps({"uid": "x" * 41, "title": "A"}), "40 characters")],
    ids=["json", "object", "uid", "gnetId", "uid-length"],
)
def test_bad_dashboards_are_refused(content, message):
    with pytest.raises(GrafanaConfigError, match=message):
        check_dashboard("d.json", content)


def test_duplicate_names_and_uids_are_refused():
    with pytest.raises(GrafanaConfigError, match="same ConfigMap"):
        dashboard_configmaps([{"path": "a/x.json", "content": BOARD}, {"path": "b/x.json", "content": BOARD}],
                             "ns", "l", "1", "f", "F")
    other = json.dumps({"uid": "abc", "title": "B"})
    with pytest.raises(GrafanaConfigError, match="share uid"):
        dashboard_configmaps([{"path": "x.json", "content": BOARD}, {"path": "y.json", "content": other}],
                             "ns", "l", "1", "f", "F")


def test_oversized_dashboard_is_refused():
    big = json.dumps({"uid": "a", "title": "A", "pad": "x" * (1024 * 1024)})
    with pytest.raises(GrafanaConfigError, match="too large"):
        dashboard_configmaps([{"path": "x.json", "content": big}], "ns", "l", "1", "f", "F")


def test_gnet_values_empty_by_default_and_built_on_request():
    assert gnet_values([]) == {}
    values = gnet_values([{"name": "node", "gnet_id": "1860", "revision": 37}])
    assert values["dashboards"] == {"grafana-com": {"node": {"gnetId": 1860, "revision": 37, "datasource": "Prometheus"}}}
    provider = values["dashboardProviders"]["dashboardproviders.yaml"]["providers"][0]
    assert provider["name"] == "grafana-com" and provider["options"]["path"].endswith("/grafana-com")


@pytest.mark.parametrize("item, message", [({"name": "x"}, "gnet_id"), ({"name": "Bad Name", "gnet_id": 1}, "lower-case"),
                                           ({"name": "x", "gnet_id": "abc"}, "integers")])
def test_bad_gnet_entries_are_refused(item, message):
    with pytest.raises(GrafanaConfigError, match=message):
        gnet_values([item])
