# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The verification role's plan filter (documentation in verification_plan.yml)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.agentgateway.observability.plugins.plugin_utils.desired_state import plain
from ansible_collections.agentgateway.observability.plugins.plugin_utils.verification import PlanError, plan


def verification_plan(sent, targets, path, api_key, backend_api_key, backend="mock-openai", namespace="",
                      priced_models=(), model_label="model", trace_attributes=None,
                      loki_query='{service_name=~".+"} | trace_id="{trace_id}"', follow=True):
    """The checks that follow ``sent`` requests through every hop."""
    try:
        return plan(plain(sent), plain(targets), plain(path), plain(api_key), plain(backend_api_key), plain(backend),
                    plain(namespace), plain(priced_models), plain(model_label), plain(trace_attributes),
                    plain(loki_query), bool(plain(follow)))
    except (PlanError, KeyError, TypeError) as exc:
        raise AnsibleFilterError("verification_plan: %s" % exc) from exc


class FilterModule(object):
    def filters(self):
        return {"verification_plan": verification_plan}
