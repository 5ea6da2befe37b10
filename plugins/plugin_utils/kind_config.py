# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""NodePorts across the roles, and the kind cluster that maps them to the host.

Every role that creates a NodePort Service claims it in its part of the site's plan
(``node_ports``: ``{setting, port, what}``, read from its own variables; tasks/plan.yml); the traffic
role claims where the controller reaches the gateway (its ``traffic_base_url``) as a host port
(``host_ports``). From those:

- :func:`node_port_problems`: each NodePort must be a valid port in the NodePort range and be used by
  one setting only (Kubernetes allocates a NodePort to one Service; the second release would fail
  after the first is installed);
- :func:`port_plan`: one host port mapping per NodePort; the host port is the NodePort itself, or the
  port a claim asks for (``http://localhost:8080`` puts the gateway listener on host port 8080);
- :func:`cluster_config`: the kind ``Cluster`` config (``kind.x-k8s.io/v1alpha4``) with those mappings;
- :func:`missing_port_mappings`: the mappings an existing cluster's node containers do not publish
  (kind cannot add a mapping to a cluster that exists).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from ansible_collections.agentgateway.observability.plugins.plugin_utils.rules import NODE_PORT_RANGE, as_int

KIND_API_VERSION = "kind.x-k8s.io/v1alpha4"


class KindConfigError(ValueError):
    """Bad input for the port plan or the kind config; the message names the setting."""


def _port(value, low=1, high=65535):
    """``value`` as an int port in [low, high], or None."""
    port = as_int(value)
    return port if port is not None and low <= port <= high else None


def _require_entry(entry, keys, what):
    if not isinstance(entry, dict):
        raise KindConfigError("%s must be a mapping, got %r" % (what, entry))
    missing = [k for k in keys if k not in entry]
    if missing:
        raise KindConfigError("%s %r lacks %s" % (what, entry, ", ".join(missing)))


def node_port_problems(node_ports, low=NODE_PORT_RANGE[0], high=NODE_PORT_RANGE[1]):
    """One message per bad NodePort setting and per port that two or more settings use.

    ``node_ports`` is a list of ``{setting, port, what}`` (``role`` optional). Messages name every
    setting involved and its value, so the fix is obvious.
    """
    problems, users = [], {}
    for entry in node_ports or []:
        _require_entry(entry, ("setting", "port", "what"), "NodePort entry")
        port = _port(entry["port"], low, high)
        if port is None:
            problems.append(
                "%s=%s (%s) is not a port in Kubernetes' NodePort range %d-%d."
                % (entry["setting"], entry["port"], entry["what"], low, high)
            )
            continue
        users.setdefault(port, []).append(entry)
    for port in sorted(users):
        if len(users[port]) > 1:
            problems.append(
                "NodePort %d is used by %s: a NodePort belongs to one Service, so change all but one of them."
                % (port, " and ".join("%s=%d (%s)" % (e["setting"], port, e["what"]) for e in users[port]))
            )
    return problems


def _loopback(host):
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def claim_host_port(claim):
    """The host port a claim asks for, or None when it does not point at this host.

    A claim is ``{setting, node_port_setting}`` with ``host_port`` or ``url``; a URL counts only
    when its host is a loopback name or address (the kind mappings listen on this machine).
    """
    _require_entry(claim, ("setting", "node_port_setting"), "host port claim")
    if claim.get("host_port") not in (None, ""):
        port = _port(claim["host_port"])
        if port is None:
            raise KindConfigError("%s=%s is not a port (1-65535)" % (claim["setting"], claim["host_port"]))
        return port
    url = claim.get("url")
    if not url:
        raise KindConfigError("host port claim %s has neither host_port nor url" % claim["setting"])
    try:
        parts = urlsplit(str(url))
        port = parts.port
    except ValueError as exc:
        raise KindConfigError("%s=%s is not a URL: %s" % (claim["setting"], url, exc))
    if parts.scheme not in ("http", "https") or not _loopback(parts.hostname):
        return None
    return port or (443 if parts.scheme == "https" else 80)


def port_plan(node_ports, host_port_claims=()):
    """``{"mappings": [...], "problems": [...]}``: one host port mapping per NodePort.

    Each mapping is ``{setting, what, node_port, host_port, host_port_setting}``, sorted by NodePort.
    The host port is the NodePort unless a claim for that setting asks for another one. Problems
    are the NodePort problems, then every host port two mappings would both listen on.
    """
    problems = node_port_problems(node_ports)
    if problems:
        return {"mappings": [], "problems": problems}
    claims = {}
    for claim in host_port_claims or []:
        port = claim_host_port(claim)
        if port is not None:
            claims[claim["node_port_setting"]] = (port, claim["setting"])
    mappings = []
    for entry in sorted(node_ports or [], key=lambda e: int(e["port"])):
        node_port = int(entry["port"])
        host_port, host_setting = claims.get(entry["setting"], (node_port, entry["setting"]))
        mappings.append({
            "setting": entry["setting"],
            "what": entry["what"],
            "node_port": node_port,
            "host_port": host_port,
            "host_port_setting": host_setting,
        })
    users = {}
    for mapping in mappings:
        users.setdefault(mapping["host_port"], []).append(mapping)
    for port in sorted(users):
        if len(users[port]) > 1:
            problems.append(
                "host port %d is wanted by %s: kind maps a host port once, so change all but one of them."
                % (port, " and ".join(_describe(m) for m in users[port]))
            )
    return {"mappings": mappings if not problems else [], "problems": problems}


def _describe(mapping):
    text = "%s=%d (%s)" % (mapping["setting"], mapping["node_port"], mapping["what"])
    if mapping["host_port_setting"] != mapping["setting"]:
        text += " on the host port of %s" % mapping["host_port_setting"]
    return text


def cluster_config(mappings, name, image, listen_address="127.0.0.1"):
    """The kind Cluster config: one control-plane node with the pinned image and every mapping."""
    if not name or not isinstance(name, str):
        raise KindConfigError("the cluster name must be a non-empty string")
    if not image or "@sha256:" not in str(image):
        raise KindConfigError("the node image %r must be pinned by digest (image@sha256:...)" % (image,))
    try:
        ipaddress.ip_address(str(listen_address))
    except ValueError:
        raise KindConfigError("listen address %r is not an IP address" % (listen_address,))
    node = {"role": "control-plane", "image": str(image)}
    if mappings:
        node["extraPortMappings"] = [
            {
                "containerPort": int(m["node_port"]),
                "hostPort": int(m["host_port"]),
                "listenAddress": str(listen_address),
                "protocol": "TCP",
            }
            for m in mappings
        ]
    return {"kind": "Cluster", "apiVersion": KIND_API_VERSION, "name": name, "nodes": [node]}


def published_ports(containers):
    """{(container port, protocol): {host ports}} from ``docker inspect`` / ``podman inspect`` output."""
    published = {}
    for container in containers or []:
        if not isinstance(container, dict):
            raise KindConfigError("container inspect output must be a list of objects, got %r" % (container,))
        bindings = (container.get("HostConfig") or {}).get("PortBindings") or {}
        for key, binds in bindings.items():
            port, _sep, protocol = str(key).partition("/")
            host_ports = published.setdefault((int(port), (protocol or "tcp").lower()), set())
            for bind in binds or []:
                host_port = _port((bind or {}).get("HostPort"))
                if host_port is not None:
                    host_ports.add(host_port)
    return published


def missing_port_mappings(containers, mappings):
    """The mappings that no node container publishes (NodePort -> the same host port, TCP)."""
    published = published_ports(containers)
    return [m for m in mappings or []
            if int(m["host_port"]) not in published.get((int(m["node_port"]), "tcp"), set())]
