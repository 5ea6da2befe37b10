"""A minimal HTTP forward proxy on 127.0.0.1 for tests: absolute-form requests and CONNECT tunnels.

It records what it saw (method, target, Proxy-Authorization), so tests can check that traffic
really went through it.
"""

from __future__ import annotations

import http.server
import select
import socket
import threading
import urllib.parse


class ForwardProxy(object):
    """A minimal HTTP forward proxy: absolute-form requests and CONNECT tunnels, recording what it saw."""

    def __init__(self):
        self.seen = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.seen.append(("GET", self.path, self.headers.get("Proxy-Authorization")))
                parsed = urllib.parse.urlsplit(self.path)
                upstream = socket.create_connection((parsed.hostname, parsed.port), timeout=5)
                upstream.sendall(("GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" % (parsed.path, parsed.netloc)).encode())
                data = b""
                while True:
                    chunk = upstream.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                upstream.close()
                self.wfile.write(data)
                self.close_connection = True

            def do_CONNECT(self):  # noqa: N802
                outer.seen.append(("CONNECT", self.path, self.headers.get("Proxy-Authorization")))
                host, port = self.path.rsplit(":", 1)
                upstream = socket.create_connection((host, int(port)), timeout=5)
                self.send_response(200, "Connection established")
                self.end_headers()
                conns = [self.connection, upstream]
                while True:
                    readable, _w, _x = select.select(conns, [], [], 5)
                    if not readable:
                        break
                    done = False
                    for sock in readable:
                        data = sock.recv(65536)
                        if not data:
                            done = True
                            break
                        (upstream if sock is self.connection else self.connection).sendall(data)
                    if done:
                        break
                upstream.close()
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://user:p%%40ss@127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
