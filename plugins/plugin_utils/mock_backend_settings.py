# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rules of role mock_backend's settings that meta/argument_specs.yml cannot express.

The model list follows the rules of its builder (wiremock.py's ``normalize_models``), checked here
because the role's plan holds the backend key and is set without output.

The demo beyond chat: the MCP path and the retried route's path are HTTPRoute path prefixes beside
the mock's own (``mock_backend_route_prefix``, ``/v1``), so none may equal or lie under another; the
prompt guard's patterns are Rust regular expressions (the proxy compiles them with the ``regex``
crate), which have no look-around and no back-references; the retry policy's attempts and backoff
follow the AgentgatewayPolicy CRD (``spec.traffic.retry``: attempts >= 1, backoff a Gateway API
duration). The remote guardrail (``mock_backend_guard_webhook_enabled``) is the second guard of the
prompt guard's policy, so it needs the prompt guard; its webhook is WireMock's ``POST /request``
(wiremock_guardrail.py), which the MCP server's path must leave alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ansible_collections.agentgateway.observability.plugins.plugin_utils.rules import Check, is_k8s_name, is_list
from ansible_collections.agentgateway.observability.plugins.plugin_utils.wiremock import MappingError, normalize_models
from ansible_collections.agentgateway.observability.plugins.plugin_utils.wiremock_guardrail import REQUEST_PATH


# Gateway API Duration, as the AgentgatewayPolicy CRD's spec.traffic.retry.backoff pattern has it.
_BACKOFF = r"^([0-9]{1,5}(h|m|s|ms)){1,4}$"
# An MCP target name, as the AgentgatewayBackend CRD's spec.mcp.targets[].name pattern has it.
_TARGET_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_ROUTE_PATH = r"^(?!/v1(/|$))/[A-Za-z0-9._~/-]*[A-Za-z0-9._~-]$"
# Python's re accepts these, Rust's regex crate does not.
_NOT_RUST = re.compile(r"\(\?[=!]|\(\?<[=!]|\\[1-9]|\\k<|\(\?P=")


def regex_problem(pattern):
    """Why ``pattern`` cannot be a prompt guard pattern, or None."""
    if not isinstance(pattern, str) or pattern.strip() == "":
        return "is not a non-empty string"
    if _NOT_RUST.search(pattern):
        return "uses look-around or a back-reference, which Rust's regex syntax does not have"
    try:
        re.compile(pattern)
    except re.error as exc:
        return "does not compile (%s)" % exc
    return None


def _overlap(first, second):
    return first == second or second.startswith(first + "/") or first.startswith(second + "/")


def _demo(c, prefix):
    """The MCP server, the prompt guard and the retried route (module docstring)."""
    paths = [("mock_backend_route_prefix", prefix)] if prefix else []
    if c.flag("mock_backend_route_v1_paths"):
        paths.append(("mock_backend_route_v1_paths", "/v1"))
    fix = "must be a path such as %s (not /v1 or under it, not ending in /)"
    for flag, name, example in (("mock_backend_mcp_enabled", "mock_backend_mcp_path", "/mcp"),
                                ("mock_backend_retry_enabled", "mock_backend_retry_path", "/flaky")):
        if not c.flag(flag):
            continue
        if not c.matches(name, _ROUTE_PATH, fix % example):
            continue
        for other, path in paths:
            c.require(not _overlap(c[name], path),
                      "%s=%s overlaps the path %s of %s: the HTTPRoutes would compete for the same requests; "
                      "pick another path (e.g. %s)." % (name, c[name], path, other, example))
        paths.append((name, c[name]))
    if c.flag("mock_backend_mcp_enabled"):
        c.matches("mock_backend_mcp_server", _TARGET_NAME,
                  "must be a lower-case DNS name such as mock-tools (the MCP target's name, the `server` label "
                  "of agentgateway_mcp_requests_total)")
    if c.flag("mock_backend_prompt_guard_enabled"):
        patterns = c["mock_backend_prompt_guard_patterns"]
        if c.require(is_list(patterns) and len(patterns) > 0,
                     "mock_backend_prompt_guard_patterns must be a non-empty list of regular expressions, e.g. "
                     "['(?i)ignore (all )?previous instructions'] (or mock_backend_prompt_guard_enabled=false)."):
            for index, pattern in enumerate(patterns):
                why = regex_problem(pattern)
                c.require(why is None, "mock_backend_prompt_guard_patterns[%d]=%s %s; write it in Rust regex syntax "
                                       "(https://docs.rs/regex/latest/regex/#syntax)." % (index, pattern, why))
        c.not_empty("mock_backend_prompt_guard_message", "the text the gateway answers a rejected prompt with")
    if c.flag("mock_backend_guard_webhook_enabled"):
        c.require(c.flag("mock_backend_prompt_guard_enabled"),
                  "mock_backend_guard_webhook_enabled=true needs mock_backend_prompt_guard_enabled=true: the remote "
                  "guardrail (webhook) is the second guard of the prompt guard's AgentgatewayPolicy "
                  "(<mock_backend_name>-prompt-guard), which mock_backend_prompt_guard_enabled=false leaves out. Set "
                  "mock_backend_guard_webhook_enabled=false as well to drop the guard, or turn the prompt guard on.")
        if c.flag("mock_backend_mcp_enabled"):
            c.require(c["mock_backend_mcp_path"] != REQUEST_PATH,
                      "mock_backend_mcp_path=%s is the path WireMock answers the guardrail webhook on "
                      "(mock_backend_guard_webhook_enabled): the MCP server and the webhook would share it; pick "
                      "another path (e.g. /mcp)." % REQUEST_PATH)
    if c.flag("mock_backend_retry_enabled"):
        c.integer("mock_backend_retry_attempts", 1, 10,
                  hint=" (retries after the first attempt; the mock fails once, so 1 is enough)")
        c.matches("mock_backend_retry_backoff", _BACKOFF, "must be a Gateway API duration such as 100ms, 1s or 1m30s")


def validate(settings):
    c = Check(settings)
    # the role derives the names of the Secret, the ConfigMap and the backend from it
    c.matches("mock_backend_name", r"^[a-z]([-a-z0-9]{0,40}[a-z0-9])?$",
              "must be a DNS label of at most 42 characters starting with a letter (the role names the Service, "
              "Deployment, ConfigMap and Secret after it)")
    namespace = c["mock_backend_namespace"]
    c.require(namespace == "" or is_k8s_name(namespace),
              "mock_backend_namespace=%s must be empty (the gateway namespace, agw_obs_gateway_namespace) or a "
              "Kubernetes namespace name: lower-case letters, digits and '-', at most 63 characters." % (namespace,))
    models = c["mock_backend_models"]
    if c.require(is_list(models) and len(models) > 0,
                 "mock_backend_models must be a non-empty list of model names (or mappings with name), e.g. "
                 "[gpt-4, gpt-3.5-turbo]."):
        try:
            normalize_models(models)
        except MappingError as exc:
            c.fail("mock_backend_models: %s." % str(exc).rstrip("."))
    c.integer("mock_backend_delay_ms", 0)
    c.integer("mock_backend_stream_chunk_delay_ms", 0)
    c.integer("mock_backend_retry_after", 1, hint=" (seconds a 429 answer asks the client to wait)")
    c.integer("mock_backend_replicas", 0)
    c.integer("mock_backend_async_threads", 1)
    c.port("mock_backend_service_port")
    image = c["mock_backend_image"]
    image = image if isinstance(image, Mapping) else {}
    c.require(bool(image.get("registry")) and bool(image.get("repository"))
              and bool(re.match(r"^3\.[0-9]+\.[0-9]+", str(image.get("tag") or ""))),
              "mock_backend_image needs registry, repository and a pinned WireMock 3.x tag (e.g. 3.13.2), got %s."
              % (c["mock_backend_image"],))
    prefix = c["mock_backend_route_prefix"]
    c.matches("mock_backend_route_prefix", r"^(?!/v1$)/[A-Za-z0-9._~/-]*[A-Za-z0-9._~-]$",
              "must be empty or a path such as /openai (not /v1, not ending in /)", empty_ok=True)
    c.require(prefix != "" or c.flag("mock_backend_route_v1_paths"),
              "mock_backend_route_prefix is empty and mock_backend_route_v1_paths is false: the HTTPRoute would "
              "match nothing; set at least one of them.")
    override = c["mock_backend_model_override"]
    c.require(len(str(override)) <= 256, "mock_backend_model_override is longer than 256 characters.")
    key = c["mock_backend_api_key"]
    c.require(isinstance(key, str) and "\n" not in key,
              "mock_backend_api_key must be a single-line string (empty turns the mock's key check off).")
    c.resources("mock_backend_resources", "{requests: {cpu: 100m, memory: 256Mi}, limits: {memory: 512Mi}}")
    _demo(c, prefix if isinstance(prefix, str) else "")
    return c.problems
