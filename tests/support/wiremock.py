"""A real WireMock (npm jar) on 127.0.0.1 loaded with the mappings the mock_backend role renders.

``mock_render`` is the session's site render (support.session: site.yml rendered once per session
with its defaults; read-only); ``mock_wiremock`` starts WireMock with the mock_backend role's
rendered ConfigMap's mapping files and the rendered Deployment's arguments (port and root directory
replaced), so the tests exercise exactly what the role would deploy.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import urllib.request

import pytest

from support.fixtures import REPO, rendered_manifests
from support.services import Service, free_port, wait_http

JAR = REPO / "tests" / "node_modules" / "wiremock" / "build" / "wiremock-standalone-3.13.2.jar"


def load_objects(render_dir):
    """{(kind, name): object} of every rendered manifest."""
    return {(obj["kind"], obj["metadata"]["name"]): obj for obj in rendered_manifests(render_dir).values()}


def server_args(deployment):
    """The WireMock arguments of the rendered Deployment, minus the ones a local run sets itself."""
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return [arg for arg in args if not arg.startswith(("--port", "--bind-address", "--root-dir"))]


class WireMock(object):
    def __init__(self, root_dir, args=(), log_path=None):
        if shutil.which("java") is None or not JAR.is_file():
            pytest.fail("java or %s missing: run `make setup`" % JAR)
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        log_path = log_path or os.path.join(str(root_dir), "wiremock.log")
        argv = ["java", "-jar", str(JAR), "--bind-address", "127.0.0.1", "--port", str(self.port),
                "--root-dir", str(root_dir)] + list(args)
        self.service = Service(argv, log_path)
        try:
            wait_http(self.url + "/__admin/health", timeout=90, proc=self.service.proc, log_path=log_path)
        except Exception:
            self.service.stop()
            raise

    def admin(self, method, path):
        req = urllib.request.Request(self.url + "/__admin" + path, method=method)
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def request_count(self):
        req = urllib.request.Request(self.url + "/__admin/requests/count", method="POST",
                                     data=json.dumps({"method": "ANY", "urlPattern": ".*"}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())["count"]

    def reset_journal(self):
        self.admin("DELETE", "/requests")

    def stop(self):
        self.service.stop()


def start_from_render(render_dir, work_dir, name="mock-openai"):
    """WireMock with the rendered ConfigMap files as its mappings and the rendered arguments.

    ``render_dir`` is a render of the site (or of the mock_backend role alone).
    """
    objects = load_objects(render_dir)
    config_map = objects[("ConfigMap", name + "-mappings")]
    mappings = pathlib.Path(work_dir, "mappings")
    mappings.mkdir(parents=True, exist_ok=True)
    for file_name, text in config_map["data"].items():
        (mappings / file_name).write_text(text, encoding="utf-8")
    return WireMock(work_dir, server_args(objects[("Deployment", name)]))


@pytest.fixture(scope="session")
def mock_render(rendered_site):
    """The render WireMock's mappings come from: the session's default site render (read-only for tests)."""
    return rendered_site


@pytest.fixture(scope="session")
def mock_wiremock(mock_render, tmp_path_factory):
    """A running WireMock serving the rendered mappings; stopped by PID at the end of the session."""
    server = start_from_render(mock_render, tmp_path_factory.mktemp("wiremock"))
    yield server
    server.stop()
