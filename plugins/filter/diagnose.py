# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of playbooks/diagnose.yml (documentation in diagnose_sections.yml)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.agentgateway.observability.plugins.plugin_utils import diagnose as agw_diagnose
from ansible_collections.agentgateway.observability.plugins.plugin_utils.desired_state import plain


def diagnose_sections(pods, events=None, helm=None, telemetry=None, logs=None, events_limit=100,
                      planned_services=None, services=None, endpoints=None, absent=None):
    """The support bundle's files from the registered (looped) results of the diagnose tasks."""
    try:
        pod_results, pod_list = plain(pods or []), []
        for result in pod_results:
            pod_list.extend(result.get("resources") or [])
        failing = agw_diagnose.failing_pods(pod_list)
        sections = {
            "pods.txt": agw_diagnose.pod_table(pod_list),
            "pods.yaml": agw_diagnose.section(pod_results, "resources"),
            "events.yaml": agw_diagnose.section(plain(events or []), "resources", last=int(events_limit)),
            "helm-releases.yaml": agw_diagnose.section(plain(helm or []), "status"),
            "gateway-telemetry.yaml": agw_diagnose.section(plain(telemetry or []), "resources", telemetry=True),
            "failing-pods.yaml": failing,
            "services.yaml": agw_diagnose.services_section(plain(planned_services or []), plain(services or []),
                                                           plain(endpoints or []), plain(absent or {})),
        }
        sections.update(agw_diagnose.pod_logs(failing, plain(logs or [])))
        return sections
    except (TypeError, ValueError, AttributeError) as exc:
        raise AnsibleFilterError("diagnose_sections: %s" % exc) from exc


def failing_pods(pods):
    """Summaries of the pods that are not Running and ready (or restarted), from k8s_info resources."""
    return agw_diagnose.failing_pods(plain(pods or []))


def diagnose_plan(plans, services=None, namespaces=None, releases=None):
    """What the support bundle reads, from the site's plan: namespaces, releases, Services, hops not run."""
    try:
        return agw_diagnose.plan_reads(plain(plans or {}), plain(services or {}), plain(namespaces or []),
                                       plain(releases or []))
    except (TypeError, ValueError, AttributeError) as exc:
        raise AnsibleFilterError("diagnose_plan: %s" % exc) from exc


class FilterModule(object):
    def filters(self):
        return {"diagnose_sections": diagnose_sections, "failing_pods": failing_pods, "diagnose_plan": diagnose_plan}
