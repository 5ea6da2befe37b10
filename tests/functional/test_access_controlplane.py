"""The ``proxy`` access path against a real kube-apiserver v1.36.1 (tests/support/controlplane.py).

What runs for real: the service proxy URL the modules build, authentication with the kubeconfig's
client certificate, a ServiceAccount token, an exec credential plugin, a wrong CA, a bad token,
RBAC on ``services/proxy``, an HTTP proxy in front of the API server, and the API server's own
answers - no Service, no such port, no endpoints (pods Pending, as on this control plane without
nodes), and a pod it cannot reach - each mapped to its cause.

What cannot run here, and why: a 2xx answer from a service through the proxy. The API server only
proxies to endpoint addresses that are Pod IPs (ResourceLocation in pkg/registry/core/service/
storage/storage.go), refuses loopback endpoint addresses (Endpoints/EndpointSlice validation:
"may not be in the loopback range"), and refuses a pod proxy to 127.0.0.1 ("address not allowed");
test services here listen on 127.0.0.1 only. The forwarding itself is the API server's code; the
modules' side of it (URL, headers, cookies, answer handling) is covered above and by the url-mode
tests against the same modules.
"""

from __future__ import annotations

import base64
import json
import pathlib

import pytest

from ansible_collections.agentgateway.observability.plugins.modules import service_probe
from support.cluster import host_address
from support.fixtures import REPO, run_playbook
from support.forward_proxy import ForwardProxy
from support.modules import by_id, run_module
from support.services import free_port

pytestmark = pytest.mark.services
NS = "monitoring"


@pytest.fixture(scope="module")
def cluster(verification_cluster):
    c = verification_cluster
    c.namespace(NS)
    labels = {"app.kubernetes.io/name": "prometheus"}
    c.apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "prometheus-server", "namespace": NS},
             "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
                 "metadata": {"labels": labels},
                 "spec": {"containers": [{"name": "prometheus", "image": "quay.io/prometheus/prometheus:v3.14.0",
                                          "ports": [{"name": "web", "containerPort": 9090}]}]}}}})
    c.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "prometheus-server", "namespace": NS},
             "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": "web"}]}})
    c.wait_for(lambda: [p for p in c.core.list_namespaced_pod(NS).items
                        if p.metadata.name.startswith("prometheus-server")], "the Deployment's pod (Pending)")
    return c


def probe(capsys, kubeconfig, *checks, deadline=3.0, **args):
    base = {"access": "proxy", "kubeconfig": kubeconfig, "checks": list(checks), "deadline": deadline,
            "backoff": 0.2, "fail_on_error": False}
    base.update(args)
    return by_id(run_module(service_probe, base, capsys))


def prometheus_check(check_id="prometheus.ready", port="80", name="prometheus-server"):
    return {"id": check_id, "service": {"namespace": NS, "name": name, "port": port}, "path": "/-/ready"}


def test_the_url_and_the_api_servers_own_answers(cluster, capsys):
    checks = probe(capsys, cluster.kubeconfig, prometheus_check(), prometheus_check("missing", name="no-such-service"),
                   prometheus_check("port", port="8080"))
    ready = checks["prometheus.ready"]
    assert ready["details"]["url"] == cluster.server + "/api/v1/namespaces/monitoring/services/" \
                                                       "http:prometheus-server:80/proxy/-/ready"
    assert ready["cause"] == "no_endpoints" and 'no endpoints available for service "prometheus-server"' in ready["saw"]
    assert "kubectl -n monitoring get pods,endpointslices" in ready["fix"] and ready["attempts"] > 1
    assert "through the API server proxy" in ready["explanation"] or "monitoring/prometheus-server" in \
        ready["explanation"]
    missing = checks["missing"]
    assert missing["cause"] == "service_not_found" and missing["attempts"] == 1
    assert 'services "no-such-service" not found' in missing["saw"]
    assert checks["port"]["cause"] == "service_port_not_found" and "no service port 8080" in checks["port"]["saw"]


def test_a_pod_the_api_server_cannot_reach(cluster, capsys):
    address = host_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address for a pod IP")
    port = free_port()  # nothing listens there: the API server's dial is refused
    cluster.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "unreachable", "namespace": NS},
                   "spec": {"containers": [{"name": "c", "image": "example.invalid/none:1"}]}})
    cluster.pod_ip(NS, "unreachable", address)
    cluster.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "unreachable", "namespace": NS},
                   "spec": {"ports": [{"name": "http", "port": 80, "targetPort": port}]}})
    pod_ref = {"kind": "Pod", "name": "unreachable", "namespace": NS}
    cluster.apply({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "unreachable", "namespace": NS},
                   "subsets": [{"addresses": [{"ip": address, "targetRef": pod_ref}],
                                "ports": [{"name": "http", "port": port}]}]})
    check = probe(capsys, cluster.kubeconfig, prometheus_check("unreachable", name="unreachable"))["unreachable"]
    assert check["cause"] == "upstream_unreachable" and "connection refused" in check["saw"]
    assert "error trying to reach service" in check["saw"]


def test_loopback_endpoints_are_refused_by_the_api_server(cluster):
    from kubernetes.client.rest import ApiException  # pylint: disable=import-outside-toplevel
    with pytest.raises(ApiException) as info:
        cluster.apply({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "loop", "namespace": NS},
                       "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": 8080}]}]})
    assert info.value.status == 422 and "loopback" in info.value.body


def test_a_serviceaccount_token_rbac_and_a_bad_token(cluster, capsys, tmp_path):
    token = cluster.token(NS, "verifier")
    with_token = cluster.kubeconfig_for(tmp_path / "token.yaml", {"token": token})
    denied = probe(capsys, with_token, prometheus_check())["prometheus.ready"]
    assert denied["cause"] == "apiserver_forbidden" and 'cannot get resource "services/proxy"' in denied["saw"]
    assert "get` on `services/proxy` in namespace monitoring" in denied["fix"] and denied["attempts"] == 1
    cluster.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                   "metadata": {"name": "verify", "namespace": NS},
                   "rules": [{"apiGroups": [""], "resources": ["services/proxy"], "verbs": ["get", "create"]}]})
    cluster.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "verify", "namespace": NS},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "verify"},
                   "subjects": [{"kind": "ServiceAccount", "name": "verifier", "namespace": NS}]})

    def through_rbac():
        check = probe(capsys, with_token, prometheus_check(), deadline=1)["prometheus.ready"]
        return check if check["cause"] == "no_endpoints" else None

    allowed = cluster.wait_for(through_rbac, "RBAC to apply")
    assert allowed["cause"] == "no_endpoints", "the token authenticated and RBAC let it through to the proxy"
    bad = cluster.kubeconfig_for(tmp_path / "bad.yaml", {"token": "not-a-token"})
    rejected = probe(capsys, bad, prometheus_check())["prometheus.ready"]
    assert rejected["cause"] == "apiserver_unauthorized" and "bad.yaml" in rejected["fix"]


def test_an_exec_credential_plugin(cluster, capsys, tmp_path):
    token = cluster.token(NS, "verifier")
    script = tmp_path / "credential.sh"
    script.write_text("#!/bin/sh\nprintf '%s'\n" % json.dumps({"apiVersion": "client.authentication.k8s.io/v1",
                                                               "kind": "ExecCredential", "status": {"token": token}}))
    script.chmod(0o755)
    kubeconfig = cluster.kubeconfig_for(tmp_path / "exec.yaml", {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": str(script), "interactiveMode": "Never"}})
    check = probe(capsys, kubeconfig, prometheus_check())["prometheus.ready"]
    assert check["cause"] in ("no_endpoints", "apiserver_forbidden"), check
    assert "Unauthorized" not in check["saw"], "the exec plugin's token authenticated"


def test_a_wrong_ca_is_a_tls_error(cluster, capsys, tmp_path):
    from support.contract import self_signed_context  # pylint: disable=import-outside-toplevel
    _context, cert = self_signed_context(tmp_path)
    base = json.loads(pathlib.Path(cluster.kubeconfig).read_text())
    kubeconfig = cluster.kubeconfig_for(tmp_path / "ca.yaml", base["users"][0]["user"],
                                        ca_data=base64.b64encode(open(cert, "rb").read()).decode())
    check = probe(capsys, kubeconfig, prometheus_check())["prometheus.ready"]
    assert check["cause"] == "tls" and "CERTIFICATE_VERIFY_FAILED" in check["saw"] and check["attempts"] == 1


def test_through_an_http_proxy_in_front_of_the_api_server(cluster, capsys, tmp_path):
    forward = ForwardProxy()
    try:
        check = probe(capsys, cluster.kubeconfig, prometheus_check(), proxy_url=forward.url)["prometheus.ready"]
        base = json.loads(pathlib.Path(cluster.kubeconfig).read_text())
        via_kubeconfig = cluster.kubeconfig_for(tmp_path / "proxied.yaml", base["users"][0]["user"],
                                                proxy_url=forward.url)
        second = probe(capsys, via_kubeconfig, prometheus_check())["prometheus.ready"]
    finally:
        forward.stop()
    assert check["cause"] == second["cause"] == "no_endpoints"
    assert [s[0] for s in forward.seen][:2] == ["CONNECT", "CONNECT"]
    assert forward.seen[0][1] == cluster.server.split("://", 1)[1]


def test_the_role_in_proxy_mode_says_why_each_hop_fails(cluster, tmp_path):
    """verify.yml against this control plane: Services missing or without ready pods, each diagnosed."""
    proc = run_playbook(REPO / "playbooks" / "verify.yml", {
        "agw_obs_access": "proxy", "agw_obs_kubeconfig": cluster.kubeconfig,
        "verification_report_dir": str(tmp_path / "report"), "verification_deadline": 2, "verification_timeout": 2,
        "verification_grafana_password": "unused-password"}, check=False)
    assert proc.returncode != 0 and "Verification failed" in proc.stdout
    report = json.loads((tmp_path / "report" / "verification.json").read_text())
    checks = {c["id"]: c for c in report["checks"]}
    assert checks["gateway.request.gpt-4.0"]["cause"] == "service_not_found"
    assert checks["prometheus.ready"]["cause"] == "no_endpoints"
    assert checks["grafana.health"]["cause"] == "service_not_found"
    assert report["context"]["access"] == "proxy"
