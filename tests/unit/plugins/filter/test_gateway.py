"""The gateway filters wrap plugin_utils and turn its errors into AnsibleFilterError."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.agentgateway.observability.plugins.filter.gateway import FilterModule


FILTERS = FilterModule().filters()


def test_filters_are_registered():
    assert set(FILTERS) == {"gateway_telemetry_config", "gateway_reference_grants"}


def test_telemetry_config_builds():
    out = FILTERS["gateway_telemetry_config"]({"tracing": {"enabled": False}})
    assert out["raw_config"]["config"]["logging"]["format"] == "json"


def test_telemetry_config_errors_become_filter_errors_with_every_problem():
    with pytest.raises(AnsibleFilterError) as info:
        FILTERS["gateway_telemetry_config"](
            {"tracing": {"enabled": False},
             "extra_raw_config": {"config": {"metrics": {"enabled": True, "prefix": "x"}}}},
            {"extra_raw_config": "gateway_observability_extra_raw_config"})
    message = str(info.value)
    assert message.startswith("gateway_telemetry_config: 2 problem(s)")
    assert "gateway_observability_extra_raw_config.config.metrics.enabled" in message
    assert "gateway_observability_extra_raw_config.config.metrics.prefix" in message


def test_reference_grants_filter():
    grants = FILTERS["gateway_reference_grants"]([{"namespace": "monitoring", "name": "tempo"}], "g",
                                                 "agentgateway.dev", "AgentgatewayPolicy", "gw")
    assert grants[0]["kind"] == "ReferenceGrant"
    with pytest.raises(AnsibleFilterError):
        FILTERS["gateway_reference_grants"]([{"namespace": "monitoring"}], "g", "a", "b", "c")
