# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rules of role traffic's settings that meta/argument_specs.yml cannot express."""

from __future__ import annotations

from collections.abc import Mapping

from ansible_collections.agentgateway.observability.plugins.plugin_utils.rules import URL_PATH, Check, is_list


def validate(settings):
    c = Check(settings)
    c.matches("traffic_base_url", r"^https?://[^/\s]+$",
              "must be scheme://host[:port] without a path (e.g. http://localhost:8080)")
    c.matches("traffic_path", URL_PATH, "must be a path starting with / (e.g. /openai or /v1/chat/completions)")
    c.integer("traffic_requests", 0)
    c.number("traffic_duration", 0, what="a number of seconds >= 0")
    c.integer("traffic_concurrency", 1)
    c.number("traffic_stream_ratio", 0, 1, what="a share between 0 and 1")
    c.number("traffic_max_error_ratio", 0, 1, what="a share between 0 and 1")
    c.positive("traffic_timeout", " (seconds)")
    c.number("traffic_pause", 0, what="a number of seconds >= 0")
    c.integer("traffic_rounds", 1, hint=" (1 sends the traffic once)")
    c.integer("traffic_round_pause", 0, hint=" (seconds between rounds)")
    models = c["traffic_models"]
    c.require(is_list(models) and len(models) > 0,
              "traffic_models must be a non-empty list of model names or {name, weight} mappings, e.g. [gpt-4].")
    if c.flag("traffic_mcp_enabled"):
        c.matches("traffic_mcp_path", URL_PATH, "must be the path of the gateway's MCP route (e.g. /mcp)")
        c.integer("traffic_mcp_sessions", 0, 100, hint=" (0 runs none; traffic_mcp_enabled=false turns MCP off)")
        calls = c["traffic_mcp_tool_calls"]
        c.require(is_list(calls) and all(isinstance(call, Mapping) and isinstance(call.get("name"), str)
                                         and call["name"] and set(call) <= {"name", "arguments", "expect_error"}
                                         and isinstance(call.get("arguments", {}), Mapping) for call in calls),
                  "traffic_mcp_tool_calls must be a list of {name, arguments, expect_error}, e.g. [{name: echo, "
                  "arguments: {text: hi}}, {name: fail, expect_error: true}]; got %s." % (calls,))
    if c.flag("traffic_guard_enabled"):
        c.not_empty("traffic_guard_prompt", "a prompt the mock backend's prompt guard rejects (matching "
                                            "mock_backend_prompt_guard_patterns), or traffic_guard_enabled=false")
        c.integer("traffic_guard_requests", 0, 100, hint=" (0 sends none)")
        c.integer("traffic_guard_fail_open_requests", 0, 100, hint=" (0 sends none)")
    if c.flag("traffic_retry_enabled"):
        c.matches("traffic_retry_path", URL_PATH, "must be the path of the retried route (e.g. /flaky)")
        c.not_empty("traffic_retry_model", "the model of the retried route (mock-flaky)")
        c.integer("traffic_retry_requests", 0, 100, hint=" (0 sends none)")
    return c.problems
