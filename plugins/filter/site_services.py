# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters naming the Services the site runs, for its plan (logic in plugin_utils/site_services.py)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.agentgateway.observability.plugins.plugin_utils.desired_state import plain
from ansible_collections.agentgateway.observability.plugins.plugin_utils.site_services import (
    ServicesError,
    release_service,
    service_url,
)


def agw_obs_release_service(release):
    """``{namespace, name, port}`` of the HTTP Service a release of the plan creates."""
    try:
        return release_service(plain(release))
    except (ServicesError, TypeError, ValueError) as exc:
        raise AnsibleFilterError("agw_obs_release_service: %s" % exc) from exc


def agw_obs_service_url(url):
    """``{namespace, name, port, scheme}`` of an in-cluster Service URL; ``{}`` when it names no in-cluster Service."""
    return service_url(plain(url)) or {}


class FilterModule(object):
    def filters(self):
        return {"agw_obs_release_service": agw_obs_release_service, "agw_obs_service_url": agw_obs_service_url}
