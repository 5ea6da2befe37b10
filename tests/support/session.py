"""What one pytest session shares across its xdist workers: the site renders and the control plane.

The main process makes one folder for the session (outside pytest's own temporary folders, which
pytest prunes while other runs may still use them) and hands it to every worker. ``shared(name,
build)`` builds something there once, under a file lock: the first worker that asks builds it,
the others wait and reuse it. The main process removes the folder at the end and stops the
control plane by the PIDs it recorded.

- ``site_render(variant)``: site.yml rendered (ansible-playbook, the real end-to-end path) once
  per variant per session; tests read the files and never change them. Tests that need a
  variation plan only what changes, in-process (support.planner).
- ``controlplane``: one real control plane (etcd, kube-apiserver, kube-controller-manager) per
  session; each test module works in namespaces of its own (``module_namespace``).
"""

from __future__ import annotations

import fcntl
import pathlib
import shutil
import tempfile

import pytest

from support.fixtures import render_site

SESSION_KEY = "agw_obs_session_dir"
DONE = ".done"

# The settings of each shared site render.
EXISTING = {
    "agw_obs_stack_mode": "existing",
    "agw_obs_traces_url": "http://otel-collector.observability.svc.cluster.local:4317",
    "agw_obs_loki_enabled": True,
    "agw_obs_logs_url": "http://loki-gateway.logging.svc:80/otlp/v1/logs",
    "existing_stack_prometheus_labels": {"release": "kps"},
    "existing_stack_tempo_datasource_url": "http://tempo.observability.svc.cluster.local:3200",
    "existing_stack_loki_datasource_url": "http://loki-gateway.logging.svc:80",
}
VARIANTS = {
    "default": {},
    "production": {"agw_obs_profile": "production"},
    "loki": {"agw_obs_loki_enabled": True},
    # the gateway's scrape job under another name: rules and dashboards follow it
    "gw-pods": {"prometheus_gateway_job_name": "gw-pods"},
    "existing": EXISTING,
    "enterprise": {"agw_obs_gateway_variant": "enterprise", "agentgateway_controller_enabled": False},
}


def pytest_configure(config):
    if hasattr(config, "workerinput"):
        config.agw_obs_session_dir = config.workerinput[SESSION_KEY]
    else:
        config.agw_obs_session_dir = tempfile.mkdtemp(prefix="agw-obs-session-")
        if config.pluginmanager.hasplugin("xdist"):
            config.pluginmanager.register(_HandToWorkers(config.agw_obs_session_dir), "agw_obs_session_workers")


class _HandToWorkers(object):
    def __init__(self, directory):
        self.directory = directory

    def pytest_configure_node(self, node):  # xdist: the main process configures a worker
        node.workerinput[SESSION_KEY] = self.directory


def pytest_unconfigure(config):
    if hasattr(config, "workerinput"):
        return
    directory = pathlib.Path(config.agw_obs_session_dir)
    plane_dir = directory / "controlplane"
    if (plane_dir / "controlplane.json").exists():
        from support.controlplane import ControlPlane  # pylint: disable=import-outside-toplevel

        ControlPlane(plane_dir).stop()
    shutil.rmtree(directory, ignore_errors=True)


def session_dir(config):
    return pathlib.Path(config.agw_obs_session_dir)


def shared(config, name, build):
    """``<session dir>/<name>``, built once for the whole session by ``build(path)``.

    A build that failed is not retried: every later caller gets the same failure.
    """
    path = session_dir(config) / name
    with open(session_dir(config) / (name + ".lock"), "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            failed = path / ".failed"
            if failed.exists():
                raise RuntimeError("building %s failed earlier in this session:\n%s" % (name, failed.read_text()))
            if not (path / DONE).exists():
                path.mkdir(parents=True, exist_ok=True)
                try:
                    build(path)
                except BaseException as exc:
                    failed.write_text(str(exc)[-6000:], encoding="utf-8")
                    raise
                (path / DONE).write_text("", encoding="utf-8")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return path


def _render(variant):
    def build(path):
        render_site(path / "render", VARIANTS[variant])
    return build


@pytest.fixture(scope="session")
def site_render(request):
    """``site_render(variant)``: the render directory of site.yml for that variant (read-only)."""
    def get(variant="default"):
        return shared(request.config, "render-" + variant, _render(variant)) / "render"
    return get


@pytest.fixture(scope="session")
def controlplane(request):
    """The session's real control plane (etcd + kube-apiserver + kube-controller-manager v1.36.1)."""
    from support.controlplane import ControlPlane  # pylint: disable=import-outside-toplevel
    from support.tools import ToolMissing, tool  # pylint: disable=import-outside-toplevel

    try:
        tool("kube-apiserver")
    except ToolMissing as exc:
        pytest.fail(str(exc))

    def build(path):
        plane = ControlPlane(path)
        try:
            plane.start()
        except Exception:
            plane.stop()
            raise

    return ControlPlane(shared(request.config, "controlplane", build))


@pytest.fixture(scope="module")
def module_namespace(request):
    """A namespace name of this test module's own on the shared control plane (created by the test)."""
    base = request.module.__name__.rsplit(".", 1)[-1].replace("_", "-").replace("test-", "")
    return ("t-%s" % base)[:50].rstrip("-")
