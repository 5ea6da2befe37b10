"""Ask cyclonus (v0.5.6, built by `make setup` from tools/cyclonus) whether connections are allowed
under a set of NetworkPolicies, offline: no cluster, only its policy engine.

One cyclonus run answers every connection of a call:

    cyclonus --verbosity warn analyze --mode query-traffic \
        --policy-path <dir: one JSON file per NetworkPolicy> --traffic-path <traffic.json>

traffic.json is a JSON list of cyclonus's matcher.Traffic objects:

    {"Source":      {"Internal": {"Namespace": "x", "NamespaceLabels": {...}, "PodLabels": {...}},
                     "IP": "100::1"}            # or {"IP": "10.2.3.4"} for a peer outside the cluster
     "Destination": {...the same...},
     "ResolvedPort": 80, "ResolvedPortName": "http", "Protocol": "TCP"}

and for each one, in order, cyclonus prints "Traffic:" with a table whose first row starts with the
port ("80 (http) on TCP"), then "Is traffic allowed?" with a table whose footer reads
"IS ALLOWED? | TRUE" (or FALSE): ingress allowed AND egress allowed.

cyclonus compares an ipBlock with the peer's IP even when the peer is a pod, and panics on a pod
without one. A pod peer with no "ip" of its own gets POD_IP, an address outside every IPv4 block (and
outside any IPv6 block but ::/0): an ipBlock never selects pods here, which is what the
NetworkPolicy API means ipBlock for (cluster-external addresses).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile

from support.tools import tool

# The discard-only IPv6 prefix (RFC 6666): stands for "a pod IP no ipBlock selects".
POD_IP = "100::1"
NAME_LABEL = "kubernetes.io/metadata.name"

_VERDICT = re.compile(r"^\|\s*IS ALLOWED\?\s*\|\s*(TRUE|FALSE)\s*\|", re.MULTILINE)
_TRAFFIC = re.compile(r"^Traffic:\n", re.MULTILINE)
_PORT_ROW = re.compile(r"^\|\s*(\d+) ", re.MULTILINE)


class CyclonusError(RuntimeError):
    pass


def _peer(peer):
    """A connection's peer dict as cyclonus's TrafficPeer."""
    if "namespace" not in peer:
        if "ip" not in peer:
            raise ValueError("a peer needs either a namespace (a pod) or an ip (outside the cluster): %r" % (peer,))
        return {"IP": peer["ip"]}
    labels = dict(peer.get("namespace_labels") or {})
    labels.setdefault(NAME_LABEL, peer["namespace"])
    return {
        "Internal": {
            "Namespace": peer["namespace"],
            "NamespaceLabels": labels,
            "PodLabels": dict(peer.get("pod_labels") or {}),
        },
        "IP": peer.get("ip", POD_IP),
    }


def traffic(connection):
    """A connection dict (see query_traffic) as one entry of cyclonus's traffic file."""
    return {
        "Source": _peer(connection["source"]),
        "Destination": _peer(connection["destination"]),
        "ResolvedPort": int(connection["port"]),
        "ResolvedPortName": connection.get("port_name") or "",
        "Protocol": connection.get("protocol", "TCP"),
    }


def _verdicts(output, connections):
    """Cyclonus's verdict for each connection, checked against the connections' count and ports."""
    _head, found, rest = output.partition("query traffic:\n")
    blocks = _TRAFFIC.split(rest)[1:] if found else []
    if len(blocks) != len(connections):
        raise CyclonusError("cyclonus answered %d traffic queries for %d connections:\n%s" % (len(blocks), len(connections), output))
    verdicts = []
    for index, (block, connection) in enumerate(zip(blocks, connections)):
        port, verdict = _PORT_ROW.search(block), _VERDICT.findall(block)
        if port is None or int(port.group(1)) != int(connection["port"]) or len(verdict) != 1:
            raise CyclonusError("cannot match cyclonus's answer %d to connection %r:\n%s" % (index, connection, block))
        verdicts.append(verdict[0] == "TRUE")
    return verdicts


def query_traffic(policies, connections):
    """Whether each connection is allowed under ``policies`` (NetworkPolicy dicts), in order.

    A connection: {"source": PEER, "destination": PEER, "port": 80, "port_name": "http" (optional),
    "protocol": "TCP" (default)}, where PEER is a pod, {"namespace": "x", "namespace_labels": {...},
    "pod_labels": {...}, "ip": ... (optional)}, or an address outside the cluster, {"ip": "10.2.3.4"}.
    A namespace's kubernetes.io/metadata.name label is added when absent, as the API server does.
    """
    connections = list(connections)
    if not connections:
        return []
    binary = tool("cyclonus")  # ToolMissing says to run `make setup`
    for policy in policies:
        if not (policy.get("metadata") or {}).get("namespace"):
            # cyclonus would read it as a policy of the namespace "", which selects no pod.
            raise ValueError("NetworkPolicy %r has no metadata.namespace" % ((policy.get("metadata") or {}).get("name"),))
    with tempfile.TemporaryDirectory(prefix="cyclonus-") as work:
        policy_dir = os.path.join(work, "policies")
        os.mkdir(policy_dir)
        for index, policy in enumerate(policies):
            # cyclonus reads every file of the folder as YAML, which JSON is.
            with open(os.path.join(policy_dir, "%03d.json" % index), "w") as out:
                json.dump(policy, out)
        traffic_path = os.path.join(work, "traffic.json")
        with open(traffic_path, "w") as out:
            json.dump([traffic(c) for c in connections], out)
        command = [binary, "--verbosity", "warn", "analyze", "--mode", "query-traffic",
                   "--policy-path", policy_dir, "--traffic-path", traffic_path]
        run = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120,
                             check=False)
        if run.returncode != 0:
            raise CyclonusError("cyclonus failed (exit %d): %s\nstdout:\n%s\nstderr:\n%s"
                                % (run.returncode, " ".join(command), run.stdout, run.stderr))
        return _verdicts(run.stdout, connections)


def _peer_name(peer):
    if peer.get("name"):  # a name the caller gave the peer, for a table that fits a terminal
        return peer["name"]
    if "namespace" not in peer:
        return peer["ip"]
    labels = ",".join("%s=%s" % item for item in sorted((peer.get("pod_labels") or {}).items()))
    return "%s/%s" % (peer["namespace"], labels or "*")


def matrix_table(rows):
    """A plain-text table of (connection, expected, cyclonus) rows, one per connection, for printing.

    A row is a tuple (connection, expected, verdict) or a dict with those keys; expected and verdict
    are booleans (or None when unknown)."""
    def word(value):
        return "-" if value is None else ("allow" if value else "deny")

    table = [("from", "to", "port", "expected", "cyclonus")]
    for row in rows:
        if isinstance(row, dict):
            connection, expected, verdict = row["connection"], row.get("expected"), row.get("cyclonus")
        else:
            connection, expected, verdict = row
        port = "%s/%s" % (connection["port"], connection.get("protocol", "TCP"))
        if connection.get("port_name"):
            port += " (%s)" % connection["port_name"]
        mark = "" if expected is None or verdict is None or expected == verdict else "  <-- differs"
        table.append((_peer_name(connection["source"]), _peer_name(connection["destination"]), port,
                      word(expected), word(verdict) + mark))
    widths = [max(len(line[i]) for line in table) for i in range(4)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line[:4], widths)) + "  " + line[4] for line in table]
    lines.insert(1, "  ".join("-" * width for width in widths) + "  " + "-" * len(table[0][4]))
    return "\n".join(line.rstrip() for line in lines)
