# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rules of role existing_stack's settings that meta/argument_specs.yml cannot express.

The alert thresholds, the gateway scrape job and the dashboard files it takes from roles
prometheus and grafana are checked there (their ``validate_export``).
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible_collections.agentgateway.observability.plugins.plugin_utils.rules import (
    Check,
    is_http_url,
    is_label_name,
    is_label_value,
)
from ansible_collections.agentgateway.observability.plugins.plugin_utils.site_services import service_url


def validate(settings):
    c = Check(settings)
    for name in ("existing_stack_namespace", "existing_stack_grafana_namespace", "existing_stack_pod_monitor_name",
                 "existing_stack_rule_name"):
        c.k8s_name(name)
    labels = c["existing_stack_prometheus_labels"]
    c.require(
        isinstance(labels, Mapping) and all(is_label_name(k) and is_label_value(v) for k, v in labels.items()),
        "existing_stack_prometheus_labels must be a mapping of Kubernetes labels (kube-prometheus-stack selects "
        "release: <its release name>), got %s." % (labels,))
    for name, example in (("existing_stack_dashboard_label", "grafana_dashboard"),
                          ("existing_stack_datasource_label", "grafana_datasource")):
        c.require(is_label_name(c[name]), "%s=%s is not a label name (kube-prometheus-stack: %s)."
                  % (name, c[name], example))
    for name in ("existing_stack_tempo_datasource_url", "existing_stack_loki_datasource_url"):
        value = c[name]
        c.require(value == "" or is_http_url(value),
                  "%s=%s is not a URL: give the address your Grafana reaches the service at (Tempo's query API on port "
                  "3200, Loki on 3100), e.g. http://tempo.observability.svc.cluster.local:3200, or leave it empty for "
                  "no datasource ConfigMap." % (name, value))
    for name, what in (("existing_stack_prometheus_url", "Prometheus"), ("existing_stack_grafana_url", "Grafana")):
        value = c[name]
        c.require(value == "" or service_url(value) is not None,
                  "%s=%s is not an in-cluster Service URL: give your %s's Service as "
                  "http://<service>.<namespace>.svc[.cluster.local][:<port>] (the verification reaches it through the "
                  "API server's service proxy), or leave it empty to skip that hop." % (name, value, what))
    return c.problems
