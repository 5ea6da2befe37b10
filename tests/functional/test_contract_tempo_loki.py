"""CONTRACT TESTS of tempo_search and loki_query: local servers implementing Tempo's and Loki's documented APIs.

Tempo and Loki cannot run here. ContractTempo and ContractLoki (tests/support/contract.py) answer
in the shapes of Tempo's API reference (trace by id v1/v2, TraceQL search, /ready) and Loki's HTTP
API reference (query_range streams, /ready). These tests prove the modules' logic against that
contract, never Tempo or Loki themselves.
"""

from __future__ import annotations

import pytest

from ansible_collections.agentgateway.observability.plugins.modules import loki_query, tempo_search
from support.contract import ContractLoki, ContractTempo
from support.modules import by_id, run_module

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
OTHER = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture()
def tempo():
    server = ContractTempo()
    server.ingest(TRACE, "1" * 16, "2" * 16, "POST /v1/*", {
        "gen_ai.request.model": "gpt-4", "gen_ai.usage.input_tokens": 25, "gen_ai.usage.output_tokens": 12,
        "llm.cost.total_usd": 0.00147}, {"service.name": "agentgateway-proxy"})
    server.ingest(OTHER, "3" * 16, None, "GET /healthz", {"http.route": "/healthz"}, {"service.name": "other"})
    yield server
    server.stop()


def tempo_run(server, capsys, **args):
    base = {"service": {"url": server.url}, "deadline": 5, "backoff": 0.2, "fail_on_error": False}
    base.update(args)
    return run_module(tempo_search, base, capsys)


@pytest.mark.parametrize("api_version", ["v2", "v1"])
def test_trace_by_id_with_genai_attributes(tempo, capsys, api_version):
    result = tempo_run(tempo, capsys, api_version=api_version, traces=[{"id": TRACE.upper(), "attributes": {
        "gen_ai.request.model": "gpt-4", "gen_ai.usage.input_tokens": "25", "gen_ai.usage.output_tokens": "*",
        "resource.service.name": "agentgateway-proxy"}}])
    checks = by_id(result)
    assert result["passed"], result["checks"]
    assert result["traces"][TRACE]["attributes"]["gen_ai.usage.input_tokens"] == 25, "intValue (a string) -> int"
    assert "gen_ai.request.model=gpt-4" in checks["tempo.trace.%s" % TRACE]["saw"]
    assert any(path.startswith("/api/%straces/" % ("v2/" if api_version == "v2" else "")) for _m, path, _h in
               tempo.calls)


def test_missing_attribute_and_missing_trace(tempo, capsys):
    checks = by_id(tempo_run(tempo, capsys, deadline=1,
                             traces=[{"id": OTHER, "attributes": {"gen_ai.request.model": "*"}}]))
    checks.update(by_id(tempo_run(tempo, capsys, deadline=1, traces=[{"id": "ab" * 16}])))
    missing = checks["tempo.trace.%s" % OTHER]
    assert missing["cause"] == "attribute_missing" and "gen_ai.request.model=* (span has None)" in missing["saw"]
    absent = checks["tempo.trace.%s" % ("ab" * 16)]
    assert absent["cause"] == "trace_missing" and absent["attempts"] > 1 and "gateway_observability_tracing" in \
        absent["fix"]


def test_traceql_search(tempo, capsys):
    found = by_id(tempo_run(tempo, capsys, query='{ span.gen_ai.request.model = "gpt-4" }', expect_trace_ids=[TRACE]))
    assert found["tempo.search"]["status"] == "passed" and "1 trace(s)" in found["tempo.search"]["saw"]
    none = by_id(tempo_run(tempo, capsys, deadline=1, query='{ span.gen_ai.request.model = "claude" }'))
    assert none["tempo.search"]["cause"] == "trace_missing"


def test_a_bad_trace_id_is_refused_before_any_request(tempo, capsys):
    result = tempo_run(tempo, capsys, traces=[{"id": "not-hex"}])
    assert result["failed"] and "not a trace id" in result["msg"] and tempo.calls == []


@pytest.fixture()
def loki():
    server = ContractLoki()
    server.push({"service_name": "agentgateway-proxy"}, '{"http.status": 200, "llm.request_model": "gpt-4"}',
                {"trace_id": TRACE})
    yield server
    server.stop()


def test_log_lines_by_trace_id_and_tenant(loki, capsys):
    result = run_module(loki_query, {"service": {"url": loki.url}, "tenant": "team-a", "deadline": 1, "backoff": 0.2,
                                     "fail_on_error": False, "queries": [
                                         {"id": "hit", "query": '{service_name=~".+"} | trace_id="%s"' % TRACE},
                                         {"id": "line", "query": '{service_name="agentgateway-proxy"} |= "gpt-4"'},
                                         {"id": "miss", "query": '{service_name=~".+"} | trace_id="%s"' % OTHER}]},
                        capsys)
    checks = by_id(result)
    assert checks["loki.ready"]["status"] == checks["hit"]["status"] == checks["line"]["status"] == "passed"
    assert result["lines"]["hit"]["lines"] == 1
    assert checks["miss"]["cause"] == "logs_missing" and "gateway_observability_loki_enabled" in checks["miss"]["fix"]
    tenants = {h.get("X-Scope-OrgID") for _m, path, h in loki.calls if path == "/loki/api/v1/query_range"}
    assert tenants == {"team-a"}
