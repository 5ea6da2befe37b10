# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small HTTP client the collection's modules share (traffic, Prometheus/Grafana/Tempo probes).

Standard library only (``http.client`` + ``ssl``), so it runs on any target Python >= 3.8:

* one keep-alive connection per thread and host (safe to call from many threads at once);
* a timeout per request (connect and every read), TLS with ``validate_certs`` / ``ca_path`` /
  ``ca_data`` / client certificates, the SSL context built once per client;
* an optional HTTP proxy (``proxy_url``): plain HTTP requests go to the proxy with the absolute URL,
  HTTPS requests through a ``CONNECT`` tunnel; credentials in the proxy URL become
  ``Proxy-Authorization``;
* retries with exponential backoff for connection failures and for chosen statuses
  (``Retry-After`` honoured, capped);
* JSON helpers and a line iterator for Server-Sent Events with the time of the first byte;
* every failure is an ``HttpError`` with a stable ``kind`` (``ERROR_KINDS``) so callers can
  count and report failures by kind instead of parsing messages.

A response with an HTTP error status is *returned*, not raised; ``Response.raise_for_status()``
turns it into an ``HttpError`` of kind ``http_4xx`` / ``http_5xx`` when the caller wants that.
"""

from __future__ import annotations

# Named http_client.py, not http.py: a module named "http" shadows the standard library package
# for pylint/astroid (ansible-test sanity then lints the stdlib's http/__init__.py as this file).
import base64
import errno
import http.client
import json
import socket
import ssl
import threading
import time
import urllib.parse

ERROR_KINDS = (
    "connection_refused",  # nothing listens on the port
    "connection_reset",  # the peer closed or reset the connection mid-request
    "timeout",  # connect or read took longer than the timeout
    "dns",  # the host name does not resolve
    "tls",  # handshake or certificate verification failed
    "connection",  # any other socket-level failure
    "http_4xx",  # the server answered 4xx (only from raise_for_status)
    "http_5xx",  # the server answered 5xx (only from raise_for_status)
    "invalid_response",  # the body is not what the caller expected (bad JSON, broken stream)
    "invalid_url",  # the URL cannot be used
)

DEFAULT_USER_AGENT = "agentgateway.observability"


class HttpError(Exception):
    """A failed HTTP exchange; ``kind`` is one of ``ERROR_KINDS``."""

    def __init__(self, kind, message, url=None, status=None, body=None, elapsed=None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.url = url
        self.status = status
        self.body = body
        self.elapsed = elapsed

    def to_dict(self):
        result = {"kind": self.kind, "msg": self.message, "url": self.url}
        if self.status is not None:
            result["status"] = self.status
        return result

    def __str__(self):
        return "%s: %s" % (self.kind, self.message)


def status_kind(status):
    """The error kind of an HTTP status, or None when it is not an error."""
    if status >= 500:
        return "http_5xx"
    if status >= 400:
        return "http_4xx"
    return None


def classify_exception(exc):
    """Map a socket/TLS/http.client exception to an error kind."""
    if isinstance(exc, HttpError):
        return exc.kind
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connection_refused"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError,
                        http.client.RemoteDisconnected, http.client.IncompleteRead)):
        return "connection_reset"
    if isinstance(exc, socket.gaierror):
        return "dns"
    if isinstance(exc, ssl.SSLError):
        return "tls"
    if isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED:
        return "connection_refused"
    if isinstance(exc, (http.client.HTTPException, OSError)):
        return "connection"
    return "connection"


class Response(object):
    """An HTTP response. ``body`` is read at once unless the request was made with ``stream=True``."""

    def __init__(self, url, status, reason, headers, raw, started, first_byte, client, key, conn):
        self.url = url
        self.status = status
        self.reason = reason
        self.headers = headers  # {lower-case name: value} (the last of repeated headers)
        self.header_items = []  # [(name, value)] as received, repeated headers included (Set-Cookie)
        self.started = started
        self.first_byte = first_byte  # monotonic time when the status line arrived
        self._raw = raw
        self._client = client
        self._key = key
        self._conn = conn
        self._body = None

    @property
    def elapsed(self):
        return time.monotonic() - self.started

    @property
    def body(self):
        if self._body is None:
            try:
                self._body = self._raw.read()
            except (socket.timeout, TimeoutError) as exc:
                self._fail(exc)
            except (OSError, http.client.HTTPException) as exc:
                self._fail(exc)
            self._release()
        return self._body

    def read(self):
        """The whole body as bytes (read once, then cached)."""
        return self.body

    def text(self):
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except ValueError as exc:
            raise HttpError("invalid_response", "response from %s is not JSON: %s (starts with %r)"
                            % (self.url, exc, self.body[:120]), url=self.url, status=self.status)

    def iter_lines(self):
        """Yield decoded lines (without the line break) as they arrive; for SSE streams."""
        try:
            while True:
                line = self._raw.readline()
                if not line:
                    break
                yield line.decode("utf-8", errors="replace").rstrip("\r\n")
        except (OSError, http.client.HTTPException) as exc:
            self._fail(exc)
        # http.client's readline does not mark a body with a Content-Length as done when it has read the
        # last byte (only read() does): close the response, or the next request on this kept-alive
        # connection fails with ResponseNotReady.
        self._raw.close()
        self._body = b""
        self._release()

    def iter_sse_data(self):
        """Yield the ``data:`` payloads of a Server-Sent Events stream, one per event line."""
        for line in self.iter_lines():
            if line.startswith("data:"):
                yield line[5:].strip()

    def raise_for_status(self):
        kind = status_kind(self.status)
        if kind:
            raise HttpError(kind, "%s answered %s %s: %s" % (self.url, self.status, self.reason, self.text()[:300]),
                            url=self.url, status=self.status, body=self.body)
        return self

    def close(self):
        if self._body is None:
            # Not read to the end: the connection cannot be reused.
            self._client.drop(self._key, self._conn)
            self._body = b""

    def _release(self):
        if self._raw.will_close:
            self._client.drop(self._key, self._conn)

    def _fail(self, exc):
        self._client.drop(self._key, self._conn)
        raise HttpError(classify_exception(exc), "reading the response of %s failed: %s" % (self.url, exc or type(exc).__name__),
                        url=self.url, status=self.status, elapsed=self.elapsed)


class HttpClient(object):
    """Thread-safe HTTP client with per-thread keep-alive connections.

    ``base_url`` is prepended to relative paths. ``headers`` are sent with every request.
    ``retries`` extra attempts are made for connection failures (never after the request was
    sent, so a POST is not duplicated once the server may have seen it) and for ``retry_statuses``.
    """

    def __init__(self, base_url=None, timeout=10.0, retries=0, backoff=0.5, max_backoff=10.0,
                 retry_statuses=(429, 502, 503, 504), headers=None, validate_certs=True, ca_path=None,
                 client_cert=None, client_key=None, username=None, password=None, user_agent=DEFAULT_USER_AGENT,
                 ca_data=None, proxy_url=None):
        self.base_url = base_url.rstrip("/") if base_url else None
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.retry_statuses = frozenset(retry_statuses or ())
        self.headers = {"User-Agent": user_agent}
        if username is not None:
            token = base64.b64encode(("%s:%s" % (username, password or "")).encode("utf-8")).decode("ascii")
            self.headers["Authorization"] = "Basic " + token
        self.headers.update(headers or {})
        self._validate_certs = validate_certs
        self._ca_path = ca_path
        self._ca_data = ca_data
        self._proxy = _parse_proxy(proxy_url) if proxy_url else None
        self._client_cert = client_cert
        self._client_key = client_key
        self._ssl_context = None
        self._ssl_lock = threading.Lock()
        self._local = threading.local()

    # -- connections -------------------------------------------------------------------------
    def _context(self):
        with self._ssl_lock:
            if self._ssl_context is None:
                if self._validate_certs:
                    context = ssl.create_default_context(cafile=self._ca_path, cadata=self._ca_data)
                else:
                    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                if self._client_cert:
                    context.load_cert_chain(self._client_cert, self._client_key)
                self._ssl_context = context
            return self._ssl_context

    def _connections(self):
        pool = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = {}
        return pool

    def _connection(self, scheme, netloc, timeout):
        key = (scheme, netloc)
        pool = self._connections()
        conn = pool.get(key)
        if conn is None:
            if self._proxy is not None:
                proxy_netloc, proxy_headers = self._proxy
                if scheme == "https":
                    conn = http.client.HTTPSConnection(proxy_netloc, timeout=timeout, context=self._context())
                    conn.set_tunnel(netloc, headers=proxy_headers)
                else:
                    conn = http.client.HTTPConnection(proxy_netloc, timeout=timeout)
            elif scheme == "https":
                conn = http.client.HTTPSConnection(netloc, timeout=timeout, context=self._context())
            else:
                conn = http.client.HTTPConnection(netloc, timeout=timeout)
            pool[key] = conn
        else:
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
        return key, conn

    def drop(self, key, conn):
        """Close a connection and forget it (after an error or a non-reusable response)."""
        try:
            conn.close()
        finally:
            pool = self._connections()
            if pool.get(key) is conn:
                del pool[key]

    def close(self):
        """Close this thread's connections."""
        pool = self._connections()
        for conn in list(pool.values()):
            conn.close()
        pool.clear()

    # -- requests ----------------------------------------------------------------------------
    def url(self, path_or_url):
        if "://" in path_or_url:
            return path_or_url
        if not self.base_url:
            raise HttpError("invalid_url", "relative path %r needs a base_url" % path_or_url, url=path_or_url)
        return self.base_url + "/" + path_or_url.lstrip("/")

    def request(self, method, path_or_url, body=None, json_body=None, headers=None, timeout=None,
                stream=False, retries=None, params=None):
        """Send one request; return a ``Response`` (any status) or raise ``HttpError``.

        The number of attempts made is in ``response.attempts`` / ``error.attempts``.
        """
        url = self.url(path_or_url)
        if params:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params, doseq=True)
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise HttpError("invalid_url", "%r is not an http(s) URL" % url, url=url)
        target = urllib.parse.urlunsplit(("", "", parsed.path or "/", parsed.query, ""))
        send_headers = dict(self.headers)
        if self._proxy is not None and parsed.scheme == "http":
            # A plain HTTP request through a proxy names the whole URL (RFC 9112 absolute-form).
            target = urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, parsed.path or "/", parsed.query, ""))
            send_headers.update(self._proxy[1])
        if json_body is not None:
            body = json.dumps(json_body).encode("utf-8")
            send_headers["Content-Type"] = "application/json"
        elif isinstance(body, str):
            body = body.encode("utf-8")
        send_headers.update(headers or {})
        timeout = self.timeout if timeout is None else float(timeout)
        retries = self.retries if retries is None else int(retries)

        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._once(method, url, parsed, target, body, send_headers, timeout, stream)
            except HttpError as exc:
                exc.attempts = attempt
                # A request is only retried when it cannot have reached the application.
                if attempt <= retries and exc.kind in ("connection_refused", "dns"):
                    time.sleep(self._delay(attempt, None))
                    continue
                raise
            response.attempts = attempt
            if attempt <= retries and response.status in self.retry_statuses:
                retry_after = response.headers.get("retry-after")
                if stream:
                    response.close()
                else:
                    response.read()
                time.sleep(self._delay(attempt, retry_after))
                continue
            if not stream:
                response.read()
            return response

    def _delay(self, attempt, retry_after):
        if retry_after:
            try:
                return min(max(float(retry_after), 0.0), self.max_backoff)
            except ValueError:
                pass
        return min(self.backoff * (2 ** (attempt - 1)), self.max_backoff)

    def _once(self, method, url, parsed, target, body, headers, timeout, stream):
        started = time.monotonic()
        key, conn = self._connection(parsed.scheme, parsed.netloc, timeout)
        reused = conn.sock is not None
        try:
            conn.request(method, target, body=body, headers=headers)
            raw = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            self.drop(key, conn)
            if reused and isinstance(exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
                # The server closed an idle keep-alive connection: one fresh try is always safe.
                return self._once(method, url, parsed, target, body, headers, timeout, stream)
            kind = classify_exception(exc)
            raise HttpError(kind, "%s %s failed: %s" % (method, url, _describe(exc)), url=url,
                            elapsed=time.monotonic() - started)
        first_byte = time.monotonic()
        items = raw.getheaders()
        headers_out = {name.lower(): value for name, value in items}
        response = Response(url, raw.status, raw.reason, headers_out, raw, started, first_byte, self, key, conn)
        response.header_items = items
        return response

    def get_json(self, path_or_url, **kwargs):
        """GET and decode JSON; raises ``HttpError`` for error statuses and non-JSON bodies."""
        return self.request("GET", path_or_url, **kwargs).raise_for_status().json()

    def post_json(self, path_or_url, data, **kwargs):
        """POST ``data`` as JSON and decode the JSON answer; raises like ``get_json``."""
        return self.request("POST", path_or_url, json_body=data, **kwargs).raise_for_status().json()


def _parse_proxy(proxy_url):
    """(host:port, headers) of an ``http://[user:password@]host:port`` proxy URL."""
    parsed = urllib.parse.urlsplit(proxy_url)
    if parsed.scheme != "http" or not parsed.hostname:
        raise HttpError("invalid_url", "proxy %r is not an http://host:port URL (HTTPS proxies are not supported)"
                        % _mask_userinfo(proxy_url), url=_mask_userinfo(proxy_url))
    netloc = parsed.hostname if parsed.port is None else "%s:%d" % (parsed.hostname, parsed.port)
    if ":" in (parsed.hostname or "") and parsed.port is not None:
        netloc = "[%s]:%d" % (parsed.hostname, parsed.port)
    headers = {}
    if parsed.username is not None:
        creds = "%s:%s" % (urllib.parse.unquote(parsed.username), urllib.parse.unquote(parsed.password or ""))
        headers["Proxy-Authorization"] = "Basic " + base64.b64encode(creds.encode("utf-8")).decode("ascii")
    return netloc, headers


def _mask_userinfo(url):
    parsed = urllib.parse.urlsplit(url)
    if parsed.username is None:
        return url
    host = parsed.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit((parsed.scheme, "***@" + host, parsed.path, parsed.query, parsed.fragment))


def _describe(exc):
    text = str(exc)
    return "%s%s" % (type(exc).__name__, (" (%s)" % text) if text else "")


def percentile(sorted_values, pct):
    """Nearest-rank percentile of an already sorted list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, int(-(-pct * len(sorted_values) // 100)))  # ceil(pct/100 * n)
    return sorted_values[min(rank, len(sorted_values)) - 1]
