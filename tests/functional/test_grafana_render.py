"""The grafana role's files: datasources, admin Secret, offline dashboards, images, schemas.

Read-only checks read the session's site renders (support.session: default, loki, production).
Variations of one setting (an existing Secret, grafana.com imports, an image mirror, production with
Loki) are planned in-process (support.planner: the roles' own files and filters, proven byte-identical
to site.yml's render by tests/functional/test_render_site.py). What only a play does, the deploy
path reading or generating the admin password into grafana_admin_password_file, runs for real:
ansible-playbook with the role on its own. kubernetes-validate --strict is the real validator.
A fixed admin password or the tutorial's Tempo port 3100 is refused by the role's settings check:
tests/unit/plugins/plugin_utils/test_settings.py (grafana-tempo-port, admin-password*).
"""

from __future__ import annotations

import base64
import json
import os
import pathlib
import re
import stat
import subprocess
import sys
import urllib.parse

import yaml

from support import planner
from support.dashboards import (
    DASHBOARD_DIR,
    all_values,
    constant_values,
    dashboard_queries,
    load_dashboards,
    rendered_dashboards,
    substitute,
)
from support.fixtures import load_rendered, run_playbook, snapshot
from support.session import EXISTING

OLD_REPO = "https://grafana.github.io/helm-charts"
NEW_REPO = "https://grafana-community.github.io/helm-charts"
KUBERNETES_VALIDATE = str(pathlib.Path(sys.executable).parent / "kubernetes-validate")
STACK_ROLES = ("prometheus", "tempo", "loki", "grafana")
SECRET = "manifests/monitoring/Secret-grafana-admin.yaml"


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


def test_admin_credentials_come_from_the_managed_secret_without_a_rendered_password(stack_render):
    values = grafana_values(stack_render)
    assert values["admin"] == {"existingSecret": "grafana-admin", "userKey": "admin-user",
                               "passwordKey": "admin-password"}
    assert "adminPassword" not in values and "adminUser" not in values
    secret = load_rendered(stack_render, SECRET)
    assert set(secret["data"]) == {"admin-user"}
    assert base64.b64decode(secret["data"]["admin-user"]).decode() == "admin"
    assert "agentgateway.observability/admin-password" in secret["metadata"]["annotations"]
    assert "stringData" not in secret


# ---- the admin password, end to end: only the deploy path reads or generates it -----------------

def words(text):
    """``text`` with every run of white space made one space (the callback wraps long messages)."""
    return " ".join(text.split())


ROLE_ALONE = """\
- name: Role grafana on its own (plan, deploy, where the credentials are)
  hosts: localhost
  gather_facts: false
  roles:
    - role: agentgateway.observability.grafana
"""


def test_rendered_password_is_generated_once_kept_private_and_never_printed(tmp_path):
    """ansible-playbook with role grafana alone, three times into one folder: without
    grafana_render_admin_password no password is written and no file created; with it, the deploy
    path generates the password once into grafana_admin_password_file (0600), puts it only into the
    Secret, never prints it (not in the --diff -v of the Secret it changes), and keeps it on the next run."""
    playbook = tmp_path / "grafana.yml"
    playbook.write_text(ROLE_ALONE, encoding="utf-8")
    render, pw_file = tmp_path / "r", tmp_path / "pw" / "grafana-admin-password"
    variables = {"agw_obs_render_dir": str(render), "grafana_admin_password_file": str(pw_file)}

    unasked = run_playbook(playbook, variables)
    assert not pw_file.exists(), "render mode must not generate a password unless asked"
    assert set(load_rendered(render, SECRET)["data"]) == {"admin-user"}
    assert "has no admin-password key" in words(unasked.stdout)  # the hint says where the password goes

    variables["grafana_render_admin_password"] = True
    first = run_playbook(playbook, variables, args=["--diff", "-v"])
    password = pw_file.read_text().strip()
    assert len(password) == 32 and password.isalnum()
    assert stat.S_IMODE(os.stat(pw_file).st_mode) == 0o600
    secret = load_rendered(render, SECRET)
    assert base64.b64decode(secret["data"]["admin-password"]).decode() == password
    assert "agentgateway.observability/admin-password" not in (secret["metadata"].get("annotations") or {})
    # the diff of the Secret is printed, its values hidden
    assert "+++ after: " + SECRET in first.stdout and "admin-password: (hidden), changed" in first.stdout
    assert password not in first.stdout
    assert base64.b64encode(password.encode()).decode() not in first.stdout
    assert "and in %s on this controller" % pw_file in words(first.stdout)
    for rel, content in snapshot(render).items():
        if rel != SECRET:
            assert password.encode() not in content, rel

    second = run_playbook(playbook, variables, args=["--diff"])
    assert pw_file.read_text().strip() == password, "the password must stay the same across runs"
    assert load_rendered(render, SECRET) == secret
    assert password not in second.stdout
    assert "changed=0" in second.stdout, second.stdout[-2000:]


def test_an_existing_secret_is_used_and_none_is_created():
    settings = {"grafana_admin_existing_secret": "my-grafana-admin", "grafana_admin_password_key": "password"}
    documents = planner.objects(settings, roles=["grafana"])
    values = documents["helm/monitoring/grafana.yaml"]["values"]
    assert values["admin"] == {"existingSecret": "my-grafana-admin", "userKey": "admin-user", "passwordKey": "password"}
    assert not [p for p in documents if "Secret-" in p]
    assert planner.plan("grafana", dict(settings, grafana_render_admin_password=True))["generated_secrets"] == []


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


# ---- the dashboards select the gateway's scrape job, as the rules do ---------------------------------
_JOB_MATCHER = re.compile(r'\bjob\s*(=~|!=|!~|=)\s*"([^"]*)"')


def assert_dashboards_select(boards, job):
    """Every dashboard's job constant is ``job``, and after substitution every job matcher of every query
    (panels and variables) is job="<job>", one for each job="$job" of the shipped file."""
    shipped = load_dashboards()
    assert sorted(boards) == sorted(shipped)
    for name, board in boards.items():
        assert constant_values(board) == {"job": job}, name
        values = all_values(board)
        texts = dashboard_queries(board)
        assert texts == dashboard_queries(shipped[name]), "%s: only the job constant may differ" % name
        for text in texts:
            promql = substitute(text, values)
            assert _JOB_MATCHER.findall(promql) == [("=", job)] * text.count('job="$job"'), (name, promql)


def test_the_dashboards_follow_the_gateway_scrape_job(site_render):
    """The site rendered with -e prometheus_gateway_job_name=gw-pods (session variant, shared with
    test_demo_panels.py, where the same dashboards answer on a Prometheus scraping job gw-pods): the dashboard
    ConfigMaps carry job constant gw-pods (grafana_gateway_job_name's default), so every query selects
    job="gw-pods", the job the rules in the same render select."""
    render = site_render("gw-pods")
    assert_dashboards_select(rendered_dashboards(render), "gw-pods")
    values = load_rendered(render, "helm/monitoring/prometheus.yaml")["values"]
    rules = yaml.safe_dump(values["serverFiles"]["recording_rules.yml"])
    assert 'job="gw-pods"' in rules and 'job="agentgateway"' not in rules


def test_the_default_dashboards_select_the_default_job(stack_render):
    assert_dashboards_select(rendered_dashboards(stack_render), "agentgateway")


def test_the_job_of_the_dashboards_can_be_set_on_its_own_and_is_checked():
    documents = planner.objects({"grafana_gateway_job_name": "agw_pods"}, roles=["grafana"])
    boards = {}
    for rel, doc in documents.items():
        if rel.startswith("manifests/") and doc.get("kind") == "ConfigMap" and "grafana_dashboard" in doc[
                "metadata"]["labels"]:
            boards.update({key: json.loads(text) for key, text in doc["data"].items()})
    assert_dashboards_select(boards, "agw_pods")
    problems = planner.problems("grafana", {"grafana_gateway_job_name": "gw pods"})
    assert any(p.startswith("grafana_gateway_job_name=gw pods is not a valid job name") for p in problems), problems
    assert planner.problems("grafana", {"prometheus_gateway_job_name": "gw-pods"}) == []


def test_existing_stack_dashboards_select_the_job_its_pod_monitor_sets():
    part = planner.plan("existing_stack", dict(EXISTING, prometheus_gateway_job_name="gw-pods"))
    objects = part["after_releases"]
    monitor = next(o for o in objects if o["kind"] == "PodMonitor")
    relabel = monitor["spec"]["podMetricsEndpoints"][0]["relabelings"]
    assert {"action": "replace", "targetLabel": "job", "replacement": "gw-pods"} in relabel
    boards = {}
    for obj in objects:
        if obj["kind"] == "ConfigMap":
            boards.update({key: json.loads(text) for key, text in obj["data"].items() if key.endswith(".json")})
    assert_dashboards_select(boards, "gw-pods")


def test_grafana_com_import_is_opt_in():
    values = planner.objects({"grafana_gnet_dashboards": [{"name": "node-exporter", "gnet_id": 1860, "revision": 37}]},
                             roles=["grafana"])["helm/monitoring/grafana.yaml"]["values"]
    assert values["dashboards"] == {"grafana-com": {"node-exporter": {"gnetId": 1860, "revision": 37,
                                                                      "datasource": "Prometheus"}}}
    provider = values["dashboardProviders"]["dashboardproviders.yaml"]["providers"][0]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/grafana-com"


def test_kind_and_production_service_and_storage(stack_render, site_render):
    values = grafana_values(stack_render)
    assert values["service"] == {"type": "NodePort", "nodePort": 30080, "port": 80, "targetPort": 3000}
    assert values["persistence"] == {"enabled": False}
    assert values["deploymentStrategy"] == {"type": "RollingUpdate"}
    values = grafana_values(site_render("production"))
    assert values["service"] == {"type": "ClusterIP", "port": 80, "targetPort": 3000}
    assert values["persistence"] == {"enabled": True, "size": "10Gi"}
    # a ReadWriteOnce volume cannot move with a rolling update to another node
    assert values["deploymentStrategy"] == {"type": "Recreate"}


def test_image_registry_mirror_reaches_every_chart():
    mirror = "registry.example.internal:5000/mirror"
    documents = planner.objects({"agw_obs_image_registry": mirror, "agw_obs_loki_enabled": True},
                                roles=["grafana", "tempo", "loki"])
    for name in ("grafana", "tempo", "loki"):
        values = documents["helm/monitoring/%s.yaml" % name]["values"]
        assert values["global"]["imageRegistry"] == mirror, name
        text = yaml.safe_dump(values)
        assert "docker.io" not in text and "quay.io" not in text, name
    values = documents["helm/monitoring/grafana.yaml"]["values"]
    # the images the chart adds for dashboards and volumes, besides Grafana and its sidecar
    assert values["sidecar"]["image"]["repository"] == "kiwigrid/k8s-sidecar"
    assert values["downloadDashboardsImage"]["repository"] == "curlimages/curl"
    assert values["initChownData"]["image"]["repository"] == "library/busybox"
    assert values["testFramework"]["enabled"] is False


def test_rendered_manifests_pass_kubernetes_validate_strict(stack_render_loki, tmp_path):
    """The stack roles' manifests, kind profile (the site render with Loki) and production with Loki
    (planned in-process, written out), in one kubernetes-validate --strict run."""
    index = load_rendered(stack_render_loki, "index.yaml")["entries"]
    kind = [str(stack_render_loki / e["path"]) for e in index if e["role"] in STACK_ROLES and e["type"] == "manifest"]
    production = []
    documents = planner.documents({"agw_obs_profile": "production", "agw_obs_loki_enabled": True}, roles=STACK_ROLES)
    for rel, text in documents.items():
        if rel.startswith("manifests/"):
            path = tmp_path / "production" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            production.append(str(path))
    assert len(kind) >= 4 and len(production) >= 3, (kind, production)
    assert any(p.endswith("/Secret-grafana-admin.yaml") for p in kind + production)
    proc = subprocess.run([KUBERNETES_VALIDATE, "--strict", "--quiet"] + kind + production,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_kubernetes_validate_strict_rejects_an_unknown_field(tmp_path):
    """Guard for the guard: strict validation refuses a field Kubernetes does not know."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x", "namespace": "y"},
                                   "spec": {"type": "NodePort", "ports": [{"port": 3200, "nodeport": 30200}]}}))
    proc = subprocess.run([KUBERNETES_VALIDATE, "--strict", "--quiet", str(bad)], capture_output=True, text=True,
                          timeout=120, check=False)
    # the validator's own verdict on that field, not just any failure (a missing validator fails too)
    assert proc.returncode == 1
    assert "did not validate for resource service/x" in proc.stdout + proc.stderr
    assert "'nodeport' was unexpected" in proc.stdout + proc.stderr
