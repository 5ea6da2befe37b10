# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that build the Prometheus pieces of the prometheus role (logic in plugin_utils)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.agentgateway.observability.plugins.plugin_utils.desired_state import plain
from ansible_collections.agentgateway.observability.plugins.plugin_utils.prometheus_config import (
    PrometheusConfigError,
    alerting_rules,
    chart_pods_job_discovery,
    gateway_pod_monitor,
    gateway_scrape_job,
    prometheus_rule,
    recording_rules,
)


def prometheus_gateway_scrape_job(job_name, namespaces, pod_labels, port, metrics_path="/metrics",
                                  scrape_interval=None):
    try:
        return gateway_scrape_job(str(job_name), plain(namespaces), plain(pod_labels), port,
                                  metrics_path=str(metrics_path), scrape_interval=scrape_interval or None)
    except (PrometheusConfigError, TypeError, ValueError) as exc:
        raise AnsibleFilterError("prometheus_gateway_scrape_job: %s" % exc)


def prometheus_chart_pods_job_discovery(namespaces, pod_labels):
    try:
        return chart_pods_job_discovery(plain(namespaces), plain(pod_labels))
    except (PrometheusConfigError, TypeError, ValueError) as exc:
        raise AnsibleFilterError("prometheus_chart_pods_job_discovery: %s" % exc)


def prometheus_gateway_pod_monitor(job_name, name, namespace, labels, namespaces, pod_labels, port,
                                   metrics_path="/metrics", scrape_interval=None):
    try:
        return gateway_pod_monitor(str(name), str(namespace), plain(labels or {}), str(job_name), plain(namespaces),
                                   plain(pod_labels), port, metrics_path=str(metrics_path),
                                   scrape_interval=scrape_interval or None)
    except (PrometheusConfigError, TypeError, ValueError) as exc:
        raise AnsibleFilterError("prometheus_gateway_pod_monitor: %s" % exc)


def prometheus_rule_object(groups, name, namespace, labels=None):
    try:
        return prometheus_rule(str(name), str(namespace), plain(labels or {}), plain(groups))
    except (PrometheusConfigError, TypeError, ValueError) as exc:
        raise AnsibleFilterError("prometheus_rule_object: %s" % exc)


def prometheus_genai_rules(job_name, thresholds=None, extra_labels=None):
    try:
        return {
            "alerting": alerting_rules(str(job_name), plain(thresholds or {})),
            "recording": recording_rules(str(job_name), plain(extra_labels or [])),
        }
    except (PrometheusConfigError, TypeError, ValueError) as exc:
        raise AnsibleFilterError("prometheus_genai_rules: %s" % exc)


class FilterModule(object):
    def filters(self):
        return {
            "prometheus_chart_pods_job_discovery": prometheus_chart_pods_job_discovery,
            "prometheus_gateway_pod_monitor": prometheus_gateway_pod_monitor,
            "prometheus_gateway_scrape_job": prometheus_gateway_scrape_job,
            "prometheus_rule_object": prometheus_rule_object,
            "prometheus_genai_rules": prometheus_genai_rules,
        }
