# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rules of role gateway_observability's settings that meta/argument_specs.yml cannot express.

The telemetry configuration itself (CEL expressions, sampling, the proxy config schema's keys) is
checked by its builder, gateway_config.py, when the role plans it: that check lists every invalid
key with its variable, before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible_collections.agentgateway.observability.plugins.plugin_utils.rules import Check, as_int

PROXY_PORTS = (15000, 15020, 15021)
MAPPINGS = ("gateway_observability_metric_labels", "gateway_observability_tracing_attributes",
            "gateway_observability_tracing_resources", "gateway_observability_access_log_fields",
            "gateway_observability_model_prices", "gateway_observability_extra_raw_config")


def validate(settings):
    c = Check(settings)
    tracing = c.flag("gateway_observability_tracing_enabled")
    c.require(
        c["agw_obs_stack_mode"] != "existing" or not tracing or c["agw_obs_traces_url"] != "",
        "agw_obs_stack_mode=existing installs no Tempo, but the gateway's tracing is on "
        "(gateway_observability_tracing_enabled=true) and agw_obs_traces_url is empty: set agw_obs_traces_url to your "
        "OTLP traces endpoint (an in-cluster Service, e.g. http://tempo.observability.svc.cluster.local:4317), or set "
        "gateway_observability_tracing_enabled=false.")
    for name in ("gateway_observability_parameters_name", "gateway_observability_policy_name",
                 "gateway_observability_metrics_service_name", "gateway_observability_tracing_service",
                 "gateway_observability_tracing_namespace", "gateway_observability_loki_service",
                 "gateway_observability_loki_namespace"):
        c.k8s_name(name)
    if c.flag("gateway_observability_metrics_service_enabled") \
            and c["gateway_observability_metrics_service_type"] == "NodePort":
        c.node_port("gateway_observability_metrics_node_port", 30091)
    if c["gateway_observability_gateway_service_type"] == "NodePort":
        c.node_port("gateway_observability_listener_node_port", 30088)
    listener = as_int(c["gateway_observability_listener_port"])
    c.require(listener is not None and 1 <= listener <= 65535 and listener not in PROXY_PORTS,
              "gateway_observability_listener_port=%s must be a port other than 15000, 15020 and 15021 (the proxy's "
              "own)." % (c["gateway_observability_listener_port"],))
    c.port("gateway_observability_tracing_port", " (Tempo's OTLP gRPC port is 4317, HTTP 4318)")
    c.port("gateway_observability_loki_port", " (Loki's HTTP port is 3100)")
    c.resources("gateway_observability_resources", "{requests: {cpu: 200m, memory: 128Mi}, limits: {cpu: 500m, "
                                                   "memory: 256Mi}}")
    c.integer("gateway_observability_replicas", 1)
    c.integer("gateway_observability_enterprise_extension_replicas", 1)
    for name in MAPPINGS:
        c.require(isinstance(c[name], Mapping), "%s must be a mapping (name: value), got %s."
                  % (name, type(c[name]).__name__))
    return c.problems
