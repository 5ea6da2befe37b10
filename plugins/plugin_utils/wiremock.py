# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""WireMock stub mappings for a mock OpenAI-compatible backend (pure, no I/O).

``openai_mappings(models, ...)`` returns the ``{"mappings": [...]}`` document WireMock 3 loads
from ``<root>/mappings/*.json``. The stubs, highest priority (lowest number) first:

1. ``401`` when ``Authorization`` is not ``Bearer <api_key>`` (only if an api key is set).
2. Error injection: header ``X-Mock-Error: 429|500|503`` on any ``/v1/...`` call, or the reserved
   model names ``mock-error-429``, ``mock-error-500``, ``mock-error-503`` in the body.
   429 carries ``Retry-After``. Bodies are OpenAI-shaped ``{"error": {...}}``.
3. ``GET /v1/models``: the configured models.
4. ``POST /v1/chat/completions`` per model, with ``"stream": true`` as Server-Sent Events
   (content chunks, a finish chunk, a usage chunk with empty ``choices``, ``data: [DONE]``),
   otherwise one ``chat.completion`` JSON object. ``model`` echoes the request, ``created`` is a
   number (unix seconds).
5. ``POST /v1/embeddings`` per model: one deterministic vector per input.
6. ``404 model_not_found`` for any other model.

With ``flaky_model`` (the mock backend's retry demo, model ``mock-flaky``), chat completions of that
model fail with ``503`` first and succeed on the next attempt: a WireMock scenario
(``FLAKY_SCENARIO``) alternates ``Started`` -> ``failed-once`` -> ``Started``, so any client or
gateway that retries a 503 once gets its answer. A request carrying ``x-retry-attempt`` (the header
agentgateway v1.4.1 adds to every retried attempt, crates/agentgateway/src/proxy/httpproxy.rs@v1.4.1)
always succeeds and sets the scenario back to ``Started``, so concurrent requests and several
WireMock replicas cannot make the gateway's retry fail too. ``X-Mock-Error`` still wins.

Templates use WireMock's Handlebars ``response-template`` transformer; JSON with a number from a
template is written as a string ``body`` (a ``jsonBody`` would quote it), and no template may end
in ``}}}`` (WireMock's parser rejects it), so every generated template is checked for that.
"""

from __future__ import annotations

import hashlib
import json
import re

ERROR_HEADER = "X-Mock-Error"
ERROR_MODEL_PREFIX = "mock-error-"
ERROR_STATUSES = (429, 500, 503)
FLAKY_MODEL = "mock-flaky"
FLAKY_SCENARIO = "mock-flaky"
FLAKY_STATES = ("Started", "failed-once")
RETRY_HEADER = "x-retry-attempt"

_ERRORS = {
    429: ("Rate limit reached for requests (injected by the mock backend).", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request (injected by the mock backend).",
          "server_error", "internal_error"),
    503: ("The engine is currently overloaded, please try again later (injected by the mock backend).",
          "server_error", "service_unavailable"),
}

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$")
_DEFAULT_REPLY = "Hello! This is a mock response from the test OpenAI backend for model {model}."
_MODEL_KEYS = {"name", "reply", "prompt_tokens", "completion_tokens", "embedding_dimensions", "owned_by"}

# Template pieces. The request id is assigned once per response so every SSE chunk shares it.
_ASSIGN_ID = "{{#assign 'cid'}}chatcmpl-mock-{{randomValue type='ALPHANUMERIC' length=24}}{{/assign}}"
_MODEL = "{{jsonPath request.body '$.model'}}"
_NOW = "{{now format='unix'}}"


class MappingError(ValueError):
    """Input that cannot become WireMock mappings; the message names the field and the fix."""


def _positive_int(value, where, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise MappingError("%s must be an integer >= %d, got %r" % (where, minimum, value))
    return value


def normalize_models(models):
    """Turn a list of names or mappings into a list of complete model dicts."""
    if not isinstance(models, (list, tuple)) or not models:
        raise MappingError("models must be a non-empty list of model names or mappings with 'name'")
    result, seen = [], set()
    for index, entry in enumerate(models):
        where = "models[%d]" % index
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, dict):
            raise MappingError("%s must be a model name or a mapping with 'name', got %r" % (where, entry))
        unknown = sorted(set(entry) - _MODEL_KEYS)
        if unknown:
            raise MappingError("%s: unknown keys %s (allowed: %s)" % (where, ", ".join(unknown), ", ".join(sorted(_MODEL_KEYS))))
        name = entry.get("name")
        if not isinstance(name, str) or not _MODEL_NAME.match(name):
            raise MappingError("%s.name must match %s, got %r" % (where, _MODEL_NAME.pattern, name))
        if name.startswith(ERROR_MODEL_PREFIX):
            raise MappingError("%s.name %r is reserved for error injection (prefix %s)" % (where, name, ERROR_MODEL_PREFIX))
        if name == FLAKY_MODEL:
            raise MappingError("%s.name %r is reserved for the retry demo (a model that fails once, then answers)"
                               % (where, name))
        if name in seen:
            raise MappingError("%s.name %r is listed twice" % (where, name))
        seen.add(name)
        reply = entry.get("reply", _DEFAULT_REPLY.format(model=name))
        if not isinstance(reply, str) or not reply.strip():
            raise MappingError("%s.reply must be a non-empty string" % where)
        if "{{" in reply or "}}" in reply:
            raise MappingError("%s.reply must not contain '{{' or '}}' (WireMock templates)" % where)
        model = {
            "name": name,
            "reply": reply,
            "prompt_tokens": _positive_int(entry.get("prompt_tokens", 25), where + ".prompt_tokens"),
            "completion_tokens": _positive_int(entry.get("completion_tokens", len(reply.split())),
                                               where + ".completion_tokens"),
            "embedding_dimensions": _positive_int(entry.get("embedding_dimensions", 16),
                                                  where + ".embedding_dimensions"),
            "owned_by": str(entry.get("owned_by", "agentgateway-observability-mock")),
        }
        result.append(model)
    return result


def embedding_vector(model, dimensions):
    """A deterministic unit-scale vector for ``model`` (same model, same vector)."""
    values = []
    counter = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(("%s:%d" % (model, counter)).encode("utf-8")).digest()
        for offset in range(0, len(digest), 2):
            if len(values) == dimensions:
                break
            raw = int.from_bytes(digest[offset:offset + 2], "big")
            values.append(round(raw / 32767.5 - 1.0, 6))
        counter += 1
    return values


def _json(value):
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _template_json(obj, number_fields=None, string_fields=None):
    """JSON text with template placeholders spliced in as raw tokens.

    ``number_fields`` values are inserted without quotes (``"created": {{now ...}}``),
    ``string_fields`` inside quotes.
    """
    marks = {}
    obj = dict(obj)
    for key, template in (number_fields or {}).items():
        mark = "@@N%s@@" % key
        obj[key] = mark
        marks['"%s"' % mark] = template
    for key, template in (string_fields or {}).items():
        mark = "@@S%s@@" % key
        obj[key] = mark
        marks[mark] = template
    text = _json(obj)
    for mark, template in marks.items():
        text = text.replace(mark, template)
    return text


def _check_template(text, where):
    if text.rstrip().endswith("}}}"):
        raise MappingError("%s: template ends in '}}}' which WireMock cannot parse" % where)
    return text


def _error_body(status):
    message, kind, code = _ERRORS[status]
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _error_response(status, delay_ms, retry_after):
    headers = {"Content-Type": "application/json"}
    if status == 429:
        headers["Retry-After"] = str(retry_after)
    response = {"status": status, "headers": headers, "jsonBody": _error_body(status)}
    if delay_ms:
        response["fixedDelayMilliseconds"] = delay_ms
    return response


def _stream_body(model):
    words = model["reply"].split(" ")
    chunks = [_ASSIGN_ID]

    def chunk(delta, finish=None, usage=None, choices=True):
        obj = {"id": "@@ID@@", "object": "chat.completion.chunk", "model": "@@MODEL@@", "created": "@@CREATED@@",
               "system_fingerprint": "fp_mock"}
        if choices:
            obj["choices"] = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        else:
            obj["choices"] = []
        if usage is not None:
            obj["usage"] = usage
        text = _json(obj)
        text = text.replace('"@@CREATED@@"', _NOW).replace("@@MODEL@@", _MODEL).replace("@@ID@@", "{{cid}}")
        return "data: " + text + "\n\n"

    chunks.append(chunk({"role": "assistant", "content": ""}))
    for index, word in enumerate(words):
        chunks.append(chunk({"content": word if index == 0 else " " + word}))
    chunks.append(chunk({}, finish="stop"))
    chunks.append(chunk(None, usage=_usage(model), choices=False))
    chunks.append("data: [DONE]\n\n")
    return "".join(chunks)


def _usage(model):
    return {
        "prompt_tokens": model["prompt_tokens"],
        "completion_tokens": model["completion_tokens"],
        "total_tokens": model["prompt_tokens"] + model["completion_tokens"],
    }


def _chat_body(model):
    obj = {
        "object": "chat.completion",
        "system_fingerprint": "fp_mock",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": model["reply"], "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(model),
    }
    return _template_json(
        obj,
        number_fields={"created": _NOW},
        string_fields={"id": "chatcmpl-mock-{{randomValue type='ALPHANUMERIC' length=24}}", "model": _MODEL},
    )


def _embedding_body(model, vector):
    # One embedding per input: a string input gives one, a list of N inputs gives N.
    item = '{"object":"embedding","index":{{@index}},"embedding":%s}' % _json(vector)
    single = '{"object":"embedding","index":0,"embedding":%s}' % _json(vector)
    data = (
        "{{#if (jsonPath request.body '$.input[0]')}}"
        "{{#each (jsonPath request.body '$.input')}}{{#if @index}},{{/if}}%s{{/each}}"
        "{{else}}%s{{/if}}" % (item, single)
    )
    return (
        '{"object":"list","data":[' + data + '],"model":"' + _MODEL + '",'
        '"usage":{"prompt_tokens":%d,"total_tokens":%d} }' % (model["prompt_tokens"], model["prompt_tokens"])
    )


def flaky_model(name=FLAKY_MODEL):
    """The complete model dict of the retry demo's model."""
    reply = "Hello! This is a mock response for model %s, after the gateway retried a 503." % name
    return {"name": name, "reply": reply, "prompt_tokens": 25, "completion_tokens": len(reply.split()),
            "embedding_dimensions": 16, "owned_by": "agentgateway-observability-mock"}


def _flaky_mappings(model, delay, retry_after, stream_chunk_delay_ms):
    """The scenario of the retry demo (see the module docstring): 503 first, then the answer."""
    match = {"matchesJsonPath": {"expression": "$.model", "equalTo": model["name"]}}
    streamed = {"matchesJsonPath": {"expression": "$.stream", "equalTo": "true"}}
    request = {"method": "POST", "urlPath": "/v1/chat/completions"}
    started, failed_once = FLAKY_STATES
    stream, single = _chat_responses(model, delay, stream_chunk_delay_ms)
    scenario = {"scenarioName": FLAKY_SCENARIO}
    retried = {RETRY_HEADER: {"matches": ".+"}}
    out = []
    for kind, priority, body, response in (("stream ", 3, [match, streamed], stream), ("", 4, [match], single)):
        # a retried attempt always succeeds (and starts the scenario over)
        out.append(dict(scenario, name="flaky %sretried attempt" % kind, priority=priority, newScenarioState=started,
                        request=dict(request, headers=retried, bodyPatterns=body), response=response))
        # the attempt after a failure succeeds
        out.append(dict(scenario, name="flaky %ssecond attempt" % kind, priority=priority,
                        requiredScenarioState=failed_once, newScenarioState=started,
                        request=dict(request, bodyPatterns=body), response=response))
    out.append(dict(scenario, name="flaky first attempt", priority=5, requiredScenarioState=started,
                    newScenarioState=failed_once, request=dict(request, bodyPatterns=[match]),
                    response=_error_response(503, delay.get("fixedDelayMilliseconds", 0), retry_after)))
    return out


def _chat_responses(model, delay, stream_chunk_delay_ms):
    """(streamed, single) chat completion responses of ``model``."""
    stream_response = dict(delay, status=200, headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"},
                           body=_check_template(_stream_body(model), "stream body of %s" % model["name"]),
                           transformers=["response-template"])
    if stream_chunk_delay_ms:
        chunk_count = len(model["reply"].split(" ")) + 4
        stream_response["chunkedDribbleDelay"] = {"numberOfChunks": chunk_count,
                                                  "totalDuration": stream_chunk_delay_ms * chunk_count}
    single = dict(delay, status=200, headers={"Content-Type": "application/json"},
                  body=_check_template(_chat_body(model), "chat body of %s" % model["name"]),
                  transformers=["response-template"])
    return stream_response, single


def openai_mappings(models, delay_ms=100, api_key="", retry_after=1, stream_chunk_delay_ms=0, flaky=""):
    """The WireMock mappings document for ``models`` (see the module docstring).

    ``flaky``: the model name of the retry demo (``FLAKY_MODEL``), empty for none.
    """
    models = normalize_models(models)
    if not isinstance(flaky, str) or (flaky and not _MODEL_NAME.match(flaky)):
        raise MappingError("flaky must be empty or a model name such as %s, got %r" % (FLAKY_MODEL, flaky))
    if flaky in [m["name"] for m in models]:
        raise MappingError("flaky model %r is also one of the models; pick another name" % flaky)
    if isinstance(delay_ms, bool) or not isinstance(delay_ms, int) or delay_ms < 0:
        raise MappingError("delay_ms must be an integer >= 0 (milliseconds), got %r" % (delay_ms,))
    if isinstance(stream_chunk_delay_ms, bool) or not isinstance(stream_chunk_delay_ms, int) or stream_chunk_delay_ms < 0:
        raise MappingError("stream_chunk_delay_ms must be an integer >= 0, got %r" % (stream_chunk_delay_ms,))
    _positive_int(retry_after, "retry_after")
    if not isinstance(api_key, str) or any(c in api_key for c in "\r\n"):
        raise MappingError("api_key must be a single-line string (empty: no authentication check)")
    delay = {"fixedDelayMilliseconds": delay_ms} if delay_ms else {}
    any_v1 = {"urlPathPattern": "/v1/.*"}
    mappings = []

    if api_key:
        expected = "Bearer " + api_key
        unauthorized = {
            "status": 401,
            "headers": {"Content-Type": "application/json"},
            "jsonBody": {"error": {"message": "Incorrect API key provided (mock backend).",
                                   "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}},
        }
        mappings.append({"name": "auth missing", "priority": 1,
                         "request": dict(any_v1, method="ANY", headers={"Authorization": {"absent": True}}),
                         "response": unauthorized})
        mappings.append({"name": "auth wrong", "priority": 1,
                         "request": dict(any_v1, method="ANY",
                                         headers={"Authorization": {"doesNotMatch": "^" + re.escape(expected) + "$"}}),
                         "response": unauthorized})

    for status in ERROR_STATUSES:
        mappings.append({"name": "error %d by header" % status, "priority": 2,
                         "request": dict(any_v1, method="ANY", headers={ERROR_HEADER: {"equalTo": str(status)}}),
                         "response": _error_response(status, delay_ms, retry_after)})
        mappings.append({"name": "error %d by model" % status, "priority": 2,
                         "request": dict(any_v1, method="POST", bodyPatterns=[
                             {"matchesJsonPath": {"expression": "$.model", "equalTo": "%s%d" % (ERROR_MODEL_PREFIX, status)}}]),
                         "response": _error_response(status, delay_ms, retry_after)})

    mappings.append({
        "name": "list models", "priority": 3,
        "request": {"method": "GET", "urlPath": "/v1/models"},
        "response": dict(delay, status=200, headers={"Content-Type": "application/json"}, jsonBody={
            "object": "list",
            "data": [{"id": m["name"], "object": "model", "created": 1700000000, "owned_by": m["owned_by"]} for m in models],
        }),
    })

    if flaky:
        mappings.extend(_flaky_mappings(flaky_model(flaky), delay, retry_after, stream_chunk_delay_ms))

    for model in models:
        model_match = {"matchesJsonPath": {"expression": "$.model", "equalTo": model["name"]}}
        stream_response, single_response = _chat_responses(model, delay, stream_chunk_delay_ms)
        mappings.append({
            "name": "chat stream %s" % model["name"], "priority": 4,
            "request": {"method": "POST", "urlPath": "/v1/chat/completions", "bodyPatterns": [
                model_match, {"matchesJsonPath": {"expression": "$.stream", "equalTo": "true"}}]},
            "response": stream_response,
        })
        mappings.append({
            "name": "chat %s" % model["name"], "priority": 5,
            "request": {"method": "POST", "urlPath": "/v1/chat/completions", "bodyPatterns": [model_match]},
            "response": single_response,
        })
        mappings.append({
            "name": "embeddings %s" % model["name"], "priority": 5,
            "request": {"method": "POST", "urlPath": "/v1/embeddings", "bodyPatterns": [model_match]},
            "response": dict(delay, status=200, headers={"Content-Type": "application/json"},
                             body=_check_template(_embedding_body(model, embedding_vector(
                                 model["name"], model["embedding_dimensions"])), "embedding body of %s" % model["name"]),
                             transformers=["response-template"]),
        })

    not_found = dict(delay, status=404, headers={"Content-Type": "application/json"},
                     body='{"error":{"message":"The model \'' + _MODEL + '\' does not exist (mock backend serves '
                          + ", ".join(m["name"] for m in models) + ').","type":"invalid_request_error",'
                          '"param":"model","code":"model_not_found"} }',
                     transformers=["response-template"])
    mappings.append({
        "name": "unknown model", "priority": 9,
        "request": {"method": "POST", "urlPathPattern": "/v1/(chat/completions|embeddings)"},
        "response": not_found,
    })
    return {"mappings": mappings}


def mappings_json(models, **kwargs):
    """The mappings document as stable, indented JSON text (for a ConfigMap)."""
    return json.dumps(openai_mappings(models, **kwargs), indent=2, sort_keys=True) + "\n"
