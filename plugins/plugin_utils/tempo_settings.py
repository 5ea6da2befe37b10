# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rules of role tempo's settings that meta/argument_specs.yml cannot express."""

from __future__ import annotations

from collections.abc import Mapping

from ansible_collections.agentgateway.observability.plugins.plugin_utils.rules import Check, is_list

# Top-level keys the tempo chart (no values schema) silently ignores, and where they belong.
IGNORED_TOP_LEVEL_KEYS = ("storage", "compactor", "metrics_generator", "retention")


def validate(settings):
    c = Check(settings)
    c.chart("tempo_chart_repo", "tempo_chart_name", "tempo_chart_version", "tempo_release_name", "tempo_namespace",
            "tempo_extra_values")
    c.go_duration("tempo_retention", "use hours, minutes or seconds such as 24h, 72h or 90m (Tempo has no 'd' unit: "
                                     "7 days is 168h)")
    if c.flag("tempo_query_node_port_enabled"):
        c.node_port("tempo_query_node_port", 30200, ", or set tempo_query_node_port_enabled=false")
        c.service_name("tempo_query_node_port_service_name")
    processors = c["tempo_metrics_generator_processors"]
    if c.flag("tempo_metrics_generator_enabled"):
        c.matches("tempo_metrics_generator_remote_write_url", r"^https?://[^/]+/.*",
                  "must be an http(s) URL of Prometheus' /api/v1/write, e.g. "
                  "http://prometheus-server.monitoring.svc.cluster.local:80/api/v1/write (or set "
                  "tempo_metrics_generator_enabled=false)")
        c.require(is_list(processors) and len(processors) > 0,
                  "tempo_metrics_generator_processors must list at least one of service-graphs, span-metrics and "
                  "local-blocks while tempo_metrics_generator_enabled is true.")
    if c.flag("tempo_persistence_enabled"):
        c.quantity("tempo_persistence_size", "10Gi")
    c.image_path("tempo_image_repository", "grafana/tempo", "tempo_image_registry",
                 "the tag with tempo_image_tag")
    extra = c["tempo_extra_values"]
    ignored = [k for k in IGNORED_TOP_LEVEL_KEYS if isinstance(extra, Mapping) and k in extra]
    c.require(
        not ignored,
        "tempo_extra_values has top-level %s: the tempo chart ignores these (it has no values schema). Use "
        "tempo.storage.trace.*, tempo_retention (tempo.retention) and tempo_metrics_generator_* "
        "(tempo.metricsGenerator.*) instead." % ", ".join(ignored))
    c.resources("tempo_resources", "{requests: {cpu: 100m, memory: 256Mi}, limits: {memory: 1Gi}}")
    return c.problems
