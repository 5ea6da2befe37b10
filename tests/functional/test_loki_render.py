"""The optional loki role: off by default, monolithic values that pass the chart's own schema.

The kind profile is read from the session's shared site.yml renders (Loki off, Loki on); the
production profile and the auth settings are planned in-process (support.planner, byte for byte
what site.yml renders). Turning Loki off removes its earlier render: that is the deploy step's
work, so it runs stack.yml for real.
"""

from __future__ import annotations

import json
import shutil

import pytest

from support import planner
from support.dashboards import render_stack
from support.fixtures import load_rendered, snapshot
from support.schemas import chart_values_errors

LOKI = "helm/monitoring/loki.yaml"


def test_loki_is_off_by_default(stack_render):
    assert not [p for p in snapshot(stack_render) if "loki" in p]
    index = load_rendered(stack_render, "index.yaml")
    assert not [e for e in index["entries"] if e["role"] == "loki"]


@pytest.mark.parametrize("profile", ["kind", "production"])
def test_loki_values_pass_the_chart_schema(stack_render_loki, schemas_dir, profile):
    if profile == "kind":
        values = load_rendered(stack_render_loki, LOKI)["values"]
    else:
        settings = {"agw_obs_profile": profile, "agw_obs_loki_enabled": True}
        values = planner.objects(settings, roles=["loki"])[LOKI]["values"]
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
    values = json.loads(json.dumps(load_rendered(stack_render_loki, LOKI)["values"]))
    values["chunksCache"]["enabled"] = "false"
    assert chart_values_errors(schemas_dir, "loki-18.11.0", values)


def test_auth_matches_the_grafana_datasource(stack_render_loki):
    values = load_rendered(stack_render_loki, LOKI)["values"]
    assert values["loki"]["auth_enabled"] is False
    settings = {"agw_obs_loki_enabled": True, "loki_auth_enabled": True, "grafana_loki_tenant": "gateway"}
    planned = planner.objects(settings, roles=["loki", "grafana"])
    assert planned[LOKI]["values"]["loki"]["auth_enabled"] is True
    sources = planned["helm/monitoring/grafana.yaml"]["values"]["datasources"]["datasources.yaml"]
    loki = next(ds for ds in sources["datasources"] if ds["uid"] == "loki")
    assert loki["jsonData"]["httpHeaderName1"] == "X-Scope-OrgID"
    assert loki["secureJsonData"]["httpHeaderValue1"] == "gateway"


def test_turning_loki_off_removes_its_render(stack_render_loki, tmp_path):
    """stack.yml with the defaults over a render with Loki on: Loki's file and index entries go, the
    files of the roles stack.yml does not plan stay as they were."""
    shutil.copytree(stack_render_loki, tmp_path, dirs_exist_ok=True)
    before = snapshot(tmp_path)
    assert LOKI in before
    render_stack(tmp_path)
    after = snapshot(tmp_path)
    assert LOKI not in after
    assert not [e for e in load_rendered(tmp_path, "index.yaml")["entries"] if e["role"] == "loki"]
    assert set(after) == set(before) - {LOKI}
    sources = load_rendered(tmp_path, "helm/monitoring/grafana.yaml")["values"]["datasources"]["datasources.yaml"]
    assert "loki" not in {ds["uid"] for ds in sources["datasources"]}
    gateway_files = [p for p in before if "/agentgateway-system/" in p]
    assert gateway_files and all(after[p] == before[p] for p in gateway_files)
