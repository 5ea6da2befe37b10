"""A real Prometheus 3.14 server on 127.0.0.1 for tests, and a static metrics target.

The binary is upstream's, built by `make setup` from its pinned Go module (tools/prometheus), the
version the prometheus chart runs. Every server checks on start that it is that version.
"""

from __future__ import annotations

import http.server
import json
import pathlib
import threading
import time
import urllib.parse
import urllib.request

import pytest
import yaml

from support.services import Service, free_port, wait_http


# The prometheus chart's appVersion (roles/prometheus: chart 29.27.0); tools/prometheus pins it.
PROMETHEUS_VERSION = "3.14.0"


class PrometheusServer(object):
    """Prometheus with the given config and rule files, in ``workdir``; stopped by PID."""

    def __init__(self, binary, workdir, config, rule_files=None, extra_flags=()):
        self.workdir = pathlib.Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = dict(config)
        names = []
        for name, content in (rule_files or {}).items():
            (self.workdir / name).write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
            names.append(str(self.workdir / name))
        if names:
            config["rule_files"] = names
        self.config_path = self.workdir / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        argv = [
            binary,
            "--config.file=%s" % self.config_path,
            "--storage.tsdb.path=%s" % (self.workdir / "data"),
            "--web.listen-address=127.0.0.1:%d" % self.port,
            # The scrape manager applies new targets at most this often (5s by default, a hidden flag of
            # Prometheus 3): the static targets of a test are scraped a second after start, not five.
            "--scrape.discovery-reload-interval=1s",
        ] + list(extra_flags)
        self.service = Service(argv, str(self.workdir / "prometheus.log"))
        wait_http(self.url + "/-/ready", timeout=60, proc=self.service.proc, log_path=self.service.log_path)
        self.version = self.api("/api/v1/status/buildinfo")["version"]
        if self.version != PROMETHEUS_VERSION:
            self.stop()
            raise AssertionError("%s is Prometheus %s, the tests need %s: run `make setup`"
                                 % (binary, self.version, PROMETHEUS_VERSION))

    def api(self, path, **params):
        query = ("?" + urllib.parse.urlencode(params)) if params else ""
        with urllib.request.urlopen(self.url + path + query, timeout=10) as resp:
            body = json.loads(resp.read().decode("utf-8"))
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql):
        return self.api("/api/v1/query", query=promql)["result"]

    def wait_for(self, check, timeout=30.0, interval=0.5, what="condition"):
        """Poll ``check()`` until it returns something truthy; fail with the server log otherwise."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = check()
            if last:
                return last
            time.sleep(interval)
        raise AssertionError("%s not reached in %ss (last: %r)\n%s" % (what, timeout, last, self.service.log()))

    def stop(self):
        self.service.stop()


class MetricsTarget(object):
    """An HTTP server on 127.0.0.1 that serves ``render(scrapes)`` (Prometheus text format) on any path, or,
    with ``negotiate``, ``negotiate(accept header)``'s (content type, body bytes)."""

    def __init__(self, render=None, negotiate=None):
        outer = self
        self.scrapes = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server API)
                outer.scrapes += 1
                if negotiate is not None:
                    content_type, body = negotiate(self.headers.get("Accept"))
                else:
                    content_type = "text/plain; version=0.0.4; charset=utf-8"
                    body = render(outer.scrapes).encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # keep test output quiet
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = "127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def prometheus_factory(prometheus_binary, tmp_path):
    """Start real Prometheus servers; all are stopped at the end of the test."""
    started = []

    def start(config, rule_files=None, extra_flags=(), name="prometheus"):
        server = PrometheusServer(prometheus_binary, tmp_path / name, config, rule_files, extra_flags)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def metrics_target_factory():
    started = []

    def start(render):
        target = MetricsTarget(render)
        started.append(target)
        return target

    yield start
    for target in started:
        target.stop()
