"""Fences: who may connect to what under the NetworkPolicies of the production profile.

The policies are the ones site.yml renders for the production profile (planned in-process, byte for
byte what site.yml writes, test_resources.py proves it), with Loki on, one allowed namespace and one
allowed address range. cyclonus (github.com/mattfenwick/cyclonus v0.5.6, built by `make setup`)
answers, for every connection of the matrix, whether the policies allow it; the test prints the
matrix and fails on any difference from what the README's "Fences" promises.

The pods' labels are those the pinned charts put on their pods (read in each chart's templates at
its pinned version; the roles' READMEs cite them): the policies select by a subset of them, so the
charts' other labels are there too, as they would be in a cluster.
"""

from __future__ import annotations

import pytest

from support import planner
from support.cyclonus import matrix_table, query_traffic

GATEWAY_NS, MONITORING = "agentgateway-system", "monitoring"
ALLOWED_NS, ALLOWED_CIDR = "ingress-nginx", "10.20.0.0/16"
SETTINGS = {"agw_obs_profile": "production", "agw_obs_loki_enabled": True,
            "agw_obs_network_policy_allowed_namespaces": [ALLOWED_NS],
            "agw_obs_network_policy_allowed_cidrs": [ALLOWED_CIDR]}


def chart_pod(namespace, labels):
    return {"namespace": namespace, "pod_labels": dict(labels)}


# Pod labels at the pinned chart versions (prometheus 29.27.0 with kube-state-metrics 8.4.0, grafana
# 12.11.1, tempo 2.2.4, loki 18.11.0; the agentgateway v1.4.1 deployer's proxy pods).
PODS = {
    "prometheus": chart_pod(MONITORING, {
        "app.kubernetes.io/name": "prometheus", "app.kubernetes.io/component": "server",
        "app.kubernetes.io/instance": "prometheus", "app.kubernetes.io/part-of": "prometheus",
        "app.kubernetes.io/version": "v3.14.0", "helm.sh/chart": "prometheus-29.27.0"}),
    "kube-state-metrics": chart_pod(MONITORING, {
        "app.kubernetes.io/name": "kube-state-metrics", "app.kubernetes.io/instance": "prometheus",
        "app.kubernetes.io/component": "metrics", "app.kubernetes.io/part-of": "kube-state-metrics",
        "app.kubernetes.io/managed-by": "Helm"}),
    "grafana": chart_pod(MONITORING, {
        "app.kubernetes.io/name": "grafana", "app.kubernetes.io/instance": "grafana",
        "app.kubernetes.io/version": "13.2.0", "helm.sh/chart": "grafana-12.11.1"}),
    "tempo": chart_pod(MONITORING, {"app.kubernetes.io/name": "tempo", "app.kubernetes.io/instance": "tempo"}),
    "loki": chart_pod(MONITORING, {
        "app.kubernetes.io/name": "loki", "app.kubernetes.io/instance": "loki",
        "app.kubernetes.io/component": "single-binary", "app.kubernetes.io/part-of": "memberlist"}),
    "loki-chunks-cache": chart_pod(MONITORING, {
        "app.kubernetes.io/name": "loki", "app.kubernetes.io/instance": "loki",
        "app.kubernetes.io/component": "memcached-chunks-cache", "name": "memcached-chunks-cache"}),
    "gateway": chart_pod(GATEWAY_NS, {
        "gateway.networking.k8s.io/gateway-name": "agentgateway-proxy",
        "app.kubernetes.io/name": "agentgateway-proxy", "app.kubernetes.io/instance": "agentgateway-proxy"}),
    "controller": chart_pod(GATEWAY_NS, {"app.kubernetes.io/name": "agentgateway",
                                         "app.kubernetes.io/instance": "agentgateway"}),
    # the mock's labels are read from its rendered Deployment (below)
    "ingress": chart_pod(ALLOWED_NS, {"app.kubernetes.io/name": "ingress-nginx"}),
    "other-in-monitoring": chart_pod(MONITORING, {"app": "backup-job"}),
    "unrelated": chart_pod("team-a", {"app": "curl"}),
    "allowed-address": {"ip": "10.20.0.5"},
    "outside-address": {"ip": "203.0.113.7"},
}

# (destination, port, [sources allowed], [sources denied]); "unrelated" (a pod of an unrelated
# namespace) is tried against every port: denied unless listed as allowed (the gateway's open ports).
MATRIX = [
    ("prometheus", 9090, ["grafana", "tempo", "prometheus", "ingress", "allowed-address"],
     ["gateway", "kube-state-metrics", "other-in-monitoring", "outside-address"]),
    ("kube-state-metrics", 8080, ["prometheus"], ["grafana", "ingress"]),
    ("tempo", 4317, ["gateway", "controller"], ["grafana", "prometheus", "ingress", "allowed-address"]),
    ("tempo", 4318, ["gateway"], ["other-in-monitoring"]),
    ("tempo", 3200, ["grafana", "prometheus", "ingress", "allowed-address"], ["gateway", "other-in-monitoring"]),
    ("loki", 3100, ["gateway", "grafana", "prometheus", "ingress"], ["other-in-monitoring", "outside-address"]),
    ("loki-chunks-cache", 11211, ["loki"], ["grafana", "gateway"]),
    ("grafana", 3000, ["ingress", "allowed-address"], ["prometheus", "other-in-monitoring", "outside-address"]),
    ("mock", 8080, ["gateway"], ["controller", "ingress", "prometheus", "outside-address"]),
    ("gateway", 15020, ["prometheus"], ["controller", "grafana", "ingress", "outside-address"]),
    ("gateway", 8080, ["ingress", "outside-address", "controller", "unrelated"], []),
    ("gateway", 15021, ["outside-address", "unrelated"], []),
    ("gateway", 15000, [], ["ingress", "outside-address"]),
]


@pytest.fixture(scope="module")
def production():
    objects = planner.objects(SETTINGS)
    policies = {path: obj for path, obj in objects.items() if obj.get("kind") == "NetworkPolicy"}
    mock = objects["manifests/%s/Deployment-mock-openai.yaml" % GATEWAY_NS]
    pods = dict(PODS, mock=chart_pod(GATEWAY_NS, mock["spec"]["template"]["metadata"]["labels"]))
    return policies, {name: dict(peer, name=name) for name, peer in pods.items()}


def connections(pods):
    rows = []
    for destination, port, allowed, denied in MATRIX:
        denied = denied + ([] if "unrelated" in allowed else ["unrelated"])
        for source, expected in [(s, True) for s in allowed] + [(s, False) for s in denied]:
            rows.append(({"source": pods[source], "destination": pods[destination], "port": port}, expected,
                         "%s -> %s:%d" % (source, destination, port)))
    return rows


def test_a_network_policy_for_every_component(production):
    policies, _pods = production
    assert sorted(policies) == [
        "manifests/agentgateway-system/NetworkPolicy-agentgateway-proxy-metrics.yaml",
        "manifests/agentgateway-system/NetworkPolicy-mock-openai.yaml",
        "manifests/monitoring/NetworkPolicy-grafana.yaml",
        "manifests/monitoring/NetworkPolicy-loki-chunks-cache.yaml",
        "manifests/monitoring/NetworkPolicy-loki-results-cache.yaml",
        "manifests/monitoring/NetworkPolicy-loki.yaml",
        "manifests/monitoring/NetworkPolicy-prometheus-kube-state-metrics.yaml",
        "manifests/monitoring/NetworkPolicy-prometheus-server.yaml",
        "manifests/monitoring/NetworkPolicy-tempo.yaml",
    ]
    assert all(p["spec"]["policyTypes"] == ["Ingress"] for p in policies.values()), "ingress only"


def test_the_connectivity_matrix(production):
    policies, pods = production
    rows = connections(pods)
    verdicts = query_traffic(list(policies.values()), [connection for connection, _expected, _name in rows])
    table = matrix_table([(connection, expected, verdict) for (connection, expected, _name), verdict in zip(rows, verdicts)])
    print("\n%d connections, %d denied\n%s" % (len(rows), sum(1 for _c, e, _n in rows if not e), table))
    wrong = [name for (_connection, expected, name), verdict in zip(rows, verdicts) if verdict != expected]
    assert wrong == [], "cyclonus disagrees on:\n%s\n%s" % ("\n".join(wrong), table)
    assert len(rows) >= 30 and sum(1 for _c, e, _n in rows if not e) >= 12


def test_existing_stack_mode_fences_only_what_the_collection_runs():
    """The stack is the user's: only the gateway's metrics port (from the existing Prometheus's namespace)
    and the mock backend are fenced."""
    from support.session import EXISTING  # pylint: disable=import-outside-toplevel

    objects = planner.objects(dict(EXISTING, agw_obs_profile="production", existing_stack_namespace="kps"))
    policies = [obj for obj in objects.values() if obj.get("kind") == "NetworkPolicy"]
    assert sorted(p["metadata"]["name"] for p in policies) == ["agentgateway-proxy-metrics", "mock-openai"]
    scraper, stranger = chart_pod("kps", {"app.kubernetes.io/name": "prometheus"}), PODS["unrelated"]
    tries = [{"source": source, "destination": PODS["gateway"], "port": 15020} for source in (scraper, stranger)]
    assert query_traffic(policies, tries) == [True, False]
    assert not any(obj.get("kind") == "Namespace" and obj["metadata"]["name"] == "kps" for obj in objects.values()), \
        "the existing stack's namespace keeps its labels"


def test_the_kind_profile_is_unchanged_unless_switched_on(site_render):
    """The kind render (the session's site.yml render with the defaults) has no fence; switched on in kind,
    the same policies and labels as in production appear."""
    rendered = "\n".join(p.read_text(encoding="utf-8") for p in site_render("default").rglob("*.yaml"))
    for marker in ("NetworkPolicy", "pod-security.kubernetes.io", "seccompProfile", "runAsNonRoot"):
        assert marker not in rendered, marker
    switched = planner.objects({"agw_obs_network_policies": True, "agw_obs_pod_security_labels": "created"})
    assert sum(1 for obj in switched.values() if obj.get("kind") == "NetworkPolicy") == 6
    namespaces = {obj["metadata"]["name"]: obj["metadata"]["labels"] for obj in switched.values() if obj.get("kind") == "Namespace"}
    assert namespaces[MONITORING]["pod-security.kubernetes.io/enforce"] == "restricted"
