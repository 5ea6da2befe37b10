"""Talk to the test control plane's API server as its admin user (tests/support/controlplane.py)."""

from __future__ import annotations

import json
import ssl
import time
import urllib.request


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

    def patch_status(self, path, status):
        """Merge-patch an object's status subresource (no kubelet here sets a pod's phase and IP)."""
        req = urllib.request.Request(self.server + path + "/status", data=json.dumps({"status": status}).encode("utf-8"),
                                     method="PATCH", headers={"Content-Type": "application/merge-patch+json"})
        with urllib.request.urlopen(req, timeout=10, context=self.context) as resp:
            return json.loads(resp.read().decode("utf-8"))
