# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The verification role's plan: from the requests it sends to the checks that follow them (pure).

``plan(sent, ...)`` takes the requests (``{model, n, trace_id, span_id}``) and returns the
check specifications for service_probe (requests through the gateway, the backend's journal),
prometheus_query (per-model queries), tempo_search (traces) and loki_query (log lines).

How a request proves it passed the gateway (agentgateway source, crates/agentgateway/src/proxy/
httpproxy.rs, main @ 75b4e6c and v1.4.1): when a request carries a ``traceparent``, the gateway
starts a new span *in the same trace* (``tp.new_span()``) and writes it into the upstream
request's ``traceparent`` (``ns.insert_header``); the backend policy's auth replaces the
client's ``Authorization`` with the backend key from its Secret. So the backend's journal must
hold a request whose ``traceparent`` has our trace id but *not* our span id, with
``Authorization: Bearer <backend key>``. WireMock's ``POST /__admin/requests/find`` matches
exactly that (request matching: ``contains``, ``matches``, ``equalTo`` on headers).
"""

from __future__ import annotations

import re

TRACEPARENT = "00-%s-%s-01"


class PlanError(ValueError):
    pass


def _check_sent(sent):
    if not isinstance(sent, list):
        raise PlanError("the requests must be a list of {model, trace_id, span_id}")
    for entry in sent:
        for key in ("model", "trace_id", "span_id"):
            if not entry.get(key):
                raise PlanError("request %r has no %s" % (entry, key))
        if not re.match(r"^[0-9a-f]{32}$", entry["trace_id"]) or not re.match(r"^[0-9a-f]{16}$", entry["span_id"]):
            raise PlanError("request %r: trace_id must be 32 and span_id 16 lower-case hex digits" % entry)
    return sent


def _slug(entry):
    return "%s.%s" % (re.sub(r"[^A-Za-z0-9_.-]", "_", entry["model"]), entry.get("n", 0))


def request_checks(sent, service, path, api_key, backend="mock-openai", namespace=""):
    """One POST per request through the gateway, with its traceparent."""
    out = []
    for entry in _check_sent(sent):
        where = "%s/%s" % (namespace, backend) if namespace else backend
        out.append({
            "id": "gateway.request.%s" % _slug(entry),
            "title": "The gateway answers a %s chat completion (trace %s)" % (entry["model"], entry["trace_id"]),
            "label": "gateway",
            "service": service,
            "method": "POST",
            "path": path,
            "headers": {"traceparent": TRACEPARENT % (entry["trace_id"], entry["span_id"]),
                        "Authorization": "Bearer %s" % api_key},
            "body": {"model": entry["model"], "max_tokens": 16, "messages": [
                {"role": "user", "content": "agentgateway.observability verification, trace %s" % entry["trace_id"]}]},
            "json": [{"path": "choices[*].message.content", "min_count": 1}],
            "fixes": {
                "server_error": "The gateway got no good answer from the backend: check the mock backend's pod "
                                "(kubectl -n %s get pods,endpointslices -l app.kubernetes.io/name=%s) and the "
                                "AgentgatewayBackend's host and port." % (namespace or "<ns>", backend),
                "not_found": "No route matches %s on the gateway: check that HTTPRoute %s is Accepted and attached "
                             "to the Gateway (kubectl get httproute %s -o yaml)." % (path, where, backend),
                "unauthorized": "The backend refused the key the gateway sent: the Secret %s-auth and "
                                "mock_backend_api_key disagree." % backend,
            },
        })
    return out


def backend_checks(sent, service, backend_api_key, route="mock-openai"):
    """Two journal checks per request: the backend got it at all, and got it from the gateway."""
    out = []
    for entry in _check_sent(sent):
        trace, span = entry["trace_id"], entry["span_id"]
        out.append({
            "id": "backend.received.%s" % _slug(entry),
            "title": "The backend received the %s request (trace %s)" % (entry["model"], trace),
            "label": "mock_backend",
            "service": service,
            "method": "POST",
            "path": "/__admin/requests/find",
            "body": {"method": "POST", "headers": {"traceparent": {"contains": trace}}},
            "json": [{"path": "requests[*].url", "min_count": 1}],
            "cause": "not_received",
        })
        out.append({
            "id": "backend.via_gateway.%s" % _slug(entry),
            "title": "It came through the gateway: the gateway's span and the backend key (trace %s)" % trace,
            "label": "mock_backend",
            "service": service,
            "method": "POST",
            "path": "/__admin/requests/find",
            "body": {"method": "POST", "headers": {
                "traceparent": {"matches": "^00-%s-(?!%s)[0-9a-f]{16}-[0-9a-f]{2}$" % (trace, span)},
                "Authorization": {"equalTo": "Bearer %s" % backend_api_key}}},
            "json": [{"path": "requests[*].url", "min_count": 1}],
            "cause": "bypassed_gateway",
            "explanation": "No request of trace %s reached the backend with a new gateway span and the backend key."
                           % trace,
            "fix": "If backend.received passed, the request reached the backend without passing the gateway's "
                   "backend policy: check that HTTPRoute %s sends it to the AgentgatewayBackend %s and that its "
                   "auth policy references the Secret %s-auth." % (route, route, route),
        })
    return out


def promql_regex_literal(value):
    """``value`` as a literal inside a PromQL regex string: regex metacharacters get a backslash, written
    ``\\`` because the PromQL string literal consumes one backslash itself (Go string escapes)."""
    return re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\\\1", value)


def _alternatives(values):
    return "|".join(promql_regex_literal(v) for v in values)


def queries(models, priced_models, model_label="model"):
    """Per-model Prometheus queries: requests, input and output tokens, cost for priced models."""
    models = sorted(set(models))
    if not models:
        return []
    alt = _alternatives(models)
    out = [{
        "id": "prometheus.requests_by_model",
        "title": "agentgateway_requests_total counts each model sent (label %s)" % model_label,
        "query": 'sum by (%s) (agentgateway_requests_total{%s=~"%s"})' % (model_label, model_label, alt),
        "above": 0,
        "per_label": {"label": model_label, "values": models},
        "fix": "Check that the gateway's metric labels include %s (gateway_observability_metric_labels) and that the "
               "gateway target is up." % model_label,
    }]
    for kind in ("input", "output"):
        out.append({
            "id": "prometheus.tokens_%s" % kind,
            "title": "%s token usage is recorded for each model sent" % kind.capitalize(),
            "query": 'sum by (gen_ai_request_model) (agentgateway_gen_ai_client_token_usage_sum'
                     '{gen_ai_token_type="%s", gen_ai_request_model=~"%s"})' % (kind, alt),
            "above": 0,
            "per_label": {"label": "gen_ai_request_model", "values": models},
            "fix": "The gateway records token usage for AI backends only: check that the route leads to an "
                   "AgentgatewayBackend with spec.ai and that the backend answers with a usage object.",
        })
    priced = sorted(set(models) & set(priced_models or []))
    if priced:
        out.append({
            "id": "prometheus.cost",
            "title": "Cost is recorded for each priced model sent",
            "query": 'sum by (gen_ai_request_model) (agentgateway_gen_ai_client_cost_usd_total'
                     '{gen_ai_request_model=~"%s"})' % _alternatives(priced),
            "above": 0,
            "per_label": {"label": "gen_ai_request_model", "values": priced},
            "fix": "The gateway computes cost only for models in its price catalog: check "
                   "gateway_observability_model_prices (provider and model names as the gateway reports them).",
        })
    return out


def traces(sent, attributes=None):
    out = []
    for entry in _check_sent(sent):
        expected = {"gen_ai.request.model": entry["model"]}
        expected.update(attributes or {})
        title = "Tempo holds trace %s (%s) with its GenAI attributes" % (entry["trace_id"], entry["model"])
        out.append({"id": entry["trace_id"], "attributes": expected, "title": title})
    return out


def log_queries(sent, template):
    if "{trace_id}" not in template:
        raise PlanError("the LogQL template must contain {trace_id}: %r" % template)
    return [{"id": "loki.trace.%s" % entry["trace_id"],
             "title": "Loki holds the log line of trace %s (%s)" % (entry["trace_id"], entry["model"]),
             "query": template.replace("{trace_id}", entry["trace_id"])} for entry in _check_sent(sent)]


def plan(sent, targets, path, api_key, backend_api_key, backend="mock-openai", namespace="", priced_models=(),
         model_label="model", trace_attributes=None, loki_query='{service_name=~".+"} | trace_id="{trace_id}"',
         follow=True):
    """Every check spec the verification role runs, by stage.

    A hop without a target (``site_services.resolve`` skipped it) gets no checks: without the gateway
    nothing is sent, so nothing is followed either.
    """
    sent = list(sent) if "gateway" in targets else []
    followed = sent if follow else []
    return {
        "requests": request_checks(sent, targets.get("gateway"), path, api_key, backend, namespace),
        "backend": (backend_checks(followed, targets["mock_backend"], backend_api_key, backend)
                    if "mock_backend" in targets else []),
        "queries": queries([e["model"] for e in followed], priced_models, model_label),
        "traces": traces(followed, trace_attributes),
        "log_queries": log_queries(followed, loki_query),
    }


# ---- the one screen a site run ends with -------------------------------------------------------
SUMMARY_ORDER = ("grafana", "prometheus", "tempo", "loki", "gateway", "gateway_metrics", "mock_backend")


def _proxy_path(target):
    scheme = target.get("scheme") or "http"
    return "API server proxy /api/v1/namespaces/%s/services/%s%s:%s/proxy/" % (
        target.get("namespace", ""), "" if scheme == "http" else scheme + ":", target.get("name", ""),
        target.get("port", ""))


def where(key, resolved):
    """Where service ``key`` is reached, as ``site_services.resolve`` worked it out (one line of the screen)."""
    target = (resolved.get("targets") or {}).get(key)
    if target is None:
        return "not verified: %s" % ((resolved.get("skipped") or {}).get(key) or "not planned")
    if target["access"] == "url":
        return target["url"]
    if target["access"] == "nodeport":
        node_port = (resolved.get("node_ports") or {}).get(key)
        return "%s://%s:%s%s" % (target.get("scheme") or "http", target.get("node_address") or "localhost",
                                 target["host_port"], " (NodePort %s)" % node_port if node_port else "")
    return _proxy_path(target)


def summary(resolved, access="nodeport", render_dir="", grafana_user="admin", grafana_password_file="",
            grafana_password_given=False, report=None, skip_reason="", check_mode=False,
            grafana_password_file_exists=True):
    """Lines of the final screen: what was done, where each service is, the Grafana password, the result.

    ``resolved`` is ``site_services.resolve``'s answer for the services to list (the same the
    verification's checks use); ``report`` the result of the verification_report module
    (``summary``, ``passed``, ``files``) or empty when nothing ran.
    """
    resolved = dict(resolved or {})
    listed = set(resolved.get("targets") or {}) | set(resolved.get("skipped") or {})
    names = [n for n in SUMMARY_ORDER if n in listed] + sorted(n for n in listed if n not in SUMMARY_ORDER)
    lines = []
    if render_dir:
        lines.append("Rendered into %s (nothing applied): index.yaml lists every file, manifests/ the objects, "
                     "helm/ each release with its chart and values." % render_dir)
    else:
        lines.append("Applied%s." % (" (check mode: nothing changed)" if check_mode else ""))
    lines.append("Services (agw_obs_access=%s):" % access)
    lines += ["  %-16s %s" % (name, where(name, resolved)) for name in names]
    if grafana_password_given:
        password = "given in verification_grafana_password"
    elif grafana_password_file:
        password = "in %s" % grafana_password_file
        if not grafana_password_file_exists:
            password += " (not there: the grafana role creates it when it applies Grafana%s)" % (
                "; render mode does so only with grafana_render_admin_password=true" if render_dir else "")
    else:
        password = "in the Grafana admin Secret"
    lines.append("Grafana admin: user %s, password %s." % (grafana_user, password))
    if report and report.get("summary"):
        counts = report["summary"]
        files = report.get("files") or {}
        lines.append("Verification %s: %s checks, %s passed, %s failed, %s skipped%s" % (
            "PASSED" if report.get("passed") else "FAILED", counts.get("total", 0), counts.get("passed", 0),
            counts.get("failed", 0), counts.get("skipped", 0),
            ("; reports " + ", ".join(str(files[k]) for k in sorted(files))) if files else " (no report files written)"))
    elif skip_reason:
        lines.append("Verification skipped: %s" % skip_reason)
    else:
        lines.append("Verification did not finish: its error is above.")
    return lines
