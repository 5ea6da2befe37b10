# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What goes into the support bundle of playbooks/diagnose.yml, from registered results (pure).

``plan_reads`` says what to read, from the site's plan (namespaces, releases, the Services the
verification reaches, in either stack mode); ``failing_pods`` picks the pods worth a look (not
Running/Succeeded, containers not ready, restarts, waiting reasons); ``section`` and
``services_section`` turn the k8s_info / helm_info / k8s_log results into the bundle's files.
Reads that failed are written down as such, so the bundle says what could not be read and why. A
pod that no node has taken has no logs: the API server answers a log request for it with nothing
(no kubelet ever ran it), and the bundle says so instead of an empty file.
"""

from __future__ import annotations


def _containers(pod):
    status = pod.get("status") or {}
    return (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])


def pod_summary(pod):
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    containers = status.get("containerStatuses") or []
    reasons = []
    for cs in _containers(pod):
        state = cs.get("state") or {}
        for key in ("waiting", "terminated"):
            if state.get(key, {}).get("reason"):
                reasons.append("%s: %s" % (cs.get("name"), state[key]["reason"]))
    for cond in status.get("conditions") or []:
        if cond.get("status") == "False" and cond.get("reason"):
            reasons.append("%s: %s %s" % (cond.get("type"), cond.get("reason"), cond.get("message") or ""))
    return {
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "phase": status.get("phase") or "Unknown",
        "node": spec.get("nodeName") or "",
        "ready": "%d/%d" % (sum(1 for c in containers if c.get("ready")), len(spec.get("containers") or [])),
        "restarts": sum(int(c.get("restartCount") or 0) for c in _containers(pod)),
        "reason": "; ".join(r.strip() for r in reasons) or status.get("reason") or "",
    }


def is_failing(pod):
    summary = pod_summary(pod)
    if summary["phase"] == "Succeeded":
        return False
    if summary["phase"] != "Running" or summary["restarts"] > 0:
        return True
    return any(not c.get("ready") for c in (pod.get("status") or {}).get("containerStatuses") or [])


def failing_pods(pods):
    return [pod_summary(p) for p in pods or [] if isinstance(p, dict) and is_failing(p)]


def pod_table(pods):
    """A fixed-width table of every pod, failing ones marked."""
    rows = [pod_summary(p) for p in pods or [] if isinstance(p, dict)]
    header = ("", "NAMESPACE", "NAME", "PHASE", "READY", "RESTARTS", "NODE", "REASON")
    lines = [header] + [("!" if is_failing(p) else "", r["namespace"], r["name"], r["phase"], r["ready"],
                         str(r["restarts"]), r["node"] or "<none>", r["reason"]) for p, r in zip(pods, rows)]
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header) - 1)]
    out = ["  ".join(str(v).ljust(widths[i]) for i, v in enumerate(line[:-1])) + "  " + line[-1] for line in lines]
    if len(lines) == 1:
        out.append("(no pods found)")
    return "\n".join(out) + "\n"


def _read_error(result):
    msg = result.get("msg") or result.get("error") or "failed"
    return str(msg)


def _item_name(result):
    item = result.get("item")
    if isinstance(item, dict):
        return "%s/%s" % (item.get("namespace") or item.get("api_version") or "", item.get("name") or item.get("kind"))
    return str(item)


def section(results, key, last=None, telemetry=False):
    """One bundle file from looped results: what each read returned, or why it failed."""
    out = []
    for result in results or []:
        entry = {"read": _item_name(result)}
        if result.get("failed") or (key not in result and result.get("msg")):
            entry["error"] = _read_error(result)
        elif result.get("api_found") is False:
            entry["error"] = "the cluster does not serve this kind (its CRD is not installed)"
        else:
            value = result.get(key)
            if key == "resources":
                items = list(value or [])
                if last:
                    items = sorted(items, key=lambda e: (e.get("lastTimestamp") or e.get("eventTime") or
                                                         (e.get("metadata") or {}).get("creationTimestamp") or ""))
                    items = items[-int(last):]
                if telemetry:
                    items = [telemetry_view(i) for i in items]
                entry["items"] = items
                entry["count"] = len(items)
            elif key == "status":
                entry["release"] = value if value else "not installed"
            else:
                entry[key] = value
        out.append(entry)
    return out


def telemetry_view(obj):
    """The telemetry-relevant part of a gateway object (its config, policy, proxy environment)."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    view = {"kind": obj.get("kind"), "name": meta.get("name"), "namespace": meta.get("namespace"),
            "labels": meta.get("labels") or {}}
    kind = obj.get("kind") or ""
    if kind.endswith("Parameters"):
        view["spec"] = {k: spec[k] for k in ("rawConfig", "logging", "env", "image") if k in spec}
    elif kind.endswith("Policy"):
        view["spec"] = {k: spec[k] for k in ("targetRefs", "frontend") if k in spec}
    elif kind == "Gateway":
        view["spec"] = {k: spec[k] for k in ("gatewayClassName", "infrastructure", "listeners") if k in spec}
        view["status"] = obj.get("status") or {}
    elif kind == "Deployment":
        template = (spec.get("template") or {}).get("spec") or {}
        view["containers"] = [{"name": c.get("name"), "image": c.get("image"), "args": c.get("args"),
                               "env": c.get("env"), "ports": c.get("ports")} for c in template.get("containers") or []]
    else:
        view["spec"] = spec
    return view


def pod_logs(failing, log_results):
    """``logs/<namespace>/<pod>.log`` for every failing pod: its log, or why there is none."""
    by_pod = {}
    for result in log_results or []:
        item = result.get("item") or {}
        by_pod[(item.get("namespace"), item.get("name"))] = result
    out = {}
    for pod in failing or []:
        path = "logs/%s/%s.log" % (pod["namespace"], pod["name"])
        if not pod.get("node"):
            reason = pod.get("reason") or "no scheduler or no node took it"
            out[path] = ("# logs unavailable: pod %s/%s is %s and not scheduled to a node, so no kubelet has run it "
                         "and there are no logs (%s)\n" % (pod["namespace"], pod["name"], pod["phase"], reason))
            continue
        result = by_pod.get((pod["namespace"], pod["name"]))
        if result is None:
            out[path] = "# logs not collected\n"
        elif result.get("failed") or "log" not in result:
            out[path] = "# logs could not be read (is the kubelet on node %s reachable?): %s\n" % (
                pod["node"], _read_error(result))
        else:
            text = result.get("log") or ""
            out[path] = text if text else "# the log is empty\n"
    return out


# ---- what to read, from the site's plan ---------------------------------------------------------------
def _unique(values):
    out = []
    for value in values:
        if value and value not in out:
            out.append(value)
    return out


def plan_reads(plans, services, namespaces=None, releases=None):
    """What the bundle reads, from the site's plan (``_agw_obs_plans``, ``_agw_obs_services``), in either stack mode.

    ``namespaces`` and ``releases`` given (not empty) are taken as they are; else the namespaces are
    those of every release, object and Service of the plan, the releases every release of it.
    Returns ``{namespaces, releases: [{name, namespace}], services: [{key, role, namespace, name, port}],
    service_namespaces: {namespace: [Service names]}, absent: {key: reason}}``: the Services the site runs (each role names them, in existing mode the
    user's stack from its URLs) and the hops it does not run, with the reason.
    """
    parts = [p for p in (plans or {}).values() if isinstance(p, dict)]
    planned_releases = [{"name": r.get("release"), "namespace": r.get("namespace")}
                        for p in parts for r in p.get("releases") or [] if isinstance(r, dict) and r.get("release")]
    found, absent = [], {}
    for key in sorted(services or {}):
        entry = services[key] or {}
        if entry.get("absent"):
            absent[key] = entry["absent"]
        elif entry.get("name"):
            found.append({"key": key, "role": entry.get("role", ""), "namespace": entry.get("namespace", ""),
                          "name": entry["name"], "port": entry.get("port")})
    objects = [o for p in parts for phase in ("before_releases", "after_releases") for o in p.get(phase) or []
               if isinstance(o, dict)]
    planned_namespaces = _unique([r["namespace"] for r in planned_releases]
                                 + [(o.get("metadata") or {}).get("namespace") for o in objects]
                                 + [s["namespace"] for s in found])
    by_namespace = {}
    for service in found:
        by_namespace.setdefault(service["namespace"], []).append(service["name"])
    return {"namespaces": list(namespaces) if namespaces else planned_namespaces,
            "releases": list(releases) if releases else planned_releases,
            "services": found, "service_namespaces": by_namespace, "absent": absent}


def _endpoints(slices):
    return [{"addresses": e.get("addresses") or [], "conditions": e.get("conditions") or {},
             "pod": (e.get("targetRef") or {}).get("name")}
            for s in slices or [] if isinstance(s, dict) for e in s.get("endpoints") or []]


def _by_namespace(results):
    """{namespace: the looped read's result} of reads looped over ``{key: namespace}`` items."""
    return {(r.get("item") or {}).get("key"): r for r in results or []}


def services_section(planned, service_results=None, endpoint_results=None, absent=None):
    """``services.yaml``: each Service the site's plan names (``plan_reads``' ``services``), its spec and
    endpoints, or why it could not be read; then each hop the site does not run, with the reason.

    ``service_results`` and ``endpoint_results`` are the looped reads of the Services and of the
    EndpointSlices (label ``kubernetes.io/service-name``) of each namespace of those Services.
    """
    services, slices = _by_namespace(service_results), _by_namespace(endpoint_results)
    out = []
    for wanted in planned or []:
        namespace, name = wanted.get("namespace"), wanted.get("name")
        entry = {"service": wanted.get("key"), "role": wanted.get("role"), "read": "%s/%s" % (namespace, name),
                 "port": wanted.get("port")}
        result = services.get(namespace)
        found = [s for s in (result or {}).get("resources") or [] if (s.get("metadata") or {}).get("name") == name]
        if result is None:
            entry["error"] = "not read"
        elif result.get("failed") or "resources" not in result:
            entry["error"] = _read_error(result)
        elif not found:
            entry["error"] = "no Service %s in namespace %s" % (name, namespace)
        else:
            spec = found[0].get("spec") or {}
            entry["spec"] = {k: spec[k] for k in ("type", "clusterIP", "ports", "selector") if k in spec}
        result = slices.get(namespace)
        if result is not None:
            if result.get("failed") or "resources" not in result:
                entry["endpoints_error"] = _read_error(result)
            else:
                entry["endpoints"] = _endpoints([
                    s for s in result["resources"]
                    if ((s.get("metadata") or {}).get("labels") or {}).get("kubernetes.io/service-name") == name])
        out.append(entry)
    out += [{"service": key, "skipped": reason} for key, reason in sorted((absent or {}).items())]
    return out
