"""Unit tests of the grafana filters (thin wrappers over plugin_utils/grafana_config.py)."""

from __future__ import annotations

import json

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.agentgateway.observability.plugins.filter.grafana import FilterModule

FILTERS = FilterModule().filters()


def test_configmaps_filter_pairs_paths_and_contents():
    board = json.dumps({"uid": "u", "title": "T"})
    cms = FILTERS["grafana_dashboard_configmaps"](["d/one.json"], [board], "monitoring")
    assert cms[0]["metadata"]["name"] == "grafana-dashboard-one"
    assert cms[0]["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cms[0]["metadata"]["annotations"] == {"grafana_folder": "AgentGateway"}


def test_configmaps_filter_errors_name_the_filter():
    with pytest.raises(AnsibleFilterError, match="grafana_dashboard_configmaps: .*paths"):
        FILTERS["grafana_dashboard_configmaps"](["a.json", "b.json"], ["{}"], "ns")
    with pytest.raises(AnsibleFilterError, match="grafana_dashboard_configmaps: .*not valid JSON"):
        FILTERS["grafana_dashboard_configmaps"](["a.json"], ["nope"], "ns")


def test_gnet_filter():
    assert FILTERS["grafana_gnet_values"]([]) == {}
    assert FILTERS["grafana_gnet_values"](None) == {}
    with pytest.raises(AnsibleFilterError, match="grafana_gnet_values"):
        FILTERS["grafana_gnet_values"]([{"name": "x"}])
