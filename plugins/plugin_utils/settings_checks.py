# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which validator checks which role entry point (the check_settings action's table).

One validator per role, beside its builder; named here explicitly, so a reader can follow a role's
plan.yml to its rules with grep. Nothing is discovered at run time.
"""

from __future__ import annotations

from ansible_collections.agentgateway.observability.plugins.plugin_utils import (
    agentgateway_settings,
    agw_obs_settings,
    existing_stack_settings,
    gateway_observability_settings,
    grafana_settings,
    kind_cluster_settings,
    loki_settings,
    mock_backend_settings,
    prometheus_settings,
    tempo_settings,
    traffic_settings,
    verification_settings,
)

VALIDATORS = {
    ("agw_obs", "main"): agw_obs_settings.validate,
    ("prometheus", "plan"): prometheus_settings.validate,
    ("prometheus", "export"): prometheus_settings.validate_export,
    ("tempo", "plan"): tempo_settings.validate,
    ("loki", "plan"): loki_settings.validate,
    ("grafana", "plan"): grafana_settings.validate,
    ("grafana", "export"): grafana_settings.validate_export,
    ("existing_stack", "plan"): existing_stack_settings.validate,
    ("agentgateway", "plan"): agentgateway_settings.validate,
    ("gateway_observability", "plan"): gateway_observability_settings.validate,
    ("mock_backend", "plan"): mock_backend_settings.validate,
    ("traffic", "plan"): traffic_settings.validate,
    ("verification", "plan"): verification_settings.validate,
    ("verification", "diagnose"): verification_settings.validate_diagnose,
    ("kind_cluster", "plan"): kind_cluster_settings.validate,
}


SHARED = ("agw_obs", "main")


def check(role, entry_point, settings):
    """(what, problems) for ``role``'s settings at ``entry_point``: the shared settings first, then the role's.

    Every role reads the shared settings (agw_obs_*), so each check starts with them: a bad shared
    setting is reported as itself, not as the role variable derived from it. ``problems`` is a list of
    messages, empty when everything is fine.
    """
    try:
        validator = VALIDATORS[(role, entry_point)]
    except KeyError:
        raise ValueError("no validator for role %s, entry point %s (known: %s)"
                         % (role, entry_point, ", ".join("%s/%s" % k for k in sorted(VALIDATORS))))
    shared = VALIDATORS[SHARED](settings)
    if shared or (role, entry_point) == SHARED:
        return "Shared settings", shared
    return "Role %s" % role, validator(settings)
