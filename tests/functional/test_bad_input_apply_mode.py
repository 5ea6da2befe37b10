"""Bad input to any role stops site.yml in apply mode before anything is applied, naming the variable.

Against the real control plane (etcd + kube-apiserver + kube-controller-manager built from their
Go modules, support.kube's ``controlplane``) through ``agw_obs_kubeconfig``: for every check the
deploy path makes, triggered from a role variable (tests/support/bad_input.py), no namespace,
object or Helm release (a Secret of type helm.sh/release.v1) appears or disappears on the API
server (support.cluster_snapshot: every object of every listable resource).
"""

from __future__ import annotations

import pytest

from support.bad_input import CASES
from support.kube import apply_site
from support.kubeapi import Api

pytestmark = pytest.mark.services


def test_the_snapshot_sees_a_new_object(controlplane, cluster_snapshot):
    """Guard for the guard: a ConfigMap created through the API shows up in the comparison."""
    api = Api(controlplane)
    before = cluster_snapshot()
    api.request("/api/v1/namespaces/default/configmaps", "POST",
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "agw-obs-snapshot-guard"}})
    try:
        assert cluster_snapshot() - before == {"core/ConfigMap default/agw-obs-snapshot-guard"}
    finally:
        api.request("/api/v1/namespaces/default/configmaps/agw-obs-snapshot-guard", "DELETE")


@pytest.mark.parametrize("extra_vars, names", CASES)
def test_apply_mode_changes_nothing_on_the_api_server(controlplane, cluster_snapshot, extra_vars, names):
    before = cluster_snapshot()
    proc = apply_site(controlplane.kubeconfig_path, extra_vars, check=False)
    assert proc.returncode != 0, proc.stdout[-3000:]
    for name in names:
        assert name in proc.stdout, (name, proc.stdout[-3000:])
    after = cluster_snapshot()
    assert after == before, "the cluster changed: %s" % sorted(after ^ before)
    assert not [line for line in after if line.startswith("core/Namespace ") and line not in before]
    assert not [line for line in after if " " in line and "/sh.helm.release." in line]
    # the failure comes from a preflight, before any role's deploy step ran
    assert "Render or apply the desired state" not in proc.stdout
