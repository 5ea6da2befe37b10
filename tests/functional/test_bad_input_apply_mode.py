"""Bad input to any role stops site.yml in apply mode before anything is applied, naming the variable.

Against the real control plane (etcd + kube-apiserver + kube-controller-manager built from their
Go modules, tests/support/controlplane.py) through ``agw_obs_kubeconfig``: for every check the
deploy path makes, triggered from a role variable (tests/support/bad_input.py), no namespace,
object or Helm release (a Secret of type helm.sh/release.v1) appears or disappears on the API
server. The comparison lists every resource the API server serves.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.request

import pytest

from support.bad_input import CASES
from support.controlplane import ControlPlane
from support.fixtures import REPO, run_playbook

pytestmark = pytest.mark.services


class Api(object):
    """The control plane's API as its admin user (client certificate from its kubeconfig folder)."""

    def __init__(self, plane):
        self.server = plane.server
        pki = plane.state["pki"]
        self.context = ssl.create_default_context(cafile=pki["ca_crt"])
        self.context.load_cert_chain(pki["admin_crt"], pki["admin_key"])

    def request(self, path, method="GET", body=None):
        data = json.dumps(body).encode("utf-8") if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10, context=self.context) as resp:
            return json.loads(resp.read().decode("utf-8"))

    def objects(self):
        """{(group/version, resource, namespace, name): uid} of every object the API server lists.

        Events and Leases are left out: the control plane writes them by itself.
        """
        versions = ["v1"] + [g["preferredVersion"]["groupVersion"] for g in self.request("/apis")["groups"]]
        out = {}
        for version in versions:
            base = "/api/v1" if version == "v1" else "/apis/" + version
            if version.split("/")[0] in ("events.k8s.io", "coordination.k8s.io"):
                continue
            for resource in self.request(base)["resources"]:
                if "/" in resource["name"] or "list" not in resource["verbs"] or resource["name"] == "events":
                    continue
                for item in self.request("%s/%s" % (base, resource["name"]))["items"]:
                    meta = item["metadata"]
                    out[(version, resource["name"], meta.get("namespace", ""), meta["name"])] = meta.get("uid", "")
        return out

    def settled_objects(self, timeout=60.0):
        """The object set once two listings a second apart agree (controllers finished starting up)."""
        deadline = time.monotonic() + timeout
        last = self.objects()
        while time.monotonic() < deadline:
            time.sleep(1.0)
            now = self.objects()
            if now == last:
                return now
            last = now
        raise AssertionError("the control plane kept changing its objects for %ss" % timeout)


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
