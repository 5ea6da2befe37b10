# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small MCP client on the streamable HTTP transport (MCP specification 2025-06-18).

Shared by the openai_traffic module (MCP sessions as test traffic) and the mcp_probe module (the
verification's own MCP session). Standard library only, on top of ``http_client.HttpClient`` (or
anything with its ``request`` method, such as the Kubernetes API server's service proxy client).

The transport, as this client speaks it:

* every JSON-RPC message is a ``POST`` of ``application/json`` to one path, with
  ``Accept: application/json, text/event-stream`` (agentgateway v1.4.1 refuses other Accept
  headers: crates/agentgateway/src/mcp/streamablehttp.rs@v1.4.1 ``handle_post``);
* the answer to a request is either one JSON message (``application/json``) or a Server-Sent Events
  stream (``text/event-stream``) whose ``data:`` lines carry JSON-RPC messages; the answer is the
  message with the request's ``id`` (the gateway answers with a stream, sse_stream_response in
  mcp/session.rs@v1.4.1; the mock MCP server with JSON);
* a notification is answered ``202 Accepted`` without a body;
* ``initialize`` may return an ``Mcp-Session-Id`` header: every later message carries it, and
  after ``initialize`` every message carries ``MCP-Protocol-Version`` with the negotiated version.
"""

from __future__ import annotations

import json
import time

from ansible_collections.agentgateway.observability.plugins.module_utils.http_client import HttpError

PROTOCOL_VERSION = "2025-06-18"
ACCEPT = "application/json, text/event-stream"
SESSION_HEADER = "Mcp-Session-Id"
VERSION_HEADER = "MCP-Protocol-Version"
CLIENT_INFO = {"name": "agentgateway.observability", "version": "1.0.0"}


class McpError(Exception):
    """A failed MCP exchange. ``kind``: ``transport`` (no answer), ``http`` (an HTTP error status),
    ``protocol`` (an answer that is not what the transport promises) or ``jsonrpc`` (a JSON-RPC error).
    """

    def __init__(self, kind, message, status=None, code=None, error_kind=None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.code = code
        self.error_kind = error_kind  # the HttpError kind of a transport failure

    def __str__(self):
        return self.message


def parse_messages(content_type, body):
    """The JSON-RPC messages of one answer body (a JSON document or an SSE stream)."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else (body or "")
    content_type = (content_type or "").lower()
    if content_type.startswith("text/event-stream"):
        messages, data = [], []
        for line in text.splitlines() + [""]:
            if line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
            elif line == "" and data:
                payload = "\n".join(data)
                data = []
                try:
                    messages.append(json.loads(payload))
                except ValueError:
                    raise McpError("protocol", "an SSE event is not JSON: %r" % payload[:120])
        return messages
    if content_type.startswith("application/json"):
        try:
            document = json.loads(text)
        except ValueError:
            raise McpError("protocol", "the answer is not JSON: %r" % text[:120])
        return document if isinstance(document, list) else [document]
    raise McpError("protocol", "unexpected Content-Type %r (want application/json or text/event-stream)"
                   % content_type)


def find_answer(messages, request_id):
    """The response or error message with ``request_id`` among ``messages``."""
    for message in messages:
        answered = isinstance(message, dict) and ("result" in message or "error" in message)
        if answered and message.get("id") == request_id:
            return message
    raise McpError("protocol", "no answer with id %r among %d message(s)" % (request_id, len(messages)))


class McpSession(object):
    """One MCP session over ``client`` (an ``HttpClient``), at ``path``.

    ``calls`` records every exchange: ``{method, tool, status, outcome, error, latency, code}`` with
    ``outcome`` one of ``ok``, ``accepted`` (a notification), ``tool_error`` (a JSON-RPC error
    answer) or ``failed`` (no usable answer).
    """

    def __init__(self, client, path, timeout=10.0, headers=None, protocol_version=PROTOCOL_VERSION,
                 client_info=None):
        self.client = client
        self.path = path
        self.timeout = timeout
        self.headers = dict(headers or {})
        self.requested_version = protocol_version
        self.client_info = dict(client_info or CLIENT_INFO)
        self.session_id = None
        self.protocol_version = None
        self.server_info = None
        self.calls = []
        self._next_id = 0

    # -- plumbing ---------------------------------------------------------------------------------
    def _headers(self):
        headers = dict(self.headers, Accept=ACCEPT)
        if self.session_id:
            headers[SESSION_HEADER] = self.session_id
        if self.protocol_version:
            headers[VERSION_HEADER] = self.protocol_version
        return headers

    def _post(self, message):
        try:
            response = self.client.request("POST", self.path, json_body=message, headers=self._headers(),
                                           timeout=self.timeout)
        except HttpError as exc:
            raise McpError("transport", str(exc), error_kind=exc.kind)
        body = response.read()
        if response.status >= 400:
            detail = body.decode("utf-8", errors="replace")[:200]
            raise McpError("http", "HTTP %d from %s: %s" % (response.status, response.url, detail),
                           status=response.status)
        return response, body

    def _record(self, method, started, outcome, status=None, tool=None, error=None, code=None):
        entry = {"method": method, "tool": tool, "status": status, "outcome": outcome, "error": error,
                 "code": code, "latency": time.monotonic() - started}
        self.calls.append(entry)
        return entry

    def _exchange(self, method, params):
        """Post one request; (the HTTP response, its answer message). Faults raise ``McpError`` with the status."""
        self._next_id += 1
        message = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        if params is not None:
            message["params"] = params
        response, body = self._post(message)
        try:
            return response, find_answer(parse_messages(response.headers.get("content-type"), body), self._next_id)
        except McpError as exc:
            exc.status = exc.status or response.status
            raise

    @staticmethod
    def _jsonrpc_error(answer, status, prefix=""):
        """The ``McpError`` of an answer that carries a JSON-RPC error."""
        error = answer.get("error") or {}
        return McpError("jsonrpc", "%sJSON-RPC error %s: %s" % (prefix, error.get("code"), error.get("message")),
                        status=status, code=error.get("code"))

    def request(self, method, params=None, tool=None):
        """Send a request; return its ``result``. A JSON-RPC error raises ``McpError`` kind ``jsonrpc``."""
        started = time.monotonic()
        try:
            response, answer = self._exchange(method, params)
        except McpError as exc:
            self._record(method, started, "failed", status=exc.status, tool=tool, error=str(exc))
            raise
        if "error" in answer:
            exc = self._jsonrpc_error(answer, response.status)
            self._record(method, started, "tool_error" if method == "tools/call" else "failed", status=exc.status,
                         tool=tool, error=str(exc), code=exc.code)
            raise exc
        self._record(method, started, "ok", status=response.status, tool=tool)
        return answer.get("result")

    def notify(self, method, params=None):
        """Send a notification; the server must answer 202 (200 with no message is tolerated)."""
        message = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        started = time.monotonic()
        try:
            response, body = self._post(message)
        except McpError as exc:
            self._record(method, started, "failed", status=exc.status, error=str(exc))
            raise
        if response.status not in (200, 202, 204) or (response.status == 200 and body.strip()):
            text = "a notification must be answered 202 without a body, got HTTP %d" % response.status
            self._record(method, started, "failed", status=response.status, error=text)
            raise McpError("protocol", text, status=response.status)
        self._record(method, started, "accepted", status=response.status)

    # -- the lifecycle and the tools --------------------------------------------------------------
    def initialize(self):
        """``initialize`` then ``notifications/initialized``; keeps the session id and protocol version."""
        params = {"protocolVersion": self.requested_version, "capabilities": {}, "clientInfo": self.client_info}
        started = time.monotonic()
        try:
            response, answer = self._exchange("initialize", params)
            if "error" in answer:
                raise self._jsonrpc_error(answer, response.status, "initialize failed: ")
            result = answer.get("result") or {}
            if not result.get("protocolVersion") or not isinstance(result.get("capabilities"), dict):
                raise McpError("protocol", "the initialize result lacks protocolVersion or capabilities: %s"
                               % json.dumps(result)[:200], status=response.status)
        except McpError as exc:
            self._record("initialize", started, "failed", status=exc.status, error=str(exc))
            raise
        self._record("initialize", started, "ok", status=response.status)
        self.session_id = response.headers.get(SESSION_HEADER.lower()) or None
        self.protocol_version = result["protocolVersion"]
        self.server_info = result.get("serverInfo") or {}
        self.notify("notifications/initialized")
        return result

    def list_tools(self):
        result = self.request("tools/list", {})
        tools = (result or {}).get("tools")
        if not isinstance(tools, list):
            raise McpError("protocol", "tools/list answered no tools list: %s" % json.dumps(result)[:200])
        return [tool.get("name") for tool in tools if isinstance(tool, dict)]

    def call_tool(self, name, arguments=None):
        """``tools/call``; returns the result (``content``, ``isError``)."""
        return self.request("tools/call", {"name": name, "arguments": dict(arguments or {})}, tool=name)

    def close(self):
        """End the session (``DELETE``); errors are ignored: the transport lets a server refuse it (405)."""
        if not self.session_id:
            return
        try:
            self.client.request("DELETE", self.path, headers=self._headers(), timeout=self.timeout).read()
        except HttpError:
            pass


def result_text(result):
    """The text of a tool result's ``text`` content items, joined."""
    return "".join(item.get("text", "") for item in (result or {}).get("content") or []
                   if isinstance(item, dict) and item.get("type") == "text")


# ---- the verification's MCP session, as check results (mcp_probe) --------------------------------------
_STATUS_CAUSES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 429: "rate_limited"}


def error_cause(exc):
    """The check cause (module_utils/checks.py CAUSES) of an ``McpError``."""
    if exc.kind == "transport":
        return {"dns": "dns", "tls": "tls", "timeout": "timeout", "connection_refused": "connection_refused",
                "connection_reset": "connection_reset", "invalid_url": "invalid_url"}.get(exc.error_kind, "connection")
    if exc.kind == "http":
        status = exc.status or 0
        return _STATUS_CAUSES.get(status) or ("server_error" if status >= 500 else "client_error")
    if exc.kind == "protocol":
        return "invalid_response"
    return "expectation"


def run_probe_session(session, tools):
    """One session for the probe: ``initialize``, ``tools/list``, then ``tools`` (``[{name, arguments,
    expect_error, text_regex}]``). Returns ``(ok, cause, saw, steps)``; ``steps`` maps each step to
    ``{ok, saw, cause}`` (a step not reached is absent). A failed step ends the session.
    """
    import re  # pylint: disable=import-outside-toplevel

    steps = {}
    try:
        try:
            result = session.initialize()
        except McpError as exc:
            steps["initialize"] = {"ok": False, "cause": error_cause(exc), "saw": str(exc)}
            return False, steps["initialize"]["cause"], "initialize: %s" % exc, steps
        steps["initialize"] = {"ok": True, "cause": None, "saw": "protocolVersion %s, server %s, session id %s"
                               % (result.get("protocolVersion"), (result.get("serverInfo") or {}).get("name"),
                                  "given" if session.session_id else "none (stateless)")}
        try:
            listed = session.list_tools()
        except McpError as exc:
            steps["tools_list"] = {"ok": False, "cause": error_cause(exc), "saw": str(exc)}
            return False, steps["tools_list"]["cause"], "tools/list: %s" % exc, steps
        missing = [t["name"] for t in tools if t["name"] not in listed]
        steps["tools_list"] = {"ok": not missing, "cause": "expectation" if missing else None,
                               "saw": "tools %s%s" % (", ".join(listed) or "none",
                                                      "; missing %s" % ", ".join(missing) if missing else "")}
        if missing:
            return False, "expectation", "tools/list lacks %s" % ", ".join(missing), steps
        for tool in tools:
            key = "tools_call.%s" % tool["name"]
            try:
                answer = session.call_tool(tool["name"], tool.get("arguments"))
            except McpError as exc:
                if exc.kind == "jsonrpc" and tool.get("expect_error"):
                    steps[key] = {"ok": True, "cause": None, "saw": "%s, as expected" % exc}
                    continue
                steps[key] = {"ok": False, "cause": error_cause(exc), "saw": str(exc)}
                return False, steps[key]["cause"], "tools/call %s: %s" % (tool["name"], exc), steps
            text = result_text(answer)
            if tool.get("expect_error"):
                steps[key] = {"ok": False, "cause": "expectation",
                              "saw": "a result (%r) where a JSON-RPC error was expected" % text[:80]}
            elif tool.get("text_regex") and not re.search(tool["text_regex"], text):
                steps[key] = {"ok": False, "cause": "expectation",
                              "saw": "result text %r does not match %s" % (text[:120], tool["text_regex"])}
            else:
                steps[key] = {"ok": True, "cause": None, "saw": "result text %r" % text[:120]}
            if not steps[key]["ok"]:
                return False, "expectation", "tools/call %s: %s" % (tool["name"], steps[key]["saw"]), steps
        return True, None, "every step answered as expected", steps
    finally:
        session.close()
