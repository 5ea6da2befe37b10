"""Unit tests of the mock MCP server's WireMock mappings (plugin_utils/wiremock_mcp.py) and their filter.

The real WireMock serving them is driven by tests/functional/test_mock_backend.py.
"""

from __future__ import annotations

import json
import re

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.agentgateway.observability.plugins.filter.wiremock import FilterModule
from ansible_collections.agentgateway.observability.plugins.plugin_utils import wiremock_mcp
from ansible_collections.agentgateway.observability.plugins.plugin_utils.wiremock import MappingError


def _by_name(doc):
    return {m["name"]: m for m in doc["mappings"]}


def _fill(template, request):
    """Render the Handlebars helpers the templates use against ``request`` (a JSON-RPC message)."""
    def json_path(path):
        node = request
        for key in path.lstrip("$.").split("."):
            node = node.get(key, "") if isinstance(node, dict) else ""
        return node

    text = re.sub(r"\{\{toJson \(jsonPath request\.body '([^']+)'\)\}\}", lambda m: json.dumps(json_path(m.group(1))),
                  template)
    text = re.sub(r"\{\{math \(jsonPath request\.body '([^']+)'\) '\+' \(jsonPath request\.body '([^']+)'\)\}\}",
                  lambda m: str(json_path(m.group(1)) + json_path(m.group(2))), text)
    return re.sub(r"\{\{jsonPath request\.body '([^']+)'\}\}", lambda m: str(json_path(m.group(1))), text)


MAPPINGS = wiremock_mcp.mcp_mappings("/mcp", delay_ms=25)
STUBS = _by_name(MAPPINGS)


def test_every_stub_is_a_post_get_or_delete_of_the_one_path():
    for stub in MAPPINGS["mappings"]:
        assert stub["request"]["urlPath"] == "/mcp", stub["name"]
        assert stub["request"]["method"] in ("POST", "GET", "DELETE")
    assert STUBS["mcp get stream"]["response"]["status"] == 405
    assert STUBS["mcp end session"]["response"]["status"] == 200


def test_templates_never_contain_a_triple_brace_and_are_transformed():
    for stub in MAPPINGS["mappings"]:
        body = stub["response"].get("body") or ""
        assert "}}}" not in body, stub["name"]
        if "{{" in body:
            assert stub["response"]["transformers"] == ["response-template"], stub["name"]


def test_initialize_echoes_a_supported_version_and_issues_a_session():
    supported, other = STUBS["mcp initialize (supported version)"], STUBS["mcp initialize (other version)"]
    assert supported["priority"] < other["priority"]
    pattern = supported["request"]["bodyPatterns"][1]["matchesJsonPath"]["matches"]
    assert all(re.match(pattern, v) for v in wiremock_mcp.PROTOCOL_VERSIONS) and not re.match(pattern, "2099-01-01")
    request = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-03-26"}}
    answer = json.loads(_fill(supported["response"]["body"], request))
    assert answer["id"] == 0 and answer["result"]["protocolVersion"] == "2025-03-26"
    assert answer["result"]["capabilities"] == {"tools": {"listChanged": False}}
    assert answer["result"]["serverInfo"]["name"] == wiremock_mcp.SERVER_NAME
    newest = json.loads(_fill(other["response"]["body"], dict(request, id="a")))
    assert newest["id"] == "a" and newest["result"]["protocolVersion"] == "2025-06-18"
    for stub in (supported, other):
        assert stub["response"]["headers"][wiremock_mcp.SESSION_HEADER].startswith("mock-{{randomValue")
        assert stub["response"]["fixedDelayMilliseconds"] == 25


def test_transport_rules_come_first():
    """406 for a wrong Accept, 415 for a body that is not JSON, 400 without a session after initialize."""
    first = [s for s in MAPPINGS["mappings"] if s["priority"] == 1]
    assert {s["response"]["status"] for s in first} == {406, 415}
    accept = [s["request"]["headers"]["Accept"] for s in first if "Accept" in s["request"]["headers"]]
    assert {"absent": True} in accept and len(accept) == 3
    session = STUBS["mcp session missing (request)"]
    assert session["request"]["headers"] == {wiremock_mcp.SESSION_HEADER: {"absent": True}}
    assert session["request"]["bodyPatterns"][0]["matchesJsonPath"]["doesNotMatch"] == "^initialize$"
    assert json.loads(_fill(session["response"]["body"], {"id": 7}))["error"]["code"] == -32600
    assert all(s["priority"] < STUBS["mcp tools/list"]["priority"]
               for s in (session, STUBS["mcp session missing (notification)"]))


def test_notifications_are_accepted_without_a_body():
    stub = STUBS["mcp notification"]
    assert stub["response"]["status"] == 202 and "body" not in stub["response"]


def test_tools_list_and_calls():
    listed = json.loads(_fill(STUBS["mcp tools/list"]["response"]["body"], {"id": 2}))
    assert [t["name"] for t in listed["result"]["tools"]] == ["echo", "add", "fail"]
    assert all(t["inputSchema"]["type"] == "object" for t in listed["result"]["tools"])
    echo = json.loads(_fill(STUBS["mcp tools/call echo"]["response"]["body"],
                            {"id": 3, "params": {"name": "echo", "arguments": {"text": 'a "quoted" {{x}}'}}}))
    assert echo["result"] == {"content": [{"type": "text", "text": 'a "quoted" {{x}}'}], "isError": False}
    added = json.loads(_fill(STUBS["mcp tools/call add"]["response"]["body"],
                             {"id": 4, "params": {"arguments": {"a": 2, "b": 40}}}))
    assert added["result"]["content"][0]["text"] == "42"


def test_the_failing_tool_answers_a_jsonrpc_error():
    stub = STUBS["mcp tools/call %s" % wiremock_mcp.FAILING_TOOL]
    answer = json.loads(_fill(stub["response"]["body"], {"id": "x"}))
    assert stub["response"]["status"] == 200 and answer["id"] == "x"
    assert answer["error"]["code"] == -32603 and "result" not in answer


def test_bad_calls_and_unknown_methods():
    invalid = STUBS["mcp tools/call echo invalid arguments"]
    assert invalid["priority"] > STUBS["mcp tools/call echo"]["priority"]
    assert json.loads(_fill(invalid["response"]["body"], {"id": 1}))["error"]["code"] == -32602
    unknown = json.loads(_fill(STUBS["mcp tools/call unknown tool"]["response"]["body"],
                               {"id": 1, "params": {"name": "nope"}}))
    assert unknown["error"] == {"code": -32602, "message": "Unknown tool: nope"}
    missing = json.loads(_fill(STUBS["mcp method not found"]["response"]["body"], {"id": 1, "method": "resources/list"}))
    assert missing["error"]["code"] == -32601
    assert "fail invalid arguments" not in " ".join(STUBS), "fail takes no arguments"
    assert max(s["priority"] for s in MAPPINGS["mappings"]) == STUBS["mcp method not found"]["priority"]


@pytest.mark.parametrize("kwargs,needle", [
    ({"path": "mcp"}, "path must be a URL path"), ({"path": "/mcp/"}, "path must be a URL path"),
    ({"delay_ms": -1}, "delay_ms"), ({"delay_ms": True}, "delay_ms"), ({"server_name": 'a"b'}, "server_name"),
])
def test_bad_input(kwargs, needle):
    with pytest.raises(MappingError, match=needle):
        wiremock_mcp.mcp_mappings(**kwargs)


def test_filter_and_json():
    mcp = FilterModule().filters()["wiremock_mcp_mappings"]
    assert mcp("/tools", delay_ms=0)["mappings"][0]["request"]["urlPath"] == "/tools"
    assert "fixedDelayMilliseconds" not in json.dumps(mcp("/tools"))
    with pytest.raises(AnsibleFilterError, match="wiremock_mcp_mappings: path"):
        mcp("tools")
    text = wiremock_mcp.mcp_mappings_json("/mcp")
    assert text == wiremock_mcp.mcp_mappings_json("/mcp") and text.endswith("\n")
    assert json.loads(text) == wiremock_mcp.mcp_mappings("/mcp")
