"""Unit tests of the MCP client (module_utils/mcp_client.py): answers as JSON or SSE, the session's headers,
notifications, errors by kind, and the probe's session as steps."""

from __future__ import annotations

import json

import pytest

from ansible_collections.agentgateway.observability.plugins.module_utils import mcp_client
from ansible_collections.agentgateway.observability.plugins.module_utils.http_client import HttpError


class Answer(object):
    def __init__(self, status=200, body=b"", headers=None, url="http://gw/mcp"):
        self.status, self.url = status, url
        self.headers = {k.lower(): v for k, v in (headers or {}).items()}
        self.body = body if isinstance(body, bytes) else body.encode()

    def read(self):
        return self.body


def jsonrpc(message_id, result=None, error=None, sse=False, headers=None):
    answer = {"jsonrpc": "2.0", "id": message_id}
    answer.update({"error": error} if error else {"result": result})
    if sse:
        note = json.dumps({"jsonrpc": "2.0", "method": "notifications/progress", "params": {}})
        return Answer(200, "event: message\ndata: %s\n\ndata: %s\n\n" % (note, json.dumps(answer)),
                      dict(headers or {}, **{"Content-Type": "text/event-stream"}))
    return Answer(200, json.dumps(answer), dict(headers or {}, **{"Content-Type": "application/json"}))


class Client(object):
    """Answers from a script (a function of the sent message), and records what was sent."""

    def __init__(self, script):
        self.script, self.sent = script, []

    def request(self, method, path, json_body=None, headers=None, timeout=None):
        self.sent.append((method, path, json_body, dict(headers or {})))
        answer = self.script(method, json_body)
        if isinstance(answer, Exception):
            raise answer
        return answer


INIT = {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "agentgateway"}}
TOOLS = {"tools": [{"name": "echo"}, {"name": "add"}, {"name": "fail"}]}


def gateway(method, body, fail=None):
    """A gateway-like script: SSE answers, a session id, 202 for notifications."""
    if method == "DELETE":
        return Answer(200)
    if "id" not in body:
        return Answer(202)
    name = body["method"]
    if name == "initialize":
        return jsonrpc(body["id"], INIT, sse=True, headers={"Mcp-Session-Id": "s-1"})
    if name == "tools/list":
        return jsonrpc(body["id"], TOOLS, sse=True)
    if body["params"]["name"] == "fail":
        return fail or jsonrpc(body["id"], error={"code": -32603, "message": "Tool fail failed"}, sse=True)
    return jsonrpc(body["id"], {"content": [{"type": "text", "text": body["params"]["arguments"]["text"]}]}, sse=True)


def test_parse_messages_json_and_sse():
    assert mcp_client.parse_messages("application/json; charset=utf-8", b'{"id": 1}') == [{"id": 1}]
    assert mcp_client.parse_messages("application/json", b'[{"id": 1}, {"id": 2}]') == [{"id": 1}, {"id": 2}]
    sse = "event: message\nid: 7\ndata: {\"id\": 1,\ndata:  \"result\": {}}\n\ndata: {\"id\": 2}\n"
    assert mcp_client.parse_messages("text/event-stream", sse) == [{"id": 1, "result": {}}, {"id": 2}]
    for content_type, body, needle in (("text/html", b"<p>", "unexpected Content-Type"),
                                       ("application/json", b"{", "not JSON"),
                                       ("text/event-stream", "data: {\n\n", "not JSON")):
        with pytest.raises(mcp_client.McpError, match=needle) as info:
            mcp_client.parse_messages(content_type, body)
        assert info.value.kind == "protocol"


def test_find_answer_skips_notifications_and_other_ids():
    messages = [{"jsonrpc": "2.0", "method": "notifications/progress"}, {"id": 2, "result": {}},
                {"id": 1, "error": {"code": 1}}]
    assert mcp_client.find_answer(messages, 1) == {"id": 1, "error": {"code": 1}}
    with pytest.raises(mcp_client.McpError, match="no answer with id 3 among 3"):
        mcp_client.find_answer(messages, 3)


def test_a_session_carries_its_id_and_version_after_initialize():
    client = Client(gateway)
    session = mcp_client.McpSession(client, "/mcp", headers={"x-team": "a"})
    result = session.initialize()
    assert result["protocolVersion"] == "2025-06-18" and session.session_id == "s-1"
    assert session.list_tools() == ["echo", "add", "fail"]
    answer = session.call_tool("echo", {"text": "hi"})
    assert mcp_client.result_text(answer) == "hi"
    session.close()
    (m1, _p1, init, h1), (_m2, _p2, note, h2), (_m3, _p3, listed, h3) = client.sent[:3]
    assert init["method"] == "initialize" and init["params"]["protocolVersion"] == "2025-06-18"
    assert h1["Accept"] == "application/json, text/event-stream" and h1["x-team"] == "a"
    assert "Mcp-Session-Id" not in h1 and "MCP-Protocol-Version" not in h1
    assert note == {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert h2["Mcp-Session-Id"] == h3["Mcp-Session-Id"] == "s-1" and h3["MCP-Protocol-Version"] == "2025-06-18"
    assert client.sent[-1][0] == "DELETE" and client.sent[-1][3]["Mcp-Session-Id"] == "s-1"
    assert [(c["method"], c["outcome"]) for c in session.calls] == [
        ("initialize", "ok"), ("notifications/initialized", "accepted"), ("tools/list", "ok"), ("tools/call", "ok")]
    assert len({body["id"] for _m, _p, body, _h in client.sent if body and "id" in body}) == 3, "ids are unique"


def test_errors_by_kind():
    session = mcp_client.McpSession(Client(gateway), "/mcp")
    session.initialize()
    with pytest.raises(mcp_client.McpError) as info:
        session.call_tool("fail")
    assert info.value.kind == "jsonrpc" and info.value.code == -32603
    assert session.calls[-1]["outcome"] == "tool_error" and session.calls[-1]["tool"] == "fail"

    refused = mcp_client.McpSession(Client(lambda m, b: HttpError("connection_refused", "refused")), "/mcp")
    with pytest.raises(mcp_client.McpError) as info:
        refused.initialize()
    assert info.value.kind == "transport" and mcp_client.error_cause(info.value) == "connection_refused"

    not_found = mcp_client.McpSession(Client(lambda m, b: Answer(404, "no route")), "/mcp")
    with pytest.raises(mcp_client.McpError) as info:
        not_found.initialize()
    assert info.value.kind == "http" and info.value.status == 404 and "no route" in str(info.value)
    assert mcp_client.error_cause(info.value) == "not_found"
    assert not_found.calls == [dict(not_found.calls[0], method="initialize", outcome="failed", status=404)]


def test_initialize_must_answer_a_version_and_notifications_202():
    bad = mcp_client.McpSession(Client(lambda m, b: jsonrpc(b["id"], {"capabilities": {}})), "/mcp")
    with pytest.raises(mcp_client.McpError, match="lacks protocolVersion") as info:
        bad.initialize()
    assert mcp_client.error_cause(info.value) == "invalid_response"
    chatty = mcp_client.McpSession(Client(lambda m, b: jsonrpc(b.get("id"), INIT)), "/mcp")
    with pytest.raises(mcp_client.McpError, match="notification must be answered 202"):
        chatty.initialize()


@pytest.mark.parametrize("fail,tools,ok,cause,failed_step", [
    (None, [{"name": "echo", "arguments": {"text": "run-1"}, "text_regex": "^run-1$"},
            {"name": "fail", "expect_error": True}], True, None, None),
    (None, [{"name": "echo", "arguments": {"text": "run-1"}, "text_regex": "^other$"}], False, "expectation",
     "tools_call.echo"),
    (None, [{"name": "nope"}], False, "expectation", "tools_list"),
    ("result", [{"name": "fail", "expect_error": True}], False, "expectation", "tools_call.fail"),
    (None, [{"name": "fail"}], False, "expectation", "tools_call.fail"),
])
def test_probe_session_steps(fail, tools, ok, cause, failed_step):
    answer = (lambda b: jsonrpc(b["id"], {"content": [{"type": "text", "text": "x"}], "isError": True})) \
        if fail == "result" else (lambda b: None)

    def script(method, body):
        return gateway(method, body, fail=answer(body) if body and "id" in body else None)

    passed, got_cause, saw, steps = mcp_client.run_probe_session(mcp_client.McpSession(Client(script), "/mcp"), tools)
    assert (passed, got_cause) == (ok, cause), saw
    assert steps["initialize"]["ok"] and "session id given" in steps["initialize"]["saw"]
    if failed_step:
        assert steps[failed_step]["ok"] is False and failed_step.split(".")[-1] in saw.replace("/", "_")
    else:
        assert "as expected" in steps["tools_call.fail"]["saw"]


def test_probe_session_stops_at_a_failed_initialize():
    session = mcp_client.McpSession(Client(lambda m, b: Answer(503, "upstream down")), "/mcp")
    passed, cause, saw, steps = mcp_client.run_probe_session(session, [{"name": "echo"}])
    assert not passed and cause == "server_error" and list(steps) == ["initialize"] and "503" in saw
