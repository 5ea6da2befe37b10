"""CONTRACT TESTS of tempo_search and loki_query: local servers implementing Tempo's and Loki's documented APIs.

Tempo and Loki cannot run here. ContractTempo and ContractLoki (tests/support/contract.py) answer
in the shapes of Tempo's API reference (trace by id v1/v2, TraceQL search, /ready) and Loki's HTTP
API reference (query_range streams, /ready), Loki's refusal of a selector whose matchers all match
the empty string, and its storage of an OTLP log record without a body (an empty line, the fields as
structured metadata). These tests prove the modules' logic against that contract, never Tempo or Loki
themselves.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

import pytest

from ansible_collections.agentgateway.observability.plugins.modules import loki_query, tempo_search
from support.contract import LOKI_EMPTY_COMPATIBLE, ContractLoki, ContractTempo
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
    """An access log record as the proxy sends it over OTLP and Loki stores it: no body, so an empty line; the
    record's attributes (dots made underscores) and trace context as structured metadata."""
    server = ContractLoki()
    server.push({"service_name": "agentgateway-proxy", "service_namespace": "agentgateway-system"}, "",
                {"trace_id": TRACE, "span_id": "1" * 16, "http_status": 200, "gen_ai_request_model": "gpt-4",
                 "llm_request_model": "gpt-4", "severity_text": "INFO"})
    yield server
    server.stop()


def loki_run(server, capsys, queries, **args):
    base = {"service": {"url": server.url}, "deadline": 1, "backoff": 0.2, "fail_on_error": False, "queries": queries}
    base.update(args)
    return run_module(loki_query, base, capsys)


def test_log_lines_by_trace_id_and_tenant(loki, capsys):
    result = loki_run(loki, capsys, tenant="team-a", queries=[
        {"id": "hit", "query": '{service_name=~".+"} | trace_id="%s"' % TRACE},
        {"id": "metadata", "query": '{service_name="agentgateway-proxy"} | llm_request_model="gpt-4"'},
        {"id": "miss", "query": '{service_name=~".+"} | trace_id="%s"' % OTHER}])
    checks = by_id(result)
    assert checks["loki.ready"]["status"] == checks["hit"]["status"] == checks["metadata"]["status"] == "passed"
    assert result["lines"]["hit"]["lines"] == 1
    sample = result["lines"]["hit"]["sample"][0]
    assert sample["line"] == "" and sample["stream"]["trace_id"] == TRACE, "metadata comes back with the stream"
    assert checks["miss"]["cause"] == "logs_missing" and "gateway_observability_loki_enabled" in checks["miss"]["fix"]
    tenants = {h.get("X-Scope-OrgID") for _m, path, h in loki.calls if path == "/loki/api/v1/query_range"}
    assert tenants == {"team-a"}


def test_a_line_filter_finds_nothing_in_an_empty_line(loki, capsys):
    """The record's fields are no part of its line: a line filter for one of them finds nothing, as in Loki."""
    checks = by_id(loki_run(loki, capsys, queries=[
        {"id": "line", "query": '{service_name="agentgateway-proxy"} |= "gpt-4"'},
        {"id": "not-line", "query": '{service_name="agentgateway-proxy"} != "gpt-4"'}]))
    assert checks["line"]["cause"] == "logs_missing" and "0 line(s)" in checks["line"]["saw"]
    assert checks["not-line"]["status"] == "passed"


@pytest.mark.parametrize("selector, refused", [
    ('{x=~".*"}', True), ('{service_name!="other"}', True), ('{service_name=""}', True),
    ('{service_name=~".+"}', False), ('{service_name!=""}', False), ('{service_name=~".+", x=~".*"}', False)])
def test_loki_refuses_a_selector_whose_matchers_all_match_the_empty_string(loki, capsys, selector, refused):
    """pkg/logql/syntax/parser.go validateMatchers: at least one matcher that does not match "" (Grafana's "All"
    is .* and fails there, .+ does not)."""
    url = "%s/loki/api/v1/query_range?%s" % (loki.url, urllib.parse.urlencode({"query": selector}))
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            status, body = response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read().decode()
    if refused:
        assert (status, body) == (400, LOKI_EMPTY_COMPATIBLE)
        check = by_id(loki_run(loki, capsys, queries=[{"id": "all", "query": selector}]))["all"]
        assert check["status"] == "failed" and "empty-compatible value" in check["saw"]
    else:
        assert status == 200 and json.loads(body)["status"] == "success"
