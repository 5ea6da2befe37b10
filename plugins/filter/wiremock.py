# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that build WireMock stub mappings (documentation in wiremock_openai_mappings.yml)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.agentgateway.observability.plugins.plugin_utils.desired_state import plain
from ansible_collections.agentgateway.observability.plugins.plugin_utils.wiremock import (
    MappingError,
    openai_mappings,
)


def wiremock_openai_mappings(models, delay_ms=100, api_key="", retry_after=1, stream_chunk_delay_ms=0):
    """The WireMock mappings document of a mock OpenAI-compatible backend serving ``models``."""
    try:
        return openai_mappings(
            plain(models),
            delay_ms=plain(delay_ms),
            api_key=plain(api_key),
            retry_after=plain(retry_after),
            stream_chunk_delay_ms=plain(stream_chunk_delay_ms),
        )
    except MappingError as exc:
        raise AnsibleFilterError("wiremock_openai_mappings: %s" % exc) from exc


class FilterModule(object):
    def filters(self):
        return {"wiremock_openai_mappings": wiremock_openai_mappings}
