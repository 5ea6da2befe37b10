"""The real control plane (tests/support/controlplane.py) for the proxy access path and diagnose tests.

``verification_cluster`` is the session's control plane (support.session, shared by every test
module, each in namespaces of its own); ``Cluster`` creates objects through the real API server
with the official kubernetes client (cluster-wide ones such as CRDs only where missing, since
other modules may hold them), patches pod status (no kubelet does it here), and writes
kubeconfigs for other users (tokens, exec plugins).
"""

from __future__ import annotations

import json
import pathlib
import socket
import time

import pytest
import yaml
from kubernetes import client, config, dynamic
from kubernetes.client.rest import ApiException


class Cluster(object):
    def __init__(self, plane):
        self.plane = plane
        self.kubeconfig = str(plane.kubeconfig_path)
        self.server = plane.server
        self.api_client = config.new_client_from_config(config_file=self.kubeconfig)
        self.dynamic = dynamic.DynamicClient(self.api_client)
        self.core = client.CoreV1Api(self.api_client)

    def apply(self, obj):
        resource = self.dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        namespace = obj["metadata"].get("namespace")
        try:
            return resource.create(body=obj, namespace=namespace)
        except ApiException as exc:
            if exc.status != 409:
                raise
            return resource.replace(body=obj, namespace=namespace, name=obj["metadata"]["name"])

    def ensure(self, obj):
        """Create ``obj`` unless it exists (cluster-wide objects such as CRDs other test modules may share)."""
        resource = self.dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        try:
            return resource.create(body=obj, namespace=obj["metadata"].get("namespace"))
        except ApiException as exc:
            if exc.status != 409:
                raise
            return None

    def crds(self, paths):
        """Create the CRDs in the YAML files ``paths`` where missing, and wait until each is Established."""
        names = []
        for path in paths:
            crd = yaml.safe_load(pathlib.Path(path).read_text(encoding="utf-8"))
            self.ensure(crd)
            names.append(crd["metadata"]["name"])
        for name in names:
            self.wait_crd(name)

    def namespace(self, name):
        self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def pod_ip(self, namespace, name, ip):
        """Set a Pending pod's IP in its status, as a kubelet would."""
        self.core.patch_namespaced_pod_status(name, namespace, {"status": {"podIP": ip, "podIPs": [{"ip": ip}]}})

    def token(self, namespace, service_account, seconds=3600):
        self.apply({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": service_account, "namespace": namespace}})
        request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(
            audiences=["https://kubernetes.default.svc.cluster.local"], expiration_seconds=seconds))
        return self.core.create_namespaced_service_account_token(service_account, namespace, request).status.token

    def kubeconfig_for(self, path, user, ca_data=None, proxy_url=None):
        """A kubeconfig for this API server with another ``user`` entry (token, exec, ...)."""
        base = json.loads(pathlib.Path(self.kubeconfig).read_text())
        cluster = dict(base["clusters"][0]["cluster"])
        if ca_data is not None:
            cluster["certificate-authority-data"] = ca_data
        if proxy_url:
            cluster["proxy-url"] = proxy_url
        doc = {"apiVersion": "v1", "kind": "Config", "current-context": "test",
               "clusters": [{"name": "test", "cluster": cluster}], "users": [{"name": "test", "user": user}],
               "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}]}
        pathlib.Path(path).write_text(yaml.safe_dump(doc))
        return str(path)

    def wait_crd(self, name, timeout=60):
        api = client.ApiextensionsV1Api(self.api_client)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            crd = api.read_custom_resource_definition(name)
            if any(c.type == "Established" and c.status == "True" for c in (crd.status.conditions or [])):
                # the dynamic client's discovery cache must see the new kind too
                self.dynamic = dynamic.DynamicClient(self.api_client)
                return
            time.sleep(0.2)
        raise AssertionError("CRD %s not established" % name)

    def wait_for(self, check, what, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError("%s not reached in %ss" % (what, timeout))


def host_address():
    """A non-loopback IPv4 address of this machine, or None (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.123", 9))
            address = sock.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


@pytest.fixture(scope="module")
def verification_cluster(controlplane):
    """The session's control plane (support.session) with a client to create objects and patch pod status."""
    return Cluster(controlplane)
