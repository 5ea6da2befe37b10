"""playbooks/diagnose.yml against a real kube-apiserver v1.36.1 with a real Helm release, secrets planted.

The control plane is the session's (support.session): the monitoring and gateway namespaces are
this module's own, and the agentgateway CRDs are created only where missing (other modules may
have them already).

The control plane has no nodes: the pods stay Pending, so the bundle must say that they have no
logs and go on; a pod bound to a node without a kubelet makes the log read fail, which the bundle
records. A minimal chart written here is installed with the real helm 3 binary. Secrets are
planted in a Secret, the gateway's rawConfig, container environments, the Helm values and
manifest, the Grafana password file and the verification report; none may appear in the bundle
folder or in the tarball.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import tarfile

import pytest
import yaml

from support.fixtures import REPO, run_playbook
from support.session import EXISTING
from support.tools import tool

pytestmark = pytest.mark.services
PLANTED = {
    "secret_data": "PLANTED-secret-data-0001",
    "raw_config_header": "PLANTED-rawconfig-key-0002",
    "env_password": "PLANTED-env-password-0003",
    "env_header_token": "PLANTED-env-bearer-0004",
    "helm_value": "PLANTED-helm-password-0005",
    "grafana_file": "PLANTED-grafana-file-0006",
    "report_token": "PLANTED-report-bearer-0007",
}


def chart(directory):
    """A minimal chart of our own (name grafana, like the role's release), with a Secret from its values."""
    root = pathlib.Path(directory, "grafana")
    (root / "templates").mkdir(parents=True)
    (root / "Chart.yaml").write_text("apiVersion: v2\nname: grafana\nversion: 0.0.1-test\nappVersion: test\n"
                                     "description: test chart of agentgateway.observability's diagnose test\n")
    (root / "values.yaml").write_text("adminPassword: ''\n")
    (root / "templates" / "secret.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .Release.Name }}-test-admin\nstringData:\n"
        "  admin-password: {{ .Values.adminPassword | quote }}\n")
    return str(root)


@pytest.fixture(scope="module")
def namespaces(module_namespace):
    """(gateway namespace, monitoring namespace), this module's own."""
    return module_namespace + "-gateway", module_namespace


@pytest.fixture(scope="module")
def planted_cluster(verification_cluster, namespaces, tmp_path_factory, schemas_dir):
    c = verification_cluster
    gw_ns, mon_ns = namespaces
    for ns in (gw_ns, mon_ns):
        c.namespace(ns)
    c.crds(schemas_dir / "agentgateway" / name
           for name in ("agentgateway.dev_agentgatewayparameters.yaml", "agentgateway.dev_agentgatewaypolicies.yaml"))
    c.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "mock-openai-auth", "namespace": gw_ns},
             "stringData": {"Authorization": "Bearer " + PLANTED["secret_data"]}})
    c.apply({"apiVersion": "agentgateway.dev/v1alpha1", "kind": "AgentgatewayParameters",
             "metadata": {"name": "agentgateway-proxy-observability", "namespace": gw_ns},
             "spec": {"rawConfig": {"config": {"statsAddr": "0.0.0.0:15020",
                                               "tracing": {"otlpEndpoint": "http://tempo.monitoring:4317",
                                                           "headers": {"x-api-key": PLANTED["raw_config_header"]}}}},
                      "env": [{"name": "OTEL_EXPORTER_OTLP_HEADERS",
                               "value": "authorization=Bearer %s" % PLANTED["env_header_token"]}]}})
    c.apply({"apiVersion": "agentgateway.dev/v1alpha1", "kind": "AgentgatewayPolicy",
             "metadata": {"name": "agentgateway-proxy-telemetry", "namespace": gw_ns},
             "spec": {"targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                      "name": "agentgateway-proxy"}],
                      "frontend": {"accessLog": {"attributes": {"add": [{"name": "llm.request_model",
                                                                         "expression": "llm.requestModel"}]}}}}})
    labels = {"app.kubernetes.io/name": "agentgateway-proxy"}
    c.apply({"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": "agentgateway-proxy", "namespace": gw_ns},
             "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
                 "metadata": {"labels": labels},
                 "spec": {"containers": [{"name": "agentgateway", "image": "cr.agentgateway.dev/agentgateway:v1.4.1",
                                          "env": [{"name": "DB_PASSWORD", "value": PLANTED["env_password"]},
                                                  {"name": "LOG_LEVEL", "value": "info"}]}]}}}})
    # bound to a node without a kubelet: the API server cannot fetch its logs
    c.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "on-a-ghost-node", "namespace": mon_ns},
             "spec": {"nodeName": "ghost-node", "containers": [{"name": "c", "image": "example.invalid/none:1"}]}})
    c.wait_for(lambda: c.core.list_namespaced_pod(gw_ns).items, "the proxy's pod (Pending)")
    env = dict(os.environ, KUBECONFIG=c.kubeconfig)
    subprocess.run([tool("helm"), "install", "grafana", chart(tmp_path_factory.mktemp("chart")), "-n", mon_ns,
                    "--set", "adminPassword=%s" % PLANTED["helm_value"], "--wait=false"], env=env, check=True,
                   capture_output=True, text=True, timeout=120)
    return c


def bundle_texts(folder, tarball):
    texts = {str(p.relative_to(folder)): p.read_text(errors="replace") for p in pathlib.Path(folder).rglob("*")
             if p.is_file()}
    with tarfile.open(tarball) as tar:
        for member in tar.getmembers():
            if member.isfile():
                texts["tar:" + member.name] = tar.extractfile(member).read().decode("utf-8", "replace")
    return texts


def test_the_support_bundle(planted_cluster, namespaces, tmp_path, monkeypatch):
    gateway_ns, monitoring_ns = namespaces
    monkeypatch.setenv("PATH", "%s%s%s" % (os.path.dirname(tool("helm")), os.pathsep, os.environ["PATH"]))
    password_file = tmp_path / "grafana-admin-password"
    password_file.write_text(PLANTED["grafana_file"] + "\n")
    report = tmp_path / "report"
    report.mkdir()
    (report / "verification.md").write_text("tried: POST /v1 [Authorization: Bearer %s]\n" % PLANTED["report_token"])
    proc = run_playbook(REPO / "playbooks" / "diagnose.yml", {
        "agw_obs_kubeconfig": planted_cluster.kubeconfig, "verification_diagnose_dir": str(tmp_path / "support"),
        "agw_obs_monitoring_namespace": monitoring_ns, "agw_obs_gateway_namespace": gateway_ns,
        # the release installed here and one that is not (the plan's list has four more not installed), and the
        # namespaces planted here (the plan's list adds the agentgateway role's)
        "verification_diagnose_releases": [{"name": "grafana", "namespace": monitoring_ns},
                                           {"name": "prometheus", "namespace": monitoring_ns}],
        "verification_diagnose_namespaces": [monitoring_ns, gateway_ns],
        "verification_grafana_password_file": str(password_file), "verification_report_dir": str(report)})
    folders = [p for p in (tmp_path / "support").iterdir() if p.is_dir()]
    assert len(folders) == 1
    folder = folders[0]
    tarball = pathlib.Path(str(folder) + ".tar.gz")
    assert tarball.is_file() and "Support bundle: %s" % folder in proc.stdout
    texts = bundle_texts(folder, tarball)

    for name, value in PLANTED.items():
        leaks = [path for path, text in texts.items() if value in text]
        assert leaks == [], "planted secret %s found in %s" % (name, leaks)

    assert {"pods.txt", "pods.yaml", "events.yaml", "helm-releases.yaml", "gateway-telemetry.yaml",
            "failing-pods.yaml", "README.txt", "files/report/verification.md"} <= set(texts)
    proxy_logs = [p for p in texts if p.startswith("logs/%s/agentgateway-proxy-" % gateway_ns)]
    assert proxy_logs and "not scheduled to a node, so no kubelet has run it" in texts[proxy_logs[0]]
    ghost = texts["logs/%s/on-a-ghost-node.log" % monitoring_ns]
    assert "logs could not be read" in ghost and "ghost-node" in ghost
    assert "Pending" in texts["pods.txt"] and "ghost-node" in texts["pods.txt"]
    helm = yaml.safe_load(texts["helm-releases.yaml"])
    grafana = [r for r in helm if r["read"] == "%s/grafana" % monitoring_ns][0]["release"]
    assert grafana["status"] == "deployed" and grafana["chart"] == "grafana-0.0.1-test"
    assert [r for r in helm if r["read"] == "%s/prometheus" % monitoring_ns][0]["release"] == "not installed"
    telemetry = texts["gateway-telemetry.yaml"]
    assert "0.0.0.0:15020" in telemetry and "tempo.monitoring:4317" in telemetry, "what is not secret stays"
    assert "llm.requestModel" in telemetry and "LOG_LEVEL" in telemetry and "<redacted>" in telemetry
    assert "the cluster does not serve this kind" in telemetry, "the Enterprise kinds are not installed here"
    events = yaml.safe_load(texts["events.yaml"])
    assert sum(e.get("count", 0) for e in events) > 0, "the controller manager's events are collected"
    assert "Secret values removed before writing" in texts["README.txt"]
    # the Services the site's plan names (install mode), each read with its endpoints, or why not
    services = {s["service"]: s for s in yaml.safe_load(texts["services.yaml"])}
    assert services["prometheus"]["read"] == "%s/prometheus-server" % monitoring_ns
    assert services["grafana"]["read"] == "%s/grafana" % monitoring_ns
    assert services["gateway"]["read"] == "%s/agentgateway-proxy" % gateway_ns
    assert services["tempo"]["error"] == "no Service tempo in namespace %s" % monitoring_ns
    assert services["loki"]["skipped"].startswith("Loki is off")


def test_existing_mode_bundle_names_the_users_services(planted_cluster, namespaces, tmp_path):
    """agw_obs_stack_mode=existing: the bundle reads the Services of the user's stack (from role existing_stack's
    URLs) and the releases of this mode's plan, never the install mode's names."""
    gateway_ns, monitoring_ns = namespaces
    users_ns = monitoring_ns + "-users"
    planted_cluster.namespace(users_ns)
    planted_cluster.apply({"apiVersion": "v1", "kind": "Service",
                           "metadata": {"name": "kps-prometheus", "namespace": users_ns},
                           "spec": {"selector": {"app": "kps-prometheus"}, "ports": [{"port": 9090}]}})
    settings = dict(EXISTING, agw_obs_kubeconfig=planted_cluster.kubeconfig, agw_obs_monitoring_namespace=monitoring_ns,
                    agw_obs_gateway_namespace=gateway_ns, verification_diagnose_dir=str(tmp_path / "support"),
                    verification_report_dir=str(tmp_path / "no-report"),
                    # the pods of the user's namespace only (which namespaces the plan names is a unit test)
                    verification_diagnose_namespaces=[users_ns],
                    existing_stack_prometheus_url="http://kps-prometheus.%s.svc:9090" % users_ns,
                    existing_stack_tempo_datasource_url="http://tempo.%s.svc.cluster.local:3200" % users_ns)
    run_playbook(REPO / "playbooks" / "diagnose.yml", settings)
    folder = [p for p in (tmp_path / "support").iterdir() if p.is_dir()][0]
    texts = bundle_texts(folder, pathlib.Path(str(folder) + ".tar.gz"))
    services = {s["service"]: s for s in yaml.safe_load(texts["services.yaml"])}
    prometheus = services["prometheus"]
    assert prometheus["role"] == "existing_stack" and prometheus["read"] == "%s/kps-prometheus" % users_ns
    assert prometheus["spec"]["ports"][0]["port"] == 9090 and prometheus["endpoints"] == []
    assert services["tempo"]["read"] == "%s/tempo" % users_ns and "no Service tempo" in services["tempo"]["error"]
    assert services["loki"]["read"] == "logging/loki-gateway"
    assert "existing_stack_grafana_url is empty" in services["grafana"]["skipped"]
    assert services["gateway"]["read"] == "%s/agentgateway-proxy" % gateway_ns
    # this mode's plan has no release of the stack, and no install-mode name is read anywhere
    assert sorted(r["read"] for r in yaml.safe_load(texts["helm-releases.yaml"])) == [
        "agentgateway-system/agentgateway", "agentgateway-system/agentgateway-crds"]
    assert "prometheus-server" not in texts["services.yaml"] + texts["helm-releases.yaml"]
    assert [p["read"] for p in yaml.safe_load(texts["pods.yaml"])] == [users_ns]
