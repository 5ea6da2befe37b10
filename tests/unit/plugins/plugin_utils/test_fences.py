"""Fences: the NetworkPolicy builder and the Pod Security levels of the site's namespaces."""

from __future__ import annotations

import pytest

from ansible_collections.agentgateway.observability.plugins.plugin_utils import desired_state as ds
from ansible_collections.agentgateway.observability.plugins.plugin_utils import fences

PODS = {"app.kubernetes.io/name": "tempo"}


def policy(*rules):
    return fences.network_policy("tempo", "monitoring", PODS, list(rules), component="tempo")


def test_a_policy_is_ingress_only_for_the_selected_pods():
    out = policy({"ports": [4317, 4318], "from": [{"namespace": "agentgateway-system"}]})
    assert out["metadata"] == {"name": "tempo", "namespace": "monitoring", "labels": {
        "app.kubernetes.io/part-of": "agentgateway-observability",
        "app.kubernetes.io/managed-by": "agentgateway.observability", "app.kubernetes.io/component": "tempo"}}
    assert out["spec"]["podSelector"] == {"matchLabels": PODS}
    assert out["spec"]["policyTypes"] == ["Ingress"]
    assert out["spec"]["ingress"] == [{
        "ports": [{"protocol": "TCP", "port": 4317}, {"protocol": "TCP", "port": 4318}],
        "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "agentgateway-system"}}}]}]


@pytest.mark.parametrize("peer, expected", [
    ({"namespace": "monitoring", "pods": {"app": "grafana"}},
     [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
       "podSelector": {"matchLabels": {"app": "grafana"}}}]),
    ({"namespaces": ["b", "a", "b"]},
     [{"namespaceSelector": {"matchExpressions": [
         {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["a", "b"]}]}}]),
    ({"namespaces": ["ingress"]}, [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress"}}}]),
    ({"cidrs": ["10.0.0.0/8", "192.168.0.0/16"]}, [{"ipBlock": {"cidr": "10.0.0.0/8"}}, {"ipBlock": {"cidr": "192.168.0.0/16"}}]),
    ({"namespaces": []}, []),
    ({"cidrs": []}, []),
])
def test_each_peer_kind(peer, expected):
    assert fences.peers(peer) == expected


def test_an_empty_allow_list_opens_nothing_and_anyone_drops_from():
    out = policy({"ports": [3200], "from": [{"namespaces": []}, {"cidrs": []}]},
                 {"ports": [8080], "from": [{"namespace": "x"}, {"anyone": True}]})
    # the first rule lists nobody: dropped (not a rule without 'from', which would open the port to all)
    assert out["spec"]["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8080}]}]


def test_a_policy_without_rules_denies_all_ingress():
    """No 'ingress' key with policyTypes [Ingress]: deny all, in the form the API server stores (no empty
    list, which would be a change on every run)."""
    spec = policy({"ports": [3200], "from": [{"namespaces": []}]})["spec"]
    assert spec == {"podSelector": {"matchLabels": PODS}, "policyTypes": ["Ingress"]}


def test_port_ranges_and_named_ports():
    out = policy({"ports": [{"port": 15000, "end_port": 15021}, "http"], "from": [{"namespace": "m"}]})
    expected = [{"protocol": "TCP", "port": 15000, "endPort": 15021}, {"protocol": "TCP", "port": "http"}]
    assert out["spec"]["ingress"][0]["ports"] == expected


@pytest.mark.parametrize("rule, message", [
    ({"ports": [1], "from": [{"namespace": ""}]}, "'namespace' must be a namespace name"),
    ({"ports": [1], "from": [{"namespace": "a", "pods": {}}]}, "'pods' must be a mapping"),
    ({"ports": [1], "from": [{"pods": {"a": "b"}}]}, "a peer is one of"),
    ({"ports": [1], "from": [{"anyone": "yes"}]}, "'anyone' must be true"),
    ({"from": [{"namespace": "a"}]}, "'ports' and 'from'"),
    ({"ports": [{"port": 10, "end_port": 5}], "from": [{"namespace": "a"}]}, "end_port 5 is below port 10"),
])
def test_bad_rules_are_named(rule, message):
    with pytest.raises(fences.FenceError, match=message):
        policy(rule)


def test_the_most_permissive_level_wins_and_unmanaged_stays_unmanaged():
    levels = fences.namespace_levels([
        ("prometheus", {"monitoring": "restricted"}), ("loki", {"monitoring": "baseline"}),
        ("tempo", {"monitoring": "restricted"}), ("gateway_observability", {"gw": "unmanaged"}),
        ("mock_backend", {"gw": "restricted"}), ("agentgateway", {"ctl": "restricted"})])
    assert levels == {"monitoring": "baseline", "gw": "unmanaged", "ctl": "restricted"}
    with pytest.raises(fences.FenceError, match="role loki, namespace monitoring: the Pod Security level"):
        fences.namespace_levels([("loki", {"monitoring": "strict"})])


def test_labels_of_a_level():
    assert fences.pod_security_labels("baseline") == {
        "pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/warn": "baseline",
        "pod-security.kubernetes.io/audit": "baseline"}
    assert fences.pod_security_labels("unmanaged") == {}


# ---- the site: which namespaces carry which labels ---------------------------------------------
CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "monitoring"}}


def site(mode, **more):
    plans = [ds.Plan("prometheus", after_releases=[CM], pod_security={"monitoring": "restricted"}),
             ds.Plan("gateway_observability", after_releases=[dict(CM, metadata={"name": "g", "namespace": "gw"})],
                     pod_security={"gw": "unmanaged"}),
             ds.Plan("mock_backend", before_releases=[{"apiVersion": "v1", "kind": "Namespace",
                                                       "metadata": {"name": "mock", "labels": {"a": "b"}}}],
                     after_releases=[dict(CM, metadata={"name": "m", "namespace": "mock"})],
                     pod_security={"mock": "baseline", "gw": "restricted"})]
    return ds.Site(plans, mode, **more)


def test_no_labels_unless_asked():
    out = site("none")
    assert out.namespaces() == {"monitoring": {}, "mock": {"a": "b"}, "gw": {}}
    assert out.namespace_objects() == []


@pytest.mark.parametrize("mode", ["created", "all"])
def test_labelled_namespaces_and_the_namespace_objects_of_the_site(mode):
    out = site(mode)
    restricted, baseline = fences.pod_security_labels("restricted"), fences.pod_security_labels("baseline")
    assert out.namespaces() == {"monitoring": restricted, "mock": dict(baseline, a="b"), "gw": {}}
    # the role's own Namespace object carries the labels; the site renders only the namespace no role renders
    mock_ns = out.plans[2].before_releases[0]
    assert mock_ns["metadata"]["labels"] == dict(baseline, a="b")
    assert out.namespace_objects() == [{"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": "monitoring", "labels": dict(restricted, **{"app.kubernetes.io/managed-by": "agentgateway.observability"})}}]


def test_levels_of_the_whole_run_reach_a_partial_deploy():
    out = site("created", levels={"monitoring": "privileged"})
    assert out.namespaces()["monitoring"]["pod-security.kubernetes.io/enforce"] == "privileged"


def test_bad_mode_and_level_are_refused():
    with pytest.raises(ds.DesiredStateError, match="pod_security_labels must be one of none, created, all"):
        site("some")
    with pytest.raises(ds.DesiredStateError, match="role tempo, pod_security of namespace monitoring"):
        ds.Plan.from_part({"role": "tempo", "pod_security": {"monitoring": "open"}})
