"""Role existing_stack in apply mode against the real control plane (the session's, support.session).

The prometheus-operator v0.93.0 CRDs (PodMonitor, PrometheusRule) from the upstream schemas folder are
installed there first (where missing: the plane is shared), as a cluster running
kube-prometheus-stack has them, and the monitoring namespace exists already (it is the user's: this
module's own namespace). Then: the API server accepts every object (server-side apply), a second
run changes nothing, and agw_obs_state=absent removes exactly what the role created and leaves the
user's namespace. No operator or Grafana runs here (no nodes): what they do with the objects is
covered by test_existing_stack.py.
"""

from __future__ import annotations

import re

import pytest

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
def users_namespace(verification_cluster, module_namespace, schemas_dir):
    """The operator's CRDs in the cluster, and the user's monitoring namespace (this module's own)."""
    verification_cluster.crds(schemas_dir / "prometheus-operator" / name for name in CRDS)
    verification_cluster.namespace(module_namespace)
    return module_namespace


def test_apply_is_accepted_idempotent_and_removed_by_absent(controlplane, users_namespace, cluster_snapshot):
    kubeconfig, ns = str(controlplane.kubeconfig_path), users_namespace
    settings = dict(SETTINGS, agw_obs_monitoring_namespace=ns, agw_obs_gateway_namespace=ns + "-gateway")
    before = cluster_snapshot({ns})
    assert "core/Namespace %s" % ns in before, sorted(before)

    first = apply_site(kubeconfig, settings, playbook=PLAYBOOK)
    assert recap(first.stdout)["changed"] >= 1
    created = cluster_snapshot({ns}) - before
    assert {"monitoring.coreos.com/PodMonitor %s/agentgateway-proxy" % ns,
            "monitoring.coreos.com/PrometheusRule %s/agentgateway-proxy-rules" % ns,
            "core/ConfigMap %s/agentgateway-datasource-tempo" % ns} <= created, sorted(created)
    dashboards = {c for c in created if c.startswith("core/ConfigMap %s/grafana-dashboard-" % ns)}
    assert len(dashboards) == 4, sorted(created)
    assert len(created) == 8, sorted(created)  # and the inventory
    assert "core/ConfigMap %s/agentgateway-observability-inventory" % ns in created

    # what the API server holds is what the role rendered: the labels the user's Prometheus selects on,
    # and every rule group
    api = Api(controlplane)
    rule = api.request("/apis/monitoring.coreos.com/v1/namespaces/%s/prometheusrules/agentgateway-proxy-rules" % ns)
    assert rule["metadata"]["labels"]["release"] == "kps"
    assert {g["name"] for g in rule["spec"]["groups"]} >= {"agentgateway.alerts"}
    monitor = api.request("/apis/monitoring.coreos.com/v1/namespaces/%s/podmonitors/agentgateway-proxy" % ns)
    assert monitor["spec"]["podMetricsEndpoints"][0]["portNumber"] == 15020
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [ns + "-gateway"]}

    second = apply_site(kubeconfig, settings, playbook=PLAYBOOK)
    assert recap(second.stdout) == {"changed": 0, "failed": 0}, second.stdout[-3000:]

    removed = apply_site(kubeconfig, dict(settings, agw_obs_state="absent"), playbook=PLAYBOOK)
    assert recap(removed.stdout)["failed"] == 0
    after = cluster_snapshot({ns})
    assert after == before, sorted(after ^ before)
    assert "core/Namespace %s" % ns in after, "the user's namespace was taken"
