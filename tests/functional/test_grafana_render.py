"""The grafana role in render mode: datasources, admin Secret, offline dashboards, images, schemas."""

from __future__ import annotations

import base64
import os
import pathlib
import stat
import subprocess
import sys
import urllib.parse

import pytest
import yaml

from support.dashboards import DASHBOARD_DIR, render_stack
from support.fixtures import assert_rejected_before_writing, load_rendered, snapshot

OLD_REPO = "https://grafana.github.io/helm-charts"
NEW_REPO = "https://grafana-community.github.io/helm-charts"
KUBERNETES_VALIDATE = str(pathlib.Path(sys.executable).parent / "kubernetes-validate")


def grafana_values(render_dir):
    return load_rendered(render_dir, "helm/monitoring/grafana.yaml")["values"]


def datasources(render_dir):
    return {ds["uid"]: ds for ds in grafana_values(render_dir)["datasources"]["datasources.yaml"]["datasources"]}


def keys_and_strings(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from keys_and_strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from keys_and_strings(value)
    elif isinstance(node, str):
        yield node


def test_every_release_uses_the_community_repository(stack_render_loki):
    index = load_rendered(stack_render_loki, "index.yaml")
    releases = {e["release"]: e["chart"] for e in index["entries"] if e["type"] == "helm_release"}
    assert {"tempo", "grafana", "loki"} <= set(releases)
    for name in ("tempo", "grafana", "loki"):
        assert releases[name]["repo"] == NEW_REPO, name
    assert releases["grafana"] == {"repo": NEW_REPO, "name": "grafana", "version": "12.11.1"}
    assert releases["loki"]["version"] == "18.11.0"
    for chart in releases.values():
        assert chart.get("repo") != OLD_REPO


def test_datasources_have_fixed_uids_and_tempo_on_3200(stack_render):
    ds = datasources(stack_render)
    assert set(ds) == {"prometheus", "tempo"}
    assert ds["prometheus"]["isDefault"] is True and ds["prometheus"]["type"] == "prometheus"
    assert ds["prometheus"]["url"] == "http://prometheus-server.monitoring.svc.cluster.local"
    tempo = ds["tempo"]
    assert tempo["type"] == "tempo" and tempo["isDefault"] is False
    assert urllib.parse.urlsplit(tempo["url"]).port == 3200
    assert urllib.parse.urlsplit(tempo["url"]).hostname == "tempo.monitoring.svc.cluster.local"
    assert tempo["jsonData"]["tracesToMetrics"]["datasourceUid"] == "prometheus"
    assert tempo["jsonData"]["serviceMap"]["datasourceUid"] == "prometheus"
    assert "tracesToLogsV2" not in tempo["jsonData"], "no trace-to-logs link without Loki"
    # Grafana expands $VAR in provisioning files: its own $__tags must be written $$__tags
    for query in tempo["jsonData"]["tracesToMetrics"]["queries"]:
        assert "$$__tags" in query["query"]
    # the chart passes datasources through Helm's tpl: no template braces may appear
    assert "{{" not in yaml.safe_dump(grafana_values(stack_render)["datasources"])


def test_loki_datasource_and_trace_to_logs_when_loki_is_on(stack_render_loki):
    ds = datasources(stack_render_loki)
    assert set(ds) == {"prometheus", "tempo", "loki"}
    assert ds["loki"]["url"] == "http://loki.monitoring.svc.cluster.local:3100"
    to_logs = ds["tempo"]["jsonData"]["tracesToLogsV2"]
    assert to_logs["datasourceUid"] == "loki"
    # OTLP access logs carry the trace id as structured metadata, not in the line: query the label
    assert to_logs["customQuery"] is True and "filterByTraceID" not in to_logs
    assert to_logs["query"] == '{$${__tags}} | trace_id="$${__trace.traceId}"'
    assert ds["loki"]["jsonData"]["derivedFields"][0]["datasourceUid"] == "tempo"
    # the loki role's default is auth_enabled=false: the datasource sends no tenant header
    assert "httpHeaderName1" not in ds["loki"]["jsonData"] and "secureJsonData" not in ds["loki"]
    for source in ds.values():
        for key, value in source.get("jsonData", {}).items():
            if isinstance(value, dict) and "datasourceUid" in value:
                assert value["datasourceUid"] in ds, (source["uid"], key)


def test_tutorials_tempo_port_3100_is_refused(tmp_path):
    out = tmp_path / "r"
    proc = render_stack(out, {"grafana_tempo_url": "http://tempo.monitoring:3100"}, check=False)
    assert_rejected_before_writing(proc, out, "grafana_tempo_url", "3200")


def test_admin_credentials_come_from_the_managed_secret_without_a_rendered_password(tmp_path):
    pw_file = tmp_path / "pw" / "grafana-admin-password"
    proc = render_stack(tmp_path / "r", {"grafana_admin_password_file": str(pw_file)})
    values = grafana_values(tmp_path / "r")
    assert values["admin"] == {"existingSecret": "grafana-admin", "userKey": "admin-user", "passwordKey": "admin-password"}
    assert "adminPassword" not in values and "adminUser" not in values
    secret = load_rendered(tmp_path / "r", "manifests/monitoring/Secret-grafana-admin.yaml")
    assert set(secret["data"]) == {"admin-user"}
    assert base64.b64decode(secret["data"]["admin-user"]).decode() == "admin"
    assert "agentgateway.observability/admin-password" in secret["metadata"]["annotations"]
    assert "stringData" not in secret
    assert not pw_file.exists(), "render mode must not generate a password unless asked"
    assert "admin-password" in proc.stdout  # the hint says where the password goes


def test_rendered_password_is_generated_once_kept_private_and_never_printed(tmp_path):
    pw_file = tmp_path / "pw" / "grafana-admin-password"
    variables = {"grafana_admin_password_file": str(pw_file), "grafana_render_admin_password": True}
    first = render_stack(tmp_path / "r", variables, args=["--diff", "-v"])
    password = pw_file.read_text().strip()
    assert len(password) == 32 and password.isalnum()
    assert stat.S_IMODE(os.stat(pw_file).st_mode) == 0o600
    secret = load_rendered(tmp_path / "r", "manifests/monitoring/Secret-grafana-admin.yaml")
    assert base64.b64decode(secret["data"]["admin-password"]).decode() == password
    assert password not in first.stdout
    assert base64.b64encode(password.encode()).decode() not in first.stdout
    for rel, content in snapshot(tmp_path / "r").items():
        if rel.startswith("helm/"):
            assert password.encode() not in content, rel
    second = render_stack(tmp_path / "r", variables)
    assert pw_file.read_text().strip() == password, "the password must stay the same across runs"
    assert load_rendered(tmp_path / "r", "manifests/monitoring/Secret-grafana-admin.yaml") == secret
    assert password not in second.stdout


def test_an_existing_secret_is_used_and_none_is_created(tmp_path):
    render_stack(tmp_path, {"grafana_admin_existing_secret": "my-grafana-admin",
                            "grafana_admin_password_key": "password"})
    values = grafana_values(tmp_path)
    assert values["admin"] == {"existingSecret": "my-grafana-admin", "userKey": "admin-user", "passwordKey": "password"}
    assert not [p for p in snapshot(tmp_path) if "Secret-" in p]


@pytest.mark.parametrize(
    "extra_values",
    [{"adminPassword": "admin"}, {"env": {"GF_SECURITY_ADMIN_PASSWORD": "admin"}},
     {"grafana.ini": {"security": {"admin_password": "admin"}}}],
    ids=["adminPassword", "env", "grafana.ini"],
)
def test_a_fixed_admin_password_is_refused(tmp_path, extra_values):
    out = tmp_path / "r"
    proc = render_stack(out, {"grafana_extra_values": extra_values}, check=False)
    assert_rejected_before_writing(proc, out, "grafana_extra_values", "grafana_admin_existing_secret")


def test_dashboards_are_provisioned_from_configmaps_without_internet(stack_render):
    values = grafana_values(stack_render)
    sidecar = values["sidecar"]["dashboards"]
    assert sidecar["enabled"] is True
    files = sorted(DASHBOARD_DIR.glob("*.json"))
    assert len(files) >= 2
    for path in files:
        cm = load_rendered(stack_render, "manifests/monitoring/ConfigMap-grafana-dashboard-%s.yaml" % path.stem)
        assert cm["metadata"]["labels"][sidecar["label"]] == sidecar["labelValue"] == "1"
        assert cm["metadata"]["annotations"][sidecar["folderAnnotation"]] == "AgentGateway"
        assert cm["data"] == {path.name: path.read_text(encoding="utf-8").rstrip("\n")}
    # any chart `dashboards` entry adds the curl init container that downloads from grafana.com
    assert "dashboards" not in values and "dashboardProviders" not in values
    text = list(keys_and_strings(values))
    assert "gnetId" not in text
    assert not any("grafana.com" in s for s in text)


def test_grafana_com_import_is_opt_in(tmp_path):
    render_stack(tmp_path, {"grafana_gnet_dashboards": [{"name": "node-exporter", "gnet_id": 1860, "revision": 37}]})
    values = grafana_values(tmp_path)
    assert values["dashboards"] == {"grafana-com": {"node-exporter": {"gnetId": 1860, "revision": 37,
                                                                      "datasource": "Prometheus"}}}
    provider = values["dashboardProviders"]["dashboardproviders.yaml"]["providers"][0]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/grafana-com"


def test_kind_and_production_service_and_storage(stack_render, tmp_path):
    values = grafana_values(stack_render)
    assert values["service"] == {"type": "NodePort", "nodePort": 30080, "port": 80, "targetPort": 3000}
    assert values["persistence"] == {"enabled": False}
    assert values["deploymentStrategy"] == {"type": "RollingUpdate"}
    render_stack(tmp_path, {"agw_obs_profile": "production"})
    values = grafana_values(tmp_path)
    assert values["service"] == {"type": "ClusterIP", "port": 80, "targetPort": 3000}
    assert values["persistence"] == {"enabled": True, "size": "10Gi"}
    # a ReadWriteOnce volume cannot move with a rolling update to another node
    assert values["deploymentStrategy"] == {"type": "Recreate"}


def test_image_registry_mirror_reaches_every_chart(tmp_path):
    mirror = "registry.example.internal:5000/mirror"
    render_stack(tmp_path, {"agw_obs_image_registry": mirror, "agw_obs_loki_enabled": True})
    for name in ("grafana", "tempo", "loki"):
        values = load_rendered(tmp_path, "helm/monitoring/%s.yaml" % name)["values"]
        assert values["global"]["imageRegistry"] == mirror, name
        text = yaml.safe_dump(values)
        assert "docker.io" not in text and "quay.io" not in text, name
    values = grafana_values(tmp_path)
    # the images the chart adds for dashboards and volumes, besides Grafana and its sidecar
    assert values["sidecar"]["image"]["repository"] == "kiwigrid/k8s-sidecar"
    assert values["downloadDashboardsImage"]["repository"] == "curlimages/curl"
    assert values["initChownData"]["image"]["repository"] == "library/busybox"
    assert values["testFramework"]["enabled"] is False


@pytest.mark.parametrize("profile", ["kind", "production"])
def test_rendered_manifests_pass_kubernetes_validate_strict(tmp_path, profile):
    render_stack(tmp_path, {"agw_obs_profile": profile, "agw_obs_loki_enabled": True,
                            "grafana_render_admin_password": True,
                            "grafana_admin_password_file": str(tmp_path / "pw")})
    manifests = sorted(str(p) for p in (tmp_path / "manifests").rglob("*.yaml"))
    assert len(manifests) >= (4 if profile == "kind" else 3)
    proc = subprocess.run([KUBERNETES_VALIDATE, "--strict", "--quiet"] + manifests,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_kubernetes_validate_strict_rejects_an_unknown_field(tmp_path):
    """Guard for the guard: strict validation refuses a field Kubernetes does not know."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x", "namespace": "y"},
                                   "spec": {"type": "NodePort", "ports": [{"port": 3200, "nodeport": 30200}]}}))
    proc = subprocess.run([KUBERNETES_VALIDATE, "--strict", "--quiet", str(bad)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode != 0
