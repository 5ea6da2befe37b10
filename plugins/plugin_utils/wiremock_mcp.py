# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""WireMock stub mappings of a mock MCP server on the streamable HTTP transport (pure, no I/O).

``mcp_mappings(path, ...)`` returns the ``{"mappings": [...]}`` document WireMock 3 loads from
``<root>/mappings/*.json``, beside the OpenAI mappings of wiremock.py. It follows the MCP
specification 2025-06-18, "Transports" (streamable HTTP) and "Lifecycle":

* every JSON-RPC message is a ``POST`` to one path (``/mcp``); the client must accept both
  ``application/json`` and ``text/event-stream`` (``406`` otherwise) and send ``application/json``
  (``415`` otherwise). Every answer here is a single ``application/json`` message, which the
  transport allows in place of an SSE stream;
* ``initialize`` answers ``protocolVersion`` (the client's when it is one of
  ``PROTOCOL_VERSIONS``, else the newest), ``capabilities.tools``, ``serverInfo`` and an
  ``Mcp-Session-Id`` header; every later request without that header gets ``400`` (a server
  that issues session ids "SHOULD" do so). The mock keeps no state: any session id is accepted;
* notifications (``notifications/initialized``, ...) get ``202 Accepted`` without a body;
* ``tools/list`` lists ``echo`` (returns its ``text``), ``add`` (returns ``a + b``) and ``fail``;
  ``tools/call`` runs them. ``fail`` answers a JSON-RPC error (``-32603``), not a result with
  ``isError: true``: agentgateway v1.4.1 records a JSON-RPC error of a tool call as the request's
  MCP error (crates/agentgateway/src/mcp/handler.rs@v1.4.1 ``capture_terminal_mcp_payload`` ->
  ``MCPInfo::capture_error``; telemetry/log.rs@v1.4.1 logs it as ``mcp.error.code`` and
  ``mcp.error.message``), while an ``isError`` result is recorded like any other tool result.
  Unknown tools and missing arguments get ``-32602``, unknown methods ``-32601``, ``ping`` ``{}``;
* ``GET`` answers ``405`` (the server offers no SSE stream, which the transport allows) and
  ``DELETE`` (the client ends its session) ``200``.

Responses echo the request's ``id`` with WireMock's ``toJson`` helper, so a number stays a number
and a string stays a string. No template may contain ``}}}`` (WireMock's Handlebars reads it as
the end of a triple-stash), so every generated template is checked for that.
"""

from __future__ import annotations

import json
import re

from ansible_collections.agentgateway.observability.plugins.plugin_utils.wiremock import MappingError

PROTOCOL_VERSIONS = ("2025-06-18", "2025-03-26", "2024-11-05")
SESSION_HEADER = "Mcp-Session-Id"
SERVER_NAME = "agentgateway-observability-mock-mcp"
SERVER_VERSION = "1.0.0"
FAILING_TOOL = "fail"

TOOLS = (
    {"name": "echo", "title": "Echo",
     "description": "Returns the text it is given (mock MCP server of agentgateway.observability).",
     "inputSchema": {"type": "object", "properties": {"text": {"type": "string", "description": "Text to return."}},
                     "required": ["text"]}},
    {"name": "add", "title": "Add",
     "description": "Adds two numbers and returns the sum as text.",
     "inputSchema": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                     "required": ["a", "b"]}},
    {"name": FAILING_TOOL, "title": "Fail",
     "description": "Always fails with a JSON-RPC error (the mock's injected tool failure).",
     "inputSchema": {"type": "object", "properties": {}}},
)
TOOL_NAMES = tuple(tool["name"] for tool in TOOLS)

_PATH = re.compile(r"^/[A-Za-z0-9._~/-]*[A-Za-z0-9._~-]$")
_ID = "{{toJson (jsonPath request.body '$.id')}}"
_ARG = "{{toJson (jsonPath request.body '$.params.arguments.%s')}}"
_JSON = {"Content-Type": "application/json"}


def _json(value):
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _check_template(text, where):
    if "}}}" in text:
        raise MappingError("%s: template contains '}}}' which WireMock cannot parse" % where)
    return text


def _jsonrpc(payload_key, payload_text, where):
    """A JSON-RPC answer echoing the request's id; ``payload_text`` is JSON text (templates allowed)."""
    return _check_template('{"jsonrpc":"2.0","id":%s,"%s":%s }' % (_ID, payload_key, payload_text), where)


def _error_text(code, message):
    return '{"code":%d,"message":%s }' % (code, message)


def _response(status, body=None, headers=None, delay=None, template=False):
    response = dict(delay or {}, status=status, headers=dict(_JSON if body is not None else {}, **(headers or {})))
    if body is not None:
        response["body"] = body
    if template:
        response["transformers"] = ["response-template"]
    return response


def _method(name):
    return {"matchesJsonPath": {"expression": "$.method", "equalTo": name}}


def _tool(name):
    return {"matchesJsonPath": {"expression": "$.params.name", "equalTo": name}}


def _has(path):
    return {"matchesJsonPath": path}


def mcp_mappings(path="/mcp", delay_ms=0, server_name=SERVER_NAME):
    """The WireMock mappings of the mock MCP server at ``path`` (see the module docstring)."""
    if not isinstance(path, str) or not _PATH.match(path):
        raise MappingError("path must be a URL path such as /mcp (not ending in /), got %r" % (path,))
    if isinstance(delay_ms, bool) or not isinstance(delay_ms, int) or delay_ms < 0:
        raise MappingError("delay_ms must be an integer >= 0 (milliseconds), got %r" % (delay_ms,))
    if not isinstance(server_name, str) or not server_name or '"' in server_name or "{" in server_name:
        raise MappingError("server_name must be a non-empty name without quotes or braces, got %r" % (server_name,))
    delay = {"fixedDelayMilliseconds": delay_ms} if delay_ms else {}
    post = {"method": "POST", "urlPath": path}
    mappings = []

    def add(name, priority, request, response):
        mappings.append({"name": "mcp %s" % name, "priority": priority, "request": request, "response": response})

    # 1. transport rules: Accept must list both types, the body must be JSON
    not_acceptable = _response(406, _json({"jsonrpc": "2.0", "id": None, "error": {
        "code": -32600, "message": "Not Acceptable: the client must accept both application/json and "
                                   "text/event-stream"}}))
    add("accept missing", 1, dict(post, headers={"Accept": {"absent": True}}), not_acceptable)
    for kind in ("application/json", "text/event-stream"):
        add("accept without %s" % kind, 1,
            dict(post, headers={"Accept": {"doesNotMatch": ".*%s.*" % re.escape(kind)}}), not_acceptable)
    unsupported = _response(415, _json({"jsonrpc": "2.0", "id": None, "error": {
        "code": -32700, "message": "Unsupported Media Type: the body must be application/json"}}))
    add("content type missing", 1, dict(post, headers={"Content-Type": {"absent": True}}), unsupported)
    add("content type", 1, dict(post, headers={"Content-Type": {"doesNotMatch": "^application/json.*"}}), unsupported)

    # 2. a session is needed after initialize (the mock accepts any id; it keeps no state)
    missing = "Bad Request: the %s header is required after initialize" % SESSION_HEADER
    not_initialize = {"matchesJsonPath": {"expression": "$.method", "doesNotMatch": "^initialize$"}}
    no_session = {SESSION_HEADER: {"absent": True}}
    add("session missing (request)", 2,
        dict(post, headers=no_session, bodyPatterns=[not_initialize, _has("$.id")]),
        _response(400, _jsonrpc("error", _error_text(-32600, _json(missing)), "session missing"), template=True))
    add("session missing (notification)", 3, dict(post, headers=no_session, bodyPatterns=[not_initialize]),
        _response(400, _json({"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": missing}})))

    # 3. lifecycle
    session = {SESSION_HEADER: "mock-{{randomValue type='UUID'}}"}

    def initialize_result(version_text):
        return _jsonrpc("result", '{"protocolVersion":%s,"capabilities":{"tools":{"listChanged":false} },'
                                  '"serverInfo":%s,"instructions":%s }'
                        % (version_text, _json({"name": server_name, "title": "agentgateway.observability mock MCP "
                                                "server", "version": SERVER_VERSION}),
                           _json("A mock MCP server for testing: tools echo, add and fail.")), "initialize")

    supported = "^(%s)$" % "|".join(re.escape(v) for v in PROTOCOL_VERSIONS)
    add("initialize (supported version)", 4,
        dict(post, bodyPatterns=[_method("initialize"), {"matchesJsonPath": {
            "expression": "$.params.protocolVersion", "matches": supported}}]),
        _response(200, initialize_result('"{{jsonPath request.body \'$.params.protocolVersion\'}}"'),
                  headers=session, delay=delay, template=True))
    add("initialize (other version)", 5, dict(post, bodyPatterns=[_method("initialize")]),
        _response(200, initialize_result(_json(PROTOCOL_VERSIONS[0])), headers=session, delay=delay, template=True))
    add("notification", 4,
        dict(post, bodyPatterns=[{"matchesJsonPath": {"expression": "$.method", "matches": "^notifications/.*"}}]),
        _response(202, delay=delay))
    add("ping", 4, dict(post, bodyPatterns=[_method("ping")]),
        _response(200, _jsonrpc("result", "{}", "ping"), delay=delay, template=True))

    # 4. tools
    add("tools/list", 4, dict(post, bodyPatterns=[_method("tools/list")]),
        _response(200, _jsonrpc("result", _json({"tools": list(TOOLS)}).replace("}}", "} }"), "tools/list"),
                  delay=delay, template=True))
    echo = '{"content":[{"type":"text","text":%s }],"isError":false }' % (_ARG % "text")
    add("tools/call echo", 4,
        dict(post, bodyPatterns=[_method("tools/call"), _tool("echo"), _has("$.params.arguments.text")]),
        _response(200, _jsonrpc("result", echo, "tools/call echo"), delay=delay, template=True))
    total = ("{{math (jsonPath request.body '$.params.arguments.a') '+' "
             "(jsonPath request.body '$.params.arguments.b')}}")
    added = '{"content":[{"type":"text","text":"%s"}],"isError":false }' % total
    add("tools/call add", 4,
        dict(post, bodyPatterns=[_method("tools/call"), _tool("add"), _has("$.params.arguments.a"),
                                 _has("$.params.arguments.b")]),
        _response(200, _jsonrpc("result", added, "tools/call add"), delay=delay, template=True))
    failed = _error_text(-32603, _json("Tool %s failed: error injected by the mock backend" % FAILING_TOOL))
    add("tools/call fail", 4, dict(post, bodyPatterns=[_method("tools/call"), _tool(FAILING_TOOL)]),
        _response(200, _jsonrpc("error", failed, "tools/call fail"), delay=delay, template=True))
    for tool in TOOLS:
        required = tool["inputSchema"].get("required")
        if required:
            invalid = _error_text(-32602, _json("Invalid arguments for tool %s: %s required"
                                                % (tool["name"], " and ".join(required))))
            add("tools/call %s invalid arguments" % tool["name"], 5,
                dict(post, bodyPatterns=[_method("tools/call"), _tool(tool["name"])]),
                _response(200, _jsonrpc("error", invalid, "invalid arguments"), delay=delay, template=True))
    unknown = _error_text(-32602, '"Unknown tool: {{jsonPath request.body \'$.params.name\'}}"')
    add("tools/call unknown tool", 6, dict(post, bodyPatterns=[_method("tools/call")]),
        _response(200, _jsonrpc("error", unknown, "unknown tool"), delay=delay, template=True))

    # 5. anything else
    add("method not found", 8, dict(post, bodyPatterns=[_has("$.id")]),
        _response(200, _jsonrpc("error", _error_text(-32601, '"Method not found: {{jsonPath request.body \'$.method\'}}"'),
                                "method not found"), delay=delay, template=True))
    add("get stream", 4, {"method": "GET", "urlPath": path},
        _response(405, _json({"jsonrpc": "2.0", "id": None, "error": {
            "code": -32000, "message": "Method Not Allowed: this server offers no SSE stream"}}),
            headers={"Allow": "POST, DELETE"}))
    add("end session", 4, {"method": "DELETE", "urlPath": path}, _response(200))
    return {"mappings": mappings}


def mcp_mappings_json(path="/mcp", **kwargs):
    """The mappings document as stable, indented JSON text (for a ConfigMap)."""
    return json.dumps(mcp_mappings(path, **kwargs), indent=2, sort_keys=True) + "\n"
