"""The ``proxy`` access path against a real kube-apiserver v1.36.1 (the session's control plane,
support.session; everything in this module's namespace).

What runs for real: the service proxy URL the modules build, the kubeconfig loaded by the
kubernetes library (module_utils/access.py through kube_client.configuration), authentication with
its client certificate, a ServiceAccount token, an exec credential plugin (one that works and one
that fails), a wrong CA, a bad token, RBAC on ``services/proxy``, an HTTP proxy in front of the API
server, and the API server's own answers - no Service, no such port, no endpoints (pods Pending,
as on this control plane without nodes), and a pod it cannot reach - each mapped to its cause.

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


@pytest.fixture(scope="module")
def cluster(verification_cluster, module_namespace):
    """The control plane with Prometheus' Deployment (its pod Pending) and Service in this module's namespace."""
    c = verification_cluster
    ns = module_namespace
    c.namespace(ns)
    labels = {"app.kubernetes.io/name": "prometheus"}
    c.apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "prometheus-server", "namespace": ns},
             "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
                 "metadata": {"labels": labels},
                 "spec": {"containers": [{"name": "prometheus", "image": "quay.io/prometheus/prometheus:v3.14.0",
                                          "ports": [{"name": "web", "containerPort": 9090}]}]}}}})
    c.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "prometheus-server", "namespace": ns},
             "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": "web"}]}})
    c.wait_for(lambda: [p for p in c.core.list_namespaced_pod(ns).items
                        if p.metadata.name.startswith("prometheus-server")], "the Deployment's pod (Pending)")
    return c


def probe(capsys, kubeconfig, *checks, deadline=1.0, **args):
    """service_probe through the API server proxy; a cause it retries (no endpoints) waits out ``deadline``."""
    base = {"access": "proxy", "kubeconfig": kubeconfig, "checks": list(checks), "deadline": deadline,
            "backoff": 0.2, "fail_on_error": False}
    base.update(args)
    return by_id(run_module(service_probe, base, capsys))


def prometheus_check(ns, check_id="prometheus.ready", port="80", name="prometheus-server"):
    return {"id": check_id, "service": {"namespace": ns, "name": name, "port": port}, "path": "/-/ready"}


def test_the_url_and_the_api_servers_own_answers(cluster, module_namespace, capsys):
    ns = module_namespace
    checks = probe(capsys, cluster.kubeconfig, prometheus_check(ns),
                   prometheus_check(ns, "missing", name="no-such-service"), prometheus_check(ns, "port", port="8080"),
                   deadline=2.0)
    ready = checks["prometheus.ready"]
    assert ready["details"]["url"] == cluster.server + "/api/v1/namespaces/%s/services/" \
                                                       "http:prometheus-server:80/proxy/-/ready" % ns
    assert ready["cause"] == "no_endpoints" and 'no endpoints available for service "prometheus-server"' in ready["saw"]
    assert "kubectl -n %s get pods,endpointslices" % ns in ready["fix"] and ready["attempts"] > 1
    assert "through the API server proxy" in ready["explanation"] or "%s/prometheus-server" % ns in \
        ready["explanation"]
    missing = checks["missing"]
    assert missing["cause"] == "service_not_found" and missing["attempts"] == 1
    assert 'services "no-such-service" not found' in missing["saw"]
    assert checks["port"]["cause"] == "service_port_not_found" and "no service port 8080" in checks["port"]["saw"]


def test_a_pod_the_api_server_cannot_reach(cluster, module_namespace, capsys):
    ns = module_namespace
    address = host_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address for a pod IP")
    port = free_port()  # nothing listens there: the API server's dial is refused
    cluster.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "unreachable", "namespace": ns},
                   "spec": {"containers": [{"name": "c", "image": "example.invalid/none:1"}]}})
    cluster.pod_ip(ns, "unreachable", address)
    cluster.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "unreachable", "namespace": ns},
                   "spec": {"ports": [{"name": "http", "port": 80, "targetPort": port}]}})
    pod_ref = {"kind": "Pod", "name": "unreachable", "namespace": ns}
    cluster.apply({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "unreachable", "namespace": ns},
                   "subsets": [{"addresses": [{"ip": address, "targetRef": pod_ref}],
                                "ports": [{"name": "http", "port": port}]}]})
    check = probe(capsys, cluster.kubeconfig, prometheus_check(ns, "unreachable", name="unreachable"))["unreachable"]
    assert check["cause"] == "upstream_unreachable" and "connection refused" in check["saw"]
    assert "error trying to reach service" in check["saw"]


def test_loopback_endpoints_are_refused_by_the_api_server(cluster, module_namespace):
    from kubernetes.client.rest import ApiException  # pylint: disable=import-outside-toplevel
    with pytest.raises(ApiException) as info:
        cluster.apply({"apiVersion": "v1", "kind": "Endpoints",
                       "metadata": {"name": "loop", "namespace": module_namespace},
                       "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": 8080}]}]})
    assert info.value.status == 422 and "loopback" in info.value.body


def test_a_serviceaccount_token_rbac_and_a_bad_token(cluster, module_namespace, capsys, tmp_path):
    ns = module_namespace
    token = cluster.token(ns, "verifier")
    with_token = cluster.kubeconfig_for(tmp_path / "token.yaml", {"token": token})
    denied = probe(capsys, with_token, prometheus_check(ns))["prometheus.ready"]
    assert denied["cause"] == "apiserver_forbidden" and 'cannot get resource "services/proxy"' in denied["saw"]
    assert "get` on `services/proxy` in namespace %s" % ns in denied["fix"] and denied["attempts"] == 1
    cluster.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                   "metadata": {"name": "verify", "namespace": ns},
                   "rules": [{"apiGroups": [""], "resources": ["services/proxy"], "verbs": ["get", "create"]}]})
    cluster.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "verify", "namespace": ns},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "verify"},
                   "subjects": [{"kind": "ServiceAccount", "name": "verifier", "namespace": ns}]})

    def through_rbac():
        check = probe(capsys, with_token, prometheus_check(ns))["prometheus.ready"]
        return check if check["cause"] == "no_endpoints" else None

    allowed = cluster.wait_for(through_rbac, "RBAC to apply")
    assert allowed["cause"] == "no_endpoints", "the token authenticated and RBAC let it through to the proxy"
    bad = cluster.kubeconfig_for(tmp_path / "bad.yaml", {"token": "not-a-token"})
    rejected = probe(capsys, bad, prometheus_check(ns))["prometheus.ready"]
    assert rejected["cause"] == "apiserver_unauthorized" and "bad.yaml" in rejected["fix"]


def test_an_exec_credential_plugin(cluster, module_namespace, capsys, tmp_path):
    token = cluster.token(module_namespace, "verifier")
    script = tmp_path / "credential.sh"
    script.write_text("#!/bin/sh\nprintf '%s'\n" % json.dumps({"apiVersion": "client.authentication.k8s.io/v1",
                                                               "kind": "ExecCredential", "status": {"token": token}}))
    script.chmod(0o755)
    kubeconfig = cluster.kubeconfig_for(tmp_path / "exec.yaml", {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": str(script), "interactiveMode": "Never"}})
    check = probe(capsys, kubeconfig, prometheus_check(module_namespace))["prometheus.ready"]
    assert check["cause"] in ("no_endpoints", "apiserver_forbidden"), check
    assert "Unauthorized" not in check["saw"], "the exec plugin's token authenticated"


def test_an_exec_credential_plugin_that_fails(cluster, module_namespace, capsys, tmp_path):
    """The kubernetes library logs a failed plugin and goes on without credentials: the module says why instead."""
    script = tmp_path / "credential.sh"
    script.write_text("#!/bin/sh\necho 'the SSO session expired' >&2\nexit 3\n")
    script.chmod(0o755)
    kubeconfig = cluster.kubeconfig_for(tmp_path / "exec.yaml", {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": str(script), "interactiveMode": "Never"}})
    check = probe(capsys, kubeconfig, prometheus_check(module_namespace), context="test")["prometheus.ready"]
    assert check["cause"] == "config" and check["attempts"] == 1, check
    assert check["saw"].startswith("the credential plugin of context test gave no credentials: "), check["saw"]
    assert "the SSO session expired" in check["saw"], check["saw"]
    assert "Correct the setting named above" in check["fix"]


def test_a_wrong_ca_is_a_tls_error(cluster, module_namespace, capsys, tmp_path):
    from support.contract import self_signed_context  # pylint: disable=import-outside-toplevel
    _context, cert = self_signed_context(tmp_path)
    base = json.loads(pathlib.Path(cluster.kubeconfig).read_text())
    kubeconfig = cluster.kubeconfig_for(tmp_path / "ca.yaml", base["users"][0]["user"],
                                        ca_data=base64.b64encode(open(cert, "rb").read()).decode())
    check = probe(capsys, kubeconfig, prometheus_check(module_namespace))["prometheus.ready"]
    assert check["cause"] == "tls" and "CERTIFICATE_VERIFY_FAILED" in check["saw"] and check["attempts"] == 1


def test_through_an_http_proxy_in_front_of_the_api_server(cluster, module_namespace, capsys, tmp_path):
    forward = ForwardProxy()
    try:
        check = probe(capsys, cluster.kubeconfig, prometheus_check(module_namespace),
                      proxy_url=forward.url)["prometheus.ready"]
        base = json.loads(pathlib.Path(cluster.kubeconfig).read_text())
        via_kubeconfig = cluster.kubeconfig_for(tmp_path / "proxied.yaml", base["users"][0]["user"],
                                                proxy_url=forward.url)
        second = probe(capsys, via_kubeconfig, prometheus_check(module_namespace))["prometheus.ready"]
    finally:
        forward.stop()
    assert check["cause"] == second["cause"] == "no_endpoints"
    assert [s[0] for s in forward.seen][:2] == ["CONNECT", "CONNECT"]
    assert forward.seen[0][1] == cluster.server.split("://", 1)[1]


def test_the_role_in_proxy_mode_says_why_each_hop_fails(cluster, module_namespace, tmp_path):
    """verify.yml against this control plane: Services missing or without ready pods, each diagnosed."""
    proc = run_playbook(REPO / "playbooks" / "verify.yml", {
        "agw_obs_access": "proxy", "agw_obs_kubeconfig": cluster.kubeconfig,
        "agw_obs_monitoring_namespace": module_namespace, "agw_obs_gateway_namespace": module_namespace,
        "verification_report_dir": str(tmp_path / "report"), "verification_deadline": 1, "verification_timeout": 2,
        "verification_grafana_password": "unused-password", "verification_models": ["gpt-4"],
        "verification_priced_models": ["gpt-4"]}, check=False)
    assert proc.returncode != 0 and "Verification failed" in proc.stdout
    report = json.loads((tmp_path / "report" / "verification.json").read_text())
    checks = {c["id"]: c for c in report["checks"]}
    assert checks["gateway.request.gpt-4.0"]["cause"] == "service_not_found"
    assert checks["prometheus.ready"]["cause"] == "no_endpoints"
    assert checks["grafana.health"]["cause"] == "service_not_found"
    assert report["context"]["access"] == "proxy"
