"""Unit tests of the mock guardrail webhook's WireMock mappings (plugin_utils/wiremock_guardrail.py) and their filter.

The real WireMock serving them is driven by tests/functional/test_mock_backend.py.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.agentgateway.observability.plugins.filter.wiremock import FilterModule
from ansible_collections.agentgateway.observability.plugins.plugin_utils import wiremock_guardrail
from ansible_collections.agentgateway.observability.plugins.plugin_utils.wiremock import MappingError

from support.fixtures import REPO

MAPPINGS = wiremock_guardrail.guardrail_webhook_mappings()
STUBS = {m["name"]: m for m in MAPPINGS["mappings"]}


def test_every_stub_is_a_post_of_the_request_path_and_the_marker_wins():
    assert [m["priority"] for m in MAPPINGS["mappings"]] == [1, 2, 3]
    for stub in MAPPINGS["mappings"]:
        assert stub["request"]["method"] == "POST" and stub["request"]["urlPath"] == "/request", stub["name"]
        assert "headers" not in stub["request"], "no key: the gateway forwards none of the client's headers"
    unavailable = STUBS["guardrail webhook unavailable"]
    assert unavailable["request"]["bodyPatterns"] == [{"contains": wiremock_guardrail.FAIL_OPEN_MARKER}]
    assert unavailable["response"]["status"] == 503


def test_the_pass_answer_is_a_pass_action_of_agentgateway_v141():
    """RequestAction is untagged: Mask {body, reason?}, Reject {body, status_code, reason?}, Pass {reason?},
    tried in that order (crates/agentgateway/src/llm/policy/webhook.rs@v1.4.1)."""
    answer = STUBS["guardrail webhook pass"]["response"]
    assert answer["status"] == 200 and answer["headers"]["Content-Type"] == "application/json"
    action = answer["jsonBody"]["action"]
    assert action == {"reason": wiremock_guardrail.PASS_REASON}
    assert "body" not in action and "status_code" not in action, "would parse as a MaskAction or RejectAction"
    assert STUBS["guardrail webhook pass"]["request"]["bodyPatterns"] == [{"matchesJsonPath": "$.body.messages"}]


def test_the_failure_answers_are_plain_text_that_no_action_parses_from():
    for name in ("guardrail webhook unavailable", "guardrail webhook bad request"):
        response = STUBS[name]["response"]
        assert response["headers"]["Content-Type"].startswith("text/plain") and "jsonBody" not in response
        with pytest.raises(ValueError):
            json.loads(response["body"])
    assert STUBS["guardrail webhook bad request"]["response"]["status"] == 400
    assert "bodyPatterns" not in STUBS["guardrail webhook bad request"]["request"]


def test_another_marker_and_bad_markers():
    stubs = {m["name"]: m for m in wiremock_guardrail.guardrail_webhook_mappings("guard-down")["mappings"]}
    assert stubs["guardrail webhook unavailable"]["request"]["bodyPatterns"] == [{"contains": "guard-down"}]
    assert "guard-down" in stubs["guardrail webhook unavailable"]["response"]["body"]
    for bad in ("", "ab", 'say "x"', "a b", "{{x}}", None, 7):
        with pytest.raises(MappingError, match=re.escape("marker must be")):
            wiremock_guardrail.guardrail_webhook_mappings(bad)


def test_json_is_stable_and_the_filter_wraps_errors():
    text = wiremock_guardrail.guardrail_webhook_mappings_json()
    assert text == wiremock_guardrail.guardrail_webhook_mappings_json() and json.loads(text) == MAPPINGS
    guardrail = FilterModule().filters()["wiremock_guardrail_mappings"]
    assert guardrail(wiremock_guardrail.FAIL_OPEN_MARKER) == MAPPINGS
    with pytest.raises(AnsibleFilterError, match="wiremock_guardrail_mappings: marker must be"):
        guardrail("a b")


def test_the_role_uses_the_same_marker():
    """roles/mock_backend/vars/main.yml publishes the marker in its plan; the traffic module has its own copy."""
    from ansible_collections.agentgateway.observability.plugins.module_utils import traffic

    role_vars = yaml.safe_load((REPO / "roles" / "mock_backend" / "vars" / "main.yml").read_text(encoding="utf-8"))
    assert role_vars["_mock_backend_guard_fail_open_marker"] == wiremock_guardrail.FAIL_OPEN_MARKER
    assert wiremock_guardrail.FAIL_OPEN_MARKER in traffic.FAIL_OPEN_PROMPT
