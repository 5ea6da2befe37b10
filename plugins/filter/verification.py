# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The verification role's filters (documentation in verification_plan.yml and verification_summary.yml)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.agentgateway.observability.plugins.plugin_utils.desired_state import plain
from ansible_collections.agentgateway.observability.plugins.plugin_utils.site_services import (
    ServicesError,
    resolve,
    skipped_checks,
)
from ansible_collections.agentgateway.observability.plugins.plugin_utils.verification import (
    PlanError,
    demo_queries,
    plan,
    summary,
)


def verification_plan(sent, targets, path, api_key, backend_api_key, backend="mock-openai", namespace="",
                      priced_models=(), model_label="model", trace_attributes=None,
                      loki_query='{service_name=~".+"} | trace_id="{trace_id}"', follow=True, demo=None,
                      demo_enabled=None, guard_prompt="", retry_requests=2):
    """The checks that follow ``sent`` requests through every hop."""
    try:
        return plan(plain(sent), plain(targets), plain(path), plain(api_key), plain(backend_api_key), plain(backend),
                    plain(namespace), plain(priced_models), plain(model_label), plain(trace_attributes),
                    plain(loki_query), bool(plain(follow)), demo=plain(demo), demo_enabled=plain(demo_enabled),
                    guard_prompt=plain(guard_prompt), retry_requests=int(plain(retry_requests)))
    except (PlanError, KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError("verification_plan: %s" % exc) from exc


def verification_demo_queries(specs, series=None):
    """The Prometheus queries of the demo exchanges, each minus its baseline (``series`` of the baseline read)."""
    try:
        return demo_queries(plain(specs), plain(series))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise AnsibleFilterError("verification_demo_queries: %s" % exc) from exc


def verification_targets(services, hops, access="nodeport", node_address="localhost", service_urls=None,
                         port_mappings=None, overrides=None, turned_off=None):
    """How the verification reaches each required service, from the site's plan, or why a hop is skipped."""
    try:
        return resolve(plain(services), plain(hops), plain(access), plain(node_address), plain(service_urls),
                       plain(port_mappings), plain(overrides), plain(turned_off))
    except (ServicesError, KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError("verification_targets: %s" % exc) from exc


def verification_skipped_checks(skipped):
    """One skipped check, with its reason, per hop the site does not run."""
    return skipped_checks(plain(skipped or {}))


def verification_summary(resolved, access="nodeport", render_dir="", grafana_user="admin", grafana_password_file="",
                         grafana_password_given=False, report=None, skip_reason="", check_mode=False,
                         grafana_password_file_exists=True):
    """The lines of the screen a site run ends with."""
    try:
        return summary(plain(resolved), plain(access), plain(render_dir), plain(grafana_user),
                       plain(grafana_password_file), bool(plain(grafana_password_given)), plain(report),
                       plain(skip_reason), bool(plain(check_mode)), bool(plain(grafana_password_file_exists)))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise AnsibleFilterError("verification_summary: %s" % exc) from exc


class FilterModule(object):
    def filters(self):
        return {"verification_plan": verification_plan, "verification_summary": verification_summary,
                "verification_demo_queries": verification_demo_queries,
                "verification_targets": verification_targets,
                "verification_skipped_checks": verification_skipped_checks}
