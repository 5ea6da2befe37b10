# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rules of the shared settings (prefix agw_obs_) that meta/argument_specs.yml cannot express.

Checked once per site (and once when a role runs on its own), before anything is written or applied.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

from ansible_collections.agentgateway.observability.plugins.plugin_utils.rules import (
    Check,
    is_http_url,
    is_k8s_name,
    is_registry,
    is_service_url,
)

_CHART_MIRROR = re.compile(r"^(https?|oci)://[^\s]+$")


def validate(settings):
    c = Check(settings)
    for name in ("agw_obs_wait_timeout", "agw_obs_lock_timeout", "agw_obs_lock_lease"):
        c.wait_duration(name)
    for name in ("agw_obs_monitoring_namespace", "agw_obs_gateway_namespace", "agw_obs_gateway_name"):
        c.k8s_name(name)
    registry = c["agw_obs_image_registry"]
    c.require(
        registry == "" or is_registry(registry),
        "agw_obs_image_registry=%s should be a registry host with an optional port and path, such as "
        "registry.example.internal:5000/mirror (no scheme, no trailing slash)." % registry)
    urls = c["agw_obs_service_urls"]
    if c.require(isinstance(urls, Mapping), "agw_obs_service_urls must be a mapping of service name to base URL."):
        for key in sorted(urls):
            value = urls[key]
            c.require(
                value == "" or is_http_url(value),
                "agw_obs_service_urls.%s=%s is not a URL: use scheme://host[:port][/path], e.g. "
                "http://localhost:9090, or leave it empty." % (key, value))
    for name in ("agw_obs_traces_url", "agw_obs_logs_url"):
        value = c[name]
        c.require(
            value == "" or is_service_url(value),
            "%s=%s is not the URL of an in-cluster Service: the gateway sends OTLP to a Service it refers to by "
            "name, so use http://<service>.<namespace>.svc.cluster.local:<port>[/path] (or .svc), e.g. "
            "http://otel-collector.observability.svc.cluster.local:4317; or leave it empty." % (name, value))
    c.require(
        c["agw_obs_stack_mode"] != "existing" or not c.flag("agw_obs_loki_enabled") or c["agw_obs_logs_url"] != "",
        "agw_obs_stack_mode=existing with agw_obs_loki_enabled=true asks for the gateway's access logs in your "
        "Loki, but agw_obs_logs_url is empty: set it to your Loki's (or collector's) OTLP logs endpoint, e.g. "
        "http://loki-gateway.logging.svc.cluster.local:80/otlp/v1/logs, or set agw_obs_loki_enabled=false.")
    # agw_obs_kubeconfig is checked where it is used, by the deploy call's cluster check before the first
    # change (a kind cluster's kubeconfig does not exist yet when playbooks/kind.yml plans the site).
    mirror = c["agw_obs_chart_repository_mirror"]
    c.require(
        mirror == "" or bool(_CHART_MIRROR.match(mirror)),
        "agw_obs_chart_repository_mirror=%s should be an http(s):// chart repository URL (serving index.yaml) or "
        "an oci:// registry prefix, such as https://charts.example.internal/stable or "
        "oci://registry.example.internal/charts." % mirror)
    for namespace in c["agw_obs_network_policy_allowed_namespaces"] or []:
        c.require(
            is_k8s_name(namespace),
            "agw_obs_network_policy_allowed_namespaces holds %r, which is not a namespace name (a DNS-1123 label "
            "such as ingress-nginx)." % (namespace,))
    for cidr in c["agw_obs_network_policy_allowed_cidrs"] or []:
        c.require(
            _is_cidr(cidr),
            "agw_obs_network_policy_allowed_cidrs holds %r, which is not an address range: use CIDR notation with "
            "no host bits set, such as 10.0.0.0/24 or 2001:db8::/64." % (cidr,))
    return c.problems


def _is_cidr(value):
    try:
        ipaddress.ip_network(str(value), strict=True)
    except ValueError:
        return False
    return "/" in str(value)
