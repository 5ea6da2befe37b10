"""Unit tests of the shared HTTP client against a tiny stdlib server on 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time

import pytest

from ansible_collections.agentgateway.observability.plugins.module_utils import http_client as agw_http
from support.forward_proxy import ForwardProxy
from support.services import free_port


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    calls = []

    def _send(self, status, body, headers=None):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        self.calls.append((self.path, self.client_address[1], dict(self.headers)))
        if self.path == "/json":
            self._send(200, json.dumps({"ok": True}), {"Content-Type": "application/json"})
        elif self.path == "/text":
            self._send(200, "not json")
        elif self.path == "/slow":
            time.sleep(0.5)
            self._send(200, "late")
        elif self.path.startswith("/flaky"):
            flaky = [p for p, _port, _h in self.calls if p.startswith("/flaky")]
            if len(flaky) < 3:
                self._send(503, "busy", {"Retry-After": "0"})
            else:
                self._send(200, "{}")
        elif self.path == "/missing":
            self._send(404, "nope")
        elif self.path == "/sse":
            self._send(200, "data: 1\n\ndata: [DONE]\n\n", {"Content-Type": "text/event-stream"})
        else:
            self._send(500, "boom")

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        self.calls.append((self.path, self.client_address[1], dict(self.headers)))
        self._send(200, json.dumps({"echo": body}), {"Content-Type": "application/json"})

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    _Handler.calls = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def test_json_and_keep_alive(server):
    client = agw_http.HttpClient(base_url=server, headers={"X-Test": "1"})
    assert client.get_json("/json") == {"ok": True}
    assert client.post_json("/echo", {"a": 1}) == {"echo": {"a": 1}}
    ports = {port for _path, port, _headers in _Handler.calls}
    assert len(ports) == 1, "the second request reuses the connection"
    assert _Handler.calls[0][2]["X-Test"] == "1"
    assert _Handler.calls[1][2]["Content-Type"] == "application/json"


def test_error_statuses_are_returned_then_raised(server):
    client = agw_http.HttpClient(base_url=server)
    response = client.request("GET", "/missing")
    assert response.status == 404 and response.text() == "nope"
    with pytest.raises(agw_http.HttpError) as info:
        response.raise_for_status()
    assert info.value.kind == "http_4xx" and info.value.status == 404
    with pytest.raises(agw_http.HttpError) as info:
        client.get_json("/boom")
    assert info.value.kind == "http_5xx"


def test_invalid_json(server):
    with pytest.raises(agw_http.HttpError) as info:
        agw_http.HttpClient(base_url=server).get_json("/text")
    assert info.value.kind == "invalid_response"


def test_timeout_then_the_client_still_works(server):
    client = agw_http.HttpClient(base_url=server, timeout=0.1)
    with pytest.raises(agw_http.HttpError) as info:
        client.request("GET", "/slow")
    assert info.value.kind == "timeout"
    assert client.get_json("/json", timeout=5) == {"ok": True}


def test_connection_refused_and_retries():
    port = free_port()
    client = agw_http.HttpClient(base_url="http://127.0.0.1:%d" % port, retries=2, backoff=0.01)
    with pytest.raises(agw_http.HttpError) as info:
        client.request("GET", "/")
    assert info.value.kind == "connection_refused"
    assert info.value.attempts == 3


def test_retry_on_status_honours_retry_after(server):
    client = agw_http.HttpClient(base_url=server, retries=3, backoff=5)
    started = time.monotonic()
    response = client.request("GET", "/flaky")
    assert response.status == 200 and response.attempts == 3
    assert time.monotonic() - started < 2, "Retry-After: 0 wins over the 5 s backoff"
    assert agw_http.HttpClient(base_url=server).request("GET", "/flaky", retries=0).status == 200


def test_sse_lines(server):
    response = agw_http.HttpClient(base_url=server).request("GET", "/sse", stream=True)
    assert list(response.iter_sse_data()) == ["1", "[DONE]"]


def test_a_stream_with_a_content_length_read_to_the_end_leaves_the_connection_usable(server):
    """An SSE body sent with Content-Length (as a buffering proxy may send it): the next request on the
    kept-alive connection is answered (http.client's readline alone left the response open: ResponseNotReady)."""
    client = agw_http.HttpClient(base_url=server)
    for _round in range(2):
        assert list(client.request("GET", "/sse", stream=True).iter_sse_data()) == ["1", "[DONE]"]
        assert client.request("GET", "/missing").status == 404


def test_dns_and_invalid_url():
    with pytest.raises(agw_http.HttpError) as info:
        agw_http.HttpClient(timeout=2).request("GET", "http://no-such-host.invalid/")
    assert info.value.kind == "dns"
    with pytest.raises(agw_http.HttpError) as info:
        agw_http.HttpClient().request("GET", "/relative")
    assert info.value.kind == "invalid_url"
    with pytest.raises(agw_http.HttpError) as info:
        agw_http.HttpClient().request("GET", "ftp://x/")
    assert info.value.kind == "invalid_url"


def test_basic_auth_header():
    client = agw_http.HttpClient(username="admin", password="pw")
    assert client.headers["Authorization"] == "Basic YWRtaW46cHc="


def test_classify_and_percentile():
    assert agw_http.classify_exception(socket.timeout()) == "timeout"
    assert agw_http.classify_exception(ConnectionRefusedError()) == "connection_refused"
    assert agw_http.classify_exception(ConnectionResetError()) == "connection_reset"
    assert agw_http.classify_exception(socket.gaierror()) == "dns"
    assert agw_http.classify_exception(OSError("x")) == "connection"
    assert agw_http.status_kind(200) is None and agw_http.status_kind(429) == "http_4xx"
    assert agw_http.status_kind(503) == "http_5xx"
    values = list(range(1, 101))
    assert agw_http.percentile(values, 50) == 50
    assert agw_http.percentile(values, 95) == 95
    assert agw_http.percentile(values, 99) == 99
    assert agw_http.percentile([7], 99) == 7
    assert agw_http.percentile([], 50) is None
    assert agw_http.HttpError("timeout", "m", url="u").to_dict() == {"kind": "timeout", "msg": "m", "url": "u"}


def test_http_through_a_proxy_uses_the_absolute_url_and_proxy_credentials(server):
    proxy = ForwardProxy()
    try:
        client = agw_http.HttpClient(proxy_url=proxy.url)
        assert client.get_json(server + "/json") == {"ok": True}
        method, target, auth = proxy.seen[0]
        assert method == "GET" and target == server + "/json"
        assert auth == "Basic " + agw_http.base64.b64encode(b"user:p@ss").decode()
    finally:
        proxy.stop()


def test_https_through_a_proxy_tunnels_and_verifies_with_ca_data(tmp_path):
    from support.contract import JsonServer, self_signed_context  # pylint: disable=import-outside-toplevel

    context, cert_path = self_signed_context(tmp_path)

    class Hello(JsonServer):
        def handle(self, method, path, query, headers, body):
            return 200, {"hello": path}, {}

    tls = Hello(tls_context=context)
    proxy = ForwardProxy()
    try:
        ca_data = open(cert_path).read()
        client = agw_http.HttpClient(proxy_url=proxy.url, ca_data=ca_data)
        assert client.get_json(tls.url + "/x") == {"hello": "/x"}
        assert proxy.seen[0][0] == "CONNECT" and proxy.seen[0][1] == "127.0.0.1:%d" % tls.port
        with pytest.raises(agw_http.HttpError) as info:
            agw_http.HttpClient(proxy_url=proxy.url).request("GET", tls.url + "/x")
        assert info.value.kind == "tls", "without the CA the tunnelled handshake fails verification"
    finally:
        proxy.stop()
        tls.stop()


def test_proxy_url_must_be_http():
    with pytest.raises(agw_http.HttpError) as info:
        agw_http.HttpClient(proxy_url="https://secret:pw@proxy:3128")
    assert info.value.kind == "invalid_url" and "pw" not in str(info.value)
