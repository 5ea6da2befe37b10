"""Unit tests of the WireMock mappings builder and its filter."""

from __future__ import annotations

import json
import re

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.agentgateway.observability.plugins.filter.wiremock import FilterModule
from ansible_collections.agentgateway.observability.plugins.plugin_utils import wiremock


def _by_name(doc):
    return {m["name"]: m for m in doc["mappings"]}


def _fill(template, model="gpt-4"):
    """Render the few Handlebars helpers the templates use, enough to parse the JSON."""
    text = re.sub(r"\{\{#assign 'cid'\}\}.*?\{\{/assign\}\}", "", template)
    text = text.replace("{{now format='unix'}}", "1700000000").replace("{{cid}}", "chatcmpl-x")
    text = text.replace("{{jsonPath request.body '$.model'}}", model)
    return re.sub(r"\{\{randomValue[^}]*\}\}", "abc", text)


def test_chat_body_is_openai_shaped_with_numeric_created():
    doc = wiremock.openai_mappings(["gpt-4"])
    body = json.loads(_fill(_by_name(doc)["chat gpt-4"]["response"]["body"]))
    assert body["created"] == 1700000000 and body["model"] == "gpt-4" and body["object"] == "chat.completion"
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]


def test_stream_body_events():
    doc = wiremock.openai_mappings([{"name": "m1", "reply": "a b c", "prompt_tokens": 3}])
    stub = _by_name(doc)["chat stream m1"]
    assert stub["priority"] < _by_name(doc)["chat m1"]["priority"]
    assert stub["response"]["headers"]["Content-Type"] == "text/event-stream"
    events = _fill(stub["response"]["body"], "m1").split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    chunks = [json.loads(e[len("data: "):]) for e in events[:-2]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == "a b c"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == {
        "prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}


def test_no_template_ends_in_triple_brace_and_all_templated():
    doc = wiremock.openai_mappings(["gpt-4", "gpt-3.5-turbo"], api_key="k")
    for mapping in doc["mappings"]:
        body = mapping["response"].get("body")
        if body is not None:
            assert not body.rstrip().endswith("}}}"), mapping["name"]
            assert mapping["response"]["transformers"] == ["response-template"]


def test_errors_auth_delay_and_priorities():
    doc = wiremock.openai_mappings(["gpt-4"], delay_ms=250, api_key="secret", retry_after=7)
    stubs = _by_name(doc)
    for status in (429, 500, 503):
        by_header = stubs["error %d by header" % status]
        assert by_header["request"]["headers"] == {"X-Mock-Error": {"equalTo": str(status)}}
        assert by_header["response"]["status"] == status
        assert stubs["error %d by model" % status]["request"]["bodyPatterns"][0]["matchesJsonPath"]["equalTo"] == \
            "mock-error-%d" % status
    assert stubs["error 429 by header"]["response"]["headers"]["Retry-After"] == "7"
    assert "Retry-After" not in stubs["error 500 by header"]["response"]["headers"]
    assert stubs["auth wrong"]["request"]["headers"]["Authorization"]["doesNotMatch"] == r"^Bearer\ secret$"
    assert stubs["auth missing"]["priority"] < stubs["error 429 by header"]["priority"] < stubs["chat gpt-4"]["priority"]
    assert all(m["response"].get("fixedDelayMilliseconds") == 250 for m in doc["mappings"] if "auth" not in m["name"])
    assert "auth missing" not in _by_name(wiremock.openai_mappings(["gpt-4"]))


def test_no_delay_and_dribble():
    doc = wiremock.openai_mappings([{"name": "m", "reply": "x y"}], delay_ms=0, stream_chunk_delay_ms=10)
    stubs = _by_name(doc)
    assert "fixedDelayMilliseconds" not in stubs["chat m"]["response"]
    assert stubs["chat stream m"]["response"]["chunkedDribbleDelay"] == {"numberOfChunks": 6, "totalDuration": 60}


def test_models_list_and_embedding_vectors_are_deterministic():
    doc = wiremock.openai_mappings(["a", {"name": "b", "owned_by": "me", "embedding_dimensions": 40}])
    listed = _by_name(doc)["list models"]["response"]["jsonBody"]["data"]
    assert [(m["id"], m["owned_by"]) for m in listed] == [("a", "agentgateway-observability-mock"), ("b", "me")]
    assert wiremock.embedding_vector("b", 40) == wiremock.embedding_vector("b", 40)
    assert len(wiremock.embedding_vector("b", 40)) == 40
    assert wiremock.embedding_vector("a", 8) != wiremock.embedding_vector("b", 8)
    assert all(-1.0 <= v <= 1.0 for v in wiremock.embedding_vector("a", 64))


@pytest.mark.parametrize("models,kwargs,needle", [
    ([], {}, "non-empty list"),
    ("gpt-4", {}, "non-empty list"),
    ([{"model": "x"}], {}, "unknown keys model"),
    (["bad name"], {}, "models[0].name"),
    (["a", "a"], {}, "listed twice"),
    (["mock-error-429"], {}, "reserved"),
    ([{"name": "a", "reply": "{{oops}}"}], {}, "must not contain"),
    ([{"name": "a", "prompt_tokens": 0}], {}, "prompt_tokens"),
    ([{"name": "a", "embedding_dimensions": True}], {}, "embedding_dimensions"),
    (["a"], {"delay_ms": -1}, "delay_ms"),
    (["a"], {"stream_chunk_delay_ms": "5"}, "stream_chunk_delay_ms"),
    (["a"], {"retry_after": 0}, "retry_after"),
    (["a"], {"api_key": "x\ny"}, "single-line"),
])
def test_bad_input(models, kwargs, needle):
    with pytest.raises(wiremock.MappingError) as info:
        wiremock.openai_mappings(models, **kwargs)
    assert needle in str(info.value)


def test_filter_wraps_errors_and_returns_the_document():
    flt = FilterModule().filters()["wiremock_openai_mappings"]
    assert flt(["gpt-4"], delay_ms=0) == wiremock.openai_mappings(["gpt-4"], delay_ms=0)
    with pytest.raises(AnsibleFilterError, match="wiremock_openai_mappings: models"):
        flt([])


def test_mappings_json_is_stable():
    assert wiremock.mappings_json(["a"]) == wiremock.mappings_json(["a"])
    assert json.loads(wiremock.mappings_json(["a"]))["mappings"]


# ---- the retry demo's model: 503 first, then the answer (a WireMock scenario) -------------------------

def test_flaky_model_is_a_scenario_failing_once_then_answering():
    doc = wiremock.openai_mappings(["gpt-4"], delay_ms=50, api_key="k", flaky=wiremock.FLAKY_MODEL)
    stubs = _by_name(doc)
    first = stubs["flaky first attempt"]
    second, second_stream = stubs["flaky second attempt"], stubs["flaky stream second attempt"]
    retried, retried_stream = stubs["flaky retried attempt"], stubs["flaky stream retried attempt"]
    started, failed_once = wiremock.FLAKY_STATES
    assert (first["requiredScenarioState"], first["newScenarioState"]) == (started, failed_once)
    assert first["response"]["status"] == 503 and first["response"]["fixedDelayMilliseconds"] == 50
    assert first["response"]["jsonBody"]["error"]["code"] == "service_unavailable"
    for stub in (second, second_stream):
        assert (stub["requiredScenarioState"], stub["newScenarioState"]) == (failed_once, started)
        assert stub["response"]["status"] == 200
    # a retried attempt (the gateway's x-retry-attempt) answers in any state and starts the scenario over
    for stub in (retried, retried_stream):
        assert "requiredScenarioState" not in stub and stub["newScenarioState"] == started
        assert stub["request"]["headers"] == {wiremock.RETRY_HEADER: {"matches": ".+"}}
    assert {s["scenarioName"] for s in (first, second, retried)} == {wiremock.FLAKY_SCENARIO}
    # the answer is the model's chat completion; the stream variant answers SSE
    body = json.loads(_fill(second["response"]["body"], "mock-flaky"))
    assert body["model"] == "mock-flaky" and "retried" in body["choices"][0]["message"]["content"]
    assert second_stream["response"]["headers"]["Content-Type"] == "text/event-stream"
    # order: injected errors (2) win, then the stream variants (3), the plain ones (4), the failure (5);
    # every one before the unknown-model 404 (9)
    assert stubs["error 503 by header"]["priority"] < retried_stream["priority"] < retried["priority"] < first["priority"]
    assert second_stream["priority"] < second["priority"] < first["priority"] < stubs["unknown model"]["priority"]
    model_match = {"matchesJsonPath": {"expression": "$.model", "equalTo": "mock-flaky"}}
    assert all(model_match in s["request"]["bodyPatterns"] for s in (first, second, retried))


def test_without_flaky_no_scenario_and_error_injection_unchanged():
    plain = wiremock.openai_mappings(["gpt-4"], api_key="k")
    with_flaky = wiremock.openai_mappings(["gpt-4"], api_key="k", flaky="mock-flaky")
    assert not any("scenarioName" in m for m in plain["mappings"])
    unflaky = [m for m in with_flaky["mappings"] if "scenarioName" not in m]
    assert json.dumps(unflaky, sort_keys=True) == json.dumps(plain["mappings"], sort_keys=True)
    assert _by_name(with_flaky)["error 503 by model"]["response"]["status"] == 503


@pytest.mark.parametrize("models,kwargs,needle", [
    (["mock-flaky"], {}, "reserved for the retry demo"),
    (["gpt-4"], {"flaky": "gpt-4"}, "also one of the models"),
    (["gpt-4"], {"flaky": "bad model"}, "flaky must be empty or a model name"),
])
def test_flaky_bad_input(models, kwargs, needle):
    with pytest.raises(wiremock.MappingError, match=re.escape(needle)):
        wiremock.openai_mappings(models, **kwargs)


def test_filter_passes_flaky():
    doc = FilterModule().filters()["wiremock_openai_mappings"](["gpt-4"], flaky="mock-flaky")
    assert "flaky first attempt" in _by_name(doc)
