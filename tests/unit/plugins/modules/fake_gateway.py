"""A tiny stand-in for what the traffic and probe modules meet at a gateway, for their unit tests: an MCP
route that answers like agentgateway v1.4.1 does (an SSE stream per request, its own Mcp-Session-Id,
202 for notifications), a chat route with a prompt guard (403 for a marked prompt; a prompt its webhook
fails on passes, as with failureMode FailOpen, unless ``fail_closed``) and a route that answers 200 (as after
the gateway's retry). Standard library only, on 127.0.0.1, a port picked at run time.

Not a gateway: the real one is not available here; the modules' behaviour against the real mock MCP
server (WireMock) is tested in tests/functional/.
"""

from __future__ import annotations

import http.server
import json
import re
import threading

import pytest

SESSION = "fake-session-1"
WEBHOOK_FAILS_ON = "mock-guardrail-unavailable"
CHAT = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}


class FakeGateway(object):
    """``guard``: a regex rejected with 403 (None: no guard); ``fail_closed``: a prompt carrying the word the
    guard's webhook fails on is answered 500 (failureMode FailClosed) instead of passing; ``fail_tool_result``:
    the fail tool answers a result with isError instead of a JSON-RPC error; ``mcp_status``: answer every MCP
    POST with this status."""

    def __init__(self, guard=r"(?i)ignore previous instructions", fail_tool_result=False, mcp_status=None,
                 json_answers=False, fail_closed=False):
        self.guard, self.fail_tool_result, self.mcp_status = guard, fail_tool_result, mcp_status
        self.fail_closed = fail_closed
        self.json_answers = json_answers
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status, body=b"", headers=None):
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_DELETE(self):  # noqa: N802 (http.server API)
                outer.requests.append(("DELETE", self.path, dict(self.headers), None))
                self._send(200)

            def do_POST(self):  # noqa: N802 (http.server API)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                outer.requests.append(("POST", self.path, dict(self.headers), body))
                if self.path == "/mcp":
                    return self._mcp(body)
                if self.path == "/v1/chat/completions" and outer.guard:
                    text = " ".join(m.get("content", "") for m in body.get("messages", []))
                    if re.search(outer.guard, text):
                        return self._send(403, b"The request was rejected due to inappropriate content")
                    if outer.fail_closed and WEBHOOK_FAILS_ON in text:
                        return self._send(500, b"guardrail webhook unavailable")
                if self.path in ("/v1/chat/completions", "/flaky"):
                    return self._send(200, json.dumps(dict(CHAT, model=body.get("model"))).encode(),
                                      {"Content-Type": "application/json"})
                return self._send(404, b"route not found")

            def _mcp(self, message):
                if outer.mcp_status:
                    return self._send(outer.mcp_status, b"mcp refused")
                accept = self.headers.get("Accept") or ""
                if "application/json" not in accept or "text/event-stream" not in accept:
                    return self._send(406, b"client must accept both application/json and text/event-stream")
                method = message.get("method")
                if method != "initialize" and self.headers.get("Mcp-Session-Id") != SESSION:
                    return self._send(400, b"session header is required for non-initialize requests")
                if "id" not in message:
                    return self._send(202)
                params = message.get("params") or {}
                if method == "initialize":
                    answer = {"result": {"protocolVersion": params.get("protocolVersion"),
                                         "capabilities": {"tools": {}}, "serverInfo": {"name": "agentgateway"}}}
                elif method == "tools/list":
                    answer = {"result": {"tools": [{"name": n, "inputSchema": {"type": "object"}}
                                                   for n in ("echo", "add", "fail")]}}
                elif method == "tools/call" and params.get("name") == "echo":
                    answer = {"result": {"content": [{"type": "text", "text": params["arguments"]["text"]}],
                                         "isError": False}}
                elif method == "tools/call" and params.get("name") == "fail" and outer.fail_tool_result:
                    answer = {"result": {"content": [{"type": "text", "text": "failed"}], "isError": True}}
                elif method == "tools/call" and params.get("name") == "fail":
                    answer = {"error": {"code": -32603, "message": "Tool fail failed"}}
                else:
                    answer = {"error": {"code": -32601, "message": "Method not found"}}
                answer = dict(answer, jsonrpc="2.0", id=message["id"])
                headers = {"Mcp-Session-Id": SESSION} if method == "initialize" else {}
                if outer.json_answers:
                    return self._send(200, json.dumps(answer).encode(), dict(headers, **{
                        "Content-Type": "application/json"}))
                # like the gateway: an SSE stream, here with a notification before the answer
                note = {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info"}}
                stream = "event: message\ndata: %s\n\nevent: message\ndata: %s\n\n" % (
                    json.dumps(note), json.dumps(answer))
                return self._send(200, stream.encode(), dict(headers, **{"Content-Type": "text/event-stream"}))

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def mcp_methods(self):
        return [(r[3] or {}).get("method") or r[0] for r in self.requests if r[1] == "/mcp"]


@pytest.fixture
def fake_gateway():
    """``fake_gateway(**options)`` starts a FakeGateway; each one is stopped after the test."""
    servers = []

    def start(**kwargs):
        servers.append(FakeGateway(**kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()
