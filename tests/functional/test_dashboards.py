"""The shipped dashboards: every PromQL query returns data on a real Prometheus, every datasource resolves.

The Prometheus behind ``genai_prometheus`` holds backfilled series with the gateway's real metric
and label names and the prometheus role's recording-rule series (tests/support/dashboards.py).
Each query runs twice: with every variable on "All" (``.*``), and with each variable on a real
value found by that variable's own query, as Grafana would offer it; the hidden constant ``job``
keeps its value (the scrape job, which the grafana role sets: tests/functional/test_grafana_render.py).
The runtime dashboard's memory stack is checked against the cgroup's usage with promtool.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.parse

import pytest
import yaml

from support.dashboards import (
    BUILTINS,
    all_values,
    constant_values,
    dashboard_queries,
    has_finite_value,
    link_urls,
    load_dashboards,
    datasource_refs,
    prometheus_targets,
    query_variables,
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
        names = [v["name"] for v in query_variables(board)]
        assert names[:3] == ["namespace", "gateway", "model"], board["title"]
        for variable in query_variables(board):
            assert variable["multi"] and variable["includeAll"] and variable["allValue"] == ".*", variable["name"]
        # the scrape job: a hidden constant, first (the queries of the others use it), kept out of links' URLs;
        # the files carry the prometheus role's default job, the grafana role writes the configured one
        job = board["templating"]["list"][0]
        assert job["name"] == "job" and job["type"] == "constant", board["title"]
        assert job["hide"] == 2 and job["skipUrlSync"] is True, board["title"]
        assert constant_values(board) == {"job": "agentgateway"}, board["title"]
        assert job["current"]["value"] == job["options"][0]["value"] == "agentgateway", board["title"]


# A selector of a raw series (a metric name and its matchers, or a {__name__=~...} selector); recorded
# series (agentgateway:...) carry no job label, kube-state-metrics' series have their own job.
_SELECTOR = re.compile(r'(?:\b(agentgateway_\w+|up)|(?<![\w:]))\{([^{}]*)\}')


def gateway_selectors(text):
    """The matchers of every selector of the gateway's raw series in ``text``."""
    out = []
    for match in _SELECTOR.finditer(text):
        matchers = match.group(2)
        if match.group(1) or '__name__=~"agentgateway_' in matchers:
            out.append(matchers)
    return out


def test_every_query_of_the_gateway_series_selects_the_job_constant():
    """No job is written into a query: each selector of the gateway's series has job="$job", so the
    dashboards follow prometheus_gateway_job_name as the rules do."""
    total = 0
    for name, board in DASHBOARDS.items():
        for text in dashboard_queries(board):
            assert 'job="agentgateway"' not in text, (name, text)
            for matchers in gateway_selectors(text):
                assert 'job="$job"' in matchers, "%s: a selector without the job constant: {%s}" % (name, matchers)
                total += 1
    # every raw selector of the four dashboards (panels and variables)
    assert total >= 81, total


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
        values = dict(BUILTINS, **constant_values(board))
        for variable in query_variables(board):
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
    for label, values in (("All", all_values(board)), ("one value each", variable_values[name])):
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


# ---- the runtime dashboard's memory stack ----------------------------------------------------------
# cgroup v2 memory.stat of two proxy pods, in bytes, consistent as the kernel reports them
# (Documentation/admin-guide/cgroup-v2.rst): anon, file, kernel and sock do not overlap and add up to
# memory.current (usage); shmem (tmpfs, shared memory) is part of file; kernel holds kernel stacks,
# page tables, slab, percpu and vmalloc; working_set is usage minus inactive_file.
CGROUP = {
    "gw-a": {"anon": 70e6, "file": 18e6, "kernel": 6e6, "sock": 1e6, "shmem": 2e6, "inactive_file": 15e6},
    "gw-b": {"anon": 40e6, "file": 30e6, "kernel": 4e6, "sock": 2e6, "shmem": 12e6, "inactive_file": 10e6},
}
MEMORY_PANEL = "Where the memory goes (cgroup)"


def _stacked(panel):
    """refIds of the panel's targets drawn stacked (the panel's mode, unless an override draws one as a line)."""
    lines = set()
    for override in panel["fieldConfig"].get("overrides") or []:
        for prop in override["properties"]:
            if prop["id"] == "custom.stacking" and prop["value"].get("mode") == "none":
                assert override["matcher"]["id"] == "byFrameRefID", override
                lines.add(override["matcher"]["options"])
    assert panel["fieldConfig"]["defaults"]["custom"]["stacking"]["mode"] == "normal"
    return [t for t in panel["targets"] if t["refId"] not in lines], [t for t in panel["targets"] if t["refId"] in lines]


def test_the_memory_stack_adds_up_to_the_cgroup_usage(prometheus_values, promtool, tmp_path):
    """promtool, the role's rendered recording rules (agentgateway:pod_gateway:info) and the panel's own
    queries: the stacked parts sum to agentgateway_cgroup_usage on pods whose file cache holds shmem, and
    the usage line shows that total. Stacking shmem on top of file would count it twice."""
    board = DASHBOARDS["agentgateway-runtime.json"]
    panel = next(p for p in board["panels"] if p["title"] == MEMORY_PANEL)
    stacked, lines = _stacked(panel)
    assert len(stacked) == 1, "one stacked query, the parts by kind"
    values = all_values(board)
    job = values["job"]
    series = []
    for pod, stat in CGROUP.items():
        target = 'job="%s",namespace="agw",pod="%s",gateway_networking_k8s_io_gateway_name="gw"' % (job, pod)
        usage = stat["anon"] + stat["file"] + stat["kernel"] + stat["sock"]
        gauges = dict(stat, usage=usage, working_set=usage - stat["inactive_file"])
        assert gauges["shmem"] <= gauges["file"] and gauges["shmem"] > 0
        series.append({"series": "up{%s}" % target, "values": "1+0x10"})
        series += [{"series": "agentgateway_cgroup_%s{%s}" % (name, target), "values": "%d+0x10" % value}
                   for name, value in sorted(gauges.items())]
    usage = sum(s["anon"] + s["file"] + s["kernel"] + s["sock"] for s in CGROUP.values())
    exprs = {t["refId"]: substitute(t["expr"], values) for t in panel["targets"]}
    line_of = {t["refId"]: t for t in lines}
    usage_line = [ref for ref, t in line_of.items() if "agentgateway_cgroup_usage{" in t["expr"]]
    assert len(usage_line) == 1, "the panel draws the cgroup's usage beside its parts"

    def sample(expr, value, labels="{}"):
        return {"expr": expr, "eval_time": "5m", "exp_samples": [{"labels": labels, "value": value}]}

    checks = [
        sample("sum(%s)" % exprs[stacked[0]["refId"]], usage),
        sample(exprs[usage_line[0]], usage),
        {"expr": exprs[stacked[0]["refId"]], "eval_time": "5m", "exp_samples": [
            {"labels": '{kind="%s"}' % kind, "value": sum(s[kind] for s in CGROUP.values())}
            for kind in ("anon", "file", "kernel", "sock")]},
    ]
    (tmp_path / "recording_rules.yml").write_text(
        yaml.safe_dump(prometheus_values["serverFiles"]["recording_rules.yml"], sort_keys=False), encoding="utf-8")
    (tmp_path / "memory_test.yml").write_text(yaml.safe_dump({
        "rule_files": ["recording_rules.yml"], "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": checks}]}, sort_keys=False),
        encoding="utf-8")
    proc = subprocess.run([promtool, "test", "rules", "memory_test.yml"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
