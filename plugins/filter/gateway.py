# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the gateway_observability role: telemetry config and ReferenceGrants (logic in plugin_utils)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.agentgateway.observability.plugins.plugin_utils.desired_state import plain
from ansible_collections.agentgateway.observability.plugins.plugin_utils.gateway_config import (
    TelemetryConfigError,
    build,
    reference_grants,
)


def gateway_telemetry_config(spec, names=None):
    try:
        return build(plain(spec), names=plain(names or {}))
    except TelemetryConfigError as exc:
        raise AnsibleFilterError("gateway_telemetry_config: %s" % exc)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError("gateway_telemetry_config: %s" % exc)


def gateway_reference_grants(targets, name, from_group, from_kind, from_namespace, labels=None):
    try:
        return reference_grants(plain(targets), str(name), str(from_group), str(from_kind), str(from_namespace),
                                labels=plain(labels or {}))
    except (TelemetryConfigError, TypeError, ValueError, KeyError) as exc:
        raise AnsibleFilterError("gateway_reference_grants: %s" % exc)


class FilterModule(object):
    def filters(self):
        return {
            "gateway_telemetry_config": gateway_telemetry_config,
            "gateway_reference_grants": gateway_reference_grants,
        }
