"""agw_obs_stack_mode=existing (bring your own monitoring), rendered with `make render`'s playbook.

- Nothing of our stack is installed; the PodMonitor and PrometheusRule pass the prometheus-operator
  v0.93.0 CRDs (strict: no unknown fields), every manifest passes kubernetes-validate --strict.
- The PrometheusRule holds byte for byte the rule groups the install mode puts in the prometheus
  chart values, and promtool checks and unit-tests them there too; a broken alert fails.
- The PodMonitor, translated the way the operator translates it (pkg/prometheus/promcfg.go
  generatePodMonitorConfig at v0.93.0, written out in ``operator_scrape_config`` below), keeps the
  gateway pod and drops the others on the real Prometheus 3.14, with static targets that carry the
  pods' meta labels. The operator itself does not run here.
- verify.yml with agw_obs_access=url passes against such a Prometheus (ansible-playbook, for real), and
  the user's Tempo it was not given is a skipped check with the reason. How the existing stack's
  Services are reached with the other access modes (its URLs, never the install roles' NodePorts) is
  tests/unit/plugins/plugin_utils/test_site_services.py.

The files are the session's site render for the existing stack (support.session, read-only). A
half-described stack is refused by the roles' settings checks and builders:
tests/unit/plugins/plugin_utils/test_settings.py and test_plan_checks.py.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import sys

import pytest
import yaml

from support.contract import ContractGrafana, ContractLoki, ContractTempo, GatewayStandIn
from support.exposition import GatewayMetricsTarget, answer_v141
from support.fixtures import REPO, load_rendered, render_playbook, snapshot
from support.prometheus import PrometheusServer
from support.schemas import crd_errors
from support.session import EXISTING
from support.stack import BACKEND_KEY, GRAFANA_PASSWORD, PRICES, LocalStack, dashboards

HERE = pathlib.Path(__file__).parent
RULES_TESTS = sorted((HERE / "promtool").glob("*_test.yml"))
KUBERNETES_VALIDATE = str(pathlib.Path(sys.executable).parent / "kubernetes-validate")

PODMONITOR = "manifests/monitoring/PodMonitor-agentgateway-proxy.yaml"
RULE = "manifests/monitoring/PrometheusRule-agentgateway-proxy-rules.yaml"


@pytest.fixture(scope="module")
def existing_render(site_render):
    """site.yml rendered with agw_obs_stack_mode=existing (support.session.EXISTING), read-only."""
    return site_render("existing")


def test_nothing_of_our_stack_is_installed(existing_render):
    index = load_rendered(existing_render, "index.yaml")
    releases = {e["release"] for e in index["entries"] if e["type"] == "helm_release"}
    assert not releases & {"prometheus", "tempo", "loki", "grafana"}, releases
    assert {e["role"] for e in index["entries"]} >= {"existing_stack", "gateway_observability"}
    files = set(snapshot(existing_render))
    assert {PODMONITOR, RULE} <= files
    dashboards = sorted(f for f in files if f.startswith("manifests/monitoring/ConfigMap-grafana-dashboard-"))
    assert len(dashboards) == 4, dashboards
    for path in dashboards:
        labels = load_rendered(existing_render, path)["metadata"]["labels"]
        assert labels["grafana_dashboard"] == "1"
    for uid in ("tempo", "loki"):
        cm = load_rendered(existing_render, "manifests/monitoring/ConfigMap-agentgateway-datasource-%s.yaml" % uid)
        assert cm["metadata"]["labels"]["grafana_datasource"] == "1"
        provisioning = yaml.safe_load(cm["data"]["agentgateway-%s.yaml" % uid])
        assert provisioning["apiVersion"] == 1
        assert [d["uid"] for d in provisioning["datasources"]] == [uid]


def test_the_monitors_carry_the_label_the_users_prometheus_selects_on(existing_render):
    for path in (PODMONITOR, RULE):
        assert load_rendered(existing_render, path)["metadata"]["labels"]["release"] == "kps"


def test_podmonitor_and_prometheusrule_pass_the_operator_crds_strictly(existing_render, schemas_dir):
    for path in (PODMONITOR, RULE):
        obj = load_rendered(existing_render, path)
        assert crd_errors(schemas_dir, obj) == [], path
    # guard for the guard: an unknown field is refused
    bad = load_rendered(existing_render, PODMONITOR)
    bad["spec"]["podMetricsEndpoints"][0]["prt"] = 15020
    assert crd_errors(schemas_dir, bad) != []


def test_every_manifest_passes_kubernetes_validate_strict(existing_render):
    manifests = sorted(str(p) for p in (existing_render / "manifests").rglob("*.yaml")
                       if not p.name.startswith(("PodMonitor-", "PrometheusRule-")))
    proc = subprocess.run([KUBERNETES_VALIDATE, "--strict", "--quiet"] + manifests,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_telemetry_goes_to_the_users_endpoints_with_reference_grants(existing_render):
    index = load_rendered(existing_render, "index.yaml")
    files = set(snapshot(existing_render))
    grants = {f.split("/")[1] for f in files if "/ReferenceGrant-" in f}
    assert grants == {"observability", "logging"}, grants
    policy = next(load_rendered(existing_render, e["path"]) for e in index["entries"]
                  if e.get("kind") == "AgentgatewayPolicy")
    text = yaml.safe_dump(policy)
    assert "otel-collector" in text and "loki-gateway" in text and "/otlp/v1/logs" in text


# ---- one source of rules -------------------------------------------------------------------------

def install_mode_groups(prometheus_values):
    return (prometheus_values["serverFiles"]["alerting_rules.yml"]["groups"]
            + prometheus_values["serverFiles"]["recording_rules.yml"]["groups"])


def _dump(groups):
    return yaml.safe_dump(groups, sort_keys=False, width=1000)


def test_the_rules_are_byte_for_byte_the_install_modes(existing_render, prometheus_values):
    groups = load_rendered(existing_render, RULE)["spec"]["groups"]
    assert _dump(groups) == _dump(install_mode_groups(prometheus_values))


def run_promtool_on_groups(promtool, groups, directory, check_rules=True):
    """promtool check (unless not ``check_rules``) + the project's unit tests, on rule files cut from the
    PrometheusRule's groups."""
    directory = pathlib.Path(directory)
    alerting = [g for g in groups if any("alert" in r for r in g["rules"])]
    recording = [g for g in groups if g not in alerting]
    for name, part in (("alerting_rules.yml", alerting), ("recording_rules.yml", recording)):
        (directory / name).write_text(yaml.safe_dump({"groups": part}, sort_keys=False), encoding="utf-8")
    for path in RULES_TESTS:
        shutil.copy(path, directory / path.name)
    check = subprocess.run([promtool, "check", "rules", "alerting_rules.yml", "recording_rules.yml"], cwd=directory,
                           capture_output=True, text=True, timeout=120, check=False) if check_rules else None
    test = subprocess.run([promtool, "test", "rules"] + [p.name for p in RULES_TESTS], cwd=directory,
                          capture_output=True, text=True, timeout=120, check=False)
    return check, test


def test_promtool_checks_and_unit_tests_the_prometheusrule(existing_render, promtool, tmp_path):
    groups = load_rendered(existing_render, RULE)["spec"]["groups"]
    check, test = run_promtool_on_groups(promtool, groups, tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert test.returncode == 0, test.stdout + test.stderr


def test_a_broken_alert_in_the_prometheusrule_fails_the_unit_tests(existing_render, promtool, tmp_path):
    groups = load_rendered(existing_render, RULE)["spec"]["groups"]
    rule = next(r for g in groups for r in g["rules"] if r.get("alert") == "AgentgatewayHighErrorRatio")
    rule["expr"] = rule["expr"].replace("agentgateway_requests_total{", "agentgateway_requests_totl{")
    _check, test = run_promtool_on_groups(promtool, groups, tmp_path, check_rules=False)
    assert test.returncode != 0
    assert "AgentgatewayHighErrorRatio" in test.stdout + test.stderr


# ---- the PodMonitor's relabelling, translated as the operator does, on the real Prometheus ---------

def _snake(relabel):
    names = {"sourceLabels": "source_labels", "targetLabel": "target_label"}
    return {names.get(k, k): v for k, v in relabel.items()}


def _present(label):
    return ["__meta_kubernetes_pod_label_%s" % label, "__meta_kubernetes_pod_labelpresent_%s" % label]


def _sanitize(name):
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)


def operator_scrape_config(pod_monitor):
    """The scrape config prometheus-operator v0.93.0 generates for endpoint 0 of ``pod_monitor``.

    Written from pkg/prometheus/promcfg.go (generatePodMonitorConfig, initRelabelings,
    generateRunningFilter), for one shard and no scrape class: the job name, role-pod discovery in
    the selector's namespaces, the job meta label, the running filter, the selector as keep rules,
    the port, namespace/container/pod, job=<ns>/<name>, then the endpoint's relabelings. The
    sharding rules (hashmod of __address__, keep $(SHARD)) keep every target with one shard: left out.
    """
    meta, spec = pod_monitor["metadata"], pod_monitor["spec"]
    endpoint = spec["podMetricsEndpoints"][0]
    relabel = [{"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"},
               {"action": "drop", "source_labels": ["__meta_kubernetes_pod_phase"], "regex": "(Failed|Succeeded)"}]
    for key in sorted(spec["selector"].get("matchLabels", {})):
        relabel.append({"action": "keep", "source_labels": _present(_sanitize(key)),
                        "regex": "(%s);true" % spec["selector"]["matchLabels"][key]})
    for exp in spec["selector"].get("matchExpressions", []):
        assert exp["operator"] == "In", exp
        relabel.append({"action": "keep", "source_labels": _present(_sanitize(exp["key"])),
                        "regex": "(%s);true" % "|".join(exp["values"])})
    relabel.append({"action": "keep", "source_labels": ["__meta_kubernetes_pod_container_port_number"],
                    "regex": str(endpoint["portNumber"])})
    relabel += [{"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
                {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
                {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
                {"target_label": "job", "replacement": "%s/%s" % (meta["namespace"], meta["name"])}]
    relabel += [_snake(r) for r in endpoint.get("relabelings", [])]
    return {
        "job_name": "podMonitor/%s/%s/0" % (meta["namespace"], meta["name"]),
        "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": spec["namespaceSelector"]["matchNames"]}}],
        "metrics_path": endpoint.get("path", "/metrics"),
        "scrape_protocols": spec["scrapeProtocols"],
        "relabel_configs": relabel,
    }


def pod_meta(name, gateway="agentgateway-proxy", port="15020", phase="Running", namespace="agentgateway-system"):
    labels = {"app_kubernetes_io_name": "agentgateway-proxy"}
    if gateway is not None:
        labels["gateway_networking_k8s_io_gateway_name"] = gateway
    meta = {"__meta_kubernetes_namespace": namespace, "__meta_kubernetes_pod_name": name,
            "__meta_kubernetes_pod_phase": phase, "__meta_kubernetes_pod_container_name": "agentgateway",
            "__meta_kubernetes_pod_container_port_number": port}
    for label, value in labels.items():
        meta["__meta_kubernetes_pod_label_" + label] = value
        meta["__meta_kubernetes_pod_labelpresent_" + label] = "true"
    return meta


def test_the_podmonitor_keeps_the_gateway_pod_and_drops_the_others(existing_render, prometheus_factory):
    pod_monitor = load_rendered(existing_render, PODMONITOR)
    job = operator_scrape_config(pod_monitor)
    assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": ["agentgateway-system"]}}]
    del job["kubernetes_sd_configs"]
    gateway = GatewayMetricsTarget(answer_v141)
    try:
        others = {
            "other-gateway-0": pod_meta("other-gateway-0", gateway="other-gateway"),
            "no-gateway-label-0": pod_meta("no-gateway-label-0", gateway=None),
            "readiness-port-0": pod_meta("readiness-port-0", port="15021"),
            "pending-0": pod_meta("pending-0", phase="Pending"),
            "finished-0": pod_meta("finished-0", phase="Succeeded"),
        }
        job["static_configs"] = [{"targets": [gateway.address], "labels": pod_meta("agentgateway-proxy-7d9c-a")}] + [
            {"targets": ["127.0.0.1:%d" % (1 + n)], "labels": meta} for n, meta in enumerate(others.values())]
        server = prometheus_factory({"global": {"scrape_interval": "1s"}, "scrape_configs": [job]})
        result = server.wait_for(lambda: server.query('agentgateway_requests_total{job="agentgateway"}'),
                                 what="the gateway pod scraped under the rules' job label")
        assert result[0]["metric"]["pod"] == "agentgateway-proxy-7d9c-a"
        assert result[0]["metric"]["namespace"] == "agentgateway-system"
        assert result[0]["metric"]["gateway_networking_k8s_io_gateway_name"] == "agentgateway-proxy"
        targets = server.api("/api/v1/targets", state="any")
        assert [t["labels"]["pod"] for t in targets["activeTargets"]] == ["agentgateway-proxy-7d9c-a"]
        dropped = {t["discoveredLabels"]["__meta_kubernetes_pod_name"] for t in targets["droppedTargets"]}
        assert dropped == set(others)
    finally:
        gateway.stop()


# ---- verification through agw_obs_access=url --------------------------------------------------------

class OperatorStack(LocalStack):
    """The local stack of support.stack around the session's WireMock (support.wiremock, the rendered
    mappings), with the user's Prometheus: it scrapes the gateway stand-in the way the operator
    translates the PodMonitor and loads the PrometheusRule's groups; Grafana's datasources point at it."""

    def __init__(self, prometheus_binary, workdir, render_dir, wiremock):  # pylint: disable=super-init-not-called
        self.workdir = pathlib.Path(workdir)
        self.started = []  # stopped by stop(); the session's WireMock is not ours to stop
        self.wiremock = wiremock
        try:
            self.tempo = ContractTempo()
            self.started.append(self.tempo)
            self.loki = ContractLoki()
            self.started.append(self.loki)
            self.gateway = GatewayStandIn(wiremock.url, BACKEND_KEY, self.tempo, self.loki, PRICES)
            self.started.append(self.gateway)
            scrape = operator_scrape_config(load_rendered(render_dir, PODMONITOR))
            del scrape["kubernetes_sd_configs"]
            scrape["scrape_interval"] = "1s"
            scrape["static_configs"] = [{"targets": [self.gateway.metrics_address],
                                         "labels": pod_meta("agentgateway-proxy-6f7d9c-x2x7q")}]
            self.prometheus = PrometheusServer(prometheus_binary, self.workdir / "operator-prometheus", {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "scrape_configs": [scrape],
            }, rule_files={"rules.yml": {"groups": load_rendered(render_dir, RULE)["spec"]["groups"]}})
            self.started.append(self.prometheus)
            self.grafana = ContractGrafana(GRAFANA_PASSWORD, [
                {"uid": "prometheus", "name": "Prometheus", "type": "prometheus", "url": self.prometheus.url},
                {"uid": "tempo", "name": "Tempo", "type": "tempo", "url": self.tempo.url},
                {"uid": "loki", "name": "Loki", "type": "loki", "url": self.loki.url}], dashboards())
            self.started.append(self.grafana)
        except Exception:
            self.stop()
            raise


def test_verification_passes_in_existing_mode_against_the_users_urls_and_skips_the_tempo_it_lacks(
        existing_render, prometheus_binary, mock_wiremock, tmp_path):
    """verify.yml with agw_obs_access=url, against a Prometheus that scrapes the gateway stand-in the way
    the operator translates the PodMonitor and loads the PrometheusRule's groups (the other services are
    the local stack's: WireMock with the rendered mappings, and the Loki and Grafana contract servers,
    Grafana's Prometheus datasource on that Prometheus). This user has no Tempo to give: its hop is a
    skipped check with the reason, and nothing fails."""
    stack = OperatorStack(prometheus_binary, tmp_path / "stack", existing_render, mock_wiremock)
    try:
        urls = dict(stack.service_urls(), tempo="")
        proc = render_playbook(REPO / "playbooks" / "verify.yml", tmp_path / "render", dict(
            EXISTING, existing_stack_tempo_datasource_url="",
            agw_obs_access="url", agw_obs_service_urls=urls,
            verification_grafana_password=GRAFANA_PASSWORD, verification_report_dir=str(tmp_path / "report"),
            verification_deadline=45, verification_timeout=5))
        report = json.loads((tmp_path / "report" / "verification.json").read_text())
        failed = [c for c in report["checks"] if c["status"] == "failed"]
        assert failed == [], failed
        checks = {c["id"]: c for c in report["checks"]}
        assert {"prometheus.gateway_target", "prometheus.rules", "prometheus.cost", "loki.ready",
                "grafana.datasource.loki", "grafana.panel"} <= set(checks)
        assert not any(i.startswith("tempo.") and i != "tempo.skipped" for i in checks)
        tempo = checks["tempo.skipped"]
        assert tempo["status"] == "skipped" and "runs no Tempo of its own" in tempo["saw"]
        assert "existing_stack_tempo_datasource_url is empty" in tempo["saw"] and "agw_obs_service_urls.tempo" in tempo["saw"]
        assert report["summary"]["skipped"] == 1 and report["passed"]
        assert " passed, 0 failed, 1 skipped" in proc.stdout
    finally:
        stack.stop()
