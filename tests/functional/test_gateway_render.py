"""The gateway roles rendered end to end, checked against the upstream contracts.

- rawConfig (both variants) against agentgateway's proxy config schema v1.4.1;
- agentgateway.dev objects against the CRD schemas, Gateway and ReferenceGrant against Gateway API
  v1.6.1 (strict: unknown fields are errors); the Service with kubernetes-validate --strict;
- the Enterprise objects (no public schema) field by field against what the workshop uses;
- the tutorial's rawConfig fed to the role fails before anything is written, naming every key;
- the Prometheus scrape job and the gateway's pods, port and metrics Service agree.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from support.gateway import (
    STACK_PLAYBOOK,
    objects_of_kind,
    pod_discovery_labels,
    relabel,
    render_gateway,
    rendered_objects,
    seed_raw_configs,
)
from support.fixtures import assert_rejected_before_writing, load_rendered, snapshot
from support.schemas import crd_errors, proxy_config_errors

VARIANTS = ("oss", "enterprise")


def _one(render_dir, kind):
    objs = objects_of_kind(render_dir, kind)
    assert len(objs) == 1, "expected one %s, got %d" % (kind, len(objs))
    return objs[0]


@pytest.mark.parametrize("variant", VARIANTS)
def test_raw_config_passes_the_proxy_schema(gateway_renders, schemas_dir, variant):
    kind = "AgentgatewayParameters" if variant == "oss" else "EnterpriseAgentgatewayParameters"
    raw = _one(gateway_renders[variant], kind)["spec"]["rawConfig"]
    assert proxy_config_errors(schemas_dir, raw) == []
    config = raw["config"]
    assert config["metrics"]["fields"]["add"]["user"] == 'default(jwt.sub, "anonymous")'
    assert config["logging"]["format"] == "json"
    rates = config["modelCatalog"][0]["inline"]["providers"]["openai"]["models"]["gpt-4o-mini"]["rates"]
    assert rates["input"] == "0.15" and rates["output"] == "0.60"


def test_raw_config_schema_check_catches_an_invented_key(gateway_renders, schemas_dir):
    # Guards the check above: the schema really rejects what the tutorial invents.
    raw = _one(gateway_renders["oss"], "AgentgatewayParameters")["spec"]["rawConfig"]
    broken = yaml.safe_load(yaml.safe_dump(raw))
    broken["config"]["metrics"]["prefix"] = "agentgateway"
    assert proxy_config_errors(schemas_dir, broken)


def test_agentgateway_dev_objects_pass_their_crd_schemas(gateway_renders, schemas_dir):
    objs = [o for o in rendered_objects(gateway_renders["oss"]).values() if o["apiVersion"].startswith("agentgateway.dev/")]
    assert {o["kind"] for o in objs} == {"AgentgatewayParameters", "AgentgatewayPolicy"}
    for obj in objs:
        assert crd_errors(schemas_dir, obj) == [], obj["kind"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_gateway_api_objects_pass_their_crd_schemas(gateway_renders, schemas_dir, variant):
    objs = [o for o in rendered_objects(gateway_renders[variant]).values()
            if o["apiVersion"].startswith("gateway.networking.k8s.io/")]
    assert {o["kind"] for o in objs} == {"Gateway", "ReferenceGrant"}
    for obj in objs:
        assert crd_errors(schemas_dir, obj) == [], obj["kind"]


def test_crd_check_is_strict(gateway_renders, schemas_dir):
    policy = _one(gateway_renders["oss"], "AgentgatewayPolicy")
    policy["spec"]["frontend"]["tracing"]["collector"] = {"endpoint": "tempo:4317"}
    assert any("collector" in e for e in crd_errors(schemas_dir, policy))


@pytest.mark.parametrize("variant", VARIANTS)
def test_gateway_points_at_the_parameters(gateway_renders, variant):
    gateway = _one(gateway_renders[variant], "Gateway")
    kind = "AgentgatewayParameters" if variant == "oss" else "EnterpriseAgentgatewayParameters"
    params = _one(gateway_renders[variant], kind)
    ref = gateway["spec"]["infrastructure"]["parametersRef"]
    assert ref == {"group": params["apiVersion"].split("/")[0], "kind": kind, "name": params["metadata"]["name"]}
    assert params["metadata"]["namespace"] == gateway["metadata"]["namespace"]
    assert gateway["spec"]["gatewayClassName"] == ("agentgateway" if variant == "oss" else "enterprise-agentgateway")
    assert [(l["protocol"], l["port"]) for l in gateway["spec"]["listeners"]] == [("HTTP", 8080)]


@pytest.mark.parametrize("variant", VARIANTS)
def test_policy_targets_the_gateway_with_tracing_to_tempo_and_logs_to_loki(gateway_renders, variant):
    kind = "AgentgatewayPolicy" if variant == "oss" else "EnterpriseAgentgatewayPolicy"
    policy = _one(gateway_renders[variant], kind)
    gateway = _one(gateway_renders[variant], "Gateway")
    assert policy["spec"]["targetRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                             "name": gateway["metadata"]["name"]}]
    tracing = policy["spec"]["frontend"]["tracing"]
    assert tracing["backendRef"] == {"name": "tempo", "namespace": "monitoring", "port": 4317}
    assert tracing["protocol"] == "GRPC"
    names = {a["name"] for a in tracing["attributes"]["add"]}
    assert {"gen_ai.request.model", "gen_ai.response.model", "gen_ai.usage.input_tokens",
            "gen_ai.usage.output_tokens"} <= names
    otlp = policy["spec"]["frontend"]["accessLog"]["otlp"]
    assert otlp == {"backendRef": {"name": "loki", "namespace": "monitoring", "port": 3100},
                    "protocol": "HTTP", "path": "/otlp/v1/logs"}
    # Enterprise: metric labels only in rawConfig (the workshop's way); OSS: also in the policy.
    assert ("metrics" in policy["spec"]["frontend"]) == (variant == "oss")


def test_enterprise_parameters_carry_the_shared_extensions_and_resources(gateway_renders):
    spec = _one(gateway_renders["enterprise"], "EnterpriseAgentgatewayParameters")["spec"]
    assert set(spec) == {"logging", "rawConfig", "sharedExtensions", "deployment", "service"}
    assert {name: ext["enabled"] for name, ext in spec["sharedExtensions"].items()} == {
        "extauth": True, "ratelimiter": True, "extCache": True}
    container = spec["deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["name"] == "agentgateway"
    assert container["resources"] == {"requests": {"cpu": "200m", "memory": "128Mi"},
                                      "limits": {"cpu": "500m", "memory": "256Mi"}}


def test_enterprise_extension_toggles(tmp_path):
    render_gateway(tmp_path, {"agw_obs_gateway_variant": "enterprise", "gateway_observability_enterprise_extauth": False,
                              "gateway_observability_enterprise_ext_cache": False})
    spec = _one(tmp_path, "EnterpriseAgentgatewayParameters")["spec"]
    assert {name: ext["enabled"] for name, ext in spec["sharedExtensions"].items()} == {
        "extauth": False, "ratelimiter": True, "extCache": False}
    # The open-source controller is not installed for the enterprise variant.
    assert not (tmp_path / "helm").exists()


def test_oss_resources_and_releases(gateway_renders):
    spec = _one(gateway_renders["oss"], "AgentgatewayParameters")["spec"]
    assert spec["resources"] == {"requests": {"cpu": "200m", "memory": "128Mi"},
                                 "limits": {"cpu": "500m", "memory": "256Mi"}}
    index = load_rendered(gateway_renders["oss"], "index.yaml")["entries"]
    charts = {e["release"]: e["chart"] for e in index if e["type"] == "helm_release"}
    assert charts == {
        "agentgateway-crds": {"oci": "oci://cr.agentgateway.dev/charts", "name": "agentgateway-crds", "version": "v1.4.1"},
        "agentgateway": {"oci": "oci://cr.agentgateway.dev/charts", "name": "agentgateway", "version": "v1.4.1"},
    }
    remote = [e for e in index if e["type"] == "remote_manifest"]
    assert remote == [{"role": "agentgateway", "type": "remote_manifest", "name": "gateway-api-standard-crds",
                       "url": "https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.6.1/standard-install.yaml",
                       "version": "v1.6.1"}]
    # The Gateway is applied after the releases (its CRDs and controller come from them).
    gateway_entry = [e for e in index if e.get("kind") == "Gateway"][0]
    assert gateway_entry["phase"] == "after_releases"


@pytest.mark.parametrize("variant", VARIANTS)
def test_metrics_service_passes_kubernetes_validate(gateway_renders, variant, tmp_path):
    service = _one(gateway_renders[variant], "Service")
    path = tmp_path / "service.yaml"
    path.write_text(yaml.safe_dump(service), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "kubernetes_validate", "--strict", str(path)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    port = service["spec"]["ports"][0]
    assert port["port"] == 15020 and port["targetPort"] == "metrics"
    if variant == "oss":  # kind profile
        assert service["spec"]["type"] == "NodePort" and port["nodePort"] == 30091
    else:  # production profile
        assert service["spec"]["type"] == "ClusterIP" and "nodePort" not in port


def test_kubernetes_validate_catches_a_bad_service(tmp_path):
    path = tmp_path / "service.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},
                                    "spec": {"ports": [{"port": 15020, "nodePortt": 30091}]}}), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "kubernetes_validate", "--strict", str(path)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode != 0


# ---- the tutorial's rawConfig, fed to the role as-is ------------------------------------------

def test_the_tutorials_raw_config_fails_the_role_before_anything_is_written(tmp_path, seed_tutorial):
    render_dir = tmp_path / "render"
    render_dir.mkdir()
    main_block, custom_metrics_block = seed_raw_configs(seed_tutorial)[:2]
    merged = yaml.safe_load(yaml.safe_dump(main_block))
    merged["config"]["metrics"]["customMetrics"] = custom_metrics_block["config"]["metrics"]["customMetrics"]
    proc = render_gateway(render_dir, {"gateway_observability_extra_raw_config": merged}, check=False)
    assert proc.returncode != 0
    assert snapshot(render_dir) == {}, "files were written before the input was rejected"
    out = proc.stdout
    for key in ("config.metrics.enabled", "config.metrics.prefix", "config.metrics.tags",
                "config.metrics.customMetrics", "config.tracing.collector"):
        assert "gateway_observability_extra_raw_config.%s:" % key in out, key
    for trap in ("'//'", "llm.totalCost", "llm.inputCost", "llm.outputCost"):
        assert trap in out, trap
    assert 'default(jwt.sub, \\"anonymous\\")' in out or 'default(jwt.sub, "anonymous")' in out


def test_out_of_range_sampling_fails_the_role(tmp_path):
    proc = render_gateway(tmp_path, {"gateway_observability_tracing_random_sampling": 1.5}, check=False)
    assert_rejected_before_writing(proc, tmp_path, "outside [0, 1]", "gateway_observability_tracing_random_sampling")


# ---- contract with the prometheus role --------------------------------------------------------

@pytest.fixture(scope="module")
def stack_render(tmp_path_factory):
    """Prometheus + gateway roles rendered together, with non-default names to prove they track."""
    directory = tmp_path_factory.mktemp("gateway-stack")
    render_gateway(directory, {"agw_obs_gateway_name": "ai-gw", "agw_obs_gateway_namespace": "llm-edge"},
                   playbook=STACK_PLAYBOOK)
    return directory


def _scrape_job(render_dir, name="agentgateway"):
    values = load_rendered(render_dir, "helm/monitoring/prometheus.yaml")["values"]
    jobs = [j for j in yaml.safe_load(values["extraScrapeConfigs"]) if j["job_name"] == name]
    assert len(jobs) == 1
    return jobs[0]


def test_prometheus_scrapes_exactly_the_gateway_pods_the_metrics_service_selects(stack_render):
    job = _scrape_job(stack_render)
    service = _one(stack_render, "Service")
    gateway = _one(stack_render, "Gateway")
    namespace = gateway["metadata"]["namespace"]
    assert (namespace, service["metadata"]["namespace"]) == ("llm-edge", "llm-edge")
    assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": [namespace]}}]

    pod_labels, target = pod_discovery_labels(gateway["metadata"]["name"], namespace)
    kept = relabel(target, job["relabel_configs"])
    assert kept is not None, "the scrape job drops the gateway's proxy pod"
    assert kept["gateway_networking_k8s_io_gateway_name"] == "ai-gw"
    assert kept["namespace"] == "llm-edge"
    # The metrics Service selects the same pods and the same container port.
    assert set(service["spec"]["selector"].items()) <= set(pod_labels.items())
    port = service["spec"]["ports"][0]
    assert port["targetPort"] in (target["__meta_kubernetes_pod_container_port_name"],
                                  int(target["__meta_kubernetes_pod_container_port_number"]))
    assert port["port"] == int(target["__meta_kubernetes_pod_container_port_number"]) == 15020


def test_prometheus_ignores_other_gateways_and_ports(stack_render):
    job = _scrape_job(stack_render)
    _labels, other_gateway = pod_discovery_labels("someone-else", "llm-edge")
    assert relabel(other_gateway, job["relabel_configs"]) is None
    _labels, listener_port = pod_discovery_labels("ai-gw", "llm-edge", port=8080, port_name="listener-8080")
    assert relabel(listener_port, job["relabel_configs"]) is None
