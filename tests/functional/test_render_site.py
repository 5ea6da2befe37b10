"""`site.yml` in render mode: the layout, idempotency, and bad input failing before any write."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from support.fixtures import (REPO, assert_rejected_before_writing, load_rendered, render_playbook, render_site, run_playbook,
                              snapshot)
from support.schemas import chart_values_errors


def recap(output):
    match = re.search(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", output)
    assert match, output[-3000:]
    return {"ok": int(match.group(1)), "changed": int(match.group(2)), "failed": int(match.group(4))}


def test_render_writes_the_layout(rendered_site):
    files = set(snapshot(rendered_site))
    assert {"index.yaml", "helm/monitoring/prometheus.yaml"} <= files
    index = load_rendered(rendered_site, "index.yaml")
    entry = next(e for e in index["entries"] if e["role"] == "prometheus")
    assert entry == {
        "role": "prometheus",
        "type": "helm_release",
        "release": "prometheus",
        "namespace": "monitoring",
        "path": "helm/monitoring/prometheus.yaml",
        "chart": {
            "repo": "https://prometheus-community.github.io/helm-charts",
            "name": "prometheus",
            "version": "29.27.0",
        },
    }
    release = load_rendered(rendered_site, "helm/monitoring/prometheus.yaml")
    assert set(release) == {"release", "namespace", "chart", "values"}
    assert release["chart"] == entry["chart"]
    # every entry of the index points at a file that exists, and every file is in the index
    indexed = {e["path"] for e in index["entries"] if "path" in e}
    assert indexed == files - {"index.yaml"}


def test_second_render_is_byte_identical_and_reports_no_change(tmp_path):
    first = render_site(tmp_path)
    assert recap(first.stdout)["changed"] >= 1
    before = snapshot(tmp_path)
    second = render_site(tmp_path)
    assert recap(second.stdout)["changed"] == 0, second.stdout[-3000:]
    assert snapshot(tmp_path) == before


def test_check_mode_writes_nothing_and_diff_shows_the_change(tmp_path):
    proc = render_site(tmp_path, args=["--check", "--diff"])
    assert recap(proc.stdout)["changed"] >= 1
    assert snapshot(tmp_path) == {}
    assert "helm/monitoring/prometheus.yaml" in proc.stdout


def test_a_changed_setting_rewrites_only_that_file(tmp_path):
    render_site(tmp_path)
    before = snapshot(tmp_path)
    proc = render_site(tmp_path, {"prometheus_retention": "7d"}, args=["--diff"])
    assert recap(proc.stdout)["changed"] == 1
    after = snapshot(tmp_path)
    changed = {k for k in after if after[k] != before.get(k)}
    assert changed == {"helm/monitoring/prometheus.yaml"}
    assert "+    retention: 7d" in proc.stdout


def test_cleanup_in_render_mode_removes_exactly_what_the_site_rendered(tmp_path):
    """playbooks/cleanup.yml on a render directory: the files it removes are the files the site wrote."""
    (tmp_path / "NOTES.md").write_text("the team's own file\n", encoding="utf-8")
    before = set(snapshot(tmp_path))
    render_site(tmp_path)
    created = set(snapshot(tmp_path)) - before
    assert len(created) > 15 and "index.yaml" in created
    rendered = {e["path"] for e in load_rendered(tmp_path, "index.yaml")["entries"] if e.get("path")}
    assert rendered | {"index.yaml"} == created
    # --check names what would go, per role, and removes nothing
    checked = render_playbook(REPO / "playbooks" / "cleanup.yml", tmp_path, args=["--check"])
    assert set(snapshot(tmp_path)) == before | created
    listed = set(re.findall(r"\"(manifests/[^\"]+|helm/[^\"]+|index\.yaml)\"", checked.stdout))
    # (index.yaml goes with the last entry; in check mode no role rewrites it, so each still sees the others')
    assert listed == created - {"index.yaml"}, sorted(listed ^ created)
    proc = render_playbook(REPO / "playbooks" / "cleanup.yml", tmp_path)
    removed = created - set(snapshot(tmp_path))
    assert removed == created
    assert set(snapshot(tmp_path)) == before == {"NOTES.md"}
    assert not any(p.is_dir() for p in tmp_path.iterdir()), "empty folders are pruned"
    again = render_playbook(REPO / "playbooks" / "cleanup.yml", tmp_path)
    assert recap(again.stdout)["changed"] == 0 and recap(proc.stdout)["changed"] > 0


@pytest.mark.parametrize(
    "extra_vars, names",
    [
        ({"prometheus_node_port": 80}, ["prometheus_node_port", "30000-32767"]),
        ({"agw_obs_profile": "staging"}, ["agw_obs_profile", "kind, production"]),
        ({"prometheus_retention": "15 days"}, ["prometheus_retention", "Prometheus duration"]),
        ({"prometheus_alert_error_ratio": 5}, ["prometheus_alert_error_ratio", "(0, 1]"]),
        ({"prometheus_server_image_repository": "quay.io/prometheus/prometheus:v3"},
         ["prometheus_server_image_repository", "without scheme or tag"]),
        ({"agw_obs_monitoring_namespace": "Monitoring"}, ["agw_obs_monitoring_namespace", "Kubernetes name"]),
        ({"agw_obs_wait_timeout": "ten minutes"}, ["agw_obs_wait_timeout", "duration"]),
        ({"prometheus_gateway_pod_labels": {}}, ["prometheus_gateway_pod_labels"]),
        # later roles' checks also run before the first role writes anything
        ({"tempo_retention": "7d"}, ["tempo_retention", "168h"]),
        ({"grafana_node_port": 3000}, ["grafana_node_port"]),
        ({"gateway_observability_tracing_random_sampling": 1.5},
         ["gateway_observability_tracing_random_sampling", "outside [0, 1]"]),
        ({"agw_obs_loki_enabled": True, "loki_retention_period": "a month"}, ["loki_retention_period"]),
        # a Gateway named like the controller's release would overwrite the controller's Deployment
        ({"agw_obs_gateway_name": "agentgateway"}, ["agw_obs_gateway_name", "agentgateway_release_name"]),
    ],
    ids=["node-port", "profile", "retention", "error-ratio", "image-tag", "namespace", "timeout", "selector",
         "tempo", "grafana", "gateway-sampling", "loki", "gateway-name"],
)
def test_bad_input_fails_before_anything_is_written(tmp_path, extra_vars, names):
    out = tmp_path / "r"
    assert_rejected_before_writing(render_site(out, extra_vars, check=False), out, *names)


def test_bad_input_leaves_an_earlier_render_untouched(tmp_path):
    render_site(tmp_path)
    before = snapshot(tmp_path)
    proc = render_site(tmp_path, {"prometheus_node_port": 80, "prometheus_retention": "7d"}, check=False)
    assert proc.returncode != 0
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("profile", ["kind", "production"])
def test_prometheus_values_pass_the_chart_schema(tmp_path, schemas_dir, profile):
    render_site(tmp_path, {"agw_obs_profile": profile})
    values = load_rendered(tmp_path, "helm/monitoring/prometheus.yaml")["values"]
    assert chart_values_errors(schemas_dir, "prometheus-29.27.0", values) == []


def test_the_schema_check_catches_a_wrong_type(schemas_dir, prometheus_values):
    """Guard for the guard: a scrape config as a list (not the string the chart wants) is refused."""
    values = json.loads(json.dumps(prometheus_values))
    values["extraScrapeConfigs"] = yaml.safe_load(values["extraScrapeConfigs"])
    assert chart_values_errors(schemas_dir, "prometheus-29.27.0", values)


def test_kind_profile_matches_the_tutorials_intent(prometheus_values):
    server = prometheus_values["server"]
    assert server["service"] == {"type": "NodePort", "nodePort": 30090, "servicePort": 80}
    assert server["persistentVolume"] == {"enabled": False}
    assert prometheus_values["alertmanager"]["enabled"] is False
    assert prometheus_values["kube-state-metrics"]["enabled"] is True
    # the chart's real sub-chart keys; the tutorial's nodeExporter/pushgateway keys are ignored by the chart
    assert prometheus_values["prometheus-node-exporter"]["enabled"] is False
    assert prometheus_values["prometheus-pushgateway"]["enabled"] is False
    assert "nodeExporter" not in prometheus_values and "pushgateway" not in prometheus_values
    assert "web.enable-remote-write-receiver" in server["extraFlags"]
    assert "web.enable-lifecycle" in server["extraFlags"]


def test_production_profile(tmp_path):
    render_site(tmp_path, {"agw_obs_profile": "production", "prometheus_storage_class": "fast-ssd"})
    server = load_rendered(tmp_path, "helm/monitoring/prometheus.yaml")["values"]["server"]
    assert server["service"] == {"type": "ClusterIP", "servicePort": 80}
    assert server["persistentVolume"] == {"enabled": True, "size": "50Gi", "storageClass": "fast-ssd"}
    assert server["retention"] == "15d"
    assert server["resources"]["requests"]["memory"] == "2Gi"


def test_image_registry_mirror_reaches_every_image(tmp_path):
    render_site(tmp_path, {"agw_obs_image_registry": "registry.example.internal:5000/mirror"})
    values = load_rendered(tmp_path, "helm/monitoring/prometheus.yaml")["values"]
    mirror = "registry.example.internal:5000/mirror/"
    assert values["server"]["image"]["repository"] == mirror + "prometheus/prometheus"
    assert values["configmapReload"]["prometheus"]["image"]["repository"].startswith(mirror)
    assert values["alertmanager"]["image"]["repository"].startswith(mirror)
    assert values["global"]["imageRegistry"] == "registry.example.internal:5000/mirror"
    text = yaml.safe_dump(values)
    assert "quay.io" not in text and "registry.k8s.io" not in text


def test_gateway_scrape_job_selects_pods_by_gateway_label_and_port(prometheus_values):
    jobs = yaml.safe_load(prometheus_values["extraScrapeConfigs"])
    job = jobs[0]
    assert job["job_name"] == "agentgateway"
    assert job["metrics_path"] == "/metrics"
    keep = {tuple(r["source_labels"]): r["regex"] for r in job["relabel_configs"] if r["action"] == "keep"}
    assert keep == {
        ("__meta_kubernetes_pod_label_gateway_networking_k8s_io_gateway_name",): "agentgateway-proxy",
        ("__meta_kubernetes_pod_container_port_number",): "15020",
    }
    assert {"action": "labelmap", "regex": "__meta_kubernetes_pod_label_(.+)"} in job["relabel_configs"]
    # the chart passes extraScrapeConfigs through tpl: no template braces may appear in it
    assert "{{" not in prometheus_values["extraScrapeConfigs"]


def test_relative_render_dir_is_taken_from_the_current_directory(tmp_path):
    run_playbook(REPO / "site.yml", {"agw_obs_render_dir": "out"}, cwd=tmp_path)
    assert (tmp_path / "out" / "helm" / "monitoring" / "prometheus.yaml").is_file()


def test_the_demo_models_are_priced_so_cost_metrics_exist(rendered_site):
    """The mock serves, and the traffic role asks for, models the example price catalog knows:
    otherwise agentgateway_gen_ai_client_cost_usd_total never appears and the cost dashboard is empty."""
    params = load_rendered(rendered_site, "manifests/agentgateway-system/AgentgatewayParameters-agentgateway-proxy-observability.yaml")
    priced = set()
    for catalog in params["spec"]["rawConfig"]["config"]["modelCatalog"]:
        priced |= set(catalog["inline"]["providers"]["openai"]["models"])
    defaults = {}
    for role in ("mock_backend", "traffic"):
        defaults.update(yaml.safe_load((REPO / "roles" / role / "defaults" / "main.yml").read_text()))
    assert set(defaults["mock_backend_models"]) <= priced
    assert set(defaults["traffic_models"]) <= priced
