"""Helpers for the gateway roles (agentgateway, gateway_observability).

``role_objects`` reads the manifests a render folder's index.yaml gives to some roles (a site
render holds every role's files). ``seed_raw_configs`` reads the tutorial's own rawConfig blocks
from the seed post, as written.
``pod_discovery_labels`` models what Prometheus' kubernetes pod discovery sees for a proxy pod that
agentgateway's deployer creates: labels from controller/pkg/helm/agentgateway/templates/_helpers.tpl
("kgateway.gateway.selectorLabels" plus the gateway class label) and the container port 15020
named ``metrics`` declared there (agentgateway v1.4.1 and main @ 75b4e6c).
``relabel`` applies Prometheus relabel rules (keep, drop, replace, labelmap) to such a target.
"""

from __future__ import annotations

import pathlib
import re

import yaml

from support.fixtures import load_rendered

GATEWAY_ROLES = ("agentgateway", "gateway_observability")


def index_entries(render_dir, roles=GATEWAY_ROLES):
    """The entries of ``render_dir``/index.yaml that belong to ``roles``."""
    return [e for e in load_rendered(render_dir, "index.yaml")["entries"] if e["role"] in roles]


def role_objects(render_dir, roles=GATEWAY_ROLES):
    """{relative path: object} of every manifest ``roles`` rendered into ``render_dir`` (by its index.yaml)."""
    return {e["path"]: load_rendered(render_dir, e["path"]) for e in index_entries(render_dir, roles)
            if e["type"] == "manifest"}


def manifests(documents):
    """The manifests among {relative path: object} (helm release files left out)."""
    return {path: obj for path, obj in documents.items() if path.startswith("manifests/")}


def objects_of_kind(objects, kind):
    """The objects of ``kind`` among {relative path: object}."""
    return [obj for obj in objects.values() if obj["kind"] == kind]


def seed_raw_configs(tutorial):
    """Every rawConfig block of the seed tutorial (the ``seed_tutorial`` file), parsed as it stands.

    The first is the main one.
    """
    text = pathlib.Path(tutorial).read_text(encoding="utf-8")
    blocks = []
    for block in re.findall(r"```(?:yaml|bash)\n(.*?)```", text, re.S):
        if "rawConfig:" not in block:
            continue
        heredoc = re.search(r"<<'?EOF'?\n(.*?)\nEOF", block, re.S)
        for doc in yaml.safe_load_all(heredoc.group(1) if heredoc else block):
            if not isinstance(doc, dict):
                continue
            raw = doc.get("rawConfig") or (doc.get("spec") or {}).get("rawConfig")
            if raw:
                blocks.append(raw)
    assert len(blocks) >= 2, "the seed's rawConfig blocks were not found"
    return blocks


def pod_discovery_labels(gateway_name, namespace, gateway_class="agentgateway", port=15020, port_name="metrics"):
    """The __meta_* labels Prometheus' pod discovery gives a gateway proxy pod's container port."""
    pod_labels = {
        "app.kubernetes.io/name": gateway_name,
        "app.kubernetes.io/instance": gateway_name,
        "gateway.networking.k8s.io/gateway-name": gateway_name,
        "gateway.networking.k8s.io/gateway-class-name": gateway_class,
    }
    labels = {
        "__address__": "10.0.0.7:%d" % port,
        "__metrics_path__": "/metrics",
        "__meta_kubernetes_namespace": namespace,
        "__meta_kubernetes_pod_name": "%s-5d9c7b7f9-abcde" % gateway_name,
        "__meta_kubernetes_pod_phase": "Running",
        "__meta_kubernetes_pod_container_name": "agentgateway",
        "__meta_kubernetes_pod_container_port_number": str(port),
        "__meta_kubernetes_pod_container_port_name": port_name,
    }
    for key, value in pod_labels.items():
        labels["__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)] = value
    return pod_labels, labels


def relabel(labels, rules):
    """Apply Prometheus relabel_configs; return the new labels, or None when the target is dropped."""
    labels = dict(labels)
    for rule in rules:
        action = rule.get("action", "replace")
        regex = re.compile("^(?:%s)$" % rule.get("regex", "(.*)"))
        value = rule.get("separator", ";").join(labels.get(s, "") for s in rule.get("source_labels", []))
        if action == "keep":
            if not regex.match(value):
                return None
        elif action == "drop":
            if regex.match(value):
                return None
        elif action == "replace":
            match = regex.match(value)
            if match:
                labels[rule["target_label"]] = match.expand(rule.get("replacement", "$1").replace("$", "\\"))
        elif action == "labelmap":
            for key, val in list(labels.items()):
                match = regex.match(key)
                if match:
                    labels[match.expand(rule.get("replacement", "$1").replace("$", "\\"))] = val
        else:
            raise AssertionError("relabel action %s not modelled" % action)
    return labels
