"""The mock_backend role, rendered: real WireMock with the rendered mappings, called by the official
openai client; rendered objects against the Kubernetes and CRD schemas.

WireMock serves the mappings of the session's default site render (support.wiremock), and the
objects are read from it (support.session, read-only); the variation (another namespace, a model
override, hostnames, an image mirror) is planned in-process (support.planner) and written out for
kubernetes-validate --strict. Bad settings are refused by the role's settings check:
tests/unit/plugins/plugin_utils/test_settings.py (mock-models-empty, mock-route-prefix,
mock-image-latest, mock-model-reserved).
"""

from __future__ import annotations

import subprocess

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


def test_rendered_objects_and_namespaces(site_mock_objects):
    assert sorted(site_mock_objects) == [
        ("AgentgatewayBackend", "mock-openai"), ("ConfigMap", "mock-openai-mappings"),
        ("Deployment", "mock-openai"), ("HTTPRoute", "mock-openai"), ("Secret", "mock-openai-auth"),
        ("Service", "mock-openai")]
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


def test_crd_objects_validate(site_mock_objects, schemas_dir):
    for key in (("AgentgatewayBackend", "mock-openai"), ("HTTPRoute", "mock-openai")):
        assert crd_errors(schemas_dir, site_mock_objects[key]) == [], key


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
    for key in (("AgentgatewayBackend", "mock-openai"), ("HTTPRoute", "mock-openai")):
        assert crd_errors(schemas_dir, objects[key]) == [], key


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
