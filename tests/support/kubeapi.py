"""Talk to the test control plane's API server as its admin user (tests/support/controlplane.py)."""

from __future__ import annotations

import json
import ssl
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

    def patch_status(self, path, status):
        """Merge-patch an object's status subresource (no kubelet here sets a pod's phase and IP)."""
        req = urllib.request.Request(self.server + path + "/status", data=json.dumps({"status": status}).encode("utf-8"),
                                     method="PATCH", headers={"Content-Type": "application/merge-patch+json"})
        with urllib.request.urlopen(req, timeout=10, context=self.context) as resp:
            return json.loads(resp.read().decode("utf-8"))
