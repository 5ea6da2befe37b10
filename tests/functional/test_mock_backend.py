"""The mock_backend role, rendered: real WireMock with the rendered mappings, called by the official
openai client and, for the MCP server, by the collection's MCP client and raw HTTP; the retry demo's
model that fails once; the prompt guard's webhook as agentgateway v1.4.1 calls it; rendered objects
against the Kubernetes and CRD schemas (the CRDs' structural schema strictly, and their "exactly one
of" / "at least one of" CEL rules).

WireMock serves the mappings of the session's default site render (support.wiremock), and the
objects are read from it (support.session, read-only); the variation (another namespace, a model
override, hostnames, an image mirror) is planned in-process (support.planner) and written out for
kubernetes-validate --strict. Bad settings are refused by the role's settings check:
tests/unit/plugins/plugin_utils/test_settings.py (mock-models-empty, mock-route-prefix,
mock-image-latest, mock-model-reserved).
"""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
import urllib.error
import urllib.request

import openai
import pytest
import yaml

from support import planner
from support.fixtures import REPO
from support.gateway import role_objects
from support.schemas import crd_errors

DEFAULTS = yaml.safe_load((REPO / "roles" / "mock_backend" / "defaults" / "main.yml").read_text())
MODELS = DEFAULTS["mock_backend_models"]
API_KEY = DEFAULTS["mock_backend_api_key"]

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def client(mock_wiremock):
    return openai.OpenAI(base_url=mock_wiremock.url + "/v1", api_key=API_KEY, max_retries=0, timeout=10)


@pytest.mark.parametrize("model", MODELS)
def test_chat_completion_for_every_model(client, model):
    answer = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    assert answer.model == model
    assert answer.object == "chat.completion"
    assert isinstance(answer.created, int) and answer.created > 1_600_000_000
    assert answer.id.startswith("chatcmpl-")
    assert answer.choices[0].message.role == "assistant"
    assert answer.choices[0].message.content
    assert answer.choices[0].finish_reason == "stop"
    usage = answer.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


@pytest.mark.parametrize("model", MODELS)
def test_streamed_chat_completion_for_every_model(client, model):
    stream = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}],
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Hello!") and model in text
    assert {c.model for c in chunks} == {model}
    assert len({c.id for c in chunks}) == 1, "every chunk of one stream shares the id"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0


def test_streaming_ends_with_done(mock_wiremock):
    import urllib.request
    req = urllib.request.Request(mock_wiremock.url + "/v1/chat/completions", method="POST",
                                 data=b'{"model": "%s", "stream": true, "messages": []}' % MODELS[0].encode(),
                                 headers={"Authorization": "Bearer " + API_KEY, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        events = [line for line in resp.read().decode().split("\n\n") if line]
    assert all(event.startswith("data: ") for event in events)
    assert events[-1] == "data: [DONE]"


def test_models_and_embeddings(client):
    assert sorted(m.id for m in client.models.list()) == sorted(MODELS)
    single = client.embeddings.create(model=MODELS[0], input="hello")
    assert len(single.data) == 1 and len(single.data[0].embedding) == 16
    batch = client.embeddings.create(model=MODELS[0], input=["a", "b", "c"])
    assert [d.index for d in batch.data] == [0, 1, 2]
    assert batch.model == MODELS[0] and batch.usage.prompt_tokens > 0


@pytest.mark.parametrize("status,exc_class", [
    (429, openai.RateLimitError), (500, openai.InternalServerError), (503, openai.InternalServerError)])
def test_injected_errors_raise_the_right_exception(client, status, exc_class):
    for kwargs in ({"model": "mock-error-%d" % status},
                   {"model": MODELS[0], "extra_headers": {"X-Mock-Error": str(status)}}):
        with pytest.raises(exc_class) as info:
            client.chat.completions.create(messages=[{"role": "user", "content": "hi"}], **kwargs)
        assert info.value.status_code == status
        assert info.value.body["code"]
        if status == 429:
            assert info.value.response.headers["retry-after"] == "1"
    with pytest.raises(exc_class):
        client.models.list(extra_headers={"X-Mock-Error": str(status)})


def test_wrong_key_and_unknown_model(client, mock_wiremock):
    bad = openai.OpenAI(base_url=mock_wiremock.url + "/v1", api_key="not-" + API_KEY, max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model=MODELS[0], messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    assert info.value.body["code"] == "model_not_found"


# -- the retry demo's model: 503 first, then the answer -------------------------------------------------

def test_flaky_model_fails_once_then_answers(client, mock_wiremock):
    mock_wiremock.admin("POST", "/scenarios/reset")
    for _round in range(2):
        with pytest.raises(openai.InternalServerError) as info:
            client.chat.completions.create(model="mock-flaky", messages=[{"role": "user", "content": "hi"}])
        assert info.value.status_code == 503 and info.value.body["code"] == "service_unavailable"
        answer = client.chat.completions.create(model="mock-flaky", messages=[{"role": "user", "content": "hi"}])
        assert answer.model == "mock-flaky" and "retried" in answer.choices[0].message.content
    # a client that retries 503 once (as the gateway's retry policy does) always gets its answer
    retrying = openai.OpenAI(base_url=mock_wiremock.url + "/v1", api_key=API_KEY, max_retries=1, timeout=10)
    for _request in range(3):
        assert retrying.chat.completions.create(model="mock-flaky", messages=[{"role": "user", "content": "x"}]).choices


def test_a_retried_attempt_always_answers_and_starts_the_scenario_over(client, mock_wiremock):
    """The gateway marks retried attempts with x-retry-attempt: they succeed in any state, so concurrent
    requests or several replicas cannot make the gateway's retry fail too."""
    mock_wiremock.admin("POST", "/scenarios/reset")
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="mock-flaky", messages=[{"role": "user", "content": "hi"}])
    retried = client.chat.completions.create(model="mock-flaky", messages=[{"role": "user", "content": "hi"}],
                                             extra_headers={"x-retry-attempt": "1"}, stream=True)
    assert list(retried)[-1].choices == []
    scenarios = {s["name"]: s["state"] for s in mock_wiremock.admin("GET", "/scenarios")["scenarios"]}
    assert scenarios["mock-flaky"] == "Started"
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="mock-flaky", messages=[{"role": "user", "content": "hi"}])
    mock_wiremock.admin("POST", "/scenarios/reset")


def test_error_injection_is_unchanged_by_the_retry_demo(client):
    for _attempt in range(3):
        with pytest.raises(openai.InternalServerError) as info:
            client.chat.completions.create(model="mock-error-503", messages=[{"role": "user", "content": "hi"}])
        assert info.value.status_code == 503
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="mock-flaky", messages=[{"role": "user", "content": "hi"}],
                                       extra_headers={"X-Mock-Error": "500", "x-retry-attempt": "1"})
    assert info.value.status_code == 500, "injected errors win over the retry demo"


# -- the mock MCP server (streamable HTTP) ----------------------------------------------------------------

def mcp_post(url, message, session=None, accept="application/json, text/event-stream",
             content_type="application/json"):
    headers = {"Content-Type": content_type}
    if accept:
        headers["Accept"] = accept
    if session:
        headers["Mcp-Session-Id"] = session
    req = urllib.request.Request(url + DEFAULTS["mock_backend_mcp_path"], method="POST", headers=headers,
                                 data=json.dumps(message).encode())
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
            return resp.status, dict(resp.headers), json.loads(body) if body else None
    except urllib.error.HTTPError as exc:
        body = exc.read()
        return exc.code, dict(exc.headers), json.loads(body) if body else None


def test_mcp_session_initialize_list_call_and_the_failing_tool(mock_wiremock):
    """The collection's MCP client (the one the traffic and the verification use) drives a whole session."""
    from ansible_collections.agentgateway.observability.plugins.module_utils.http_client import HttpClient
    from ansible_collections.agentgateway.observability.plugins.module_utils.mcp_client import (
        McpError, McpSession, result_text)

    mock_wiremock.reset_journal()
    session = McpSession(HttpClient(base_url=mock_wiremock.url, timeout=10), DEFAULTS["mock_backend_mcp_path"])
    result = session.initialize()
    assert result["protocolVersion"] == "2025-06-18" and "tools" in result["capabilities"]
    assert result["serverInfo"]["name"] and session.session_id.startswith("mock-")
    assert session.list_tools() == ["echo", "add", "fail"]
    assert result_text(session.call_tool("echo", {"text": 'say "hi" {{x}}'})) == 'say "hi" {{x}}'
    assert result_text(session.call_tool("add", {"a": 2, "b": 40})) == "42"
    with pytest.raises(McpError) as info:
        session.call_tool("fail")
    assert info.value.kind == "jsonrpc" and info.value.code == -32603
    session.close()
    assert [(c["method"], c["tool"], c["outcome"], c["status"]) for c in session.calls] == [
        ("initialize", None, "ok", 200), ("notifications/initialized", None, "accepted", 202),
        ("tools/list", None, "ok", 200), ("tools/call", "echo", "ok", 200), ("tools/call", "add", "ok", 200),
        ("tools/call", "fail", "tool_error", 200)]
    journal = mock_wiremock.admin("GET", "/requests")["requests"]
    later = [e["request"] for e in journal if json.loads(e["request"]["body"] or "{}").get("method") != "initialize"
             and e["request"]["method"] == "POST"]
    assert later and all(r["headers"]["Mcp-Session-Id"] == session.session_id for r in later)
    assert all(r["headers"]["MCP-Protocol-Version"] == "2025-06-18" for r in later)


def test_mcp_transport_rules(mock_wiremock):
    url = mock_wiremock.url
    init = {"jsonrpc": "2.0", "id": "init-1", "method": "initialize", "params": {
        "protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    status, headers, answer = mcp_post(url, init)
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert answer["id"] == "init-1" and answer["result"]["protocolVersion"] == "2025-03-26", "a supported version is kept"
    session = headers["Mcp-Session-Id"]
    assert mcp_post(url, dict(init, params=dict(init["params"], protocolVersion="2099-01-01")))[2]["result"][
        "protocolVersion"] == "2025-06-18"
    # the gateway's own initialize has id 0
    assert mcp_post(url, dict(init, id=0))[2]["id"] == 0
    assert mcp_post(url, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session)[:1] == (202,)
    # no session after initialize: 400
    status, _headers, answer = mcp_post(url, {"jsonrpc": "2.0", "id": 5, "method": "tools/list"})
    assert status == 400 and answer["id"] == 5 and answer["error"]["code"] == -32600
    assert mcp_post(url, {"jsonrpc": "2.0", "method": "notifications/initialized"})[0] == 400
    # Accept must list both types; the body must be JSON
    for accept in (None, "application/json", "text/event-stream"):
        assert mcp_post(url, init, accept=accept)[0] == 406, accept
    assert mcp_post(url, init, content_type="text/plain")[0] == 415
    # errors of calls and methods
    call = {"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "nope", "arguments": {}}}
    assert mcp_post(url, call, session)[2]["error"] == {"code": -32602, "message": "Unknown tool: nope"}
    call["params"]["name"] = "echo"
    assert mcp_post(url, call, session)[2]["error"]["code"] == -32602
    assert mcp_post(url, {"jsonrpc": "2.0", "id": 10, "method": "resources/list"}, session)[2]["error"]["code"] == -32601
    assert mcp_post(url, {"jsonrpc": "2.0", "id": 11, "method": "ping"}, session)[2] == {
        "jsonrpc": "2.0", "id": 11, "result": {}}
    get = urllib.request.Request(url + "/mcp", headers={"Accept": "text/event-stream"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(get, timeout=10)
    assert info.value.code == 405


# -- the prompt guard's webhook (guardrail.json) -------------------------------------------------------------
# agentgateway v1.4.1 (crates/agentgateway/src/llm/policy/webhook.rs@v1.4.1): POST /request with the JSON of
# GuardrailsPromptRequest, and none of the client's headers (forwardHeaderMatches is empty); the answer is read
# as GuardrailsPromptResponse {action: RequestAction}, RequestAction untagged Mask | Reject | Pass, whatever
# the HTTP status; a failed call or parse with failureMode FailOpen is GuardrailOutcome::FailOpen.
FAIL_OPEN_MARKER = "mock-guardrail-unavailable"


def parse_request_action(text):
    """serde's reading of a GuardrailsPromptResponse: the variant name and value, or ValueError (fail open)."""
    answer = json.loads(text)
    if not isinstance(answer, dict) or not isinstance(answer.get("action"), dict):
        raise ValueError("no action")
    action = answer["action"]
    reason = action.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise ValueError("reason is not a string")
    body = action.get("body")
    if isinstance(body, dict) and (isinstance(body.get("messages"), list) or isinstance(body.get("choices"), list)):
        return "Mask", action
    if isinstance(body, str) and isinstance(action.get("status_code"), int) and 0 <= action["status_code"] <= 65535:
        return "Reject", action
    return "Pass", action


def guardrail_post(url, payload, headers=None):
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    req = urllib.request.Request(url + "/request", method="POST", data=data,
                                 headers=dict({"Content-Type": "application/json"}, **(headers or {})))
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def test_the_parser_reads_the_v141_actions():
    """Guards the parser above against the three shapes of webhook.rs@v1.4.1."""
    assert parse_request_action('{"action": {}}')[0] == "Pass"
    assert parse_request_action('{"action": {"body": "no", "status_code": 403}}')[0] == "Reject"
    assert parse_request_action('{"action": {"body": {"messages": []}, "reason": "x"}}')[0] == "Mask"
    for text in ("Service Unavailable", '{"verdict": "pass"}', '{"action": {"reason": 5}}'):
        with pytest.raises(ValueError):
            parse_request_action(text)


def test_guardrail_webhook_passes_a_prompt_as_agentgateway_reads_it(mock_wiremock):
    """A request as the gateway sends it (no key: the webhook gets none of the client's headers) is answered with
    a PassAction; the marker gets 503 and a body no action parses from (the guard fails open)."""
    request = {"body": {"messages": [{"role": "system", "content": "be brief"},
                                     {"role": "user", "content": "Test message 1 for observability demo"}]}}
    status, headers, text = guardrail_post(mock_wiremock.url, request)
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert parse_request_action(text) == ("Pass", {"reason": "passed by the mock guardrail webhook"})

    request["body"]["messages"][1]["content"] = "Summarise this (%s)" % FAIL_OPEN_MARKER
    status, headers, text = guardrail_post(mock_wiremock.url, request)
    assert status == 503 and headers["Content-Type"].startswith("text/plain")
    with pytest.raises(ValueError):
        parse_request_action(text)

    # not a GuardrailsPromptRequest: 400 (the gateway would fail open on it too)
    for payload in ({"messages": [{"role": "user", "content": "hi"}]}, b"not json"):
        status, _headers, text = guardrail_post(mock_wiremock.url, payload)
        assert status == 400 and "GuardrailsPromptRequest" in text
    # a key, if one came, changes nothing; the OpenAI mappings' key check is for /v1/... only
    request["body"]["messages"][1]["content"] = "hello"
    assert guardrail_post(mock_wiremock.url, request, {"Authorization": "Bearer wrong"})[0] == 200


def test_the_guardrail_webhook_leaves_the_openai_and_mcp_mappings_alone(client):
    """The webhook's stubs match POST /request only: chat completions still answer."""
    answer = client.chat.completions.create(model=MODELS[0], messages=[
        {"role": "user", "content": "hello %s" % FAIL_OPEN_MARKER}])
    assert answer.choices[0].message.content


def test_latency_is_applied(client):
    import time
    started = time.monotonic()
    client.chat.completions.create(model=MODELS[0], messages=[{"role": "user", "content": "hi"}])
    assert time.monotonic() - started >= DEFAULTS["mock_backend_delay_ms"] / 1000.0


# -- rendered objects ------------------------------------------------------------------------

def by_kind_and_name(objects):
    return {(obj["kind"], obj["metadata"]["name"]): obj for obj in objects.values()}


@pytest.fixture(scope="module")
def mock_files(rendered_site):
    """{relative path: object} of the mock_backend role's manifests in the default site render."""
    return role_objects(rendered_site, roles=("mock_backend",))


@pytest.fixture(scope="module")
def site_mock_objects(mock_files):
    return by_kind_and_name(mock_files)


VARIANT = {"mock_backend_namespace": "mock", "mock_backend_model_override": "gpt-4",
           "mock_backend_route_hostnames": ["llm.example.com"], "agw_obs_image_registry": "mirror.example:5000/hub",
           "mock_backend_route_prefix": ""}


@pytest.fixture(scope="module")
def variant_files():
    """{relative path: file text} of the role planned in-process for VARIANT."""
    return planner.documents(VARIANT, roles=["mock_backend"])


GATEWAY_OBJECTS = [
    ("AgentgatewayBackend", "mock-openai"), ("AgentgatewayBackend", "mock-openai-flaky"),
    ("AgentgatewayBackend", "mock-openai-mcp"), ("AgentgatewayPolicy", "mock-openai-prompt-guard"),
    ("AgentgatewayPolicy", "mock-openai-retry"), ("HTTPRoute", "mock-openai"), ("HTTPRoute", "mock-openai-flaky"),
    ("HTTPRoute", "mock-openai-mcp")]


def test_rendered_objects_and_namespaces(site_mock_objects):
    assert sorted(site_mock_objects) == sorted(GATEWAY_OBJECTS + [
        ("ConfigMap", "mock-openai-mappings"), ("Deployment", "mock-openai"), ("Secret", "mock-openai-auth"),
        ("Service", "mock-openai")])
    assert sorted(site_mock_objects[("ConfigMap", "mock-openai-mappings")]["data"]) == [
        "guardrail.json", "mcp.json", "openai.json"]
    assert {o["metadata"]["namespace"] for o in site_mock_objects.values()} == {"agentgateway-system"}
    image = site_mock_objects[("Deployment", "mock-openai")]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "docker.io/wiremock/wiremock:3.13.2"
    assert site_mock_objects[("Secret", "mock-openai-auth")]["stringData"] == {"Authorization": "Bearer " + API_KEY}


def test_backend_and_route_fields(site_mock_objects):
    backend = site_mock_objects[("AgentgatewayBackend", "mock-openai")]["spec"]
    assert backend["ai"]["provider"] == {"openai": {}, "host": "mock-openai.agentgateway-system.svc.cluster.local",
                                         "port": 8080}
    assert backend["policies"]["auth"] == {"secretRef": {"name": "mock-openai-auth"}}
    route = site_mock_objects[("HTTPRoute", "mock-openai")]["spec"]
    assert route["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                    "name": "agentgateway-proxy", "namespace": "agentgateway-system"}]
    prefix, v1 = route["rules"]
    assert prefix["matches"][0]["path"] == {"type": "PathPrefix", "value": "/openai"}
    assert prefix["filters"][0]["urlRewrite"]["path"] == {"type": "ReplaceFullPath",
                                                          "replaceFullPath": "/v1/chat/completions"}
    assert v1["matches"][0]["path"] == {"type": "PathPrefix", "value": "/v1"}
    assert "hostnames" not in route, "the seed's hostnames: ['*'] is not a valid Gateway API hostname"


# The CRDs' x-kubernetes-validations the structural schema check does not evaluate: the API server's CEL
# rules of the form "[has(self.a),has(self.b)].filter(x,x==true).size() OP n", evaluated here over every
# node of the object that its schema node carries them for.
_HAS_RULE = re.compile(r"^\[((?:has\(self\.\w+\),?)+)\]\.filter\(x,\s*x\s*==\s*true\)\.size\(\)\s*(==|>=|<=)\s*(\d+)$")


def _cel_has_rules(schema, node, where="spec"):
    """Messages of the 'exactly/at least/at most one of' rules ``node`` breaks, and the rules evaluated."""
    broken, seen = [], 0
    if isinstance(node, dict):
        for rule in schema.get("x-kubernetes-validations") or []:
            match = _HAS_RULE.match(rule["rule"].replace(" ", ""))
            if not match:
                continue
            seen += 1
            count = sum(1 for field in re.findall(r"has\(self\.(\w+)\)", match.group(1)) if field in node)
            bound = int(match.group(3))
            if not {"==": count == bound, ">=": count >= bound, "<=": count <= bound}[match.group(2)]:
                broken.append("%s: %s" % (where, rule["message"]))
        for key, value in node.items():
            child = (schema.get("properties") or {}).get(key)
            if child:
                more, count = _cel_has_rules(child, value, "%s.%s" % (where, key))
                broken, seen = broken + more, seen + count
    elif isinstance(node, list) and schema.get("items"):
        for index, item in enumerate(node):
            more, count = _cel_has_rules(schema["items"], item, "%s[%d]" % (where, index))
            broken, seen = broken + more, seen + count
    return broken, seen


def _crd_spec_schema(schemas_dir, kind):
    files = {"AgentgatewayBackend": "agentgateway.dev_agentgatewaybackends.yaml",
             "AgentgatewayPolicy": "agentgateway.dev_agentgatewaypolicies.yaml"}
    crd = yaml.load(pathlib.Path(schemas_dir, "agentgateway", files[kind]).read_text(encoding="utf-8"),
                    Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def assert_valid(schemas_dir, obj):
    assert crd_errors(schemas_dir, obj) == [], (obj["kind"], obj["metadata"]["name"])
    if obj["kind"] in ("AgentgatewayBackend", "AgentgatewayPolicy"):
        broken, seen = _cel_has_rules(_crd_spec_schema(schemas_dir, obj["kind"]), obj["spec"])
        assert broken == [] and seen > 0, (obj["metadata"]["name"], broken)


def test_crd_objects_validate(site_mock_objects, schemas_dir):
    """Every backend, policy and route of the role, as the site renders them, against the pinned CRD schemas."""
    for key in GATEWAY_OBJECTS:
        assert_valid(schemas_dir, site_mock_objects[key])


def test_the_cel_rule_check_catches_a_broken_object(site_mock_objects, schemas_dir):
    """Guards the check above: the CRDs' CEL rules are evaluated, not skipped."""
    backend = yaml.safe_load(yaml.safe_dump(site_mock_objects[("AgentgatewayBackend", "mock-openai-mcp")]))
    backend["spec"]["ai"] = site_mock_objects[("AgentgatewayBackend", "mock-openai")]["spec"]["ai"]
    broken, _seen = _cel_has_rules(_crd_spec_schema(schemas_dir, "AgentgatewayBackend"), backend["spec"])
    assert any("exactly one of the fields in [ai static dynamicForwardProxy mcp aws a2a]" in b for b in broken)
    guard = yaml.safe_load(yaml.safe_dump(site_mock_objects[("AgentgatewayPolicy", "mock-openai-prompt-guard")]))
    del guard["spec"]["backend"]["ai"]["promptGuard"]["request"][0]["response"]["message"]
    del guard["spec"]["backend"]["ai"]["promptGuard"]["request"][0]["response"]["statusCode"]
    broken, _seen = _cel_has_rules(_crd_spec_schema(schemas_dir, "AgentgatewayPolicy"), guard["spec"])
    assert any("at least one of the fields in [message statusCode]" in b for b in broken)


def test_demo_objects_wire_mcp_guard_and_retry(site_mock_objects):
    namespace, host = "agentgateway-system", "mock-openai.agentgateway-system.svc.cluster.local"
    mcp = site_mock_objects[("AgentgatewayBackend", "mock-openai-mcp")]["spec"]["mcp"]
    assert mcp["targets"] == [{"name": DEFAULTS["mock_backend_mcp_server"], "static": {
        "host": host, "port": 8080, "path": "/mcp", "protocol": "StreamableHTTP"}}]
    routes = {name: site_mock_objects[("HTTPRoute", name)]["spec"] for name in ("mock-openai-mcp", "mock-openai-flaky")}
    assert routes["mock-openai-mcp"]["rules"][0]["matches"] == [{"path": {"type": "PathPrefix", "value": "/mcp"}}]
    assert routes["mock-openai-mcp"]["rules"][0]["backendRefs"][0]["name"] == "mock-openai-mcp"
    flaky_rule = routes["mock-openai-flaky"]["rules"][0]
    assert flaky_rule["matches"][0]["path"]["value"] == "/flaky"
    assert flaky_rule["filters"][0]["urlRewrite"]["path"]["replaceFullPath"] == "/v1/chat/completions"
    flaky = site_mock_objects[("AgentgatewayBackend", "mock-openai-flaky")]["spec"]
    assert flaky["ai"]["provider"] == {"openai": {"model": "mock-flaky"}, "host": host, "port": 8080}
    assert flaky["policies"]["auth"] == {"secretRef": {"name": "mock-openai-auth"}}
    guard = site_mock_objects[("AgentgatewayPolicy", "mock-openai-prompt-guard")]["spec"]
    assert guard["targetRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "mock-openai"}]
    rule, webhook = guard["backend"]["ai"]["promptGuard"]["request"]
    assert rule["regex"] == {"action": "Reject", "matches": DEFAULTS["mock_backend_prompt_guard_patterns"]}
    assert rule["response"]["statusCode"] == 403
    # the remote guardrail after the patterns: the mock's own Service (same namespace), failing open
    assert webhook == {"webhook": {"backendRef": {"kind": "Service", "name": "mock-openai", "port": 8080},
                                   "failureMode": "FailOpen"}}
    retry = site_mock_objects[("AgentgatewayPolicy", "mock-openai-retry")]["spec"]
    assert retry["targetRefs"][0]["name"] == "mock-openai-flaky"
    assert retry["traffic"]["retry"] == {"attempts": 2, "codes": [503], "backoff": "100ms"}
    for obj in site_mock_objects.values():
        assert obj["metadata"]["namespace"] == namespace


def test_the_guard_webhook_s_service_reference_passes_the_crd_rules(site_mock_objects):
    """The CRD's rules on webhook.backendRef that the checks above do not evaluate: a Service (group "", the
    default) needs a port; the kind and name follow the CRD's patterns."""
    guard = site_mock_objects[("AgentgatewayPolicy", "mock-openai-prompt-guard")]["spec"]
    ref = guard["backend"]["ai"]["promptGuard"]["request"][1]["webhook"]["backendRef"]
    assert ref.get("group", "") == "" and ref["kind"] == "Service" and 1 <= ref["port"] <= 65535
    assert "namespace" not in ref, "the policy's own namespace: no ReferenceGrant needed"
    service = site_mock_objects[("Service", "mock-openai")]["spec"]["ports"]
    assert [p["port"] for p in service] == [ref["port"]]


def test_the_guard_webhook_can_be_turned_off(schemas_dir):
    objects = by_kind_and_name({rel: yaml.safe_load(text) for rel, text in planner.documents(
        {"mock_backend_guard_webhook_enabled": False}, roles=["mock_backend"]).items() if rel.startswith("manifests/")})
    guard = objects[("AgentgatewayPolicy", "mock-openai-prompt-guard")]
    assert [list(r) for r in guard["spec"]["backend"]["ai"]["promptGuard"]["request"]] == [["regex", "response"]]
    assert_valid(schemas_dir, guard)
    assert sorted(objects[("ConfigMap", "mock-openai-mappings")]["data"]) == ["mcp.json", "openai.json"]
    demo = planner.plan("mock_backend", {"mock_backend_guard_webhook_enabled": False})["services"]["mock_backend"]["demo"]
    assert demo["guard"]["webhook"] == {} and demo["guard"]["status"] == 403
    on = planner.plan("mock_backend", {})["services"]["mock_backend"]["demo"]["guard"]["webhook"]
    assert on == {"path": "/request", "failure_mode": "FailOpen", "marker": FAIL_OPEN_MARKER}


def test_demo_parts_can_be_turned_off(schemas_dir):
    objects = by_kind_and_name({rel: yaml.safe_load(text) for rel, text in planner.documents(
        {"mock_backend_mcp_enabled": False, "mock_backend_prompt_guard_enabled": False,
         "mock_backend_guard_webhook_enabled": False, "mock_backend_retry_enabled": False},
        roles=["mock_backend"]).items() if rel.startswith("manifests/")})
    assert sorted(k for k in objects if k[0] in ("AgentgatewayBackend", "AgentgatewayPolicy", "HTTPRoute")) == [
        ("AgentgatewayBackend", "mock-openai"), ("HTTPRoute", "mock-openai")]
    mappings = objects[("ConfigMap", "mock-openai-mappings")]["data"]
    assert list(mappings) == ["openai.json"] and "mock-flaky" not in mappings["openai.json"]
    demo = planner.plan("mock_backend", {"mock_backend_mcp_enabled": False})["services"]["mock_backend"]["demo"]
    assert demo["mcp"] == {} and demo["guard"]["status"] == 403 and demo["retry"]["model"] == "mock-flaky"


def test_seed_backend_is_rejected_by_the_crd(schemas_dir):
    seed = {"apiVersion": "agentgateway.dev/v1alpha1", "kind": "AgentgatewayBackend",
            "metadata": {"name": "mock-openai-backend", "namespace": "default"},
            "spec": {"openai": {"connectionString": "http://mock-openai.default.svc.cluster.local",
                                "authToken": {"secretRef": {"name": "mock-openai-secret", "key": "api-key"}},
                                "model": {"default": "gpt-4"}}}}
    assert any("openai" in error for error in crd_errors(schemas_dir, seed))


CORE_KINDS = ("ConfigMap", "Deployment", "Service", "Secret", "Namespace")


def path_kind(rel_path):
    return rel_path.rsplit("/", 1)[-1].split("-")[0]


def test_core_objects_pass_kubernetes_validate(rendered_site, mock_files, variant_files, tmp_path):
    """The default site's objects and the variant's (with its Namespace), in one kubernetes-validate --strict run."""
    default = [str(rendered_site / path) for path in sorted(mock_files) if path_kind(path) in CORE_KINDS]
    variant = []
    for rel, text in variant_files.items():
        if rel.startswith("manifests/") and path_kind(rel) in CORE_KINDS:
            variant.append(tmp_path / rel)
            variant[-1].parent.mkdir(parents=True, exist_ok=True)
            variant[-1].write_text(text, encoding="utf-8")
    assert len(default) == 4 and len(variant) == 5, (default, variant)
    proc = subprocess.run([str(REPO / ".venv" / "bin" / "kubernetes-validate"), "--strict", "--quiet"]
                          + default + [str(p) for p in variant], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_variant_other_namespace_override_mirror(variant_files, schemas_dir):
    objects = by_kind_and_name({rel: yaml.safe_load(text) for rel, text in variant_files.items()
                                if rel.startswith("manifests/")})
    assert ("Namespace", "mock") in objects
    backend = objects[("AgentgatewayBackend", "mock-openai")]
    assert backend["spec"]["ai"]["provider"]["openai"] == {"model": "gpt-4"}
    assert backend["spec"]["ai"]["provider"]["host"] == "mock-openai.mock.svc.cluster.local"
    route = objects[("HTTPRoute", "mock-openai")]
    assert route["spec"]["hostnames"] == ["llm.example.com"]
    assert [r["name"] for r in route["spec"]["rules"]] == ["openai-v1"]
    assert route["spec"]["parentRefs"][0]["namespace"] == "agentgateway-system"
    image = objects[("Deployment", "mock-openai")]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "mirror.example:5000/hub/wiremock/wiremock:3.13.2"
    for key in GATEWAY_OBJECTS:
        assert_valid(schemas_dir, objects[key])
        assert objects[key]["metadata"]["namespace"] == "mock"
    for name in ("mock-openai-mcp", "mock-openai-flaky"):
        assert objects[("HTTPRoute", name)]["spec"]["hostnames"] == ["llm.example.com"]
    # the retried route's backend keeps its own model whatever mock_backend_model_override says
    flaky = objects[("AgentgatewayBackend", "mock-openai-flaky")]["spec"]["ai"]["provider"]
    assert flaky["openai"] == {"model": "mock-flaky"} and flaky["host"] == "mock-openai.mock.svc.cluster.local"


def test_playbooks_mock_yml_renders_what_the_site_renders_for_the_role(tmp_path, rendered_site):
    """The role on its own (playbooks/mock.yml: its main.yml, plan then deploy) writes the same files as
    the whole site does for it, byte for byte, and its index names only the role."""
    from support.fixtures import load_rendered, render_playbook, snapshot

    render_playbook(REPO / "playbooks" / "mock.yml", tmp_path)
    alone = snapshot(tmp_path)
    site = {e["path"] for e in load_rendered(rendered_site, "index.yaml")["entries"]
            if e["role"] == "mock_backend" and e.get("path")}
    assert set(alone) - {"index.yaml"} == site
    assert all(alone[path] == (rendered_site / path).read_bytes() for path in site)
    assert {e["role"] for e in load_rendered(tmp_path, "index.yaml")["entries"]} == {"mock_backend"}
