# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fences: the NetworkPolicies and the Pod Security levels of the site's namespaces.

Pure (no I/O). The roles build their NetworkPolicies with ``network_policy`` (through the filter
agentgateway.observability.agw_obs_network_policy) and name the Pod Security level their
workloads meet in their part of the plan (``pod_security``); the site merges the levels per
namespace (``namespace_levels``) and labels the namespaces it creates (``pod_security_labels``).

A NetworkPolicy here is ingress only: it selects the component's pods and lists, port by port,
who may connect. A peer is one of::

    {namespace: monitoring}                         every pod of that namespace
    {namespace: monitoring, pods: {app: grafana}}   those pods of that namespace
    {namespaces: [ingress-nginx, federation]}       every pod of those namespaces (none: dropped)
    {cidrs: [10.0.0.0/8]}                           those addresses (none: dropped)
    {anyone: true}                                  every source

A rule whose peers were all dropped is dropped, so an empty allow-list opens nothing; a policy left
without rules denies all ingress to its pods (what a NetworkPolicy with no rule means).
"""

from __future__ import annotations

from collections.abc import Mapping

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # set by the API server on every namespace (1.22+)
POD_SECURITY_PREFIX = "pod-security.kubernetes.io/"
POD_SECURITY_MODES = ("enforce", "warn", "audit")

# From the most to the least permissive: a namespace gets the most permissive level any of its
# workloads needs. UNMANAGED: a namespace the collection does not own (it keeps its own labels).
LEVELS = ("privileged", "baseline", "restricted")
UNMANAGED = "unmanaged"

PART_OF = {"app.kubernetes.io/part-of": "agentgateway-observability",
           "app.kubernetes.io/managed-by": "agentgateway.observability"}


class FenceError(ValueError):
    """A peer, rule or level that cannot be turned into a policy; the message names it."""


def _namespace_selector(names):
    names = sorted(set(names))
    if len(names) == 1:
        return {"matchLabels": {NAMESPACE_NAME_LABEL: names[0]}}
    return {"matchExpressions": [{"key": NAMESPACE_NAME_LABEL, "operator": "In", "values": names}]}


def peers(peer):
    """The NetworkPolicyPeer list of one peer spec ([] when it lists nothing); None means anyone."""
    if not isinstance(peer, Mapping):
        raise FenceError("a peer must be a mapping, got %r" % (peer,))
    keys = set(peer)
    if keys == {"anyone"}:
        if peer["anyone"] is not True:
            raise FenceError("'anyone' must be true, got %r" % (peer["anyone"],))
        return None
    if keys in ({"namespace"}, {"namespace", "pods"}):
        if not isinstance(peer["namespace"], str) or not peer["namespace"]:
            raise FenceError("'namespace' must be a namespace name, got %r" % (peer["namespace"],))
        out = {"namespaceSelector": _namespace_selector([peer["namespace"]])}
        if "pods" in peer:
            if not isinstance(peer["pods"], Mapping) or not peer["pods"]:
                raise FenceError("'pods' must be a mapping of pod labels, got %r" % (peer["pods"],))
            out["podSelector"] = {"matchLabels": {str(k): str(v) for k, v in peer["pods"].items()}}
        return [out]
    if keys == {"namespaces"}:
        names = [str(n) for n in peer["namespaces"] or ()]
        return [{"namespaceSelector": _namespace_selector(names)}] if names else []
    if keys == {"cidrs"}:
        return [{"ipBlock": {"cidr": str(c)}} for c in sorted(set(peer["cidrs"] or ()))]
    raise FenceError("a peer is one of {namespace[, pods]}, {namespaces}, {cidrs} or {anyone: true}, got %r" % (peer,))


def _port(port):
    if isinstance(port, Mapping):
        out = {"protocol": "TCP", "port": int(port["port"])}
        if port.get("end_port"):
            if int(port["end_port"]) < out["port"]:
                raise FenceError("end_port %r is below port %r" % (port["end_port"], port["port"]))
            out["endPort"] = int(port["end_port"])
        return out
    return {"protocol": "TCP", "port": int(port) if str(port).isdigit() else str(port)}


def ingress_rule(rule):
    """One NetworkPolicyIngressRule from {ports, from}, or None when its peers list nobody."""
    if not isinstance(rule, Mapping) or not rule.get("ports"):
        raise FenceError("a rule must be a mapping with 'ports' and 'from', got %r" % (rule,))
    sources = []
    for peer in rule.get("from") or ():
        found = peers(peer)
        if found is None:  # anyone: a rule without 'from'
            return {"ports": [_port(p) for p in rule["ports"]]}
        sources.extend(found)
    if not sources:
        return None
    return {"ports": [_port(p) for p in rule["ports"]], "from": sources}


def network_policy(name, namespace, pods, rules, component=""):
    """An ingress-only NetworkPolicy ``name`` in ``namespace`` for the pods labelled ``pods``."""
    if not isinstance(pods, Mapping) or not pods:
        raise FenceError("policy %s: the pod selector must be a non-empty mapping of labels" % name)
    labels = dict(PART_OF)
    if component:
        labels["app.kubernetes.io/component"] = component
    built = [rule for rule in (ingress_rule(rule) for rule in rules or ()) if rule is not None]
    spec = {"podSelector": {"matchLabels": {str(k): str(v) for k, v in pods.items()}}, "policyTypes": ["Ingress"]}
    if built:  # none: no 'ingress' key at all, as the API server stores it (an empty list would differ every run)
        spec["ingress"] = built
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": spec,
    }


def check_level(level, where):
    if level not in LEVELS + (UNMANAGED,):
        raise FenceError("%s: the Pod Security level must be one of %s, got %r"
                         % (where, ", ".join(LEVELS + (UNMANAGED,)), level))
    return level


def namespace_levels(uses):
    """{namespace: level} from [(role, {namespace: level})]: the most permissive level any role needs.

    A namespace some role marks UNMANAGED (one the user owns) stays UNMANAGED.
    """
    levels = {}
    for role, wanted in uses:
        for namespace, level in (wanted or {}).items():
            check_level(level, "role %s, namespace %s" % (role, namespace))
            before = levels.get(namespace)
            if before is None:
                levels[namespace] = level
            elif UNMANAGED in (before, level):
                levels[namespace] = UNMANAGED
            else:
                levels[namespace] = min(before, level, key=LEVELS.index)
    return levels


def pod_security_labels(level):
    """The enforce, warn and audit labels of ``level`` ({} for UNMANAGED)."""
    check_level(level, "pod_security_labels")
    if level == UNMANAGED:
        return {}
    return {POD_SECURITY_PREFIX + mode: level for mode in POD_SECURITY_MODES}
