"""Unit tests of the check results, JSON paths, Prometheus text parsing, the report and secret removal."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.agentgateway.observability.plugins.module_utils import checks, redact, report
from ansible_collections.agentgateway.observability.plugins.module_utils.access import ServiceAccess
from ansible_collections.agentgateway.observability.plugins.module_utils.probe import check_json, evaluate


def test_json_path():
    doc = {"data": {"result": [{"metric": {"model": "a"}, "value": [1, "2"]}, {"metric": {"model": "b"}}]},
           "a.b": 3}
    assert checks.json_path(doc, "data.result[0].value[1]") == ["2"]
    assert checks.json_path(doc, "$.data.result[*].metric.model") == ["a", "b"]
    assert checks.json_path(doc, "data.result[-1].metric") == [{"model": "b"}]
    assert checks.json_path(doc, '["a.b"]') == [3]
    assert checks.json_path(doc, "data.missing[*]") == []
    with pytest.raises(checks.PathError):
        checks.parse_path("data..x")


def test_json_expectations():
    doc = {"requests": [{"url": "/v1"}, {"url": "/v2"}], "status": "success", "n": 3}
    assert check_json(doc, {"path": "requests[*].url", "min_count": 2})[0]
    assert not check_json(doc, {"path": "requests[*].url", "min_count": 3})[0]
    assert check_json(doc, {"path": "status", "equals": "success"})[0]
    assert check_json(doc, {"path": "n", "equals": "3"})[0], "numbers compare with their text"
    assert not check_json(doc, {"path": "requests[*].url", "regex": "^/v1$"})[0], "every value must match"
    assert check_json(doc, {"path": "error", "exists": False})[0]
    ok, saw = check_json(doc, {"path": "missing"})
    assert not ok and "0 value(s), at least 1 expected" in saw


METRICS = """# HELP agentgateway_requests_total Total requests
# TYPE agentgateway_requests_total counter
agentgateway_requests_total{model="gpt-4",status="200",route="a/b"} 5
agentgateway_requests_total{model="gpt-4",status="500",route="a\\"b"} 1
agentgateway_requests_total{model="gpt-3.5-turbo",status="200"} 2.5e1 1700000000000
agentgateway_requests_total_created{model="gpt-4"} 1.7e9
agentgateway_build_info{tag="v1.4.1"} 1
other NaN
"""


def test_metric_sum():
    assert checks.metric_sum(METRICS, "agentgateway_requests_total") == (31.0, 3)
    assert checks.metric_sum(METRICS, "agentgateway_requests_total", {"model": "gpt-4"}) == (6.0, 2)
    assert checks.metric_sum(METRICS, "agentgateway_requests_total", {"status": "2.."}) == (30.0, 2)
    assert checks.metric_sum(METRICS, "absent") == (0.0, 0)
    labels = [lab for name, lab, _v in checks.parse_metrics(METRICS) if lab.get("status") == "500"][0]
    assert labels["route"] == 'a"b'


class _R(object):
    status = 200

    def __init__(self, body):
        self.body = body.encode()

    def text(self):
        return self.body.decode()

    def json(self):
        return json.loads(self.body)


def test_evaluate_a_metric_expectation():
    ok, saw, details = evaluate({"metric": {"name": "agentgateway_requests_total", "min": 32}}, _R(METRICS))
    assert not ok and "31 over 3 series (at least 32 expected)" in saw and details["metric"]["sum"] == 31
    ok, saw, _d = evaluate({"metric": {"name": "agentgateway_requests_total"}}, _R("# nothing yet\n"))
    assert ok and "= 0 over 0 series" in saw, "without bounds a missing metric reads 0"
    ok, saw, _d = evaluate({"metric": {"name": "agentgateway_requests_total", "min": 0}}, _R(""))
    assert not ok and "metric not found" in saw


def test_fixes_depend_on_the_access_mode():
    nodeport = ServiceAccess({"access": "nodeport", "host_port": 30090}, {})
    meaning, fix = checks.explain("connection_refused", nodeport, "prometheus")
    assert "http://localhost:30090" in meaning and "host port 30090" in fix and "extraPortMappings" in fix
    url = ServiceAccess({"url": "http://localhost:9090"}, {})
    _m, fix = checks.explain("connection_refused", url, "prometheus")
    assert "agw_obs_service_urls.prometheus" in fix
    _m, fix = checks.explain("unauthorized", url, "grafana")
    assert "grafana_admin_password_file" in fix
    _m, fix = checks.explain("dns", url, "tempo")
    assert "agw_obs_service_urls.tempo" in fix
    for cause in checks.CAUSES:
        meaning, fix = checks.explain(cause, url, "x")
        assert meaning and fix and "{" not in meaning.replace("{service_name", ""), cause


def _checks():
    ok = checks.result("prometheus.ready", "Prometheus is ready", "prometheus", True, "GET /-/ready", "HTTP 200")
    bad = checks.result("tempo.trace.abc", "Tempo returns trace abc", "tempo", False, "GET /api/v2/traces/abc",
                        "HTTP 404: trace not found", cause="trace_missing", elapsed=1.5, attempts=4)
    skip = checks.result("gateway.request.gpt-4.0", "request", "gateway", False, "POST /v1", "not sent", skipped=True)
    return [ok, bad, skip]


def test_report_renders_table_markdown_junit_json():
    doc = report.build(_checks(), {"access": "url", "traces": ["abc"]}, generated_at="2026-01-01T00:00:00+00:00")
    assert doc["summary"] == {"total": 3, "passed": 1, "failed": 1, "skipped": 1} and doc["passed"] is False
    table = report.table(doc)
    assert table[0].startswith("ok    prometheus.ready") and table[1].startswith("FAIL  tempo.trace.abc")
    assert table[2].startswith("      cause: trace_missing - Tempo has no trace")
    assert table[3].startswith("      fix: Check the gateway's tracing policy")
    assert table[-1] == "3 checks: 1 passed, 1 failed, 1 skipped"
    md = report.markdown(doc)
    assert "**FAILED**" in md and "### tempo.trace.abc" in md and "- **likely cause** (`trace_missing`)" in md
    root = ET.fromstring(report.junit_xml(doc).split("\n", 1)[1])
    suite = root.find("testsuite")
    assert root.get("tests") == "3" and root.get("failures") == "1" and root.get("skipped") == "1"
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    failure = cases["tempo.trace.abc"].find("failure")
    assert failure.get("type") == "trace_missing" and "fix:" in failure.text
    assert cases["gateway.request.gpt-4.0"].find("skipped") is not None
    assert cases["prometheus.ready"].get("classname") == "agentgateway.observability.prometheus"
    assert json.loads(report.to_json(doc))["checks"][1]["cause"] == "trace_missing"


def test_redact_removes_every_kind_of_secret():
    planted = ["sk-planted-1", "s3cr3t-planted-2", "planted-token-3", "planted-pw-4", "cGxhbnRlZC01", "planted-6"]
    data = {
        "kind": "AgentgatewayParameters",
        "spec": {"rawConfig": {"config": {"tracing": {"headers": {"x-api-key": planted[0]}}},
                               "frontendPolicies": {"accessLog": {"otlp": {"host": "loki:3100"}}}},
                 "env": [{"name": "GRAFANA_PASSWORD", "value": planted[1]}, {"name": "LOG_LEVEL", "value": "info"},
                         {"name": "OTEL_EXPORTER_OTLP_HEADERS", "value": "Authorization=Bearer %s" % planted[2]}]},
        "metadata": {"annotations": {redact.LAST_APPLIED: json.dumps({"password": planted[3]})}},
        "secret": {"kind": "Secret", "apiVersion": "v1", "data": {"k": planted[4]}, "stringData": {"x": planted[5]}},
        "url": "http://admin:%s@grafana/" % planted[3],
        "apiKey": planted[0],
    }
    cleaned, count = redact.redact(data)
    text = json.dumps(cleaned)
    for value in planted:
        assert value not in text, value
    assert "loki:3100" in text and '"LOG_LEVEL", "value": "info"' in text, "what is not secret stays"
    assert count >= 7
    log, n = redact.redact_text("login ok password=hunter22 token: abcd1234 key %s -----BEGIN PRIVATE KEY-----\nMII\n"
                                "-----END PRIVATE KEY----- done" % planted[5], [planted[5]])
    assert "hunter22" not in log and "abcd1234" not in log and planted[5] not in log and "MII" not in log
    assert log.startswith("login ok") and log.endswith("done") and n == 4
