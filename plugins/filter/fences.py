# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for the fences of the site's plan (logic in plugin_utils/fences.py)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.agentgateway.observability.plugins.plugin_utils.desired_state import plain
from ansible_collections.agentgateway.observability.plugins.plugin_utils.fences import FenceError, network_policy


def agw_obs_network_policy(pods, name, namespace, rules, component=""):
    """An ingress-only NetworkPolicy for the pods labelled ``pods``, one rule per entry of ``rules``."""
    try:
        return network_policy(plain(name), plain(namespace), plain(pods), plain(rules), plain(component))
    except (FenceError, TypeError, ValueError, KeyError) as exc:
        raise AnsibleFilterError("agw_obs_network_policy %s: %s" % (name, exc)) from exc


class FilterModule(object):
    def filters(self):
        return {"agw_obs_network_policy": agw_obs_network_policy}
