"""Switching the stack mode against the real control plane (the session's, support.session).

install -> existing -> install with playbooks/stack.yml: after each switch the releases and objects
of the collection in the cluster are the plan (the index entries of the roles' real parts for the
same settings, support.planner), the inventory ConfigMap is the plan, a second run changes nothing,
and look-alikes planted in another namespace under the same names (without the collection's label,
and a Helm release of the same name) survive. ``--check --diff`` before a switch lists exactly what
the switch then prunes. The removal at the end takes what the collection created, the inventory too.

The charts are TEST charts (support.chartrepo) under the upstream names and pinned versions. NodePorts
are cluster-wide and the plane is shared: this module's are its own (30281-30283).
"""

from __future__ import annotations

import pytest
import yaml
from kubernetes.client.rest import ApiException

from support.day_two import held_inventory, labels_of, ours_in_cluster, planned, recap, reported
from support.fixtures import REPO
from support.kube import apply_site, helm

pytestmark = pytest.mark.services

STACK = REPO / "playbooks" / "stack.yml"
OPERATOR_CRDS = ("monitoring.coreos.com_podmonitors.yaml", "monitoring.coreos.com_prometheusrules.yaml")
PORTS = {"prometheus_node_port": 30281, "grafana_node_port": 30282, "tempo_query_node_port": 30283}
EXISTING = {"agw_obs_stack_mode": "existing", "existing_stack_prometheus_labels": {"release": "kps"},
            "existing_stack_tempo_datasource_url": "http://tempo.observability.svc.cluster.local:3200"}


@pytest.fixture(scope="module")
def operator_crds(verification_cluster, schemas_dir):
    """The prometheus-operator CRDs, as a cluster running kube-prometheus-stack has them (where missing)."""
    verification_cluster.crds(schemas_dir / "prometheus-operator" / name for name in OPERATOR_CRDS)


@pytest.mark.usefixtures("operator_crds")
def test_switching_the_stack_mode_prunes_the_other_mode_and_nothing_else(
        controlplane, test_chart_repo, verification_cluster, module_namespace, tmp_path):
    kubeconfig, ns = controlplane.kubeconfig_path, module_namespace
    other = ns + "-other"
    install = dict(PORTS, agw_obs_monitoring_namespace=ns, agw_obs_gateway_namespace=ns + "-gateway",
                   agw_obs_chart_repository_mirror=test_chart_repo["url"],
                   grafana_admin_password_file=str(tmp_path / "grafana-password"))
    existing = dict(install, **EXISTING)

    # look-alikes: the same names in another namespace, without the collection's label, and a release
    verification_cluster.namespace(other)
    look_alikes = [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "tempo-query-nodeport", "namespace": other},
         "spec": {"ports": [{"port": 3200}]}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "grafana-admin", "namespace": other}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "agentgateway-datasource-tempo",
                                                               "namespace": other}},
    ]
    for obj in look_alikes:
        verification_cluster.apply(obj)
    helm(kubeconfig, "install", "tempo", "tempo", "--repo", test_chart_repo["url"], "--version",
         _chart_version(test_chart_repo, "tempo"), "-n", other)
    planted = sorted(["Service %s/tempo-query-nodeport" % other, "Secret %s/grafana-admin" % other,
                      "ConfigMap %s/agentgateway-datasource-tempo" % other, "release %s/tempo" % other])

    def converge(settings, plan):
        first = apply_site(kubeconfig, settings, playbook=STACK)
        assert ours_in_cluster(kubeconfig, [ns, ns + "-gateway"]) == plan, first.stdout[-3000:]
        assert labels_of(held_inventory(kubeconfig, ns)) == plan, "the inventory is the plan"
        second = apply_site(kubeconfig, settings, playbook=STACK, args=("--diff",))
        assert recap(second.stdout) == {"changed": 0, "failed": 0}, second.stdout[-3000:]
        assert reported(second.stdout, "pruned") == []
        survivors = [label for label in planted if label.startswith("release ")] + sorted(
            "%s %s/%s" % (o["kind"], other, o["metadata"]["name"]) for o in look_alikes
            if _exists(verification_cluster, o))
        assert sorted(survivors) == planted, "a look-alike was touched"
        return first

    install_plan, existing_plan = planned(install), planned(existing)
    assert "release %s/tempo" % ns in install_plan and "PodMonitor %s/agentgateway-proxy" % ns in existing_plan

    converge(install, install_plan)

    # install -> existing: the dry run names exactly what the switch removes
    dry = apply_site(kubeconfig, existing, playbook=STACK, args=("--check", "--diff"))
    would = reported(dry.stdout, "would prune")
    assert labels_of(held_inventory(kubeconfig, ns)) == install_plan, "check mode writes no inventory"
    switched = converge(existing, existing_plan)
    pruned = reported(switched.stdout, "pruned")
    assert pruned == would, (pruned, would)
    assert pruned == sorted(set(install_plan) - set(existing_plan)), pruned
    assert {"release %s/prometheus" % ns, "release %s/tempo" % ns, "release %s/grafana" % ns} <= set(pruned)

    # existing -> install
    back = converge(install, install_plan)
    assert reported(back.stdout, "pruned") == sorted(set(existing_plan) - set(install_plan))

    # cleanup: what the collection created goes (the inventory too); the look-alikes stay
    apply_site(kubeconfig, dict(install, agw_obs_state="absent"), playbook=STACK)
    assert ours_in_cluster(kubeconfig, [ns]) == []
    assert held_inventory(kubeconfig, ns) is None
    helm(kubeconfig, "uninstall", "tempo", "-n", other)


def _exists(cluster, obj):
    resource = cluster.dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    try:
        resource.get(name=obj["metadata"]["name"], namespace=obj["metadata"]["namespace"])
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def _chart_version(repo, name):
    import urllib.request  # pylint: disable=import-outside-toplevel

    with urllib.request.urlopen(repo["url"].rstrip("/") + "/index.yaml", timeout=10) as answer:
        return yaml.safe_load(answer.read())["entries"][name][0]["version"]
