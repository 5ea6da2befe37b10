# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that build WireMock stub mappings (documentation in wiremock_openai_mappings.yml,
wiremock_mcp_mappings.yml and wiremock_guardrail_mappings.yml)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.agentgateway.observability.plugins.plugin_utils.desired_state import plain
from ansible_collections.agentgateway.observability.plugins.plugin_utils.wiremock import (
    MappingError,
    openai_mappings,
)
from ansible_collections.agentgateway.observability.plugins.plugin_utils.wiremock_guardrail import (
    FAIL_OPEN_MARKER,
    guardrail_webhook_mappings,
)
from ansible_collections.agentgateway.observability.plugins.plugin_utils.wiremock_mcp import mcp_mappings


def wiremock_openai_mappings(models, delay_ms=100, api_key="", retry_after=1, stream_chunk_delay_ms=0, flaky=""):
    """The WireMock mappings document of a mock OpenAI-compatible backend serving ``models``."""
    try:
        return openai_mappings(
            plain(models),
            delay_ms=plain(delay_ms),
            api_key=plain(api_key),
            retry_after=plain(retry_after),
            stream_chunk_delay_ms=plain(stream_chunk_delay_ms),
            flaky=plain(flaky),
        )
    except MappingError as exc:
        raise AnsibleFilterError("wiremock_openai_mappings: %s" % exc) from exc


def wiremock_mcp_mappings(path, delay_ms=0, server_name="agentgateway-observability-mock-mcp"):
    """The WireMock mappings document of a mock MCP server (streamable HTTP) at ``path``."""
    try:
        return mcp_mappings(plain(path), delay_ms=plain(delay_ms), server_name=plain(server_name))
    except MappingError as exc:
        raise AnsibleFilterError("wiremock_mcp_mappings: %s" % exc) from exc


def wiremock_guardrail_mappings(marker=FAIL_OPEN_MARKER):
    """The WireMock mappings document of a mock guardrail webhook (agentgateway's prompt guard, POST /request)."""
    try:
        return guardrail_webhook_mappings(plain(marker))
    except MappingError as exc:
        raise AnsibleFilterError("wiremock_guardrail_mappings: %s" % exc) from exc


class FilterModule(object):
    def filters(self):
        return {"wiremock_openai_mappings": wiremock_openai_mappings, "wiremock_mcp_mappings": wiremock_mcp_mappings,
                "wiremock_guardrail_mappings": wiremock_guardrail_mappings}
