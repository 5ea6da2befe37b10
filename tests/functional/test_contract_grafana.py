"""CONTRACT TESTS of grafana_info: a local server implementing Grafana's documented HTTP API.

Grafana cannot run here. tests/support/contract.py ContractGrafana answers the endpoints the
module calls in the shapes Grafana's HTTP API reference documents (the reference is next to each
handler). Its datasource query runs against a real Prometheus 3.14, so a panel's data is real.
These tests prove the module's logic against that contract, never Grafana itself.
"""

from __future__ import annotations

import pytest

from ansible_collections.agentgateway.observability.plugins.modules import grafana_info
from support.contract import ContractGrafana, ContractTempo
from support.modules import by_id, run_module
from support.prometheus import MetricsTarget, PrometheusServer
from support.services import free_port
from support.stack import GATEWAY_TARGET_LABELS, dashboards

pytestmark = pytest.mark.services
PASSWORD = "contract-password"


@pytest.fixture(scope="module")
def grafana(prometheus_binary, tmp_path_factory):
    target = MetricsTarget(lambda _n: "agentgateway_requests_total{model=\"gpt-4\",status=\"200\"} 3\n")
    prometheus = PrometheusServer(prometheus_binary, tmp_path_factory.mktemp("prom-grafana"), {
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [{"job_name": "agentgateway", "static_configs": [
            {"targets": [target.address], "labels": GATEWAY_TARGET_LABELS}]}]})
    prometheus.wait_for(lambda: prometheus.query('up{job="agentgateway"} == 1'), what="target up")
    tempo = ContractTempo()
    server = ContractGrafana(PASSWORD, [
        {"uid": "prometheus", "name": "Prometheus", "type": "prometheus", "url": prometheus.url},
        {"uid": "tempo", "name": "Tempo", "type": "tempo", "url": tempo.url}], dashboards())
    yield server
    for item in (server, tempo, prometheus, target):
        item.stop()


def run(server, capsys, **args):
    base = {"service": {"url": server.url}, "username": "admin", "password": PASSWORD, "deadline": 10,
            "backoff": 0.2, "fail_on_error": False}
    base.update(args)
    return run_module(grafana_info, base, capsys)


OVERVIEW = "agentgateway-genai-overview"


def test_health_datasources_dashboards_and_a_panel_with_real_data(grafana, capsys):
    result = run(grafana, capsys, datasources=["prometheus", "tempo"], dashboards=[OVERVIEW, "agentgateway-cost"],
                 panel={"dashboard_uid": OVERVIEW, "panel_title": "Gateway pods up"})
    checks = by_id(result)
    assert result["passed"], [c for c in result["checks"] if c["status"] != "passed"]
    assert set(checks) == {"grafana.health", "grafana.datasources", "grafana.datasource.prometheus",
                           "grafana.datasource.tempo", "grafana.dashboard.%s" % OVERVIEW,
                           "grafana.dashboard.agentgateway-cost", "grafana.panel"}
    panel = checks["grafana.panel"]
    # the dashboard's variables became ".*" and $__rate_interval 1m before Grafana ran the query
    assert 'sum(up{job="agentgateway", namespace=~".*"})' in panel["tried"]
    assert panel["details"]["values"] >= 1
    assert {d["uid"] for d in result["datasources"]} == {"prometheus", "tempo"}
    sent = [headers for method, path, headers in grafana.calls if path == "/api/datasources"]
    assert sent[-1]["Authorization"].startswith("Basic "), "basic auth outside the API server proxy"


def test_session_login_sends_the_cookie_instead_of_basic_auth(grafana, capsys):
    grafana.calls.clear()
    result = run(grafana, capsys, login="session", datasources=["prometheus"], datasource_health=False)
    assert result["passed"] and by_id(result)["grafana.login"]["status"] == "passed"
    listed = [headers for method, path, headers in grafana.calls if path == "/api/datasources"][-1]
    assert "Authorization" not in listed and "grafana_session=" in listed["Cookie"]


def test_wrong_credentials(grafana, capsys):
    # an _info module: it reports the failure by default (fail_on_error=false), and fails the task when asked
    args = {"service": {"url": grafana.url}, "username": "admin", "password": "wrong", "datasources": ["prometheus"],
            "deadline": 10}
    reported = run_module(grafana_info, args, capsys)
    assert not reported.get("failed") and reported["passed"] is False
    failed = run_module(grafana_info, dict(args, fail_on_error=True), capsys)
    assert failed["failed"]
    assert failed["msg"].startswith("1 Grafana check(s) failed: grafana.datasources (unauthorized)"), failed["msg"]
    causes = [{i: c["cause"] for i, c in by_id(r).items()} for r in (reported, failed)]
    assert causes[0] == causes[1], "the same checks either way"
    basic = by_id(reported)
    assert basic["grafana.health"]["status"] == "passed", "health needs no credentials"
    failed = basic["grafana.datasources"]
    assert failed["cause"] == "unauthorized" and failed["attempts"] == 1, "a 401 is not retried"
    assert "grafana_admin_password_file" in failed["fix"]
    session = by_id(run(grafana, capsys, password="wrong", login="session", datasources=["prometheus"]))
    assert session["grafana.login"]["cause"] == "unauthorized" and "grafana.datasources" not in session
    missing = by_id(run(grafana, capsys, password="", datasources=["prometheus"]))
    assert missing["grafana.api"]["cause"] == "credentials_missing"
    assert "verification_grafana_password" in missing["grafana.api"]["fix"]


def test_unhealthy_and_missing_datasources_missing_dashboard_and_panel(grafana, capsys):
    dead = {"uid": "loki", "name": "Loki", "type": "loki", "url": "http://127.0.0.1:%d" % free_port()}
    grafana.datasources.append(dead)
    try:
        checks = by_id(run(grafana, capsys, deadline=1, datasources=["prometheus", "zipkin"],
                           dashboards=["no-such-dashboard"],
                           panel={"dashboard_uid": OVERVIEW, "panel_title": "No such panel"}))
    finally:
        grafana.datasources.remove(dead)
    assert checks["grafana.datasources"]["cause"] == "datasource_missing" and "zipkin" in checks[
        "grafana.datasources"]["saw"]
    checks = by_id(run(grafana, capsys, deadline=1, datasources=[], dashboards=["no-such-dashboard"],
                       panel={"dashboard_uid": OVERVIEW, "panel_title": "No such panel"}))
    grafana.datasources.append(dead)
    try:
        health = by_id(run(grafana, capsys, deadline=1))["grafana.datasource.loki"]
    finally:
        grafana.datasources.remove(dead)
    assert health["cause"] == "datasource_unhealthy" and "Connection refused" in health["saw"]
    assert "grafana_loki_url" in health["fix"]
    assert checks["grafana.dashboard.no-such-dashboard"]["cause"] == "dashboard_missing"
    assert checks["grafana.panel"]["cause"] == "config" and "no panel with title" in checks["grafana.panel"]["saw"]


def test_a_panel_without_data(grafana, capsys):
    checks = by_id(run(grafana, capsys, deadline=1, datasource_health=False,
                       panel={"dashboard_uid": "agentgateway-cost", "panel_title": "Spend rate (USD/h)"}))
    assert checks["grafana.panel"]["cause"] == "no_data" and "0 value(s)" in checks["grafana.panel"]["saw"]


def test_no_authorization_header_through_the_api_server_proxy(capsys, tmp_path):
    kubeconfig = tmp_path / "kc.json"
    kubeconfig.write_text('{"current-context": "c",'
                          ' "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],'
                          ' "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:1"}}],'
                          ' "users": [{"name": "u", "user": {"token": "t"}}]}')
    result = run_module(grafana_info, {"access": "proxy", "kubeconfig": str(kubeconfig), "login": "basic",
                                       "username": "admin", "password": "some-password", "fail_on_error": False,
                                       "service": {"namespace": "monitoring", "name": "grafana", "port": "80"}}, capsys)
    check = by_id(result)["grafana.access"]
    assert check["cause"] == "config" and "cannot pass the API server proxy" in check["saw"]
