# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rules of role traffic's settings that meta/argument_specs.yml cannot express."""

from __future__ import annotations


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
    models = c["traffic_models"]
    c.require(is_list(models) and len(models) > 0,
              "traffic_models must be a non-empty list of model names or {name, weight} mappings, e.g. [gpt-4].")
    return c.problems
