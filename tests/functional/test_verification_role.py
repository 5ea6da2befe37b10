"""The verification role end to end (playbooks/verify.yml: the role's main, its settings checked, then
tasks/run.yml), in render mode pointed at running services (agw_obs_access=url).

Real: WireMock with the rendered mappings, Prometheus 3.14 with the rendered rules scraping the
gateway's metric names. Contract servers (tests/support/contract.py) stand in for Grafana, Tempo,
Loki and the gateway itself: this run proves the role's logic and reports, not those programs.
Elsewhere: site.yml's verification (tasks_from: run) failing, its reports and closing screen, and the
render-mode skip, in test_site_summary.py; each fault's diagnosis in test_fault_injection.py; bad
settings in tests/unit/plugins/plugin_utils/test_settings.py (verification-*, shared-service-url).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from support.fixtures import REPO, render_playbook

pytestmark = pytest.mark.services


def verify(stack, tmp_path, check=True, args=(), **extra):
    variables = {
        "agw_obs_access": "url",
        "agw_obs_loki_enabled": stack.loki is not None,
        "agw_obs_service_urls": stack.service_urls(),
        "verification_grafana_password": "contract-admin-password",
        "verification_report_dir": str(tmp_path / "report"),
        "verification_deadline": 45,
        "verification_timeout": 5,
    }
    variables.update(extra)
    return render_playbook(REPO / "playbooks" / "verify.yml", tmp_path / "render", variables, check=check,
                           args=args)


def load_report(tmp_path):
    return json.loads((tmp_path / "report" / "verification.json").read_text())


def test_every_hop_passes_and_the_reports_say_so(local_stack, tmp_path):
    proc = verify(local_stack, tmp_path)
    # the role on its own checks its settings before it sends anything
    assert proc.stdout.index("Check the settings of role verification") < proc.stdout.index(
        "Send one request per model")
    report = load_report(tmp_path)
    failed = [c for c in report["checks"] if c["status"] != "passed"]
    assert failed == [], json.dumps(failed, indent=2)
    ids = {c["id"] for c in report["checks"]}
    for expected in ("gateway.request.gpt-4.0", "backend.received.gpt-4.0", "backend.via_gateway.gpt-3.5-turbo.0",
                     "gateway.metrics", "prometheus.gateway_target", "prometheus.requests_by_model",
                     "prometheus.tokens_input", "prometheus.tokens_output", "prometheus.cost", "prometheus.rules",
                     "prometheus.alerts", "tempo.ready", "loki.ready", "grafana.health", "grafana.datasources",
                     "grafana.datasource.prometheus", "grafana.datasource.tempo", "grafana.datasource.loki",
                     "grafana.panel",
                     # what the mock backend serves beyond chat, through the stand-in's routes
                     "gateway.guard", "gateway.retry.0", "gateway.retry.1", "gateway.mcp.initialize",
                     "gateway.mcp.tools_list", "gateway.mcp.tools_call.echo", "gateway.mcp.tools_call.fail",
                     "backend.retried", "backend.mcp_received", "prometheus.mcp_calls", "prometheus.mcp_tool_calls",
                     "prometheus.guardrail_rejections", "prometheus.guardrail_rejected_requests",
                     "prometheus.retries"):
        assert expected in ids, expected
    # every dashboard the grafana role ships, by its uid in the file
    shipped = sorted(json.loads(p.read_text())["uid"]
                     for p in (REPO / "roles" / "grafana" / "files" / "dashboards").glob("*.json"))
    assert len(shipped) == 4
    assert sorted(i.split(".", 2)[2] for i in ids if i.startswith("grafana.dashboard.")) == shipped
    traces = report["context"]["traces"]
    assert len(traces) == 2 and len(set(traces)) == 2
    for trace in traces:
        assert "tempo.trace.%s" % trace in ids and "loki.trace.%s" % trace in ids
        # the trace the role generated is the one the backend saw, behind a new span of the gateway
        assert trace in local_stack.tempo.spans
    journal = local_stack.wiremock.admin("GET", "/requests")["requests"]
    seen = [{k.lower(): v for k, v in r["request"]["headers"].items()} for r in journal]
    for trace in traces:
        # the backend saw our trace id with the gateway's span, and the backend key, not the client's
        mine = [h for h in seen if trace in h.get("traceparent", "")]
        assert mine and all(h["authorization"] == "Bearer mock-key" for h in mine)
    assert "checks: " in proc.stdout and " passed, 0 failed" in proc.stdout
    junit = ET.parse(tmp_path / "report" / "verification.junit.xml").getroot()
    assert junit.tag == "testsuites" and junit.get("failures") == "0" and int(junit.get("tests")) == len(ids)
    markdown = (tmp_path / "report" / "verification.md").read_text()
    assert "**PASSED**" in markdown and "grafana.panel" in markdown

    # check mode: the reads run, the requests are not sent, no report file is written
    sent_before = len(local_stack.wiremock.admin("GET", "/requests")["requests"])
    checked = verify(local_stack, tmp_path / "check", args=["--check"])
    assert not (tmp_path / "check" / "report").exists()
    assert len(local_stack.wiremock.admin("GET", "/requests")["requests"]) == sent_before, "nothing was sent"
    assert "skip  gateway.request.gpt-4.0" in checked.stdout and "ok    grafana.panel" in checked.stdout
    assert "backend.received" not in checked.stdout and " 0 failed" in checked.stdout
