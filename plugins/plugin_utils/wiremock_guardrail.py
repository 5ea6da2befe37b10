# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""WireMock stub mappings of a mock guardrail webhook for agentgateway's prompt guard (pure, no I/O).

``guardrail_webhook_mappings(marker)`` returns the ``{"mappings": [...]}`` document WireMock 3 loads
from ``<root>/mappings/*.json``, beside the OpenAI mappings of wiremock.py and the MCP mappings of
wiremock_mcp.py. It follows the guardrail webhook API of agentgateway v1.4.1
(crates/agentgateway/src/llm/policy/webhook.rs@v1.4.1 and mod.rs@v1.4.1 ``apply_webhook``):

* the proxy sends the request phase as ``POST /request`` with ``Content-Type: application/json`` and
  the body ``GuardrailsPromptRequest`` - ``{"body": {"messages": [{"role", "content"}, ...]}}``;
  it forwards none of the client's headers unless ``forwardHeaderMatches`` says so, so the webhook
  never sees the client's or the backend's key and the mock asks for none;
* it reads the answer as ``GuardrailsPromptResponse`` - ``{"action": ...}`` where the action is an
  untagged ``MaskAction {body, reason?}``, ``RejectAction {body, status_code, reason?}`` or
  ``PassAction {reason?}``, tried in that order - without looking at the HTTP status;
* when the call fails or the answer does not parse, a guard with ``failureMode: FailOpen`` lets the
  request through (``GuardrailOutcome::FailOpen``, counted as
  ``agentgateway_guardrail_checks_total{phase="Request", action="FailOpen"}``); every call is timed in
  ``agentgateway_upstream_call_duration_seconds{kind="Policy", subtype="Guardrail"}``.

The stubs, highest priority (lowest number) first:

1. a prompt containing ``marker`` (``FAIL_OPEN_MARKER``): ``503`` with a plain-text body, which no
   action parses from, so the guard fails open;
2. a well-formed request (``$.body.messages``): ``200`` ``{"action": {"reason": PASS_REASON}}``, a
   ``PassAction`` (no ``body``, so neither a ``MaskAction`` nor a ``RejectAction``);
3. any other ``POST /request``: ``400`` with a plain-text body saying what was expected (a guard
   failing open on it shows a request the proxy did not shape as v1.4.1 does).

The response phase (``POST /response``) is not served: the mock's guard checks requests only.
"""

from __future__ import annotations

import json
import re

from ansible_collections.agentgateway.observability.plugins.plugin_utils.wiremock import MappingError

REQUEST_PATH = "/request"
FAIL_OPEN_MARKER = "mock-guardrail-unavailable"
PASS_REASON = "passed by the mock guardrail webhook"
UNAVAILABLE_STATUS = 503

_MARKER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{2,62}$")
_TEXT = {"Content-Type": "text/plain; charset=utf-8"}


def guardrail_webhook_mappings(marker=FAIL_OPEN_MARKER):
    """The WireMock mappings of the mock guardrail webhook (see the module docstring)."""
    if not isinstance(marker, str) or not _MARKER.match(marker):
        raise MappingError("marker must be 3 to 63 letters, digits, '.', '_' or '-' (a word a prompt can carry), "
                           "got %r" % (marker,))
    post = {"method": "POST", "urlPath": REQUEST_PATH}
    return {"mappings": [
        {"name": "guardrail webhook unavailable", "priority": 1,
         "request": dict(post, bodyPatterns=[{"contains": marker}]),
         "response": {"status": UNAVAILABLE_STATUS, "headers": dict(_TEXT),
                      "body": "The mock guardrail webhook is unavailable for prompts carrying %s (injected by the "
                              "mock backend).\n" % marker}},
        {"name": "guardrail webhook pass", "priority": 2,
         "request": dict(post, bodyPatterns=[{"matchesJsonPath": "$.body.messages"}]),
         "response": {"status": 200, "headers": {"Content-Type": "application/json"},
                      "jsonBody": {"action": {"reason": PASS_REASON}}}},
        {"name": "guardrail webhook bad request", "priority": 3,
         "request": dict(post),
         "response": {"status": 400, "headers": dict(_TEXT),
                      "body": 'Expected a guardrail webhook request: {"body": {"messages": [...]}} '
                              "(agentgateway GuardrailsPromptRequest).\n"}},
    ]}


def guardrail_webhook_mappings_json(marker=FAIL_OPEN_MARKER):
    """The mappings document as stable, indented JSON text (for a ConfigMap)."""
    return json.dumps(guardrail_webhook_mappings(marker), indent=2, sort_keys=True) + "\n"
