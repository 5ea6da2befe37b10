"""Fences against the real control plane (the session's, support.session): Pod Security, enforced.

The API server runs the PodSecurity admission plugin and kube-controller-manager creates the pods
of every Deployment and StatefulSet, even without nodes: a pod the namespace's level refuses is a
FailedCreate event on its ReplicaSet or StatefulSet. site.yml applies the production profile with
the TEST charts (support.chartrepo) rendering each chart's workloads with the securityContexts the
upstream template would give them from the same values keys (tests/support/testchart/workloads/).
The gateway's proxy Deployment, which the agentgateway controller renders (no controller runs
here), is built from the v1.4.1 proxy template's securityContexts with the rendered parameters'
overlay merged in as the controller does (strategic merge, containers by name): that merge is
upstream behaviour this test models, not runs.

Checked: the namespaces the site creates carry their levels; every workload gets its pods, with no
PodSecurity FailedCreate; the NetworkPolicies are accepted; a second run changes nothing; and a
privileged container added through a chart values override (grafana_extra_values) is refused,
the event printed. DaemonSets (node-exporter, off by default) get no pods without nodes.
"""

from __future__ import annotations

import copy
import time

import pytest
from kubernetes import client

from support.day_two import recap
from support.kube import apply_site

pytestmark = pytest.mark.services

WORKLOADS = {"testChartWorkloads": True}
# agentgateway v1.4.1's proxy pod (controller/pkg/helm/agentgateway, kgateway.gateway.podTemplate): the
# securityContexts the controller renders before the parameters' overlay.
PROXY_POD = {
    "securityContext": {"sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]},
    "containers": [{"name": "agentgateway", "image": "example.invalid/agentgateway:0",
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                        "readOnlyRootFilesystem": True, "runAsNonRoot": True, "runAsUser": 10101}}],
}


def settings(ns, repo, tmp_path):
    return {
        "agw_obs_profile": "production", "agw_obs_loki_enabled": True,
        "agw_obs_monitoring_namespace": ns, "agw_obs_gateway_namespace": ns + "-gw", "agentgateway_namespace": ns + "-gw",
        # the CRDs are the shared plane's (created where missing below), never a release of one module
        "agentgateway_crds_enabled": False, "agentgateway_gateway_api_crds_enabled": False,
        "agw_obs_chart_repository_mirror": repo["url"], "grafana_admin_password_file": str(tmp_path / "grafana-password"),
        "prometheus_extra_values": WORKLOADS, "tempo_extra_values": WORKLOADS, "grafana_extra_values": WORKLOADS,
        "loki_extra_values": WORKLOADS, "agentgateway_controller_extra_values": WORKLOADS,
    }


def merge_overlay(pod, overlay):
    """The parameters' pod spec overlay merged into ``pod`` as a strategic merge patch does: maps merge,
    containers merge by name."""
    out = copy.deepcopy(pod)
    for key, value in overlay.items():
        if key == "containers":
            for patch in value:
                target = next(c for c in out["containers"] if c["name"] == patch["name"])
                for field, sub in patch.items():
                    target[field] = dict(target.get(field) or {}, **sub) if isinstance(sub, dict) else sub
        elif isinstance(value, dict):
            out[key] = dict(out.get(key) or {}, **value)
        else:
            out[key] = value
    return out


def proxy_deployment(cluster, namespace):
    params = cluster.dynamic.resources.get(api_version="agentgateway.dev/v1alpha1", kind="AgentgatewayParameters")
    overlay = params.get(namespace=namespace, name="agentgateway-proxy-observability").to_dict()
    pod = merge_overlay(PROXY_POD, overlay["spec"]["deployment"]["spec"]["template"]["spec"])
    labels = {"gateway.networking.k8s.io/gateway-name": "agentgateway-proxy"}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "agentgateway-proxy", "namespace": namespace},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": pod}}}


def workloads(apps, namespaces):
    found = {}
    for ns in namespaces:
        for item in apps.list_namespaced_deployment(ns).items + apps.list_namespaced_stateful_set(ns).items:
            found["%s/%s" % (ns, item.metadata.name)] = item.spec.selector.match_labels
    return found


def pods_of(core, workload, selector):
    ns = workload.split("/", 1)[0]
    query = ",".join("%s=%s" % item for item in sorted(selector.items()))
    return core.list_namespaced_pod(ns, label_selector=query).items


def pod_security_refusals(core, namespaces):
    return ["%s %s/%s: %s" % (e.reason, e.involved_object.kind, e.involved_object.name, e.message)
            for ns in namespaces for e in core.list_namespaced_event(ns).items
            if e.reason == "FailedCreate" and "PodSecurity" in (e.message or "")]


def changed_tasks(output):
    """The tasks of a playbook run that reported a change, with what they said."""
    return "\n\n".join(block for block in output.split("\nTASK ") if "\nchanged: " in block)


def wait_for(probe, timeout=90):
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(1)


def test_production_pods_are_admitted_under_their_namespaces_levels(
        controlplane, test_chart_repo, verification_cluster, module_namespace, schemas_dir, tmp_path):
    ns, gw = module_namespace, module_namespace + "-gw"
    verification_cluster.crds(sorted((schemas_dir / "agentgateway").glob("*.yaml"))
                              + [schemas_dir / "gateway-api" / name for name in (
                                  "gateway.networking.k8s.io_gateways.yaml", "gateway.networking.k8s.io_httproutes.yaml",
                                  "gateway.networking.k8s.io_referencegrants.yaml")])
    kubeconfig, variables = controlplane.kubeconfig_path, settings(ns, test_chart_repo, tmp_path)
    core, apps = client.CoreV1Api(verification_cluster.api_client), client.AppsV1Api(verification_cluster.api_client)

    first = apply_site(kubeconfig, variables)
    assert recap(first.stdout)["failed"] == 0
    for name in (ns, gw):
        labels = core.read_namespace(name).metadata.labels
        assert {k: v for k, v in labels.items() if k.startswith("pod-security")} == {
            "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/warn": "restricted",
            "pod-security.kubernetes.io/audit": "restricted"}, labels
    policies = client.NetworkingV1Api(verification_cluster.api_client)
    accepted = sorted("%s/%s" % (p.metadata.namespace, p.metadata.name)
                      for name in (ns, gw) for p in policies.list_namespaced_network_policy(name).items)
    assert len(accepted) == 9, accepted

    verification_cluster.apply(proxy_deployment(verification_cluster, gw))
    expected = workloads(apps, (ns, gw))
    assert {"%s/prometheus-server" % ns, "%s/prometheus-kube-state-metrics" % ns, "%s/grafana" % ns, "%s/tempo" % ns,
            "%s/loki" % ns, "%s/loki-chunks-cache" % ns, "%s/loki-results-cache" % ns, "%s/agentgateway" % gw,
            "%s/agentgateway-proxy" % gw, "%s/mock-openai" % gw} <= set(expected), sorted(expected)

    def without_pods():
        return [w for w, selector in expected.items() if not pods_of(core, w, selector)]
    wait_for(lambda: not without_pods())
    missing = without_pods()
    refused = pod_security_refusals(core, (ns, gw))
    print("\nworkloads with pods created under Pod Security 'restricted': %d\n%s"
          % (len(expected) - len(missing), "\n".join(sorted(expected))))
    assert refused == [] and missing == [], "refused: %s\nwithout pods: %s" % (refused, missing)

    second = apply_site(kubeconfig, variables)
    assert recap(second.stdout) == {"changed": 0, "failed": 0}, changed_tasks(second.stdout)

    # a privileged container through the chart values override, the role on its own: the pod is refused
    privileged = dict(variables, grafana_extra_values=dict(
        WORKLOADS, containerSecurityContext={"privileged": True, "allowPrivilegeEscalation": True}))
    third = apply_site(kubeconfig, privileged, args=["--tags", "grafana"])
    assert recap(third.stdout)["failed"] == 0
    refused = wait_for(lambda: pod_security_refusals(core, (ns,)))
    print("\nthe non-compliant override, refused (%d events like this one):\n%s" % (len(refused), refused[:1]))
    assert any('violates PodSecurity "restricted:latest"' in r and "privileged" in r for r in refused), refused
    apps.delete_namespaced_deployment("grafana", ns)  # its ReplicaSet would go on trying for the rest of the session


def test_all_relabels_an_existing_namespace_with_the_pod_security_labels_only(
        controlplane, verification_cluster, module_namespace, capsys):
    """agw_obs_pod_security_labels=all: site_lock sets the Pod Security labels of a namespace the user created
    and nothing else (no managed-by label: it stays the user's, removal never takes it); a second call is no change.
    With created (relabel=managed) only the collection's own namespaces are relabelled, not this one."""
    from ansible_collections.agentgateway.observability.plugins.modules import site_lock  # noqa: E501 pylint: disable=import-outside-toplevel
    from support.modules import run_module  # pylint: disable=import-outside-toplevel

    users = module_namespace + "-users"
    verification_cluster.apply({"apiVersion": "v1", "kind": "Namespace",
                                "metadata": {"name": users, "labels": {"team": "payments",
                                                                       "pod-security.kubernetes.io/enforce": "privileged"}}})
    wanted = {"pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/warn": "baseline",
              "pod-security.kubernetes.io/audit": "baseline", "app.kubernetes.io/managed-by": "agentgateway.observability"}
    args = {"kubeconfig": str(controlplane.kubeconfig_path), "namespace": users, "holder": "test", "state": "acquired",
            "namespaces": {users: wanted}, "relabel": "managed"}
    only_ours = run_module(site_lock, args, capsys)
    assert only_ours["namespaces_relabelled"] == [], "created: the user's namespace is not the collection's"
    run_module(site_lock, dict(args, state="released"), capsys)
    args["relabel"] = "all"
    first = run_module(site_lock, args, capsys)
    assert first["namespaces_relabelled"] == [users] and first["namespaces_created"] == []
    labels = client.CoreV1Api(verification_cluster.api_client).read_namespace(users).metadata.labels
    assert {k: v for k, v in labels.items() if k != "kubernetes.io/metadata.name"} == {
        "team": "payments", "pod-security.kubernetes.io/enforce": "baseline",
        "pod-security.kubernetes.io/warn": "baseline", "pod-security.kubernetes.io/audit": "baseline"}
    again = run_module(site_lock, dict(args, state="acquired"), capsys)
    assert again["namespaces_relabelled"] == []
    run_module(site_lock, dict(args, state="released"), capsys)
    without = run_module(site_lock, dict(args, relabel="none", namespaces={users: dict(wanted, **{
        "pod-security.kubernetes.io/enforce": "restricted"})}), capsys)
    assert without["namespaces_relabelled"] == []
    run_module(site_lock, dict(args, state="released"), capsys)
