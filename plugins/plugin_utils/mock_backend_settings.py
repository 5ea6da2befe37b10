# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rules of role mock_backend's settings that meta/argument_specs.yml cannot express.

The model list follows the rules of its builder (wiremock.py's ``normalize_models``), checked here
because the role's plan holds the backend key and is set without output.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ansible_collections.agentgateway.observability.plugins.plugin_utils.rules import Check, is_k8s_name, is_list
from ansible_collections.agentgateway.observability.plugins.plugin_utils.wiremock import MappingError, normalize_models


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
    return c.problems
