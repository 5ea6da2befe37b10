# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check results the verification modules share: what was tried, what was seen, the cause and the fix.

Every check any module of the collection returns has the same shape (``result``)::

    {"id": "prometheus.gateway_target", "title": "...", "service": "prometheus",
     "status": "passed" | "failed" | "skipped", "tried": "...", "saw": "...",
     "cause": "target_down" | null, "explanation": "...", "fix": "...",
     "attempts": 3, "elapsed_s": 1.2}

``CAUSES`` is the troubleshooting catalogue: for each cause a sentence that says what it means
and a fix. Fixes that depend on how the service is reached (``agw_obs_access``) are filled in
from the ``ServiceAccess``. Also here: a small JSON path (``json_path``) and a parser for the
Prometheus text format (``metric_sum``), both used to state expectations.
"""

from __future__ import annotations

import math
import re

# cause -> (what it means, how to fix it). Placeholders: {where} {url} {ns} {name} {port}
# {host_port} {service} {setting} {kubeconfig} {context}.
CAUSES = {
    # transport
    "connection_refused": (
        "Nothing accepts connections at {where}.",
        "{refused_fix}"),
    "connection_reset": (
        "The connection to {where} was closed before an answer came.",
        "The service restarted or a proxy in between dropped the connection; retry, and check the service's pod "
        "restarts (playbooks/diagnose.yml collects them)."),
    "connection": (
        "The connection to {where} failed.",
        "Check the network path from the controller to {where}."),
    "timeout": (
        "{where} did not answer in time.",
        "The service is overloaded or a firewall drops the packets. If it is just slow, raise the deadline "
        "(verification_deadline) or the timeout (verification_timeout)."),
    "dns": (
        "The host name of {url} does not resolve.",
        "Correct the host name in {setting}, or use agw_obs_access=proxy, which needs only the kubeconfig."),
    "tls": (
        "The TLS handshake with {url} failed or its certificate was not trusted.",
        "Give the CA that signed the server certificate (ca_path), or validate_certs=false for a test setup; "
        "check that the URL's scheme matches the port (https to a plain HTTP port fails too)."),
    "invalid_url": ("{url} cannot be used as a URL.", "Correct {setting}."),
    "invalid_response": ("{where} answered something that is not what this API returns.",
                         "Check that {setting} points at the right service and port."),
    # HTTP statuses of the service itself
    "unauthorized": ("{where} refused the credentials (401).", "{unauthorized_fix}"),
    "forbidden": ("{where} accepted the credentials but denies access (403).",
                  "Use a user or token with read access to this API."),
    "not_found": ("{where} answered 404 for this path.",
                  "Check that {setting} points at {service} itself (not another service on that port)."),
    "server_error": ("{where} answered with a server error (5xx).",
                     "Read the service's logs (playbooks/diagnose.yml collects the logs of failing pods)."),
    "rate_limited": ("{where} answered 429 Too Many Requests.", "Wait, or lower the request rate."),
    "client_error": ("{where} refused the request (4xx).", "Read the answer above; the request may not fit this "
                                                           "version of the API."),
    # the Kubernetes API server's service proxy
    "apiserver_unauthorized": (
        "The API server rejected the kubeconfig credentials (401).",
        "Renew the credentials of context {context} in {kubeconfig} (expired token or certificate?), or point "
        "agw_obs_kubeconfig / agw_obs_kube_context at a working one."),
    "apiserver_forbidden": (
        "The kubeconfig user may not use the service proxy (403, RBAC).",
        "Grant the user `get` on `services/proxy` in namespace {ns} (a Role and RoleBinding), or use "
        "agw_obs_access=nodeport or url."),
    "service_not_found": (
        "Service {ns}/{name} does not exist (the API server found no Service or no Endpoints of that name).",
        "Install the stack first (site.yml), or correct the namespace (agw_obs_monitoring_namespace, "
        "agw_obs_gateway_namespace) and the Service name in verification_services."),
    "service_port_not_found": (
        "Service {ns}/{name} has no port {port}.",
        "Correct the port of {service} in verification_services (kubectl -n {ns} get service {name})."),
    "no_endpoints": (
        "Service {ns}/{name} has no ready endpoints: no pod behind it is running and ready.",
        "Look at the pods and their events: kubectl -n {ns} get pods,endpointslices; kubectl -n {ns} describe "
        "pods (playbooks/diagnose.yml collects both). Pending pods usually mean no node can take them "
        "(resources, image pulls)."),
    "upstream_unreachable": (
        "The API server could not reach the pod behind {ns}/{name}.",
        "The pod is not listening on the target port yet, or a network policy blocks the API server; check the "
        "pod's readiness and logs."),
    "apiserver_error": ("The API server refused the proxy request.", "Read the API server's message above."),
    # what the checks expect
    "expectation": ("{where} answered, but not what the check expects.", "See what was seen above."),
    "no_data": (
        "The query returned no data.",
        "Data has not arrived: check the earlier hops (requests through the gateway, the scrape target)."),
    "target_down": (
        "Prometheus scrapes the gateway but the scrape fails.",
        "The gateway pod's metrics port 15020 is not reachable from Prometheus: check that the proxy pod runs "
        "(kubectl -n {gateway_ns} get pods) and serves /metrics on 15020."),
    "target_missing": (
        "Prometheus has no target in the gateway scrape job.",
        "The scrape job finds no gateway pod: check prometheus_gateway_pod_labels (the pod label "
        "gateway.networking.k8s.io/gateway-name must equal agw_obs_gateway_name) and "
        "prometheus_gateway_namespaces."),
    "target_duplicate": (
        "The gateway is scraped by more than one job, so every series is counted twice.",
        "Drop the gateway pods from the other job (e.g. the chart's kubernetes-pods job through "
        "prometheus.io/scrape annotations) so only the gateway job scrapes them."),
    "rule_unhealthy": (
        "A recording or alerting rule fails to evaluate.",
        "Read lastError; run `promtool check rules` on the rendered rules (make test does)."),
    "trace_missing": (
        "Tempo has no trace with this id.",
        "Check the gateway's tracing policy (gateway_observability_tracing_enabled, backendRef to Tempo port "
        "4317), sampling (gateway_observability_tracing_client_sampling) and the Tempo distributor's logs."),
    "attribute_missing": (
        "The trace exists but a span lacks an expected attribute.",
        "Check gateway_observability_tracing_attributes and that the request reached an AI backend route "
        "(llm.* values are empty otherwise)."),
    "logs_missing": (
        "Loki holds no log line for this trace id.",
        "Check the gateway's access log OTLP export to Loki (gateway_observability_loki_enabled, port 3100 path "
        "/otlp/v1/logs) and that Loki accepts structured metadata (schema v13)."),
    "datasource_unhealthy": (
        "Grafana's health check of the datasource failed.",
        "Grafana cannot reach the datasource URL (grafana_prometheus_url, grafana_tempo_url, grafana_loki_url) "
        "from its pod; read the message above."),
    "datasource_missing": (
        "Grafana has no datasource with this uid.",
        "The grafana role provisions uids prometheus, tempo and loki; check the chart's datasource provisioning "
        "(grafana pod logs)."),
    "dashboard_missing": (
        "Grafana has no dashboard with this uid.",
        "The dashboard sidecar did not load the dashboard ConfigMap: check grafana_dashboards_enabled and the "
        "sidecar's logs."),
    "credentials_missing": (
        "No credentials to log in with.",
        "Set verification_grafana_password, or keep the password file the grafana role generated "
        "(grafana_admin_password_file)."),
    "bypassed_gateway": (
        "The backend received the request without the gateway's marks (backend key, gateway span).",
        "The request did not go through the gateway: check that the route (HTTPRoute {route}) sends it to the "
        "AgentgatewayBackend and that the backend's auth policy references the Secret with the key."),
    "not_received": (
        "The backend never received the request.",
        "The gateway did not forward it: see the gateway check above, the HTTPRoute status and the "
        "AgentgatewayBackend's host and port."),
    "not_counted": (
        "The gateway's metrics do not count the requests just sent.",
        "The requests did not pass this gateway, or its metrics come from another pod: check the Service that "
        "selects the proxy pods."),
    "config": ("The check's settings cannot work.", "Correct the setting named above."),
    "check_mode": ("Not run in check mode.", "Run without --check."),
}

FIX_ACCESS = {
    "nodeport": ("On kind, the cluster must map host port {host_port} to the Service's NodePort "
                 "(kind_cluster extraPortMappings), and the Service must be of type NodePort "
                 "(agw_obs_profile=kind). Elsewhere use agw_obs_access=proxy or url."),
    "url": "Check agw_obs_service_urls.{service} ({url}) and that whatever serves it (a port-forward?) still runs.",
    "proxy": "The API server reached the pod, but nothing listens on the target port: check the pod's logs.",
}

UNAUTHORIZED_FIX = {
    "grafana": ("Wrong Grafana credentials: use the admin user and the password from grafana_admin_password_file "
                "(or Secret {name}-admin in {ns}); set verification_grafana_user / verification_grafana_password."),
}


def context_of(access, service):
    """Placeholder values for ``CAUSES`` from a ``ServiceAccess`` (or None)."""
    target = getattr(access, "target", {}) or {}
    kube = getattr(access, "kube", None)
    mode = getattr(access, "mode", "url")
    settings = {"url": "agw_obs_service_urls.%s" % service,
                "nodeport": "agw_obs_node_address / the NodePort of %s (kind maps it to a host port) / "
                            "verification_services.%s.host_port" % (service, service)}
    values = {
        "where": access.describe() if access is not None else service,
        "url": getattr(access, "base_url", "") or "",
        "ns": target.get("namespace") or "?",
        "name": target.get("name") or "?",
        "port": target.get("port") or "?",
        "host_port": target.get("host_port") or "?",
        "service": service,
        "setting": settings.get(mode, "verification_services.%s" % service),
        "kubeconfig": getattr(kube, "path", "") or "the kubeconfig",
        "context": getattr(kube, "context", "") or "?",
        "gateway_ns": "the gateway namespace",
        "route": "of the mock backend",
    }
    return values


class _Default(dict):
    def __missing__(self, key):
        return "{%s}" % key


def explain(cause, access=None, service="service", extra=None):
    """(explanation, fix) for ``cause`` with the placeholders filled in."""
    meaning, fix = CAUSES.get(cause, ("%s." % cause, "See what was seen above."))
    values = _Default(context_of(access, service))
    values.update(extra or {})
    mode = getattr(access, "mode", "url")
    values["refused_fix"] = FIX_ACCESS.get(mode, FIX_ACCESS["url"]).format_map(values)
    values["unauthorized_fix"] = UNAUTHORIZED_FIX.get(
        service, "Check the credentials given for {service}.").format_map(values)
    return meaning.format_map(values), fix.format_map(values)


def result(check_id, title, service, passed, tried, saw, cause=None, access=None, fix=None, explanation=None,
           attempts=1, elapsed=0.0, details=None, skipped=False, extra=None):
    """One check result (see the module docstring)."""
    out = {
        "id": check_id,
        "title": title,
        "service": service,
        "status": "skipped" if skipped else ("passed" if passed else "failed"),
        "tried": tried,
        "saw": saw,
        "cause": None,
        "explanation": None,
        "fix": None,
        "attempts": attempts,
        "elapsed_s": round(elapsed, 3),
    }
    if not passed or skipped:
        out["cause"] = cause or ("check_mode" if skipped else "expectation")
        meaning, default_fix = explain(out["cause"], access, service, extra)
        out["explanation"] = explanation or meaning
        out["fix"] = fix or default_fix
    if details is not None:
        out["details"] = details
    return out


def summary(checks):
    passed = sum(1 for c in checks if c["status"] == "passed")
    failed = sum(1 for c in checks if c["status"] == "failed")
    skipped = sum(1 for c in checks if c["status"] == "skipped")
    return {"total": len(checks), "passed": passed, "failed": failed, "skipped": skipped}


# ---- JSON path ------------------------------------------------------------------------------------
_TOKEN = re.compile(r"\.?([A-Za-z_@$][\w@$-]*)|\[(\*|-?\d+)\]|\[\"([^\"]*)\"\]|\['([^']*)'\]")


class PathError(ValueError):
    pass


def parse_path(path):
    """Steps of a path such as ``data.result[0].value[1]``, ``items[*].name`` or ``a["b.c"]`` (``$`` optional)."""
    text = path.strip()
    if text.startswith("$"):
        text = text[1:]
    steps, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise PathError("cannot read JSON path %r at %r" % (path, text[pos:]))
        name, index, dq, sq = match.groups()
        if name is not None:
            steps.append(name)
        elif index is not None:
            steps.append("*" if index == "*" else int(index))
        else:
            steps.append(dq if dq is not None else sq)
        pos = match.end()
    return steps


def json_path(document, path):
    """Every value at ``path`` (a list; empty when nothing matches). ``[*]`` fans out over lists and dicts."""
    current = [document]
    for step in parse_path(path):
        nxt = []
        for value in current:
            if step == "*":
                if isinstance(value, list):
                    nxt.extend(value)
                elif isinstance(value, dict):
                    nxt.extend(value.values())
            elif isinstance(step, int):
                if isinstance(value, list) and -len(value) <= step < len(value):
                    nxt.append(value[step])
            elif isinstance(value, dict) and step in value:
                nxt.append(value[step])
        current = nxt
    return current


# ---- Prometheus text format ------------------------------------------------------------------------
_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?\s*$')
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def parse_metrics(text):
    """[(name, {label: value}, float)] of every sample in a Prometheus/OpenMetrics text exposition."""
    samples = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if not match:
            continue
        name, _braces, labels_text, value = match.group(1), match.group(2), match.group(3), match.group(4)
        labels = {}
        if labels_text:
            for lmatch in _LABEL.finditer(labels_text):
                labels[lmatch.group(1)] = lmatch.group(2).replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
        try:
            number = float(value)
        except ValueError:
            continue
        samples.append((name, labels, number))
    return samples


def metric_sum(text, name, labels=None):
    """(sum, series count) of the samples of ``name`` whose labels match ``labels`` (regex, fully anchored)."""
    patterns = {k: re.compile("^(?:%s)$" % v) for k, v in (labels or {}).items()}
    total, count = 0.0, 0
    for sample_name, sample_labels, value in parse_metrics(text):
        if sample_name != name or math.isnan(value):
            continue
        if all(p.match(sample_labels.get(k, "")) for k, p in patterns.items()):
            total += value
            count += 1
    return total, count


def config_failure(check_id, label, exc, tried=None):
    """A failed check for settings that cannot work (a bad kubeconfig, a missing URL)."""
    return result(check_id, "Reach %s" % label, label, False, tried or "open %s" % label, str(exc), cause="config")


def run_checks_module(module, label, title, collect, out=None):
    """The main() the verification modules share: open the services, collect the checks, report them.

    ``collect(services, deadline, backoff, results, out)`` appends its checks to ``results`` and its
    extra return values to ``out``. A setting that cannot work (``AccessError``: a bad kubeconfig, a
    missing URL) becomes a failed check ``<label>.access``. The module fails only when a check failed
    and ``fail_on_error`` is true; the results, with the cause and fix of each failure, are returned
    either way.
    """
    from ansible_collections.agentgateway.observability.plugins.module_utils.access import (  # noqa: E501 pylint: disable=import-outside-toplevel
        AccessError,
        Deadline,
        Services,
    )

    params = module.params
    services = Services(params)
    results, out = [], dict(out or {})
    try:
        collect(services, Deadline(params["deadline"]), params["backoff"], results, out)
    except AccessError as exc:
        results.append(config_failure("%s.access" % label, label, exc))
    finally:
        services.close()
    counts = summary(results)
    out.update(changed=False, checks=results, summary=counts, passed=counts["failed"] == 0)
    if counts["failed"] and params["fail_on_error"]:
        module.fail_json(msg="%d %s check(s) failed: %s" % (counts["failed"], title, "; ".join(
            "%s (%s): %s" % (c["id"], c["cause"], c["saw"]) for c in results if c["status"] == "failed")), **out)
    module.exit_json(**out)
