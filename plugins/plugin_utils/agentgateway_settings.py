# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rules of role agentgateway's settings that meta/argument_specs.yml cannot express."""

from __future__ import annotations

from collections.abc import Mapping

from ansible_collections.agentgateway.observability.plugins.plugin_utils.rules import Check, as_int, is_pinned_version

# The proxy's own ports: admin, metrics (statsAddr), readiness.
PROXY_PORTS = (15000, 15020, 15021)


def validate(settings):
    c = Check(settings)
    c.matches("agentgateway_gateway_api_version", r"^v[0-9]+\.[0-9]+\.[0-9]+$",
              "must be a pinned Gateway API release such as v1.6.1 (no ranges, no latest)")
    c.require(is_pinned_version(c["agentgateway_chart_version"]),
              "agentgateway_chart_version=%s is not a pinned chart version: use a release such as v1.4.1 (no ranges, "
              "no latest)." % (c["agentgateway_chart_version"],))
    url = c["agentgateway_gateway_api_url"]
    c.require(isinstance(url, str) and url.startswith(("https://", "http://", "file:///")),
              "agentgateway_gateway_api_url must be an https:// URL, an http:// mirror or a file:/// copy on the "
              "controller, got %s." % (url,))
    oci = c["agentgateway_chart_oci"]
    c.require(isinstance(oci, str) and oci.startswith("oci://") and " " not in oci,
              "agentgateway_chart_oci=%s must be an oci:// registry path such as oci://cr.agentgateway.dev/charts."
              % (oci,))
    controller = c.flag("agentgateway_controller_enabled")
    c.require(
        not controller or c["agw_obs_gateway_variant"] == "oss",
        "agentgateway_controller_enabled is true but agw_obs_gateway_variant=enterprise: the open-source controller "
        "does not serve the enterprise-agentgateway GatewayClass. Install Solo Enterprise for agentgateway (licensed "
        "charts) yourself and set agentgateway_controller_enabled to false.")
    c.k8s_name("agentgateway_namespace", "Kubernetes namespace")
    c.release_name("agentgateway_crds_release_name")
    c.release_name("agentgateway_release_name")
    for name in ("agentgateway_gateway_class_name", "agentgateway_listener_name", "agentgateway_parameters_name"):
        c.k8s_name(name)
    port = as_int(c["agentgateway_listener_port"])
    c.require(port is not None and 1 <= port <= 65535 and port not in PROXY_PORTS,
              "agentgateway_listener_port=%s must be a port 1-65535 other than the proxy's own 15000 (admin), 15020 "
              "(metrics) and 15021 (readiness)." % (c["agentgateway_listener_port"],))
    c.require(isinstance(c["agentgateway_controller_extra_values"], Mapping),
              "agentgateway_controller_extra_values must be a mapping of chart values.")
    c.require(
        not (controller and c.flag("agentgateway_gateway_enabled"))
        or c["agw_obs_gateway_namespace"] != c["agentgateway_namespace"]
        or c["agw_obs_gateway_name"] != c["agentgateway_release_name"],
        "agw_obs_gateway_name=%s equals agentgateway_release_name in namespace %s: the controller names the Gateway's "
        "proxy Deployment and Service after the Gateway and would overwrite its own Deployment and Service of that "
        "name. Use another Gateway name (the default is agentgateway-proxy) or another agentgateway_release_name."
        % (c["agw_obs_gateway_name"], c["agentgateway_namespace"]))
    c.resources("agentgateway_controller_resources", "{requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 512Mi}}")
    return c.problems
