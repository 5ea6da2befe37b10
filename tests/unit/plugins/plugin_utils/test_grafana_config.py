"""Unit tests of plugin_utils/grafana_config.py: dashboard ConfigMaps and grafana.com values."""

from __future__ import annotations

import json

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.agentgateway.observability.plugins.filter import grafana as grafana_filters
from ansible_collections.agentgateway.observability.plugins.plugin_utils.grafana_config import (
    GrafanaConfigError,
    check_dashboard,
    dashboard_configmaps,
    gnet_values,
    job_constant,
    set_job,
)

BOARD = json.dumps({"uid": "abc", "title": "A", "panels": []})
JOB = {"name": "job", "type": "constant", "hide": 2, "query": "agentgateway",
       "current": {"selected": False, "text": "agentgateway", "value": "agentgateway"},
       "options": [{"selected": True, "text": "agentgateway", "value": "agentgateway"}]}
QUERY = {"name": "namespace", "type": "query", "query": 'label_values(up{job="$job"}, namespace)'}
# a dashboard as the collection ships them: 2-space JSON, the job constant first
JOB_BOARD = json.dumps({"uid": "jb", "title": "J", "templating": {"list": [JOB, QUERY]},
                        "panels": [{"targets": [{"expr": 'up{job="$job"}'}]}]}, indent=2)


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


def _configmap_boards(files, job=None):
    cms = dashboard_configmaps(files, "monitoring", "grafana_dashboard", "1", "grafana_folder", "AgentGateway",
                               job=job)
    return [next(iter(cm["data"].values())) for cm in cms]


def test_the_job_constant_takes_the_gateway_scrape_job():
    text, = _configmap_boards([{"path": "j.json", "content": JOB_BOARD}], job="gw-pods")
    board = json.loads(text)
    current = {"selected": False, "text": "gw-pods", "value": "gw-pods"}
    options = [{"selected": True, "text": "gw-pods", "value": "gw-pods"}]
    assert job_constant(board) == dict(JOB, query="gw-pods", current=current, options=options)
    # nothing else changes: the queries keep $job, Grafana fills it in from the constant
    original = json.loads(JOB_BOARD)
    assert board["panels"] == original["panels"] and board["templating"]["list"][1] == QUERY
    assert text == json.dumps(board, indent=2)


def test_a_dashboard_keeps_its_text_when_the_job_is_already_its_own_or_it_has_no_constant():
    other = json.dumps({"uid": "o", "title": "O", "panels": [], "templating": {"list": [QUERY]}})
    files = [{"path": "j.json", "content": JOB_BOARD}, {"path": "o.json", "content": other},
             {"path": "b.json", "content": BOARD}]
    assert _configmap_boards(files, job="agentgateway") == [JOB_BOARD, other, BOARD]
    assert _configmap_boards(files) == [JOB_BOARD, other, BOARD]
    assert _configmap_boards(files, job="gw-pods")[1:] == [other, BOARD]


def test_only_a_constant_named_job_is_the_job():
    query_job = dict(QUERY, name="job")
    board = {"uid": "q", "title": "Q", "templating": {"list": [query_job]}}
    assert job_constant(board) is None and set_job(board, "gw-pods") is False
    assert board["templating"]["list"] == [query_job]
    assert job_constant({"uid": "n", "title": "N"}) is None


@pytest.mark.parametrize("job", ["gw pods", "9gw", "", "gw.pods", 15020])
def test_a_bad_job_name_is_refused(job):
    with pytest.raises(GrafanaConfigError, match="not a valid job name"):
        _configmap_boards([{"path": "j.json", "content": JOB_BOARD}], job=job)


def test_the_filter_passes_the_job_and_wraps_errors_for_ansible():
    cms = grafana_filters.grafana_dashboard_configmaps(["j.json"], [JOB_BOARD], "monitoring", job="gw-pods")
    assert job_constant(json.loads(cms[0]["data"]["j.json"]))["query"] == "gw-pods"
    assert grafana_filters.grafana_dashboard_configmaps(["j.json"], [JOB_BOARD], "monitoring")[0]["data"] == {
        "j.json": JOB_BOARD}
    with pytest.raises(AnsibleFilterError, match="grafana_dashboard_configmaps: .*not a valid job name"):
        grafana_filters.grafana_dashboard_configmaps(["j.json"], [JOB_BOARD], "monitoring", job="gw pods")
