"""`site.yml` in render mode: the layout, the prometheus values, and the wiring only a play has.

What the files hold is read from the session's shared render of site.yml with the defaults
(support.session: ansible-playbook, the real end-to-end path, once per session). A variation (the
production profile, one setting changed) is planned in-process with the roles' own files and
Ansible's own templating (support.planner), which renders byte for byte what site.yml renders
(test_resources.py::test_the_planned_render_is_what_site_yml_writes proves it for a whole site, the
run below that changes one setting for that variation). What only a play does runs through ansible-playbook, on
copies of the shared render: a render that changes nothing rewrites nothing; a relative render
directory; tags; a changed setting rewriting only its file; --check --diff; cleanup.yml listing,
removing and running again.
Bad input is refused before any write: unit-tested rule by rule (tests/unit/plugins/plugin_utils/
test_settings.py, test_plan_checks.py), end to end in test_site_bad_input.py.
"""

from __future__ import annotations

import concurrent.futures
import json
import pathlib
import re
import shutil

import pytest
import yaml

from support import planner
from support.fixtures import REPO, load_rendered, render_playbook, run_playbook, snapshot
from support.schemas import chart_values_errors

PROMETHEUS = "helm/monitoring/prometheus.yaml"
TEMPO = "helm/monitoring/tempo.yaml"


def recap(output):
    match = re.search(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", output)
    assert match, output[-3000:]
    return {"ok": int(match.group(1)), "changed": int(match.group(2)), "failed": int(match.group(4))}


def changed_tasks(output):
    """The names of the tasks that reported a change (for the failure messages)."""
    names, task = [], None
    for line in output.splitlines():
        if line.startswith("TASK ["):
            task = line[len("TASK ["):line.rindex("]")]
        elif line.startswith("changed: ") and task:
            names.append(task)
    return names


def files_and_times(directory):
    """{relative path: (bytes, mtime in ns)} of every file under ``directory``: a rewrite changes the time."""
    return {path: (data, (pathlib.Path(directory) / path).stat().st_mtime_ns)
            for path, data in snapshot(directory).items()}


def changed_between(before, after):
    return {path for path in set(before) | set(after) if before.get(path) != after.get(path)}


def test_render_writes_the_layout(rendered_site):
    files = set(snapshot(rendered_site))
    assert {"index.yaml", PROMETHEUS} <= files
    index = load_rendered(rendered_site, "index.yaml")
    entry = next(e for e in index["entries"] if e["role"] == "prometheus")
    assert entry == {
        "role": "prometheus",
        "type": "helm_release",
        "release": "prometheus",
        "namespace": "monitoring",
        "path": PROMETHEUS,
        "chart": {
            "repo": "https://prometheus-community.github.io/helm-charts",
            "name": "prometheus",
            "version": "29.27.0",
        },
    }
    release = load_rendered(rendered_site, PROMETHEUS)
    assert set(release) == {"release", "namespace", "chart", "values"}
    assert release["chart"] == entry["chart"]
    # every entry of the index points at a file that exists, and every file is in the index
    indexed = {e["path"] for e in index["entries"] if "path" in e}
    assert indexed == files - {"index.yaml"}


def rerender_with_a_relative_dir_tags_and_check_mode(workdir):
    """``workdir``/out holds the site's default render.

    1. site.yml again, with a render directory relative to the current directory: nothing changes
       and no file is rewritten (the modification times stay), nothing is written elsewhere;
    2. ``--tags prometheus --check --diff`` with a Prometheus and a Tempo setting changed: only
       Prometheus is planned and deployed, its diff shown, not Tempo's; nothing is written;
    3. the whole site with Tempo's setting changed: only Tempo's file is rewritten (as planned
       in-process), the diff shown, every other file left as it was.
    """
    out = workdir / "out"
    before = files_and_times(out)

    def site(extra_vars=None, args=()):
        variables = {"agw_obs_render_dir": "out"}
        variables.update(extra_vars or {})
        return run_playbook(REPO / "site.yml", variables, args=args, cwd=workdir)

    again = site()
    assert recap(again.stdout)["changed"] == 0, changed_tasks(again.stdout)
    assert files_and_times(out) == before
    assert sorted(p.name for p in workdir.iterdir()) == ["out"] and not (REPO / "out").exists()

    checked = site({"prometheus_retention": "7d", "tempo_retention": "48h"},
                   args=["--tags", "prometheus", "--check", "--diff"])
    assert recap(checked.stdout)["changed"] == 1, changed_tasks(checked.stdout)
    assert re.findall(r"agw_obs : Check the plan, then render or apply ([a-z_, ]+)\]", checked.stdout) == ["prometheus"]
    assert "+++ after: %s" % PROMETHEUS in checked.stdout and "-    retention: 2d\n+    retention: 7d" in checked.stdout
    assert "after: %s" % TEMPO not in checked.stdout
    assert files_and_times(out) == before

    tempo = {"tempo_retention": "48h"}
    changed = site(tempo, args=["--diff"])
    assert recap(changed.stdout)["changed"] == 1, changed_tasks(changed.stdout)
    assert "+++ after: %s" % TEMPO in changed.stdout and "-    retention: 24h\n+    retention: 48h" in changed.stdout
    after = files_and_times(out)
    assert changed_between(before, after) == {TEMPO}
    assert after[TEMPO][0].decode("utf-8") == planner.documents(tempo, roles=["tempo"])[TEMPO]


def clean_up(out, site_files):
    """``out`` holds the site's default render and a file of the team's own. cleanup.yml with
    ``--check`` lists exactly the site's files and removes nothing; cleanup.yml removes them all,
    prunes the empty folders and keeps the team's file; run again, it changes nothing."""
    before = files_and_times(out)
    assert set(before) == site_files | {"NOTES.md"}
    listing = render_playbook(REPO / "playbooks" / "cleanup.yml", out, args=["--check"])
    assert files_and_times(out) == before
    listed = set(re.findall(r"\"(manifests/[^\"]+|helm/[^\"]+|index\.yaml)\"", listing.stdout))
    assert listed == site_files, sorted(listed ^ site_files)
    removal = render_playbook(REPO / "playbooks" / "cleanup.yml", out)
    assert recap(removal.stdout)["changed"] > 0
    assert set(snapshot(out)) == {"NOTES.md"}
    assert not any(p.is_dir() for p in out.iterdir()), "empty folders are pruned"
    second = render_playbook(REPO / "playbooks" / "cleanup.yml", out)
    assert recap(second.stdout)["changed"] == 0, changed_tasks(second.stdout)
    assert set(snapshot(out)) == {"NOTES.md"}


def test_rerender_relative_dir_tags_check_mode_and_cleanup(rendered_site, tmp_path):
    """The play's own wiring, in six runs of ansible-playbook on copies of the shared default render
    (what site.yml wrote for the defaults): a second render, a relative render directory, tags and
    --check --diff (rerender_with_a_relative_dir_tags_and_check_mode), and cleanup.yml (clean_up).
    The two chains work on copies of their own and run side by side: ansible-playbook mostly waits
    for its task workers, so the pair takes little more than the longer chain."""
    rendered = {e["path"] for e in load_rendered(rendered_site, "index.yaml")["entries"] if e.get("path")}
    site_files = set(snapshot(rendered_site))
    assert rendered | {"index.yaml"} == site_files
    shutil.copytree(rendered_site, tmp_path / "rerender" / "out")
    shutil.copytree(rendered_site, tmp_path / "cleanup")
    (tmp_path / "cleanup" / "NOTES.md").write_text("the team's own file\n", encoding="utf-8")
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        cleanup = pool.submit(clean_up, tmp_path / "cleanup", site_files)
        rerender_with_a_relative_dir_tags_and_check_mode(tmp_path / "rerender")
        cleanup.result()


def planned_values(settings):
    """The prometheus release's values site.yml would render for ``settings`` (planned in-process)."""
    return planner.objects(settings, roles=["prometheus"])[PROMETHEUS]["values"]


@pytest.mark.parametrize("profile", ["kind", "production"])
def test_prometheus_values_pass_the_chart_schema(prometheus_values, schemas_dir, profile):
    values = prometheus_values if profile == "kind" else planned_values({"agw_obs_profile": profile})
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


def test_production_profile():
    server = planned_values({"agw_obs_profile": "production", "prometheus_storage_class": "fast-ssd"})["server"]
    assert server["service"] == {"type": "ClusterIP", "servicePort": 80}
    assert server["persistentVolume"] == {"enabled": True, "size": "50Gi", "storageClass": "fast-ssd"}
    assert server["retention"] == "15d"
    assert server["resources"]["requests"]["memory"] == "2Gi"


def test_image_registry_mirror_reaches_every_image():
    values = planned_values({"agw_obs_image_registry": "registry.example.internal:5000/mirror"})
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


def test_the_demo_models_are_priced_so_cost_metrics_exist(rendered_site):
    """The mock serves, and the traffic role asks for, models the example price catalog knows:
    otherwise agentgateway_gen_ai_client_cost_usd_total never appears and the cost dashboard is empty."""
    params = load_rendered(
        rendered_site, "manifests/agentgateway-system/AgentgatewayParameters-agentgateway-proxy-observability.yaml")
    priced = set()
    for catalog in params["spec"]["rawConfig"]["config"]["modelCatalog"]:
        priced |= set(catalog["inline"]["providers"]["openai"]["models"])
    defaults = {}
    for role in ("mock_backend", "traffic"):
        defaults.update(yaml.safe_load((REPO / "roles" / role / "defaults" / "main.yml").read_text()))
    assert set(defaults["mock_backend_models"]) <= priced
    assert set(defaults["traffic_models"]) <= priced
