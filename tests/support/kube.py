"""Pytest fixtures for apply mode: snapshots of the session's real control plane (support.session's
``controlplane``), site.yml run against it, and the local repository of test charts."""

from __future__ import annotations

import pytest
import yaml

from support.cluster_snapshot import snapshot
from support.fixtures import run_playbook, REPO
from support.tools import tool


@pytest.fixture
def cluster_snapshot(controlplane):
    """``take(namespaces=None)``: the set of objects in the control plane (see support.cluster_snapshot).

    The control plane is the session's, shared by every worker: a test that compares snapshots
    names the namespaces it owns, so another module's objects never count.
    """
    def take(namespaces=None):
        return snapshot(str(controlplane.kubeconfig_path), namespaces=namespaces)
    return take


def apply_site(kubeconfig, extra_vars=None, args=(), check=True, playbook="site.yml"):
    """site.yml in apply mode against ``kubeconfig``: no node runs pods, so no waiting, traffic or verification."""
    return run_playbook(REPO / playbook, apply_variables(kubeconfig, **(extra_vars or {})), args=args, check=check)


def apply_variables(kubeconfig, **more):
    """apply_site's settings: ``kubeconfig``, no waiting, traffic or verification, the built helm; then ``more``."""
    variables = {"agw_obs_kubeconfig": str(kubeconfig), "agw_obs_wait": False, "traffic_enabled": False,
                 "verification_enabled": False, "agw_obs_helm_binary": tool("helm")}
    variables.update(more)
    return variables


def kubeconfig_with(path, source, **changes):
    """Write a copy of kubeconfig ``source`` to ``path`` with its cluster's server (or more) changed."""
    config = yaml.safe_load(open(source, encoding="utf-8"))
    if "server" in changes:
        config["clusters"][0]["cluster"]["server"] = changes["server"]
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def test_chart_repo(tmp_path_factory, site_render):
    """The local repository of TEST charts (support.chartrepo), serving every chart the site installs.

    The charts are those of the session's shared render with Loki (support.session), so no render
    of its own; the repository and its HTTP server are this worker's, stopped by PID at its end.
    """
    from support import chartrepo  # pylint: disable=import-outside-toplevel

    directory = tmp_path_factory.mktemp("charts")
    state = chartrepo.up(directory, chartrepo.charts_of_render(site_render("loki")))
    yield state
    chartrepo.down(directory)


def helm(kubeconfig, *args):
    """Run the real helm against ``kubeconfig``; return its stdout."""
    import subprocess  # pylint: disable=import-outside-toplevel

    proc = subprocess.run([tool("helm"), "--kubeconfig", str(kubeconfig)] + list(args),
                          capture_output=True, text=True, check=True)
    return proc.stdout
