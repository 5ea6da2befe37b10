"""The mock_backend role, rendered: real WireMock with the rendered mappings, called by the official
openai client; rendered objects against the Kubernetes and CRD schemas."""

from __future__ import annotations

import subprocess

import openai
import pytest
import yaml

from support.fixtures import REPO
from support.schemas import crd_errors
from support.wiremock import load_objects, render_mock_backend

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


def test_latency_is_applied(client):
    import time
    started = time.monotonic()
    client.chat.completions.create(model=MODELS[0], messages=[{"role": "user", "content": "hi"}])
    assert time.monotonic() - started >= DEFAULTS["mock_backend_delay_ms"] / 1000.0


# -- rendered objects ------------------------------------------------------------------------

def test_rendered_objects_and_namespaces(mock_objects):
    assert sorted(mock_objects) == [
        ("AgentgatewayBackend", "mock-openai"), ("ConfigMap", "mock-openai-mappings"),
        ("Deployment", "mock-openai"), ("HTTPRoute", "mock-openai"), ("Secret", "mock-openai-auth"),
        ("Service", "mock-openai")]
    assert {o["metadata"]["namespace"] for o in mock_objects.values()} == {"agentgateway-system"}
    image = mock_objects[("Deployment", "mock-openai")]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "docker.io/wiremock/wiremock:3.13.2"
    assert mock_objects[("Secret", "mock-openai-auth")]["stringData"] == {"Authorization": "Bearer " + API_KEY}


def test_backend_and_route_fields(mock_objects):
    backend = mock_objects[("AgentgatewayBackend", "mock-openai")]["spec"]
    assert backend["ai"]["provider"] == {"openai": {}, "host": "mock-openai.agentgateway-system.svc.cluster.local",
                                         "port": 8080}
    assert backend["policies"]["auth"] == {"secretRef": {"name": "mock-openai-auth"}}
    route = mock_objects[("HTTPRoute", "mock-openai")]["spec"]
    assert route["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                    "name": "agentgateway-proxy", "namespace": "agentgateway-system"}]
    prefix, v1 = route["rules"]
    assert prefix["matches"][0]["path"] == {"type": "PathPrefix", "value": "/openai"}
    assert prefix["filters"][0]["urlRewrite"]["path"] == {"type": "ReplaceFullPath",
                                                          "replaceFullPath": "/v1/chat/completions"}
    assert v1["matches"][0]["path"] == {"type": "PathPrefix", "value": "/v1"}
    assert "hostnames" not in route, "the seed's hostnames: ['*'] is not a valid Gateway API hostname"


def test_crd_objects_validate(mock_objects, schemas_dir):
    for key in (("AgentgatewayBackend", "mock-openai"), ("HTTPRoute", "mock-openai")):
        assert crd_errors(schemas_dir, mock_objects[key]) == [], key


def test_seed_backend_is_rejected_by_the_crd(schemas_dir):
    seed = {"apiVersion": "agentgateway.dev/v1alpha1", "kind": "AgentgatewayBackend",
            "metadata": {"name": "mock-openai-backend", "namespace": "default"},
            "spec": {"openai": {"connectionString": "http://mock-openai.default.svc.cluster.local",
                                "authToken": {"secretRef": {"name": "mock-openai-secret", "key": "api-key"}},
                                "model": {"default": "gpt-4"}}}}
    assert any("openai" in error for error in crd_errors(schemas_dir, seed))


def _kubernetes_validate(render_dir):
    core = [str(p) for p in sorted(render_dir.joinpath("manifests").rglob("*.yaml"))
            if p.name.split("-")[0] in ("ConfigMap", "Deployment", "Service", "Secret", "Namespace")]
    proc = subprocess.run([str(REPO / ".venv" / "bin" / "kubernetes-validate"), "--strict", "--quiet"] + core,
                          capture_output=True, text=True, check=False)
    return core, proc


def test_core_objects_pass_kubernetes_validate(mock_render):
    core, proc = _kubernetes_validate(mock_render)
    assert len(core) == 4
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_variant_other_namespace_override_mirror(tmp_path, schemas_dir):
    render_mock_backend(tmp_path, {
        "mock_backend_namespace": "mock", "mock_backend_model_override": "gpt-4",
        "mock_backend_route_hostnames": ["llm.example.com"], "agw_obs_image_registry": "mirror.example:5000/hub",
        "mock_backend_route_prefix": ""})
    objects = load_objects(tmp_path)
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
    for key in (("AgentgatewayBackend", "mock-openai"), ("HTTPRoute", "mock-openai")):
        assert crd_errors(schemas_dir, objects[key]) == [], key
    core, proc = _kubernetes_validate(tmp_path)
    assert len(core) == 5 and proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("variables,needle", [
    ({"mock_backend_models": []}, "mock_backend_models"),
    ({"mock_backend_route_prefix": "openai"}, "mock_backend_route_prefix"),
    ({"mock_backend_image": {"registry": "docker.io", "repository": "wiremock/wiremock", "tag": "latest"}},
     "mock_backend_image"),
    ({"mock_backend_models": ["mock-error-429"]}, "reserved"),
])
def test_bad_input_is_refused_before_rendering(tmp_path, variables, needle):
    proc = render_mock_backend(tmp_path, variables, check=False)
    assert proc.returncode != 0
    assert needle in proc.stdout
    assert not (tmp_path / "manifests").exists()
