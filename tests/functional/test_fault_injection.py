"""Fault injection: each fault ends as a failed check with the right cause and a fix, never a crash.

Faults where they happen here: a stopped service (Prometheus, the mock backend behind the gateway
stand-in: a port that refuses connections, as a stopped program leaves it), the gateway's metrics
target down (the real Prometheus 3.14 scrapes a port nothing serves any more), an unresolvable
service name, a TLS certificate nobody trusts, an endpoint slower than the deadline.
Grafana and Tempo faults use the contract servers (tests/support/contract.py): wrong Grafana
credentials, an unhealthy datasource, a trace id Tempo does not have. The modules run in-process
(their main()). The role's own handling of failed hops (a failed play, every cause and fix in the
output, the reports, the hops that work still passing, the closing screen) is one site.yml run in
tests/functional/test_site_summary.py.
"""

from __future__ import annotations

import pytest

from ansible_collections.agentgateway.observability.plugins.modules import (
    grafana_info,
    prometheus_query,
    service_probe,
    tempo_search,
)
from ansible_collections.agentgateway.observability.plugins.plugin_utils.verification import plan
from support.contract import ContractGrafana, ContractTempo, GatewayStandIn, JsonServer, self_signed_context
from support.modules import by_id, run_module
from support.prometheus import PrometheusServer
from support.services import free_port
from support.stack import GATEWAY_TARGET_LABELS

pytestmark = pytest.mark.services

SENT = [{"model": "gpt-4", "n": 0, "trace_id": "7" * 32, "span_id": "8" * 16}]


def assert_diagnosed(check, cause, *in_fix):
    assert check["status"] == "failed", check
    assert check["cause"] == cause, check
    assert check["tried"] and check["saw"] and check["explanation"] and check["fix"], check
    for needle in in_fix:
        assert needle in check["fix"], (needle, check["fix"])


def probe(capsys, *checks, deadline=3.0, **args):
    base = {"checks": list(checks), "deadline": deadline, "backoff": 0.2, "fail_on_error": False}
    base.update(args)
    return by_id(run_module(service_probe, base, capsys))


def stopped_service():
    """The URL of a service that stopped: nothing listens on its port any more."""
    return "http://127.0.0.1:%d" % free_port()


def test_prometheus_stopped(capsys):
    result = run_module(prometheus_query, {"service": {"url": stopped_service()}, "deadline": 1, "backoff": 0.2,
                                           "fail_on_error": False, "targets": [{"job": "agentgateway"}],
                                           "queries": [{"query": "up"}]}, capsys)
    checks = by_id(result)
    assert_diagnosed(checks["prometheus.ready"], "connection_refused", "agw_obs_service_urls.prometheus")
    assert checks["prometheus.ready"]["attempts"] > 1, "refused is retried with backoff until the deadline"
    for check in result["checks"]:
        assert check["cause"] == "connection_refused", check


def test_backend_stopped(capsys):
    backend = stopped_service()
    gateway = GatewayStandIn(backend, "mock-key")
    try:
        steps = plan(SENT, {"gateway": {"url": gateway.url}, "mock_backend": {"url": backend}},
                     "/v1/chat/completions", "test-token", "mock-key", namespace="agentgateway-system")
        checks = probe(capsys, *(steps["requests"] + steps["backend"]), deadline=1)
    finally:
        gateway.stop()
    # the gateway answers 503 (no upstream); the fix points at the mock backend behind it
    assert_diagnosed(checks["gateway.request.gpt-4.0"], "server_error", "mock backend's pod", "agentgateway-system")
    assert "HTTP 503" in checks["gateway.request.gpt-4.0"]["saw"]
    assert_diagnosed(checks["backend.received.gpt-4.0"], "connection_refused")
    assert_diagnosed(checks["backend.via_gateway.gpt-4.0"], "connection_refused")


@pytest.fixture()
def grafana_with_a_dead_datasource():
    tempo = ContractTempo()
    server = ContractGrafana("right-password", [
        {"uid": "tempo", "name": "Tempo", "type": "tempo", "url": tempo.url},
        {"uid": "prometheus", "name": "Prometheus", "type": "prometheus", "url": "http://127.0.0.1:%d" % free_port()}],
        {})
    yield server
    server.stop()
    tempo.stop()


def test_wrong_grafana_credentials(grafana_with_a_dead_datasource, capsys):
    checks = by_id(run_module(grafana_info, {"service": {"url": grafana_with_a_dead_datasource.url},
                                             "username": "admin",
                                             "password": "wrong-password", "datasources": ["tempo"], "deadline": 3,
                                             "fail_on_error": False}, capsys))
    assert_diagnosed(checks["grafana.datasources"], "unauthorized", "grafana_admin_password_file")


def test_unhealthy_datasource(grafana_with_a_dead_datasource, capsys):
    checks = by_id(run_module(grafana_info, {"service": {"url": grafana_with_a_dead_datasource.url},
                                             "username": "admin", "password": "right-password", "deadline": 1,
                                             "backoff": 0.2, "fail_on_error": False}, capsys))
    assert checks["grafana.datasource.tempo"]["status"] == "passed"
    assert_diagnosed(checks["grafana.datasource.prometheus"], "datasource_unhealthy", "grafana_prometheus_url")
    assert "Connection refused" in checks["grafana.datasource.prometheus"]["saw"]


def test_no_trace_for_an_id(capsys):
    tempo = ContractTempo()
    try:
        checks = by_id(run_module(tempo_search, {"service": {"url": tempo.url}, "traces": [{"id": "9" * 32}],
                                                 "deadline": 1, "backoff": 0.2, "fail_on_error": False}, capsys))
    finally:
        tempo.stop()
    assert checks["tempo.ready"]["status"] == "passed"
    assert_diagnosed(checks["tempo.trace.%s" % ("9" * 32)], "trace_missing", "sampling")


def test_gateway_target_down(prometheus_binary, tmp_path, capsys):
    gateway = GatewayStandIn("http://127.0.0.1:%d" % free_port(), "mock-key")
    server = PrometheusServer(prometheus_binary, tmp_path / "prom", {
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [{"job_name": "agentgateway", "static_configs": [
            {"targets": [gateway.metrics_address], "labels": GATEWAY_TARGET_LABELS}]}]})
    try:
        server.wait_for(lambda: server.query('up{job="agentgateway"} == 1'), what="gateway target up")
        gateway.stop()  # the gateway pod goes away; Prometheus' next scrape fails
        server.wait_for(lambda: server.query('up{job="agentgateway"} == 0'), what="the failed scrape")
        checks = by_id(run_module(prometheus_query, {"service": {"url": server.url}, "deadline": 1, "backoff": 0.2,
                                                     "fail_on_error": False, "targets": [{"job": "agentgateway"}]},
                                  capsys))
    finally:
        server.stop()
    assert_diagnosed(checks["prometheus.targets.agentgateway"], "target_down", "15020")
    assert "connection refused" in checks["prometheus.targets.agentgateway"]["saw"]


def test_unresolvable_service_name(capsys):
    # .invalid never resolves (RFC 6761); like a cluster-internal name seen from outside the cluster
    checks = probe(capsys, {"id": "prometheus.ready", "service": {"url": "http://prometheus-server.monitoring.invalid"},
                            "path": "/-/ready"})
    assert_diagnosed(checks["prometheus.ready"], "dns", "agw_obs_service_urls.prometheus", "agw_obs_access=proxy")
    assert checks["prometheus.ready"]["attempts"] == 1, "DNS failures are not retried"


def test_tls_error(tmp_path, capsys):
    context, _cert = self_signed_context(tmp_path)

    class Hello(JsonServer):
        def handle(self, method, path, query, headers, body):
            return 200, {"ok": True}, {}

    tls, plain = Hello(tls_context=context), Hello()
    try:
        checks = probe(capsys,
                       {"id": "grafana.untrusted", "service": {"url": tls.url}, "path": "/api/health"},
                       {"id": "grafana.wrong_scheme", "service": {"url": plain.url.replace("http:", "https:")},
                        "path": "/api/health"},
                       {"id": "grafana.insecure_ok", "service": {"url": tls.url}, "path": "/api/health",
                        "deadline": 3})
        insecure = probe(capsys, {"id": "grafana.insecure", "service": {"url": tls.url}, "path": "/api/health"},
                         validate_certs=False)
    finally:
        tls.stop()
        plain.stop()
    assert_diagnosed(checks["grafana.untrusted"], "tls", "ca_path")
    assert "CERTIFICATE_VERIFY_FAILED" in checks["grafana.untrusted"]["saw"]
    assert_diagnosed(checks["grafana.wrong_scheme"], "tls", "scheme matches the port")
    assert insecure["grafana.insecure"]["status"] == "passed"


def test_endpoint_slower_than_the_deadline(capsys):
    class Slow(JsonServer):
        def handle(self, method, path, query, headers, body):
            return 200, "late", {}

    slow = Slow()
    slow.delay = 4
    try:
        checks = probe(capsys, {"id": "tempo.ready", "service": {"url": slow.url}, "path": "/ready"}, deadline=1.0,
                       timeout=30)
    finally:
        slow.stop()
    # the deadline (1 s) wins over the 30 s per-attempt timeout: the answer after 4 s is never read
    assert_diagnosed(checks["tempo.ready"], "timeout", "verification_deadline")
