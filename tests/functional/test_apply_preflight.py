"""Apply mode refuses a setting it cannot work with before anything changes, naming the setting.

Against the real control plane (support.controlplane): every failing run leaves the cluster as it
was (an object-by-object snapshot before and after), and its one message names the variable and
the fix. The helm checks use real helm binaries: 3.17.2 (accepted) and 4.1.4 (refused, because
kubernetes.core 6.2 cannot drive Helm 4).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from support.fixtures import VENV_BIN, ansible_env
from support.kube import apply_site, kubeconfig_with
from support.services import free_port
from support.tools import tool

pytestmark = pytest.mark.services


def assert_refused_before_any_change(proc, before, after, *names):
    assert proc.returncode != 0, proc.stdout[-3000:]
    for name in names:
        assert name in proc.stdout, (name, proc.stdout[-3000:])
    assert after == before, "the cluster changed: %s" % sorted(after ^ before)
    # the one message comes from the preflight, before any role's deploy step ran
    assert "Render or apply the desired state" not in proc.stdout


def test_an_unreachable_api_server(controlplane, cluster_snapshot, tmp_path):
    closed = kubeconfig_with(tmp_path / "kubeconfig", controlplane.kubeconfig_path,
                             server="https://127.0.0.1:%d" % free_port())
    before = cluster_snapshot()
    proc = apply_site(closed, check=False)
    assert_refused_before_any_change(proc, before, cluster_snapshot(), "agw_obs_kubeconfig=%s" % closed,
                                     "cannot be reached", "Start the cluster or fix the server address")


def test_a_kubeconfig_that_does_not_exist(controlplane, cluster_snapshot, tmp_path):
    before = cluster_snapshot()
    proc = apply_site(tmp_path / "nope", check=False)
    assert_refused_before_any_change(proc, before, cluster_snapshot(), "agw_obs_kubeconfig")


def test_a_kubeconfig_that_is_not_one(controlplane, cluster_snapshot, tmp_path):
    garbage = tmp_path / "kubeconfig"
    garbage.write_text("this: [is not a kubeconfig\n", encoding="utf-8")
    before = cluster_snapshot()
    proc = apply_site(garbage, check=False)
    assert_refused_before_any_change(proc, before, cluster_snapshot(), "agw_obs_kubeconfig:", "cannot be read")


def test_a_context_the_kubeconfig_does_not_have(controlplane, cluster_snapshot):
    before = cluster_snapshot()
    proc = apply_site(controlplane.kubeconfig_path, {"agw_obs_kube_context": "kind-prod"}, check=False)
    assert_refused_before_any_change(proc, before, cluster_snapshot(), "agw_obs_kube_context",
                                     "'kind-prod' is not in kubeconfig", "agw-obs-controlplane")


def test_no_helm(controlplane, cluster_snapshot, tmp_path):
    before = cluster_snapshot()
    proc = apply_site(controlplane.kubeconfig_path, {"agw_obs_helm_binary": str(tmp_path / "helm")}, check=False)
    assert_refused_before_any_change(proc, before, cluster_snapshot(), "agw_obs_helm_binary=", "not found",
                                     "Install Helm 3")


def test_no_helm_on_path(controlplane, cluster_snapshot):
    before = cluster_snapshot()
    proc = apply_site(controlplane.kubeconfig_path, {"agw_obs_helm_binary": "helm-not-installed"}, check=False)
    assert_refused_before_any_change(proc, before, cluster_snapshot(), "agw_obs_helm_binary=helm-not-installed",
                                     "not found on PATH")


def test_helm_4_is_out_of_range_for_kubernetes_core_6_2(controlplane, cluster_snapshot):
    helm4 = tool("helm4")
    assert subprocess.run([helm4, "version", "--short"], capture_output=True, text=True,
                          check=True).stdout.startswith("v4.")
    before = cluster_snapshot()
    proc = apply_site(controlplane.kubeconfig_path, {"agw_obs_helm_binary": helm4}, check=False)
    assert_refused_before_any_change(proc, before, cluster_snapshot(), "agw_obs_helm_binary=%s" % helm4,
                                     "is Helm 4.1.4", "needs Helm >= 3.10.0 and < 4.0.0")


def test_no_kubernetes_library_where_the_modules_run(controlplane, cluster_snapshot, tmp_path):
    bare = tmp_path / "bare-python"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    before = cluster_snapshot()
    proc = apply_site(controlplane.kubeconfig_path, {"ansible_python_interpreter": str(bare / "bin" / "python")},
                      check=False)
    assert_refused_before_any_change(proc, before, cluster_snapshot(), "Python library 'kubernetes'",
                                     "pip install -r requirements.txt")


def test_the_preflight_passes_against_the_real_control_plane(controlplane):
    """The same check on good settings reports the server and helm versions, and changes nothing."""
    result = subprocess.run(
        [str(VENV_BIN / "ansible"), "localhost", "-m", "agentgateway.observability.cluster_preflight",
         "-a", "kubeconfig=%s helm_binary=%s" % (controlplane.kubeconfig_path, tool("helm")),
         "-e", "ansible_python_interpreter=%s" % sys.executable],
        capture_output=True, text=True, check=False, env=ansible_env(ANSIBLE_CALLBACK_RESULT_FORMAT="yaml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "changed: false" in result.stdout
    assert "server_version: v1.36.1" in result.stdout
    assert "helm_version: 3.17.2" in result.stdout
