"""The gateway roles' files, checked against the upstream contracts.

- rawConfig (both variants) against agentgateway's proxy config schema v1.4.1;
- agentgateway.dev objects against the CRD schemas, Gateway and ReferenceGrant against Gateway API
  v1.6.1 (strict: unknown fields are errors); the Service with kubernetes-validate --strict;
- the Enterprise objects (no public schema) field by field against what the workshop uses;
- the Prometheus scrape job and the gateway's pods, port and metrics Service agree.

The open-source gateway is read from the session's site render with Loki on (support.session,
read-only). The Enterprise variant with the production profile and Loki, and the other variations
(extensions off, another gateway name and namespace), are planned in-process (support.planner, the
roles' own files and filters; tests/functional/test_render_site.py proves it renders what site.yml
renders). The tutorial's rawConfig and an out-of-range sampling are refused by the role's plan:
tests/unit/plugins/plugin_utils/test_plan_checks.py.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from support import planner
from support.gateway import (
    GATEWAY_ROLES,
    index_entries,
    manifests,
    objects_of_kind,
    pod_discovery_labels,
    relabel,
    role_objects,
)
from support.schemas import crd_errors, proxy_config_errors
from support.session import VARIANTS as SITE_VARIANTS

VARIANTS = ("oss", "enterprise")
# the Enterprise gateway with the production profile and Loki on (the site's enterprise variant is kind, no Loki)
ENTERPRISE = dict(SITE_VARIANTS["enterprise"], agw_obs_profile="production", agw_obs_loki_enabled=True)


@pytest.fixture(scope="module")
def gateway_objects(site_render):
    """{"oss": the gateway roles' manifests of the site render with Loki, "enterprise": the planned ones}."""
    return {"oss": role_objects(site_render("loki")),
            "enterprise": manifests(planner.objects(ENTERPRISE, roles=GATEWAY_ROLES))}


def _one(objects, kind):
    objs = objects_of_kind(objects, kind)
    assert len(objs) == 1, "expected one %s, got %d" % (kind, len(objs))
    return yaml.safe_load(yaml.safe_dump(objs[0]))  # a copy: tests may change it


@pytest.mark.parametrize("variant", VARIANTS)
def test_raw_config_passes_the_proxy_schema(gateway_objects, schemas_dir, variant):
    kind = "AgentgatewayParameters" if variant == "oss" else "EnterpriseAgentgatewayParameters"
    raw = _one(gateway_objects[variant], kind)["spec"]["rawConfig"]
    assert proxy_config_errors(schemas_dir, raw) == []
    config = raw["config"]
    assert config["metrics"]["fields"]["add"]["user"] == 'default(jwt.sub, "anonymous")'
    assert config["logging"]["format"] == "json"
    rates = config["modelCatalog"][0]["inline"]["providers"]["openai"]["models"]["gpt-4o-mini"]["rates"]
    assert rates["input"] == "0.15" and rates["output"] == "0.60"


def test_raw_config_schema_check_catches_an_invented_key(gateway_objects, schemas_dir):
    # Guards the check above: the schema really rejects what the tutorial invents.
    raw = _one(gateway_objects["oss"], "AgentgatewayParameters")["spec"]["rawConfig"]
    raw["config"]["metrics"]["prefix"] = "agentgateway"
    assert proxy_config_errors(schemas_dir, raw)


def test_agentgateway_dev_objects_pass_their_crd_schemas(gateway_objects, schemas_dir):
    objs = [o for o in gateway_objects["oss"].values() if o["apiVersion"].startswith("agentgateway.dev/")]
    assert {o["kind"] for o in objs} == {"AgentgatewayParameters", "AgentgatewayPolicy"}
    for obj in objs:
        assert crd_errors(schemas_dir, obj) == [], obj["kind"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_gateway_api_objects_pass_their_crd_schemas(gateway_objects, schemas_dir, variant):
    objs = [o for o in gateway_objects[variant].values() if o["apiVersion"].startswith("gateway.networking.k8s.io/")]
    assert {o["kind"] for o in objs} == {"Gateway", "ReferenceGrant"}
    for obj in objs:
        assert crd_errors(schemas_dir, obj) == [], obj["kind"]


def test_crd_check_is_strict(gateway_objects, schemas_dir):
    policy = _one(gateway_objects["oss"], "AgentgatewayPolicy")
    policy["spec"]["frontend"]["tracing"]["collector"] = {"endpoint": "tempo:4317"}
    assert any("collector" in e for e in crd_errors(schemas_dir, policy))


@pytest.mark.parametrize("variant", VARIANTS)
def test_gateway_points_at_the_parameters(gateway_objects, variant):
    gateway = _one(gateway_objects[variant], "Gateway")
    kind = "AgentgatewayParameters" if variant == "oss" else "EnterpriseAgentgatewayParameters"
    params = _one(gateway_objects[variant], kind)
    ref = gateway["spec"]["infrastructure"]["parametersRef"]
    assert ref == {"group": params["apiVersion"].split("/")[0], "kind": kind, "name": params["metadata"]["name"]}
    assert params["metadata"]["namespace"] == gateway["metadata"]["namespace"]
    assert gateway["spec"]["gatewayClassName"] == ("agentgateway" if variant == "oss" else "enterprise-agentgateway")
    assert [(l["protocol"], l["port"]) for l in gateway["spec"]["listeners"]] == [("HTTP", 8080)]


@pytest.mark.parametrize("variant", VARIANTS)
def test_policy_targets_the_gateway_with_tracing_to_tempo_and_logs_to_loki(gateway_objects, variant):
    kind = "AgentgatewayPolicy" if variant == "oss" else "EnterpriseAgentgatewayPolicy"
    policy = _one(gateway_objects[variant], kind)
    gateway = _one(gateway_objects[variant], "Gateway")
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


def test_enterprise_parameters_carry_the_shared_extensions_and_resources(gateway_objects):
    spec = _one(gateway_objects["enterprise"], "EnterpriseAgentgatewayParameters")["spec"]
    assert set(spec) == {"logging", "rawConfig", "sharedExtensions", "deployment", "service"}
    assert {name: ext["enabled"] for name, ext in spec["sharedExtensions"].items()} == {
        "extauth": True, "ratelimiter": True, "extCache": True}
    container = spec["deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["name"] == "agentgateway"
    assert container["resources"] == {"requests": {"cpu": "200m", "memory": "128Mi"},
                                      "limits": {"cpu": "500m", "memory": "256Mi"}}


def test_enterprise_extension_toggles():
    documents = planner.objects(dict(SITE_VARIANTS["enterprise"], gateway_observability_enterprise_extauth=False,
                                     gateway_observability_enterprise_ext_cache=False), roles=GATEWAY_ROLES)
    spec = _one(manifests(documents), "EnterpriseAgentgatewayParameters")["spec"]
    assert {name: ext["enabled"] for name, ext in spec["sharedExtensions"].items()} == {
        "extauth": False, "ratelimiter": True, "extCache": False}
    # The open-source controller is not installed for the enterprise variant (its default, not the site's setting).
    assert planner.plan("agentgateway", {"agw_obs_gateway_variant": "enterprise"})["releases"] == []
    assert not [path for path in documents if path.startswith("helm/")]


def test_oss_resources_and_releases(gateway_objects, site_render):
    spec = _one(gateway_objects["oss"], "AgentgatewayParameters")["spec"]
    assert spec["resources"] == {"requests": {"cpu": "200m", "memory": "128Mi"},
                                 "limits": {"cpu": "500m", "memory": "256Mi"}}
    index = index_entries(site_render("loki"))
    charts = {e["release"]: e["chart"] for e in index if e["type"] == "helm_release"}
    oci = "oci://cr.agentgateway.dev/charts"
    assert charts == {"agentgateway-crds": {"oci": oci, "name": "agentgateway-crds", "version": "v1.4.1"},
                      "agentgateway": {"oci": oci, "name": "agentgateway", "version": "v1.4.1"}}
    remote = [e for e in index if e["type"] == "remote_manifest"]
    url = "https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.6.1/standard-install.yaml"
    assert remote == [{"role": "agentgateway", "type": "remote_manifest", "name": "gateway-api-standard-crds",
                       "url": url, "version": "v1.6.1"}]
    # The Gateway is applied after the releases (its CRDs and controller come from them).
    gateway_entry = [e for e in index if e.get("kind") == "Gateway"][0]
    assert gateway_entry["phase"] == "after_releases"


def _kubernetes_validate(*paths):
    return subprocess.run([sys.executable, "-m", "kubernetes_validate", "--strict"] + [str(p) for p in paths],
                          capture_output=True, text=True, check=False)


def test_metrics_services_pass_kubernetes_validate(gateway_objects, tmp_path):
    """Both variants' metrics Service (kubernetes-validate --strict refuses an unknown field:
    test_grafana_render.py::test_kubernetes_validate_strict_rejects_an_unknown_field)."""
    paths = []
    for variant in VARIANTS:
        service = _one(gateway_objects[variant], "Service")
        paths.append(tmp_path / ("service-%s.yaml" % variant))
        paths[-1].write_text(yaml.safe_dump(service), encoding="utf-8")
        port = service["spec"]["ports"][0]
        assert port["port"] == 15020 and port["targetPort"] == "metrics"
        if variant == "oss":  # kind profile
            assert service["spec"]["type"] == "NodePort" and port["nodePort"] == 30091
        else:  # production profile
            assert service["spec"]["type"] == "ClusterIP" and "nodePort" not in port
    proc = _kubernetes_validate(*paths)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---- contract with the prometheus role --------------------------------------------------------

@pytest.fixture(scope="module")
def renamed_gateway():
    """Prometheus and the gateway roles planned together, with non-default names to prove they track."""
    return planner.objects({"agw_obs_gateway_name": "ai-gw", "agw_obs_gateway_namespace": "llm-edge"},
                           roles=("prometheus",) + GATEWAY_ROLES)


def _scrape_job(documents, name="agentgateway"):
    values = documents["helm/monitoring/prometheus.yaml"]["values"]
    jobs = [j for j in yaml.safe_load(values["extraScrapeConfigs"]) if j["job_name"] == name]
    assert len(jobs) == 1
    return jobs[0]


def test_prometheus_scrapes_exactly_the_gateway_pods_the_metrics_service_selects(renamed_gateway):
    job = _scrape_job(renamed_gateway)
    service = _one(manifests(renamed_gateway), "Service")
    gateway = _one(manifests(renamed_gateway), "Gateway")
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


def test_prometheus_ignores_other_gateways_and_ports(renamed_gateway):
    job = _scrape_job(renamed_gateway)
    _labels, other_gateway = pod_discovery_labels("someone-else", "llm-edge")
    assert relabel(other_gateway, job["relabel_configs"]) is None
    _labels, listener_port = pod_discovery_labels("ai-gw", "llm-edge", port=8080, port_name="listener-8080")
    assert relabel(listener_port, job["relabel_configs"]) is None
