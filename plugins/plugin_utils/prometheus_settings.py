# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rules of role prometheus's settings that meta/argument_specs.yml cannot express.

``validate`` checks everything the role's plan uses; ``validate_export`` only the alert thresholds
and the gateway scrape job, which role existing_stack takes from this role (tasks/export.yml). The
rules of the alert thresholds and of the scrape job live with the builder that uses them
(prometheus_config.py) and are called from here; the builders' own checks (the label values the
chart's kubernetes-pods job can leave out) fail the role's plan, naming the variable, before
anything is written.
"""

from __future__ import annotations

from ansible_collections.agentgateway.observability.plugins.plugin_utils.prometheus_config import (
    THRESHOLDS,
    scrape_job_problems,
    threshold_problems,
)
from ansible_collections.agentgateway.observability.plugins.plugin_utils.rules import Check

DURATIONS = ("prometheus_retention", "prometheus_scrape_interval", "prometheus_evaluation_interval")


def validate_export(settings, check=None):
    c = check or Check(settings)
    thresholds = {key: c[variable] for key, (variable, _rule) in THRESHOLDS.items()}
    c.problems.extend(threshold_problems(thresholds))
    problems = scrape_job_problems(c["prometheus_gateway_job_name"], c["prometheus_gateway_namespaces"],
                                   c["prometheus_gateway_pod_labels"], c["prometheus_gateway_metrics_port"],
                                   c["prometheus_gateway_metrics_path"])
    c.problems.extend(problems)
    return c.problems


def validate(settings):
    c = Check(settings)
    c.chart("prometheus_chart_repo", "prometheus_chart_name", "prometheus_chart_version",
            "prometheus_release_name", "prometheus_namespace", "prometheus_extra_values")
    if c["prometheus_service_type"] == "NodePort":
        c.node_port("prometheus_node_port", 30090)
    for name in DURATIONS:
        c.prometheus_duration(name)
    if c.flag("prometheus_persistence_enabled"):
        c.quantity("prometheus_persistence_size", "50Gi")
    validate_export(settings, c)
    for name in ("prometheus_server_image_repository", "prometheus_config_reloader_image_repository",
                 "prometheus_alertmanager_image_repository"):
        c.image_repository(name, "registry.example.internal/prometheus/prometheus",
                           "set the tag with prometheus_server_image_tag")
    c.resources("prometheus_resources", "{requests: {cpu: 500m, memory: 2Gi}, limits: {memory: 4Gi}}")
    c.resources("prometheus_config_reloader_resources", "{requests: {cpu: 10m, memory: 32Mi}, limits: {memory: 128Mi}}")
    c.resources("prometheus_kube_state_metrics_resources",
                "{requests: {cpu: 50m, memory: 128Mi}, limits: {memory: 512Mi}}")
    return c.problems
