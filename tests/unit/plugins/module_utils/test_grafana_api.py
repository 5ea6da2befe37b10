"""The verification's Grafana panel queries: variables as Grafana resolves them."""

from __future__ import annotations

from ansible_collections.agentgateway.observability.plugins.module_utils.grafana_api import panel_queries

BOARD = {
    "templating": {"list": [
        {"type": "constant", "name": "job", "query": "gw-pods", "hide": 2},
        {"type": "query", "name": "namespace", "query": "label_values(up, namespace)"},
    ]},
    "panels": [{"id": 7, "title": "Requests", "datasource": {"type": "prometheus", "uid": "prometheus"},
                "targets": [{"refId": "A", "expr": 'sum(up{job="$job", namespace=~"$namespace"})'}]}],
}


def test_a_constant_keeps_its_value_and_the_rest_is_all():
    panel, queries = panel_queries(BOARD, panel_title="Requests")
    assert panel["id"] == 7
    assert [q["expr"] for q in queries] == ['sum(up{job="gw-pods", namespace=~".*"})']


def test_given_values_win_over_constants():
    _panel, queries = panel_queries(BOARD, panel_id=7, variables={"job": "other", "namespace": "agw"})
    assert queries[0]["expr"] == 'sum(up{job="other", namespace=~"agw"})'


def test_an_unknown_panel_is_reported():
    panel, reason = panel_queries(BOARD, panel_title="Nope")
    assert panel is None and reason == "no panel with title 'Nope'"
