"""Bad input to any role stops site.yml in apply mode before anything is applied, naming the variable.

Against the real control plane (etcd + kube-apiserver + kube-controller-manager built from their
Go modules, tests/support/controlplane.py) through ``agw_obs_kubeconfig``: for every check the
deploy path makes, triggered from a role variable (tests/support/bad_input.py), no namespace,
object or Helm release (a Secret of type helm.sh/release.v1) appears or disappears on the API
server. The comparison lists every resource the API server serves.
"""

from __future__ import annotations

import pytest

from support.bad_input import CASES
from support.controlplane import ControlPlane
from support.fixtures import REPO, run_playbook
from support.kubeapi import Api

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory):
    plane = ControlPlane(tmp_path_factory.mktemp("controlplane"))
    try:
        plane.start()
        api = Api(plane)
        api.settled_objects()
        yield plane, api
    finally:
        plane.stop()


def test_the_object_listing_sees_a_new_object(control_plane):
    """Guard for the guard: a ConfigMap created through the API shows up in the comparison."""
    _plane, api = control_plane
    before = api.settled_objects()
    api.request("/api/v1/namespaces/default/configmaps", "POST",
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "agw-obs-listing-guard"}})
    try:
        added = set(api.objects()) - set(before)
        assert added == {("v1", "configmaps", "default", "agw-obs-listing-guard")}
    finally:
        api.request("/api/v1/namespaces/default/configmaps/agw-obs-listing-guard", "DELETE")


@pytest.mark.parametrize("extra_vars, names", CASES)
def test_apply_mode_changes_nothing_on_the_api_server(control_plane, extra_vars, names):
    plane, api = control_plane
    before = api.settled_objects()
    namespaces = {key[3] for key in before if key[1] == "namespaces"}
    variables = {"agw_obs_kubeconfig": str(plane.kubeconfig_path), "agw_obs_wait": False}
    variables.update(extra_vars)
    proc = run_playbook(REPO / "site.yml", variables, check=False)
    assert proc.returncode != 0, proc.stdout[-3000:]
    for name in names:
        assert name in proc.stdout, (name, proc.stdout[-3000:])
    after = api.objects()
    assert {key[3] for key in after if key[1] == "namespaces"} == namespaces, "a namespace appeared"
    assert after == before, "objects changed: %s" % sorted(set(after.items()) ^ set(before.items()))
    releases = [key for key in after if key[1] == "secrets" and key[3].startswith("sh.helm.release.")]
    assert releases == [], "a Helm release was recorded"
