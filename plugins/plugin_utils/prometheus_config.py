# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus configuration for AgentGateway: the gateway scrape job and the GenAI rules.

Built in Python rather than in Jinja for two reasons: rule annotations are Go templates
(``{{ $labels.route }}``) that Jinja would try to evaluate, and every expression here is
unit-tested and then checked by promtool and a real Prometheus (tests/functional).

Metric and label names are the gateway's own, read from its source at v1.4.1
(crates/agentgateway/src/telemetry/metrics.rs, crates/xds/src/metrics.rs,
crates/core/src/tokio_metrics.rs and the pprof-alloc 0.5.0 collectors it registers):
``agentgateway_requests_total``, ``agentgateway_retries_total`` and
``agentgateway_request_duration_seconds_*`` carry ``gateway, route, backend, protocol, status,
reason, ...``; the GenAI metrics carry ``gen_ai_system`` (provider), ``gen_ai_request_model``,
``gen_ai_token_type`` and any custom labels set with ``config.metrics.fields.add``.

Some families carry no ``gateway`` label at all: the process, cgroup, tokio and xDS series,
``agentgateway_guardrail_checks_total{phase,action}``,
``agentgateway_upstream_connect_duration_seconds{transport}`` and
``agentgateway_upstream_call_duration_seconds{kind,subtype}``. For those the Gateway comes from
the pod: the scrape job maps the pod label ``gateway.networking.k8s.io/gateway-name`` to
``gateway_networking_k8s_io_gateway_name``, and ``label_join`` with the pod's namespace gives the
same ``<namespace>/<name>`` the proxy writes into its own ``gateway`` label.
"""

from __future__ import annotations

import re

from ansible_collections.agentgateway.observability.plugins.plugin_utils.rules import (
    is_label_value,
    is_prometheus_duration,
)

# The Kubernetes label the agentgateway controller puts on proxy pods (controller/pkg/wellknown/
# controller.go GatewayNameLabel, v1.4.1), as the scrape job's labelmap turns it into a target label.
POD_GATEWAY_LABEL = "gateway_networking_k8s_io_gateway_name"
# The proxy container in the pods the controller deploys (its deployer test data at v1.4.1 names it
# "agentgateway"); kube-state-metrics reports the container's memory limit under this name.
GATEWAY_CONTAINER = "agentgateway"
# How far back "normal" reaches for the guardrail block-rate spike (the last 5 minutes are left out).
GUARDRAIL_BASELINE = "1d"

# The alert thresholds: key -> (the prometheus role's variable, its rule). The values come from the
# role's defaults/main.yml (no defaults here); the role's validator (prometheus_settings.py) and
# alerting_rules() below check them with threshold_problems(), so the rule is written once.
THRESHOLDS = {
    "error_ratio": ("prometheus_alert_error_ratio", "ratio"),
    "backend_error_ratio": ("prometheus_alert_backend_error_ratio", "ratio"),
    "latency_p95_seconds": ("prometheus_alert_latency_p95_seconds", "positive"),
    "ttft_p95_seconds": ("prometheus_alert_ttft_p95_seconds", "positive"),
    "tokens_per_hour": ("prometheus_alert_tokens_per_hour", "positive"),
    "cost_usd_per_hour": ("prometheus_alert_cost_usd_per_hour", "positive"),
    "for": ("prometheus_alert_for", "duration"),
    "target_down_for": ("prometheus_alert_target_down_for", "duration"),
    "memory_limit_ratio": ("prometheus_alert_memory_limit_ratio", "ratio"),
    "xds_silence": ("prometheus_alert_xds_silence", "duration"),
    "mcp_error_ratio": ("prometheus_alert_mcp_error_ratio", "ratio"),
    "guardrail_block_ratio": ("prometheus_alert_guardrail_block_ratio", "ratio"),
    "guardrail_block_spike_factor": ("prometheus_alert_guardrail_block_spike_factor", "factor"),
    "retry_ratio": ("prometheus_alert_retry_ratio", "positive"),
    "upstream_connect_p95_seconds": ("prometheus_alert_upstream_connect_p95_seconds", "positive"),
}
_THRESHOLD_RULES = {
    "ratio": "must be a ratio in (0, 1] (0.05 = 5 %)",
    "positive": "must be a positive number",
    "factor": "must be at least 1 (how many times the usual block share counts as a spike; 3 = three times)",
    "duration": "must be a Prometheus duration such as 5m, 15m or 1h",
}


# What the gateway job asks for, best first (Prometheus 3 scrape_protocols). The proxy answers
# protobuf when asked (agentgateway main @ 75b4e6c: negotiates protobuf or text/plain, and its
# text/plain body is OpenMetrics text with `info` types that the classic text parser refuses);
# v1.4.1 answers OpenMetrics to any Accept header that lists it
# (crates/agentgateway/src/management/metrics_server.rs in both). This order is Prometheus'
# own protobuf-first list; the proxy's protobuf output itself could not be scraped here.
SCRAPE_PROTOCOLS = ["PrometheusProto", "OpenMetricsText1.0.0", "OpenMetricsText0.0.1", "PrometheusText1.0.0",
                    "PrometheusText0.0.4"]


class PrometheusConfigError(ValueError):
    """Bad input for the Prometheus configuration; the message names the setting."""


def sanitize_label_name(name):
    """How Prometheus service discovery turns a Kubernetes label into a meta label suffix."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


# The names the collection allows for the gateway's scrape job: its job label, which the rules and
# the dashboards (their hidden constant variable "job") select on.
_JOB_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_-]*$")


def is_job_name(value):
    """A name for the gateway's scrape job (letters, digits, _ and -, not starting with a digit or -)."""
    return isinstance(value, str) and bool(_JOB_NAME.match(value))


def scrape_job_problems(job_name, namespaces, pod_labels, port, metrics_path):
    """One message per setting of the gateway scrape job that cannot work, naming the variable."""
    problems = []
    if not is_job_name(job_name):
        problems.append("prometheus_gateway_job_name=%s is not a valid job name: use letters, digits, _ or - "
                        "(the default is agentgateway)." % (job_name,))
    if not namespaces or isinstance(namespaces, str):
        problems.append("prometheus_gateway_namespaces must list at least one namespace (the gateway's, "
                        "agw_obs_gateway_namespace, by default).")
    if not pod_labels or not isinstance(pod_labels, dict):
        problems.append("prometheus_gateway_pod_labels must hold at least one pod label and the regular "
                        "expression its value must match (by default gateway.networking.k8s.io/gateway-name: "
                        "<the Gateway's name>).")
    try:
        port_ok = not isinstance(port, bool) and 1 <= int(port) <= 65535
    except (TypeError, ValueError):
        port_ok = False
    if not port_ok:
        problems.append("prometheus_gateway_metrics_port=%s must be a port number (the gateway serves its "
                        "metrics on 15020)." % (port,))
    if not isinstance(metrics_path, str) or not metrics_path.startswith("/"):
        problems.append("prometheus_gateway_metrics_path=%s must be a path starting with / (the gateway's is "
                        "/metrics)." % (metrics_path,))
    return problems


def gateway_scrape_job(job_name, namespaces, pod_labels, port, metrics_path="/metrics", scrape_interval=None):
    """The dedicated scrape job for gateway proxy pods.

    Keeps pods in ``namespaces`` whose labels match ``pod_labels`` (label -> regex) on the
    container port ``port``, maps every pod label to a target label (so the Gateway name label
    ``gateway_networking_k8s_io_gateway_name`` exists) and adds ``namespace`` and ``pod``.
    """
    problems = scrape_job_problems(job_name, namespaces, pod_labels, port, metrics_path)
    if problems:
        raise PrometheusConfigError(" ".join(problems))
    port = int(port)
    relabel = []
    for label in sorted(pod_labels):
        relabel.append(
            {
                "action": "keep",
                "source_labels": ["__meta_kubernetes_pod_label_%s" % sanitize_label_name(label)],
                "regex": str(pod_labels[label]),
            }
        )
    relabel.extend(
        [
            {"action": "keep", "source_labels": ["__meta_kubernetes_pod_container_port_number"], "regex": str(port)},
            {"action": "drop", "source_labels": ["__meta_kubernetes_pod_phase"], "regex": "Pending|Succeeded|Failed"},
            {"action": "labelmap", "regex": "__meta_kubernetes_pod_label_(.+)"},
            {"action": "replace", "source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"action": "replace", "source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        ]
    )
    job = {
        "job_name": job_name,
        "metrics_path": metrics_path,
        "scrape_protocols": list(SCRAPE_PROTOCOLS),
        "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": list(namespaces)}}],
        "relabel_configs": relabel,
    }
    if scrape_interval:
        job["scrape_interval"] = scrape_interval
    return job


def _literal_values(label, regex, fix="prometheus_kubernetes_pods_exclude_gateway to false"):
    """The label values a keep regex of the gateway job matches, when it is a list of plain values."""
    values = []
    for alternative in str(regex).split("|"):
        value = alternative.replace("\\.", ".")
        # a bare dot matches any character: a pattern, not a value
        if not value or "." in alternative.replace("\\.", "") or not is_label_value(value):
            raise PrometheusConfigError(
                "prometheus_gateway_pod_labels[%s]=%r: to keep the chart's kubernetes-pods job off the gateway pods, "
                "each value must be a label value, or values joined by | (a dot written \\.), not a pattern; or set "
                "%s" % (label, regex, fix))
        values.append(value)
    return values


def chart_pods_job_discovery(namespaces, pod_labels):
    """kubernetes_sd_configs for the prometheus chart's own kubernetes-pods job, without the gateway pods.

    The gateway's proxy pods carry prometheus.io/scrape annotations, so the chart's annotation job
    scrapes them too, under another job name. This discovery finds every pod except those the
    gateway job keeps (in ``namespaces``, every label of ``pod_labels`` matching): the pods outside
    the namespaces (a field selector), plus, inside them, the pods where the first label that
    differs is label i (label selectors; one entry per label, so the entries never overlap).
    The chart's relabel rules are left as they are: Helm merges this key into its job.
    """
    if not namespaces or not pod_labels:
        raise PrometheusConfigError("prometheus_gateway_namespaces and prometheus_gateway_pod_labels must not be empty")
    labels = [(label, _literal_values(label, pod_labels[label])) for label in sorted(pod_labels)]
    outside = ",".join("metadata.namespace!=%s" % ns for ns in namespaces)
    discovery = [{"role": "pod", "selectors": [{"role": "pod", "field": outside}]}]
    for index, (label, values) in enumerate(labels):
        terms = ["%s in (%s)" % (name, ",".join(vals)) for name, vals in labels[:index]]
        terms.append("%s notin (%s)" % (label, ",".join(values)))
        discovery.append({"role": "pod", "namespaces": {"names": list(namespaces)},
                          "selectors": [{"role": "pod", "label": ",".join(terms)}]})
    return discovery


# ---- bring your own monitoring (agw_obs_stack_mode=existing) --------------------------------------
# Field names are those of the prometheus-operator v0.93.0 CRDs (the upstream schemas folder,
# prometheus-operator/monitoring.coreos.com_{podmonitors,prometheusrules}.yaml). How the operator turns
# a PodMonitor endpoint into a scrape config was read at its source, pkg/prometheus/promcfg.go
# generatePodMonitorConfig at v0.93.0: role-pod discovery in spec.namespaceSelector.matchNames; keep
# matchLabels / matchExpressions(In) on __meta_kubernetes_pod_label_<l> and _labelpresent_<l>; drop
# phases Failed|Succeeded; keep __meta_kubernetes_pod_container_port_number for portNumber; then
# namespace, container and pod labels, job=<namespace>/<name>, and the endpoint's relabelings last.
# The operator itself could not run here: tests/functional/test_existing_stack.py applies that
# translation on the real Prometheus.
MONITOR_PART_OF = {"app.kubernetes.io/part-of": "agentgateway-observability",
                   "app.kubernetes.io/managed-by": "agentgateway.observability"}


def _pod_selector(pod_labels):
    """A label selector for the gateway job's pod labels (plain values, or values joined by |)."""
    match_labels, expressions = {}, []
    for label in sorted(pod_labels):
        values = _literal_values(label, pod_labels[label],
                                 fix="agw_obs_stack_mode=install (a PodMonitor selects pods by label values)")
        if len(values) == 1:
            match_labels[label] = values[0]
        else:
            expressions.append({"key": label, "operator": "In", "values": values})
    selector = {}
    if match_labels:
        selector["matchLabels"] = match_labels
    if expressions:
        selector["matchExpressions"] = expressions
    return selector


def gateway_pod_monitor(name, namespace, labels, job_name, namespaces, pod_labels, port, metrics_path="/metrics",
                        scrape_interval=None):
    """A PodMonitor that scrapes the gateway pods the way the dedicated scrape job does.

    The operator's own rules already keep the pods (selector), the namespaces and the port, drop
    finished pods and set namespace/pod; the relabelings add what the scrape job adds on top: pending
    pods dropped, every pod label as a target label, namespace and pod again after them (as the job
    sets them last), and the job label the rules select on (the operator would set <ns>/<name>).
    """
    job = gateway_scrape_job(job_name, namespaces, pod_labels, port, metrics_path, scrape_interval)
    endpoint = {
        "portNumber": int(port),
        "path": job["metrics_path"],
        "relabelings": [
            {"action": "drop", "sourceLabels": ["__meta_kubernetes_pod_phase"], "regex": "Pending"},
            {"action": "labelmap", "regex": "__meta_kubernetes_pod_label_(.+)"},
            {"action": "replace", "sourceLabels": ["__meta_kubernetes_namespace"], "targetLabel": "namespace"},
            {"action": "replace", "sourceLabels": ["__meta_kubernetes_pod_name"], "targetLabel": "pod"},
            {"action": "replace", "targetLabel": "job", "replacement": job["job_name"]},
        ],
    }
    if scrape_interval:
        endpoint["interval"] = scrape_interval
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(MONITOR_PART_OF, **(labels or {}))},
        "spec": {
            "selector": _pod_selector(pod_labels),
            "namespaceSelector": {"matchNames": list(namespaces)},
            "scrapeProtocols": list(job["scrape_protocols"]),
            "podMetricsEndpoints": [endpoint],
        },
    }


def prometheus_rule(name, namespace, labels, groups):
    """A PrometheusRule holding ``groups`` as they are (the groups the prometheus chart values hold)."""
    if not groups:
        raise PrometheusConfigError("the PrometheusRule %s would hold no rule group" % name)
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(MONITOR_PART_OF, **(labels or {}))},
        "spec": {"groups": list(groups)},
    }


def _by(*labels, extra=()):
    seen = []
    for label in list(labels) + list(extra):
        if label not in seen:
            seen.append(label)
    return "by (%s)" % ", ".join(seen)


def _threshold_ok(rule, value):
    if rule == "duration":
        return is_prometheus_duration(value)
    if isinstance(value, bool):
        return False
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    if rule == "ratio":
        return 0 < number <= 1
    if rule == "factor":
        return number >= 1
    return number > 0


def threshold_problems(thresholds):
    """One message per threshold of ``thresholds`` (key -> value) that breaks its rule, naming the variable."""
    problems = []
    for key in sorted(thresholds or {}):
        if key not in THRESHOLDS:
            problems.append("unknown alert threshold %s" % key)
            continue
        variable, rule = THRESHOLDS[key]
        if not _threshold_ok(rule, thresholds[key]):
            problems.append("%s=%s %s." % (variable, thresholds[key], _THRESHOLD_RULES[rule]))
    return problems


def _check_thresholds(thresholds):
    missing = sorted(set(THRESHOLDS) - set(thresholds or {}))
    if missing:
        raise PrometheusConfigError("alert thresholds missing: %s" % ", ".join(missing))
    problems = threshold_problems(thresholds)
    if problems:
        raise PrometheusConfigError(" ".join(problems))
    return dict(thresholds)


def _num(value):
    """A threshold as PromQL text: 0.05, 5, 1e+06 ..."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


# ---- tokens, each counted once -------------------------------------------------------------------
# The proxy observes one request's tokens as up to four series of agentgateway_gen_ai_client_token_usage,
# by gen_ai_token_type: "input" (the provider's input_tokens), "output", "input_cache_read"
# (cached_input_tokens) and "input_cache_write" (cache_creation_input_tokens), each when the provider
# reports it (crates/agentgateway/src/telemetry/log.rs@v1.4.1, add_llm_metrics). Whether "input" already
# holds the cache reads and writes depends on the provider's wire format
# (crates/agentgateway/src/llm/mod.rs@v1.4.1, cache_convention_for):
# - InputExcludesCache: Anthropic and Bedrock, and Claude models behind Vertex AI and Copilot;
# - InputIncludesCache: every other provider (OpenAI, Azure, Gemini, Vertex AI and Copilot with other
#   models, custom OpenAI-compatible providers). The proxy's own cost subtracts the cache reads and
#   writes from such an input before pricing them at the cache rates (llm/cost/mod.rs@v1.4.1, usage_for).
# gen_ai_system is the provider's NAME (crates/llm/src/{openai,azure,gemini,vertex,anthropic,bedrock,
# copilot,custom}.rs@v1.4.1): openai, azure, gcp.gemini, gcp.vertex_ai, anthropic, aws.bedrock, copilot,
# and "custom" or the backend's providerOverride. A Claude model is what vertex.rs@v1.4.1 anthropic_model
# takes for one (a model starting "claude-" or "anthropic/", or holding "publishers/anthropic/models/"),
# and for Copilot what copilot.rs@v1.4.1 is_anthropic_model does (starting "claude-", any case). The
# labels cannot tell a custom provider speaking Anthropic's Messages format (InputExcludesCache upstream):
# its cache is subtracted like an OpenAI-compatible one's.
# The matchers below select the "input" series that include the cache; they do not overlap.
INPUT_INCLUDES_CACHE = (
    r'gen_ai_system!~"anthropic|aws\\.bedrock|gcp\\.vertex_ai|copilot"',
    r'gen_ai_system="gcp.vertex_ai",gen_ai_request_model!~"claude-.*|anthropic/.*|.*publishers/anthropic/models/.*"',
    r'gen_ai_system="copilot",gen_ai_request_model!~"(?i)claude-.*"',
)
GENAI_LABELS = ("namespace", "gateway", "gen_ai_system", "gen_ai_request_model")


def token_rate(job, extra_labels=()):
    """PromQL: tokens per second by type, each token counted once (agentgateway:gen_ai_tokens:rate5m).

    ``gen_ai_token_type`` keeps the proxy's values, but "input" is the uncached input: for providers
    whose input includes the cache (INPUT_INCLUDES_CACHE) the cache reads and writes of the same
    model are subtracted from it; the other types are as recorded. The sum over the types is the true
    total. Models without cache series keep their input as recorded (the ``or`` fallback).
    """
    by_type = _by(*GENAI_LABELS + ("gen_ai_token_type",), extra=extra_labels)
    by_model = _by(*GENAI_LABELS, extra=extra_labels)

    def usage(matchers):
        return 'rate(agentgateway_gen_ai_client_token_usage_sum{job="%s"%s}[5m])' % (
            job, "," + matchers if matchers else "")

    inputs = "\n    or\n    ".join(usage('gen_ai_token_type="input",' + m) for m in INPUT_INCLUDES_CACHE)
    return (
        "(\n  sum {by_type} (\n    {inputs}\n  )\n"
        "  - ignoring (gen_ai_token_type) group_left\n"
        "  sum {by_model} ({cache})\n)\nor\nsum {by_type} ({every})"
    ).format(by_type=by_type, by_model=by_model, inputs=inputs,
             cache=usage('gen_ai_token_type=~"input_cache_read|input_cache_write"'), every=usage(""))


def recording_rules(job, extra_labels=()):
    """Recording rules the dashboards and alerts build on. Names follow level:metric:operations."""
    sel = '{job="%s"}' % job
    err = '{job="%s",status=~"5.."}' % job
    genai = GENAI_LABELS
    rules = [
        {
            "record": "agentgateway:requests:rate5m",
            "expr": "sum %s (rate(agentgateway_requests_total%s[5m]))"
            % (_by("namespace", "gateway", "route", "backend", "status"), sel),
        },
        {
            "record": "agentgateway:request_errors:ratio_rate5m",
            "expr": "sum {by} (rate(agentgateway_requests_total{err}[5m]))\n/\n"
            "sum {by} (rate(agentgateway_requests_total{sel}[5m]))".format(
                by=_by("namespace", "gateway", "route"), err=err, sel=sel
            ),
        },
        {
            # Tokens per second by type, each token once: "input" is the uncached input (token_rate).
            # The token alert and the dashboards' token, cost-per-token and cache panels read this family.
            "record": "agentgateway:gen_ai_tokens:rate5m",
            "expr": token_rate(job, extra_labels),
        },
        {
            "record": "agentgateway:gen_ai_cost_usd:per_hour",
            "expr": "sum %s (rate(agentgateway_gen_ai_client_cost_usd_total%s[5m])) * 3600"
            % (_by(*genai, extra=extra_labels), sel),
        },
        {
            # 1 per scraped gateway pod, with the Gateway it serves in the proxy's own format
            # (gateway="<namespace>/<name>"): dashboards join the series that carry no gateway label
            # (process, cgroup, tokio, xDS, guardrails, upstream calls) on (namespace, pod) with it.
            "record": "agentgateway:pod_gateway:info",
            "expr": _gateway_of_pod("group %s (up%s)" % (_by("namespace", "pod", POD_GATEWAY_LABEL), sel)),
        },
        {
            "record": "agentgateway:mcp_requests:rate5m",
            "expr": "sum %s (rate(agentgateway_mcp_requests_total%s[5m]))"
            % (_by("namespace", "gateway", "route", "server", "method", "resource_type", "resource"), sel),
        },
        {
            # MCP calls carry no status of their own: the HTTP answers of MCP backends
            # (protocol="mcp") do. Routes without any 5xx read 0, not "no data".
            "record": "agentgateway:mcp_request_errors:ratio_rate5m",
            "expr": _share_of_requests(_by("namespace", "gateway", "route"),
                                       '{job="%s",protocol="mcp",status=~"5.."}' % job,
                                       '{job="%s",protocol="mcp"}' % job),
        },
        {
            "record": "agentgateway:guardrail_checks:rate5m",
            "expr": "sum %s (%s)" % (_by("namespace", "gateway", "phase", "action"),
                                     _gateway_of_pod("rate(agentgateway_guardrail_checks_total%s[5m])" % sel)),
        },
        {
            "record": "agentgateway:retries:rate5m",
            "expr": "sum %s (rate(agentgateway_retries_total%s[5m]))"
            % (_by("namespace", "gateway", "route", "backend"), sel),
        },
    ]
    return {"groups": [{"name": "agentgateway.recording", "rules": rules}]}


def _gateway_of_pod(expr):
    """PromQL: ``expr`` with a ``gateway`` label "<namespace>/<Gateway name>" taken from the pod's labels."""
    return 'label_join(%s, "gateway", "/", "namespace", "%s")' % (expr, POD_GATEWAY_LABEL)


def _share_of_requests(by, failed, total):
    """PromQL: the share of requests matching ``failed`` among ``total``, per ``by``; 0 when none failed."""
    return "(\n  sum {by} (rate(agentgateway_requests_total{failed}[5m]))\n  or\n" \
        "  0 * sum {by} (rate(agentgateway_requests_total{total}[5m]))\n)\n/\n" \
        "sum {by} (rate(agentgateway_requests_total{total}[5m]))".format(by=by, failed=failed, total=total)


def _ratio_above(by, failed, total, threshold):
    """PromQL: the share of requests matching ``failed`` among ``total``, per ``by``, above a threshold."""
    return "(\n  sum {by} (rate(agentgateway_requests_total{failed}[5m]))\n  /\n" \
        "  sum {by} (rate(agentgateway_requests_total{total}[5m]))\n) > {thr}".format(
            by=by, failed=failed, total=total, thr=_num(threshold))


def _p95_above(metric, by, sel, threshold):
    """PromQL: the 95th percentile of histogram ``metric``, per ``by`` (which includes le), above a threshold."""
    return "histogram_quantile(0.95,\n  sum %s (rate(%s_bucket%s[5m]))\n) > %s" % (by, metric, sel, _num(threshold))


def alerting_rules(job, thresholds):
    """GenAI alerts with configurable thresholds; each one has promtool tests (tests/functional)."""
    t = _check_thresholds(thresholds)
    sel = '{job="%s"}' % job

    def with_status(regex):
        return '{job="%s",status=~"%s"}' % (job, regex)

    route = _by("namespace", "gateway", "route")
    backend = _by("namespace", "gateway", "backend")
    model = _by("namespace", "gateway", "gen_ai_system", "gen_ai_request_model")
    rules = [
        {
            "alert": "AgentgatewayHighErrorRatio",
            "expr": _ratio_above(route, with_status("5.."), sel, t["error_ratio"]),
            "for": t["for"],
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "Gateway {{ $labels.gateway }} route {{ $labels.route }} answers 5xx"
                " to {{ $value | humanizePercentage }} of requests",
                "description": "More than %s%% of requests through route {{ $labels.route }} in"
                " {{ $labels.namespace }} failed with a 5xx status over 5 minutes."
                % _num(float(t["error_ratio"]) * 100),
            },
        },
        {
            "alert": "AgentgatewayHighRequestLatency",
            "expr": _p95_above("agentgateway_request_duration_seconds", _by("namespace", "gateway", "route", "le"),
                               sel, t["latency_p95_seconds"]),
            "for": t["for"],
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "p95 latency of route {{ $labels.route }} is {{ $value | humanizeDuration }}",
                "description": "95th percentile request duration through gateway {{ $labels.gateway }}"
                " is above %ss." % _num(t["latency_p95_seconds"]),
            },
        },
        {
            "alert": "AgentgatewaySlowTimeToFirstToken",
            "expr": _p95_above("agentgateway_gen_ai_server_time_to_first_token",
                               _by("namespace", "gateway", "gen_ai_system", "gen_ai_request_model", "le"),
                               sel, t["ttft_p95_seconds"]),
            "for": t["for"],
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "p95 time to first token of {{ $labels.gen_ai_request_model }} is"
                " {{ $value | humanizeDuration }}",
                "description": "Streaming responses from provider {{ $labels.gen_ai_system }} start slowly"
                " (threshold %ss)." % _num(t["ttft_p95_seconds"]),
            },
        },
        {
            "alert": "AgentgatewayScrapeTargetDown",
            "expr": "up%s == 0" % sel,
            "for": t["target_down_for"],
            "labels": {"severity": "critical"},
            "annotations": {
                "summary": "Prometheus cannot scrape gateway pod {{ $labels.pod }} in {{ $labels.namespace }}",
                "description": "The metrics endpoint (port 15020, /metrics) of the gateway pod is unreachable;"
                " its metrics, dashboards and GenAI alerts are blind.",
            },
        },
        {
            # The recorded token family (recording_rules, token_rate): cached prompt tokens count once.
            "alert": "AgentgatewayTokenBurnRateHigh",
            "expr": "sum {by} (agentgateway:gen_ai_tokens:rate5m) * 3600 > {thr}".format(
                by=model, thr=_num(t["tokens_per_hour"])
            ),
            "for": t["for"],
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "Model {{ $labels.gen_ai_request_model }} burns {{ $value | humanize }} tokens per hour",
                "description": "Token usage (uncached input, cache reads and writes, and output, each token once)"
                " through gateway {{ $labels.gateway }} is above %s tokens per hour." % _num(t["tokens_per_hour"]),
            },
        },
        {
            "alert": "AgentgatewayCostBurnRateHigh",
            "expr": "sum {by} (rate(agentgateway_gen_ai_client_cost_usd_total{sel}[15m])) * 3600 > {thr}".format(
                by=_by("namespace", "gateway"), sel=sel, thr=_num(t["cost_usd_per_hour"])
            ),
            "for": t["for"],
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "Gateway {{ $labels.gateway }} spends {{ $value | humanize }} USD per hour",
                "description": "Estimated LLM spend (from the gateway's model price catalog) is above"
                " %s USD per hour." % _num(t["cost_usd_per_hour"]),
            },
        },
        {
            "alert": "AgentgatewayBackendErrorRatioHigh",
            "expr": _ratio_above(backend, with_status("5..|429"), sel, t["backend_error_ratio"]),
            "for": t["for"],
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "Backend {{ $labels.backend }} fails {{ $value | humanizePercentage }} of requests",
                "description": "The provider behind backend {{ $labels.backend }} answers 5xx or 429"
                " (rate limited) to more than %s%% of requests." % _num(float(t["backend_error_ratio"]) * 100),
            },
        },
    ]
    rules.extend(_runtime_alerts(job, t))
    return {"groups": [{"name": "agentgateway.alerts", "rules": rules}]}


def _runtime_alerts(job, t):
    """Alerts on the proxy's health and its MCP, guardrail, retry and upstream series."""
    sel = '{job="%s"}' % job
    pod = _by("namespace", "pod")
    gateway = _by("namespace", "gateway")
    route = _by("namespace", "gateway", "route")
    silence = t["xds_silence"]

    def blocked_share(window):
        """PromQL: the share of guardrail checks that rejected, per gateway, over a range like [5m]."""
        return "(\n  sum {by} ({rejected})\n  /\n  sum {by} ({checked})\n)".format(
            by=gateway,
            rejected=_gateway_of_pod('rate(agentgateway_guardrail_checks_total{job="%s",action="Reject"}%s)'
                                     % (job, window)),
            checked=_gateway_of_pod("rate(agentgateway_guardrail_checks_total%s%s)" % (sel, window)))

    return [
        {
            # Working set is what the kernel weighs against the limit (usage minus inactive file cache);
            # on nodes without cgroup v2 the proxy exports no cgroup series and RSS stands in.
            "alert": "AgentgatewayMemoryNearLimit",
            "expr": "(\n  max {pod} (agentgateway_cgroup_working_set{sel} or agentgateway_process_rss{sel})\n"
            "  /\n  max {pod} (kube_pod_container_resource_limits{{resource=\"memory\",container=\"{container}\"}})\n"
            ") > {thr}".format(pod=pod, sel=sel, container=GATEWAY_CONTAINER, thr=_num(t["memory_limit_ratio"])),
            "for": t["for"],
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "Gateway pod {{ $labels.pod }} uses {{ $value | humanizePercentage }} of its memory limit",
                "description": "The proxy's working set in {{ $labels.namespace }} is above %s%% of the container's"
                " memory limit (kube-state-metrics); the kernel kills it at 100%%."
                % _num(float(t["memory_limit_ratio"]) * 100),
            },
        },
        {
            # Delta xDS is quiet while nothing changes, so silence alone is normal. Silence is a problem
            # when the stream to the controller keeps ending (every failed or dropped stream counts in
            # xds_connection_terminations) or when the pod has never received a message.
            "alert": "AgentgatewayXdsSilent",
            "expr": "(\n  max {pod} (up{sel}) == 1\n  unless on (namespace, pod)\n"
            "  sum {pod} (increase(agentgateway_xds_message_total{sel}[{win}])) > 0\n)\n"
            "and on (namespace, pod)\n(\n"
            "  sum {pod} (increase(agentgateway_xds_connection_terminations_total{sel}[{win}])) > 0\n"
            "  or on (namespace, pod)\n"
            "  (max {pod} (up{sel}) unless on (namespace, pod) agentgateway_xds_message_total{sel})\n"
            ")".format(pod=pod, sel=sel, win=silence),
            "for": t["for"],
            "labels": {"severity": "critical"},
            "annotations": {
                "summary": "Gateway pod {{ $labels.pod }} has heard nothing from its controller for %s" % silence,
                "description": "No xDS message reached the proxy in {{ $labels.namespace }} for %s while its"
                " xDS stream keeps ending (or it never got one): it serves its last configuration and misses"
                " every change to routes, backends and policies." % silence,
            },
        },
        {
            "alert": "AgentgatewayMcpErrorRatioHigh",
            "expr": _ratio_above(route, '{job="%s",protocol="mcp",status=~"5.."}' % job,
                                 '{job="%s",protocol="mcp"}' % job, t["mcp_error_ratio"]),
            "for": t["for"],
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "MCP route {{ $labels.route }} answers 5xx to {{ $value | humanizePercentage }} of requests",
                "description": "More than %s%% of MCP requests through gateway {{ $labels.gateway }} failed with a"
                " 5xx status (MCP servers unreachable or failing)." % _num(float(t["mcp_error_ratio"]) * 100),
            },
        },
        {
            # A spike: above an absolute floor and several times the usual share of the last day.
            # A gateway without history (no checks a day back) alerts on the floor alone.
            "alert": "AgentgatewayGuardrailBlockSpike",
            "expr": "{now} > {floor}\nunless on (namespace, gateway)\n{now} <= {factor} * {usual}".format(
                now=blocked_share("[5m]"), floor=_num(t["guardrail_block_ratio"]),
                factor=_num(t["guardrail_block_spike_factor"]),
                usual=blocked_share("[%s] offset 5m" % GUARDRAIL_BASELINE)),
            "for": t["for"],
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "Guardrails on gateway {{ $labels.gateway }} block {{ $value | humanizePercentage }}"
                " of checks",
                "description": "The share of guardrail checks that reject a prompt or response is above %s%% and"
                " more than %s times its usual level over the last day: an attack, a broken client or a"
                " guardrail change." % (_num(float(t["guardrail_block_ratio"]) * 100),
                                        _num(t["guardrail_block_spike_factor"])),
            },
        },
        {
            "alert": "AgentgatewayRetryStorm",
            "expr": "(\n  sum {by} (rate(agentgateway_retries_total{sel}[5m]))\n  /\n"
            "  sum {by} (rate(agentgateway_requests_total{sel}[5m]))\n) > {thr}".format(
                by=route, sel=sel, thr=_num(t["retry_ratio"])),
            "for": t["for"],
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "Route {{ $labels.route }} retries {{ $value | printf \"%.2f\" }} times per request",
                "description": "Requests through gateway {{ $labels.gateway }} are retried more than %s times per"
                " request: retries multiply the load on a backend that is already failing."
                % _num(t["retry_ratio"]),
            },
        },
        {
            "alert": "AgentgatewayUpstreamConnectSlow",
            "expr": "histogram_quantile(0.95,\n  sum {by} ({rate})\n) > {thr}".format(
                by=_by("namespace", "gateway", "transport", "le"),
                rate=_gateway_of_pod("rate(agentgateway_upstream_connect_duration_seconds_bucket%s[5m])" % sel),
                thr=_num(t["upstream_connect_p95_seconds"])),
            "for": t["for"],
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "p95 upstream connect time of gateway {{ $labels.gateway }} ({{ $labels.transport }})"
                " is {{ $value | humanizeDuration }}",
                "description": "Opening connections to backends (TCP and TLS) takes more than %ss at the 95th"
                " percentile: DNS, network or an overloaded backend." % _num(t["upstream_connect_p95_seconds"]),
            },
        },
    ]
