# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for NodePorts across the roles and the kind cluster that maps them (logic in plugin_utils)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.agentgateway.observability.plugins.plugin_utils.desired_state import plain
from ansible_collections.agentgateway.observability.plugins.plugin_utils.kind_config import (
    KindConfigError,
    cluster_config,
    missing_port_mappings,
    node_port_problems,
    port_plan,
)


def _call(name, func, *args, **kwargs):
    try:
        return func(*args, **kwargs)
    except (KindConfigError, TypeError, ValueError, KeyError) as exc:
        raise AnsibleFilterError("%s: %s" % (name, exc))


def agw_obs_node_port_problems(node_ports):
    return _call("agw_obs_node_port_problems", node_port_problems, plain(node_ports or []))


def kind_port_plan(node_ports, host_port_claims=None):
    return _call("kind_port_plan", port_plan, plain(node_ports or []), plain(host_port_claims or []))


def kind_cluster_config(mappings, name, image, listen_address="127.0.0.1"):
    return _call("kind_cluster_config", cluster_config, plain(mappings or []), str(name), str(image), str(listen_address))


def kind_missing_port_mappings(containers, mappings):
    return _call("kind_missing_port_mappings", missing_port_mappings, plain(containers or []), plain(mappings or []))


class FilterModule(object):
    def filters(self):
        return {
            "agw_obs_node_port_problems": agw_obs_node_port_problems,
            "kind_port_plan": kind_port_plan,
            "kind_cluster_config": kind_cluster_config,
            "kind_missing_port_mappings": kind_missing_port_mappings,
        }
