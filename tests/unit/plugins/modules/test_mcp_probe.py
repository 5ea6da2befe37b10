"""Unit tests of the mcp_probe module: one MCP session as checks, against a gateway-like stand-in on loopback
(unit.plugins.modules.fake_gateway: SSE answers, its own session id). The real mock MCP server (WireMock) is
probed in tests/functional/test_verification_modules.py."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.agentgateway.observability.plugins.modules import mcp_probe as mod
from support.services import free_port

TOOLS = [{"name": "echo", "arguments": {"text": "run-42"}, "text_regex": "^run-42$"},
         {"name": "fail", "expect_error": True}]


def run(args, capsys):
    base = {"id_prefix": "gateway.mcp", "title": "The gateway's MCP route", "deadline": 3, "backoff": 0.05,
            "tools": TOOLS, "fail_on_error": False}
    with patch_module_args(dict(base, **args)):
        with pytest.raises(SystemExit):
            mod.main()
    return json.loads(capsys.readouterr().out)


def test_every_step_passes_and_is_reported(fake_gateway, capsys):
    server = fake_gateway()
    out = run({"service": {"url": server.url}}, capsys)
    assert out["passed"] is True and out["changed"] is False
    assert [c["id"] for c in out["checks"]] == ["gateway.mcp.initialize", "gateway.mcp.tools_list",
                                                "gateway.mcp.tools_call.echo", "gateway.mcp.tools_call.fail"]
    assert all(c["status"] == "passed" and c["service"] == "gateway" for c in out["checks"])
    assert "session id given" in out["checks"][0]["saw"] and "as expected" in out["checks"][3]["saw"]
    assert out["session"]["session_id_given"] is True and out["session"]["server_info"] == {"name": "agentgateway"}
    assert server.mcp_methods() == ["initialize", "notifications/initialized", "tools/list", "tools/call",
                                    "tools/call", "DELETE"]


def test_json_answers_work_too(fake_gateway, capsys):
    assert run({"service": {"url": fake_gateway(json_answers=True).url}}, capsys)["passed"] is True


def test_a_result_where_an_error_was_expected_fails_with_the_step(fake_gateway, capsys):
    out = run({"service": {"url": fake_gateway(fail_tool_result=True).url}, "deadline": 0.5}, capsys)
    checks = {c["id"]: c for c in out["checks"]}
    assert out["passed"] is False and checks["gateway.mcp.tools_call.echo"]["status"] == "passed"
    failed = checks["gateway.mcp.tools_call.fail"]
    assert failed["status"] == "failed" and failed["cause"] == "expectation"
    assert "where a JSON-RPC error was expected" in failed["saw"] and failed["attempts"] >= 1


def test_no_route_fails_initialize_with_the_given_fix_and_skips_the_rest(fake_gateway, capsys):
    out = run({"service": {"url": fake_gateway(mcp_status=404).url}, "deadline": 0.3,
               "fixes": {"not_found": "check HTTPRoute mock-openai-mcp"}}, capsys)
    first = out["checks"][0]
    assert first["status"] == "failed" and first["cause"] == "not_found"
    assert first["fix"] == "check HTTPRoute mock-openai-mcp"
    assert [c["status"] for c in out["checks"][1:]] == ["skipped"] * 3


def test_connection_refused_and_fail_on_error(capsys):
    out = run({"service": {"url": "http://127.0.0.1:%d" % free_port()}, "deadline": 0.2, "fail_on_error": True},
              capsys)
    assert out["failed"] is True and "gateway.mcp.initialize (connection_refused)" in out["msg"]


def test_check_mode_sends_nothing(fake_gateway, capsys):
    server = fake_gateway()
    out = run({"service": {"url": server.url}, "_ansible_check_mode": True}, capsys)
    assert [c["status"] for c in out["checks"]] == ["skipped"] * 4 and server.requests == []
    assert "not sent in check mode" in out["checks"][0]["saw"]


def test_bad_path(capsys):
    out = run({"service": {"url": "http://x"}, "path": "mcp"}, capsys)
    assert out["failed"] is True and "path must start with /" in out["msg"]
