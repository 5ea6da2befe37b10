# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rules of role verification's settings that meta/argument_specs.yml cannot express.

``validate`` checks what the verification sends and where (checked with the rest of the site,
before anything is written or applied); ``validate_diagnose`` the settings of the support bundle.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible_collections.agentgateway.observability.plugins.plugin_utils.rules import URL_PATH, Check, is_list

SERVICES = ("gateway", "gateway_metrics", "mock_backend", "prometheus", "tempo", "grafana")
# The services of the existing stack (agw_obs_stack_mode=existing): the user's, so each may be missing,
# and its hop is then skipped with the reason (plugin_utils/site_services.py).
STACK_SERVICES = ("prometheus", "tempo", "loki", "grafana")
SERVICE_KEYS = ("namespace", "name", "port", "scheme", "host_port")


def required_services(check):
    """The services agw_obs_access=url needs a URL for: every hop the site itself runs."""
    services = list(SERVICES) + (["loki"] if check.flag("verification_loki_enabled") else [])
    if check["agw_obs_stack_mode"] == "existing":
        services = [s for s in services if s not in STACK_SERVICES]
    return services


def validate(settings):
    c = Check(settings)
    models = c["verification_models"]
    c.require(is_list(models) and len(models) > 0,
              "verification_models must be a non-empty list of model names (got %s)." % (models,))
    c.require(is_list(c["verification_priced_models"]), "verification_priced_models must be a list of model names.")
    c.integer("verification_requests_per_model", 1)
    c.matches("verification_path", URL_PATH, "must be a path starting with / (e.g. /v1/chat/completions)")
    c.positive("verification_deadline", " (seconds)")
    c.positive("verification_timeout", " (seconds)")
    required = required_services(c)
    services = c["verification_services"]
    if c.require(isinstance(services, Mapping), "verification_services must be a mapping of service key to what "
                                                "differs from the site's plan ({namespace, name, port, scheme, "
                                                "host_port}), e.g. {} (the default)."):
        for key in sorted(services):
            value = services[key]
            c.require(key in SERVICES + STACK_SERVICES,
                      "verification_services.%s: not a service the verification reaches (%s)."
                      % (key, ", ".join(SERVICES + STACK_SERVICES)))
            c.require(isinstance(value, Mapping) and set(value) <= set(SERVICE_KEYS),
                      "verification_services.%s=%s must be a mapping of some of %s (what differs from the site's "
                      "plan)." % (key, value, ", ".join(SERVICE_KEYS)))
    if c["agw_obs_access"] == "url":
        urls = c["agw_obs_service_urls"] if isinstance(c["agw_obs_service_urls"], Mapping) else {}
        for name in required:
            c.require(bool(urls.get(name)),
                      "agw_obs_access=url needs agw_obs_service_urls.%s (the base URL of %s, e.g. a port-forward such "
                      "as http://localhost:9090), or another agw_obs_access (nodeport, proxy)." % (name, name))
    if c.flag("verification_guard_enabled"):
        c.not_empty("verification_guard_prompt", "a prompt the mock backend's prompt guard rejects (matching "
                                                 "mock_backend_prompt_guard_patterns), or verification_guard_enabled=false")
    if c.flag("verification_retry_enabled"):
        c.integer("verification_retry_requests", 1, 10, hint=" (verification_retry_enabled=false sends none)")
    panel = c["verification_grafana_panel"]
    c.require(
        isinstance(panel, Mapping) and (
            panel == {} or ("dashboard_uid" in panel and (("panel_id" in panel) != ("panel_title" in panel)))),
        "verification_grafana_panel must be {} (no panel query) or {dashboard_uid, panel_title} / "
        "{dashboard_uid, panel_id}; got %s." % (panel,))
    return c.problems


def validate_diagnose(settings):
    c = Check(settings)
    c.require(is_list(c["verification_diagnose_namespaces"]),
              "verification_diagnose_namespaces must be a list of namespaces.")
    releases = c["verification_diagnose_releases"]
    c.require(is_list(releases) and all(isinstance(r, Mapping) and "name" in r for r in releases),
              "verification_diagnose_releases must be a list of {name, namespace}.")
    c.integer("verification_diagnose_log_lines", 1)
    c.integer("verification_diagnose_events", 1)
    c.require(c["agw_obs_render_dir"] == "",
              "playbooks/diagnose.yml reads a live cluster; agw_obs_render_dir=%s means render mode. Unset it and "
              "point agw_obs_kubeconfig / agw_obs_kube_context at the cluster." % (c["agw_obs_render_dir"],))
    return c.problems
