# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rules of role loki's settings that meta/argument_specs.yml cannot express (checked when Loki is on)."""

from __future__ import annotations


from ansible_collections.agentgateway.observability.plugins.plugin_utils.rules import Check, as_int


def validate(settings):
    c = Check(settings)
    if not c.flag("loki_enabled"):
        return c.problems
    c.chart("loki_chart_repo", "loki_chart_name", "loki_chart_version", "loki_release_name", "loki_namespace",
            "loki_extra_values")
    c.prometheus_duration("loki_retention_period", "72h or 744h")
    c.matches("loki_schema_from", r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", "must be a date YYYY-MM-DD (quote it in YAML)")
    for enabled, memory in (("loki_chunks_cache_enabled", "loki_chunks_cache_memory_mb"),
                            ("loki_results_cache_enabled", "loki_results_cache_memory_mb")):
        if c.flag(enabled):
            megabytes = as_int(c[memory])
            c.require(megabytes is not None and megabytes >= 64,
                      "%s=%s: memcached needs at least 64 MB; or turn the cache off (%s=false)."
                      % (memory, c[memory], enabled))
    if c.flag("loki_persistence_enabled"):
        c.quantity("loki_persistence_size", "5Gi")
    c.image_path("loki_image_repository", "grafana/loki", "loki_image_registry", "the tag with loki_image_tag")
    c.resources("loki_resources", "{requests: {cpu: 100m, memory: 256Mi}, limits: {memory: 1Gi}}")
    c.resources("loki_memcached_exporter_resources", "{requests: {cpu: 10m, memory: 16Mi}, limits: {memory: 64Mi}}")
    return c.problems
