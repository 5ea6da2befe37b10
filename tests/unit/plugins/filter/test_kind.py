"""Unit tests of the kind filters (thin wrappers over plugin_utils/kind_config.py)."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.agentgateway.observability.plugins.filter.kind import FilterModule

FILTERS = FilterModule().filters()
IMAGE = "kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5"


def test_filters_chain_from_node_ports_to_a_kind_config():
    ports = [{"setting": "grafana_node_port", "port": "30080", "what": "Grafana"}]
    assert FILTERS["agw_obs_node_port_problems"](ports) == []
    plan = FILTERS["kind_port_plan"](ports, None)
    config = FILTERS["kind_cluster_config"](plan["mappings"], "agw-obs", IMAGE)
    assert config["nodes"][0]["extraPortMappings"][0]["hostPort"] == 30080
    assert FILTERS["kind_missing_port_mappings"]([{"HostConfig": {"PortBindings": {}}}], plan["mappings"]) == plan["mappings"]


@pytest.mark.parametrize("name, args", [
    ("agw_obs_node_port_problems", ([{"port": 1}],)),
    ("kind_port_plan", ([{"setting": "a", "port": 30000, "what": "x"}], [{"setting": "b"}])),
    ("kind_cluster_config", ([], "agw-obs", "kindest/node:latest")),
    ("kind_missing_port_mappings", (["x"], [])),
])
def test_errors_name_the_filter(name, args):
    with pytest.raises(AnsibleFilterError, match="^%s: " % name):
        FILTERS[name](*args)
