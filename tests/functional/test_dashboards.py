"""The shipped dashboards: every PromQL query returns data on a real Prometheus, every datasource resolves.

The Prometheus behind ``genai_prometheus`` holds backfilled series with the gateway's real metric
and label names and the prometheus role's recording-rule series (tests/support/dashboards.py).
Each query runs twice: with every variable on "All" (``.*``), and with each variable on a real
value found by that variable's own query, as Grafana would offer it.
"""

from __future__ import annotations

import json
import urllib.parse

import pytest

from support.dashboards import (
    BUILTINS,
    has_finite_value,
    link_urls,
    load_dashboards,
    datasource_refs,
    prometheus_targets,
    substitute,
    variable_query,
)

DASHBOARDS = load_dashboards()
# title -> fixed uid: links between the dashboards and bookmarks rely on the uids
REQUIRED = {
    "AgentGateway GenAI overview": "agentgateway-genai-overview",
    "AgentGateway cost": "agentgateway-cost",
    "AgentGateway runtime": "agentgateway-runtime",
    "AgentGateway MCP and guardrails": "agentgateway-mcp-guardrails",
}


def _cases():
    for name, board in sorted(DASHBOARDS.items()):
        for title, target in prometheus_targets(board):
            yield pytest.param(name, title, target, id="%s/%s/%s" % (name[:-5], title, target["refId"]))


def test_the_four_dashboards_are_shipped_with_fixed_uids_and_the_same_variables():
    assert {b["title"]: b["uid"] for b in DASHBOARDS.values()} == REQUIRED
    for board in DASHBOARDS.values():
        names = [v["name"] for v in board["templating"]["list"]]
        assert names[:3] == ["namespace", "gateway", "model"], board["title"]
        for variable in board["templating"]["list"]:
            assert variable["multi"] and variable["includeAll"] and variable["allValue"] == ".*", variable["name"]


def test_every_dashboard_links_to_the_others_keeping_time_and_variables():
    for board in DASHBOARDS.values():
        targets = {link["url"]: link for link in board["links"]}
        others = {"/d/%s" % uid for uid in REQUIRED.values() if uid != board["uid"]}
        assert set(targets) == others, board["title"]
        assert all(link["keepTime"] and link["includeVars"] for link in targets.values()), board["title"]


def test_panel_ids_are_unique_and_panels_stay_on_the_grid():
    for board in DASHBOARDS.values():
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), board["title"]
        for panel in board["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, (board["title"], panel["title"])
            if panel["type"] != "row":
                assert panel["targets"] and panel.get("description"), (board["title"], panel["title"])


@pytest.fixture(scope="module")
def variable_values(genai_prometheus):
    """{dashboard file: {variable: first real value}} by running each variable's label_values query."""
    out = {}
    for name, board in DASHBOARDS.items():
        values = dict(BUILTINS)
        for variable in board["templating"]["list"]:
            selector, label = variable_query(variable)
            found = genai_prometheus.label_values(substitute(selector, values), label)
            assert found, "variable %s of %s finds no values" % (variable["name"], name)
            values[variable["name"]] = sorted(found)[0]
        out[name] = values
    return out


@pytest.mark.services
@pytest.mark.parametrize("name, title, target", list(_cases()))
def test_every_query_returns_data(genai_prometheus, variable_values, name, title, target):
    board = DASHBOARDS[name]
    all_values = dict(BUILTINS, **{v["name"]: v.get("allValue") or ".*" for v in board["templating"]["list"]})
    for label, values in (("All", all_values), ("one value each", variable_values[name])):
        promql = substitute(target["expr"], values)
        result = genai_prometheus.query(promql)
        assert result, "%s / %s (%s) shows No data with variables=%s:\n%s" % (name, title, target["refId"], label, promql)
        assert has_finite_value(result), "%s / %s: only NaN/Inf with %s:\n%s\n%r" % (name, title, label, promql, result)


@pytest.mark.services
def test_the_data_check_catches_a_wrong_label(genai_prometheus):
    """Guard for the guard: a query on a label the recording rule drops shows No data."""
    assert genai_prometheus.query('sum(agentgateway:gen_ai_cost_usd:per_hour{gen_ai_system=~".*"})')
    assert not genai_prometheus.query('sum by (backend) (agentgateway:gen_ai_cost_usd:per_hour{backend=~".+"})')
    assert not genai_prometheus.query('sum(rate(agentgateway_requests_total{job="agentgateway", gateway="other"}[5m]))')


def test_every_datasource_reference_is_provisioned(provisioned_datasources):
    by_uid = {ds["uid"]: ds["type"] for ds in provisioned_datasources}
    for name, board in DASHBOARDS.items():
        refs = datasource_refs(board)
        assert refs, name
        for path, ref in refs:
            assert isinstance(ref, dict), "%s %s: refer to datasources by {type, uid}, not %r" % (name, path, ref)
            if ref.get("uid") == "-- Grafana --":
                continue
            assert ref.get("uid") in by_uid, "%s %s: uid %r is not provisioned (%s)" % (name, path, ref, sorted(by_uid))
            assert by_uid[ref["uid"]] == ref.get("type"), "%s %s: type mismatch %r" % (name, path, ref)


def test_tempo_links_point_at_the_tempo_datasource(provisioned_datasources):
    uids = {ds["uid"] for ds in provisioned_datasources}
    explore = 0
    for name, board in DASHBOARDS.items():
        for url in link_urls(board):
            if not url.startswith("/explore"):
                continue
            explore += 1
            panes = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["panes"][0]
            panes = json.loads(panes)
            for pane in panes.values():
                assert pane["datasource"] in uids, (name, url)
                for query in pane["queries"]:
                    assert query["datasource"]["uid"] in uids and query["datasource"]["type"] == "tempo"
    assert explore >= 3, "the dashboards should link latency and cost panels to traces in Tempo"


def test_dashboards_download_nothing():
    for name, board in DASHBOARDS.items():
        text = json.dumps(board)
        assert "gnetId" not in board, name
        assert "grafana.com" not in text, name
        for url in link_urls(board):
            assert not urllib.parse.urlsplit(url).netloc, "%s links outside Grafana: %s" % (name, url)
