# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that build the Grafana pieces of the grafana role (logic in plugin_utils)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.agentgateway.observability.plugins.plugin_utils.desired_state import plain
from ansible_collections.agentgateway.observability.plugins.plugin_utils.grafana_config import (
    GrafanaConfigError,
    dashboard_configmaps,
    gnet_values,
)


def grafana_dashboard_configmaps(paths, contents, namespace, label="grafana_dashboard", label_value="1",
                                 folder_annotation="grafana_folder", folder="AgentGateway", job=None):
    paths, contents = plain(paths), plain(contents)
    if len(paths) != len(contents):
        raise AnsibleFilterError("grafana_dashboard_configmaps: %d paths but %d contents" % (len(paths), len(contents)))
    try:
        return dashboard_configmaps(
            [{"path": p, "content": c} for p, c in zip(paths, contents)],
            str(namespace), str(label), str(label_value), str(folder_annotation), str(folder),
            job=None if job is None else plain(job),
        )
    except GrafanaConfigError as exc:
        raise AnsibleFilterError("grafana_dashboard_configmaps: %s" % exc)


def grafana_gnet_values(dashboards):
    try:
        return gnet_values(plain(dashboards or []))
    except GrafanaConfigError as exc:
        raise AnsibleFilterError("grafana_gnet_values: %s" % exc)


class FilterModule(object):
    def filters(self):
        return {
            "grafana_dashboard_configmaps": grafana_dashboard_configmaps,
            "grafana_gnet_values": grafana_gnet_values,
        }
