"""The optional loki role: off by default, monolithic values that pass the chart's own schema."""

from __future__ import annotations

import json

import pytest

from support.dashboards import render_stack
from support.fixtures import load_rendered, snapshot
from support.schemas import chart_values_errors


def test_loki_is_off_by_default(stack_render):
    assert not [p for p in snapshot(stack_render) if "loki" in p]
    index = load_rendered(stack_render, "index.yaml")
    assert not [e for e in index["entries"] if e["role"] == "loki"]


@pytest.mark.parametrize("profile", ["kind", "production"])
def test_loki_values_pass_the_chart_schema(tmp_path, schemas_dir, profile):
    render_stack(tmp_path, {"agw_obs_profile": profile, "agw_obs_loki_enabled": True})
    values = load_rendered(tmp_path, "helm/monitoring/loki.yaml")["values"]
    assert chart_values_errors(schemas_dir, "loki-18.11.0", values) == []
    assert values["deploymentMode"] == "Monolithic"
    assert values["singleBinary"]["replicas"] == 1
    assert values["read"]["replicas"] == values["write"]["replicas"] == values["backend"]["replicas"] == 0
    assert values["loki"]["storage"]["type"] == "filesystem"
    assert values["loki"]["commonConfig"]["replication_factor"] == 1
    schema = values["loki"]["schemaConfig"]["configs"][0]
    assert schema["schema"] == "v13" and schema["store"] == "tsdb" and schema["object_store"] == "filesystem"
    # OTLP logs land as structured metadata (Loki 3, schema v13)
    assert values["loki"]["limits_config"]["allow_structured_metadata"] is True
    if profile == "kind":
        assert values["chunksCache"] == {"enabled": False}
        assert values["resultsCache"] == {"enabled": False}
    else:
        assert values["chunksCache"]["enabled"] is True
        assert values["chunksCache"]["allocatedMemory"] < 8192


def test_the_schema_check_catches_a_wrong_value(schemas_dir, stack_render_loki):
    """Guard for the guard: a string where the chart wants a boolean is refused."""
    values = json.loads(json.dumps(load_rendered(stack_render_loki, "helm/monitoring/loki.yaml")["values"]))
    values["chunksCache"]["enabled"] = "false"
    assert chart_values_errors(schemas_dir, "loki-18.11.0", values)


def test_auth_matches_the_grafana_datasource(stack_render_loki, tmp_path):
    values = load_rendered(stack_render_loki, "helm/monitoring/loki.yaml")["values"]
    assert values["loki"]["auth_enabled"] is False
    render_stack(tmp_path, {"agw_obs_loki_enabled": True, "loki_auth_enabled": True, "grafana_loki_tenant": "gateway"})
    assert load_rendered(tmp_path, "helm/monitoring/loki.yaml")["values"]["loki"]["auth_enabled"] is True
    sources = load_rendered(tmp_path, "helm/monitoring/grafana.yaml")["values"]["datasources"]["datasources.yaml"]
    loki = next(ds for ds in sources["datasources"] if ds["uid"] == "loki")
    assert loki["jsonData"]["httpHeaderName1"] == "X-Scope-OrgID"
    assert loki["secureJsonData"]["httpHeaderValue1"] == "gateway"


def test_turning_loki_off_removes_its_render(tmp_path):
    render_stack(tmp_path, {"agw_obs_loki_enabled": True})
    assert "helm/monitoring/loki.yaml" in snapshot(tmp_path)
    render_stack(tmp_path)
    assert "helm/monitoring/loki.yaml" not in snapshot(tmp_path)
