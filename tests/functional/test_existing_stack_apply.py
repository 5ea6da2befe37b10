"""Role existing_stack in apply mode against the real control plane (tests/support/controlplane.py).

The prometheus-operator v0.93.0 CRDs (PodMonitor, PrometheusRule) from the upstream schemas folder are
installed there first, as a cluster running kube-prometheus-stack has them, and the monitoring
namespace exists already (it is the user's). Then: the API server accepts every object (server-side
apply), a second run changes nothing, and agw_obs_state=absent removes exactly what the role created
and leaves the user's namespace. No operator or Grafana runs here (no nodes): what they do with the
objects is covered by test_existing_stack.py.
"""

from __future__ import annotations

import re
import time

import pytest
import yaml

from support.cluster_snapshot import snapshot
from support.controlplane import ControlPlane
from support.fixtures import REPO
from support.kube import apply_site
from support.kubeapi import Api

pytestmark = pytest.mark.services

PLAYBOOK = REPO / "tests" / "functional" / "playbooks" / "existing_stack.yml"
SETTINGS = {
    "agw_obs_stack_mode": "existing",
    "existing_stack_prometheus_labels": {"release": "kps"},
    "existing_stack_tempo_datasource_url": "http://tempo.observability.svc.cluster.local:3200",
}
CRDS = ("monitoring.coreos.com_podmonitors.yaml", "monitoring.coreos.com_prometheusrules.yaml")


def recap(output):
    match = re.search(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", output)
    assert match, output[-3000:]
    return {"changed": int(match.group(2)), "failed": int(match.group(4))}


@pytest.fixture(scope="module")
def cluster_with_operator_crds(tmp_path_factory, schemas_dir):
    plane = ControlPlane(tmp_path_factory.mktemp("controlplane"))
    try:
        plane.start()
        api = Api(plane)
        api.request("/api/v1/namespaces", "POST", {"apiVersion": "v1", "kind": "Namespace",
                                                   "metadata": {"name": "monitoring"}})
        for name in CRDS:
            crd = yaml.safe_load((schemas_dir / "prometheus-operator" / name).read_text(encoding="utf-8"))
            api.request("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", "POST", crd)
            deadline = time.time() + 60
            while True:
                status = api.request("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/%s"
                                     % crd["metadata"]["name"]).get("status") or {}
                if any(c["type"] == "Established" and c["status"] == "True" for c in status.get("conditions") or []):  # null until the API server sets it
                    break
                assert time.time() < deadline, "CRD %s not Established" % name
                time.sleep(0.5)
        yield plane
    finally:
        plane.stop()


def test_apply_is_accepted_idempotent_and_removed_by_absent(cluster_with_operator_crds):
    plane = cluster_with_operator_crds
    kubeconfig = str(plane.kubeconfig_path)
    before = snapshot(kubeconfig)

    first = apply_site(kubeconfig, SETTINGS, playbook=PLAYBOOK)
    assert recap(first.stdout)["changed"] >= 1
    created = snapshot(kubeconfig) - before
    assert {"monitoring.coreos.com/PodMonitor monitoring/agentgateway-proxy",
            "monitoring.coreos.com/PrometheusRule monitoring/agentgateway-proxy-rules",
            "core/ConfigMap monitoring/agentgateway-datasource-tempo"} <= created, sorted(created)
    dashboards = {c for c in created if c.startswith("core/ConfigMap monitoring/grafana-dashboard-")}
    assert len(dashboards) == 4, sorted(created)
    assert len(created) == 7, sorted(created)

    # what the API server holds is what the role rendered: the labels the user's Prometheus selects on,
    # and every rule group
    api = Api(plane)
    rule = api.request("/apis/monitoring.coreos.com/v1/namespaces/monitoring/prometheusrules/agentgateway-proxy-rules")
    assert rule["metadata"]["labels"]["release"] == "kps"
    assert {g["name"] for g in rule["spec"]["groups"]} >= {"agentgateway.alerts"}
    monitor = api.request("/apis/monitoring.coreos.com/v1/namespaces/monitoring/podmonitors/agentgateway-proxy")
    assert monitor["spec"]["podMetricsEndpoints"][0]["portNumber"] == 15020

    second = apply_site(kubeconfig, SETTINGS, playbook=PLAYBOOK)
    assert recap(second.stdout) == {"changed": 0, "failed": 0}, second.stdout[-3000:]

    removed = apply_site(kubeconfig, dict(SETTINGS, agw_obs_state="absent"), playbook=PLAYBOOK)
    assert recap(removed.stdout)["failed"] == 0
    after = snapshot(kubeconfig)
    assert after == before, sorted(after ^ before)
    assert "core/Namespace monitoring" in after, "the user's namespace was taken"
